"""Unit tests of the logic around the model: a deterministic fake embedder, a real LanceDB in tmp_path.

The fake hashes words into a small vector: texts sharing words are close. That is enough to test
hosting, fusion plumbing, filters and serialisation; search quality is tested with the real model.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from engine.config import EngineConfig
from engine.models.base import Embedder, ModelInfo
from engine.workspace import Workspace

DIMENSION = 64
_WORD = re.compile(r"[A-Za-z]+")


class FakeEmbedder(Embedder):
    """Bag of hashed lower-case words; ``gate`` (when set) blocks every batch until it is opened."""

    def __init__(self) -> None:
        self.info = ModelInfo(
            name="fake-hash",
            path="<fake>",
            dimension=DIMENSION,
            context_length=512,
            pooling="mean",
            fingerprint=f"fake-hash-{DIMENSION}",
        )
        self.gate: threading.Event | None = None
        self.batches = 0

    def _embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        if self.gate is not None:
            self.gate.wait(30)
        self.batches += 1
        out = np.zeros((len(texts), DIMENSION), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % DIMENSION] += 1.0
            out[row, 0] += 0.01  # never a zero vector
        return out

    def count_tokens(self, text: str) -> int:
        return len(text.split()) + 2


SOURCES = {
    "net/retry.py": (
        "def retry_request(url, attempts):\n"
        '    """Retry an HTTP request with exponential backoff."""\n'
        "    for attempt in range(attempts):\n"
        "        delay = 2 ** attempt\n"
        "    return url\n"
    ),
    "text/slug.py": (
        "def slugify(title):\n"
        '    """Turn a title into a URL slug."""\n'
        "    words = title.lower().split()\n"
        "    return '-'.join(words)\n"
    ),
    "web/format.js": (
        "function formatDate(date) {\n  // format a date as ISO text\n  const text = date.toISOString();\n"
        "  return text.slice(0, 10);\n}\n"
    ),
}


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def small_root(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    for rel, text in SOURCES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


@pytest.fixture
def config(tmp_path: Path) -> EngineConfig:
    return EngineConfig(index_dir=str(tmp_path / "index"), threads=1)


@pytest.fixture
def workspace(small_root: Path, config: EngineConfig, fake_embedder: FakeEmbedder) -> Workspace:
    return Workspace(small_root, config, embedder=fake_embedder)
