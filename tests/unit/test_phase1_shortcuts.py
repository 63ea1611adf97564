"""Phase 1's shortcuts (issue 11) give exactly what the slow paths gave: secrets, lexical terms."""

from __future__ import annotations

import random

from engine import lexical
from engine.chunking.identifiers import split_identifier
from engine.files import secret_reason


def _reference_terms(text: str) -> list[str]:
    """The lexical terms as computed before the per-identifier cache."""
    out: list[str] = []
    for ident in lexical._IDENT.findall(text):
        parts = [p for p in split_identifier(ident) if len(p) > 1]
        out.extend(parts)
        whole = ident.lower().strip("_$")
        if len(parts) > 1 and whole:
            out.append(whole)
    return out


def test_every_kind_of_secret_is_still_found_behind_the_literal_prefilter() -> None:
    secrets = {
        "a private key block": "x = '''\n-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n'''",
        "an npm auth token": "npmAuthToken: abcdefgh12345",
        "an AWS access key id": "key = 'AKIAABCDEFGHIJKLMNOP'",
        "a GitHub token": "token = 'ghp_" + "a" * 36 + "'",
        "a Slack token": "hook = 'xoxb-1234567890-abc'",
    }
    for name, text in secrets.items():
        assert secret_reason(text) == f"holds {name}", name
    # A literal alone is no secret: the regex still decides.
    for text in ("AKIA is a prefix", "the PRIVATE KEY section", "xox", "ghp_short", "def f():\n    return 1\n"):
        assert secret_reason(text) is None, text


def test_cached_lexical_terms_equal_the_uncached_ones() -> None:
    rng = random.Random(11)
    pieces = ["getISOWeekYear", "snake_case_name", "_private", "$scope", "HTTP2Server", "v2", "x", "données",
              "parse_args", "URLParser", "a1b2", "__init__", "self", "XMLHttpRequest", "émoji_ok"]  # fmt: skip
    texts = [" ".join(rng.choice(pieces) for _ in range(rng.randint(0, 30))) for _ in range(200)]
    for text in texts:
        assert lexical._terms(text) == _reference_terms(text)
    assert lexical.document_terms("def parse_args(self): pass", path="cli/main.py", symbol="parse_args") == " ".join(
        _reference_terms("cli main py")
        + _reference_terms("parse_args") * 2
        + _reference_terms("def parse_args(self): pass")
    )


def test_the_identifier_cache_stays_bounded(monkeypatch) -> None:
    monkeypatch.setattr(lexical, "_IDENT_TERMS_MAX", 10)
    lexical._IDENT_TERMS.clear()
    text = " ".join(f"name{i}_part" for i in range(50))
    assert lexical._terms(text) == _reference_terms(text)
    assert len(lexical._IDENT_TERMS) <= 10
