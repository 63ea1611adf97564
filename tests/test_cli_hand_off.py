"""`semcode index` hands a large index's final maintenance to a fresh process (a real exec): the summary
first, then the steps in children under the same write lock; crash-safe at a step boundary."""

from __future__ import annotations

import fcntl
import json
import subprocess
import sys
from pathlib import Path

from engine.config import EngineConfig
from engine.workspace import Workspace

# The CLI with this small workspace treated as a large index (children, stepped maintenance, an IVF index).
CLI = """
import dataclasses, sys
import engine.store as store
import semcode.cli as cli
store.MAINTENANCE_CHILD_MIN_ROWS = 0
config = cli._config
cli._config = lambda args: dataclasses.replace(config(args), vector_index_min_rows=1)
sys.exit(cli.main(sys.argv[1:]))
"""


def semcode(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-c", CLI, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def lock_is_free(index_dir: Path) -> bool:
    (lock,) = index_dir.glob("*/*/write.lock")
    with open(lock, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
        return True


def test_index_full_hands_its_maintenance_off_and_the_index_is_complete(workspace_copy: Path, tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    args = ["-v", "index", str(workspace_copy), "--json", "--index-dir", str(index_dir)]
    first = semcode(*args)
    assert first.returncode == 0, first.stderr
    assert "semcode maintenance: index maintenance (" in first.stderr  # the exec'd process ran the steps
    chunks = json.loads(first.stdout)["chunks_total"]

    again = semcode(*args, "--full")
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)  # one JSON document, printed before the hand-off
    assert summary["chunks_total"] == chunks and summary["chunks_cached"] == chunks
    assert "index maintenance (fts, ivf, optimize, optimize) done" in again.stderr
    assert lock_is_free(index_dir)
    assert list(index_dir.glob("*/*/lance/semcode-consistent.json"))  # sealed by the chain, after its steps

    ws = Workspace(workspace_copy, EngineConfig(index_dir=str(index_dir))).open()
    assert ws.store.sealed_rows(ws.store.manifest()) is not None  # the next start reads no chunk row
    table = ws.store._chunks
    for name in ("lex_idx", "vector_idx"):  # built anew by the handed-off steps, then only remapped
        index = table.index_stats(name)
        assert index is not None and index.num_unindexed_rows == 0 and index.num_indexed_rows == chunks
        assert index.num_indices == 1
    assert table.stats()["fragment_stats"]["num_fragments"] == 1
    assert ws.check().ok and ws.store.count_chunks() == chunks
    assert ws.search("retry an HTTP request with exponential backoff", limit=2)[0].path == "python/http_retry.py"


def test_a_crash_in_a_handed_off_step_leaves_a_complete_index(workspace_copy: Path, tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    args = ["index", str(workspace_copy), "--json", "--index-dir", str(index_dir)]
    assert semcode(*args).returncode == 0
    # Killed where the chunk table is compacted and the small tables are not: the runner dies there too.
    crashed = semcode(*args, "--full", env={"SEMCODE_FAULT_AT": "optimize.after"})
    assert crashed.returncode == 137, crashed.stderr
    assert json.loads(crashed.stdout)["chunks_total"] > 0  # reported before the hand-off
    assert lock_is_free(index_dir)
    ws = Workspace(workspace_copy, EngineConfig(index_dir=str(index_dir))).open()
    assert ws.check().ok
    assert ws.search("retry an HTTP request with exponential backoff", limit=2)[0].path == "python/http_retry.py"
    assert semcode(*args).returncode == 0  # and the next run writes as usual
