# ruff: noqa
# Session-4 experiment scripts for the docstring corpora (BENCHMARKS.md, "docstring (session 4)"); run from the repo root.
for v in (0.15, 0.1):
    R.STEM_WORD_BOOST = v
    evaluate(f"stem word {v}")
R.STEM_WORD_BOOST = 0.25
R.PATH_WORD_BOOST = 0.04
R.PATH_WORD_CAP = 0.08
evaluate("path word 0.04")
R.PATH_WORD_BOOST = 0.08
R.PATH_WORD_CAP = 0.16
