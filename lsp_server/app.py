"""Every LSP method and command semcode answers, registered in one place."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lsprotocol import types

from .features import indexing, lifecycle, search, similar, symbols
from .server import METRICS, SEMANTIC_SEARCH, STATUS, SemcodeServer

# (method, handler, registration options)
FEATURES: list[tuple[str, Callable[..., Any], Any]] = [
    (types.INITIALIZE, lifecycle.initialize, None),
    (types.INITIALIZED, lifecycle.initialized, None),
    (types.WORKSPACE_DID_CHANGE_CONFIGURATION, lifecycle.did_change_configuration, None),
    (types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS, lifecycle.did_change_workspace_folders, None),
    (types.SHUTDOWN, lifecycle.shutdown, None),
    (types.TEXT_DOCUMENT_DID_SAVE, indexing.did_save, None),
    (types.TEXT_DOCUMENT_DID_OPEN, indexing.did_open, None),
    (types.TEXT_DOCUMENT_DID_CHANGE, indexing.did_change, None),
    (types.TEXT_DOCUMENT_DID_CLOSE, indexing.did_close, None),
    (types.WORKSPACE_DID_CHANGE_WATCHED_FILES, indexing.did_change_watched_files, None),
    (types.WINDOW_WORK_DONE_PROGRESS_CANCEL, indexing.progress_cancel, None),
    (SEMANTIC_SEARCH, search.semantic_search, None),
    (types.WORKSPACE_SYMBOL, search.workspace_symbol, None),
    (STATUS, search.status, None),
    (METRICS, search.metrics_report, None),
    (types.TEXT_DOCUMENT_CODE_ACTION, similar.code_action, similar.CODE_ACTION_OPTIONS),
    (types.TEXT_DOCUMENT_REFERENCES, similar.references, None),
    (types.TEXT_DOCUMENT_DOCUMENT_SYMBOL, symbols.document_symbol, None),
]

COMMANDS: list[tuple[str, Callable[..., Any]]] = [
    ("semcode.reindex", indexing.reindex),
    ("semcode.status", search.status_command),
    (similar.FIND_SIMILAR, similar.find_similar_command),
]


def create_server() -> SemcodeServer:
    server = SemcodeServer()
    for method, handler, options in FEATURES:
        if options is None:
            server.feature(method)(handler)
        else:
            server.feature(method, options)(handler)
    for name, handler in COMMANDS:
        server.command(name)(handler)
    return server
