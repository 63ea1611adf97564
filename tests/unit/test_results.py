"""The one serializer: hit, status and stats records, and the LSP/MCP mappings built on them."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from engine.errors import ConfigError
from engine.records import IndexStats, SearchHit
from engine.results import STATUS_FIELDS, camel_case, check_limit, hit_record, stats_record, status_record
from lsp_server.convert import search_result

HIT = SearchHit(
    path="net/retry.py",
    start_line=4,
    end_line=9,
    score=0.75,
    symbol="Client.retry",
    kind="method",
    language="python",
    preview="    def retry(self):",
    parent="Client",
    start_col=4,
    semantic_score=0.612,
    lexical_score=7.1,
    matched_terms=("retry",),
)


def test_hit_record_has_one_set_of_fields(tmp_path: Path) -> None:
    record = hit_record(HIT, tmp_path)
    assert record == {
        "root": str(tmp_path),
        "path": "net/retry.py",
        "abs_path": str(tmp_path / "net/retry.py"),
        "start_line": 4,
        "end_line": 9,
        "start_col": 4,
        "score": 0.75,
        "symbol": "Client.retry",
        "name_path": "Client/retry",
        "kind": "method",
        "language": "python",
        "why": "semantic 0.612; lexical 7.10; terms: retry",
        "preview": "    def retry(self):",
        "source": "index",
    }


def test_lsp_result_is_the_documented_shape(tmp_path: Path) -> None:
    result = search_result(hit_record(HIT, tmp_path), partial=True)
    assert result["uri"] == (tmp_path / "net/retry.py").resolve().as_uri()
    assert result["range"] == {"start": {"line": 4, "character": 4}, "end": {"line": 10, "character": 0}}
    assert (result["symbol"], result["namePath"], result["partial"]) == ("Client.retry", "Client/retry", True)
    plain = SearchHit("a.py", 0, 0, 0.5, "", "block", "", "x")
    assert set(search_result(hit_record(plain, tmp_path), partial=False)) == {
        "uri",
        "range",
        "score",
        "preview",
        "why",
        "kind",
    }
    unsaved = search_result(hit_record(replace(plain, source="buffer"), tmp_path), partial=False)
    assert (unsaved["dirty"], unsaved["source"]) == (True, "buffer")


def test_status_record_fills_every_field_and_rejects_unknown_ones(tmp_path: Path) -> None:
    record = status_record(root=tmp_path, state="ready", files=3)
    assert tuple(record) == STATUS_FIELDS and record["root"] == str(tmp_path) and record["chunks"] is None
    assert record["partial"] is False and record["locked_by_other_process"] is False
    with pytest.raises(TypeError, match="bogus"):
        status_record(bogus=1)
    assert camel_case(record)["lockedByOtherProcess"] is False and "indexPath" in camel_case(record)


def test_stats_record() -> None:
    stats = IndexStats(files_seen=2, files_indexed=1, chunks_total=3, seconds=1.23456, skipped=[("b.bin", "binary")])
    record = stats_record(stats)
    assert record["seconds"] == 1.23 and record["skipped"] == [{"path": "b.bin", "reason": "binary"}]
    assert record["cancelled"] is False and record["files_indexed"] == 1


@pytest.mark.parametrize("value", [1, 7, 200, 3.0])
def test_check_limit_accepts(value) -> None:
    assert check_limit(value, maximum=200) == int(value)


@pytest.mark.parametrize("value", [0, -1, 201, 2.5, True, "10", None])
def test_check_limit_refuses(value) -> None:
    with pytest.raises(ConfigError, match="'limit' must be an integer between 1 and 200"):
        check_limit(value, maximum=200)
