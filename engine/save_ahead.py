"""A save's work done while its debounce runs: the file chunked and its new chunks embedded ahead.

A language server re-indexes a saved file after a short quiet period (``save_delay``, 300 ms), so that a
burst of events becomes one write. That wait used to be idle, and the re-index then chunked the file,
read the embedding cache and asked the model for the new chunks' vectors, one after the other (on a
busy 2-core machine ~60-130 ms of a ~150-280 ms save, BENCHMARKS.md "saves (session 6)"). ``SaveAhead``
does those steps as soon as the event arrives, on a thread of its own: it reads the file, chunks it as the
indexer would, puts the vectors its rows already hold and the model's vectors of its new chunks into the
workspace's in-memory vector cache, and keeps the chunks for the re-index, which then finds everything
in memory and only writes.

Nothing here writes the index or decides what it holds: the re-index reads the file again and takes the
kept chunks only for the exact text (content hash) and chunk size they were made for, and vectors are
keyed by the hash of the text they embed. A file that changes again meanwhile, a failed read or a model
error only mean the re-index does the work itself, as before. Memory is bounded: at most
``MAX_FILES`` files are queued or kept.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .chunking import chunk_file
from .errors import SemcodeError
from .files import read_source, secret_reason, source_file
from .lexical import document_terms
from .metrics import metrics
from .records import Chunk, text_hash
from .store import chunk_id

if TYPE_CHECKING:
    from .indexer import Indexer

log = logging.getLogger(__name__)

MAX_FILES = 4  # files prepared per burst; a larger burst (a branch switch) is left to the re-index
MAX_NEW_TEXTS = 8  # new chunks of one file embedded ahead (more: the re-index embeds them in a batch)
WAIT_SECONDS = 2.0  # the longest a re-index waits for the preparation of its files


@dataclass(frozen=True, slots=True)
class Prepared:
    content_hash: str
    max_tokens: int
    chunks: list[Chunk]
    lexical: list[str]


class SaveAhead:
    """Prepares files about to be re-indexed (see the module doc); one background thread at a time."""

    def __init__(self, indexer: Indexer | None = None) -> None:
        self._indexer = indexer  # set by the workspace once it is open (``attach``)
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._queue: OrderedDict[str, None] = OrderedDict()
        self._busy: str | None = None  # the path being prepared now
        self._running = False
        self._kept: OrderedDict[str, Prepared] = OrderedDict()

    def attach(self, indexer: Indexer) -> None:
        self._indexer = indexer

    def request(self, paths: Iterable[str]) -> None:
        """Prepare these workspace-relative paths soon (never blocks, never fails)."""
        if self._indexer is None:
            return
        with self._lock:
            for path in paths:
                if len(self._queue) >= MAX_FILES:
                    break
                self._queue[path] = None
            if self._running or not self._queue:
                return
            self._running = True
        threading.Thread(target=self._run, name="semcode-save-ahead", daemon=True).start()

    def wait(self, paths: Iterable[str], timeout: float = WAIT_SECONDS) -> None:
        """Until none of ``paths`` is queued or being prepared (at most ``timeout`` seconds)."""
        wanted = set(paths)
        with self._lock:
            self._idle.wait_for(lambda: self._busy not in wanted and not wanted & self._queue.keys(), timeout=timeout)

    def take(self, path: str, content_hash: str, max_tokens: int) -> Prepared | None:
        """The chunks prepared for exactly this text of ``path`` (once), or None."""
        with self._lock:
            kept = self._kept.pop(path, None)
        if kept is None or kept.content_hash != content_hash or kept.max_tokens != max_tokens:
            return None
        return kept

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._queue:
                    self._running = False
                    self._busy = None
                    self._idle.notify_all()
                    return
                path, _ = self._queue.popitem(last=False)
                self._busy = path
            try:
                self._prepare(path)
            except Exception as exc:  # noqa: BLE001 - an optimisation: the re-index does the work itself
                log.debug("preparing %s for its re-index failed: %s", path, exc)
            with self._lock:
                self._busy = None
                self._idle.notify_all()

    def _prepare(self, path: str) -> None:
        indexer = self._indexer
        if indexer is None:
            return
        file = source_file(indexer.root, path, indexer.config)
        if file is None:  # deleted, ignored or too large: the re-index drops or skips it
            return
        try:
            text = read_source(file, indexer.config.max_file_size)
        except (OSError, SemcodeError):
            return
        if secret_reason(text) is not None:
            return
        max_tokens = indexer.max_chunk_tokens
        chunks = chunk_file(path, text, max_tokens=max_tokens, count_tokens=indexer.embedder.count_tokens)
        lexical = [document_terms(c.content, path=c.path, symbol=c.symbol) for c in chunks]
        with self._lock:
            self._kept[path] = Prepared(text_hash(text), max_tokens, chunks, lexical)
            self._kept.move_to_end(path)
            while len(self._kept) > MAX_FILES:
                self._kept.popitem(last=False)
        cache = indexer.cache
        ids = [chunk_id(c, ordinal) for ordinal, c in enumerate(chunks)]
        # The vectors the file's rows hold (its unchanged chunks), with what its re-index reads first.
        for key, vector in indexer.store.read_ahead(path, ids, [c.hash for c in chunks]).items():
            cache.put(key, vector)
        missing = list({c.hash: c for c in chunks if cache.get(c.hash) is None}.values())
        if missing:  # texts the store's embedding cache knows (a checkout back, an undo): off the save's path here
            for key, vector in indexer.store.cached_vectors(c.hash for c in missing).items():
                cache.put(key, vector)
            missing = [c for c in missing if cache.get(c.hash) is None]
        if 0 < len(missing) <= MAX_NEW_TEXTS:
            embedded = indexer.embedder.embed_interactive([c.embed_text for c in missing])
            # Counted here: the re-index finds these in memory, and the model did the work (the
            # embeddings metric counts what the model embedded, whoever asked).
            metrics().embeddings.labels("model").inc(len(missing))
            for chunk, vector in zip(missing, embedded, strict=True):
                cache.put(chunk.hash, vector)
