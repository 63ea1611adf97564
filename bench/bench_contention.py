"""Embedding throughput quiet vs with busy-loop processes on the cores, at the index worker's priority.

    .venv/bin/python bench/bench_contention.py [--texts 200] [--busy 2] [--nice 0 10] [--rounds 2]

Each measurement is bench/bench_throughput.py's raw child (``Llama.embed`` over stdlib functions, Q8_0,
2 threads, ``OMP_WAIT_POLICY=PASSIVE`` as the worker sets it, 32 texts a call), run at ``nice`` N, once
with no busy loop of ours and once beside ``--busy`` processes running ``while 1: pass`` at nice 0
(the user's compiler, say). Quiet and busy runs alternate, ``--rounds`` times, so drift in the machine's
own load hits both. With B busy loops on C cores at equal priority a fair scheduler leaves the two
embedding threads 2/(B+2) of the machine: "falls no more than in proportion to the cores taken" means
busy/quiet >= that. At nice 10 (the product's index worker) the busy loops are meant to win.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from bench_throughput import model_file, run_child  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--texts", type=int, default=200)
    ap.add_argument("--busy", type=int, default=2)
    ap.add_argument("--nice", type=int, nargs="+", default=[0, 10])
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    print(f"# load average {os.getloadavg()[0]:.2f} at start ({cores} cores)")
    # The product's order since session 4: one FFD plan per 256-text write batch, calls of whole bins.
    cfg = {"model": model_file("q8_0"), "threads": 2, "n_batch": 512, "order": "ffd", "group": 32}
    env = {"OMP_WAIT_POLICY": "PASSIVE"}
    for nice in args.nice:
        quiet: list[float] = []
        busy: list[float] = []
        for _ in range(args.rounds):
            quiet.append(run_child("embed", {**cfg, "texts": args.texts, "nice": nice}, env)["tokens_per_s"])
            loops = [subprocess.Popen([sys.executable, "-c", "while 1: pass"]) for _ in range(args.busy)]
            try:
                time.sleep(0.5)
                busy.append(run_child("embed", {**cfg, "texts": args.texts, "nice": nice}, env)["tokens_per_s"])
            finally:
                for loop in loops:
                    loop.kill()
                    loop.wait()
        q, b = max(quiet), max(busy)
        fair = 2 / (args.busy + 2) if args.busy else 1.0
        print(
            f"nice {nice:>2}: quiet {q:,.0f} tokens/s, beside {args.busy} busy loops {b:,.0f} tokens/s "
            f"= {b / q:.2f}x (fair share at equal priority {fair:.2f}x); runs quiet {[round(x) for x in quiet]}, "
            f"busy {[round(x) for x in busy]}",
            flush=True,
        )
    print(f"# load average {os.getloadavg()[0]:.2f} at end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
