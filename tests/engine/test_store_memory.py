"""LanceDB's caches stay within the store's bounds (real LanceDB on disk; vectors need no model here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import engine.store as store_module
from engine.records import Chunk
from engine.store import ChunkStore, FileRecord

DIM = 16


def _fill(store: ChunkStore, files: int, per_file: int = 20) -> None:
    rng = np.random.default_rng(1)
    for f in range(files):
        path = f"pkg/m{f}.py"
        chunks = [
            Chunk(
                path, "python", i * 4, i * 4 + 3, f"def f{f}_{i}(x):\n    return parse_{i}(x) + {f}", symbol=f"f{f}_{i}"
            )
            for i in range(per_file)
        ]
        vectors = rng.normal(size=(per_file, DIM)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        lexical = [f"f{f}_{i} parse_{i} return" for i in range(per_file)]
        store.replace_files([FileRecord(path, 1, f, f"h{f}", per_file)], chunks, vectors, lexical)


def test_index_and_metadata_caches_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Bounds far below what this workload caches with LanceDB's defaults (6 GB / 1 GB): the session
    # must hold them, across writes, compaction, the full-text and vector indexes, and queries.
    monkeypatch.setattr(store_module, "INDEX_CACHE_BYTES", 256 << 10)
    monkeypatch.setattr(store_module, "METADATA_CACHE_BYTES", 256 << 10)
    store = ChunkStore(tmp_path / "idx", dimension=DIM, fingerprint="bounded")
    _fill(store, 40)
    store.ensure_indexes(vector_index_min_rows=256)
    store.optimize()
    assert store.has_vector_index()
    query = np.ones(DIM, dtype=np.float32) / np.sqrt(DIM)
    for _ in range(5):
        assert store.vector_search(query, limit=10)
        assert store.text_search("parse_3", limit=10)
    assert store.count_chunks() == 800
    session = store._session
    assert session is not None
    assert session.size_bytes <= (256 << 10) * 2
