"""Do the packing plans change any vector? Cosine to the same text embedded alone, per plan and format.

    .venv/bin/python bench/bench_pack_vectors.py [--texts 256] [--formats q8_0,f32]

For each model format: every text embedded alone (one text per call: the reference), then the same
256-text write batch as (a) calls of 32 in input order without reordering, (b) each call of 32
reordered first-fit-decreasing (the session-3 engine), (c) one plan over the whole batch, calls of
whole bins (``Embedder.embed_packed``, the engine now). Prints min / 1st percentile / median cosine.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from bench_embed import stdlib_functions
from bench_throughput import model_file

from engine.models.llama import LlamaEmbedder


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--texts", type=int, default=256)
    ap.add_argument("--formats", default="q8_0,f32")
    args = ap.parse_args()
    texts = stdlib_functions(args.texts)
    for fmt in args.formats.split(","):
        emb = LlamaEmbedder(model_file(fmt), threads=2)
        try:
            alone = np.concatenate([emb.embed_documents([t]) for t in texts])
            emb.pack = False
            plain = np.concatenate(list(emb.embed_batch(texts, batch_size=32)))
            emb.pack = True
            per_call = np.concatenate(list(emb.embed_batch(texts, batch_size=32)))  # FFD within each call
            planned = np.zeros_like(alone)
            for positions, vectors in emb.embed_packed(texts, batch_size=32):
                planned[list(positions)] = vectors
        finally:
            emb.close()
        for name, got in (("calls of 32, input order", plain), ("FFD per call", per_call), ("one plan", planned)):
            cos = (got * alone).sum(axis=1)
            print(f"{fmt:5s} {name:26s} cosine to alone: min {cos.min():.6f}  p1 {np.percentile(cos, 1):.6f}  "
                  f"median {np.median(cos):.6f}  ({len(texts)} texts)", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
