"""The store's vector index on a real index (the real model, real LanceDB on disk): its quantised
vectors plus the refine step return what an exact search over every vector returns."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

import engine.store as store_module
from engine.config import EngineConfig
from engine.workspace import Workspace

ENGINE = Path(__file__).resolve().parents[2] / "engine"
# Real code, ~350 chunks: enough rows for the index (vector_index_min_rows=256), a minute to embed.
FILES = ("store.py", "indexer.py", "search.py", "ranking.py", "host.py", "workspace.py")
QUESTIONS = [
    "compact the tables and drop old versions",
    "rebuild the index when the chunker version changes",
    "split a python file into chunks by function",
    "reciprocal rank fusion of dense and lexical results",
    "wait for the write lock held by another process",
    "embed texts in a child process and restart it after a crash",
    "cache vectors by text hash with least recently used eviction",
    "background indexing thread with cancel and status",
    "boost a definition whose name matches the query",
    "unsaved editor buffers searched before they are saved",
    "memory pressure halves the batch size",
    "placeholder vectors embedded by the dense tier",
]


def test_the_vector_index_returns_the_exact_searchs_top_hits(tmp_path: Path, embedder: object) -> None:
    root = tmp_path / "ws"
    (root / "engine").mkdir(parents=True)
    for name in FILES:
        shutil.copy(ENGINE / name, root / "engine" / name)
    ws = Workspace(root, EngineConfig(index_dir=str(tmp_path / "idx"), vector_index_min_rows=256))
    stats = ws.index()
    store = ws.store
    assert stats.chunks_total >= 256 and not stats.chunks_pending
    vector = [i for i in store._chunks.list_indices() if i.columns[0] == "vector"]
    assert [i.index_type for i in vector] == [store_module.VECTOR_INDEX_TYPE]
    found, first = [], 0
    for question in QUESTIONS:
        query = ws.embedder.embed_query(question)
        got = [r["id"] for r in store.vector_search(query, limit=10, content=False)]
        exact_rows = (
            store._chunks.search(np.asarray(query, dtype=np.float32), vector_column_name="vector")
            .distance_type("cosine")
            .bypass_vector_index()
            .limit(10)
            .select(["id"])
            .to_list()
        )
        exact = [r["id"] for r in exact_rows]
        found.append(len(set(got) & set(exact)) / 10)
        first += got[0] == exact[0]
    assert float(np.mean(found)) >= 0.95, found
    assert first >= len(QUESTIONS) - 1
