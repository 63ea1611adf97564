"""Index a folder from scratch in a child process: wall time, chunks, chunks/s and peak RSS.

    .venv/bin/python bench/bench_index.py [PATH] [--threads N]

The index goes to a temporary directory (the user's index is not touched); the model is converted
beforehand so the figure is indexing alone.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", nargs="?", default=str(ROOT))
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    semcode = [sys.executable, "-m", "semcode"]
    subprocess.run([*semcode, "doctor", "--json"], check=False, capture_output=True)  # provisions the model
    with tempfile.TemporaryDirectory(prefix="semcode-bench-index-") as index_dir:
        command = [*semcode, "index", args.path, "--json", "--index-dir", index_dir]
        if args.threads:
            command += ["--threads", str(args.threads)]
        started = time.perf_counter()
        done = subprocess.run(command, check=True, capture_output=True, text=True)
        wall = time.perf_counter() - started
    summary = json.loads(done.stdout)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        f"machine: {os.cpu_count()} logical cores, {platform.processor() or platform.machine()}, "
        f"load average {os.getloadavg()[0]:.1f} at the end"
    )
    print(f"path: {args.path}  threads: {args.threads or 'physical cores'}")
    print(
        f"files indexed: {summary['files_indexed']}  skipped: {summary['files_skipped']}  "
        f"chunks: {summary['chunks_total']}"
    )
    print(
        f"wall: {wall:.1f} s (engine {summary['seconds']:.1f} s, the rest is start-up)  "
        f"chunks/s: {summary['chunks_total'] / summary['seconds']:.1f}  peak RSS: {peak_mb:.0f} MB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
