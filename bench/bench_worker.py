"""Query latency: in-process LlamaEmbedder vs the WorkerEmbedder, quiet and while an index batch runs.

Usage: python bench/bench_worker.py [--model PATH] [--queries 200] [--threads N] [--gap-ms 20]

"While indexing": a thread embeds stdlib functions in batches of 32 without pause (``embed_documents``,
which the worker sends to its nice-10 index child), and queries (``embed_query``) are timed meanwhile, one
every ``--gap-ms`` so that they land at every phase of a batch. In-process there is one llama.cpp context,
so a query waits for the batch in progress; "inprocess-2ctx" gives the index thread a context of its own
(two models in one process, what threads alone could do). Also prints peak RSS per process.
Output goes to stdout (a tool, not the server).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # the in-process side gets what the worker gets

from bench_embed import _rss, cpu_model, stdlib_functions

from engine.config import EngineConfig
from engine.models import Embedder, load_embedder

QUERIES = [
    "open a file and read its lines", "parse command line arguments", "retry an HTTP request with backoff",
    "compute a sha256 digest of a file", "format a date as ISO 8601", "split a path into directory and name",
    "escape HTML special characters", "sort a list of dicts by key", "read environment variables",
    "decode base64 text", "thread pool executor", "serialize an object to JSON", "walk a directory tree",
    "compare two version strings", "temporary directory cleanup", "parse an email address",
]  # fmt: skip


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def time_queries(embedder: Embedder, n: int, gap_s: float) -> list[float]:
    out: list[float] = []
    for i in range(n):
        t0 = time.perf_counter()
        embedder.embed_query(QUERIES[i % len(QUERIES)])
        out.append((time.perf_counter() - t0) * 1000)
        time.sleep(gap_s)
    return out


class Indexer(threading.Thread):
    def __init__(self, embedder: Embedder, texts: list[str]) -> None:
        super().__init__(daemon=True)
        self.embedder, self.texts, self.stop, self.batches = embedder, texts, threading.Event(), 0

    def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            batch = self.texts[i : i + 32] or self.texts[:32]
            i = (i + 32) % max(1, len(self.texts) - 32)
            self.embedder.embed_documents(batch)
            self.batches += 1


def scenario(name: str, query_emb: Embedder, index_emb: Embedder | None, args: argparse.Namespace,
             texts: list[str], queries: int | None = None) -> None:  # fmt: skip
    for q in QUERIES:  # warm-up
        query_emb.embed_query(q)
    indexer = None
    if index_emb is not None:
        indexer = Indexer(index_emb, texts)
        indexer.start()
        time.sleep(1.0)  # the index child starts lazily; let the first batch get going
    t0 = time.perf_counter()
    ms = time_queries(query_emb, queries or args.queries, args.gap_ms / 1000)
    wall = time.perf_counter() - t0
    extra = ""
    if indexer is not None:
        indexer.stop.set()
        indexer.join()
        extra = f", {indexer.batches * 32 / wall:.0f} docs/s indexed meanwhile"
    print(
        f"{name:32s} p50 {statistics.median(ms):7.1f} ms  p95 {percentile(ms, 0.95):7.1f} ms  "
        f"max {max(ms):7.1f} ms  (n={len(ms)}{extra})",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--gap-ms", type=float, default=20.0)
    ap.add_argument("--only", choices=("inprocess", "worker"), help="run one side (RSS of that side alone)")
    args = ap.parse_args()
    config = EngineConfig(model_path=args.model, threads=args.threads)
    texts = stdlib_functions(600)
    print(f"machine: {os.cpu_count()} logical cores, {cpu_model()}; load {os.getloadavg()[0]:.2f}")
    print(f"threads={config.effective_threads()}, OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}, "
          f"{args.queries} queries, one every {args.gap_ms:.0f} ms")  # fmt: skip
    if args.only != "worker":
        t0 = time.perf_counter()
        inproc = load_embedder(config, in_process=True)
        print(f"load_embedder in-process: {(time.perf_counter() - t0) * 1000:.0f} ms", flush=True)
        scenario("inprocess quiet", inproc, None, args, texts)
        # each query waits for the batch in progress (seconds): a few are enough to show it
        scenario("inprocess while indexing", inproc, inproc, args, texts, queries=10)
        second = load_embedder(config, in_process=True)
        scenario("inprocess-2ctx while indexing", inproc, second, args, texts)
        second.close()
        inproc.close()
    if args.only != "inprocess":
        t0 = time.perf_counter()
        worker = load_embedder(config, in_process=False)
        print(f"load_embedder worker (child started, model loaded, warm-up): "
              f"{(time.perf_counter() - t0) * 1000:.0f} ms", flush=True)  # fmt: skip
        scenario("worker quiet", worker, None, args, texts)
        scenario("worker while indexing (nice 10)", worker, worker, args, texts)
        pids = getattr(worker, "pids", None)
        print(f"peak RSS (MB): {_rss(pids)}")
        worker.close()
    elif args.only == "inprocess":
        print(f"peak RSS (MB): {_rss(None)}")


if __name__ == "__main__":
    main()
