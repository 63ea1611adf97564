"""One module per concern; each registers its handlers on the server."""

from __future__ import annotations

from ..server import SemcodeServer
from . import indexing, lifecycle, search, similar, symbols


def register_all(server: SemcodeServer) -> None:
    for module in (lifecycle, indexing, search, similar, symbols):
        module.register(server)
