"""LanceDB's caches stay within the store's bounds (real LanceDB on disk; vectors need no model here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import engine.store as store_module
from engine.records import Chunk
from engine.store import ChunkStore, FileRecord

DIM = 16
NOISE = 1.0  # clusters that overlap, as real embeddings do: neighbours spread over many partitions


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


def test_vector_index_recall_holds_as_the_table_grows(tmp_path: Path) -> None:
    # 40,000 clustered vectors -> 200 IVF partitions. Probing a fixed 20 of them found 0.94 of the
    # exact top 10 here; the probe count grows with the table (a fifth of the partitions).
    rng = np.random.default_rng(3)
    rows, files = 40_000, 200
    centres = rng.normal(size=(400, DIM)).astype(np.float32)
    vectors = centres[rng.integers(0, 400, rows)] + NOISE * rng.normal(size=(rows, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    store = ChunkStore(tmp_path / "idx", dimension=DIM, fingerprint="recall")
    per_file = rows // files
    records, chunks = [], []
    for f in range(files):
        path = f"m{f}.py"
        records.append(FileRecord(path, 1, f, f"h{f}", per_file))
        chunks += [Chunk(path, "python", i, i, f"x{f}_{i}") for i in range(per_file)]
    store.replace_files(records, chunks, vectors, ["x"] * rows)
    store.ensure_indexes(vector_index_min_rows=10_000)
    assert store.has_vector_index()
    ids = store_module.chunk_id
    row_ids = [ids(c, i % per_file) for i, c in enumerate(chunks)]
    found = []
    for q in vectors[rng.choice(rows, 40, replace=False)] + 0.2 * rng.normal(size=(40, DIM)).astype(np.float32):
        exact = {row_ids[i] for i in np.argsort(-(vectors @ q))[:10]}
        got = {hit["id"] for hit in store.vector_search(q, limit=10)}
        found.append(len(exact & got) / 10)
    assert np.mean(found) >= 0.95
