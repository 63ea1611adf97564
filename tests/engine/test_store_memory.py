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


def test_whole_table_scans_in_batches_agree_with_reads_by_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # path_rows() of every path and the dense tier's pending_paths read the table batch by batch (a
    # whole read of 178K rows held +90-130 MB at its peak); batches smaller than one file's rows here.
    monkeypatch.setattr(store_module, "SCAN_BATCH_ROWS", 7)
    store = ChunkStore(tmp_path / "idx", dimension=DIM, fingerprint="scans")
    rng = np.random.default_rng(2)
    for f in range(12):
        path = f"pkg/m{f}.py"
        n = 5 + f  # 5..16 rows a file
        chunks = [Chunk(path, "python", i * 3, i * 3 + 2, f"def g{f}_{i}(): 1", symbol=f"g{f}_{i}") for i in range(n)]
        # Every other row of the odd files still waits for its vector (a placeholder, phase 1).
        tiers = [store_module.TIER_PLACEHOLDER if f % 2 and i % 2 else store_module.TIER_MODEL for i in range(n)]
        vectors = rng.normal(size=(n, DIM)).astype(np.float32)
        store.replace_files([FileRecord(path, 1, f, f"h{f}", n)], chunks, vectors, ["g"] * n, tiers=tiers)
    paths = [f"pkg/m{f}.py" for f in range(12)]
    assert store.path_rows() == store.path_rows(paths)
    assert {p: r.count for p, r in store.path_rows().items()} == {f"pkg/m{f}.py": 5 + f for f in range(12)}
    pending = store.pending_paths()
    assert pending == {f"pkg/m{f}.py": (5 + f) // 2 for f in range(1, 12, 2)}
    assert sum(pending.values()) == store.pending_count()
    ids = store.pending_ids(["pkg/m3.py", "pkg/m1.py"])
    rows = {r["id"]: r for r in store.rows("tier = 0", columns=["id", "path", "start_line"])}
    want = [("pkg/m1.py", line) for line in (3, 9, 15)] + [("pkg/m3.py", line) for line in (3, 9, 15, 21)]
    assert [(rows[i]["path"], rows[i]["start_line"]) for i in ids] == want
