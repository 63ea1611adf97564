# ruff: noqa
# Session-4 experiment scripts for the docstring corpora (BENCHMARKS.md, "docstring (session 4)"); run from the repo root.
from engine.ranking import RankingOptions
import engine.search as S2


def opts(**kw):
    S2_default = RankingOptions(**kw)
    for c in corpora:
        c["searcher"].ranking = S2_default


opts(overloads=False)
evaluate("base (no overloads)")
opts()
evaluate("overloads")
R.COHERENCE_SPREAD = 1
evaluate("overloads + spread 1")
opts(overloads=False)
evaluate("spread 1")
R.COHERENCE_SPREAD = 0
opts()
R.TEST_FACTOR = 0.4
evaluate("overloads + test 0.4")
R.TEST_FACTOR = 0.55
R.COHERENCE_WEIGHT = 0.0
evaluate("overloads + coh 0")
R.COHERENCE_WEIGHT = 0.15
