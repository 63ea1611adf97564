# ruff: noqa
# Session-4 experiment scripts for the docstring corpora (BENCHMARKS.md, "docstring (session 4)"); run from the repo root.
import json, sys, collections, re

res = json.load(open(sys.argv[1]))
for s, d in res.items():
    cats = collections.Counter()
    lost = collections.Counter()
    for r in d["rows"]:
        rank = r["rank"]
        if rank == 1:
            continue
        q = r["q"]
        tsym = q["symbol"].split(".")[-1]
        above = r["hits"][: (rank - 1) if rank else 10]
        c = set()
        for h in above:
            hs = (h["sym"] or "").split(".")[-1]
            if h["path"] == q["path"] and hs == tsym:
                c.add("same-name same-file (overload/window)")
            elif h["path"] == q["path"] and h["kind"] in ("class", "interface"):
                c.add("own class header")
            elif h["path"] == q["path"]:
                c.add("same file other")
            elif re.search(r"test", h["path"]):
                c.add("test")
            elif h["kind"] == "block":
                c.add("block")
            elif h["e"] - h["s"] < 4:
                c.add("tiny")
            elif hs == tsym:
                c.add("same name other file")
        first = None
        for h in above[:1]:
            hs = (h["sym"] or "").split(".")[-1]
            first = (
                "same-name same-file"
                if h["path"] == q["path"] and hs == tsym
                else ("same file" if h["path"] == q["path"] else "other")
            )
        lost[first] += 1
        for x in c:
            cats[x] += 1
    print(s, dict(cats), "top1:", dict(lost))
