"""Searchable at once: time to the first complete hybrid result with a lexical+static tier written first.

    .venv/bin/python bench/bench_tiers.py PATH [PATH ...] [--skip-model] [--json-out F]

For each folder, from an empty index (temporary directories, the user's index is untouched):
  tier 1  the whole engine pipeline (walk, chunk, BM25 terms, LanceDB writes, FTS index) with the
          StaticEmbedder: when it ends, every chunk is searchable by BM25 + static vectors. A hybrid
          query is run right away (its latency is reported too).
  tier 2  the same pipeline with the transformer (today's only path): until it ends, only the chunks
          of the batches already written are searchable, and nothing by meaning before the first one.
The static table is distilled (or read from the cache) before the clock starts, as a language server
would have it ready from a previous start; its one-time cost is printed separately.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.config import EngineConfig  # noqa: E402
from engine.models.static import StaticEmbedder  # noqa: E402
from engine.records import IndexProgress  # noqa: E402
from engine.workspace import Workspace, shared_embedder  # noqa: E402

QUERY = "read the configuration file and return the settings"


def timed_index(root: Path, embedder, threads: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="semcode-tiers-") as index_dir:
        ws = Workspace(root, EngineConfig(index_dir=index_dir, threads=threads), embedder=embedder)
        first_write: list[float] = []
        started = time.perf_counter()

        def progress(_p: IndexProgress) -> None:
            if not first_write and ws.store.count_chunks():
                first_write.append(time.perf_counter() - started)

        stats = ws.index(progress=progress)
        total = time.perf_counter() - started
        t0 = time.perf_counter()
        hits = ws.search(QUERY, limit=10)
        query_ms = (time.perf_counter() - t0) * 1000
        return {
            "chunks": stats.chunks_total,
            "files": stats.files_indexed,
            "seconds": total,
            "first_batch_s": first_write[0] if first_write else total,
            "chunks_per_s": stats.chunks_total / total if total else 0.0,
            "query_ms": query_ms,
            "hits": len(hits),
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--skip-model", action="store_true", help="tier 1 only")
    parser.add_argument("--json-out")
    args = parser.parse_args()
    transformer = shared_embedder(EngineConfig(threads=args.threads))
    t0 = time.perf_counter()
    static = StaticEmbedder.from_model(transformer.info.path, transformer=transformer)
    print(f"# static table ready in {time.perf_counter() - t0:.1f}s (dim {static.info.dimension}); "
          f"load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    rows = []
    for path in args.paths:
        root = Path(path).resolve()
        row: dict[str, Any] = {"path": str(root), "load_start": os.getloadavg()[0]}
        row["static"] = timed_index(root, static, args.threads)
        s = row["static"]
        print(f"{root.name:<24} tier 1 (BM25+static): {s['chunks']:>6} chunks in {s['seconds']:7.2f}s "
              f"({s['chunks_per_s']:,.0f} chunks/s), query {s['query_ms']:.0f} ms", flush=True)  # fmt: skip
        if not args.skip_model:
            row["model"] = timed_index(root, transformer, args.threads)
            m = row["model"]
            print(f"{'':<24} tier 2 (transformer): {m['chunks']:>6} chunks in {m['seconds']:7.1f}s "
                  f"({m['chunks_per_s']:,.1f} chunks/s), first batch written at {m['first_batch_s']:.1f}s; "
                  f"searchable {m['seconds'] / s['seconds']:,.0f}x sooner with tier 1", flush=True)  # fmt: skip
        row["load_end"] = os.getloadavg()[0]
        rows.append(row)
    print(f"# load average {os.getloadavg()[0]:.2f} at end")
    if args.json_out:
        with open(args.json_out, "a") as handle:
            for row in rows:
                handle.write(json.dumps(row) + "\n")
    static.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
