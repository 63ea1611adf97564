"""Re-ranking ablations on semble's benchmark, on indexes ``run_semcode.py`` already built.

Each query is embedded once; every ranking variant (``engine.ranking.RankingOptions``: all signals,
none, each alone, each left out) then runs ``Searcher.search`` on the same index with that vector, so
the variants differ only in ranking. Scores use sembench's own NDCG@10 rule (imported, not copied).

    SEMBENCH_WORK=/work/sembench PYTHONPATH=$PWD .venv/bin/python bench/sembench_rank.py \\
        [--repos flask gin] [--variants all none no-symbols] [--failures 20] [--json out.json]

Variant names: ``all`` (the defaults), ``every`` (every signal on), ``none`` (plain fusion: the
ranking before engine/ranking.py), ``dense`` / ``dense-none`` (dense candidates only, with / without
the signals), ``only-NAME`` (only that signal), ``no-NAME`` (the defaults without that signal),
``no-A+B`` (without both).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import fields
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SEMBENCH = ROOT.parent / "shared" / "bench" / "sembench"

from engine.ranking import RankingOptions  # noqa: E402

SIGNALS = [f.name for f in fields(RankingOptions)]


def variant_options(name: str) -> tuple[RankingOptions, bool]:
    """(ranking options, hybrid) for a variant name."""
    if name == "all":
        return RankingOptions(), True
    if name == "every":
        return RankingOptions(**dict.fromkeys(SIGNALS, True)), True
    if name == "none":
        return RankingOptions.off(), True
    if name == "dense":
        return RankingOptions(), False
    if name == "dense-none":
        return RankingOptions.off(), False
    if name.startswith("only-") and name[5:] in SIGNALS:
        return RankingOptions.only(name[5:]), True
    if name.startswith("no-") and all(part in SIGNALS for part in name[3:].split("+")):
        return RankingOptions().without(*name[3:].split("+")), True  # no-a+b: both left out
    raise SystemExit(f"unknown variant {name!r}; signals: {', '.join(SIGNALS)}")


def _cache_candidates(searcher: Any, memo: dict[tuple[Any, ...], list[Any]]) -> None:
    """Memoise the searcher's three candidate lists (dense, full-text, symbol look-up) per query.

    The re-ranker only reads and annotates the rows, so every variant sees exactly the candidates an
    uncached search would fetch; each call gets fresh copies of the rows, because fusion writes its
    scores into them. The look-up is keyed by the store filters it would send, so a change to the
    look-up's SQL misses the cache instead of reusing stale rows.
    """
    from dataclasses import replace

    from engine.ranking import file_word_lookup_where, symbol_lookup_where
    from engine.records import Candidate

    def fresh(row: Any) -> Any:
        if isinstance(row, Candidate):
            return replace(row, terms=list(row.terms), signals=list(row.signals))
        return row._replace(candidate=fresh(row.candidate))  # a search.LookupRow

    def wrap(method: Any, key_of: Any) -> Any:
        def cached(*args: Any) -> list[Any]:
            key = (method.__name__, *key_of(*args))
            if key not in memo:
                memo[key] = method(*args)
            return [fresh(r) for r in memo[key]]

        return cached

    # The trailing argument (an unsaved-buffer view) is None in a benchmark run.
    searcher._dense = wrap(searcher._dense, lambda v, limit, f, *_: (v.tobytes(), limit, f))
    searcher._lexical = wrap(searcher._lexical, lambda terms, pool, f, *_: (tuple(terms), pool, f))
    searcher._lookup = wrap(
        searcher._lookup,
        lambda info, f, o, *_: (
            f,
            symbol_lookup_where(info) if o.symbols or o.filename else None,
            file_word_lookup_where(info) if o.file_words else None,
        ),
    )


def main() -> int:
    sys.path.insert(0, str(SEMBENCH))
    import sembench

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=sembench.default_work())
    ap.add_argument("--repos", nargs="+", default=sembench.DEFAULT_SUBSET)
    ap.add_argument(
        "--variants",
        nargs="+",
        default=["none", "all", *[f"only-{s}" for s in SIGNALS], *[f"no-{s}" for s in SIGNALS]],
    )
    ap.add_argument("--failures", type=int, default=0, help="print the N worst queries of the first variant")
    ap.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="NAME=VALUE",
        help="override a signal constant of engine/ranking.py for this run (tuning), e.g. DIVERSITY_DECAY=0.4",
    )
    ap.add_argument("--compare", nargs=2, metavar=("A", "B"), help="print the queries where variants A and B differ")
    ap.add_argument("--json", type=Path, help="write per-variant scores here")
    ap.add_argument("--per-repo", action="store_true", help="print per-repo NDCG for each variant")
    ap.add_argument(
        "--cache-dir",
        type=Path,
        help="keep each repo's query vectors and candidate lists here between runs (re-ranking experiments "
        "then cost no store or model work; delete the folder after re-indexing)",
    )
    ap.add_argument("--per-language", action="store_true", help="print per-language NDCG (mean of its repos)")
    ap.add_argument("--save", type=Path, help="write each variant's rankings (sembench format) into this folder")
    ap.add_argument(
        "--no-cache",
        action="store_true",
        help="query the store for every variant (default: each query's candidate lists are fetched once "
        "and re-ranked per variant, so latencies after the first variant measure re-ranking only)",
    )
    args = ap.parse_args()

    import engine.ranking
    from engine.config import EngineConfig
    from engine.workspace import Workspace

    for item in args.set:
        key, _, value = item.partition("=")
        if not hasattr(engine.ranking, key):
            raise SystemExit(f"engine/ranking.py has no constant {key}")
        current = getattr(engine.ranking, key)
        if isinstance(current, bool):  # bool("False") is True
            parsed: Any = value.strip().lower() in ("1", "true", "yes", "on")
        else:
            parsed = type(current)(value)
        setattr(engine.ranking, key, parsed)

    specs = sembench.load_specs(args.work)
    tasks = sembench.load_tasks(args.work, args.repos)
    rankings: dict[str, dict[str, Any]] = {v: {"method": v, "repos": {}} for v in args.variants}
    latencies: dict[str, list[float]] = defaultdict(list)
    embedder = None
    for name in args.repos:
        spec = specs[name]
        folder = sembench.bench_dir(args.work, spec)
        prefix = (spec["benchmark_root"].strip("/") + "/") if spec.get("benchmark_root") else ""
        idx = args.work / "idx" / name
        if not idx.exists():
            print(f"{name}: no index at {idx}; build it with run_semcode.py first", file=sys.stderr)
            continue
        ws = Workspace(folder, EngineConfig(index_dir=str(idx)), embedder=embedder)
        embedder = ws.embedder
        searcher = ws.searcher
        ws.store._names.build_now()  # the name table (payload, BM25) before the first query, as a server warms it
        repo_tasks = [t for t in tasks if t["repo"] == name]
        cache_file = args.cache_dir / f"{name}.pkl" if args.cache_dir and not args.no_cache else None
        memo: dict[tuple[Any, ...], Any] = {}
        if cache_file and cache_file.exists():
            memo = pickle.loads(cache_file.read_bytes())
        if not args.no_cache:
            _cache_candidates(searcher, memo)
        vectors = {}
        for t in repo_tasks:
            key = ("query-vector", t["query"])
            if key not in memo:
                memo[key] = embedder.embed_query(t["query"])
            vectors[t["query"]] = memo[key]
        searcher.search(repo_tasks[0]["query"], limit=10, vector=vectors[repo_tasks[0]["query"]])  # warm-up
        for variant in args.variants:
            options, hybrid = variant_options(variant)
            queries = []
            for t in repo_tasks:
                t0 = time.perf_counter()
                hits = searcher.search(
                    t["query"], limit=sembench.TOP_K, hybrid=hybrid, ranking=options, vector=vectors[t["query"]]
                )
                latencies[variant].append((time.perf_counter() - t0) * 1000)
                queries.append(
                    {"query": t["query"], "hits": [[prefix + h.path, h.start_line + 1, h.end_line + 1] for h in hits]}
                )
            rankings[variant]["repos"][name] = {"queries": queries}
        if cache_file:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            cache_file.write_bytes(pickle.dumps(memo))
        print(f"{name}: done", file=sys.stderr, flush=True)

    scored = {v: sembench.score_rankings(args.work, r) for v, r in rankings.items()}
    pub = sembench.published(args.work).get("semble", {})
    names = [n for n in args.repos if n in scored[args.variants[0]]["repos"]]
    print(f"load {os.getloadavg()[0]:.2f}; {len(names)} repos; query p95 excludes embedding")
    header = "| variant | repos mean | architecture | semantic | symbol | ≥ semble | p50 ms | p95 ms |"
    print(header)
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for v in args.variants:
        s = scored[v]["repos"]
        cats = {
            c: [s[n]["by_category"][c] for n in names if c in s[n]["by_category"]]
            for c in ("architecture", "semantic", "symbol")
        }
        wins = sum(1 for n in names if n in pub and s[n]["ndcg10"] >= pub[n]["ndcg10"])
        lat = sorted(latencies[v])
        p95 = lat[int(0.95 * (len(lat) - 1))] if lat else 0.0
        print(
            f"| {v} | {statistics.fmean(s[n]['ndcg10'] for n in names):.3f} | "
            + " | ".join(f"{statistics.fmean(cats[c]):.3f}" if cats[c] else "–" for c in cats)
            + f" | {wins}/{len(names)} | {statistics.median(lat):.1f} | {p95:.1f} |"
        )
    semble_mean = statistics.fmean(pub[n]["ndcg10"] for n in names if n in pub) if pub else float("nan")
    print(
        f"| semble (published, same repos) | {semble_mean:.3f} | "
        + " | ".join(
            f"{statistics.fmean(pub[n]['by_category'][c] for n in names if c in pub[n]['by_category']):.3f}"
            for c in ("architecture", "semantic", "symbol")
        )
        + " | | | |"
    )
    bm25_path = args.work / "out" / "bm25.scores.json"
    bm25 = json.loads(bm25_path.read_text())["repos"] if bm25_path.exists() else {}
    if bm25 and all(n in bm25 for n in names):
        cats = {
            c: [bm25[n]["by_category"][c] for n in names if c in bm25[n]["by_category"]]
            for c in ("architecture", "semantic", "symbol")
        }
        print(
            f"| our BM25 (sembench.py bm25) | {statistics.fmean(bm25[n]['ndcg10'] for n in names):.3f} | "
            + " | ".join(f"{statistics.fmean(v):.3f}" if v else "–" for v in cats.values())
            + " | | | |"
        )

    def bm25_cell(ns: list[str]) -> str:
        return f"{statistics.fmean(bm25[n]['ndcg10'] for n in ns):.3f}" if all(n in bm25 for n in ns) else "–"

    if args.per_repo:
        print("\n| repo | language | semble (pub.) | our BM25 | " + " | ".join(args.variants) + " |")
        print("|---|---|---:|---:|" + "---:|" * len(args.variants))
        for n in names:
            lang = scored[args.variants[0]]["repos"][n]["language"]
            p = pub.get(n, {}).get("ndcg10")
            print(f"| {n} | {lang} | " + (f"{p:.3f}" if p is not None else "–") + f" | {bm25_cell([n])} | ", end="")
            print(" | ".join(f"{scored[v]['repos'][n]['ndcg10']:.3f}" for v in args.variants) + " |")
    if args.per_language:
        langs: dict[str, list[str]] = defaultdict(list)
        for n in names:
            langs[scored[args.variants[0]]["repos"][n]["language"]].append(n)
        print("\n| language | repos | semble (pub.) | our BM25 | " + " | ".join(args.variants) + " |")
        print("|---|---:|---:|---:|" + "---:|" * len(args.variants))
        for lang, ns in sorted(langs.items()):
            p = [pub[n]["ndcg10"] for n in ns if n in pub]
            print(
                f"| {lang} | {len(ns)} | " + (f"{statistics.fmean(p):.3f}" if p else "–") + f" | {bm25_cell(ns)} | ",
                end="",
            )
            print(
                " | ".join(
                    f"{statistics.fmean(scored[v]['repos'][n]['ndcg10'] for n in ns):.3f}" for v in args.variants
                )
                + " |"
            )
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)
        for v, r in rankings.items():
            (args.save / f"{v}.rankings.json").write_text(json.dumps(r) + "\n")
    if args.failures:
        first = scored[args.variants[0]]
        rows = sorted(((q["ndcg10"], n, q) for n in names for q in first["repos"][n]["queries"]), key=lambda t: t[0])
        for nd, n, q in rows[: args.failures]:
            print(
                f"\n[{n} / {q['category']}] {nd:.3f} {q['query']!r}\n"
                f"   targets: {', '.join(q['targets'])} ranks {q['ranks']}"
            )
            for i, t in enumerate(q["top"], 1):
                print(f"   {i}. {t}")
    if args.compare:
        a, b = (scored[v] for v in args.compare)
        for n in names:
            for qa, qb in zip(a["repos"][n]["queries"], b["repos"][n]["queries"], strict=True):
                if abs(qa["ndcg10"] - qb["ndcg10"]) > 1e-9:
                    print(f"\n[{n} / {qa['category']}] {qa['ndcg10']:.3f} -> {qb['ndcg10']:.3f} {qa['query']!r}")
                    print(f"   targets: {', '.join(qa['targets'])}")
                    print(f"   {args.compare[0]}: " + " ".join(qa["top"][:4]))
                    print(f"   {args.compare[1]}: " + " ".join(qb["top"][:4]))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    v: {n: {k: x for k, x in r.items() if k != "meta"} for n, r in sc["repos"].items()}
                    for v, sc in scored.items()
                }
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
