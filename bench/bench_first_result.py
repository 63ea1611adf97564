"""Time to the first hybrid search result and to a complete index, through ``IndexHost`` (as the LSP runs it).

    .venv/bin/python bench/bench_first_result.py [PATH] [--query TEXT] [--symbol NAME] [--phase1-only]

From scratch into a temporary index (the user's index is not touched). The model is loaded before the
clock starts (``model load`` is reported apart). The clock starts with ``IndexHost.start()``; "first
result" is the moment a hybrid ``workspace/semanticSearch``-equivalent query has returned hits, polled
from the end of phase 1 (chunking + lexical tier for every file) on. ``--phase1-only`` cancels the dense
tier right after the first result (for folders whose embedding would take too long). Prints the load
average (1 min) at the start and the end: figures measured on a busy machine are not figures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", nargs="?", default=str(ROOT))
    parser.add_argument("--query", default="read the configuration file and apply the defaults")
    parser.add_argument("--symbol", default="config")
    parser.add_argument("--phase1-only", action="store_true")
    args = parser.parse_args()

    from engine.config import EngineConfig
    from engine.host import IndexHost
    from engine.workspace import Workspace

    print(f"load average at start: {os.getloadavg()[0]:.2f} ({os.cpu_count()} logical cores)")
    with tempfile.TemporaryDirectory(prefix="semcode-bench-first-") as index_dir:
        ws = Workspace(Path(args.path), EngineConfig(index_dir=index_dir))
        host = IndexHost(ws)
        started = time.perf_counter()
        host.open()
        print(f"model load: {time.perf_counter() - started:.1f} s")

        t0 = time.perf_counter()
        future = host.start()
        while not future.done() and not (host.progress is not None and host.progress.stage == "vectors"):
            time.sleep(0.02)
        phase1 = time.perf_counter() - t0
        q0 = time.perf_counter()
        hits = ws.search(args.query, limit=10)
        first = time.perf_counter() - t0
        query_ms = (time.perf_counter() - q0) * 1000
        s0 = time.perf_counter()
        symbols = ws.symbols(args.symbol, limit=20)
        symbol_ms = (time.perf_counter() - s0) * 1000
        partial, note = host.partial_note()
        files, chunks, pending = ws.count_files(), ws.count_chunks(), ws.pending_chunks()
        print(f"path: {args.path}  files: {files}  chunks: {chunks}  pending after phase 1: {pending}")
        print(f"phase 1 (chunking + lexical tier, every file): {phase1:.2f} s")
        print(
            f"first hybrid result: {first:.2f} s after start ({len(hits)} hits, query {query_ms:.0f} ms, "
            f"semantic hits {sum(h.semantic_score is not None for h in hits)}); "
            f"symbol request: {symbol_ms:.0f} ms ({len(symbols)} symbols)"
        )
        print(f"partial: {partial}  note: {note}")
        during: list[float] = []
        if args.phase1_only:
            host.cancel()
            stats = future.result(3600)
            print(f"dense tier cancelled after {time.perf_counter() - t0:.1f} s; pending {ws.pending_chunks()}")
        else:
            while not future.done():
                q0 = time.perf_counter()
                ws.search(args.query, limit=10)
                during.append((time.perf_counter() - q0) * 1000)
                future_wait = max(0.0, 5.0 - (time.perf_counter() - q0))
                try:
                    future.result(future_wait)
                except TimeoutError:
                    pass
            stats = future.result()
            complete = time.perf_counter() - t0
            embedded = stats.chunks_embedded if stats else 0
            print(
                f"complete (every chunk has its model vector): {complete:.1f} s after start; "
                f"{embedded} chunks embedded, {embedded / max(complete - phase1, 1e-9):.1f} chunks/s in phase 2"
            )
            if during:
                print(
                    f"hybrid query while embedding: p50 {statistics.median(during):.0f} ms, "
                    f"max {max(during):.0f} ms ({len(during)} queries)"
                )
            q0 = time.perf_counter()
            final = ws.search(args.query, limit=10)
            print(
                f"hybrid query on the complete index: {(time.perf_counter() - q0) * 1000:.0f} ms, "
                f"semantic hits {sum(h.semantic_score is not None for h in final)}; partial {host.partial}"
            )
        host.close()
        host.join(30)
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
