"""The embedding cache's use log (engine/cache_uses.py): real LanceDB, vectors made up (no model needed).

A write that reuses cached vectors records their use in an append-only file instead of rewriting their
rows (vectors included) in the cache table; eviction takes the later of a row's time and its logged use;
maintenance folds the log. Crash scenes: a process killed (``SEMCODE_FAULT_AT``, a real ``os._exit``)
between the cache's merge and the append, inside the fold, or after a partial append leaves the index
whole, and at worst some use marks lost.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from engine.cache_uses import RECORD, TEMP_SUFFIX
from engine.embedding_cache import fold_uses
from engine.faults import EXIT_CODE
from engine.records import Chunk
from engine.store import ChunkStore, FileRecord

ROOT = Path(__file__).resolve().parents[2]
DIMENSION = 8


def open_store(path: Path, **settings: int) -> ChunkStore:
    return ChunkStore(path, dimension=DIMENSION, fingerprint="f", **settings)


def chunks_of(name: str, count: int, salt: str = "") -> list[Chunk]:
    return [Chunk(name, "python", i, i, f"def {name[0]}{i}{salt}(): return {i}") for i in range(count)]


def vectors_for(chunks: list[Chunk], seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {c.hash: rng.normal(size=DIMENSION).astype(np.float32) for c in chunks}


def write(
    store: ChunkStore, name: str, chunks: list[Chunk], vectors: dict[str, np.ndarray], *, new: bool, version: int = 1
) -> None:
    """One file's rows, as an index run writes them: its vectors embedded now (``new``) or taken from the cache."""
    matrix = np.stack([vectors[c.hash] for c in chunks])
    given = {c.hash: vectors[c.hash] for c in chunks}
    store.replace_files(
        [FileRecord(name, version, version, f"h{version}", len(chunks))],
        chunks,
        matrix,
        ["x"] * len(chunks),
        new_vectors=given if new else None,
        used_vectors=None if new else given,
    )


def uses_file(path: Path) -> Path:
    return path / "lance" / "embeddings.uses"


def later_ms() -> int:
    """A millisecond stamp strictly after anything written before this call."""
    time.sleep(0.003)
    return time.time_ns() // 1_000_000


def test_reused_vectors_are_marked_used_without_rewriting_the_cache_table(tmp_path: Path) -> None:
    store = open_store(tmp_path / "idx")
    chunks = chunks_of("a.py", 6)
    vectors = vectors_for(chunks)
    write(store, "a.py", chunks, vectors, new=True)
    stored = store._cache.use_times()
    version = store._embeddings.version
    started = later_ms()
    write(store, "a.py", chunks, vectors, new=False, version=2)  # as index --full takes every vector from the cache
    assert store._embeddings.version == version  # no commit to the 290 MB table (was one merge of full rows)
    times = store._cache.use_times()
    assert set(times) == {c.hash for c in chunks}
    assert all(times[h] >= started > stored[h] for h in times)
    assert uses_file(tmp_path / "idx").stat().st_size == len(chunks) * RECORD.itemsize
    # A new process sees the same last uses (the log is on disk, beside the table).
    assert open_store(tmp_path / "idx")._cache.use_times() == times


def test_eviction_keeps_the_vectors_whose_use_was_logged(tmp_path: Path) -> None:
    store = open_store(tmp_path / "idx")
    chunks = chunks_of("a.py", 10)
    vectors = vectors_for(chunks)
    write(store, "a.py", chunks, vectors, new=True)
    marked = chunks[:5]
    later_ms()
    with store.writer():
        store._cache.put({}, {c.hash: vectors[c.hash] for c in marked})
    store._cache.limit = 6  # 10 rows over a bound of 6: down to int(6 * 0.9) = 5
    with store.writer():
        assert store._cache.evict() == 5
    assert set(store._cache.use_times()) == {c.hash for c in marked}
    # An evicted vector used again (here from memory, as an indexer's in-process cache has it) is stored again.
    again = chunks[9]
    store._cache.limit = 100
    with store.writer():
        store._cache.put({}, {again.hash: vectors[again.hash]})
    assert set(store.cached_vectors([again.hash])) == {again.hash}
    np.testing.assert_allclose(store.cached_vectors([again.hash])[again.hash], vectors[again.hash])


def test_a_vector_found_only_in_the_rows_is_stored_again_when_used(tmp_path: Path) -> None:
    store = open_store(tmp_path / "idx", cache_limit=2)
    chunks = chunks_of("a.py", 4)
    vectors = vectors_for(chunks)
    write(store, "a.py", chunks, vectors, new=True)  # 4 > 2: evicted to 1
    assert store.count_cached() == 1
    store._cache.limit = 100  # the bound raised (a setting): nothing more is evicted
    found = store.cached_vectors(c.hash for c in chunks)  # 3 of them from the chunk rows
    assert set(found) == {c.hash for c in chunks}
    write(store, "a.py", chunks, found, new=False, version=2)
    assert store.count_cached() == 4
    assert set(open_store(tmp_path / "idx")._cache.use_times()) == {c.hash for c in chunks}


def test_maintenance_folds_the_log_to_one_record_per_vector_still_cached(tmp_path: Path) -> None:
    store = open_store(tmp_path / "idx")
    chunks = chunks_of("a.py", 8)
    vectors = vectors_for(chunks)
    write(store, "a.py", chunks, vectors, new=True)
    for version in (2, 3, 4):
        later_ms()
        write(store, "a.py", chunks, vectors, new=False, version=version)
    log = uses_file(tmp_path / "idx")
    assert log.stat().st_size == 3 * len(chunks) * RECORD.itemsize
    times = store._cache.use_times()
    store.optimize()  # the compaction of the cache table folds its log
    assert log.stat().st_size == len(chunks) * RECORD.itemsize
    assert store._cache.use_times() == times
    # Evicted vectors' records go with the next fold; what is left is unchanged.
    store._cache.limit = 4
    with store.writer():
        evicted = store._cache.evict()
    assert evicted == len(chunks) - 3
    kept = store._cache.use_times()
    with store.writer():
        assert fold_uses(store._embeddings) == 3
    assert store._cache.use_times() == kept == {h: times[h] for h in kept}


def test_a_partial_record_left_by_a_crash_is_ignored_and_cut_by_the_next_append(tmp_path: Path) -> None:
    store = open_store(tmp_path / "idx")
    chunks = chunks_of("a.py", 4)
    vectors = vectors_for(chunks)
    write(store, "a.py", chunks, vectors, new=True)
    later_ms()
    write(store, "a.py", chunks[:2], vectors, new=False, version=2)
    log = uses_file(tmp_path / "idx")
    times = store._cache.use_times()
    with open(log, "ab") as out:  # what a kill inside an append may leave: the start of a record
        out.write(b"0123456789abcdef0123")
    assert store._cache.use_times() == times
    started = later_ms()
    write(store, "a.py", chunks, vectors, new=False, version=3)
    assert log.stat().st_size % RECORD.itemsize == 0  # realigned: every record after it reads right
    assert all(t >= started for t in store._cache.use_times().values())


def run_until_fault(index: Path, fault: str, body: str) -> subprocess.CompletedProcess[str]:
    """``body`` in a fresh process over the index at ``index``, killed at ``fault`` (engine/faults.py)."""
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(ROOT / "tests" / "engine")!r})
        from test_cache_uses import *
        store = open_store(Path({str(index)!r}))
        """
    ) + textwrap.dedent(body)
    env = dict(os.environ, SEMCODE_FAULT_AT=fault, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)


def test_a_crash_between_the_cache_merge_and_the_use_log_loses_only_use_marks(tmp_path: Path) -> None:
    index = tmp_path / "idx"
    store = open_store(index)
    old = chunks_of("a.py", 4)
    write(store, "a.py", old, vectors_for(old), new=True)
    before_rows = store.rows("true", columns=["text_hash"], limit=100)
    before_times = store._cache.use_times()
    # Version 2 of the file: two chunks kept (taken from the cache), two new ones (embedded now).
    run = run_until_fault(
        index,
        "uses.before",
        """
        old = chunks_of("a.py", 4)
        new = chunks_of("a.py", 2, salt="v2")
        vectors = vectors_for(old) | vectors_for(new, seed=1)
        chunks = old[:2] + new
        store.replace_files(
            [FileRecord("a.py", 2, 2, "h2", 4)], chunks, np.stack([vectors[c.hash] for c in chunks]), ["x"] * 4,
            new_vectors={c.hash: vectors[c.hash] for c in new},
            used_vectors={c.hash: vectors[c.hash] for c in old[:2]},
        )
        """,
    )
    assert run.returncode == EXIT_CODE, run.stderr
    after = open_store(index)
    assert after.check().ok
    assert after.rows("true", columns=["text_hash"], limit=100) == before_rows  # the rows: the write never happened
    times = after._cache.use_times()
    new = chunks_of("a.py", 2, salt="v2")
    assert {c.hash for c in new} <= set(times)  # the new vectors were stored (the merge committed)
    assert all(times[c.hash] == before_times[c.hash] for c in old)  # the kept ones' use mark is what was lost
    # The next run writes it all: the marks too.
    started = later_ms()
    vectors = vectors_for(old) | vectors_for(new, seed=1)
    found = after.cached_vectors(c.hash for c in old[:2] + new)
    assert set(found) == {c.hash for c in old[:2] + new}
    write(after, "a.py", old[:2] + new, vectors, new=False, version=2)
    assert all(after._cache.use_times()[c.hash] >= started for c in old[:2] + new)
    assert after.check().ok


def test_a_crash_inside_the_fold_leaves_the_old_log_and_the_next_fold_cleans_up(tmp_path: Path) -> None:
    index = tmp_path / "idx"
    store = open_store(index)
    chunks = chunks_of("a.py", 5)
    vectors = vectors_for(chunks)
    write(store, "a.py", chunks, vectors, new=True)
    for version in (2, 3):
        later_ms()
        write(store, "a.py", chunks, vectors, new=False, version=version)
    log = uses_file(index)
    before = log.read_bytes()
    times = store._cache.use_times()
    run = run_until_fault(index, "uses.fold", "store.optimize()\n")
    assert run.returncode == EXIT_CODE, run.stderr
    assert log.read_bytes() == before  # the rename never happened: the old log, whole
    assert log.with_name(log.name + TEMP_SUFFIX).exists()
    after = open_store(index)
    assert after.check().ok
    assert after._cache.use_times() == times
    after.optimize()
    assert not log.with_name(log.name + TEMP_SUFFIX).exists()
    assert log.stat().st_size == len(chunks) * RECORD.itemsize
    assert after._cache.use_times() == times


@pytest.mark.parametrize("fault", ["evict.before", "evict.mid", "evict.after"])
def test_a_crash_inside_an_eviction_leaves_a_usable_cache(tmp_path: Path, fault: str) -> None:
    index = tmp_path / "idx"
    store = open_store(index)
    chunks = chunks_of("a.py", 12)
    vectors = vectors_for(chunks)
    write(store, "a.py", chunks, vectors, new=True)
    later_ms()
    with store.writer():
        store._cache.put({}, {c.hash: vectors[c.hash] for c in chunks[:4]})
    run = run_until_fault(
        index,
        fault,
        """
        import engine.embedding_cache as cache
        cache.DELETE_PART = 2  # several deletes
        store._cache.limit = 5
        with store.writer():
            store._cache.evict()
        """,
    )
    assert run.returncode == EXIT_CODE, run.stderr
    after = open_store(index, cache_limit=5)
    assert after.check().ok
    left = set(after._cache.use_times())
    assert {c.hash for c in chunks[:4]} <= left  # the marked ones are never the victims
    with after.writer():
        after._cache.evict()
    assert set(after._cache.use_times()) == {c.hash for c in chunks[:4]}
    assert set(after.cached_vectors(c.hash for c in chunks)) == {c.hash for c in chunks}  # the rows still hold them
