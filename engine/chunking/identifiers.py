"""Split identifiers into lowercase words: ``getISOWeekYear`` -> ``["get", "iso", "week", "year"]``.

Used for chunk headers (the default embedding model reads natural language, not ``camelCase``) and by
lexical search, so both sides of a match split identically.
"""

from __future__ import annotations

import re

# Runs of letters/digits; underscores, dots, dashes and anything else separate parts.
_PART = re.compile(r"[^\W_]+")
# Inside a part: an acronym followed by a capitalised word ("ISOWeek" -> "ISO"), a (capitalised)
# lowercase word, an all-caps run, or a bare number. Digits stay glued to the letters before them
# ("v2", "utf8", "HTTP2") because they are usually one concept.
_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])\d*|[A-Z]?[a-z]+\d*|[A-Z]+\d*|\d+")


def split_identifier(identifier: str) -> list[str]:
    """Lowercase words of ``identifier`` (snake_case, camelCase, PascalCase, kebab-case, dotted)."""
    words: list[str] = []
    for part in _PART.findall(identifier):
        if part.isascii():
            words.extend(word.lower() for word in _WORD.findall(part))
        else:
            words.append(part.lower())  # non-ASCII scripts have no reliable case boundaries
    return words
