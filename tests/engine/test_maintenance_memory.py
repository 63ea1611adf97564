"""What the index's maintenance child runs beside: no idle index worker, fresh LanceDB caches after it.

Real model workers, real LanceDB, the real child process (engine/maintenance.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import engine.store as store_module
from engine import maintenance
from engine.config import EngineConfig
from engine.models import load_embedder
from engine.models.worker import WorkerEmbedder
from engine.workspace import Workspace


def test_the_index_worker_is_stopped_while_the_maintenance_child_runs(
    workspace_copy: Path, tmp_path: Path, default_model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "MAINTENANCE_CHILD_MIN_ROWS", 0)  # any size counts as large here
    config = EngineConfig(
        model_path=str(default_model_path), index_dir=str(tmp_path / "index"), threads=1, vector_index_min_rows=1
    )
    embedder = load_embedder(config)
    assert isinstance(embedder, WorkerEmbedder)
    ran: list[tuple[str, int | None, bool]] = []
    real = maintenance.in_child

    def recorded(lance_dir: Path, operation: str, params: dict[str, Any], preempt: Any = None) -> bool:
        done = real(lance_dir, operation, params, preempt)
        ran.append((operation, embedder.pids["index"], done))
        return done

    monkeypatch.setattr(maintenance, "in_child", recorded)
    try:
        ws = Workspace(workspace_copy, config, embedder=embedder).open()
        first_session = ws.store._session
        stats = ws.index()
        assert stats.chunks_embedded == stats.chunks_total > 0  # the index worker embedded them all first
        # Phase 2 rewrote every row the full-text index covered: built anew in a child before the compaction.
        assert {op for op, _, _ in ran} == {"fts", "ivf", "optimize"}
        assert all(pid is None and done for _, pid, done in ran)  # never beside an idle index worker
        # The child rewrote the table and its indexes: the caches of the versions before are dropped.
        assert ws.store._session is not None and ws.store._session is not first_session
        assert ws.store.has_vector_index() and ws.check().ok
        assert ws.search("swap rows and columns of a matrix", limit=3)[0].path == "go/matrix.go"
        assert embedder.embed_documents(["def f(): pass"]).shape == (1, embedder.info.dimension)
        assert embedder.pids["index"] is not None  # the next batch started it again: a start, not a restart
        assert embedder.restarts == 0 and embedder.last_error is None
    finally:
        embedder.close()


def test_a_whole_workspace_run_leaves_no_vectors_in_memory_and_a_save_reuses_its_own(
    workspace_copy: Path, tmp_path: Path, embedder: Any
) -> None:
    # What a run over the whole workspace put in the in-memory LRU is its last write batches' vectors (16 MB
    # of a 179K-chunk server after its first index): emptied at the end of the run, both phases of it.
    ws = Workspace(workspace_copy, EngineConfig(index_dir=str(tmp_path / "index")), embedder=embedder)
    first = ws.index(embed=False)  # the host's shape: phase 1, then the dense tier
    assert first.chunks_pending > 0 and ws.cache.count() == 0
    stats = ws.embed_pending()
    assert stats.chunks_embedded > 0 and not stats.chunks_pending
    assert ws.cache.count() == 0  # before: the vectors of the dense tier's last commits stayed
    edited = "python/checksum.py"
    target = ws.root / edited
    target.write_text(target.read_text() + "\n\ndef zq_saved_helper(value):\n    return value * 41 + 1\n")
    saved = ws.update_files([edited])
    assert saved.files_indexed == 1 and saved.chunks_embedded == 1  # the file's other chunks: from its rows
    assert ws.search("zq_saved_helper", limit=3)[0].symbol == "zq_saved_helper"
    again = ws.index(full=True)  # a full run: every vector from the store's cache, none left in memory
    assert again.chunks_embedded == 0 and again.chunks_cached > 0 and ws.cache.count() == 0
    assert ws.check().ok
