"""A server's restart (issue 11, "restart with nothing changed"): the early walk runs in a child process,
the index's side of the comparison is read while it finishes, and no vocabulary loads before ready.

None of that may cost a change: a file edited, added or deleted while no server ran is indexed by the
next start, and the host says ``ready`` (not partial) only once that check is done. Real model through
llama.cpp (in worker processes, as a server runs it), real LanceDB on disk.
"""

from __future__ import annotations

import os
import random
import shutil
import threading
from pathlib import Path

import pytest

import engine.indexer
import engine.walk_child
from engine.config import EngineConfig
from engine.host import IndexHost
from engine.workspace import Workspace

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "workspace"


def start(root: Path, index_dir: Path) -> tuple[IndexHost, object]:
    """A host as the language server starts one (its own Workspace over the shared model), started."""
    host = IndexHost(Workspace(root, EngineConfig(index_dir=str(index_dir))))
    return host, host.start().result(timeout=300)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    target = tmp_path / "ws"
    shutil.copytree(FIXTURE, target)
    (target / "edited.py").write_text("def original_version_of_helper(x):\n    return x + 1\n")
    (target / "deleted.py").write_text("def function_that_will_be_deleted():\n    return 0\n")
    return target


def test_files_changed_while_no_server_ran_are_indexed_by_the_next_start(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index_dir = tmp_path / "idx"
    first, stats = start(root, index_dir)
    assert stats is not None and stats.files_indexed > 3
    assert first.workspace.indexed_hash("edited.py") is not None
    first.close()
    first.join(10)

    # While no server runs: an edit that keeps the size (only the mtime tells), a new file, a deletion.
    edited = root / "edited.py"
    before = edited.stat()
    edited.write_text("def replaced_version_of_helper(x):\n    return x + 2\n")
    assert edited.stat().st_size == before.st_size
    os.utime(edited, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))
    (root / "added.py").write_text("def appeared_while_the_server_was_down():\n    return 3\n")
    (root / "deleted.py").unlink()

    # "ready" must wait for the check: note the host's state whenever the check runs.
    seen: list[tuple[str, bool]] = []
    real = engine.indexer.Indexer._index_walked

    def noting(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append((second.state, second.partial))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(engine.indexer.Indexer, "_index_walked", noting)
    second = IndexHost(Workspace(root, EngineConfig(index_dir=str(index_dir))))
    stats = second.start().result(timeout=300)
    assert stats is not None
    assert seen and all(state != "ready" and partial for state, partial in seen), seen
    assert (stats.files_indexed, stats.files_deleted) == (2, 1)
    status = second.status()
    assert status["state"] == "ready" and not status["partial"]
    paths = second.workspace.indexed_paths()
    assert "added.py" in paths and "deleted.py" not in paths
    assert [h.path for h in second.workspace.symbols("replaced_version_of_helper")][:1] == ["edited.py"]
    assert all(h.symbol != "original_version_of_helper" for h in second.workspace.symbols("original_version_of_helper"))
    assert second.workspace.search("appeared while the server was down", limit=3)[0].path == "added.py"
    second.close()


def test_a_restart_with_nothing_changed_indexes_nothing_and_searches(root: Path, tmp_path: Path) -> None:
    index_dir = tmp_path / "idx"
    first, _ = start(root, index_dir)
    first.close()
    first.join(10)
    second, stats = start(root, index_dir)
    assert stats is not None and stats.files_indexed == 0 and stats.files_unchanged > 3
    assert stats.skipped == first.last_stats.skipped  # the child's walk reports the same skips
    hits = second.workspace.search("original version of helper", limit=3)
    assert hits and hits[0].path == "edited.py"
    second.close()


def test_the_walk_child_failing_leaves_the_walk_to_a_thread(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args, **_kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("no child today")

    monkeypatch.setattr(engine.walk_child, "walk_in_child", broken)
    host, stats = start(root, tmp_path / "idx")
    assert stats is not None and stats.files_indexed > 3
    assert "deleted.py" in host.workspace.indexed_paths()
    host.close()


def test_cap_without_counting_is_what_counting_gives(embedder) -> None:
    """``Embedder.cap`` skips the count for a text that fits by its UTF-8 length; the cut must not change."""
    rng = random.Random(11)
    alphabet = "ab Z_-.,;:()[]{}\n\t09éü中文語🙂\u200b\\\"'"
    limit = embedder.info.context_length
    for _ in range(400):
        text = "".join(rng.choice(alphabet) for _ in range(rng.choice([0, 5, 60, limit // 2, limit, 3 * limit])))
        assert embedder.cap(text) == embedder._fit(text)[0]


def test_a_restart_loads_the_vocabulary_only_after_ready_and_a_save_still_chunks(
    root: Path, tmp_path: Path, default_model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The vocabulary (token counts) is no part of a restart's check: it loads once the host is ready."""
    from engine.models import load_embedder
    from engine.models.worker import WorkerEmbedder

    index_dir = tmp_path / "idx"
    first, _ = start(root, index_dir)
    first.close()
    first.join(10)
    hosts: list[IndexHost] = []
    loads: list[str] = []  # the host's state at each vocabulary load of the new embedder
    real = WorkerEmbedder._vocabulary

    def noting(self: WorkerEmbedder):  # type: ignore[no-untyped-def]
        if not own_box or self is own_box[0]:  # the shared embedder of other tests is not ours
            loads.append(hosts[0].state if hosts else "no host yet")
        return real(self)

    own_box: list[WorkerEmbedder] = []
    monkeypatch.setattr(WorkerEmbedder, "_vocabulary", noting)
    own = load_embedder(EngineConfig(model_path=str(default_model_path)))  # its own worker, nothing loaded yet
    own_box.append(own)  # type: ignore[arg-type]
    host = IndexHost(Workspace(root, EngineConfig(index_dir=str(index_dir)), embedder=own))
    hosts.append(host)
    try:
        stats = host.start().result(timeout=300)
        assert stats is not None and stats.files_indexed == 0
        assert host.workspace.search("original version of helper", limit=3)[0].path == "edited.py"
        assert all(state == "ready" for state in loads), loads  # none while constructing or checking
        (root / "edited.py").write_text("def saved_after_the_restart(value):\n    return value * 7\n")
        assert host.update_files([str(root / "edited.py")]).files_indexed == 1
        assert loads  # the save counted tokens
        assert [h.path for h in host.workspace.symbols("saved_after_the_restart")][:1] == ["edited.py"]
    finally:
        host.close()
        own.close()


def test_a_restart_checks_without_waiting_for_the_model_and_its_first_query_waits_for_it(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A restart opens its index with the model's identity from the file's header: the model loads beside
    the check (``Workspace.open``), and only what embeds waits for it."""
    import engine.workspace

    index_dir = tmp_path / "idx"
    first, _ = start(root, index_dir)
    first.close()
    first.join(10)
    asked, release = threading.Event(), threading.Event()
    real = engine.workspace.shared_embedder

    def held(*args, **kwargs):  # type: ignore[no-untyped-def]
        asked.set()
        assert release.wait(30), "the restart waited for the model"
        return real(*args, **kwargs)

    monkeypatch.setattr(engine.workspace, "shared_embedder", held)
    host = IndexHost(Workspace(root, EngineConfig(index_dir=str(index_dir))))
    try:
        stats = host.start().result(timeout=60)
        assert stats is not None and stats.files_indexed == 0 and stats.files_unchanged > 3
        assert not release.is_set() and host.status()["state"] == "ready"
        assert asked.wait(10)  # its load began beside the check
        release.set()
        assert host.workspace.search("original version of helper", limit=3)[0].path == "edited.py"
        (root / "edited.py").write_text("def saved_once_the_model_loaded(value):\n    return value * 3\n")
        assert host.update_files([str(root / "edited.py")]).files_indexed == 1
        assert [h.path for h in host.workspace.symbols("saved_once_the_model_loaded")][:1] == ["edited.py"]
    finally:
        release.set()
        host.close()


# ----------------------------------------------------------------- the seal (engine/seal.py)
CRASH_SAVE = """
import sys
from pathlib import Path
from engine.config import EngineConfig
from engine.workspace import Workspace
ws = Workspace(Path(sys.argv[1]), EngineConfig(index_dir=sys.argv[2], threads=1))
ws.update_files([sys.argv[3]])
print("the fault point was never reached")
"""


def counting_scans(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every whole-table scan of the chunk rows' paths (the restart's crash check) appends to the list."""
    import engine.store

    scans: list[int] = []
    real = engine.store.ChunkStore._all_path_rows

    def counting(self):  # type: ignore[no-untyped-def]
        scans.append(1)
        return real(self)

    monkeypatch.setattr(engine.store.ChunkStore, "_all_path_rows", counting)
    return scans


def test_a_sealed_restart_skips_the_row_scan_and_still_indexes_what_changed(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index_dir = tmp_path / "idx"
    first, _ = start(root, index_dir)
    assert first.seal()  # as the language server does at exit
    first.close()
    first.join(10)
    scans = counting_scans(monkeypatch)
    second, stats = start(root, index_dir)
    assert stats is not None and stats.files_indexed == 0 and stats.files_unchanged > 3
    assert scans == []  # the seal named both tables' versions: no row was read for the check
    assert second.seal() and scans == []  # nothing written since: still sealed, nothing checked again
    (root / "edited.py").write_text("def saved_into_a_sealed_index(value):\n    return value - 1\n")
    assert second.update_files([str(root / "edited.py")]).files_indexed == 1
    second.close()
    second.join(10)
    # A change while no server ran after a seal: the seal still applies (nothing was written since), and
    # the comparison of the walk with the manifest finds the file as it always did.
    (root / "added.py").write_text("def written_while_down_after_a_seal():\n    return 5\n")
    third, stats = start(root, index_dir)
    assert stats is not None and stats.files_indexed == 1
    assert len(scans) == 1  # the save moved the tables past the seal: the check read the rows again
    assert [h.path for h in third.workspace.symbols("saved_into_a_sealed_index")][:1] == ["edited.py"]
    assert [h.path for h in third.workspace.symbols("written_while_down_after_a_seal")][:1] == ["added.py"]
    third.close()


def test_a_crash_between_the_chunk_and_manifest_commits_of_a_sealed_index_still_heals(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one state the row scan exists for, on a sealed index: a save killed after its chunk commit and
    before its manifest commit, then the file put back as the manifest knows it (same bytes, same mtime),
    so nothing but the rows tells that the index holds a version of it that is on no disk."""
    import subprocess
    import sys

    from engine.faults import ENV_VAR, EXIT_CODE

    index_dir = tmp_path / "idx"
    first, _ = start(root, index_dir)
    assert first.seal()
    first.close()
    first.join(10)
    edited = root / "edited.py"
    original, before = edited.read_text(), edited.stat()
    edited.write_text("def replaced_version_of_helper(x):\n    return x + 2\n")
    env = {**os.environ, ENV_VAR: "manifest.before", "SEMCODE_INPROCESS_MODEL": "1"}
    here = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH")) if p)
    crashed = subprocess.run(
        [sys.executable, "-c", CRASH_SAVE, str(root), str(index_dir), "edited.py"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert crashed.returncode == EXIT_CODE, crashed.stdout + crashed.stderr[-2000:]
    edited.write_text(original)
    os.utime(edited, ns=(before.st_atime_ns, before.st_mtime_ns))

    scans = counting_scans(monkeypatch)
    second, stats = start(root, index_dir)
    assert stats is not None
    assert scans == [1]  # the chunk commit moved its table past the seal: the rows were checked
    assert stats.files_indexed == 1  # edited.py, whose size and mtime alone say "unchanged"
    ws = second.workspace
    assert [h.path for h in ws.symbols("original_version_of_helper")][:1] == ["edited.py"]
    assert all(h.symbol != "replaced_version_of_helper" for h in ws.symbols("replaced_version_of_helper"))
    assert ws.store.inconsistent_paths() == set()
    second.close()


def test_a_rebuilt_index_does_not_inherit_the_old_tables_seal(tmp_path: Path) -> None:
    """New tables start again at version 1: the seal leaves with the old tables (it lives among them)."""
    from engine.seal import SEAL_FILE
    from engine.store import LANCE_DIR, ChunkStore

    old = ChunkStore(tmp_path / "idx", dimension=4, fingerprint="f", chunker_version=1)
    assert old.seal() and (tmp_path / "idx" / LANCE_DIR / SEAL_FILE).is_file()
    assert old.sealed_rows(old.manifest()) == {}
    newer = ChunkStore(tmp_path / "idx", dimension=4, fingerprint="f", chunker_version=2)
    assert newer.stale_reason is not None and not newer.seal()  # a stale index is never sealed
    with newer.writer():  # the first writer rebuilds it
        pass
    assert newer.stale_reason is None
    assert not (tmp_path / "idx" / LANCE_DIR / SEAL_FILE).exists()
    assert newer.sealed_rows(newer.manifest()) is None
