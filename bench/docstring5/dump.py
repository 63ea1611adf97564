# ruff: noqa
# Session-5 experiment scripts for the docstring corpora (BENCHMARKS.md, "docstring5 (session 5)"); run from the repo root.
"""Record what the re-ranker sees for every docstring query (rows, fused scores, query) into a pickle.

    PYTHONPATH=$PWD SEMCODE_INPROCESS_MODEL=1 flock /tmp/semcode-heavy.lock .venv/bin/python \
        bench/docstring5/dump.py INDEX_ROOT OUT.pkl SPEC...

``replay.py`` then re-runs only the re-ranking on those inputs (no model, no store), so ranking rules
can be compared on exactly the candidates a real search fetched.
"""

import copy, pickle, sys, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from quality_sweep import load_bench, DEFAULT_BENCH
from engine.config import EngineConfig
from engine.workspace import Workspace
import engine.search as S

root, out, specs = sys.argv[1], sys.argv[2], sys.argv[3:]
bench = load_bench(DEFAULT_BENCH)
captured = []


class Recording(S.Reranker):
    def rerank(self, rows, base, query):
        captured.append((copy.deepcopy(rows), dict(base), query))
        return super().rerank(rows, base, query)


S.Reranker = Recording
res = {}
for s in specs:
    spec = bench.Spec(s)
    prep = bench.prepare(spec, Path("/tmp/codesearch-bench-cache"), 300, 0, quiet=True)
    ws = Workspace(Path(prep.corpus_dir), EngineConfig(index_dir=f"{root}/{spec.key}-default"))
    st = ws.index()
    items, ranked = [], []
    t = time.time()
    for q in prep.queries:
        captured.clear()
        hits = ws.searcher.search(q["query"], limit=10)
        ranked.append([(h.path, h.start_line, h.end_line) for h in hits])
        items.append({"q": q, "input": captured[0]})
    sc = bench.score(prep.queries, ranked)
    print(s, "mrr", round(sc["mrr10"], 3), f"{time.time() - t:.1f}s", file=sys.stderr)
    res[s] = {"queries": prep.queries, "items": items, "mrr": sc["mrr10"]}
pickle.dump(res, open(out, "wb"))
