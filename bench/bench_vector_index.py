"""Vector index types on a real chunk table: build time and memory, query latency, recall, serving memory.

Usage (each step is heavy on a 100K+ row table; hold the shared lock):
    python bench/bench_vector_index.py truth INDEX_DIR OUT_DIR          # copy the table, exact top-k of 100 queries
    python bench/bench_vector_index.py run OUT_DIR KIND [--nprobes N] [--refine R]

``truth`` copies the chunk table of the index under INDEX_DIR (its ``lance/chunks.lance``) to OUT_DIR and
computes the exact cosine top 40 of 100 query vectors with numpy: 30 real questions embedded by the
transformer plus 70 chunk vectors of the table. ``run`` builds index KIND on that copy in a child process
(its peak RSS is the build's memory), then, in another fresh child, opens the copy through the store's own
connection (engine.store.connect: its bounded caches) and runs the product's query shape
(engine.store.nearest, limit 40, the store's nprobes unless given) for every query after 10 warm-up ones,
reporting recall@10 and recall@40 against exact search, latency, and the process's RSS before and after
the queries (what serving this index costs). KIND: ivf_flat, ivf_sq, ivf_sq_s64 (k-means trained on 64
rows a partition instead of 256), ivf_pq, ivf_rq, ivf_hnsw_sq, or ``store`` (engine.store.ivf_config).
``--refine 0`` keeps the refine factor of engine.store.nearest; another value replaces it. Prints the load
average with each figure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from bench_scale import QUERIES, load, percentile, status_kb  # noqa: E402

POOL = 40  # the dense pool of a limit-10 search (engine/search.py)


def rss_mb(key: str = "VmRSS") -> float:
    return status_kb(os.getpid(), key) / 1024


def reset_hwm() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def _chunk_table(index_dir: Path) -> Path:
    found = sorted(index_dir.glob("**/lance/chunks.lance"))
    if len(found) != 1:
        raise SystemExit(f"expected one chunks.lance under {index_dir}, found {len(found)}")
    return found[0]


def cmd_truth(args: argparse.Namespace) -> None:
    import lancedb

    from engine.config import EngineConfig
    from engine.models import load_embedder

    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if not (out / "chunks.lance").exists():
        shutil.copytree(_chunk_table(Path(args.index_dir)), out / "chunks.lance")
    table = lancedb.connect(str(out)).open_table("chunks")
    ids: list[str] = []
    parts: list[np.ndarray] = []
    for batch in table.search().select(["id", "vector"]).limit(None).to_batches(8192):
        ids.extend(batch["id"].to_pylist())
        column = batch["vector"]
        parts.append(column.flatten().to_numpy(zero_copy_only=False).reshape(len(column), -1))
    matrix = np.concatenate(parts).astype(np.float32)
    embedder = load_embedder(EngineConfig(), in_process=True)
    questions = np.stack([embedder.embed_query(q) for q in QUERIES])
    embedder.close()
    sample = np.random.default_rng(7).choice(len(ids), size=args.queries - len(questions), replace=False)
    queries = np.vstack([questions, matrix[sample]]).astype(np.float32)
    unit = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    truth = []
    for q in queries:
        scores = unit @ (q / max(float(np.linalg.norm(q)), 1e-12))
        top = np.argpartition(-scores, POOL)[:POOL]
        truth.append([ids[i] for i in top[np.argsort(-scores[top])]])
    np.save(out / "queries.npy", queries)
    (out / "truth.json").write_text(json.dumps(truth))
    print(f"{len(ids)} rows, dimension {matrix.shape[1]}, {len(queries)} queries -> {out} (load {load():.2f})")


def index_config(kind: str, rows: int) -> Any:
    from lancedb.index import IvfFlat, IvfHnswSq, IvfPq, IvfRq, IvfSq

    from engine import store

    target = store.ivf_partition_rows(rows)
    if kind == "store":
        return store.ivf_config(target)
    kinds = {
        "ivf_flat": lambda: IvfFlat(distance_type="cosine", target_partition_size=target),
        "ivf_sq": lambda: IvfSq(distance_type="cosine", target_partition_size=target),
        "ivf_sq_s64": lambda: IvfSq(distance_type="cosine", target_partition_size=target, sample_rate=64),
        "ivf_pq": lambda: IvfPq(distance_type="cosine", target_partition_size=target),
        "ivf_rq": lambda: IvfRq(distance_type="cosine", target_partition_size=target),
        "ivf_hnsw_sq": lambda: IvfHnswSq(distance_type="cosine", target_partition_size=max(target, rows // 2)),
    }
    return kinds[kind]()


def cmd_build(args: argparse.Namespace) -> None:
    from engine import store

    table = store.connect(Path(args.out_dir)).open_table("chunks")
    rows = table.count_rows()
    reset_hwm()
    before = rss_mb()
    s = time.perf_counter()
    table.create_index("vector", replace=True, config=index_config(args.kind, rows))
    built = time.perf_counter() - s
    size = sum(f.stat().st_size for f in (Path(args.out_dir) / "chunks.lance" / "_indices").rglob("*.idx"))
    print(
        json.dumps(
            {
                "kind": args.kind,
                "build_s": round(built, 1),
                "build_peak_mb": round(rss_mb("VmHWM")),
                "opened_mb": round(before),
                "idx_files_mb": round(size / 2**20),
                "load": round(load(), 2),
            }
        )
    )


def cmd_query(args: argparse.Namespace) -> None:
    from engine import store
    from engine.memory import trim_malloc

    out = Path(args.out_dir)
    queries = np.load(out / "queries.npy")
    truth = json.loads((out / "truth.json").read_text())
    table = store.connect(out).open_table("chunks")
    rows = table.count_rows()
    nprobes = args.nprobes or store.ivf_nprobes(rows)
    opened = rss_mb()

    def one(q: np.ndarray) -> list[str]:
        query = store.nearest(table, q, POOL, nprobes=nprobes)
        if args.refine:
            query = query.refine_factor(args.refine)
        return [r["id"] for r in query.select(["id"]).to_list()]

    for q in queries[:10]:
        one(q)
    ms, r10, r40 = [], [], []
    for q, want in zip(queries, truth, strict=True):
        s = time.perf_counter()
        got = one(q)
        ms.append((time.perf_counter() - s) * 1000)
        r10.append(len(set(got[:10]) & set(want[:10])) / 10)
        r40.append(len(set(got) & set(want)) / POOL)
    after = rss_mb()
    trim_malloc()
    print(
        json.dumps(
            {
                "nprobes": nprobes,
                "refine": args.refine,
                "recall10": round(float(np.mean(r10)), 4),
                "recall40": round(float(np.mean(r40)), 4),
                "p50_ms": round(statistics.median(ms), 2),
                "p95_ms": round(percentile(ms, 0.95), 2),
                "rss_opened_mb": round(opened),
                "rss_after_queries_mb": round(after),
                "rss_after_trim_mb": round(rss_mb()),
                "hwm_mb": round(rss_mb("VmHWM")),
                "load": round(load(), 2),
            }
        )
    )


def cmd_run(args: argparse.Namespace) -> None:
    me = [sys.executable, str(Path(__file__).resolve())]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result: dict[str, Any] = {}
    if not args.no_build:
        built = subprocess.run([*me, "_build", args.out_dir, args.kind], env=env, capture_output=True, text=True)
        if built.returncode:
            raise SystemExit(built.stderr[-3000:])
        result |= json.loads(built.stdout.strip().splitlines()[-1])
    flags = ["--nprobes", str(args.nprobes), "--refine", str(args.refine)]
    for refine in args.refine_list.split(",") if args.refine_list else [str(args.refine)]:
        flags[-1] = refine
        done = subprocess.run([*me, "_query", args.out_dir, args.kind, *flags], env=env, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(done.stderr[-3000:])
        print(json.dumps({"kind": args.kind} | result | json.loads(done.stdout.strip().splitlines()[-1])), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="step", required=True)
    truth = sub.add_parser("truth")
    truth.add_argument("index_dir")
    truth.add_argument("out_dir")
    truth.add_argument("--queries", type=int, default=100)
    for name in ("run", "_build", "_query"):
        step = sub.add_parser(name)
        step.add_argument("out_dir")
        step.add_argument("kind")
        step.add_argument("--nprobes", type=int, default=0, help="0: the store's ivf_nprobes(rows)")
        step.add_argument("--refine", type=int, default=0)
        step.add_argument("--refine-list", default="", help="run: one query child per refine factor (e.g. 0,5,10)")
        step.add_argument("--no-build", action="store_true", help="run: query the index already on the copy")
    args = parser.parse_args()
    {"truth": cmd_truth, "run": cmd_run, "_build": cmd_build, "_query": cmd_query}[args.step](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
