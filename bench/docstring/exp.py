# ruff: noqa
# Session-4 experiment scripts for the docstring corpora (BENCHMARKS.md, "docstring (session 4)"); run from the repo root.
"""Variant experiments on the docstring corpora: real Searcher, patched knobs, numpy dense search."""

import json, sys, time, os
from pathlib import Path
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from quality_sweep import load_bench, DEFAULT_BENCH
from engine.config import EngineConfig
from engine.workspace import Workspace
from engine.records import Candidate
import engine.ranking as R
import engine.search as S

SPECS = os.environ.get("SPECS", "pypi:requests==2.32.3 pypi:click==8.1.7 npm:rxjs@7.8.1 npm:date-fns@4.1.0").split()
root = os.environ.get("ROOT", "/tmp/cs-idx")
bench = load_bench(DEFAULT_BENCH)
corpora = []
for s in SPECS:
    spec = bench.Spec(s)
    prep = bench.prepare(spec, Path("/tmp/codesearch-bench-cache"), 300, 0, quiet=True)
    ws = Workspace(Path(prep.corpus_dir), EngineConfig(index_dir=f"{root}/{spec.key}-default"))
    ws.index()
    meta, vecs = ws.store.chunk_vectors("id != ''")
    vecs = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
    VEC = os.environ.get("VEC")
    if VEC:
        ids = open(f"/tmp/ds/ids-{VEC}-{spec.key}.txt").read().split("\n")
        loaded = np.load(f"/tmp/ds/vec-{VEC}-{spec.key}.npy")
        pos = {i: n for n, i in enumerate(ids)}
        vecs = np.stack([loaded[pos[r["id"]]] for r in meta])
    qv = np.stack([ws.embedder.embed_query(q["query"]) for q in prep.queries])
    if os.environ.get("VEC"):
        byid = {r["id"]: v for r, v in zip(meta, vecs)}
        se = ws.searcher
        orig = se._lookup

        def _lookup(*a, _orig=orig, _byid=byid, **k):
            return [row._replace(vector=_byid.get(row.candidate.id, row.vector)) for row in _orig(*a, **k)]

        se._lookup = _lookup
        searcher_obj = se
    else:
        searcher_obj = ws.searcher
    corpora.append(
        dict(spec=s, ws=ws, searcher=searcher_obj, queries=prep.queries, meta=meta, vecs=vecs, mu=vecs.mean(0), qv=qv)
    )
    print(s, len(meta), file=sys.stderr)

STATE = {"center": 0.0}


def make_dense(c):
    def _dense(vector, limit, filters, view=None):
        q = np.asarray(vector, dtype=np.float32)
        q = q / np.linalg.norm(q)
        qq = q - STATE["center"] * c["mu"]
        sims = c["vecs"] @ qq
        idx = np.argsort(-sims)[:limit]
        raw = c["vecs"][idx] @ q
        return [
            Candidate.from_row(c["meta"][i], semantic=float(raw[j] if STATE.get("rawsem", True) else sims[i]))
            for j, i in enumerate(idx)
        ]

    return _dense


def evaluate(name):
    out = []
    for c in corpora:
        c["searcher"]._dense = make_dense(c)
        ranked = []
        for q, v in zip(c["queries"], c["qv"]):
            hits = c["searcher"].search(q["query"], limit=10, vector=v)
            ranked.append([(h.path, h.start_line, h.end_line) for h in hits])
        out.append(bench.score(c["queries"], ranked)["mrr10"])
    print(f"{name:<40}" + "".join(f"{m:8.3f}" for m in out) + f"{sum(out) / len(out):9.3f}", flush=True)
    return out


if __name__ == "__main__":
    exec(open(sys.argv[1]).read())
