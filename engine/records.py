"""Plain records passed between the engine's parts. Lines are 0-based; ``end_line`` is inclusive."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


def text_hash(text: str) -> str:
    """Stable content hash used for the embedding cache and the file manifest."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of a source file that gets one embedding.

    ``content`` is the source text of lines ``start_line..end_line``; ``header`` is the short context
    line (path, enclosing symbol) put before it in the embedded text.
    """

    path: str  # workspace-relative, POSIX separators
    language: str  # "python", "typescript", ... or "text"
    start_line: int  # 0-based, inclusive
    end_line: int  # 0-based, inclusive
    content: str
    symbol: str = ""  # "parse_args", "Session.request"; "" for a window outside symbols
    kind: str = ""  # "function", "method", "class", "module", "block", ...
    parent: str = ""  # enclosing symbol name path ("Session"), "" at top level
    header: str = ""
    embed_text: str = field(init=False, repr=False, compare=False)
    hash: str = field(init=False, repr=False, compare=False)  # of embed_text: the embedding cache key

    def __post_init__(self) -> None:
        # Derived once: the indexer and the store use both several times per chunk.
        embed_text = f"{self.header}\n{self.content}" if self.header else self.content
        object.__setattr__(self, "embed_text", embed_text)
        object.__setattr__(self, "hash", text_hash(embed_text))


@dataclass(frozen=True, slots=True)
class Symbol:
    """A symbol found by tree-sitter, with its children (for documentSymbol)."""

    name: str
    kind: str
    start_line: int
    end_line: int
    start_col: int = 0
    end_col: int = 0
    selection_line: int = 0
    selection_col: int = 0
    selection_end_col: int = 0
    children: list[Symbol] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SearchHit:
    path: str
    start_line: int
    end_line: int
    score: float
    symbol: str
    kind: str
    language: str
    preview: str
    parent: str = ""
    start_col: int = 0  # indentation of the first line: where the symbol itself starts
    semantic_score: float | None = None
    lexical_score: float | None = None
    matched_terms: tuple[str, ...] = ()
    signals: tuple[str, ...] = ()  # re-ranking adjustments that moved this hit ("definition +1.00", "test ×0.55")
    source: str = "index"  # "buffer": from an editor's unsaved text of the file (engine.buffers), not the disk copy

    @property
    def name_path(self) -> str:
        if self.parent and self.symbol and not self.symbol.startswith(self.parent):
            return f"{self.parent}/{self.symbol}".replace(".", "/")
        return self.symbol.replace(".", "/")

    @property
    def why(self) -> str:
        parts = []
        if self.semantic_score is not None:
            parts.append(f"semantic {self.semantic_score:.3f}")
        if self.lexical_score is not None:
            parts.append(f"lexical {self.lexical_score:.2f}")
        if self.matched_terms:
            parts.append("terms: " + ", ".join(self.matched_terms[:8]))
        if self.signals:
            parts.append("ranked by: " + ", ".join(self.signals))
        return "; ".join(parts)


@dataclass(slots=True, eq=False)
class Candidate:
    """A stored chunk competing for a place in one search's results, with the evidence for it.

    Built from a store row (``from_row``); fusion and re-ranking fill in the evidence fields, and
    ``engine.search`` turns the winners into ``SearchHit``s.
    """

    id: str
    path: str
    language: str
    symbol: str
    kind: str
    parent: str
    start_line: int
    end_line: int
    content: str
    lex: str = ""  # the row's lexical terms (full-text search rows only)
    semantic: float | None = None  # cosine similarity to the query: the dense search found it
    lexical: float | None = None  # BM25 score: the full-text search found it
    terms: list[str] = field(default_factory=list)  # query terms the chunk holds
    rank_score: float = 0.0  # the re-ranked score (engine.ranking.Reranker)
    signals: list[str] = field(default_factory=list)  # the re-ranking adjustments that moved it
    source: str = "index"  # "index", or engine.buffers' source for a row of an unsaved buffer
    # The store's row id when ``content`` was not read with the row (read for the final hits only).
    row_id: int | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any], *, semantic: float | None = None) -> Candidate:
        """A candidate from a store row; its score columns (``_distance``, ``_score``) become evidence."""
        if semantic is None and row.get("_distance") is not None:
            semantic = 1.0 - float(row["_distance"])
        return cls(
            id=row["id"],
            path=row["path"],
            language=row["language"],
            symbol=row["symbol"],
            kind=row["kind"],
            parent=row.get("parent") or "",
            start_line=int(row["start_line"]),
            end_line=int(row["end_line"]),
            content=row.get("content") or "",
            lex=row.get("lex") or "",
            semantic=semantic,
            lexical=float(row["_score"]) if row.get("_score") is not None else None,
            source=row.get("_source") or "index",
            row_id=None if "content" in row else row.get("_rowid"),
        )


@dataclass(frozen=True, slots=True)
class IndexProgress:
    done_files: int
    total_files: int
    current: str = ""
    message: str = ""
    # "files": chunking and the lexical tier (done/total count files); "vectors": the dense tier
    # (done/total count chunks).
    stage: str = "files"

    @property
    def percentage(self) -> int:
        return 100 if self.total_files == 0 else int(100 * self.done_files / self.total_files)


@dataclass(slots=True)
class IndexStats:
    files_seen: int = 0
    files_indexed: int = 0  # read and chunked because new or changed
    files_unchanged: int = 0
    files_deleted: int = 0
    files_skipped: int = 0
    chunks_total: int = 0
    chunks_embedded: int = 0  # sent to the model
    chunks_cached: int = 0  # vector reused from the content-hash cache
    chunks_pending: int = 0  # rows still holding a placeholder vector when the run ended
    seconds: float = 0.0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    cancelled: bool = False
