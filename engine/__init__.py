"""semcode's engine: GGUF embeddings, tree-sitter chunks, a LanceDB index and search. No LSP in here.

Names are imported lazily so that ``semcode --version`` and error paths stay fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "EngineConfig": "config",
    "SemcodeError": "errors",
    "Chunk": "records",
    "IndexProgress": "records",
    "IndexStats": "records",
    "SearchHit": "records",
    "SearchFilters": "search",
    "Workspace": "workspace",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'engine' has no attribute {name!r}")
