"""Search-quality sweep: index each benchmark corpus once, score many ranking settings on it.

The outside benchmark (``../shared/bench/codesearch_bench.py``) judges the server over LSP, one
setting per run. This tool reuses its corpora, queries and scoring (imported from that file, so
the rules are identical) and compares settings in one process: dense only, BM25 only, and fusion
variants, all on the same index. Chunking variants need their own index (``--variant``).

    .venv/bin/python bench/quality_sweep.py pypi:requests==2.32.3 npm:rxjs@7.8.1 --threads 1
    .venv/bin/python bench/quality_sweep.py pypi:click==8.1.7 --ranking   # re-ranking signal ablations

Corpora must have been prepared by the outside benchmark (its ``prepare`` or ``baseline`` command).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from engine.config import EngineConfig  # noqa: E402
from engine.lexical import looks_like_identifier, query_terms  # noqa: E402
from engine.ranking import RankingOptions  # noqa: E402
from engine.records import Candidate  # noqa: E402
from engine.search import FusionWeights, SearchFilters  # noqa: E402
from engine.workspace import Workspace  # noqa: E402

DEFAULT_BENCH = ROOT.parent / "shared" / "bench" / "codesearch_bench.py"
POOL = 40


def load_bench(path: Path):
    spec = importlib.util.spec_from_file_location("codesearch_bench", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["codesearch_bench"] = module
    spec.loader.exec_module(module)
    return module


def fusion_settings() -> dict[str, dict[str, Any]]:
    """Named ranking settings: the weight of each ranked list and the RRF constant k."""
    settings: dict[str, dict[str, Any]] = {
        "dense": {"weights": FusionWeights(1.0, 0.0, 20.0)},
        "bm25": {"weights": FusionWeights(0.0, 1.0, 20.0)},
    }
    for lex in (0.3, 0.5, 0.7, 1.0):
        for k in (10.0, 20.0, 60.0):
            settings[f"rrf l={lex} k={k:g}"] = {"weights": FusionWeights(1.0, lex, k)}
    return settings


def ranking_settings() -> dict[str, RankingOptions]:
    """Re-ranking ablations (engine/ranking.py): none, all, each signal alone and each left out."""
    names = list(RankingOptions.__dataclass_fields__)
    settings = {"rank none": RankingOptions.off(), "rank all": RankingOptions()}
    for name in names:
        settings[f"rank +{name}"] = RankingOptions.only(name)
        settings[f"rank -{name}"] = RankingOptions().without(name)
    return settings


def run_ranking(
    bench, queries, ws: Workspace, only: list[str] | None = None
) -> dict[str, list[list[tuple[str, int, int]]]]:
    from sembench_rank import _cache_candidates  # the same per-query candidate cache as on sembench

    _cache_candidates(ws.searcher, {})
    vectors = [ws.embedder.embed_query(q["query"]) for q in queries]
    out = {}
    for name, options in ranking_settings().items():
        if only and name not in only:
            continue
        out[name] = [
            [
                (h.path, h.start_line, h.end_line)
                for h in ws.searcher.search(q["query"], limit=10, ranking=options, vector=v)
            ]
            for q, v in zip(queries, vectors, strict=True)
        ]
    return out


def run_corpus(bench, spec_text: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    spec = bench.Spec(spec_text)
    prep = bench.prepare(spec, Path(args.cache), args.max_queries, args.seed, quiet=True)
    corpus = Path(prep.corpus_dir)
    queries = prep.queries
    config = EngineConfig(index_dir=str(Path(args.index_root) / f"{spec.key}-{args.variant}"), threads=args.threads)
    ws = Workspace(corpus, config)
    started = time.perf_counter()
    stats = ws.index()
    index_s = time.perf_counter() - started
    print(
        f"# {spec_text}: {stats.chunks_total} chunks, {len(queries)} queries, indexed in {index_s:.0f}s "
        f"({stats.chunks_embedded} embedded)",
        file=sys.stderr,
    )
    searcher = ws.searcher
    if args.ranking:
        results = []
        for name, ranked in run_ranking(bench, queries, ws, args.settings).items():
            sc = bench.score(queries, ranked)
            results.append(
                {
                    "corpus": spec_text,
                    "variant": args.variant,
                    "setting": name,
                    "mrr10": sc["mrr10"],
                    "r1": sc["recall1"],
                    "r10": sc["recall10"],
                    "chunks": stats.chunks_total,
                }
            )
        return results
    candidates = []
    for q in queries:
        terms = query_terms(q["query"])
        dense = searcher._dense(ws.embedder.embed_query(q["query"]), POOL, SearchFilters())
        lexical = [Candidate.from_row(r) for r in ws.store.text_search(" ".join(terms), limit=POOL)] if terms else []
        candidates.append((q, terms, dense, lexical))
    results = []
    for name, setting in fusion_settings().items():
        ranked = []
        for _query, terms, dense, lexical in candidates:
            lex = lexical
            weights = setting["weights"]
            if weights.lexical == 0:
                lex = []
            if weights.dense == 0:
                dense_rows: list[Candidate] = []
            else:
                dense_rows = [replace(r) for r in dense]  # fusion writes its evidence into the candidates
            hits = searcher._fuse(dense_rows, [replace(r) for r in lex], terms, 10, SearchFilters(), weights)
            ranked.append([(h.path, h.start_line, h.end_line) for h in hits])
        sc = bench.score(queries, ranked)
        if args.details and name == args.details:
            with open(f"/tmp/sweep-details-{spec.key}.jsonl", "w") as handle:
                for q, rank, res in zip(queries, sc["ranks"], ranked, strict=True):
                    handle.write(
                        json.dumps(
                            {
                                "query": q["query"],
                                "target": [q["path"], q["start_line"], q["end_line"]],
                                "rank": rank,
                                "top": res[:3],
                            }
                        )
                        + "\n"
                    )
        results.append(
            {
                "corpus": spec_text,
                "variant": args.variant,
                "setting": name,
                "mrr10": sc["mrr10"],
                "r1": sc["recall1"],
                "r10": sc["recall10"],
                "chunks": stats.chunks_total,
                "identifier_queries": sum(looks_like_identifier(q["query"]) for q in queries),
            }
        )
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("specs", nargs="+")
    parser.add_argument("--bench", default=str(DEFAULT_BENCH))
    parser.add_argument("--cache", default="/tmp/codesearch-bench-cache")
    parser.add_argument("--index-root", default="/tmp/semcode-sweep")
    parser.add_argument("--variant", default="default", help="label for the index (chunking variant)")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--max-queries", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json-out")
    parser.add_argument("--ranking", action="store_true", help="re-ranking signal ablations instead of fusion weights")
    parser.add_argument("--details", help="write per-query ranks of this setting to /tmp/sweep-details-*.jsonl")
    parser.add_argument("--settings", nargs="+", help="with --ranking: only these settings (e.g. 'rank all')")
    parser.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="NAME=VALUE",
        help="override a constant of engine/ranking.py for this run, as bench/sembench_rank.py --set",
    )
    args = parser.parse_args()
    import engine.ranking

    for item in args.set:
        key, _, value = item.partition("=")
        current = getattr(engine.ranking, key)
        parsed: Any = (
            value.strip().lower() in ("1", "true", "yes", "on") if isinstance(current, bool) else type(current)(value)
        )
        setattr(engine.ranking, key, parsed)
    bench = load_bench(Path(args.bench))
    rows = []
    for spec in args.specs:
        rows.extend(run_corpus(bench, spec, args))
    by_setting: dict[str, dict[str, float]] = {}
    for row in rows:
        by_setting.setdefault(row["setting"], {})[row["corpus"]] = row["mrr10"]
    corpora = list(args.specs)
    print(f"{'setting':<24}" + "".join(f"{c.split(':')[1][:14]:>16}" for c in corpora) + f"{'mean':>8}")
    for name, scores in sorted(by_setting.items(), key=lambda kv: -sum(kv[1].values())):
        values = [scores.get(c, 0.0) for c in corpora]
        print(f"{name:<24}" + "".join(f"{v:>16.3f}" for v in values) + f"{sum(values) / len(values):>8.3f}")
    if args.json_out:
        with open(args.json_out, "a") as handle:
            for row in rows:
                handle.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
