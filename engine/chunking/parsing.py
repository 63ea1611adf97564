"""Cached tree-sitter parsers and queries (one of each per language; building them is the slow part)."""

from __future__ import annotations

import logging
import threading
from functools import cache
from typing import TYPE_CHECKING, Any

from engine.errors import missing_dependency

if TYPE_CHECKING:
    from tree_sitter import Language, Parser, Query

logger = logging.getLogger(__name__)


def _language_pack() -> Any:
    try:
        import tree_sitter_language_pack
    except ImportError as err:  # lazy: only indexing needs the grammars
        raise missing_dependency("tree_sitter_language_pack", "tree-sitter-language-pack==0.13.0") from err
    return tree_sitter_language_pack


_local = threading.local()


def get_parser(language: str) -> Parser:
    """One parser per language and thread: a tree-sitter Parser must not parse on two threads at once."""
    parsers: dict[str, Parser] | None = getattr(_local, "parsers", None)
    if parsers is None:
        parsers = _local.parsers = {}
    parser = parsers.get(language)
    if parser is None:
        parser = parsers[language] = _language_pack().get_parser(language)
    return parser


@cache
def valid_node_types(language: str, node_types: tuple[str, ...]) -> tuple[str, ...]:
    """The node types the grammar knows, logging the others (a typo would match nothing silently)."""
    lang = _language_pack().get_language(language)
    valid = tuple(name for name in node_types if lang.id_for_node_kind(name, True) is not None)
    unknown = sorted(set(node_types) - set(valid))
    if unknown:
        logger.warning("tree-sitter grammar %s has no node types %s", language, unknown)
    return valid


@cache
def get_query(language: str, node_types: tuple[str, ...]) -> Query | None:
    """A query capturing every node of ``node_types`` as ``@n`` (None when none exists)."""
    try:
        from tree_sitter import Query
    except ImportError as err:
        raise missing_dependency("tree_sitter", "tree-sitter") from err

    valid = valid_node_types(language, node_types)
    if not valid:
        return None
    pattern = "[" + " ".join(f"({name})" for name in valid) + "] @n"
    grammar: Language = _language_pack().get_language(language)
    # Annotated: tree-sitter's stub types Query() with typing.Self, which Python 3.10's typing lacks.
    query: Query = Query(grammar, pattern)
    return query
