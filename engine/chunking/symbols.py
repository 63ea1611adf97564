"""Symbols (functions, classes, ...) of a source file, found with tree-sitter queries.

``extract_symbols`` returns the rich internal tree the chunker needs (attached comments, signature
end); ``document_symbols`` turns it into ``records.Symbol`` for LSP documentSymbol.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from engine.chunking.languages import CONTAINER_KINDS, SPECS, LanguageSpec
from engine.chunking.parsing import get_parser, get_query
from engine.chunking.resolvers import body_of, resolve
from engine.errors import DependencyMissingError
from engine.records import Symbol

if TYPE_CHECKING:
    from tree_sitter import Node

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class SymbolNode:
    """One symbol with what the chunker needs. Rows are 0-based, inclusive."""

    name: str  # short name used in paths: "request"
    display: str  # name shown in documentSymbol: "(*Server).Start", "impl Display for Point"
    kind: str
    start_line: int  # first row of the symbol incl. decorators / export / template wrappers
    end_line: int
    attached_start: int  # start_line extended up over directly-attached comments / attributes
    sig_end: int  # last row of the signature (the rest is the body); end_line when no body
    has_body: bool
    scope: str  # path segment the children use ("Point" for ``impl Display for Point``)
    qualifier: str | None  # explicit parent path (Go receiver, C++ ``Foo::bar``); None = nesting
    start_byte: int
    end_byte: int
    start_col: int
    end_col: int
    selection_line: int
    selection_col: int
    selection_end_col: int
    children: list[SymbolNode] = field(default_factory=list)


# --- extraction ---


class _Lines:
    """Per-row facts about the source bytes, cached: minified files have 200 KB rows that must not
    be rescanned for every symbol on them."""

    def __init__(self, source: bytes) -> None:
        self.rows = source.split(b"\n")
        self._ascii: dict[int, bool] = {}
        self._indent: dict[int, int] = {}
        self._content_end: dict[int, int] = {}

    def char_col(self, row: int, byte_col: int) -> int:
        """Tree-sitter byte column -> code-point column (a Python string index)."""
        if row >= len(self.rows):
            return byte_col
        ascii_row = self._ascii.get(row)
        if ascii_row is None:
            ascii_row = self._ascii[row] = self.rows[row].isascii()
        if ascii_row:
            return byte_col
        return len(self.rows[row][:byte_col].decode("utf-8", "replace"))

    def blank_before(self, row: int, byte_col: int) -> bool:
        """Only whitespace precedes ``byte_col`` on ``row``."""
        if row >= len(self.rows):
            return True
        indent = self._indent.get(row)
        if indent is None:
            line = self.rows[row]
            indent = self._indent[row] = len(line) - len(line.lstrip())
        return byte_col <= indent

    def blank_after(self, row: int, byte_col: int) -> bool:
        """Only whitespace follows ``byte_col`` on ``row``."""
        if row >= len(self.rows):
            return True
        content_end = self._content_end.get(row)
        if content_end is None:
            content_end = self._content_end[row] = len(self.rows[row].rstrip())
        return byte_col >= content_end

    def length(self, row: int) -> int:
        return len(self.rows[row]) if row < len(self.rows) else 0


def _attached_rows(language: str, spec: LanguageSpec, root: Node, lines: _Lines) -> set[int]:
    """Rows holding only a comment / attribute (candidates to stick to the symbol below)."""
    query = get_query(language, spec.attached)
    if query is None:
        return set()
    from tree_sitter import QueryCursor

    rows: set[int] = set()
    for nodes in QueryCursor(query).captures(root).values():
        for node in nodes:
            start_row, start_col = node.start_point
            end_row, end_col = node.end_point
            if end_col == 0 and end_row > start_row:  # Rust line comments include their newline
                end_row -= 1
                end_col = lines.length(end_row)
            if not lines.blank_before(start_row, start_col):
                continue  # trailing comment after code on the same line
            if not lines.blank_after(end_row, end_col):
                continue
            rows.update(range(start_row, end_row + 1))
    return rows


def _sig_end(node: Node, body: Node | None, start_line: int, end_line: int, lines: _Lines) -> int:
    if body is None:
        return end_line
    row, col = body.start_point
    # Python-like bodies start on their own line: the signature ends on the row before.
    if row > node.start_point.row and lines.blank_before(row, col):
        return max(start_line, row - 1)
    return max(start_line, row)


def extract_symbols(language: str, text: str) -> list[SymbolNode]:
    """The symbol tree of ``text`` ([] for languages without a spec). Raises on parser failure."""
    spec = SPECS.get(language)
    if spec is None:
        return []
    query = get_query(language, tuple(spec.symbols))
    if query is None:
        return []
    from tree_sitter import QueryCursor

    source = text.encode("utf-8", "surrogatepass")
    tree = get_parser(language).parse(source)
    root = tree.root_node
    lines = _Lines(source)
    attached = _attached_rows(language, spec, root, lines)

    found: list[SymbolNode] = []
    seen: set[tuple[int, int]] = set()
    for nodes in QueryCursor(query).captures(root).values():
        for node in nodes:
            kind = spec.symbols[node.type]
            resolved = resolve(language, node, kind)
            if resolved is None or not resolved.name:
                continue
            outer = resolved.outer
            while outer.parent is not None and outer.parent.type in spec.wrappers:
                outer = outer.parent
            key = (outer.start_byte, outer.end_byte)
            if key in seen:
                continue
            seen.add(key)
            start_line, end_line = outer.start_point.row, outer.end_point.row
            if outer.end_point.column == 0 and end_line > start_line:  # ends with a newline
                end_line -= 1
            attached_start = start_line
            while attached_start - 1 in attached:
                attached_start -= 1
            name_node = resolved.name_node
            anchor = name_node if name_node is not None else outer
            sel_row, sel_col = anchor.start_point
            sel_end_row, sel_end_col = anchor.end_point
            body = body_of(node)
            found.append(
                SymbolNode(
                    name=resolved.name,
                    display=resolved.display or resolved.name,
                    kind=resolved.kind,
                    start_line=start_line,
                    end_line=end_line,
                    attached_start=attached_start,
                    sig_end=_sig_end(node, body, start_line, end_line, lines),
                    has_body=body is not None,
                    scope=resolved.scope or resolved.name,
                    qualifier=resolved.qualifier,
                    start_byte=outer.start_byte,
                    end_byte=outer.end_byte,
                    start_col=lines.char_col(outer.start_point.row, outer.start_point.column),
                    end_col=lines.char_col(outer.end_point.row, outer.end_point.column),
                    selection_line=sel_row,
                    selection_col=lines.char_col(sel_row, sel_col),
                    selection_end_col=lines.char_col(
                        sel_row, sel_end_col if sel_end_row == sel_row else lines.length(sel_row)
                    ),
                )
            )
    return _nest(found)


# Functions directly inside these are methods (not inside modules / namespaces: those are functions).
_METHOD_PARENTS = (CONTAINER_KINDS | {"extension"}) - {"module", "namespace"}


def _nest(found: list[SymbolNode]) -> list[SymbolNode]:
    """Build the hierarchy by byte containment; clamp attached comments to siblings/parents."""
    found.sort(key=lambda s: (s.start_byte, -s.end_byte))
    roots: list[SymbolNode] = []
    stack: list[SymbolNode] = []
    for sym in found:
        while stack and not (sym.start_byte >= stack[-1].start_byte and sym.end_byte <= stack[-1].end_byte):
            stack.pop()
        siblings = stack[-1].children if stack else roots
        floor = stack[-1].sig_end + 1 if stack else 0
        if siblings:
            floor = max(floor, siblings[-1].end_line + 1)
        sym.attached_start = max(min(sym.attached_start, sym.start_line), min(floor, sym.start_line))
        if stack and sym.kind == "function" and stack[-1].kind in _METHOD_PARENTS:
            sym.kind = "method"
        siblings.append(sym)
        stack.append(sym)
    return roots


def _to_record(sym: SymbolNode) -> Symbol:
    return Symbol(
        name=sym.display,
        kind=sym.kind,
        start_line=sym.start_line,
        end_line=sym.end_line,
        start_col=sym.start_col,
        end_col=sym.end_col,
        selection_line=sym.selection_line,
        selection_col=sym.selection_col,
        selection_end_col=sym.selection_end_col,
        children=[_to_record(child) for child in sym.children],
    )


def document_symbols(language: str, text: str) -> list[Symbol]:
    """Hierarchical symbols of ``text`` (0-based lines, code-point columns); [] when unsupported.

    Never raises for bad input: a parser failure is logged and gives [].
    """
    try:
        return [_to_record(sym) for sym in extract_symbols(language, text)]
    except DependencyMissingError:
        raise
    except Exception:  # a grammar crash must not take the language server down
        logger.exception("symbol extraction failed for a %s document", language)
        return []
