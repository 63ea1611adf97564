"""The static tier: distilled from the real GGUF model through llama.cpp, searched through a real LanceDB.

Distilling the whole 30K vocabulary takes a while on 2 cores, so these tests distill the first few
thousand ids and let the embedder distill any other token on first sight (the huge-vocabulary path).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from engine.config import EngineConfig
from engine.models.static import (
    GGUFTokenizer,
    StaticEmbedder,
    StaticSettings,
    StaticTable,
    _special_frame,
    static_cache_path,
    zipf_sif_weights,
)
from engine.workspace import Workspace

SMALL = StaticSettings(max_tokens=3000)


@pytest.fixture(scope="module")
def static(llama_embedder) -> StaticEmbedder:
    emb = StaticEmbedder.from_model(llama_embedder.info.path, settings=SMALL, transformer=llama_embedder)
    yield emb
    emb.close()


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_dimension_and_fingerprint_come_from_the_table_not_the_transformer(static, llama_embedder) -> None:
    assert static.info.dimension == min(SMALL.pca_dims, llama_embedder.info.dimension)
    assert static.info.fingerprint != llama_embedder.info.fingerprint
    assert static.info.context_length == llama_embedder.info.context_length  # same chunks in both tiers
    vectors = static.embed_documents(["def add(a, b):\n    return a + b", "x"])
    assert vectors.shape == (2, static.info.dimension)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_tokens_are_the_models_own(static, llama_embedder) -> None:
    text = "def parse_query_string(raw: str) -> dict:"
    assert static.tokenizer.ids(text).tolist() == llama_embedder.tokenize(text)
    assert static.count_tokens(text) == llama_embedder.count_tokens(text)
    prefix, suffix = _special_frame(static.tokenizer)
    ids = static.tokenizer.ids(text).tolist()
    assert ids[: len(prefix)] == prefix and ids[len(ids) - len(suffix) :] == suffix


def test_similar_texts_are_closer_than_unrelated_ones(static) -> None:
    a, b, c = static.embed_documents(
        [
            "read the contents of a file from disk",
            "open the file and read its text",
            "compute the square root of a floating point number",
        ]
    )
    assert cosine(a, b) > cosine(a, c) + 0.1


def test_tokens_past_the_first_distillation_are_distilled_on_first_sight(static) -> None:
    table = static.table
    rare = [int(i) for i in static.tokenizer.ids("zygomorphic xylophonist") if not table.known[i]]
    assert rare, "expected ids beyond the first 3000"
    vector = static.embed_query("zygomorphic xylophonist")
    assert table.known[rare].all()
    assert np.abs(table.rows[rare]).sum() > 0
    assert np.isfinite(vector).all() and vector.any()


def test_weights_fall_with_frequency_rank() -> None:
    w = zipf_sif_weights(30_000, 1e-4)
    assert w.shape == (30_000,) and w[0] < w[100] < w[10_000] <= 1.0
    assert (zipf_sif_weights(10, 0) == 1).all()


def test_text_of_only_special_or_unknown_tokens_gets_a_fixed_nonzero_vector(static) -> None:
    vectors = static.embed_documents(["", "   "])
    assert np.isfinite(vectors).all()
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)


def test_table_is_cached_atomically_and_rebuilt_when_damaged(static, llama_embedder, tmp_path: Path) -> None:
    from engine.models import inspect_gguf

    gguf = inspect_gguf(llama_embedder.info.path)
    path = static_cache_path(gguf, SMALL)
    assert path.exists() and not list(path.parent.glob("*.tmp"))
    loaded = StaticTable.load(path, source_fingerprint=gguf.fingerprint, settings_key=SMALL.key())
    assert loaded is not None and loaded.rows.shape == static.table.rows.shape
    assert StaticTable.load(path, source_fingerprint="other", settings_key=SMALL.key()) is None
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes(path.read_bytes()[:1000])
    assert StaticTable.load(damaged, source_fingerprint=gguf.fingerprint, settings_key=SMALL.key()) is None
    other = replace(SMALL, pca_dims=64)
    assert static_cache_path(gguf, other) != path


def test_a_second_load_reads_the_cache_and_gives_the_same_vectors(static, llama_embedder) -> None:
    again = StaticEmbedder.from_model(llama_embedder.info.path, settings=SMALL, transformer=llama_embedder)
    try:
        text = "retry an HTTP request with exponential backoff"
        assert np.allclose(again.embed_query(text), static.embed_query(text), atol=1e-6)
        assert again.info.fingerprint == static.info.fingerprint
    finally:
        again.close()


def test_the_whole_pipeline_runs_on_the_static_tier(static, workspace_copy: Path, tmp_path: Path) -> None:
    ws = Workspace(workspace_copy, EngineConfig(index_dir=str(tmp_path / "index")), embedder=static)
    stats = ws.index()
    assert stats.chunks_embedded == stats.chunks_total > 0
    assert ws.store.dimension == static.info.dimension
    assert ws.search("compute the CRC32 checksum of a file", limit=5)[0].path == "python/checksum.py"
    dense_only = ws.search("compute the CRC32 checksum of a file", limit=5, hybrid=False)
    assert (dense_only[0].path, dense_only[0].symbol) == ("python/checksum.py", "crc32_of_file")
    assert ws.search("retry an HTTP request with exponential backoff", limit=5, hybrid=False)[0].path == (
        "python/http_retry.py"
    )


def test_tokenizer_closes_cleanly(llama_embedder) -> None:
    tok = GGUFTokenizer(llama_embedder.info.path)
    assert tok.n_vocab > 0 and tok.count("hello world") >= 2
    tok.close()
    tok.close()
    from engine.errors import ModelError

    with pytest.raises(ModelError):
        tok.ids("hello")
