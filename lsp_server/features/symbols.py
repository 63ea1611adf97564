"""textDocument/documentSymbol from tree-sitter, for Serena-style clients and outlines."""

from __future__ import annotations

from lsprotocol import types

from engine.chunking import document_symbols, language_for_path

from ..convert import symbol_to_document_symbol, uri_to_path
from ..server import SemcodeServer


def register(server: SemcodeServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    async def document_symbol(ls: SemcodeServer, params: types.DocumentSymbolParams) -> list[types.DocumentSymbol]:
        uri = params.text_document.uri
        try:
            path = uri_to_path(uri)
        except ValueError:
            return []
        language = language_for_path(path.name)
        if language is None:
            return []
        document = ls.workspace.get_text_document(uri)
        try:
            text = document.source  # open buffer, or read from disk by pygls
        except OSError:
            return []
        symbols = await ls.in_thread(document_symbols, language, text)
        lines = text.splitlines()
        encoding = ls.workspace.position_encoding or types.PositionEncodingKind.Utf16
        return [symbol_to_document_symbol(s, lines, encoding) for s in symbols]
