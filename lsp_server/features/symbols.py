"""textDocument/documentSymbol from tree-sitter, for Serena-style clients and outlines."""

from __future__ import annotations

import logging
from urllib.parse import unquote

from lsprotocol import types

from engine.chunking import document_symbols, language_for_path
from engine.errors import SemcodeError

from ..convert import symbol_to_document_symbol, uri_to_path
from ..server import SemcodeServer

log = logging.getLogger(__name__)


def document_text(ls: SemcodeServer, uri: str) -> str | None:
    """The text to outline: the editor's buffer when open, else the file if it is a regular file
    inside a workspace folder. Nothing outside the folders is read; FIFOs and devices never are.
    """
    try:
        path = uri_to_path(uri)
    except ValueError:
        return None
    host = ls.folder_for(path)
    if host is None:
        log.info("documentSymbol: %s is outside the workspace folders", path)
        return None
    opened = ls.workspace.text_documents.get(unquote(uri))
    if opened is not None:
        source: str = opened.source
        return source
    try:
        return host.workspace.read_text(path)
    except SemcodeError as exc:
        log.info("documentSymbol: %s", exc)
        return None


async def document_symbol(ls: SemcodeServer, params: types.DocumentSymbolParams) -> list[types.DocumentSymbol]:
    uri = params.text_document.uri
    try:
        language = language_for_path(uri_to_path(uri).name)
    except ValueError:
        return []
    if language is None:
        return []
    text = await ls.in_thread(document_text, ls, uri)
    if text is None:
        return []
    symbols = await ls.in_thread(document_symbols, language, text)
    lines = text.splitlines()
    encoding = ls.workspace.position_encoding or types.PositionEncodingKind.Utf16
    return [symbol_to_document_symbol(s, lines, encoding) for s in symbols]
