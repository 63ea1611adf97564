"""How far each model format's vectors are from F32's, on the same texts and the same calls.

    python bench/bench_format_agreement.py --texts 200 --model bf16=/tmp/flops/minilm-bf16.gguf

Run it with the Python of the build to test (BF16 is only fast with AVX512_BF16). Prints min / p1 /
median cosine to the F32 vector and to the shipped Q8_0's per format (normalised vectors, calls of 32
texts in input order).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from bench_embed import stdlib_functions  # noqa: E402

from engine.models.provision import default_model_path  # noqa: E402


def vectors(model: str, texts: list[str]) -> np.ndarray:
    import llama_cpp

    from engine.models.backend import ensure_cpu_backend

    ensure_cpu_backend(llama_cpp)  # a dispatch build has no CPU backend until one is loaded
    with contextlib.redirect_stderr(io.StringIO()):
        llm = llama_cpp.Llama(model_path=model, embedding=True, n_ctx=512, n_batch=512, n_ubatch=512,
                              n_threads=2, flash_attn=True, verbose=False)  # fmt: skip
    out = []
    for i in range(0, len(texts), 32):
        out.extend(llm.embed(texts[i : i + 32], normalize=True, truncate=True))
    llm.close()
    return np.asarray(out, dtype=np.float64)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--texts", type=int, default=200)
    ap.add_argument("--model", action="append", default=[], help="NAME=GGUF, compared with F32")
    args = ap.parse_args()
    texts = stdlib_functions(args.texts)
    models = {"q8_0": str(default_model_path()), "f16": str(default_model_path(quant="f16"))}
    models.update(dict(m.split("=", 1) for m in args.model))
    reference = vectors(str(default_model_path(quant="f32")), texts)
    shipped = vectors(models["q8_0"], texts)
    for name, path in models.items():
        mine = vectors(path, texts)
        for ref_name, ref in (("f32", reference), ("q8_0", shipped)):
            cos = np.sum(mine * ref, axis=1)
            print(
                f"{name:>14} vs {ref_name:>4}: min {cos.min():.6f}  p1 {np.percentile(cos, 1):.6f}  "
                f"median {np.median(cos):.6f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
