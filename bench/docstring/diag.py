# ruff: noqa
# Session-4 experiment scripts for the docstring corpora (BENCHMARKS.md, "docstring (session 4)"); run from the repo root.
"""Per-query diagnosis on the kept docstring indexes: target rank, what beats it."""

import json, sys, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from quality_sweep import load_bench, DEFAULT_BENCH
from engine.config import EngineConfig
from engine.workspace import Workspace
from engine.ranking import RankingOptions
import engine.ranking as R

root = sys.argv[1]
out = sys.argv[2]
specs = sys.argv[3:]
bench = load_bench(DEFAULT_BENCH)
res = {}
for s in specs:
    spec = bench.Spec(s)
    prep = bench.prepare(spec, Path("/tmp/codesearch-bench-cache"), 300, 0, quiet=True)
    ws = Workspace(Path(prep.corpus_dir), EngineConfig(index_dir=f"{root}/{spec.key}-default"))
    t = time.time()
    st = ws.index()
    print(s, st.chunks_total, st.chunks_embedded, f"{time.time() - t:.1f}s", file=sys.stderr)
    rows = []
    ranked = []
    for q in prep.queries:
        hits = ws.searcher.search(q["query"], limit=10)
        ranked.append([(h.path, h.start_line, h.end_line) for h in hits])
        rows.append(
            {
                "q": q,
                "hits": [
                    dict(
                        path=h.path,
                        s=h.start_line,
                        e=h.end_line,
                        sym=h.symbol,
                        kind=h.kind,
                        score=h.score,
                        sig=list(h.signals),
                        sem=h.semantic_score,
                        lex=h.lexical_score,
                    )
                    for h in hits
                ],
            }
        )
    sc = bench.score(prep.queries, ranked)
    for r, rank in zip(rows, sc["ranks"]):
        r["rank"] = rank
    print(s, "mrr", round(sc["mrr10"], 3), file=sys.stderr)
    res[s] = {"mrr": sc["mrr10"], "rows": rows}
json.dump(res, open(out, "w"))
