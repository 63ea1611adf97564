"""Unsaved editor buffers, searched in place of their files' disk copies.

The index follows the disk; an editor holds the text the user is changing. ``UnsavedBuffers`` (one per
``Workspace``, fed by the language server's didOpen/didChange/didClose) keeps the text of open
documents, chunks the ones that differ from what the index holds exactly as the indexer would, and
gives every query a ``BufferView``: the index's rows of those files are left out, and the buffers'
chunks are ranked together with the rest by the searcher's one fusion and re-ranking path.

Two tiers, as in the index. A buffer is searchable lexically and by symbol as soon as a query sees the
new text (the query chunks it if the background thread has not yet). Its chunks' vectors come from the
content-hash cache when their text was embedded before (an unchanged function); the others are embedded
by the background thread once the buffer has been quiet for ``debounce`` seconds, on the query worker
(a few chunks: they must not queue behind an index batch). A buffer's chunks without a vector yet take
part in the lexical list only.

The index's rules apply: a buffer is searched only for a file inside the workspace that the index would
take (not ignored, not in a virtualenv, at most ``max_file_size`` bytes, not binary, no secret); any other
buffer is ignored and the disk copy stays what search shows. Memory is bounded: at most
``max_documents`` buffers and ``max_bytes`` of text, the least recently changed dropped first. A buffer is
dropped on close, and stops being searched once the index holds its text (a save re-indexed, edits undone).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .bm25 import K1, B, index_token, query_tokens
from .errors import SemcodeError
from .files import buffer_path_allowed, printable_path, secret_reason
from .lexical import document_terms
from .ranking import QueryInfo, symbol_lookup_matches
from .records import Chunk, text_hash
from .search import SearchFilters
from .store import sql_in

if TYPE_CHECKING:
    from .indexer import VectorCache
    from .workspace import Workspace

log = logging.getLogger(__name__)

DEBOUNCE_SECONDS = 0.25  # quiet time after the last change before a buffer's new chunks are embedded
MAX_DOCUMENTS = 32  # buffers held at once
MAX_BYTES = 16 << 20  # text held at once, all buffers together
REFUSAL_TTL = 5.0  # seconds a refused path (ignored, outside the rules) is not checked again
EMBED_BATCH = 16  # chunks per request to the query worker
RETRY_SECONDS = 2.0  # after the model failed to embed a buffer's chunks
BM25_K1, BM25_B = float(K1), float(B)  # LanceDB's full-text scoring constants: buffer chunks are scored alike
SOURCE = "buffer"  # SearchHit.source of a buffer's chunk
_UNKNOWN = "\0unknown"  # indexed hash not looked up yet


@dataclass(slots=True)
class _Buffer:
    path: str  # workspace-relative
    text: str
    size: int  # bytes of UTF-8
    stale: bool = True  # the text changed since it was chunked
    indexed_hash: str | None = _UNKNOWN  # the content hash of the file's version in the index; None: not indexed
    text_hash: str = ""
    refused: str | None = None  # why this text cannot be searched (a secret, binary)
    chunks: tuple[Chunk, ...] = ()
    rows: tuple[dict[str, Any], ...] = ()
    vectors: dict[str, np.ndarray] = field(default_factory=dict)  # chunk text hash -> vector

    @property
    def searched(self) -> bool:
        """Whether this buffer stands in for its file: its text differs from the index's and may be searched."""
        return not self.stale and self.refused is None and self.text_hash != self.indexed_hash

    def missing(self) -> dict[str, str]:
        """Chunk text hash -> embedded text, for the chunks without a vector."""
        return {c.hash: c.embed_text for c in self.chunks if c.hash not in self.vectors}


@dataclass(frozen=True, slots=True)
class BufferView:
    """The searched buffers as one query sees them (immutable; rows are copied before they are handed out)."""

    paths: tuple[str, ...] = ()  # files whose index rows this view replaces
    rows: tuple[dict[str, Any], ...] = ()
    vectors: dict[str, np.ndarray] = field(default_factory=dict)  # row id -> vector (embedded chunks only)

    def __bool__(self) -> bool:
        return bool(self.paths)

    def where(self, where: str | None) -> str | None:
        """A store filter that also leaves out the index's rows of the buffers' files."""
        if not self.paths:
            return where
        hidden = f"NOT ({sql_in('path', self.paths)})"
        return f"({where}) AND {hidden}" if where else hidden

    def hide(self, where: str) -> str:
        """``where`` for a filter that is never empty."""
        return self.where(where) or where

    def _candidates(self, filters: SearchFilters) -> list[dict[str, Any]]:
        return [dict(row) for row in self.rows if filters.accepts(row)]

    def dense(
        self, found: list[dict[str, Any]], vector: np.ndarray, filters: SearchFilters, limit: int
    ) -> list[dict[str, Any]]:
        """The store's vector hits merged with the buffers' embedded chunks, by cosine distance."""
        rows = [r for r in self._candidates(filters) if r["id"] in self.vectors]
        if not rows:
            return found
        query = np.asarray(vector, dtype=np.float32)
        for row in rows:
            row["_distance"] = 1.0 - float(np.dot(self.vectors[row["id"]], query))
        return sorted([*found, *rows], key=lambda r: r["_distance"])[:limit]

    def lexical(
        self, found: list[dict[str, Any]], terms: Sequence[str], filters: SearchFilters, limit: int, documents: int
    ) -> list[dict[str, Any]]:
        """The store's BM25 hits merged with the buffers' chunks, scored by the same formula over the same
        terms (the full-text index's analyzer and stemmer, engine/bm25.py).

        The corpus statistics are estimated: ``documents`` rows in all, a term's document frequency and
        the mean length counted over the store's hits and the buffers' chunks. For the rare words a
        new function brings (its name) the estimate is exact; a common word is over-weighted a little.
        """
        rows = self._candidates(filters)
        if not rows or not terms:
            return found
        stems = list(dict.fromkeys(query_tokens(" ".join(terms))))
        bags = [_bag(r.get("lex", "")) for r in [*found, *rows]]
        average = sum(sum(b.values()) for b in bags) / len(bags) or 1.0
        total = max(documents, len(bags))
        idf: dict[str, float] = {}
        for stem in stems:
            frequency = sum(1 for b in bags if stem in b)
            idf[stem] = math.log(1.0 + (total - frequency + 0.5) / (frequency + 0.5))
        scored: list[dict[str, Any]] = []
        for row, bag in zip(rows, bags[len(found) :], strict=True):
            length = sum(bag.values())
            score = 0.0
            for stem in stems:
                tf = bag.get(stem, 0)
                if tf:
                    score += idf[stem] * tf * (BM25_K1 + 1) / (tf + BM25_K1 * (1 - BM25_B + BM25_B * length / average))
            if score > 0:
                row["_score"] = score
                scored.append(row)
        return sorted([*found, *scored], key=lambda r: -r["_score"])[:limit]

    def lookup(self, query: QueryInfo, filters: SearchFilters, found: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The store's symbol look-up plus the buffers' chunks it would have found."""
        extra = [r for r in self._candidates(filters) if any(symbol_lookup_matches(query, r))]
        return [*found, *extra]


def _bag(lex: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for token in lex.split():
        stem = index_token(token)
        if stem is not None:
            counts[stem] = counts.get(stem, 0) + 1
    return counts


class UnsavedBuffers:
    """The open documents of one workspace, as the editor has them (see the module doc). Thread-safe."""

    def __init__(
        self,
        workspace: Workspace,
        *,
        debounce: float = DEBOUNCE_SECONDS,
        max_documents: int = MAX_DOCUMENTS,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self.workspace = workspace
        self.debounce = debounce
        self.max_documents = max_documents
        self.max_bytes = max_bytes
        self._buffers: OrderedDict[str, _Buffer] = OrderedDict()  # least recently changed first
        self._refused_paths: dict[str, float] = {}  # path -> when the index's rules refused it
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._due: float | None = None  # when the background thread embeds next
        self._thread: threading.Thread | None = None
        self._closed = False
        self._idle = threading.Event()  # set while the background thread has nothing to do
        self._idle.set()

    # ----------------------------------------------------------------- what the editor says
    def update(self, path: str | Path, text: str) -> bool:
        """The editor's current text of ``path`` (didOpen, didChange): True when it may be searched."""
        rel = self._relative(path)
        if rel is None:
            return False
        size = _utf8_size(text, self.workspace.config.max_file_size)
        if size > self.workspace.config.max_file_size:
            self._forget(rel, f"larger than max_file_size ({self.workspace.config.max_file_size} bytes)")
            return False
        with self._lock:
            buffer = self._buffers.get(rel)
            refused_at = self._refused_paths.get(rel)
        if buffer is None and refused_at is not None and time.monotonic() - refused_at < REFUSAL_TTL:
            return False  # a file the index does not take: asked again on every keystroke, checked once a while
        if buffer is None and not buffer_path_allowed(self.workspace.root, rel, self.workspace.config):
            log.debug("not searching the unsaved text of %s: the index does not take that file", printable_path(rel))
            with self._lock:
                if len(self._refused_paths) >= 256:
                    self._refused_paths.clear()
                self._refused_paths[rel] = time.monotonic()
            return False
        with self._wake:
            if self._closed:
                return False
            buffer = self._buffers.pop(rel, None)
            if buffer is None:
                buffer = _Buffer(rel, text, size)
            elif buffer.text != text:
                buffer.text, buffer.size, buffer.stale = text, size, True
            self._buffers[rel] = buffer
            self._evict(keep=rel)
            self._schedule(self.debounce)
        return True

    def discard(self, path: str | Path) -> None:
        """The document was closed: search its disk copy again."""
        rel = self._relative(path)
        if rel is not None:
            with self._lock:
                self._buffers.pop(rel, None)

    def rebase(self, paths: Iterable[str] | None = None) -> None:
        """The index changed (these files, or all): compare the buffers with it again."""
        wanted = None if paths is None else set(paths)
        with self._lock:
            self._refused_paths.clear()  # an ignore file may have changed
            for rel, buffer in self._buffers.items():
                if wanted is None or rel in wanted:
                    buffer.indexed_hash = _UNKNOWN
                    buffer.stale = True
            if self._buffers:
                self._schedule(0.0)

    def share_vectors(self, cache: VectorCache, paths: Iterable[str]) -> None:
        """Hand the vectors of these files' buffers to the index's cache (before it indexes them: no re-embedding)."""
        with self._lock:
            for rel in paths:
                buffer = self._buffers.get(rel)
                if buffer is not None:
                    for key, vector in buffer.vectors.items():
                        cache.put(key, vector)

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._buffers.clear()
            self._wake.notify_all()

    # ----------------------------------------------------------------- what searches see
    def view(self) -> BufferView:
        """The searched buffers now, their latest text chunked (lexical at once; vectors as far as known)."""
        with self._lock:
            if not self._buffers:
                return BufferView()
            self._refresh_all()
            searched = [b for b in self._buffers.values() if b.searched]
            if not searched:
                return BufferView()
            rows: list[dict[str, Any]] = []
            vectors: dict[str, np.ndarray] = {}
            for buffer in searched:
                for row, chunk in zip(buffer.rows, buffer.chunks, strict=True):
                    rows.append(row)
                    if chunk.hash in buffer.vectors:
                        vectors[row["id"]] = buffer.vectors[chunk.hash]
            return BufferView(tuple(b.path for b in searched), tuple(rows), vectors)

    def text(self, path: str) -> str | None:
        """The unsaved text of a workspace-relative path, when it is searched in place of the file."""
        with self._lock:
            buffer = self._buffers.get(path)
            if buffer is None:
                return None
            self._refresh(buffer)
            return buffer.text if buffer.searched else None

    def chunk_at(self, path: str, line: int) -> Chunk | None:
        """The smallest chunk of a searched buffer that contains ``line`` (find similar at the cursor)."""
        with self._lock:
            buffer = self._buffers.get(path)
            if buffer is None:
                return None
            self._refresh(buffer)
            inside = [c for c in buffer.chunks if c.start_line <= line <= c.end_line] if buffer.searched else []
            return min(inside, key=lambda c: c.end_line - c.start_line, default=None)

    def summary(self) -> dict[str, int]:
        """{documents, chunks, pending} of the searched buffers (pending: chunks without a vector yet)."""
        with self._lock:
            searched = [b for b in self._buffers.values() if b.searched]
            return {
                "documents": len(searched),
                "chunks": sum(len(b.chunks) for b in searched),
                "pending": sum(len(b.missing()) for b in searched),
            }

    def wait_idle(self, timeout: float) -> bool:
        """Until the background thread has embedded everything it can (tests, benchmarks)."""
        return self._idle.wait(timeout)

    # ----------------------------------------------------------------- internals
    def _relative(self, path: str | Path) -> str | None:
        try:
            return self.workspace.relative_path(path)
        except SemcodeError:
            return None  # outside the workspace: never searched

    def _forget(self, rel: str, reason: str) -> None:
        with self._lock:
            if self._buffers.pop(rel, None) is not None:
                log.info("searching the disk copy of %s again: its unsaved text is %s", printable_path(rel), reason)

    def _evict(self, *, keep: str) -> None:
        while len(self._buffers) > 1 and (
            len(self._buffers) > self.max_documents or sum(b.size for b in self._buffers.values()) > self.max_bytes
        ):
            rel = next(iter(self._buffers))
            if rel == keep:
                break
            del self._buffers[rel]
            log.info("too many unsaved buffers: searching the disk copy of %s again", printable_path(rel))

    def _refresh_all(self) -> None:
        for buffer in list(self._buffers.values()):
            self._refresh(buffer)

    def _refresh(self, buffer: _Buffer) -> None:
        """Chunk a buffer's new text (under the lock), with every vector already known for its chunks.

        A buffer the index holds the text of, or whose text the index would refuse, is not kept: only
        modified documents cost memory, and the next change brings the text again.
        """
        if not buffer.stale or not self.workspace.is_open:
            return
        ws = self.workspace
        buffer.stale = False
        buffer.text_hash = text_hash(buffer.text)
        if buffer.indexed_hash == _UNKNOWN:
            try:
                buffer.indexed_hash = ws.indexed_hash(buffer.path)
            except Exception as exc:  # noqa: BLE001 - an unreadable index: treat the file as not indexed
                log.debug("indexed version of %s: %s", buffer.path, exc)
                buffer.indexed_hash = None
        buffer.refused, buffer.chunks, buffer.rows = _content_refusal(buffer.text), (), ()
        if buffer.refused is None and buffer.text_hash != buffer.indexed_hash:
            try:
                chunks = ws.chunk_text(buffer.path, buffer.text)
            except Exception as exc:  # noqa: BLE001 - one odd buffer must not break searches
                log.warning("could not chunk the unsaved text of %s: %s", printable_path(buffer.path), exc)
                buffer.refused = "cannot be chunked"
        if buffer.refused is not None or buffer.text_hash == buffer.indexed_hash:
            if buffer.refused is not None:
                log.debug("not searching the unsaved text of %s: it %s", printable_path(buffer.path), buffer.refused)
            if self._buffers.get(buffer.path) is buffer:
                del self._buffers[buffer.path]
            return
        hashes = {c.hash for c in chunks}
        buffer.vectors = {h: v for h, v in buffer.vectors.items() if h in hashes}
        buffer.vectors.update(self._known_vectors([h for h in hashes if h not in buffer.vectors]))
        buffer.chunks = tuple(chunks)
        buffer.rows = tuple(_row(buffer.path, i, c) for i, c in enumerate(chunks))

    def _known_vectors(self, hashes: list[str]) -> dict[str, np.ndarray]:
        """Vectors the index computed before for these texts: its in-memory cache, then its store's."""
        found: dict[str, np.ndarray] = {}
        for key in hashes:
            try:
                vector = self.workspace.cache.get(key)
            except KeyError:  # evicted by the index thread between its look-up and its LRU bump
                vector = None
            if vector is not None:
                found[key] = vector
        rest = [h for h in hashes if h not in found]
        if rest:
            try:
                found.update(self.workspace.store.cached_vectors(rest))
            except Exception as exc:  # noqa: BLE001 - the vectors are then embedded
                log.debug("cached vectors: %s", exc)
        return found

    def _schedule(self, delay: float) -> None:
        """(Under the lock.) Embed after ``delay`` quiet seconds; a later change pushes it back."""
        if self._closed:
            return
        self._due = time.monotonic() + delay
        self._idle.clear()
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="semcode-buffers", daemon=True)
            self._thread.start()
        self._wake.notify_all()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._closed and (self._due is None or time.monotonic() < self._due):
                    if self._due is None:
                        self._idle.set()
                    self._wake.wait(None if self._due is None else max(0.0, self._due - time.monotonic()))
                if self._closed:
                    self._idle.set()
                    return
                self._due = None
                self._refresh_all()
                work: dict[str, str] = {}
                for buffer in self._buffers.values():
                    if buffer.searched:
                        work.update(buffer.missing())
            if not work:
                continue
            if len(work) > EMBED_BATCH:  # the query worker serves queries between batches
                work = dict(list(work.items())[:EMBED_BATCH])
                with self._wake:
                    self._schedule(0.0)
            try:
                vectors = self.workspace.embedder.embed_interactive(list(work.values()))
            except Exception as exc:  # noqa: BLE001 - the model failed: lexical results stay, retry later
                log.warning("embedding unsaved buffers failed: %s", exc)
                with self._wake:
                    self._schedule(RETRY_SECONDS)
                continue
            found = dict(zip(work, vectors, strict=True))
            with self._lock:
                for buffer in self._buffers.values():
                    for chunk in buffer.chunks:
                        if chunk.hash in found:
                            buffer.vectors[chunk.hash] = found[chunk.hash]


def _utf8_size(text: str, limit: int) -> int:
    """The UTF-8 size of ``text`` (its length alone when that is over ``limit`` already: no encoding)."""
    return len(text) if len(text) > limit else len(text.encode("utf-8", "surrogatepass"))


def _content_refusal(text: str) -> str | None:
    """Why the index would not take this text (the reasons ``engine.files`` gives for a file)."""
    if "\0" in text[:8192]:
        return "is binary"
    return secret_reason(text)


def _row(path: str, ordinal: int, chunk: Chunk) -> dict[str, Any]:
    """A buffer chunk as the store's search rows look (plus its source)."""
    return {
        "id": f"buffer:{path}:{ordinal}:{chunk.hash}",
        "path": path,
        "language": chunk.language,
        "symbol": chunk.symbol,
        "kind": chunk.kind,
        "parent": chunk.parent,
        "start_line": chunk.start_line,
        "end_line": chunk.end_line,
        "content": chunk.content,
        "lex": document_terms(chunk.content, path=chunk.path, symbol=chunk.symbol),
        "_source": SOURCE,
    }
