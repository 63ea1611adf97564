"""IndexHost: states, lock policy, cancellation, status and partial (fake embedder, real LanceDB)."""

from __future__ import annotations

import fcntl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from engine.config import EngineConfig
from engine.errors import IndexLockedError
from engine.host import HostBusyError, IndexHost
from engine.results import STATUS_FIELDS
from engine.workspace import Workspace


@contextmanager
def foreign_lock(index_dir: Path) -> Iterator[None]:
    """Another process's write lock: flock on its own open file, as ChunkStore.writer takes it."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / "write.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def wait_for(predicate, timeout: float = 60.0) -> None:  # the first test pays the imports
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_idle_then_indexing_then_ready(workspace: Workspace, fake_embedder) -> None:
    host = IndexHost(workspace)
    assert host.state == "idle" and not host.is_open
    assert host.status()["state"] == "idle" and host.status()["files"] is None
    fake_embedder.gate = threading.Event()
    future = host.start()
    wait_for(lambda: host.state == "indexing")
    partial, note = host.partial_note()
    assert partial and "still being built" in note
    fake_embedder.gate.set()
    stats = future.result(10)
    assert stats is not None and stats.files_indexed == 3
    status = host.status()
    assert set(status) == set(STATUS_FIELDS)
    assert (status["state"], status["files"], status["model"], status["partial"]) == ("ready", 3, "fake-hash", False)
    assert status["progress"] is None and status["last_error"] is None


def test_open_without_index_is_not_indexed(workspace: Workspace) -> None:
    host = IndexHost(workspace)
    assert host.start(index=False).result(10) is None
    assert host.state == "not_indexed" and host.partial_note() == (False, "the workspace is not indexed yet")


def test_a_bad_model_is_an_error_state_and_status_still_answers(small_root: Path, tmp_path: Path) -> None:
    config = EngineConfig(index_dir=str(tmp_path / "index"), model_path=str(tmp_path / "missing.gguf"))
    host = IndexHost(Workspace(small_root, config))
    assert host.start().result(10) is None
    status = host.status()
    assert status["state"] == "error" and "missing.gguf" in status["last_error"]
    assert status["files"] is None and status["partial"] is False


def test_a_foreign_lock_fails_at_once_before_the_model_loads(small_root: Path, tmp_path: Path) -> None:
    # The default model: its identity (and so its index folder) comes from the file header alone.
    workspace = Workspace(small_root, EngineConfig(index_dir=str(tmp_path / "index")))
    host = IndexHost(workspace)
    with foreign_lock(workspace.index_path), pytest.raises(IndexLockedError, match="another semcode process"):
        host.index()
    assert not host.is_open and host.state == "idle"
    assert workspace._embedder is None  # the model was never loaded


def test_background_index_waits_for_a_foreign_lock_then_indexes(workspace: Workspace, tmp_path: Path) -> None:
    host = IndexHost(workspace, lock_retry_seconds=0.05)
    waited = threading.Event()
    with foreign_lock(workspace.index_path):
        future = host.start(on_waiting=waited.set)
        assert waited.wait(10)
        assert host.state == "waiting_for_lock"
        partial, note = host.partial_note()
        assert partial and "another semcode process" in note
        assert host.status()["locked_by_other_process"] is True
    stats = future.result(10)
    assert stats is not None and stats.files_indexed == 3 and host.state == "ready"


def test_cancel_while_waiting_for_the_lock(workspace: Workspace, tmp_path: Path) -> None:
    host = IndexHost(workspace, lock_retry_seconds=0.05)
    with foreign_lock(workspace.index_path):
        future = host.start()
        wait_for(lambda: host.state == "waiting_for_lock")
        host.cancel()
        stats = future.result(10)
    assert stats is not None and stats.cancelled


def test_cancel_during_indexing_keeps_what_is_committed(workspace: Workspace, fake_embedder) -> None:
    host = IndexHost(workspace)
    fake_embedder.gate = threading.Event()
    future = host.start()
    wait_for(lambda: host.state == "indexing")
    host.cancel()
    fake_embedder.gate.set()
    stats = future.result(10)
    assert stats is not None and stats.cancelled
    assert host.state in ("ready", "not_indexed")
    again = host.index()  # a later run finishes the job
    assert not again.cancelled and workspace.count_files() == 3


def test_a_second_write_in_this_process_is_busy(workspace: Workspace, fake_embedder) -> None:
    host = IndexHost(workspace)
    fake_embedder.gate = threading.Event()
    future = host.start()
    wait_for(lambda: host.state == "indexing")
    with pytest.raises(HostBusyError):
        host.index()
    assert host.locked_by_other() is False  # this process is the writer
    fake_embedder.gate.set()
    assert future.result(10) is not None


def test_update_files_and_jobs_run_in_order(workspace: Workspace, small_root: Path) -> None:
    host = IndexHost(workspace)
    host.start().result(10)
    (small_root / "text/slug.py").unlink()
    (small_root / "new.py").write_text("def brand_new_function():\n    return 1\n")
    stats = host.submit(lambda: host.update_files(["text/slug.py", "new.py"])).result(10)
    assert stats.files_deleted == 1 and stats.files_indexed == 1
    assert workspace.indexed_paths() == ["net/retry.py", "new.py", "web/format.js"]


def test_closed_host_refuses_work(workspace: Workspace) -> None:
    host = IndexHost(workspace)
    host.close()
    assert host.start().cancelled()
    assert host.index().cancelled


def test_status_reports_the_tiers_while_the_dense_tier_is_embedding(workspace: Workspace, fake_embedder) -> None:
    host = IndexHost(workspace)
    assert host.status()["lexical_ready"] is False
    fake_embedder.gate = threading.Event()  # the model is slow: the first phase ends, the second waits
    future = host.start()
    wait_for(lambda: host.progress is not None and host.progress.stage == "vectors")
    status = host.status()
    assert status["lexical_ready"] and status["partial"] and status["state"] == "indexing"
    assert status["pending_chunks"] == status["chunks"] > 0
    fake_embedder.gate.set()
    assert future.result(10) is not None
    status = host.status()
    assert status["lexical_ready"] and not status["partial"] and status["pending_chunks"] == 0


def test_a_save_gives_its_scratch_memory_back_and_a_no_op_save_does_not(
    workspace: Workspace, small_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import engine.host as host_module

    trims: list[int] = []
    monkeypatch.setattr(host_module, "release_native_memory", lambda min_interval: trims.append(1))
    host = IndexHost(workspace)
    host.start().result(10)
    trims.clear()
    assert host.submit(lambda: host.update_files(["net/retry.py"])).result(10).files_indexed == 0
    assert trims == []  # nothing written: nothing to give back
    (small_root / "net/retry.py").write_text("def retried_once():\n    return 2\n")
    assert host.submit(lambda: host.update_files(["net/retry.py"])).result(10).files_indexed == 1
    assert trims == [1]
