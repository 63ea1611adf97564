"""``ModelInfo`` from a GGUF header alone: one derivation shared by ``describe_model`` and every embedder.

The context length llama.cpp is given, the pooling it applies and the fingerprint of the vectors are
decided here and nowhere else, so the engine can know a model's identity (dimension, fingerprint) in
milliseconds, without loading llama.cpp, and still get exactly what a loaded embedder reports.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from .base import ModelInfo
from .gguf_file import GGUFInfo

DEFAULT_MAX_TOKENS = 512  # larger batches were measured slower on CPU; chunks are small anyway

# llama.cpp's enum llama_pooling_type (LLAMA_POOLING_TYPE_*), kept here so deriving it needs no llama_cpp.
POOLING_UNSPECIFIED = -1
POOLING_CODES: dict[str, int] = {"none": 0, "mean": 1, "cls": 2, "last": 3}


def context_tokens(meta: GGUFInfo, max_tokens: int = DEFAULT_MAX_TOKENS) -> int:
    """n_ctx (= n_batch = n_ubatch) for the model: never above its trained context (llama.cpp aborts)."""
    trained = meta.context_length if meta.context_length > 0 else DEFAULT_MAX_TOKENS
    return max(8, min(trained, max_tokens))


def pooling_for(meta: GGUFInfo) -> tuple[str, int]:
    """(pooling name reported, llama.cpp pooling code to pass): the file's own unless it declares none."""
    if meta.pooling in ("none", "unspecified") or meta.pooling.startswith("unknown"):
        # an encoder without a declared pooling: mean pooling is the usual sentence-embedding choice
        return "mean", POOLING_CODES["mean"]
    return meta.pooling, POOLING_UNSPECIFIED  # unspecified = let llama.cpp use the file's pooling


def model_info(
    meta: GGUFInfo,
    path: str | Path,
    *,
    query_prefix: str = "",
    document_prefix: str = "",
    max_tokens: int = DEFAULT_MAX_TOKENS,
) -> ModelInfo:
    """What an embedder over ``meta`` reports as ``info``; the embedders call this too."""
    n_ctx = context_tokens(meta, max_tokens)
    pooling, _ = pooling_for(meta)
    return ModelInfo(
        name=meta.name,
        path=str(Path(path).expanduser()),
        dimension=meta.dimension,
        context_length=n_ctx,
        pooling=pooling,
        fingerprint=fingerprint(meta.fingerprint, n_ctx, pooling, query_prefix, document_prefix),
        query_prefix=query_prefix,
        document_prefix=document_prefix,
    )


def fingerprint(file_fp: str, n_ctx: int, pooling: str, query_prefix: str, document_prefix: str) -> str:
    h = hashlib.sha256()
    for part in (file_fp, str(n_ctx), pooling, query_prefix, document_prefix):
        h.update(part.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()[:32]
