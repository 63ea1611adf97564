"""A save goes first (issue 11): it stops the periodic compaction's maintenance child instead of waiting
for it (one save waited 15.6 s behind it at 179K chunks), and the compaction runs again later.

Real model through llama.cpp, real LanceDB on disk, the real maintenance child for the compaction that
completes; the one that is stopped is a child that would sleep for an hour (a compaction too long for
any save to wait out), so the save can only land if it stopped it.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

import engine.host as host_module
import engine.store as store_module
from engine import maintenance
from engine.config import EngineConfig
from engine.host import IndexHost
from engine.workspace import Workspace

EDITED = "python/checksum.py"
GUARD_S = 120.0  # a hang guard, not a timing assertion: without the stop the save would wait an hour


def _save(host: IndexHost, root: Path, name: str) -> int:
    target = root / EDITED
    target.write_text(target.read_text() + f"\n\ndef {name}(value):\n    return value * 43 + 1\n")
    return host.update_files([str(target)]).files_indexed


@pytest.mark.parametrize("path", ["server", "direct"])
def test_a_save_during_the_periodic_compaction_stops_it_and_is_searchable(
    path: str, workspace_copy: Path, tmp_path: Path, embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``server``: the save queued on the host's write thread (``submit_update``, as the language server
    saves); ``direct``: ``update_files`` called from another thread (as the MCP server's tool does)."""
    monkeypatch.setattr(store_module, "MAINTENANCE_CHILD_MIN_ROWS", 0)  # any size counts as large here
    monkeypatch.setattr(host_module, "COMPACT_QUIET_S", 0.0)  # compact right after the save that made it due
    started = tmp_path / "maintenance-child-started"
    real_command = maintenance.child_command

    def endless(lance_dir: Path, operation: str, params: dict[str, object]) -> list[str]:
        return [sys.executable, "-c", f"import pathlib, time; pathlib.Path({str(started)!r}).touch(); time.sleep(3600)"]

    host = IndexHost(Workspace(workspace_copy, EngineConfig(index_dir=str(tmp_path / "index")), embedder=embedder))
    try:
        stats = host.start().result(timeout=300)
        assert stats is not None and stats.files_indexed > 3
        store = host.workspace.store
        monkeypatch.setattr(maintenance, "child_command", endless)
        store._writes = store_module.COMPACT_EVERY_WRITES - 1  # the next write makes the compaction due
        assert _save(host, workspace_copy, "zq_first_save_helper") == 1
        assert store.compaction_due
        deadline = time.monotonic() + GUARD_S
        while not started.exists():  # the compaction's child runs, holding the write lock
            assert time.monotonic() < deadline, "the compaction never started"
            time.sleep(0.02)
        assert host._write.locked()

        monkeypatch.setattr(host_module, "COMPACT_QUIET_S", 3600.0)  # no new compaction within this test
        done: list[int] = []
        if path == "server":
            target = workspace_copy / EDITED
            target.write_text(target.read_text() + "\n\ndef zq_second_save_helper(value):\n    return value - 43\n")
            done.append(host.submit_update([str(target)]).result(GUARD_S).files_indexed)
        else:
            saving = threading.Thread(target=lambda: done.append(_save(host, workspace_copy, "zq_second_save_helper")))
            saving.start()
            saving.join(GUARD_S)
        assert done == [1], "the save waited behind the compaction"
        assert [h.path for h in host.workspace.symbols("zq_second_save_helper")][:1] == [EDITED]
        assert host.workspace.search("zq_second_save_helper", limit=3)[0].path == EDITED
        assert host._preemptions == 1 and store.compaction_due  # stopped, still due

        # Once saves stop it runs again, to its end, in the real child.
        monkeypatch.setattr(maintenance, "child_command", real_command)
        host._compact()
        assert host._preemptions == 0 and not store.compaction_due
        assert host.workspace.check().ok
        assert [h.path for h in host.workspace.symbols("zq_second_save_helper")][:1] == [EDITED]
    finally:
        host.close()
        host.join(10)
