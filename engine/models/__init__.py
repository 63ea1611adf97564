"""Embedding models: validate a GGUF file, provision the default one, load it into llama.cpp."""

from __future__ import annotations

from pathlib import Path

from ..config import EngineConfig
from .base import Embedder, ModelInfo
from .gguf_file import GGUFInfo, inspect_gguf
from .provision import default_model_path
from .registry import Prefixes, known_prefixes, resolve_prefixes

__all__ = [
    "Embedder",
    "GGUFInfo",
    "ModelInfo",
    "Prefixes",
    "default_model_path",
    "inspect_gguf",
    "known_prefixes",
    "load_embedder",
    "resolve_prefixes",
]


def load_embedder(config: EngineConfig) -> Embedder:
    """The configured embedding model, checked before llama.cpp sees it (precise ModelError subclasses)."""
    if config.embeddings_url:  # a model server: no local model file is loaded at all
        from .remote import RemoteEmbedder

        return RemoteEmbedder(
            config.embeddings_url,
            model=config.embeddings_model,
            batch_size=config.batch_size,
            max_tokens=config.embeddings_max_tokens,
            query_prefix=config.query_prefix,
            document_prefix=config.document_prefix,
        )
    from .llama import LlamaEmbedder  # imports llama_cpp: only when a model is really needed

    path = Path(config.model_path).expanduser() if config.model_path else default_model_path()
    info = inspect_gguf(path)
    prefixes = resolve_prefixes(config, info.name, path)
    return LlamaEmbedder(
        path,
        threads=config.effective_threads(),
        batch_size=config.batch_size,
        query_prefix=prefixes.query,
        document_prefix=prefixes.document,
        gguf_info=info,
    )
