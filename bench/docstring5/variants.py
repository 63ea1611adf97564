# ruff: noqa
# Variants for replay.py (exec'd inside it: evaluate, R, RankingOptions in scope).
base = RankingOptions()
evaluate("no-agreement", base.without("agreement"))
for b in (0.15, 0.2, 0.3, 0.4, 0.5, 0.7):
    R.NAME_AGREEMENT_BOOST = b
    evaluate(f"agreement {b}")
R.NAME_AGREEMENT_BOOST = 0.3
R.NAME_WORDS_BOOST = 0.0
evaluate("agreement 0.3, name words off")
R.NAME_WORDS_BOOST = 0.2
R.AGREEMENT_FORMS = frozenset({"prose"})
evaluate("agreement 0.3 prose only")
R.AGREEMENT_FORMS = frozenset({"prose", "question", "topic"})
