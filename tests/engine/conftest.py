"""Fixtures for the engine tests. Session-wide ones (cache dir, default model) live in tests/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

# ---------------------------------------------------------------------------------------------------
# Embedding model fixtures (engine/models, tests/engine/test_models.py).
# tests/conftest.py sets $SEMCODE_CACHE_DIR for the session and `default_model_path` converts the
# default model into it once; these build on that.
# ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def llama_embedder(default_model_path: Path) -> Iterator[object]:
    """A LlamaEmbedder loaded straight from the default model file (thread-safe, shared)."""
    from engine.config import EngineConfig
    from engine.models import load_embedder

    emb = load_embedder(EngineConfig(model_path=str(default_model_path), threads=2), in_process=True)
    yield emb
    emb.close()


@pytest.fixture(scope="session")
def minilm_variants(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """all-MiniLM-L6-v2 as F32, F16 (our converter) and Q8_0, Q4_K_M, BF16 (llama.cpp's quantizer)."""
    from engine.models.convert import convert, load_source, quantize

    out = tmp_path_factory.mktemp("minilm-variants")
    source = load_source()
    paths = {kind: convert(out / f"minilm-{kind}.gguf", outtype=kind, source=source) for kind in ("f32", "f16")}
    for kind in ("q8_0", "q4_k_m", "bf16"):
        paths[kind] = quantize(paths["f32"], out / f"minilm-{kind}.gguf", kind)
    return paths
