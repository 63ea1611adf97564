"""In-process query latency by stage, the look-ups' equivalence, and the vector index's recall.

Usage (heavy on a large index: hold the shared lock):
    python bench/bench_query.py stages WS --index-dir DIR [--recall]   # per stage, whole search; recall@10
    python bench/bench_query.py lookups INDEX_PATH                     # name table vs LIKE filters: same rows?
    python bench/bench_query.py path WS --index-dir DIR [--queries N]  # per query: where its time went, GC

``stages`` times each part of ``Searcher.search`` alone over the 30 questions of bench_scale.py (query
vector given unless said), then the whole search; ``--recall`` compares the store's vector search with
exact numpy search over every vector (30 questions + 70 chunk vectors). ``lookups`` opens one index
directory (the folder holding meta.json) without a model and checks, over symbol names, file names and
sentences, that the in-memory name table returns the rows the LanceDB filters return, in their order.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from bench_scale import QUERIES, percentile  # noqa: E402

from engine.config import EngineConfig  # noqa: E402
from engine.lexical import query_terms  # noqa: E402
from engine.ranking import RankingOptions, analyse_query  # noqa: E402
from engine.search import Searcher, SearchFilters  # noqa: E402
from engine.store import ChunkStore, ivf_nprobes  # noqa: E402
from engine.workspace import Workspace  # noqa: E402


def _time(name: str, fn: Callable[[str], object], repeat: int = 2) -> None:
    ms = []
    for _ in range(repeat):
        for q in QUERIES:
            s = time.perf_counter()
            fn(q)
            ms.append((time.perf_counter() - s) * 1000)
    print(f"{name:28s} p50 {statistics.median(ms):7.1f} ms  p95 {percentile(ms, 0.95):7.1f} ms", flush=True)


def cmd_stages(args: argparse.Namespace) -> None:
    ws = Workspace(Path(args.workspace), EngineConfig(index_dir=args.index_dir))
    ws.open()
    store, searcher = ws.store, ws.searcher
    started = time.perf_counter()
    store._names.build_now()
    print(f"{store.count_chunks()} chunks; name table built in {(time.perf_counter() - started) * 1000:.0f} ms")
    vectors = {q: ws.embedder.embed_query(q) for q in QUERIES}
    filters, options = SearchFilters(), RankingOptions()
    _time("query embedding", lambda q: ws.embedder.embed_query(q))
    _time("dense (pool 40)", lambda q: searcher._dense(vectors[q], 40, filters))
    _time("BM25 (pool 40)", lambda q: searcher._lexical(query_terms(q), 40, filters))
    _time("look-ups, name table", lambda q: searcher._lookup(analyse_query(q), filters, options))
    columns = ["id", "path", "vector", "tier"]
    _time(
        "look-ups, LIKE filters",
        lambda q: searcher._lookup_filtered(analyse_query(q), filters, options, None, columns),
        1,
    )
    _time("search, vector given", lambda q: searcher.search(q, limit=10, vector=vectors[q]), 3)
    _time("search", lambda q: searcher.search(q, limit=10), 3)
    print(f"load {os.getloadavg()[0]:.2f}")
    if args.recall:
        ids: list[str] = []
        parts = []
        for batch in store._chunks.search().select(["id", "vector"]).limit(None).to_batches(8192):
            ids.extend(batch["id"].to_pylist())
            column = batch["vector"]
            parts.append(column.flatten().to_numpy(zero_copy_only=False).reshape(len(column), -1))
        matrix = np.concatenate(parts).astype(np.float32)
        matrix /= np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
        rng = np.random.default_rng(7)
        queries = [vectors[q] for q in QUERIES] + [matrix[i] for i in rng.choice(len(ids), 70, replace=False)]
        found10, found40 = [], []
        for q in queries:
            truth = {ids[i] for i in np.argpartition(-(matrix @ (q / np.linalg.norm(q))), 10)[:10]}
            found10.append(len(truth & {h["id"] for h in store.vector_search(q, limit=10)}) / 10)
            found40.append(len(truth & {h["id"] for h in store.vector_search(q, limit=40)[:10]}) / 10)
        print(
            f"recall@10 vs exact, {len(queries)} queries, nprobes {ivf_nprobes(len(ids))}: limit 10 "
            f"{np.mean(found10):.3f}; top 10 of a limit-40 pool {np.mean(found40):.3f}"
        )


def cmd_lookups(args: argparse.Namespace) -> None:
    path = Path(args.index)
    meta = json.loads((path / "meta.json").read_text())
    store = ChunkStore(
        path, dimension=meta["dimension"], fingerprint=meta["fingerprint"], chunker_version=meta["chunker"]
    )
    table = store._names.build_now()
    assert table is not None
    searcher = Searcher(store, embedder=None)  # type: ignore[arg-type]  # look-ups need no model
    symbols = [r["symbol"] for r in store.rows("symbol != ''", columns=["symbol"], limit=5000)]
    paths = [r["path"] for r in store.rows("true", columns=["path"], limit=5000)]
    rng = random.Random(3)
    queries = list(QUERIES) + rng.sample(symbols, min(60, len(symbols)))
    queries += [p.rsplit("/", 1)[-1].split(".")[0] for p in rng.sample(paths, min(40, len(paths)))]
    every = [
        SearchFilters(),
        SearchFilters(language="python"),
        SearchFilters(path="**/*.py"),
        SearchFilters(kind="function"),
    ]
    differ, like_ms, table_ms = 0, [], []
    for query in queries:
        info = analyse_query(query)
        for filters in every:
            s = time.perf_counter()
            want = [r["id"] for r in searcher._lookup_filtered(info, filters, RankingOptions(), None, ["id", "path"])]
            m = time.perf_counter()
            got = searcher._lookup_in_table(table, info, filters, RankingOptions(), None, ["id", "path", "vector"])
            like_ms.append((m - s) * 1000)
            table_ms.append((time.perf_counter() - m) * 1000)
            if got is None or [r["id"] for r in got] != want:
                differ += 1
                print(f"differs: {query!r} {filters}")
    print(
        f"{len(queries) * len(every)} look-ups, {differ} differ; LIKE p50 {statistics.median(like_ms):.1f} ms, "
        f"name table p50 {statistics.median(table_ms):.1f} ms (load {os.getloadavg()[0]:.2f})"
    )


def cmd_path(args: argparse.Namespace) -> None:
    """Whole searches as the server runs them (query worker, thread pool), each stage's time inside each
    query (threads overlap, so stages do not add up), collector pauses, and the slowest queries' stages."""
    import functools
    import gc
    from collections import defaultdict

    import engine.search as search_module
    from engine.ranking import Reranker

    spent: defaultdict[str, float] = defaultdict(float)

    def timed(owner: object, name: str) -> None:
        fn = getattr(owner, name)

        @functools.wraps(fn)
        def wrapper(*a: object, **k: object) -> object:
            s = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                spent[name] += (time.perf_counter() - s) * 1000

        setattr(owner, name, wrapper)

    for name in ("vector_search", "text_search", "take_rows", "contents", "name_table", "pending_count"):
        timed(ChunkStore, name)
    for name in ("_dense", "_lexical", "_lookup", "_fuse", "_fill_contents"):
        timed(Searcher, name)
    timed(search_module, "query_vector")
    timed(Reranker, "rerank")
    pauses: list[float] = []
    started = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pauses.append((time.perf_counter() - started[0]) * 1000)

    gc.callbacks.append(on_gc)
    ws = Workspace(Path(args.workspace), EngineConfig(index_dir=args.index_dir))
    ws.open()
    ws.store._names.build_now()
    for q in QUERIES[:5]:
        ws.search(q)
    pauses.clear()  # opening and the name table's build are not a query's
    total: list[float] = []
    stages: list[dict[str, float]] = []
    for i in range(args.queries):
        spent.clear()
        before = len(pauses)
        s = time.perf_counter()
        ws.search(QUERIES[i % len(QUERIES)], limit=10)
        total.append((time.perf_counter() - s) * 1000)
        stages.append({**spent, "gc": sum(pauses[before:])})
    print(f"search p50 {statistics.median(total):.1f} p95 {percentile(total, 0.95):.1f} max {max(total):.1f} ms "
          f"(load {os.getloadavg()[0]:.2f})")  # fmt: skip
    for key in sorted({k for d in stages for k in d}):
        v = [d.get(key, 0.0) for d in stages]
        print(f"  {key:16s} p50 {statistics.median(v):7.2f} p95 {percentile(v, 0.95):7.2f} max {max(v):7.2f}")
    for i in sorted(range(len(total)), key=lambda i: -total[i])[:5]:
        worst = sorted(stages[i].items(), key=lambda kv: -kv[1])[:6]
        print(f"  slowest {total[i]:.1f} ms: " + ", ".join(f"{k} {v:.1f}" for k, v in worst))
    print(f"collector: {len(pauses)} pauses, longest {max(pauses, default=0.0):.1f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="step", required=True)
    stages = sub.add_parser("stages")
    stages.add_argument("workspace")
    stages.add_argument("--index-dir", required=True)
    stages.add_argument("--recall", action="store_true")
    lookups = sub.add_parser("lookups")
    lookups.add_argument("index", help="an index directory (the one holding meta.json)")
    path = sub.add_parser("path")
    path.add_argument("workspace")
    path.add_argument("--index-dir", required=True)
    path.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()
    {"stages": cmd_stages, "lookups": cmd_lookups, "path": cmd_path}[args.step](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
