"""An index-only run (``semcode index``) keeps no idle query worker: real model workers, real LanceDB."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from engine.config import EngineConfig
from engine.host import IndexHost
from engine.models import load_embedder
from engine.models.worker import WorkerEmbedder
from engine.records import IndexProgress
from engine.workspace import Workspace


def test_an_index_only_run_stops_the_query_worker_until_a_query(
    workspace_copy: Path, tmp_path: Path, default_model_path: Path
) -> None:
    config = EngineConfig(model_path=str(default_model_path), index_dir=str(tmp_path / "index"), threads=1)
    embedder = load_embedder(config)
    assert isinstance(embedder, WorkerEmbedder)
    try:
        assert embedder.pids["query"] is not None  # started with the embedder: a bad model fails there
        ws = Workspace(workspace_copy, config, embedder=embedder)
        seen: list[int | None] = []

        def progress(_p: IndexProgress) -> None:
            seen.append(embedder.pids["query"])

        stats = IndexHost(ws).index(progress=progress, queries=False)
        assert stats.chunks_embedded == stats.chunks_total > 0  # the index worker embedded everything
        assert seen and all(pid is None for pid in seen)
        assert embedder.pids["query"] is None
        assert ws.store._names._table is None and not ws.store._names._building  # no name table built after it

        hits = ws.search("retry an HTTP request with exponential backoff", limit=2)
        assert hits[0].path == "python/http_retry.py"
        assert embedder.pids["query"] is not None  # the query brought it back, as a start, not a restart
        assert embedder.restarts == 0 and embedder.last_error is None
    finally:
        embedder.close()


def test_a_search_after_a_host_index_keeps_its_query_worker(
    workspace_copy: Path, tmp_path: Path, default_model_path: Path
) -> None:
    config = EngineConfig(model_path=str(default_model_path), index_dir=str(tmp_path / "index"), threads=1)
    embedder = load_embedder(config)
    try:
        ws = Workspace(workspace_copy, config, embedder=embedder)
        query_pid = embedder.pids["query"]
        IndexHost(ws).index()  # the default: a server's or `semcode search`'s index, queries follow
        assert embedder.pids["query"] == query_pid is not None
    finally:
        embedder.close()


def test_the_index_command_stops_the_query_worker(
    workspace_copy: Path, tmp_path: Path, default_model_path: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "semcode", "-v", "index", str(workspace_copy), "--index-dir", str(tmp_path / "index")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "embedding query worker stopped until it is needed" in done.stderr
    assert "embedding index worker started" in done.stderr
