"""Branch switches cost nothing twice: real git, real model, real LanceDB.

Switching A -> B deletes the A-only chunk rows; switching back must find their vectors in the
persistent embedding cache (engine/embedding_cache.py) and embed nothing. The cache is bounded: with
a tiny bound the least recently used vectors go and the ones the last run used stay.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from branch_repo import checkout, git, make_repo

from engine.config import EngineConfig
from engine.metrics import metrics
from engine.records import Chunk
from engine.store import ChunkStore, FileRecord
from engine.workspace import Workspace


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


def fresh(repo: Path, index_dir: Path, embedder, **settings) -> Workspace:
    """A new Workspace, as a new CLI process gets: nothing in memory, only what the index holds."""
    return Workspace(repo, EngineConfig(index_dir=str(index_dir), **settings), embedder=embedder)


def row_hashes(ws: Workspace) -> set[str]:
    return {r["text_hash"] for r in ws.store.rows("true", columns=["text_hash"], limit=100_000)}


def cache_rows(ws: Workspace) -> dict[str, int]:
    """text hash -> last use (ms) of every vector in the persistent cache (its row's time or its logged use)."""
    return ws.store._cache.use_times()


def counter(name: str) -> float:
    return sum(s["value"] for s in metrics().snapshot().get(name, []))


def test_switching_back_and_forth_embeds_only_what_was_never_seen(repo: Path, tmp_path: Path, embedder) -> None:
    index_dir = tmp_path / "index"
    first = fresh(repo, index_dir, embedder)
    on_a = first.index()
    assert on_a.chunks_embedded > 0 and on_a.chunks_pending == 0
    hashes_a = row_hashes(first)

    checkout(repo, "b")
    second = fresh(repo, index_dir, embedder)
    on_b = second.index()
    hashes_b = row_hashes(second)
    # Indexed: shipping.py, strings.js, checksum.py; deleted: matrix.go, invoices.py.
    assert on_b.files_indexed == 3 and on_b.files_deleted == 2
    assert on_b.chunks_embedded == len(hashes_b - hashes_a) > 0  # only B's new texts
    assert "python/invoices.py" not in second.store.manifest()
    assert not (hashes_a - hashes_b) & row_hashes(second)  # A-only rows are gone from the chunk table

    checkout(repo, "a")
    embedded_before, hits_before = counter("semcode_embeddings_total"), counter("semcode_embedding_cache_hits_total")
    third = fresh(repo, index_dir, embedder)
    back = third.index()
    assert back.files_indexed == 4 and back.files_deleted == 1  # matrix.go is back, shipping.py gone
    assert back.chunks_embedded == 0  # every A-only vector came back from the persistent cache
    assert back.chunks_cached >= len(hashes_a - hashes_b) > 0
    assert row_hashes(third) == hashes_a
    assert third.check().ok
    # The process's metrics say the same: nothing sent to the model, every chunk served from the cache.
    assert counter("semcode_embeddings_total") - embedded_before == 0
    assert counter("semcode_embedding_cache_hits_total") - hits_before == back.chunks_cached

    # git stash / stash pop: an edit embedded once, then neither leg embeds anything.
    invoices = repo / "python" / "invoices.py"
    invoices.write_text(invoices.read_text() + '\n\ndef credit_note(number: str) -> str:\n    return "CN-" + number\n')
    edited = fresh(repo, index_dir, embedder).index()
    assert edited.chunks_embedded >= 1
    git(repo, "stash", "-q")
    assert fresh(repo, index_dir, embedder).index().chunks_embedded == 0
    git(repo, "stash", "pop", "-q")
    popped = fresh(repo, index_dir, embedder)
    assert popped.index().chunks_embedded == 0
    assert popped.check().ok


def test_a_tiny_cache_keeps_the_most_recently_used_vectors(repo: Path, tmp_path: Path, embedder) -> None:
    index_dir = tmp_path / "index"
    first = fresh(repo, index_dir, embedder)
    first.index()
    hashes_a = row_hashes(first)
    before_b = cache_rows(first)
    assert set(before_b) == hashes_a  # the default bound holds everything

    # What the B run will use: the rows of the files B changes (learned from a scratch index of B).
    checkout(repo, "b")
    scratch = fresh(repo, tmp_path / "scratch", embedder)
    scratch.index()
    changed = ("python/shipping.py", "web/strings.js", "python/checksum.py")
    used_b = {
        r["text_hash"]
        for r in scratch.store.rows("true", columns=["text_hash", "path"], limit=10_000)
        if r["path"] in changed
    }
    # A bound that holds B's vectors (after eviction to 90%) but not everything: the oldest must go.
    limit = int((len(used_b) + 1) / 0.9) + 1
    assert limit < len(hashes_a | used_b)
    started_ms = time.time_ns() // 1_000_000
    second = fresh(repo, index_dir, embedder, embedding_cache_vectors=limit)
    evictions_before = counter("semcode_embedding_cache_evictions_total")
    on_b = second.index()
    after_b = cache_rows(second)
    assert len(after_b) <= limit
    assert used_b <= set(after_b)  # everything the last run used is kept
    assert all(after_b[h] >= started_ms for h in used_b)
    evicted = set(before_b) - set(after_b)
    assert evicted
    evicted_count = counter("semcode_embedding_cache_evictions_total") - evictions_before
    assert evicted_count == len(before_b) + on_b.chunks_embedded - len(after_b)
    # Least recently used first: nothing kept from before the run is older than anything evicted.
    kept_old = set(after_b) - used_b
    assert all(after_b[h] >= max(before_b[e] for e in evicted) for h in kept_old)
    assert second.check().ok

    # Back to A: exactly the A-only vectors that were evicted (and are in no row) are embedded again.
    checkout(repo, "a")
    lost = hashes_a - set(after_b) - row_hashes(second)
    back = fresh(repo, index_dir, embedder, embedding_cache_vectors=limit).index()
    assert back.chunks_embedded == len(lost) > 0
    assert len(cache_rows(second)) <= limit


def test_an_evicted_vector_still_comes_from_the_rows_of_an_unchanged_file(tmp_path: Path) -> None:
    dimension = 8
    store = ChunkStore(tmp_path / "idx", dimension=dimension, fingerprint="f", cache_limit=2)
    rng = np.random.default_rng(0)
    chunks = [Chunk("a.py", "python", i, i, f"def f{i}(): return {i}") for i in range(4)]
    vectors = rng.normal(size=(4, dimension)).astype(np.float32)
    store.replace_files(
        [FileRecord("a.py", 1, 1, "h", 4)],
        chunks,
        vectors,
        ["x"] * 4,
        new_vectors={c.hash: v for c, v in zip(chunks, vectors, strict=True)},
    )
    assert store.count_cached() == 1  # 4 > 2: evicted down to 90% of the bound
    found = store.cached_vectors(c.hash for c in chunks)
    assert set(found) == {c.hash for c in chunks}
    for chunk, vector in zip(chunks, vectors, strict=True):
        np.testing.assert_allclose(found[chunk.hash], vector)


def test_check_finds_and_repair_drops_a_damaged_cached_vector(tmp_path: Path) -> None:
    dimension = 8
    store = ChunkStore(tmp_path / "idx", dimension=dimension, fingerprint="f")
    with store.writer():
        store._cache_vectors({"good": np.ones(dimension, np.float32), "inf": np.full(dimension, np.inf, np.float32)})
        store._cache_vectors({"zero": np.zeros(dimension, np.float32)})
    report = store.check()
    assert not report.ok and report.bad_cached_vectors == ["inf", "zero"]
    assert store.check(repair=True).repaired
    assert store.check().ok and set(store.cached_vectors(["good", "inf", "zero"])) == {"good"}


def test_an_older_cache_table_gets_its_use_times_on_the_next_write(tmp_path: Path) -> None:
    import lancedb
    import pyarrow as pa

    dimension = 4
    path = tmp_path / "idx"
    ChunkStore(path, dimension=dimension, fingerprint="f")  # creates meta.json and the tables
    db = lancedb.connect(str(path / "lance"))
    db.drop_table("embeddings")
    old = pa.schema([pa.field("text_hash", pa.string()), pa.field("vector", pa.list_(pa.float32(), dimension))])
    table = db.create_table("embeddings", schema=old)
    table.add(pa.table({"text_hash": ["old"], "vector": [[1.0, 2.0, 3.0, 4.0]]}, schema=old))
    store = ChunkStore(path, dimension=dimension, fingerprint="f")
    assert set(store.cached_vectors(["old"])) == {"old"}  # readable before any migration
    with store.writer():
        store._cache_vectors({"new": np.ones(dimension, np.float32)})
    rows = {r["text_hash"]: r["last_used"] for r in store._embeddings.to_arrow().to_pylist()}
    assert rows["old"] == 0 and rows["new"] > 0


def test_the_cache_bound_is_a_setting() -> None:
    from engine.errors import ConfigError

    assert EngineConfig.from_dict({"embeddingCacheVectors": 5000}).embedding_cache_vectors == 5000
    with pytest.raises(ConfigError, match="embedding_cache_vectors"):
        EngineConfig.from_dict({"embeddingCacheVectors": 0})
