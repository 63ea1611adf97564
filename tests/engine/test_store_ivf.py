"""The IVF vector index keeps its partitions through compaction (real LanceDB on disk; no model needed)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from lancedb.index import IvfFlat

import engine.store as store_module
from engine.records import Chunk
from engine.store import ChunkStore, FileRecord

DIM = 16
FILES, PER_FILE = 150, 20  # 3,000 rows -> 54 partitions


def _fill(store: ChunkStore, files: int, start: int = 0) -> None:
    rng = np.random.default_rng(start)
    for f in range(start, start + files):
        path = f"pkg/m{f}.py"
        chunks = [Chunk(path, "python", i, i, f"def f{f}_{i}(): pass", symbol=f"f{f}_{i}") for i in range(PER_FILE)]
        vectors = rng.normal(size=(PER_FILE, DIM)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        store.replace_files([FileRecord(path, 1, f, f"h{f}", PER_FILE)], chunks, vectors, ["f"] * PER_FILE)


def _partitions(store: ChunkStore) -> int:
    """IVF partitions a query ranks (all of them: nprobes above any count), over the index and its deltas."""
    query = np.ones(DIM, dtype=np.float32) / np.sqrt(DIM)
    plan = store._chunks.search(query, vector_column_name="vector").limit(10).nprobes(1_000_000).analyze_plan()
    found = re.search(r"partitions_ranked=(\d+)", plan)
    assert found, plan
    return int(found.group(1))


def test_optimize_keeps_the_ivf_partitions(tmp_path: Path) -> None:
    # Built from a partition count, LanceDB's optimize re-partitioned the index to its default partition
    # size: 54 partitions became 1 here (421 became 11 at 178K rows, a scan of every vector per query).
    store = ChunkStore(tmp_path / "idx", dimension=DIM, fingerprint="ivf")
    _fill(store, FILES)
    store.ensure_indexes(vector_index_min_rows=1_000)
    wanted = store_module.ivf_partitions(FILES * PER_FILE)
    assert _partitions(store) >= wanted * 0.8
    store.optimize()
    assert _partitions(store) >= wanted * 0.8
    _fill(store, 5, start=FILES)  # new rows folded in by the next optimize
    store.optimize()
    assert _partitions(store) >= wanted * 0.8
    assert len(store.vector_search(np.ones(DIM, dtype=np.float32), limit=10)) == 10


def test_an_index_sized_by_partition_count_is_built_again(tmp_path: Path) -> None:
    # What an older semcode built (and what its first optimize collapsed): replaced at the next
    # ensure_indexes by one sized by rows per partition.
    store = ChunkStore(tmp_path / "idx", dimension=DIM, fingerprint="ivf-old")
    _fill(store, FILES)
    store._chunks.create_index("vector", config=IvfFlat(distance_type="cosine", num_partitions=54))
    store.optimize()
    assert _partitions(store) < 10
    store.ensure_indexes(vector_index_min_rows=1_000)
    details = [idx.index_details for idx in store._chunks.list_indices() if idx.columns[0] == "vector"]
    assert len(details) == 1 and store_module.ivf_sized(details[0])
    assert _partitions(store) >= 54 * 0.8
    store.ensure_indexes(vector_index_min_rows=1_000)  # built once: the new index is kept
    assert _partitions(store) >= 54 * 0.8


def test_the_delta_segments_of_the_vector_index_stay_few(tmp_path: Path) -> None:
    # Every optimize that folds new rows in adds a segment, and a query searches all of them.
    store = ChunkStore(tmp_path / "idx", dimension=DIM, fingerprint="ivf-deltas")
    _fill(store, FILES)
    store.ensure_indexes(vector_index_min_rows=1_000)
    for k in range(store_module.IVF_MAX_SEGMENTS + 1):
        _fill(store, 1, start=FILES + k)
        store.optimize()
    assert store._ivf_segments("vector_idx") > store_module.IVF_MAX_SEGMENTS
    store.ensure_indexes(vector_index_min_rows=1_000)
    assert store._ivf_segments("vector_idx") == 1
    assert store.count_chunks() == (FILES + store_module.IVF_MAX_SEGMENTS + 1) * PER_FILE
    assert len(store.vector_search(np.ones(DIM, dtype=np.float32), limit=10)) == 10


def test_a_vector_index_of_another_type_is_built_again(tmp_path: Path) -> None:
    # Older semcode built IVF_FLAT (every float32 vector in the index: 274 MB at 178K rows, more than
    # the index cache holds); the next ensure_indexes replaces it by the store's own type, once.
    store = ChunkStore(tmp_path / "idx", dimension=DIM, fingerprint="ivf-type")
    _fill(store, FILES)
    rows = FILES * PER_FILE
    old = IvfFlat(distance_type="cosine", target_partition_size=store_module.ivf_partition_rows(rows))
    store._chunks.create_index("vector", config=old)
    assert [i.index_type for i in store._chunks.list_indices() if i.columns[0] == "vector"] == ["IvfFlat"]
    store.ensure_indexes(vector_index_min_rows=1_000)
    vector = [i for i in store._chunks.list_indices() if i.columns[0] == "vector"]
    assert [i.index_type for i in vector] == [store_module.VECTOR_INDEX_TYPE]
    assert store_module.ivf_current(vector[0])
    assert _partitions(store) >= store_module.ivf_partitions(rows) * 0.8
    assert len(store.vector_search(np.ones(DIM, dtype=np.float32), limit=10)) == 10
