"""Importing LanceDB without the REST client it never uses here: its largest share of the start-up.

``import lancedb`` (0.40) imports ``lance_namespace``, which imports the models of
``lance_namespace_urllib3_client``; that package's ``__init__`` also imports its nine REST API modules,
whose pydantic-validated methods are built at import time. Measured with ``python -X importtime``:
the API modules are ~40% of ``import lancedb`` (2.3 of 5.7 s on a loaded 2-core machine), and the
first search of a fresh workspace waits for that import. semcode opens local tables only, so the
package is registered with its ``__path__`` (its submodules, e.g. ``.models``, import as usual) and
its ``__init__`` runs only when someone asks the package itself for a name (a REST namespace
connection). Anything unexpected leaves the normal import in place.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import types
from typing import Any

log = logging.getLogger(__name__)

DEFERRED_PACKAGE = "lance_namespace_urllib3_client"


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
