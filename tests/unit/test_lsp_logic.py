"""The language server's pure logic: settings, conversions, request params (no server, no model)."""

from __future__ import annotations

import pytest
from lsprotocol import types

from engine.errors import ConfigError
from engine.records import Symbol
from lsp_server.convert import (
    _column,
    line_range,
    parse_range,
    selection_lines,
    symbol_to_document_symbol,
    to_plain,
    uri_to_path,
)
from lsp_server.features.search import merge_hits, parse_search_params
from lsp_server.options import ServerOptions, merge_settings, parse_options


# --------------------------------------------------------------------- options
def test_options_defaults_and_valid_values() -> None:
    assert parse_options(None) == (ServerOptions(), [])
    options, errors = parse_options({"maxFileSize": 10, "references": {"similarCode": True}, "logLevel": "DEBUG"})
    assert errors == [] and options.engine.max_file_size == 10
    assert options.references_similar_code and options.log_level == "debug"


def test_each_bad_option_falls_back_alone() -> None:
    options, errors = parse_options({"maxFileSize": "big", "hybrid": "yes", "exclude": ["go/"], "logLevel": 3})
    assert options.engine.exclude == ("go/",) and options.engine.hybrid is True and options.log_level == "info"
    assert len(errors) == 3 and any("'big'" in e for e in errors)
    assert parse_options([1])[1] == ["settings must be an object, got list; using defaults"]
    assert "references" in parse_options({"references": True})[1][0]


def test_merge_settings_merges_nested_objects() -> None:
    merged = merge_settings({"references": {"similarCode": True}, "hybrid": False}, None, {"references": {}})
    assert merged == {"references": {"similarCode": True}, "hybrid": False}
    assert merge_settings({"a": 1}, [2]) == [2]  # not an object: passed on for parse_options to report


# --------------------------------------------------------------------- convert
def test_uris_and_ranges() -> None:
    assert str(uri_to_path("file:///tmp/a%20b.py")) == "/tmp/a b.py"
    with pytest.raises(ValueError, match="only file URIs"):
        uri_to_path("untitled:Untitled-1")
    rng = parse_range({"start": {"line": 1, "character": 2}, "end": {"line": 3, "character": 0}})
    assert selection_lines(rng) == (1, 2)  # an end at column 0 excludes that line
    assert selection_lines(types.Range(types.Position(4, 0), types.Position(4, 0))) == (4, 4)
    with pytest.raises(ValueError, match="not an LSP range"):
        parse_range({"start": 1})
    assert line_range(2, 5, 4) == types.Range(types.Position(2, 4), types.Position(6, 0))


def test_columns_follow_the_position_encoding() -> None:
    line = "é😀x"
    assert _column(line, 2, types.PositionEncodingKind.Utf16) == 3  # the emoji is two UTF-16 units
    assert _column(line, 2, types.PositionEncodingKind.Utf8) == 6
    assert _column(line, 2, types.PositionEncodingKind.Utf32) == 2


def test_document_symbol_keeps_the_selection_inside_the_range() -> None:
    symbol = Symbol(
        name="",
        kind="function",
        start_line=1,
        start_col=0,
        end_line=2,
        end_col=5,
        selection_line=9,  # outside: LSP clients reject that
        selection_col=0,
        selection_end_col=3,
    )
    converted = symbol_to_document_symbol(symbol, ["", "def f():", "  pass"], types.PositionEncodingKind.Utf16)
    assert converted.name == "<anonymous>" and converted.kind == types.SymbolKind.Function
    assert converted.selection_range == types.Range(types.Position(1, 0), types.Position(1, 0))


def test_to_plain_turns_namedtuples_into_dicts() -> None:
    from collections import namedtuple

    point = namedtuple("Object", ["query", "filters"])
    assert to_plain(point("x", [point("y", None)])) == {"query": "x", "filters": [{"query": "y", "filters": None}]}


# --------------------------------------------------------------------- workspace/semanticSearch params
def test_search_params_are_parsed() -> None:
    query, limit, filters = parse_search_params(
        {"query": "retry", "limit": 5.0, "filters": {"path": "src/**", "minScore": 0.3}}
    )
    assert (query, limit, filters.path, filters.min_score) == ("retry", 5, "src/**", 0.3)
    assert parse_search_params({"query": "x"})[1] == 10


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (None, "params must be an object"),
        ({"query": " "}, "'query' must be a non-empty string"),
        ({"query": "x", "limit": 0}, "'limit' must be an integer between 1 and 200"),
        ({"query": "x", "limit": True}, "'limit' must be an integer"),
        ({"query": "x", "extra": 1}, "unknown parameter"),
        ({"query": "x", "filters": []}, "'filters' must be an object"),
        ({"query": "x", "filters": {"lang": "py"}}, "unknown filter"),
        ({"query": "x", "filters": {"kind": 3}}, "filter 'kind' must be a string"),
        ({"query": "x", "filters": {"minScore": True}}, "filter 'minScore' must be a number"),
    ],
)
def test_bad_search_params_are_refused(params, message) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_search_params(params)


def test_merge_hits_orders_folders_by_score() -> None:
    from engine.records import SearchHit

    def hit(score: float) -> SearchHit:
        return SearchHit("a.py", 0, 0, score, "", "block", "python", "")

    merged = merge_hits([("A", [hit(0.9), hit(0.2)]), ("B", [hit(0.5)])], 2)
    assert [(folder, h.score) for folder, h in merged] == [("A", 0.9), ("B", 0.5)]
