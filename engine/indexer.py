"""Incremental indexing: walk, detect changes, chunk, embed what is new, write atomically per batch.

Two tiers, so a workspace is searchable long before the model has embedded it. Phase 1
(``index_all(embed=False)``) chunks every changed file and writes its rows with the lexical terms and
the cached vector where one exists, a placeholder (``TIER_PLACEHOLDER``, zeros) otherwise: lexical and
symbol search work as soon as it ends. Phase 2 (``embed_pending``) embeds the placeholder rows, most
valuable files first, and only updates rows that still hold that placeholder for that text. Either
phase may be cancelled or killed at any point: placeholders are what the next phase 2 embeds.

A file whose size and mtime are unchanged is not read; one whose content hash is unchanged is not
chunked; a chunk whose text hash was embedded before (anywhere, any time) takes its vector from the
cache. Every write covers whole files, so cancelling or crashing leaves each file either fully old or
fully new; a crash between a batch's chunk and manifest commits leaves rows that disagree with the
manifest, and every run first finds such files (``ChunkStore.inconsistent_paths``) and indexes them
again, whatever their size, mtime or content hash say.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .chunking import HeaderFields, build_header, chunk_file, language_for_path
from .config import EngineConfig
from .errors import ModelError, SourceFileError
from .files import SourceFile, printable_path, read_source, secret_reason, source_file, walk
from .lexical import document_terms
from .memory import MemoryMonitor, Pressure
from .models.base import Embedder, ModelInfo
from .records import Chunk, IndexProgress, IndexStats, text_hash
from .store import TIER_MODEL, TIER_PLACEHOLDER, ChunkStore, FileRecord, PathRows, inconsistent, sql_in

if TYPE_CHECKING:
    from .chunk_worker import ChunkWorker
    from .save_ahead import SaveAhead

log = logging.getLogger(__name__)

ProgressCallback = Callable[[IndexProgress], None]
Walked = tuple[list[SourceFile], list[tuple[str, str]]]  # a walk's files and skips (path, reason)
WRITE_BATCH_CHUNKS = 256  # chunks held in memory before a write; shrinks under memory pressure
# Phase 1 writes no vectors of its own (a placeholder row is ~2 KB with its text and terms), so its
# batches double after every write up to these: every write is a LanceDB commit and a fragment, and
# fewer of them finish the lexical tier sooner, while the first small write is searchable at once
# (LanceDB searches rows the full-text index does not cover yet). See BENCHMARKS.md "speed".
LEXICAL_WRITE_CHUNKS = 4096
LEXICAL_WRITE_FILES = 1000
# Phase 1's first write: small, since the first search answers from it (256 chunks were ~160 files of
# Django, ~1 s of chunking before anything was searchable); doubling reaches 4,096 after six writes.
FIRST_LEXICAL_WRITE_CHUNKS = 64
FIRST_LEXICAL_WRITE_FILES = 50
# A first index (or a large change) of this many files chunks on two cores (engine/chunk_worker.py);
# below it the child's start (~0.5 s of the other core) would not pay for itself.
CHUNK_WORKER_MIN_FILES = 300
HEADER_TOKEN_BUDGET = 48  # room left in the model's context for the chunk header and prefix
EMBED_WRITE_ROWS = 256  # placeholder rows embedded per dense-tier commit
INTERACTIVE_EMBED_MAX = 32  # new chunks of a save embedded on the query worker (more: the index worker)
SPECULATIVE_EMBED_MAX = 8  # a save's texts not in memory embedded without a look-up in the store
# ... when the update is one file (a save): the texts of an update of several files (a checkout, a pull)
# are often ones the store knows, and the in-memory LRU is emptied after a whole-workspace run.
SPECULATIVE_FILES_MAX = 1
SAVE_VECTOR_PATHS = 8  # saves of this many files at most read their rows' vectors with the rows
_PENDING_COLUMNS = ["id", "path", "language", "symbol", "kind", "parent", "content", "text_hash", "file_hash", "tier"]


# Vectors the in-memory LRU keeps (1.5 KB each at 384 dimensions). It serves a save's and a buffer's
# unchanged chunks; everything else comes from the store's persistent cache. 50,000 held ~80 MB by the
# end of a large index's dense tier, every vector of which was only ever read back from the store.
VECTOR_CACHE_SIZE = 8_192


class VectorCache:
    """In-memory LRU of text hash -> vector in front of the store's persistent cache.

    Thread-safe: a save's preparation (engine/save_ahead.py) fills it while the host's thread indexes."""

    def __init__(self, capacity: int = VECTOR_CACHE_SIZE) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> np.ndarray | None:
        with self._lock:
            vector = self._items.get(key)
            if vector is not None:
                self._items.move_to_end(key)
            return vector

    def put(self, key: str, vector: np.ndarray) -> None:
        with self._lock:
            self._items[key] = vector
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def shrink(self, capacity: int) -> None:
        with self._lock:
            self.capacity = capacity
            while len(self._items) > capacity:
                self._items.popitem(last=False)

    def clear(self) -> None:
        """Drop every vector (the capacity stays)."""
        with self._lock:
            self._items.clear()

    def count(self) -> int:
        """Vectors held now."""
        return len(self._items)


@dataclass(slots=True)
class _Pending:
    files: list[FileRecord] = field(default_factory=list)
    chunks: list[Chunk] = field(default_factory=list)
    lexical: list[str] = field(default_factory=list)  # the ``lex`` column of each chunk
    removed: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Handed:
    """A file handed to the chunk worker: what to record once its chunks come back."""

    file: SourceFile
    old: FileRecord | None
    force: bool
    text: str
    content_hash: str
    future: Future[tuple[list[Chunk], list[str]]]


class Indexer:
    def __init__(
        self,
        root: Path,
        config: EngineConfig,
        store: ChunkStore,
        embedder: Embedder | Callable[[], Embedder],
        *,
        info: ModelInfo | None = None,
        monitor: MemoryMonitor | None = None,
        cache: VectorCache | None = None,
        ahead: SaveAhead | None = None,
    ) -> None:
        """``embedder``: the model, or what loads it on first use (with ``info``, its identity from the file's
        header): a restart that changed nothing never waits for the model (``Workspace.open``)."""
        self.root = root
        self.config = config
        self.store = store
        self._embedder = embedder
        self.monitor = monitor or MemoryMonitor(config.memory_limit_mb)
        self.cache = cache or VectorCache()
        self.ahead = ahead  # chunks a save's preparation made during its debounce (engine/save_ahead.py)
        context_length = (info if info is not None else self.embedder.info).context_length
        self.max_chunk_tokens = max(64, context_length - HEADER_TOKEN_BUDGET)
        self._prefetched: tuple[dict[str, FileRecord], dict[str, PathRows]] | None = None  # see _prefetch

    @property
    def embedder(self) -> Embedder:
        if not isinstance(self._embedder, Embedder):
            self._embedder = self._embedder()
        return self._embedder

    # ----------------------------------------------------------------- entry points
    def index_all(
        self,
        progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
        *,
        embed: bool = True,
        walked: Walked | Callable[[], Walked | None] | None = None,
    ) -> IndexStats:
        """Bring the whole workspace up to date (``embed=False``: phase 1 only, see the module doc).

        ``walked``: the files and skips of a walk just done (``Workspace.prewalk``), instead of walking;
        or a function that waits for that walk (None: walk here): the index's side of the comparison is
        read first, while the walk finishes.
        """
        started = time.perf_counter()
        stats = IndexStats()
        self._prefetched = None  # only ever this call's
        if callable(walked):
            self._prefetch()
            walked = walked()
        if walked is not None:
            files = walked[0]
            stats.skipped.extend(walked[1])
        else:
            files = list(walk(self.root, self.config, stats.skipped))
        self._index_walked(files, stats, progress, cancel, embed=embed)
        stats.seconds = time.perf_counter() - started
        return stats

    def _prefetch(self) -> None:
        """Read the manifest and the chunk rows' paths now, for the next ``_index_walked`` (the caller holds
        the write lock, so they stay valid): at 13.6K files and 179K rows ~0.2 s, mostly LanceDB's own scan,
        run while a walk on another thread finishes (BENCHMARKS.md, restart7)."""
        manifest = self.store.manifest()
        self._prefetched = (manifest, self._all_rows(manifest))

    def _all_rows(self, manifest: dict[str, FileRecord]) -> dict[str, PathRows]:
        """Every path's rows: from the manifest when a seal says they agree (engine/seal.py), else read."""
        sealed = self.store.sealed_rows(manifest)
        return sealed if sealed is not None else self.store.path_rows()

    def _index_walked(
        self,
        files: list[SourceFile],
        stats: IndexStats,
        progress: ProgressCallback | None,
        cancel: threading.Event | None,
        *,
        embed: bool,
    ) -> None:
        """``index_all`` after the walk: index ``files``, drop every other path the index holds."""
        prefetched, self._prefetched = self._prefetched, None
        if prefetched is None:
            manifest = self.store.manifest()
            prefetched = (manifest, self._all_rows(manifest))
        manifest, rows = prefetched
        present = {f.path for f in files}
        # Rows of a path the manifest does not know (a crash before its manifest commit) go too.
        removed = [p for p in dict.fromkeys([*manifest, *rows]) if p not in present]
        suspect = inconsistent(manifest, rows)
        known = frozenset(manifest.keys() | rows.keys())
        self._run(files, removed, manifest, stats, progress, cancel, suspect=suspect, embed=embed, known=known)

    def index_paths(
        self, rel_paths: Iterable[str], progress: ProgressCallback | None = None, cancel: threading.Event | None = None
    ) -> IndexStats:
        """Re-index just these files: changed, created, deleted or now ignored."""
        started = time.perf_counter()
        stats = IndexStats()
        wanted = list(dict.fromkeys(rel_paths))
        files: list[SourceFile] = []
        gone: list[str] = []  # not indexable now: deleted, ignored, or a directory
        for rel in wanted:
            found = source_file(self.root, rel, self.config)
            if found is not None:
                files.append(found)
            else:
                gone.append(rel)
        self._index_listed(wanted, files, gone, stats, progress, cancel)
        stats.seconds = time.perf_counter() - started
        return stats

    def _index_listed(
        self,
        wanted: list[str],
        files: list[SourceFile],
        gone: list[str],
        stats: IndexStats,
        progress: ProgressCallback | None,
        cancel: threading.Event | None,
    ) -> None:
        """``index_paths`` once each of ``wanted`` is known to be an indexable file or ``gone``."""
        # The entries of these paths only: reading the whole manifest cost a one-file save ~80 ms at 13.6K files.
        manifest = self.store.manifest(wanted)
        held: dict[str, np.ndarray] = {}
        rows = self.store.path_rows(wanted, vectors=held if len(wanted) <= SAVE_VECTOR_PATHS else None)
        for key, vector in held.items():  # the vectors of the files' unchanged chunks, for this save
            self.cache.put(key, vector)
        removed: list[str] = []
        for rel in gone:
            if rel in manifest or rel in rows:
                removed.append(rel)
            else:  # a directory that was deleted or renamed: drop everything below it
                removed.extend(self.store.manifest_under(rel))
        suspect = inconsistent(manifest, rows)
        known = frozenset(manifest.keys() | rows.keys())
        self._run(
            files,
            removed,
            manifest,
            stats,
            progress,
            cancel,
            force_read=True,
            suspect=suspect,
            known=known,
            interactive=True,
        )

    # ----------------------------------------------------------------- the pipeline
    def _run(
        self,
        files: Sequence[SourceFile],
        removed: list[str],
        manifest: dict[str, FileRecord],
        stats: IndexStats,
        progress: ProgressCallback | None,
        cancel: threading.Event | None,
        *,
        force_read: bool = False,
        suspect: set[str] | frozenset[str] = frozenset(),
        embed: bool = True,
        known: frozenset[str] | None = None,
        interactive: bool = False,
    ) -> None:
        """``known``: every path with a manifest entry or chunk rows (None: assume any may have).
        ``interactive``: someone waits for this (a save): a few new chunks go to ``embed_interactive``."""
        stats.files_seen = len(files)
        total = len(files)
        pending = _Pending(removed=list(removed))
        stats.files_deleted = len(removed)
        touched: list[FileRecord] = []
        report = progress or (lambda _p: None)
        chunk_limit, file_limit = (
            (WRITE_BATCH_CHUNKS, 200) if embed else (FIRST_LEXICAL_WRITE_CHUNKS, FIRST_LEXICAL_WRITE_FILES)
        )

        def unchanged(file: SourceFile, old: FileRecord | None) -> bool:
            return not force_read and old is not None and old.size == file.size and old.mtime_ns == file.mtime_ns

        to_read = sum(1 for f in files if f.path in suspect or not unchanged(f, manifest.get(f.path)))
        worker = self._chunk_worker(to_read) if not embed else None
        handed: deque[_Handed] = deque()
        report(IndexProgress(0, total, message=f"0/{total} files"))
        try:
            for done, file in enumerate(files, 1):
                if cancel is not None and cancel.is_set():
                    stats.cancelled = True
                    break
                old = manifest.get(file.path)
                if file.path in suspect:  # its rows disagree with its manifest entry: trust neither
                    self._read_and_chunk(file, old, pending, touched, stats, force=True, worker=worker, handed=handed)
                elif unchanged(file, old):
                    stats.files_unchanged += 1
                else:
                    self._read_and_chunk(file, old, pending, touched, stats, worker=worker, handed=handed)
                while handed and handed[0].future.done():  # the worker's files, in order, as they come back
                    self._collect(handed.popleft(), pending, stats)
                if len(pending.chunks) >= self.monitor.pending_limit(chunk_limit) or len(pending.files) >= file_limit:
                    self._flush(pending, stats, embed=embed, known=known, interactive=interactive)
                    pending = _Pending()
                    if not embed:  # the first rows searchable soon (a small write), then fewer, larger writes
                        chunk_limit, file_limit = (
                            min(2 * chunk_limit, LEXICAL_WRITE_CHUNKS),
                            min(2 * file_limit, LEXICAL_WRITE_FILES),
                        )
                if done == total or done % 10 == 0:
                    report(IndexProgress(done, total, current=file.path, message=f"{done}/{total} files"))
            while handed:
                self._collect(handed.popleft(), pending, stats)
        finally:
            if worker is not None:
                worker.close()
        self._flush(pending, stats, embed=embed, known=known, interactive=interactive)
        if touched:
            self.store.touch_files(touched)
        stats.chunks_total = self.store.count_chunks()
        stats.chunks_pending = self.store.pending_count()

    def _read_and_chunk(
        self,
        file: SourceFile,
        old: FileRecord | None,
        pending: _Pending,
        touched: list[FileRecord],
        stats: IndexStats,
        *,
        force: bool = False,
        worker: ChunkWorker | None = None,
        handed: deque[_Handed] | None = None,
    ) -> None:
        """Read ``file`` and chunk it here, or hand it to ``worker`` (appended to ``handed``) when it is free."""
        try:
            text = read_source(file, self.config.max_file_size)
            secret = secret_reason(text)
            if secret is not None:
                raise SourceFileError(f"{printable_path(file.path)}: {secret}")
        except FileNotFoundError:  # deleted between the walk and now
            log.info("skipped %s: deleted while indexing", file.path)
            if old or force:  # force: rows without a manifest entry (see inconsistent_paths)
                pending.removed.append(file.path)
                stats.files_deleted += 1
            return
        except SourceFileError as exc:
            log.info("skipped %s", exc)
            stats.files_skipped += 1
            stats.skipped.append((file.path, str(exc).removeprefix(printable_path(file.path) + ": ")))
            if old or force:  # it was indexed before and is no longer indexable: drop its rows
                pending.removed.append(file.path)
            return
        content_hash = text_hash(text)
        if old and old.content_hash == content_hash and not force:
            stats.files_unchanged += 1
            if (old.size, old.mtime_ns) != (file.size, file.mtime_ns):
                touched.append(FileRecord(file.path, file.size, file.mtime_ns, content_hash, old.chunk_count))
            return
        if worker is not None and handed is not None and not worker.busy():
            future = worker.submit(file.path, text, self.max_chunk_tokens)
            if future is not None:
                handed.append(_Handed(file, old, force, text, content_hash, future))
                return
        self._chunk_here(file, old, force, text, content_hash, pending, stats)

    def _chunk_here(
        self,
        file: SourceFile,
        old: FileRecord | None,
        force: bool,
        text: str,
        content_hash: str,
        pending: _Pending,
        stats: IndexStats,
    ) -> None:
        prepared = self.ahead.take(file.path, content_hash, self.max_chunk_tokens) if self.ahead else None
        if prepared is not None:  # chunked while the save's debounce ran, from this very text
            self._add(file, content_hash, prepared.chunks, prepared.lexical, pending, stats)
            return
        try:
            chunks = chunk_file(
                file.path, text, max_tokens=self.max_chunk_tokens, count_tokens=self.embedder.count_tokens
            )
        except ModelError:
            raise  # the model (or its server) failed, not the file: stop, keep the file's rows as they are
        except Exception as exc:  # noqa: BLE001 - one odd file must not stop the index
            log.warning("could not chunk %s (%s): %s", file.path, language_for_path(file.path) or "text", exc)
            stats.files_skipped += 1
            stats.skipped.append((file.path, f"chunking failed: {exc}"))
            if old or force:  # never leave the rows of an older version searchable
                pending.removed.append(file.path)
            return
        lexical = [document_terms(c.content, path=c.path, symbol=c.symbol) for c in chunks]
        self._add(file, content_hash, chunks, lexical, pending, stats)

    def _add(
        self,
        file: SourceFile,
        content_hash: str,
        chunks: list[Chunk],
        lexical: list[str],
        pending: _Pending,
        stats: IndexStats,
    ) -> None:
        stats.files_indexed += 1
        pending.files.append(FileRecord(file.path, file.size, file.mtime_ns, content_hash, len(chunks)))
        pending.chunks.extend(chunks)
        pending.lexical.extend(lexical)

    def _collect(self, item: _Handed, pending: _Pending, stats: IndexStats) -> None:
        """A file back from the chunk worker; one it could not chunk is chunked here (same result or error)."""
        try:
            chunks, lexical = item.future.result()
        except Exception as exc:  # noqa: BLE001 - whatever it was, this process decides again
            log.debug("chunk worker: %s: %s; chunking it here", item.file.path, exc)
            self._chunk_here(item.file, item.old, item.force, item.text, item.content_hash, pending, stats)
            return
        self._add(item.file, item.content_hash, chunks, lexical, pending, stats)

    def _chunk_worker(self, files_to_read: int) -> ChunkWorker | None:
        """A chunking child for a large phase 1, when this model's token counts can be had in a child."""
        vocab = self.embedder.vocabulary_path() if files_to_read >= CHUNK_WORKER_MIN_FILES else None
        if vocab is None or (os.cpu_count() or 1) < 2:
            return None
        from .chunk_worker import ChunkWorker

        return ChunkWorker(vocab)

    def _known_vectors(self, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """Vectors already computed for these text hashes: in-memory cache, then the store's."""
        vectors: dict[str, np.ndarray] = {}
        for key in hashes:
            hit = self.cache.get(key)
            if hit is not None:
                vectors[key] = hit
        vectors.update(self.store.cached_vectors(k for k in hashes if k not in vectors))
        return vectors

    def _known_or_ahead(self, chunks: Sequence[Chunk]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """``_known_vectors`` for a save: a few texts not in memory (a save's new chunks, at most
        ``SPECULATIVE_EMBED_MAX``) are embedded on the query worker without asking the store first. The
        store's look-up (the cache's B-tree, its row count and, once the cache is near its bound, a scan
        of the chunk rows' text hashes) took as long as the model under load, 40-120 ms beside a user's
        queries, and it mostly found nothing: a new chunk is new. Returns (known, newly embedded)."""
        vectors: dict[str, np.ndarray] = {}
        for c in chunks:
            hit = self.cache.get(c.hash)
            if hit is not None:
                vectors[c.hash] = hit
        unknown = list({c.hash: c for c in chunks if c.hash not in vectors}.values())
        if not 0 < len(unknown) <= SPECULATIVE_EMBED_MAX:
            vectors.update(self.store.cached_vectors(c.hash for c in unknown))
            return vectors, {}
        embedded = self.embedder.embed_interactive([c.embed_text for c in unknown])
        return vectors, {c.hash: embedded[i] for i, c in enumerate(unknown)}

    def _flush(
        self,
        pending: _Pending,
        stats: IndexStats,
        *,
        embed: bool = True,
        known: frozenset[str] | None = None,
        interactive: bool = False,
    ) -> None:
        if not pending.files and not pending.removed:
            return
        # Nothing of these files is in the index yet: their rows are appended, not merged.
        new_paths = known is not None and not pending.removed and not any(f.path in known for f in pending.files)
        chunks = pending.chunks
        hashes = [c.hash for c in chunks]
        if interactive and embed and len(pending.files) + len(pending.removed) <= SPECULATIVE_FILES_MAX:
            vectors, new_vectors = self._known_or_ahead(chunks)
        else:
            vectors, new_vectors = self._known_vectors(hashes), {}
        used = dict(vectors)  # marked used in the persistent cache, so its LRU bound keeps them
        stats.chunks_cached += sum(1 for h in hashes if h in vectors)
        if new_vectors:
            stats.chunks_embedded += len(new_vectors)
            stats.chunks_cached += sum(1 for h in hashes if h in new_vectors) - len(new_vectors)
            vectors.update(new_vectors)
        unique_missing = list({c.hash: c for c in chunks if c.hash not in vectors}.values())
        if unique_missing and embed:
            batch_size = self.monitor.batch_size(self.config.batch_size)
            texts = [c.embed_text for c in unique_missing]
            if interactive and len(texts) <= INTERACTIVE_EMBED_MAX:
                # A save's few new chunks: the query worker, not the low-priority index worker (nice 10,
                # started on first use: a save on a busy machine waited on both).
                for position, row in enumerate(self.embedder.embed_interactive(texts)):
                    new_vectors[unique_missing[position].hash] = row
            else:
                # One packing plan over the whole write batch (fuller decodes than one per call).
                for positions, batch in self.embedder.embed_packed(texts, batch_size=batch_size):
                    for position, row in zip(positions, batch, strict=True):
                        new_vectors[unique_missing[position].hash] = row
            stats.chunks_embedded += len(unique_missing)
            # A text repeated within the batch is embedded once; its other rows count as cached.
            stats.chunks_cached += sum(1 for h in hashes if h in new_vectors) - len(unique_missing)
        vectors.update(new_vectors)
        for key, vector in vectors.items():
            self.cache.put(key, vector)
        if self.monitor.read().pressure >= Pressure.ELEVATED:
            self.cache.shrink(max(1_000, self.cache.capacity // 2))
        dimension = self.embedder.info.dimension
        placeholder = np.zeros(dimension, dtype=np.float32)
        # Phase 1 (embed=False): a text without a known vector gets the placeholder, for phase 2.
        tiers = [TIER_MODEL if h in vectors else TIER_PLACEHOLDER for h in hashes]
        matrix = (
            np.stack([vectors.get(h, placeholder) for h in hashes])
            if chunks
            else np.zeros((0, dimension), dtype=np.float32)
        )
        lexical = pending.lexical
        self.store.replace_files(
            pending.files,
            chunks,
            matrix,
            lexical,
            removed=pending.removed,
            new_vectors=new_vectors,
            used_vectors=used,
            tiers=tiers,
            new_paths=new_paths,
            cache_last=interactive,
        )

    # ----------------------------------------------------------------- phase 2: the dense tier
    def embed_pending(
        self,
        progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
        *,
        priority: Callable[[], Iterable[str]] | Iterable[str] = (),
        pause: Callable[[], bool] | None = None,
        stats: IndexStats | None = None,
        wait_for_lock: bool = True,
    ) -> IndexStats:
        """Give every placeholder row its model vector, the most valuable files first.

        Order: the ``priority`` paths (open files; a callable is asked again before every batch),
        then the others, most recently modified first. Stops at ``cancel`` (the stats say cancelled)
        or as soon as ``pause()`` says another job is waiting (they do not); what was written stays,
        and the next call carries on with the rows still pending. Adds to ``stats`` when given.
        """
        started = time.perf_counter()
        stats = stats if stats is not None else IndexStats()
        # Per path a count, not the rows: each batch reads its paths' placeholder ids when it starts.
        by_path = self.store.pending_paths()
        total = self.store.count_chunks()
        done = total - sum(by_path.values())
        manifest = self.store.manifest()
        order = iter(sorted(by_path, key=lambda p: (-(manifest[p].mtime_ns if p in manifest else 0), p)))
        wanted = priority if callable(priority) else (lambda fixed=list(priority): fixed)
        report = progress or (lambda _p: None)
        limit = self.monitor.pending_limit(EMBED_WRITE_ROWS)
        while by_path:
            if cancel is not None and cancel.is_set():
                stats.cancelled = True
                break
            if pause is not None and pause():
                break
            paths: list[str] = []
            rows = 0
            first = [p for p in dict.fromkeys(wanted()) if p in by_path]
            while by_path and rows < limit:
                path = first.pop(0) if first else next(p for p in order if p in by_path)
                rows += by_path.pop(path)
                paths.append(path)
            ids = self.store.pending_ids(paths)  # fewer than counted if another writer filled some in
            handled, stopped = self._embed_rows(ids, stats, cancel, pause, wait_for_lock) if ids else (0, False)
            done += handled
            report(
                IndexProgress(
                    min(done, total), total, current=path, message=f"embedding {done}/{total} chunks", stage="vectors"
                )
            )
            if stopped:
                stats.cancelled = stats.cancelled or bool(cancel is not None and cancel.is_set())
                break
        stats.chunks_total = self.store.count_chunks()
        stats.chunks_pending = self.store.pending_count()
        stats.seconds += time.perf_counter() - started
        return stats

    def _embed_rows(
        self,
        ids: Sequence[str],
        stats: IndexStats,
        cancel: threading.Event | None,
        pause: Callable[[], bool] | None,
        wait_for_lock: bool,
    ) -> tuple[int, bool]:
        """Embed and write one batch of placeholder rows: (rows handled, stopped early)."""
        rows = [
            r
            for r in self.store.rows(sql_in("id", ids), columns=_PENDING_COLUMNS, limit=len(ids) + 16)
            if r["tier"] == TIER_PLACEHOLDER  # another writer may have filled some in meanwhile
        ]
        texts = self._embed_texts(rows)
        vectors = self._known_vectors(list(texts))
        used = dict(vectors)
        missing = [h for h in texts if h not in vectors]
        new_vectors: dict[str, np.ndarray] = {}
        stopped = False
        if missing:
            batch_size = self.monitor.batch_size(self.config.batch_size)
            # One packing plan over the whole write batch; calls come in the plan's order, not the rows'.
            batches = self.embedder.embed_packed([texts[h] for h in missing], batch_size=batch_size)
            for positions, batch in batches:
                for position, vector in zip(positions, batch, strict=True):
                    new_vectors[missing[position]] = vector
                if len(new_vectors) < len(missing) and (
                    (cancel is not None and cancel.is_set()) or (pause is not None and pause())
                ):
                    stopped = True  # write what is embedded; the rest stays pending
                    break
        vectors.update(new_vectors)
        ready = [r for r in rows if r["text_hash"] in vectors]
        if ready or new_vectors or used:
            self.store.set_vectors(
                [r["id"] for r in ready],
                [r["text_hash"] for r in ready],
                np.stack([vectors[r["text_hash"]] for r in ready])
                if ready
                else np.zeros((0, self.embedder.info.dimension), dtype=np.float32),
                tier=TIER_MODEL,
                new_vectors=new_vectors,
                used_vectors=used,
                wait=wait_for_lock,
            )
        for key, vector in vectors.items():
            self.cache.put(key, vector)
        stats.chunks_embedded += len(new_vectors)
        stats.chunks_cached += len(ready) - len(new_vectors)
        if self.monitor.read().pressure >= Pressure.ELEVATED:
            self.cache.shrink(max(1_000, self.cache.capacity // 2))
        return (len(ready) if stopped else len(ids)), stopped

    def _embed_texts(self, rows: Sequence[dict[str, Any]]) -> dict[str, str]:
        """text hash -> the text that was hashed (header + content), rebuilt from the stored row.

        The header is recomputed from the row's fields and accepted only when the hash matches; a
        row it does not match (a header built from more than the row holds) is resolved by chunking
        its file again, when the file on disk is still the version the row came from.
        """
        texts: dict[str, str] = {}
        unresolved: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            content = row["content"]
            header = build_header(HeaderFields(row["path"], row["language"], row["symbol"], row["kind"], row["parent"]))
            for candidate in (f"{header}\n{content}" if header else content, content):
                if text_hash(candidate) == row["text_hash"]:
                    texts[row["text_hash"]] = candidate
                    break
            else:
                unresolved.setdefault(row["path"], []).append(row)
        for path, group in unresolved.items():
            found = self._chunk_texts(path, group[0]["file_hash"])
            for row in group:
                if row["text_hash"] in found:
                    texts[row["text_hash"]] = found[row["text_hash"]]
                else:  # the file changed on disk: its next index replaces these rows
                    log.info("%s changed since it was chunked: its vectors wait for its next index", path)
        return texts

    def _chunk_texts(self, path: str, file_hash: str) -> dict[str, str]:
        found = source_file(self.root, path, self.config)
        if found is None:
            return {}
        try:
            text = read_source(found, self.config.max_file_size)
            if text_hash(text) != file_hash:
                return {}
            chunks = chunk_file(path, text, max_tokens=self.max_chunk_tokens, count_tokens=self.embedder.count_tokens)
        except (OSError, SourceFileError) as exc:
            log.info("cannot re-read %s for its vectors: %s", path, exc)
            return {}
        except Exception as exc:  # noqa: BLE001 - one odd file must not stop the dense tier
            log.warning("could not chunk %s again: %s", path, exc)
            return {}
        return {c.hash: c.embed_text for c in chunks}
