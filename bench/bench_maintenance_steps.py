"""The index maintenance child's work step by step, in this process: each step's peak RSS (VmHWM reset per step).

Usage (heavy on a 100K+ row index; hold the shared lock; run it on a copy, it rewrites the tables):
    LANCE_IO_THREADS=2 python bench/bench_maintenance_steps.py LANCE_DIR STEPS

LANCE_DIR is an index's ``lance`` directory; STEPS a comma-separated list of
``opt:<table>`` (LanceDB ``optimize`` of chunks / files / embeddings), ``drop:<column>`` (drop that column's
index), ``ivf`` or ``ivf:<sample_rate>`` (the store's IVF_SQ built anew), ``fts`` (the full-text index built
anew) and ``trim`` (``malloc_trim``). Run the steps of one child in one invocation, a fresh child's in another.
A state to start from: ``SEMCODE_FAULT_AT=optimize.before semcode index WS --full`` stops a run where its final
maintenance would begin (BENCHMARKS.md, "indexrss7 (session 7)"). Memory figures only: one JSON line a step.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.memory import prepare_native_memory, trim_malloc  # noqa: E402

prepare_native_memory()  # Arrow on the system allocator, as in the child


def kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) // 1024
    return 0


def main() -> int:
    from lancedb.index import IvfSq

    from engine import store

    db = store.connect(Path(sys.argv[1]))
    env = {k: v for k, v in os.environ.items() if k.startswith(("LANCE", "ARROW", "MALLOC"))}
    print(json.dumps({"opened_mb": kb("VmRSS"), "env": env}), flush=True)
    for step in sys.argv[2].split(","):
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
        before, started = kb("VmRSS"), time.perf_counter()
        op, _, arg = step.partition(":")
        chunks = db.open_table(store.CHUNKS)
        if op == "opt":
            db.open_table(arg).optimize(cleanup_older_than=timedelta(minutes=5))
        elif op == "drop":
            chunks.drop_index(f"{arg}_idx")
        elif op == "ivf":
            target = store.ivf_partition_rows(chunks.count_rows())
            extra = {"sample_rate": int(arg)} if arg else {}
            chunks.create_index(
                "vector", replace=True, config=IvfSq(distance_type="cosine", target_partition_size=target, **extra)
            )
        elif op == "fts":
            chunks.create_index(store.FTS_COLUMN, replace=True, config=store.fts_config())
        elif op == "trim":
            trim_malloc()
        else:
            raise SystemExit(f"unknown step {step!r}")
        row = {"step": step, "rss_before_mb": before, "peak_mb": kb("VmHWM"), "rss_after_mb": kb("VmRSS")}
        print(json.dumps(row | {"s": round(time.perf_counter() - started, 1)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
