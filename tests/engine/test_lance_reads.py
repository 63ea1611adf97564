"""A query's searches through LanceDB's async table equal its synchronous calls (real LanceDB on disk)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from engine import store as store_module
from engine.lance_reads import full_text_row_ids, nearest_row_ids
from engine.records import Chunk
from engine.store import ChunkStore, FileRecord

DIM = 16
FILES, PER_FILE = 150, 20  # 3,000 rows: an IVF index of 54 partitions


def _indexed_store(tmp_path: Path) -> ChunkStore:
    store = ChunkStore(tmp_path / "idx", dimension=DIM, fingerprint="async-reads")
    rng = np.random.default_rng(7)
    for f in range(FILES):
        path = f"{'src' if f % 2 else 'lib'}/m{f}.py"
        chunks = [
            Chunk(path, "python", i, i, f"def parse_{f}_{i}(): return render{i % 7}()", symbol=f"parse_{f}_{i}")
            for i in range(PER_FILE)
        ]
        vectors = rng.normal(size=(PER_FILE, DIM)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        lexes = [f"parse file{f} render{i % 7}" + " render" * (i % 3) for i in range(PER_FILE)]
        store.replace_files([FileRecord(path, 1, f, f"h{f}", PER_FILE)], chunks, vectors, lexes)
    store.ensure_indexes(vector_index_min_rows=1_000)
    assert store.has_vector_index()
    return store


def test_async_searches_equal_the_synchronous_ones(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = _indexed_store(tmp_path)
    rows = store.count_chunks()
    assert store._names.build_now() is store.name_table()  # searches without texts read their rows from it
    rng = np.random.default_rng(1)
    caplog.set_level(logging.DEBUG, logger="engine.lance_reads")
    for where in (None, "path LIKE 'src/%'"):
        for _ in range(5):
            query = rng.normal(size=DIM).astype(np.float32)
            ours = nearest_row_ids(
                store._chunks,
                query,
                limit=40,
                nprobes=store_module.ivf_nprobes(rows),
                refine_factor=store_module.VECTOR_REFINE_FACTOR,
                where=where,
            )
            theirs = store_module.nearest(store._chunks, query, 40, nprobes=store_module.ivf_nprobes(rows))
            if where:
                theirs = theirs.where(where, prefilter=True)
            theirs_table = theirs.select(["_distance"]).with_row_id(True).to_arrow()
            assert len(ours) == 40
            assert ours["_rowid"].to_pylist() == theirs_table["_rowid"].to_pylist()
            assert np.allclose(ours["_distance"].to_numpy(), theirs_table["_distance"].to_numpy())
            # and the store's search without texts answers with these rows, in this order
            hits = store.vector_search(query, limit=40, where=where, content=False)
            assert [h["_rowid"] for h in hits] == ours["_rowid"].to_pylist()
        for terms in ("parse render3", "render5", "render file7"):
            ours = full_text_row_ids(store._chunks, terms, column=store_module.FTS_COLUMN, limit=40, where=where)
            query = store._chunks.search(terms, query_type="fts", fts_columns=store_module.FTS_COLUMN).limit(40)
            if where:
                query = query.where(where, prefilter=True)
            theirs_table = query.select(["_score"]).with_row_id(True).to_arrow()
            assert len(ours) > 0
            assert ours["_rowid"].to_pylist() == theirs_table["_rowid"].to_pylist()
            assert np.allclose(ours["_score"].to_numpy(), theirs_table["_score"].to_numpy())
            if where:
                paths = store._chunks.take_row_ids(ours["_rowid"].to_pylist()).select(["path"]).to_arrow()
                assert all(p.startswith("src/") for p in paths["path"].to_pylist())
    assert not [r for r in caplog.records if "failed" in r.getMessage()]  # the async path answered every search
