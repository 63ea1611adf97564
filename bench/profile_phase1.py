"""Where phase 1 (walk, read, chunk, lexical tier, write, full-text index) spends its time.

    .venv/bin/python bench/profile_phase1.py PATH [--profile OUT.pstats] [--top 40]

From scratch into a temporary index, the model as the product loads it (worker children, vocabulary
in this process). Prints the wall time of opening (model + store) and of phase 1 (``Workspace.index``
with ``embed=False``: chunks + lexical terms + placeholders + full-text index), then, with
``--profile``, the cProfile of phase 1 sorted by cumulative and by own time.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _cpu() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("path")
    ap.add_argument("--profile")
    ap.add_argument("--top", type=int, default=40)
    args = ap.parse_args()

    from engine.config import EngineConfig
    from engine.workspace import Workspace

    print(f"# load average {os.getloadavg()[0]:.2f} at start")
    with tempfile.TemporaryDirectory(prefix="semcode-profile-") as tmp:
        t0 = time.perf_counter()
        cpu0 = _cpu()
        ws = Workspace(Path(args.path), EngineConfig(index_dir=tmp))
        ws.open()
        print(f"open (model + store): {time.perf_counter() - t0:.2f} s wall, CPU {_cpu()[0] - cpu0[0]:.2f} s here")
        profiler = cProfile.Profile() if args.profile else None
        t1 = time.perf_counter()
        cpu1 = _cpu()
        if profiler:
            profiler.enable()
        stats = ws.index(embed=False)
        if profiler:
            profiler.disable()
        own, children = (b - a for a, b in zip(cpu1, _cpu(), strict=True))
        print(
            f"phase 1: {time.perf_counter() - t1:.2f} s wall, CPU {own:.2f} s here + {children:.2f} s in children "
            f"that exited (the chunk worker); {stats.files_indexed} files, {stats.chunks_total} chunks, "
            f"{stats.chunks_pending} pending"
        )
        t2 = time.perf_counter()
        hits = ws.search("parse the request headers", limit=10)
        print(f"first search: {(time.perf_counter() - t2) * 1000:.0f} ms, {len(hits)} hits")
        if profiler:
            profiler.dump_stats(args.profile)
            p = pstats.Stats(args.profile)
            p.sort_stats("cumulative").print_stats(args.top)
            p.sort_stats("tottime").print_stats(args.top)
        ws.embedder.close()
    print(f"# load average {os.getloadavg()[0]:.2f} at end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
