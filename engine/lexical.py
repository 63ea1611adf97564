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


def _terms(text: str) -> list[str]:
    out: list[str] = []
    for ident in _IDENT.findall(text):
        parts = [p for p in split_identifier(ident) if len(p) > 1]
        out.extend(parts)
        whole = ident.lower().strip("_$")
        if len(parts) > 1 and whole:
            out.append(whole)
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
