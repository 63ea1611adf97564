# ruff: noqa
# Session-5 experiment scripts for the docstring corpora (BENCHMARKS.md, "docstring5 (session 5)"); run from the repo root.
"""Re-run only the re-ranking on ``dump.py``'s recorded inputs: MRR@10 per corpus for ranking variants.

    PYTHONPATH=$PWD .venv/bin/python bench/docstring5/replay.py DUMP.pkl [VARIANTS.py]

The picking after the re-ranker is ``Searcher._fuse``'s (score > 0, no window overlapping a better
hit, first 10), so a replay of the default options reproduces the dump's own MRR.
"""

import copy, pickle, sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from quality_sweep import load_bench, DEFAULT_BENCH
import engine.ranking as R
from engine.ranking import RankingOptions, Reranker, analyse_query
from engine.search import _overlaps

bench = load_bench(DEFAULT_BENCH)
data = pickle.load(open(sys.argv[1], "rb"))


def pick(ordered, limit=10):
    picked = []
    for row in ordered:
        if row.rank_score <= 0 or any(_overlaps(row, h) for h in picked):
            continue
        picked.append(row)
        if len(picked) >= limit:
            break
    return picked


def run(options=None, reanalyse=False):
    options = options or RankingOptions()
    out, ranks = {}, {}
    for spec, d in data.items():
        ranked = []
        for item in d["items"]:
            rows, base, info = item["input"]
            if reanalyse:
                info = analyse_query(info.text, forms=options.forms)
            ordered = Reranker(options).rerank(copy.deepcopy(rows), base, info)
            ranked.append([(r.path, r.start_line, r.end_line) for r in pick(ordered)])
        sc = bench.score(d["queries"], ranked)
        out[spec] = sc["mrr10"]
        ranks[spec] = sc["ranks"]
    return out, ranks


def evaluate(name, options=None, reanalyse=False):
    out, ranks = run(options, reanalyse)
    vals = list(out.values())
    print(f"{name:<44}" + "".join(f"{m:8.3f}" for m in vals) + f"{sum(vals) / len(vals):9.3f}", flush=True)
    return out, ranks


if __name__ == "__main__":
    print(" " * 44 + "".join(f"{s.split(':')[1][:7]:>8}" for s in data) + "     mean")
    evaluate("defaults")
    if len(sys.argv) > 2:
        exec(open(sys.argv[2]).read())
