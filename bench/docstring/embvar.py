# ruff: noqa
# Session-4 experiment scripts for the docstring corpora (BENCHMARKS.md, "docstring (session 4)"); run from the repo root.
"""Embed every chunk of the kept docstring indexes with a variant header; save vectors by chunk id."""

import sys, os, re, time
from pathlib import Path
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from engine.config import EngineConfig
from engine.workspace import Workspace
from engine.chunking.chunker import HeaderFields, build_header, MAX_HEADER_WORDS
from engine.chunking.identifiers import split_identifier
import glob

os.makedirs("/tmp/ds", exist_ok=True)  # vectors go to /tmp/ds/vec-<variant>-<key>.npy (exp.py VEC=<variant>)
variant = sys.argv[1]
keys = sys.argv[2:]
_ID = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
KW = set(
    "def class return self if else elif for while in not and or is none true false import from as with try except finally raise pass lambda yield async await const let var function export new this typeof instanceof null undefined void any string number boolean".split()
)


def signature(content):
    for line in content.splitlines():
        s = line.strip()
        if not s or s.startswith(("#", "//", "/*", "*", "@")):
            continue
        return s[:120]
    return ""


def header(r):
    f = HeaderFields(r["path"], r["language"], r["symbol"], r["kind"], r["parent"])
    h = build_header(f)
    if variant == "H0":
        return h
    if variant == "nopath":
        return " | ".join(h.split(" | ")[1:])
    if variant == "nowords":
        parts = h.split(" | ")
        return " | ".join(parts[:2]) if r["symbol"] else parts[0]
    if variant == "bodywords":
        seen = {}
        for ident in _ID.findall(r["content"]):
            for w in split_identifier(ident):
                if len(w) > 2 and w not in KW:
                    seen.setdefault(w, None)
        words = list(seen)[:24]
        return h + (" | " + " ".join(words) if words else "")
    if variant == "sigwords":
        sig = signature(r["content"]) if r["symbol"] else ""
        words = [w for w in split_identifier(sig) if w not in KW][:MAX_HEADER_WORDS]
        return h + (" | " + " ".join(words) if words else "")
    if variant == "pathwords":
        parts = h.split(" | ")
        pw = " ".join(split_identifier(str(Path(r["path"]).with_suffix(""))))
        return " | ".join([pw] + parts[1:])
    raise SystemExit(variant)


for key in keys:
    t = time.time()
    d = glob.glob(f"/tmp/codesearch-bench-cache/{key}/corpus")[0]
    ws = Workspace(Path(d), EngineConfig(index_dir=f"/tmp/cs-idx/{key}-default"))
    ws.index()
    meta, vecs = ws.store.chunk_vectors("id != ''")
    texts = []
    for r in meta:
        h = header(r)
        texts.append(f"{h}\n{r['content']}" if h else r["content"])
    out = ws.embedder.embed_documents(texts)
    if variant == "H0":
        v = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
        print("H0 check: mean cos to stored", float((out * v).sum(1).mean()), "min", float((out * v).sum(1).min()))
    np.save(f"/tmp/ds/vec-{variant}-{key}.npy", out)
    with open(f"/tmp/ds/ids-{variant}-{key}.txt", "w") as fh:
        fh.write("\n".join(r["id"] for r in meta))
    print(variant, key, len(meta), f"{time.time() - t:.0f}s", texts[5][:200].replace("\n", " / "), flush=True)
