"""``semcode doctor``: each part of the stack checked for real, with the fix when it fails."""

from __future__ import annotations

import importlib
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from engine.config import EngineConfig, cache_root
from engine.errors import SemcodeError


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


DEPENDENCIES = (
    ("llama_cpp", "llama-cpp-python"),
    ("lancedb", "lancedb"),
    ("pyarrow", "pyarrow"),
    ("tree_sitter_language_pack", "'tree-sitter-language-pack>=0.13,<1'"),
    ("pygls", "pygls"),
    ("psutil", "psutil"),
    ("gguf", "gguf"),
    ("safetensors", "safetensors"),
    ("pathspec", "pathspec"),
)
GRAMMAR_PROBES = {
    "python": "def f(x):\n    return x\n",
    "javascript": "function f(x) { return x }\n",
    "typescript": "function f(x: number): number { return x }\n",
    "go": "package m\nfunc F() {}\n",
    "rust": "fn f() {}\n",
    "java": "class A { void f() {} }\n",
    "c": "int f(void) { return 0; }\n",
}


def _guard(name: str, fn: Callable[[], Check]) -> Check:
    try:
        return fn()
    except SemcodeError as exc:
        return Check(name, False, str(exc), _fix_for(exc))
    except Exception as exc:  # noqa: BLE001 - doctor reports every failure instead of crashing
        return Check(name, False, f"{type(exc).__name__}: {exc}", "report this as a bug with the output above")


def _fix_for(exc: Exception) -> str:
    text = str(exc)
    return text.split("run ", 1)[1] if "run `" in text else ""


def run_checks(config: EngineConfig) -> list[Check]:
    checks = [
        Check(
            "python",
            sys.version_info >= (3, 10),
            f"{platform.python_version()} ({sys.executable})",
            "use Python 3.10 or newer",
        )
    ]
    for module, package in DEPENDENCIES:
        checks.append(_guard(f"module {module}", lambda m=module, p=package: _import(m, p)))
    checks.append(_guard("model", lambda: _model(config)))
    if config.embeddings_url:
        checks.append(_guard("embeddings server", lambda: _embeddings_server(config)))
    if config.shared_index:
        checks.append(_guard("shared index", lambda: _shared_index(config)))
    checks.append(_guard("store", lambda: _store()))
    checks.append(_guard("memory", _memory))
    checks.append(_guard("grammars", _grammars))
    checks.append(Check("cache dir", True, str(cache_root())))
    return checks


def _import(module: str, package: str) -> Check:
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        return Check(f"module {module}", False, str(exc), f"pip install {package}")
    return Check(f"module {module}", True, getattr(mod, "__version__", "installed"))


def _model(config: EngineConfig) -> Check:
    from engine.workspace import shared_embedder

    started = time.perf_counter()
    embedder = shared_embedder(config)
    vector = embedder.embed_query("open a file and read its lines")
    info = embedder.info
    ms = (time.perf_counter() - started) * 1000
    return Check(
        "model",
        bool(vector.shape == (info.dimension,)),
        f"{info.name}: dim {info.dimension}, context {info.context_length}, pooling {info.pooling}, "
        f"loaded and embedded in {ms:.0f} ms ({info.path})",
    )


def _embeddings_server(config: EngineConfig) -> Check:
    from engine.workspace import shared_embedder

    embedder = shared_embedder(config)  # probed on creation: unreachable, wrong key, not embeddings
    started = time.perf_counter()
    vectors = embedder.embed_documents(["def read_lines(path):\n    return open(path).read().splitlines()"])
    ms = (time.perf_counter() - started) * 1000
    info = embedder.info
    tokenizer = getattr(embedder, "_tokenize_style", None) or "none (token counts estimated)"
    return Check(
        "embeddings server",
        bool(vectors.shape == (1, info.dimension)),
        f"{getattr(embedder, 'url', config.embeddings_url)}: model {info.name}, dim {info.dimension}, "
        f"context {info.context_length}, tokenizer {tokenizer}, one embedding in {ms:.0f} ms",
    )


def _shared_index(config: EngineConfig) -> Check:
    from engine.chunking import CHUNKER_VERSION
    from engine.shared_index import SharedLocation, check_compatible
    from engine.workspace import shared_embedder

    location = SharedLocation(config.shared_index or "")
    info = location.latest()
    check_compatible(info, shared_embedder(config).info, chunker_version=CHUNKER_VERSION, uri=location.uri)
    return Check("shared index", True, f"{location.uri}: {info.describe()}, published {info.published_at}")


def _store() -> Check:
    import numpy as np

    from engine.records import Chunk
    from engine.store import ChunkStore, FileRecord

    with tempfile.TemporaryDirectory(prefix="semcode-doctor-") as tmp:
        store = ChunkStore(Path(tmp), dimension=8, fingerprint="doctor")
        chunk = Chunk("a.py", "python", 0, 0, "x = 1")
        vector = np.ones((1, 8), dtype=np.float32) / np.sqrt(8)
        store.replace_files([FileRecord("a.py", 5, 0, "h", 1)], [chunk], vector, ["x"])
        hits = store.vector_search(vector[0], limit=1)
    return Check("store", len(hits) == 1, "LanceDB write + vector search in a temp dir worked")


def _memory() -> Check:
    from engine.memory import MemoryMonitor

    reading = MemoryMonitor().read()
    return Check(
        "memory",
        True,
        f"{reading.available_mb:.0f} MB available ({reading.percent_used:.0f}% used), "
        f"pressure {reading.pressure.name.lower()}",
    )


def _grammars() -> Check:
    from engine.chunking import document_symbols

    missing = [lang for lang, code in GRAMMAR_PROBES.items() if not document_symbols(lang, code)]
    if missing:
        return Check(
            "grammars",
            False,
            f"no symbols parsed for: {', '.join(missing)}",
            "pip install 'tree-sitter-language-pack>=0.13,<1'",
        )
    return Check("grammars", True, f"parsed {', '.join(GRAMMAR_PROBES)} offline")
