# ruff: noqa
# Session-4 experiment scripts for the docstring corpora (BENCHMARKS.md, "docstring (session 4)"); run from the repo root.
evaluate("base")
for a in (0.3, 0.6, 1.0):
    STATE["center"] = a
    evaluate(f"center {a}")
STATE["center"] = 0.0
for lex in (0.0, 0.3, 0.5, 0.7):
    S.SENTENCE_WEIGHTS = S.FusionWeights(1.0, lex, 20.0)
    evaluate(f"lex {lex}")
S.SENTENCE_WEIGHTS = S.FusionWeights(1.0, 1.0, 20.0)
