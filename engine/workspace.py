"""The engine's front door: one workspace folder, its index, and the operations on it.

The CLI, the language server and the MCP server all go through ``Workspace`` (usually wrapped in an
``engine.host.IndexHost``, which adds background indexing and state); none of them touches the store,
the indexer or the model directly. The embedding model is loaded once per process and
shared by every workspace that uses the same model file.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .buffers import UnsavedBuffers
from .chunking import CHUNKER_VERSION, chunk_file
from .config import EngineConfig
from .errors import ConfigError, IndexLockedError, SemcodeError, StoreError
from .files import SourceFile, read_workspace_text, walk
from .indexer import Indexer, ProgressCallback, VectorCache, Walked
from .memory import MemoryMonitor, release_native_memory
from .metrics import metrics
from .models.base import Embedder, ModelInfo
from .records import Chunk, IndexStats, SearchHit
from .save_ahead import SaveAhead
from .search import Searcher, SearchFilters
from .store import ChunkStore, IntegrityReport, sql_string

if TYPE_CHECKING:
    from .models import ResolvedModel

log = logging.getLogger(__name__)

LOCK_FILE = "write.lock"  # the store's write lock, inside the index directory
PREWALK_MAX_AGE_S = 5.0  # an early walk older than this is done again (files may have changed since)

_EMBEDDERS: dict[tuple[object, ...], Embedder] = {}
_EMBEDDERS_LOCK = threading.Lock()


def shared_embedder(config: EngineConfig, resolved: ResolvedModel | None = None) -> Embedder:
    """Load (once per process) the embedding model the config names (in the format ``resolved`` chose)."""
    if resolved is None and not config.embeddings_url:
        from .models import resolve_model

        resolved = resolve_model(config)
    key: tuple[object, ...] = (config.model_path, config.query_prefix, config.document_prefix)
    key += (config.effective_threads(), config.embeddings_url, config.embeddings_model, config.embeddings_max_tokens)
    key += (str(resolved.path) if resolved is not None else None,)
    with _EMBEDDERS_LOCK:
        if key not in _EMBEDDERS:
            from .models import load_embedder

            _EMBEDDERS[key] = load_embedder(config, resolved=resolved)
        return _EMBEDDERS[key]


def _import_store_modules() -> None:
    """Import what opening a ChunkStore imports; a failure is left for ChunkStore to report."""
    from .lazy_imports import import_lancedb
    from .memory import prepare_native_memory

    try:
        prepare_native_memory()  # as ChunkStore's own import does: before LanceDB's threads start
        import_lancedb()  # as ChunkStore's own import does (engine/lazy_imports.py)
    except Exception:  # reported (with its fix) by the store's own import
        log.debug("preloading lancedb failed", exc_info=True)


class OutsideWorkspaceError(ConfigError):
    """A path argument resolves outside the workspace: nothing outside it is ever read."""


def lock_held_elsewhere(lock_path: Path) -> bool:
    """Whether another process holds the index's write lock; False when there is no index yet.

    The probe takes the lock for an instant, so a writer that starts right then sees the index locked
    and retries; callers keep probes rare (``IndexHost`` caches the answer for a second). filelock is the
    store's own lock (portable: fcntl on Unix, msvcrt on Windows).
    """
    if not lock_path.is_file():
        return False
    from filelock import FileLock, Timeout

    probe = FileLock(str(lock_path), thread_local=False)
    try:
        probe.acquire(timeout=0)
    except Timeout:
        return True
    except OSError:
        return False
    probe.release()
    return False


@dataclass(frozen=True, slots=True)
class SimilarQuery:
    """What "find similar" searches with: a stored chunk's vector, or code to embed."""

    path: str
    start_line: int
    end_line: int
    code: str


class Workspace:
    """One workspace folder and its index: the engine's front object.

    Constructing it is cheap and touches nothing on disk. ``open()`` loads the embedding model and
    opens (or, after a model change, rebuilds) the index; the operations below open on first use, so
    ``Workspace(root, config).search(query)`` works as a one-liner. Front ends never reach into the
    store: what they show (counts, manifest, rebuilt reason, lock state) has a method here.
    """

    def __init__(self, root: Path, config: EngineConfig | None = None, *, embedder: Embedder | None = None) -> None:
        self.root = root.resolve()
        if not self.root.is_dir():
            raise ConfigError(f"workspace folder does not exist: {root}")
        self.config = config or EngineConfig()
        self._embedder = embedder
        self._store: ChunkStore | None = None
        self._searcher: Searcher | None = None
        self._model_info: ModelInfo | None = None
        self._resolved: ResolvedModel | None = None
        self._open_lock = threading.Lock()
        self.monitor = MemoryMonitor(self.config.memory_limit_mb)
        self.cache = VectorCache()
        self.last_stats: IndexStats | None = None
        self.buffers = UnsavedBuffers(self)  # an editor's unsaved texts, searched in place of the files
        self.save_ahead = SaveAhead()  # a save's chunks and vectors made during its debounce
        self._prewalk: _Prewalk | None = None
        # Set by ``semcode index``: called with the run's stats when its final maintenance is handed off
        # to a fresh process (engine/maintenance.py ``hand_off``); this process is replaced after it.
        self.hand_off: Callable[[IndexStats], None] | None = None

    # ----------------------------------------------------------------- opening
    @property
    def model_info(self) -> ModelInfo:
        """The model's identity (dimension, fingerprint) from its file header: no model is loaded."""
        if self._embedder is not None or self.config.embeddings_url:  # a server's identity needs a request
            return self.embedder.info
        if self._model_info is None:
            self._model_info = self.resolved_model.info()
        return self._model_info

    @property
    def resolved_model(self) -> ResolvedModel:
        """The model file the config names, in the format llama.cpp runs here (engine/models/formats.py):
        an index this folder already has keeps the format it was built with."""
        if self._resolved is None:
            from .models import resolve_model

            self._resolved = resolve_model(self.config, index_exists=self._has_index_of)
        return self._resolved

    def _has_index_of(self, info: ModelInfo) -> bool:
        return (self._index_path_of(info) / "meta.json").is_file()

    def _index_path_of(self, info: ModelInfo) -> Path:
        return self.config.index_path(self.root, info.fingerprint[:16])

    @property
    def index_path(self) -> Path:
        """Where this workspace's index lives: one folder per (workspace, model), known before any load."""
        return self._index_path_of(self.model_info)

    @property
    def is_open(self) -> bool:
        return self._store is not None

    def open(self) -> Workspace:
        """Load the model (once per process) and open the index; idempotent and thread-safe.

        Opening may drop an index built with another model or chunker (``rebuilt_reason`` says so).
        """
        with self._open_lock:
            if self._store is None:
                # Importing LanceDB takes ~0.5-1.7 s: on a thread while the model's identity is read. Not
                # beside the server's own imports: both hold the GIL, and that start was 0.1-0.4 s later.
                preload = threading.Thread(target=_import_store_modules, name="semcode-import-lancedb", daemon=True)
                preload.start()
                try:
                    first = not (self.index_path / "meta.json").is_file()
                    # A restart opens its index with the model's identity from the file's header and starts
                    # the model after LanceDB's import, beside the check of what changed: three starts on
                    # two cores had slowed the import, the longest step before ready (BENCHMARKS.md, "Lead,
                    # session 13"). A first index needs the model now: it counts every chunk's tokens.
                    later = not first and self._embedder is None and not self.config.embeddings_url
                    info = self.model_info if later else self.embedder.info
                    if first:  # the vocabulary loads meanwhile
                        self.embedder.prepare_tokens()
                finally:
                    # Also when the model fails to load: a process that exits while a daemon thread is
                    # inside pyarrow's or LanceDB's native import aborts (SIGABRT at finalization).
                    preload.join()
                if later:
                    self._load_model_in_background()
                self._store = ChunkStore(
                    self.index_path,
                    dimension=info.dimension,
                    fingerprint=info.fingerprint,
                    model_name=info.name,
                    chunker_version=CHUNKER_VERSION,
                    cache_limit=self.config.embedding_cache_vectors,
                )
                self._store.maintainer = self._maintain  # large index builds and compaction in a child process
                if not first and self._store.stale_reason is not None:  # it rebuilds: every file is chunked
                    self.embedder.prepare_tokens()
        return self

    def _load_model_in_background(self, *, tokens: bool = False) -> None:
        """Load the model on a thread (``tokens``: its vocabulary after it); a failure is raised again (and
        reported) by its first use."""

        def load() -> None:
            try:
                embedder = self.embedder
                if tokens:
                    embedder.prepare_tokens()
            except Exception:  # the first embedding or save reports it, with its fix
                log.info("the embedding model of %s did not load", self.root, exc_info=True)

        threading.Thread(target=load, name="semcode-model-start", daemon=True).start()

    def _maintain(
        self, lance_dir: Path, operation: str, params: dict[str, Any], preempt: Callable[[], bool] | None = None
    ) -> bool:
        """The store's maintenance in a child process (engine/maintenance.py), the model's index worker
        stopped first: idle meanwhile, it only added its ~150 MB to the child's peak. The next document
        batch starts it again (~1 s, against minutes of embedding between two compactions)."""
        from .maintenance import in_child

        if self._embedder is not None:
            self._embedder.release_index_worker()
            self._embedder.release_worker_pages()  # the query worker's (the index worker has just stopped)
        release_native_memory()  # this process's file pages too: the child's peak adds to what stays
        return in_child(lance_dir, operation, params, preempt)

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            resolved = None if self.config.embeddings_url else self.resolved_model
            self._embedder = shared_embedder(self.config, resolved)
        return self._embedder

    @property
    def loaded_embedder(self) -> Embedder | None:
        """The model when it is loaded, else None (never loads it)."""
        return self._embedder

    @property
    def store(self) -> ChunkStore:
        """The open store (for engine code and tests); raises until ``open()`` ran."""
        if self._store is None:
            raise StoreError(f"the index of {self.root} is not open yet (call Workspace.open())")
        return self._store

    @property
    def searcher(self) -> Searcher:
        """One searcher while the store, model and buffers stay: it keeps per-table-version caches
        (chunk texts, JS/TS imports) across queries, each of which would otherwise cost a LanceDB read."""
        store = self.open().store
        kept = self._searcher
        if (
            kept is None
            or kept.store is not store
            or kept.embedder is not self.embedder
            or kept.buffers is not self.buffers
            or kept.hybrid != self.config.hybrid
        ):
            kept = self._searcher = Searcher(store, self.embedder, hybrid=self.config.hybrid, buffers=self.buffers)
        return kept

    def _indexer(self) -> Indexer:
        return self._make_indexer(Indexer)

    def _make_indexer(self, kind: type[Indexer], **extra: Any) -> Indexer:
        """An indexer of this folder's store (``kind``: an overlay's own subclass, with its ``extra``)."""
        return kind(
            self.root,
            self.config,
            self.store,
            lambda: self.embedder,  # loaded when a file needs it (``Workspace.open``)
            info=self.model_info,
            monitor=self.monitor,
            cache=self.cache,
            ahead=self.save_ahead,
            **extra,
        )

    # ----------------------------------------------------------------- what front ends show
    @property
    def rebuilt_reason(self) -> str | None:
        """Why opening dropped the old index (another model, format or chunker), else None."""
        return self._store.rebuilt_reason if self._store is not None else None

    def count_files(self) -> int:
        return self.open().store.count_files()

    def count_chunks(self) -> int:
        return self.open().store.count_chunks()

    def indexed_hash(self, rel_path: str) -> str | None:
        """The content hash of the version of a file the index holds; None when it holds none."""
        rows = self.open().store.path_rows([rel_path]).get(rel_path)
        return next(iter(rows.file_hashes)) if rows is not None and len(rows.file_hashes) == 1 else None

    def chunk_text(self, rel_path: str, text: str) -> list[Chunk]:
        """A file's text chunked exactly as the indexer chunks it (same chunks, same hashes)."""
        return chunk_file(
            rel_path, text, max_tokens=self._indexer().max_chunk_tokens, count_tokens=self.embedder.count_tokens
        )

    def indexed_paths(self) -> list[str]:
        """Workspace-relative paths of the files in the index's manifest."""
        return sorted(self.open().store.manifest())

    def locked_by_other(self) -> bool:
        """Whether another process holds the index's write lock; never waits and never loads the model."""
        if self._store is not None:
            return self._store.is_locked_by_other()
        try:
            path = self.index_path
        except SemcodeError:  # a bad model: there is no index of it to be locked
            return False
        return lock_held_elsewhere(path / LOCK_FILE)

    def ensure_writable(self) -> None:
        """Raise IndexLockedError now when another process writes the index (before any model load)."""
        if self.locked_by_other():
            raise IndexLockedError(
                f"another semcode process is writing the index at {self.index_path}; "
                "its results are readable, and this process will not write until it is done"
            )

    # ----------------------------------------------------------------- writing
    def prewalk(self) -> None:
        """Walk the workspace on a thread now, for the next ``index`` to use (once, if still fresh).

        The host starts it before ``open()``: on a first start the walk (0.2-0.6 s for Django's 9,500
        entries) then overlaps the wait for the model worker instead of following it.
        """
        self._prewalk = _Prewalk(self.root, self.config)

    def _take_prewalk(self) -> Walked | None:
        early, self._prewalk = self._prewalk, None
        return early.result() if early is not None else None

    def index(
        self,
        progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
        *,
        full: bool = False,
        wait_for_lock: bool = False,
        embed: bool = True,
        priority: Iterable[str] = (),
    ) -> IndexStats:
        """Bring the index up to date (``full``: drop it and rebuild). Holds the write lock.

        Two phases: every changed file is chunked and written with its lexical terms first (cached
        vectors where known, placeholders otherwise) and the full-text index is built, so lexical and
        symbol search answer; then (``embed``) the placeholders get their model vectors, ``priority``
        paths first. ``embed=False`` stops after the first phase: ``embed_pending`` finishes later.
        Without ``wait_for_lock`` a lock held by another process fails at once, before the model loads.
        """
        if not wait_for_lock:
            self.ensure_writable()
        self.open()
        with self.store.writer(wait=wait_for_lock):
            if full:
                self.store.clear()
            indexer = self._indexer()
            early = self._take_prewalk if self._prewalk is not None else None
            if early is None:  # a blocking run (the CLI's) walks here: the vocabulary loads meanwhile, as before
                self.embedder.prepare_tokens()
            stats = indexer.index_all(progress, cancel, embed=False, walked=early)
            self.store.ensure_indexes(vector_index_min_rows=self.config.vector_index_min_rows)
            if embed and not stats.cancelled and stats.chunks_pending:
                indexer.embed_pending(progress, cancel, priority=list(priority), stats=stats)
                self.store.ensure_indexes(vector_index_min_rows=self.config.vector_index_min_rows)
            # Compaction waits for the dense tier when one follows (``embed_pending`` compacts at its
            # end): here it would only delay the first search.
            dense_follows = not embed and stats.chunks_pending and not stats.cancelled
            changed = stats.files_indexed or stats.files_deleted or stats.chunks_embedded
            if changed and not dense_follows and not self._hand_off_maintenance(stats):
                self.store.optimize()
        self._finish_index(stats)
        return stats

    def _finish_index(self, stats: IndexStats) -> None:
        """What an index run leaves behind once its rows are written (before a hand-off, too)."""
        self.buffers.rebase()  # a buffer the index now holds the text of is no longer searched in its place
        self._forget_run_vectors()
        self.last_stats = stats
        self._record_index(stats)

    def _hand_off_maintenance(self, stats: IndexStats) -> bool:
        """``semcode index``'s final maintenance in a fresh process; returns only when it cannot.

        The index is complete and searchable here (every row and vector written, its indexes built or
        extended); what is left is the stepped maintenance of a large index (``maintenance_steps``). The
        caller reports the run (``hand_off``), then this process becomes ``engine.maintenance --chain``,
        which keeps the write lock and runs the steps, each in its child, without this process's ~320 MB
        beside them (BENCHMARKS.md, "rss8 (session 8)"). False: no hand-off (not asked, a small index,
        not POSIX, or the lock's descriptor is unknown): ``optimize`` here, as before.
        """
        import os

        if self.hand_off is None or os.name != "posix":
            return False
        steps = self.store.maintenance_steps()
        lock_fd = self.store.lock_descriptor() if steps else None
        if not steps or lock_fd is None:
            return False
        from .maintenance import hand_off

        self._finish_index(stats)
        self.hand_off(stats)
        if self._embedder is not None:
            self._embedder.release_index_worker()
        hand_off(self.store.lance_dir, steps, lock_fd, verbose=log.isEnabledFor(logging.INFO))
        return True  # not reached: hand_off replaces this process

    def embed_pending(
        self,
        progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
        *,
        priority: Callable[[], Iterable[str]] | Iterable[str] = (),
        pause: Callable[[], bool] | None = None,
        stats: IndexStats | None = None,
        wait_for_lock: bool = False,
    ) -> IndexStats:
        """The second phase of ``index``: model vectors for the rows that hold a placeholder.

        Resumable: it stops at ``cancel`` or when ``pause()`` is true, and the next call continues.
        Once nothing is pending it builds the vector index (when the table is large enough) and
        compacts. Holds the write lock while it runs.
        """
        if not wait_for_lock:
            self.ensure_writable()
        self.open()
        embedded_before = stats.chunks_embedded if stats is not None else 0
        cached_before = stats.chunks_cached if stats is not None else 0
        with self.store.writer(wait=wait_for_lock):
            stats = self._indexer().embed_pending(progress, cancel, priority=priority, pause=pause, stats=stats)
            # Only what this call added: the stats may carry the first phase, counted already.
            metrics().embeddings.labels("model").inc(max(0, stats.chunks_embedded - embedded_before))
            metrics().cache_hits.inc(max(0, stats.chunks_cached - cached_before))
            metrics().cache_vectors.set(self.store.count_cached())
            if not stats.chunks_pending and not stats.cancelled:
                self.store.ensure_indexes(vector_index_min_rows=self.config.vector_index_min_rows)
                self.store.optimize()
                self._forget_run_vectors()
        return stats

    def _forget_run_vectors(self) -> None:
        """Empty the in-memory vector LRU at the end of a run over the whole workspace.

        What such a run leaves there is the vectors of its last write batches (8,192 of them, 16 MB of a
        179K-chunk server's RSS after its first index: BENCHMARKS.md, "rss10 (session 10)"): files no save
        or unsaved buffer is likelier to touch than any other. The LRU serves those (a save's unchanged
        chunks, which a save of a few files reads with its rows anyway); a miss reads the store's cache."""
        self.cache.clear()
        release_native_memory()  # and what the run's code and scratch left resident (engine/memory.py)

    def pending_chunks(self) -> int:
        """Chunks searchable lexically whose model vector is not written yet (0 when not open)."""
        return self._store.pending_count() if self._store is not None else 0

    def prepare_update(self, rel_paths: list[str]) -> None:
        """Start chunking and embedding files an ``update_files`` will re-index soon (a save during its
        debounce; engine/save_ahead.py). Never blocks, never fails; does nothing before ``open()``."""
        if self._store is None:
            return
        paths = [p for p in (self._relative(p) for p in rel_paths) if p is not None]
        if paths:
            self.save_ahead.attach(self._indexer())
            self.save_ahead.request(paths)

    def update_files(self, rel_paths: list[str], *, wait_for_lock: bool = True) -> IndexStats:
        """Re-index files that changed, appeared or disappeared (save, file watcher)."""
        paths = [p for p in (self._relative(p) for p in rel_paths) if p is not None]
        if not paths:
            return IndexStats()
        if not wait_for_lock:
            self.ensure_writable()
        self.open()
        self.save_ahead.wait(paths)  # its preparation, if one is running: its results are this update's
        self.buffers.share_vectors(self.cache, paths)  # a saved buffer's chunks were embedded already
        with self.store.writer(wait=wait_for_lock):
            stats = self._indexer().index_paths(paths)
            self.store.ensure_indexes(vector_index_min_rows=self.config.vector_index_min_rows)
        self.buffers.rebase(paths)  # after a save, the index holds the buffer's text: search the index again
        self._record_index(stats)
        return stats

    def defer_compaction(self, on: bool = True) -> None:
        """While on, leave the periodic compaction to ``compact_if_due`` (a server turns it on around a
        save and compacts after it, so that save is not held up by it)."""
        self.open().store.defer_compaction = on

    def compaction_due(self) -> bool:
        return self._store is not None and self._store.compaction_due

    def compact_if_due(self, preempt: Callable[[], bool] | None = None) -> None:
        """The compaction deferred by ``defer_compaction``, if it is due (holds the write lock).
        ``preempt``: True while a save waits; it stops a maintenance child (``MaintenancePreempted``)."""
        if self.compaction_due():
            with self.store.writer(wait=True):
                self.store.compact_if_due(preempt)

    def check(self, *, repair: bool = False) -> IntegrityReport:
        self.open()
        if repair:
            with self.store.writer(wait=True):
                return self.store.check(self.root, repair=True)
        return self.store.check(self.root)

    def release_query_worker(self) -> None:
        """No search follows for a while (an index-only run): stop the model's query worker until one
        needs it (``Embedder.release_query_worker``)."""
        self.embedder.release_query_worker()

    # ----------------------------------------------------------------- reading
    def warm(self) -> None:
        """Start building what queries read from memory (the look-ups' name table) in the background,
        so a long-running server's first queries do not wait for it. Never blocks, never fails."""
        if self.is_open:
            try:
                self.store.name_table()
            except Exception as exc:  # noqa: BLE001 - an optimisation; queries fall back to LanceDB filters
                log.debug("warming the name table failed: %s", exc)
            # The vocabulary too (a restart that changed nothing did not load it): the first save or unsaved
            # edit chunks with it. A query does not wait for it (``Embedder.cap``), nor does this for the model.
            if self._embedder is not None:
                self._embedder.prepare_tokens()
            else:
                self._load_model_in_background(tokens=True)

    def search(
        self, query: str, *, limit: int = 10, filters: SearchFilters | None = None, hybrid: bool | None = None
    ) -> list[SearchHit]:
        started = time.perf_counter()
        use_hybrid = self.config.hybrid if hybrid is None else hybrid
        try:
            hits = self.searcher.search(query, limit=limit, filters=filters, hybrid=hybrid)
        except SemcodeError as exc:
            metrics().errors.labels(type(exc).__name__).inc()
            raise
        m = metrics()
        m.searches.labels("semantic").inc()
        m.search_seconds.labels("hybrid" if use_hybrid else "dense").observe(time.perf_counter() - started)
        m.search_results.observe(len(hits))
        return hits

    def _record_index(self, stats: IndexStats) -> None:
        """Count what an index run did (the process's metrics; see engine/metrics.py)."""
        m = metrics()
        m.files_indexed.inc(stats.files_indexed)
        m.embeddings.labels("model").inc(stats.chunks_embedded)
        m.cache_hits.inc(stats.chunks_cached)
        if self._store is not None:
            m.index_files.set(self._store.count_files())
            m.index_chunks.set(self._store.count_chunks())
            m.cache_vectors.set(self._store.count_cached())

    def find_similar(
        self,
        path: str,
        start_line: int,
        end_line: int,
        *,
        limit: int = 10,
        code: str | None = None,
        min_score: float | None = None,
    ) -> list[SearchHit]:
        """Code similar to lines start..end of ``path`` (or to the chunk under ``start_line`` when empty)."""
        rel = self.relative_path(path)
        target = self._similar_target(rel, start_line, end_line, code)
        return self.searcher.similar(
            target.code, limit=limit, exclude=(target.path, target.start_line, target.end_line), min_score=min_score
        )

    def similar_code(self, code: str, *, limit: int = 10) -> list[SearchHit]:
        """Indexed code most like a snippet that need not be in the workspace."""
        return self.searcher.similar(code, limit=limit)

    def symbols(self, query: str, *, limit: int = 50) -> list[SearchHit]:
        return self.searcher.symbols(query, limit=limit)

    def status(self) -> dict[str, Any]:
        """This workspace's index as one record (``engine.results`` field names); opens the index."""
        from .results import status_record

        self.open()
        info = self.embedder.info
        files = self.store.count_files()
        return status_record(
            root=self.root,
            state="ready" if files else "not_indexed",
            files=files,
            chunks=self.store.count_chunks(),
            model=info.name,
            model_path=info.path,
            dimension=info.dimension,
            index_path=self.index_path,
            vector_index=self.store.has_vector_index(),
            cached_embeddings=self.store.stats()["cached_embeddings"],
            pending_chunks=self.store.pending_count(),
            lexical_ready=files > 0,
            locked_by_other_process=self.locked_by_other(),
            rebuilt_reason=self.rebuilt_reason,
        )

    def contains(self, path: str | Path) -> bool:
        """Whether ``path`` (absolute, or relative to the root) resolves inside this workspace."""
        return self._relative(str(path)) is not None

    def relative_path(self, path: str | Path) -> str:
        """The workspace-relative POSIX path of ``path``; OutsideWorkspaceError when it is outside."""
        rel = self._relative(str(path)) if str(path).strip() and "\0" not in str(path) else None
        if rel is None:
            raise OutsideWorkspaceError(f"{path} is outside the workspace {self.root}")
        return rel

    def read_text(self, path: str | Path) -> str:
        """A workspace file's text; refuses paths outside the workspace and non-regular files."""
        return read_workspace_text(self.root, self.relative_path(path), self.config.max_file_size)

    # ----------------------------------------------------------------- helpers
    def _relative(self, path: str) -> str | None:
        """Workspace-relative POSIX path for an absolute or relative path; None when outside."""
        candidate = Path(path)
        if not candidate.is_absolute():
            candidate = self.root / candidate
        try:
            # The parent only: a symlink keeps its own workspace path (engine.files decides whether
            # its target may be read), and a symlink loop is not an error here.
            return (candidate.parent.resolve() / candidate.name).relative_to(self.root).as_posix()
        except (ValueError, OSError, RuntimeError):
            return None

    def _similar_target(self, rel: str, start_line: int, end_line: int, code: str | None) -> SimilarQuery:
        unsaved = self.buffers.text(rel)  # an editor's unsaved text wins over the disk copy
        if code is None:
            lines = (self.read_text(rel) if unsaved is None else unsaved).splitlines()
            code = "\n".join(lines[start_line : end_line + 1])
        if start_line == end_line or not code.strip():
            # An empty selection means "the symbol under the cursor": use its chunk (the buffer's, or the stored one).
            if unsaved is not None:
                chunk = self.buffers.chunk_at(rel, start_line)
                if chunk is not None:
                    return SimilarQuery(rel, chunk.start_line, chunk.end_line, chunk.content)
                return SimilarQuery(rel, start_line, end_line, code)
            rows = self.open().store.rows(
                f"path = {sql_string(rel)} AND start_line <= {int(start_line)} AND end_line >= {int(start_line)}",
                limit=50,
            )
            if rows:
                row = min(rows, key=lambda r: r["end_line"] - r["start_line"])
                return SimilarQuery(rel, int(row["start_line"]), int(row["end_line"]), row["content"])
        return SimilarQuery(rel, start_line, end_line, code)


class _Prewalk:
    """``walk`` on a daemon thread; ``result()`` is None when it failed or is too old to trust."""

    def __init__(self, root: Path, config: EngineConfig) -> None:
        self._done = threading.Event()
        self._files: list[SourceFile] | None = None
        self._skipped: list[tuple[str, str]] = []
        self._finished = 0.0
        threading.Thread(target=self._run, args=(root, config), name="semcode-prewalk", daemon=True).start()

    def _run(self, root: Path, config: EngineConfig) -> None:
        try:
            try:
                # In a child process: on this process's threads the walk took turns with LanceDB's import
                # for the GIL (engine/walk_child.py).
                from .walk_child import walk_in_child

                self._files, self._skipped = walk_in_child(root, config)
            except Exception as exc:  # noqa: BLE001 - the same walk here, only slower
                log.debug("walk child for %s: %s; walking here", root, exc)
                self._skipped = []
                self._files = list(walk(root, config, self._skipped))
        except Exception:  # the index walks again and reports it there
            log.debug("early walk of %s failed", root, exc_info=True)
        finally:
            self._finished = time.monotonic()
            self._done.set()

    def result(self) -> tuple[list[SourceFile], list[tuple[str, str]]] | None:
        self._done.wait()
        if self._files is None or time.monotonic() - self._finished > PREWALK_MAX_AGE_S:
            return None
        return self._files, self._skipped
