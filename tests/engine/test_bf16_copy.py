"""The BF16 copy of the model (engine/models/derive.py) and the format a workspace runs (formats.py).

Real model (the shipped Q8_0 file), real llama.cpp, real LanceDB: the copy is made by the real child
process, loaded by llama.cpp, and a real index is built with one format and reopened with another setting.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from engine.config import EngineConfig
from engine.errors import ModelConversionError
from engine.models import formats, inspect_gguf, resolve_model
from engine.models.derive import BF16, Q8_0, SOURCE_KEY, derive_bf16
from engine.models.gguf_file import tensor_table
from engine.models.provision import PACKAGED_MODEL
from engine.workspace import Workspace

TEXTS = [
    "def add(a, b):\n    return a + b\n",
    "retry with exponential backoff and jitter when the server returns 503",
    "class LRUCache:\n    def __init__(self, capacity: int) -> None:\n        self.data = OrderedDict()",
    "SELECT id, name FROM users WHERE created_at > NOW() - INTERVAL '7 days';",
]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def bf16_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = inspect_gguf(PACKAGED_MODEL)
    return derive_bf16(PACKAGED_MODEL, tmp_path_factory.mktemp("bf16") / "copy.gguf", source.fingerprint)


def test_the_bf16_copy_is_deterministic_and_converts_the_layers_only(bf16_copy: Path, tmp_path: Path) -> None:
    source = inspect_gguf(PACKAGED_MODEL)
    again = derive_bf16(PACKAGED_MODEL, tmp_path / "again.gguf", source.fingerprint)
    assert _sha(again) == _sha(bf16_copy)  # the same bytes every time
    info = inspect_gguf(bf16_copy)
    assert info.metadata[SOURCE_KEY] == source.fingerprint and info.fingerprint != source.fingerprint
    assert (info.dimension, info.context_length, info.name) == (source.dimension, source.context_length, source.name)
    types = {t.name: t.ttype for t in tensor_table(bf16_copy)}
    assert types["token_embd.weight"] == Q8_0 and types["blk.0.ffn_up.weight"] == BF16
    assert sum(t == BF16 for t in types.values()) == 36
    assert 34e6 < bf16_copy.stat().st_size < 36e6
    assert not list(bf16_copy.parent.glob("*.tmp"))


def test_the_bf16_copy_loads_and_agrees_with_q8_0(bf16_copy: Path) -> None:
    from engine.models.llama import LlamaEmbedder

    q8 = LlamaEmbedder(PACKAGED_MODEL, threads=2)
    bf = LlamaEmbedder(bf16_copy, threads=2)
    try:
        a, b = q8.embed_documents(TEXTS), bf.embed_documents(TEXTS)
        many = [f"{t}\n# variant {i}" * (1 + i % 5) for i, t in enumerate(TEXTS * 10)]  # 40 texts, 2-5 per decode
        batched = bf.embed_documents(many)
        alone = np.vstack([bf.embed_documents([t]) for t in many])
        assert np.sum(batched * alone, axis=1).min() > 0.9999  # packed decodes: each text its own vector
    finally:
        q8.close()
        bf.close()
    assert a.shape == b.shape == (len(TEXTS), 384)
    cosines = np.sum(a * b, axis=1)
    assert cosines.min() > 0.999, cosines  # measured min 0.99975 over 200 texts (BENCHMARKS flops9)
    assert bf.info.fingerprint != q8.info.fingerprint  # other vectors: another index, another cache


def test_a_crash_while_deriving_leaves_no_half_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = inspect_gguf(PACKAGED_MODEL)
    target = tmp_path / "models" / "copy.gguf"
    monkeypatch.setenv("SEMCODE_FAULT_AT", "derive.mid")  # the child dies like kill -9, half its tensors out
    with pytest.raises(ModelConversionError, match="exit 137"):
        derive_bf16(PACKAGED_MODEL, target, source.fingerprint)
    assert not target.exists() and not list(target.parent.glob(".copy.gguf.*.tmp"))
    # A parent killed meanwhile leaves its temporary file: the next derivation sweeps it, under the lock.
    stale = target.parent / ".copy.gguf.abc123.tmp"
    stale.write_bytes(b"GGUF half")
    monkeypatch.delenv("SEMCODE_FAULT_AT")
    derive_bf16(PACKAGED_MODEL, target, source.fingerprint)
    assert target.is_file() and not stale.exists()


def test_auto_falls_back_to_the_file_when_the_copy_cannot_be_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEMCODE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SEMCODE_FAULT_AT", "derive.mid")
    monkeypatch.setattr(formats, "cpu_bf16", lambda: formats.CpuBf16(True, "zen4", "zen4 has AVX512_BF16"))
    auto = resolve_model(EngineConfig(model_format="auto"))
    assert auto.path == PACKAGED_MODEL and "making its BF16 copy failed" in auto.choice.reason
    with pytest.raises(ModelConversionError):  # forced: an error, not a silent fallback
        resolve_model(EngineConfig(model_format="bf16"))


def _cpu_has_bf16() -> bool:
    return formats.cpu_bf16().native


def test_an_existing_q8_0_index_is_not_re_embedded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An index built with the file as it is (every index before model_format existed) keeps it under
    auto; only a folder without an index gets the BF16 copy (where the CPU backend has AVX512_BF16)."""
    monkeypatch.setenv("SEMCODE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(formats, "cpu_bf16", lambda: formats.CpuBf16(True, "zen4", "zen4 has AVX512_BF16"))
    src = Path(__file__).resolve().parents[1] / "fixtures" / "workspace"
    old, new = tmp_path / "old", tmp_path / "new"
    shutil.copytree(src, old)
    shutil.copytree(src, new)
    index_dir = str(tmp_path / "indexes")
    built = Workspace(old, EngineConfig(model_format="as-is", index_dir=index_dir, threads=2))
    first = built.index()
    assert first.chunks_embedded > 0 and built.resolved_model.path == PACKAGED_MODEL
    q8_index = built.index_path
    (old / "added.py").write_text("def freshly_added_helper(x):\n    return x * 2\n")

    reopened = Workspace(old, EngineConfig(model_format="auto", index_dir=index_dir, threads=2))  # the default
    assert reopened.resolved_model.choice.format == "as-is"
    assert "nothing is re-embedded" in reopened.resolved_model.choice.reason
    assert reopened.index_path == q8_index
    again = reopened.index()
    assert again.files_unchanged == first.files_indexed and again.chunks_embedded <= 2  # only added.py
    assert reopened.search("freshly added helper")[0].path == "added.py"

    fresh = Workspace(new, EngineConfig(model_format="auto", index_dir=index_dir, threads=2))
    assert fresh.resolved_model.choice.format == "bf16" and fresh.index_path != q8_index
    if _cpu_has_bf16() or os.environ.get("SEMCODE_TEST_BF16_ANYWHERE"):
        stats = fresh.index()
        assert stats.chunks_embedded > 0 and fresh.embedder.info.path == str(fresh.resolved_model.path)
        # and a reopen keeps BF16 (the copy's own index now exists)
        assert (
            Workspace(new, EngineConfig(model_format="auto", index_dir=index_dir)).resolved_model.choice.format
            == "bf16"
        )
