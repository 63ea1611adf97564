# ruff: noqa
for kinds in (None, R.CALLABLE_KINDS):
    R.AGREEMENT_KINDS = kinds
    for sm in (0.0, 0.5, 1.0, 2.0):
        R.AGREEMENT_SMOOTHING = sm
        for b in (0.3, 0.5, 0.7):
            R.NAME_AGREEMENT_BOOST = b
            for nw in (0.2, 0.0):
                R.NAME_WORDS_BOOST = nw
                evaluate(f"k={'all' if kinds is None else 'call'} sm={sm} b={b} nw={nw}")
