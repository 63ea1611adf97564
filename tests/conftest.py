"""Session-wide fixtures: a private semcode cache (the real default model is converted into it once)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
WORKSPACE_FIXTURE = FIXTURES / "workspace"

# Set before any test (and any server subprocess) starts, so nothing touches the user's real cache.
_SESSION_CACHE = Path(tempfile.mkdtemp(prefix="semcode-test-cache-"))
os.environ["SEMCODE_CACHE_DIR"] = str(_SESSION_CACHE)
# The model file as it is unless a test asks for another format (model_format in its config wins over this):
# many tests compare embedders reached by different routes (a LlamaEmbedder on a file, load_embedder on a
# config naming it), which auto would split on a CPU with AVX512_BF16 (engine/models/formats.py). The
# format choice itself (auto, bf16) is tested in tests/unit/test_format_choice.py and tests/engine/test_bf16_copy.py.
os.environ.setdefault("SEMCODE_MODEL_FORMAT", "as-is")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_SESSION_CACHE, ignore_errors=True)


@pytest.fixture(scope="session")
def semcode_cache() -> Path:
    return _SESSION_CACHE


@pytest.fixture(scope="session")
def default_model_path(semcode_cache: Path) -> Path:
    """The default GGUF model, converted from the packaged weights (once per session)."""
    from engine.models import default_model_path

    return default_model_path()


@pytest.fixture(scope="session")
def embedder(default_model_path: Path):
    """The real default embedder, shared by the tests (llama.cpp calls are serialised inside it)."""
    from engine.config import EngineConfig
    from engine.workspace import shared_embedder

    return shared_embedder(EngineConfig())


@pytest.fixture
def workspace_copy(tmp_path: Path) -> Path:
    """A private copy of the fixture workspace, plus files that must never be indexed."""
    root = tmp_path / "ws"
    shutil.copytree(WORKSPACE_FIXTURE, root)
    (root / "ignored_dir").mkdir()
    (root / "ignored_dir" / "hidden.py").write_text("def secret_helper_in_ignored_dir():\n    return 1\n")
    (root / "node_modules" / "pkg").mkdir(parents=True)
    (root / "node_modules" / "pkg" / "index.js").write_text("function vendoredThing() { return 1 }\n")
    (root / ".env").write_text("API_KEY=abc123\n")
    (root / "debug.log").write_text("def in_log(): pass\n")
    return root
