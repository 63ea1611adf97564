"""What one LanceDB call of a query costs: the synchronous builder against the async table (engine/lance_reads.py).

    python bench/bench_lance_calls.py LANCE_DIR [--reps 40]     # LANCE_DIR: an index's lance directory

Opens the chunk table as the store does (``read_consistency_interval=0``), warms it, then times each call shape
a large index's query makes (vector search with the store's nprobes and refine, full-text search, takes by row
id) through both APIs, alternated, printing wall p50 / p95 and the process's CPU per call. Run it pinned to one
core (``taskset -c 0``) for figures comparable to BENCHMARKS.md, "Lead, session 15".
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

WORDS = ["parse", "request", "config", "error", "token", "stream", "render", "client", "http", "cache"]


def _cpu_ms() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return (usage.ru_utime + usage.ru_stime) * 1e3


def _bench(name: str, call: Callable[[int], Any], reps: int) -> None:
    for i in range(3):
        call(i)
    walls, cpus = [], []
    for i in range(reps):
        t, c = time.perf_counter(), _cpu_ms()
        call(i)
        walls.append((time.perf_counter() - t) * 1e3)
        cpus.append(_cpu_ms() - c)
    print(f"{name:34s} wall p50 {np.median(walls):6.2f} p95 {np.percentile(walls, 95):6.2f}  cpu {np.mean(cpus):6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("lance_dir")
    parser.add_argument("--reps", type=int, default=40)
    args = parser.parse_args()

    import lancedb

    from engine import store
    from engine.lance_reads import full_text_row_ids, nearest_row_ids

    table = lancedb.connect(args.lance_dir, read_consistency_interval=timedelta(0)).open_table(store.CHUNKS)
    rows = table.count_rows()
    nprobes = store.ivf_nprobes(rows)
    rng = np.random.default_rng(0)
    stored = table.search().limit(30).select(["vector"]).to_arrow()["vector"].to_numpy(zero_copy_only=False)
    queries = [np.asarray(v, np.float32) + rng.normal(0, 0.02, len(v)).astype(np.float32) for v in stored]
    row_ids = table.search().select([]).with_row_id(True).limit(rows).to_arrow()["_rowid"].to_numpy()
    takes = [[int(r) for r in rng.choice(row_ids, 260, replace=False)] for _ in range(30)]
    print(f"{rows} rows, nprobes {nprobes}, refine {store.VECTOR_REFINE_FACTOR}")

    def sync_vector(i: int) -> Any:
        query = store.nearest(table, queries[i % 30], 40, nprobes=nprobes)
        return query.select(["_distance"]).with_row_id(True).to_arrow()

    def async_vector(i: int) -> Any:
        return nearest_row_ids(
            table, queries[i % 30], limit=40, nprobes=nprobes, refine_factor=store.VECTOR_REFINE_FACTOR, where=None
        )

    def terms(i: int) -> str:
        return f"{WORDS[i % 10]} {WORDS[(i + 3) % 10]}"

    def sync_text(i: int) -> Any:
        query = table.search(terms(i), query_type="fts", fts_columns=store.FTS_COLUMN).limit(40)
        return query.select(["_score"]).with_row_id(True).to_arrow()

    def async_text(i: int) -> Any:
        return full_text_row_ids(table, terms(i), column=store.FTS_COLUMN, limit=40, where=None)

    for i in range(20):  # the index's partitions into the caches before anything is timed
        sync_vector(i)
    for _ in range(2):
        _bench("vector, synchronous builder", sync_vector, args.reps)
        _bench("vector, async table", async_vector, args.reps)
        _bench("full-text, synchronous builder", sync_text, args.reps)
        _bench("full-text, async table", async_text, args.reps)
    _bench("take 260 vectors", lambda i: table.take_row_ids(takes[i % 30]).select(["vector"]).to_arrow(), args.reps)
    _bench("take 50 texts", lambda i: table.take_row_ids(takes[i % 30][:50]).select(["content"]).to_arrow(), args.reps)


if __name__ == "__main__":
    main()
