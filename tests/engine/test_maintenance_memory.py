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
