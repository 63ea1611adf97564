# ruff: noqa
# Variants for replay.py (exec'd inside it): the verb lead, prose only, other constants and each signal left out.
import engine.agreement as A

orig = A.name_agreement


def lead(symbols, query_words, smoothing=0.0, factor=2.0):
    qw = list(query_words)
    res = orig(symbols, qw, smoothing=smoothing)
    if not qw:
        return res
    first = A.agreement_stem(qw[0])
    out = {}
    for cid, v in res.items():
        stems = A.name_words(symbols[cid])
        if stems and stems[0] == first:
            v = min(1.0, v * factor)
        out[cid] = v
    return out


for f in (1.3, 2.0):
    R.name_agreement = lambda s, q, smoothing=0.0, f=f: lead(s, q, smoothing, f)
    evaluate(f"lead verb x{f}")
R.name_agreement = orig
R.AGREEMENT_PROSE_ONLY = True
evaluate("prose only")
R.AGREEMENT_PROSE_ONLY = False
for b in (0.4, 0.6):
    R.NAME_AGREEMENT_BOOST = b
    evaluate(f"b={b}")
R.NAME_AGREEMENT_BOOST = 0.5
R.COHERENCE_WEIGHT = 0.1
evaluate("coherence 0.1")
R.COHERENCE_WEIGHT = 0.15
R.STEM_WORD_BOOST = 0.15
evaluate("stem word 0.15")
R.STEM_WORD_BOOST = 0.25
evaluate("no-coherence", RankingOptions().without("coherence"))
evaluate("no-filename", RankingOptions().without("filename"))
evaluate("no-diversity", RankingOptions().without("diversity"))
evaluate("no-size", RankingOptions().without("size"))
evaluate("no-overloads", RankingOptions().without("overloads"))
evaluate("no-penalties", RankingOptions().without("penalties"))
