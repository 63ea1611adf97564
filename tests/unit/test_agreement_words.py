"""Name agreement's word matching and weighting (pure logic, no model)."""

from __future__ import annotations

import pytest

from engine.agreement import QueryWords, agreement_stem, name_agreement, name_words


@pytest.mark.parametrize(
    ("a", "b"),
    [("updates", "update"), ("updated", "update"), ("pager", "page"), ("returns", "return"), ("hours", "hour")],
)
def test_inflections_share_a_stem(a: str, b: str) -> None:
    assert agreement_stem(a) == agreement_stem(b)


def test_name_words_drop_glue_and_split_conventions() -> None:
    assert name_words("cookiejar_from_dict") == ("cookiejar", "dict")
    assert name_words("Session.differenceInHours") == ("differenc", "hour")


def test_a_name_word_may_abbreviate_a_query_word() -> None:
    words = QueryWords(["returns", "dictionary"])
    assert words.holds("dict")
    assert not QueryWords(["interval"]).holds("in")


def test_rarer_words_and_larger_shares_score_higher() -> None:
    symbols = {
        "a": "differenceInHours",
        "b": "roundToNearestHours",
        "c": "formatHours",
        "d": "getDay",
        "e": "getWeek",
    }
    scores = name_agreement(symbols, ["hours", "between", "dates"])
    assert scores["a"] > scores["b"] > 0
    assert "d" not in scores and "e" not in scores
    # ``get`` is on two of five names: it counts for less than ``week``, on one.
    got = name_agreement(symbols, ["get", "week"])
    assert got["e"] == pytest.approx(1.0)
    assert got["d"] < 0.5


def test_nothing_to_match_gives_nothing() -> None:
    assert name_agreement({"a": "update"}, []) == {}
    assert name_agreement({"a": ""}, ["update"]) == {}
