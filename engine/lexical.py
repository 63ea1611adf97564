"""Code-aware terms for the full-text (BM25) index and for queries.

LanceDB's full-text index sees a pre-tokenised ``lex`` column: identifiers are split on
snake_case/camelCase (``getISOWeekYear`` -> get iso week year) and also kept whole, path parts and
the symbol name are added. Queries go through the same function, so both sides agree.
"""

from __future__ import annotations

import re

from .chunking.identifiers import split_identifier

_IDENT = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*|\d+[A-Za-z]\w*")
_QUERY_STOP = frozenset(
    (
        "a an and are as at be by for from has have how i in is it its of on or that the this to was were "
        "what when where which who will with does do can should given into"
    ).split()
)


# identifier -> its terms. Code repeats its identifiers (self, return, the file's own names), and
# splitting them was the largest cost of the lexical tier (half of phase 1 on Django, cProfile).
_IDENT_TERMS: dict[str, tuple[str, ...]] = {}
# 200,000 entries held ~70 MB (the identifiers, their tuples and word strings) in each chunking process
# of a 13.6K-file index; 50,000 chunked 6,000 of its files as fast with 25 MB less (BENCHMARKS.md,
# "rss8 (session 8)"): code repeats a small set of names, and the cache is cleared when full.
_IDENT_TERMS_MAX = 50_000


def _ident_terms(ident: str) -> tuple[str, ...]:
    terms = _IDENT_TERMS.get(ident)
    if terms is None:
        parts = [p for p in split_identifier(ident) if len(p) > 1]
        whole = ident.lower().strip("_$")
        terms = tuple([*parts, whole] if len(parts) > 1 and whole else parts)
        if len(_IDENT_TERMS) >= _IDENT_TERMS_MAX:
            _IDENT_TERMS.clear()  # bounded: a workspace of generated names must not grow it forever
        _IDENT_TERMS[ident] = terms
    return terms


def _terms(text: str) -> list[str]:
    out: list[str] = []
    for ident in _IDENT.findall(text):
        out.extend(_ident_terms(ident))
    return out


def document_terms(content: str, *, path: str = "", symbol: str = "") -> str:
    """The ``lex`` column of a chunk: code terms plus its path and symbol (the symbol twice: it names the chunk)."""
    head = _terms(path.replace("/", " ").replace(".", " ")) + _terms(symbol) * 2
    return " ".join(head + _terms(content))


def query_terms(query: str) -> list[str]:
    """Distinct query terms in order, English stop words dropped."""
    seen: dict[str, None] = {}
    for term in _terms(query):
        if term not in _QUERY_STOP:
            seen.setdefault(term, None)
    return list(seen)


def looks_like_identifier(query: str) -> bool:
    """``parseArgs``, ``foo_bar``, ``Session.request``: one code-shaped word, so lexical evidence counts more."""
    stripped = query.strip()
    if not stripped or " " in stripped:
        return False
    return bool(re.search(r"[a-z][A-Z]|_|\.|::|\(|#", stripped)) or stripped.isidentifier()
