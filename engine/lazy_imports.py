"""Importing LanceDB without the REST client it never uses here: its largest share of the start-up.

``import lancedb`` (0.40) imports ``lance_namespace``, which imports the models of
``lance_namespace_urllib3_client``; that package's ``__init__`` also imports its nine REST API modules,
whose pydantic-validated methods are built at import time. Measured with ``python -X importtime``:
the API modules are ~40% of ``import lancedb`` (2.3 of 5.7 s on a loaded 2-core machine), and the
first search of a fresh workspace waits for that import. semcode opens local tables only, so the
package is registered with its ``__path__`` (its submodules, e.g. ``.models``, import as usual) and
its ``__init__`` runs only when someone asks the package itself for a name (a REST namespace
connection). Anything unexpected leaves the normal import in place.

``import_lancedb`` also builds LanceDB's pydantic models lazily: about 150 of them (the namespace
client's request and response models, the embedding-function registry, ``lancedb.pydantic``) are
defined at import time, and pydantic builds each one's validator and serializer as the class is
created. Built with ``defer_build`` they are built on their first validation instead, which a local
table never does: 0.65 -> 0.44-0.49 s of CPU for ``import lancedb`` after the server's own imports,
the longest step of a server's restart (BENCHMARKS.md, "restart8 (session 8)").
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import threading
import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)

DEFERRED_PACKAGE = "lance_namespace_urllib3_client"
_IMPORT_LOCK = threading.Lock()  # one thread changes pydantic's default config at a time


class _DeferredPackage(types.ModuleType):
    """A package whose ``__init__`` runs on the first attribute it does not have."""

    _loading = False

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or _DeferredPackage._loading:
            raise AttributeError(name)
        _DeferredPackage._loading = True
        try:
            spec = self.__spec__
            assert spec is not None and spec.loader is not None
            self.__class__ = types.ModuleType  # type: ignore[assignment]  # from now on an ordinary module
            spec.loader.exec_module(self)
        finally:
            _DeferredPackage._loading = False
        return getattr(self, name)


def defer_rest_client() -> None:
    """Register ``lance_namespace_urllib3_client`` without running its ``__init__`` (idempotent)."""
    if DEFERRED_PACKAGE in sys.modules:
        return
    try:
        spec = importlib.util.find_spec(DEFERRED_PACKAGE)
        if spec is None or spec.loader is None or not spec.submodule_search_locations:
            return
        module = importlib.util.module_from_spec(spec)
        module.__class__ = _DeferredPackage
    except Exception:  # an optimisation only: the normal import stays
        log.debug("could not defer %s", DEFERRED_PACKAGE, exc_info=True)
        return
    sys.modules[DEFERRED_PACKAGE] = module


@contextmanager
def deferred_pydantic_builds() -> Iterator[None]:
    """Pydantic models defined meanwhile build their validators on first use (``defer_build``).

    Only models whose own config says nothing else inherit it, and only those defined inside the
    block: ``BaseModel``'s config is restored on leaving, so a model defined later (the MCP server's)
    is built as pydantic would build it. A model built late validates the same; its first use pays
    what its definition saved. Without pydantic (or with one that has no ``model_config``) it does nothing.
    """
    try:
        from pydantic import BaseModel

        config: Any = BaseModel.model_config
        changed = isinstance(config, dict) and "defer_build" not in config
    except Exception:  # an optimisation only: the import goes on as usual
        log.debug("pydantic builds not deferred", exc_info=True)
        changed = False
    if changed:
        config["defer_build"] = True
    try:
        yield
    finally:
        if changed:
            config.pop("defer_build", None)


def import_lancedb() -> Any:
    """``import lancedb`` (and pyarrow) without the REST client's ``__init__`` and with its pydantic
    models built lazily (module doc); the module. Import errors propagate."""
    with _IMPORT_LOCK:
        defer_rest_client()
        if "lancedb" in sys.modules:
            import lancedb

            return lancedb
        with deferred_pydantic_builds():
            import lancedb
            import pyarrow  # noqa: F401 - what opening a store imports next
        return lancedb
