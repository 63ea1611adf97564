"""Every conversion between LSP shapes and engine records lives here, and nowhere else."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from lsprotocol import types

from engine.records import SearchHit, Symbol

SYMBOL_KINDS: dict[str, types.SymbolKind] = {
    "function": types.SymbolKind.Function,
    "method": types.SymbolKind.Method,
    "class": types.SymbolKind.Class,
    "interface": types.SymbolKind.Interface,
    "struct": types.SymbolKind.Struct,
    "enum": types.SymbolKind.Enum,
    "trait": types.SymbolKind.Interface,
    "impl": types.SymbolKind.Class,
    "module": types.SymbolKind.Module,
    "namespace": types.SymbolKind.Namespace,
    "type": types.SymbolKind.TypeParameter,
    "constant": types.SymbolKind.Constant,
    "variable": types.SymbolKind.Variable,
    "field": types.SymbolKind.Field,
    "property": types.SymbolKind.Property,
    "constructor": types.SymbolKind.Constructor,
    "object": types.SymbolKind.Object,
}


def uri_to_path(uri: str) -> Path:
    parsed = urlparse(uri)
    if parsed.scheme not in ("file", ""):
        raise ValueError(f"only file URIs are supported, got {uri}")
    return Path(unquote(parsed.path))


def path_to_uri(path: Path) -> str:
    return path.resolve().as_uri()


def line_range(start_line: int, end_line: int, start_col: int = 0) -> types.Range:
    """Lines start..end (inclusive) as LSP's end-exclusive range, from the symbol's indentation.

    Starting at the indentation (spaces and tabs count alike in every encoding) puts the location
    inside the method rather than its class, which is what Serena uses to name the referencing symbol.
    """
    return types.Range(types.Position(start_line, start_col), types.Position(end_line + 1, 0))


def selection_lines(rng: types.Range) -> tuple[int, int]:
    """0-based inclusive lines of a selection; an end at column 0 of a later line does not include that line."""
    start, end = rng.start.line, rng.end.line
    if end > start and rng.end.character == 0:
        end -= 1
    return start, end


def parse_range(value: Any) -> types.Range:
    """A Range from a command argument (a dict from JSON or an lsprotocol Range)."""
    if isinstance(value, types.Range):
        return value
    try:
        start, end = value["start"], value["end"]
        return types.Range(
            types.Position(int(start["line"]), int(start["character"])),
            types.Position(int(end["line"]), int(end["character"])),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not an LSP range: {value!r}") from exc


def search_result(record: dict[str, Any], *, partial: bool) -> dict[str, Any]:
    """One ``workspace/semanticSearch`` result from an ``engine.results.hit_record``."""
    result: dict[str, Any] = {
        "uri": path_to_uri(Path(record["abs_path"])),
        "range": {
            "start": {"line": record["start_line"], "character": record["start_col"]},
            "end": {"line": record["end_line"] + 1, "character": 0},
        },
        "score": record["score"],
        "preview": record["preview"],
        "why": record["why"],
    }
    if record["symbol"]:
        result |= {"symbol": record["symbol"], "namePath": record["name_path"]}
    for key in ("kind", "language"):
        if record[key]:
            result[key] = record[key]
    if partial:
        result["partial"] = True
    if record.get("source") == "buffer":  # the editor's unsaved text, not the file on disk
        result |= {"dirty": True, "source": "buffer"}
    return result


def hit_to_location(hit: SearchHit, root: Path) -> types.Location:
    return types.Location(
        uri=path_to_uri(root / hit.path), range=line_range(hit.start_line, hit.end_line, hit.start_col)
    )


def hit_to_symbol_information(hit: SearchHit, root: Path) -> types.SymbolInformation:
    name = hit.symbol.rsplit(".", 1)[-1] if hit.parent else hit.symbol
    return types.SymbolInformation(
        name=name or hit.symbol,
        kind=SYMBOL_KINDS.get(hit.kind, types.SymbolKind.Variable),
        location=hit_to_location(hit, root),
        container_name=hit.parent or None,
    )


def _column(line_text: str, char_col: int, encoding: str) -> int:
    """A code-point column as the negotiated position encoding counts it."""
    prefix = line_text[:char_col]
    if encoding == types.PositionEncodingKind.Utf8:
        return len(prefix.encode("utf-8"))
    if encoding == types.PositionEncodingKind.Utf32:
        return len(prefix)
    return len(prefix.encode("utf-16-le")) // 2


def symbol_to_document_symbol(symbol: Symbol, lines: list[str], encoding: str) -> types.DocumentSymbol:
    def pos(line: int, col: int) -> types.Position:
        text = lines[line] if 0 <= line < len(lines) else ""
        return types.Position(line, _column(text, col, encoding))

    full = types.Range(pos(symbol.start_line, symbol.start_col), pos(symbol.end_line, symbol.end_col))
    selection = types.Range(
        pos(symbol.selection_line, symbol.selection_col), pos(symbol.selection_line, symbol.selection_end_col)
    )
    if not (full.start.line <= selection.start.line <= full.end.line):
        selection = types.Range(full.start, full.start)  # LSP requires selection inside the range
    return types.DocumentSymbol(
        name=symbol.name or "<anonymous>",
        kind=SYMBOL_KINDS.get(symbol.kind, types.SymbolKind.Variable),
        range=full,
        selection_range=selection,
        children=[symbol_to_document_symbol(child, lines, encoding) for child in symbol.children],
    )


def to_plain(value: Any) -> Any:
    """pygls hands unknown methods' params over as namedtuple-like objects: make them dicts and lists."""
    if hasattr(value, "_asdict"):
        return {k: to_plain(v) for k, v in value._asdict().items()}
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    return value
