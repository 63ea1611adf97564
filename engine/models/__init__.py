"""Embedding models: validate a GGUF file, provision the default one, load it into llama.cpp."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import EngineConfig
from .base import Embedder, ModelInfo
from .cpu_build import check_build
from .formats import FormatChoice, choose
from .gguf_file import GGUFInfo, inspect_gguf
from .info import model_info
from .provision import default_model_path
from .registry import Prefixes, known_prefixes, resolve_prefixes

if TYPE_CHECKING:
    from .llama import LlamaEmbedder
    from .worker import WorkerEmbedder

__all__ = [
    "Embedder",
    "FormatChoice",
    "GGUFInfo",
    "ModelInfo",
    "Prefixes",
    "ResolvedModel",
    "default_model_path",
    "describe_model",
    "inspect_gguf",
    "known_prefixes",
    "load_embedder",
    "resolve_model",
    "resolve_prefixes",
]


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    """The model file a config names, the file llama.cpp loads for it (its format) and its prefixes."""

    path: Path  # what llama.cpp loads: the configured file, or its BF16 copy
    gguf: GGUFInfo  # that file's header
    prefixes: Prefixes
    choice: FormatChoice

    def info(self) -> ModelInfo:
        return model_info(
            self.gguf, self.path, query_prefix=self.prefixes.query, document_prefix=self.prefixes.document
        )


def resolve_model(config: EngineConfig, *, index_exists: Callable[[ModelInfo], bool] | None = None) -> ResolvedModel:
    """The configured GGUF (or the default one), in the format ``model_format`` picks (engine/models/formats.py).

    ``index_exists`` (a workspace's): an index already built with one format keeps it. May make the BF16
    copy once (a child process, ~2 s for the default model) or convert the default model once.
    """
    source = Path(config.model_path).expanduser() if config.model_path else default_model_path()
    source_info = inspect_gguf(source)
    prefixes = resolve_prefixes(config, source_info.name, source)

    def file_index_exists(gguf: GGUFInfo) -> bool:  # with the identity an index of that file would have
        info = model_info(gguf, gguf.path, query_prefix=prefixes.query, document_prefix=prefixes.document)
        return index_exists is not None and index_exists(info)

    choice = choose(config, source_info, index_exists=file_index_exists if index_exists is not None else None)
    info = source_info if choice.path == source_info.path else inspect_gguf(choice.path)
    return ResolvedModel(choice.path, info, prefixes, choice)


def describe_model(config: EngineConfig, resolved: ResolvedModel | None = None) -> ModelInfo:
    """The ``ModelInfo`` that ``load_embedder(config).info`` reports, from the GGUF header alone.

    Milliseconds, no llama.cpp: the engine can open an index (dimension, fingerprint) before, or without,
    loading the model. Raises the same ModelError subclasses as ``load_embedder`` for a bad file. With no
    ``model_path`` it may convert the default model first (once per cache).
    """
    if config.embeddings_url:  # a model server: its model name and dimension come from one request
        return _remote(config).info
    return (resolved or resolve_model(config)).info()


def load_embedder(
    config: EngineConfig, *, in_process: bool | None = None, resolved: ResolvedModel | None = None
) -> Embedder:
    """The configured embedding model, checked before llama.cpp sees it (precise ModelError subclasses).

    By default llama.cpp runs in child processes (``WorkerEmbedder``): a native crash becomes a
    ``ModelWorkerError`` and a restart, not the death of the CLI or server. ``in_process=True`` (or the
    environment variable ``SEMCODE_INPROCESS_MODEL=1``) loads it into this process instead (benchmarks;
    also the default on Windows).
    """
    if config.embeddings_url:  # a model server: no local model file is loaded at all
        return _remote(config)
    resolved = resolved or resolve_model(config)
    path, info, prefixes = resolved.path, resolved.gguf, resolved.prefixes
    # A build for instructions this CPU lacks (a venv shared with an AVX-512 machine) is named here, with
    # the fix, before any process loads llama.cpp and dies of SIGILL (engine/models/cpu_build.py).
    check_build()
    if in_process is None:
        in_process = os.environ.get("SEMCODE_INPROCESS_MODEL", "").strip().lower() in ("1", "true", "yes")
        # The worker's pipes use select() and POSIX signals; on Windows the model stays in-process.
        in_process = in_process or sys.platform == "win32"
    if in_process:
        from .llama import LlamaEmbedder  # imports llama_cpp: only when a model is really needed

        cls: type[LlamaEmbedder | WorkerEmbedder] = LlamaEmbedder
    else:
        from .worker import WorkerEmbedder

        cls = WorkerEmbedder
    return cls(
        path,
        threads=config.effective_threads(),
        batch_size=config.batch_size,
        query_prefix=prefixes.query,
        document_prefix=prefixes.document,
        gguf_info=info,
    )


def _remote(config: EngineConfig) -> Embedder:
    from .remote import RemoteEmbedder

    assert config.embeddings_url is not None
    return RemoteEmbedder(
        config.embeddings_url,
        model=config.embeddings_model,
        batch_size=config.batch_size,
        max_tokens=config.embeddings_max_tokens,
        query_prefix=config.query_prefix,
        document_prefix=config.document_prefix,
    )
