"""Known query/document prefixes of embedding models, matched on the model's name or file name.

Many retrieval models are trained with an instruction in front of the query (and sometimes the
document); leaving it out costs recall. Settings (``query_prefix`` / ``document_prefix``) always win.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..config import EngineConfig


@dataclass(frozen=True, slots=True)
class Prefixes:
    query: str = ""
    document: str = ""


@dataclass(frozen=True, slots=True)
class _Rule:
    pattern: re.Pattern[str]
    prefixes: Prefixes


def _rule(pattern: str, query: str, document: str = "") -> _Rule:
    return _Rule(re.compile(pattern, re.IGNORECASE), Prefixes(query, document))


_BGE_EN_QUERY = "Represent this sentence for searching relevant passages: "
_CODE_QUERY = "Represent this query for searching relevant code: "

# First match wins, so the more specific patterns come first. Patterns see names with "_" and " "
# turned into "-", lower-cased.
RULES: tuple[_Rule, ...] = (
    # nomic-embed-code and CodeRankEmbed (both Nomic, code retrieval): a query instruction, bare documents.
    _rule(r"coderankembed|nomic-embed-code", _CODE_QUERY),
    _rule(r"nomic-embed-text", "search_query: ", "search_document: "),
    _rule(r"multilingual-e5|(^|[^a-z])e5-", "query: ", "passage: "),
    _rule(r"bge-(small|base|large)-zh", "为这个句子生成表示以用于检索相关文章："),
    _rule(r"bge-(small|base|large)-en", _BGE_EN_QUERY),
    _rule(r"bge-m3", ""),  # no instruction needed
    _rule(r"snowflake-arctic-embed-.*v2", "query: "),
    _rule(r"snowflake-arctic-embed", "Represent this sentence for searching relevant passages: "),
    _rule(r"mxbai-embed", "Represent this sentence for searching relevant passages: "),
    _rule(r"jina-embeddings-v2-base-code|all-minilm|paraphrase-|gte-", ""),
)


def _normalise(name: str) -> str:
    return re.sub(r"[_\s]+", "-", name.lower())


def known_prefixes(*names: str) -> Prefixes:
    """The prefixes of the first model name (``general.name``, file name...) that matches a rule."""
    for name in names:
        if not name:
            continue
        key = _normalise(name)
        for rule in RULES:
            if rule.pattern.search(key):
                return rule.prefixes
    return Prefixes()


def resolve_prefixes(config: EngineConfig, model_name: str, model_path: str | Path) -> Prefixes:
    """Prefixes to use: the settings when given (even an empty string), else the registry's."""
    known = known_prefixes(model_name, Path(model_path).name)
    return Prefixes(
        query=config.query_prefix if config.query_prefix is not None else known.query,
        document=config.document_prefix if config.document_prefix is not None else known.document,
    )
