"""Hosting a workspace in a long-running front end: background indexing, lock waiting, state, status.

The language server, the MCP server and the CLI all host their workspaces through ``IndexHost``, so
the rules below exist once:

- Writes run one at a time per workspace on the host's own thread (``semcode-index-*``); reads run
  wherever the caller is. ``index()`` and ``update_files()`` may also be called synchronously.
- One lock policy: a write that finds the index locked by another process either fails at once
  (``IndexLockedError``, before the model loads) or, in the background, waits and retries every
  ``LOCK_RETRY_SECONDS`` until it gets the lock or is cancelled.
- State: ``idle`` (nothing opened), ``starting`` (the model loads), ``indexing``, ``waiting_for_lock``,
  ``ready``, ``not_indexed`` (open, empty, nothing running), ``error`` (with ``last_error``).
- ``partial``: answers given now may miss files (indexing, starting an index, or another process writes),
  or come from the lexical tier alone for the chunks not embedded yet.
- Two phases in the background (``start``): chunking and the lexical tier for the whole workspace
  first (one job), then the dense tier in resumable steps (``_embed_step`` jobs) that yield to any
  job queued meanwhile (a save), most valuable files first (``prioritize``). The run's future
  resolves once both are done; searches answer between the phases.
- ``status()`` never raises and never loads the model: a bad model is ``state: "error"`` + ``last_error``.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from .errors import IndexLockedError, MaintenancePreempted, SemcodeError
from .memory import release_native_memory
from .metrics import metrics
from .records import IndexProgress, IndexStats
from .results import progress_record, status_record
from .workspace import Workspace

log = logging.getLogger(__name__)
T = TypeVar("T")

HostState = Literal["idle", "starting", "indexing", "waiting_for_lock", "ready", "not_indexed", "error"]
LOCK_RETRY_SECONDS = 1.0  # how often a waiting writer tries the lock again
LOCK_PROBE_TTL = 1.0  # seconds a lock probe stays valid: probing takes the lock for an instant
OPEN_TIMEOUT = 120.0  # how long a read waits for the model to load
MAX_PRIORITY_PATHS = 64  # files the dense tier embeds first (the most recently opened)
# The periodic compaction a save made due (every 64 writes) waits for this long without a save, and a
# save that comes while it runs stops its maintenance child and goes first (engine/maintenance.py): one
# save waited 15.6 s behind a compaction at 179K chunks (BENCHMARKS.md, "restart8 (session 8)").
COMPACT_QUIET_S = 10.0
# After this many compactions in a row stopped by saves, the next one runs to its end (a save may wait
# for it, as before): fragments must not pile up under a user who never stops saving.
MAX_PREEMPTIONS = 3
# A save releases the process's file pages (engine/memory.py) at most this often: each release maps back
# the save path's own code on the next save (~10-30 ms of it), and what the pages cost is the RSS of idle
# code, which a minute more does not change.
FILE_PAGES_INTERVAL_S = 60.0

ProgressCallback = Callable[[IndexProgress], None]


class HostBusyError(SemcodeError):
    """This process is already writing the workspace's index."""


class NotReadyError(SemcodeError):
    """The model is still loading, or failed to load."""


class _SerialWorker:
    """One daemon thread running submitted jobs in order (a daemon, so a stuck model load never blocks exit)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._jobs: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._guard = threading.Lock()
        self._closed = False

    def has_queued(self) -> bool:
        """Whether a job waits behind the running one."""
        return not self._jobs.empty()

    def submit(self, job: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
        with self._guard:
            if self._closed:
                future.cancel()
                future.set_running_or_notify_cancel()
                return future
            self._jobs.put((future, job))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
        return future

    def _run(self) -> None:
        while True:
            item = self._jobs.get()
            if item is None:
                return
            future, job = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(job())
            except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the future
                future.set_exception(exc)

    def close(self) -> None:
        """Drop queued jobs; the running one finishes (its cancel event is the caller's business)."""
        with self._guard:
            self._closed = True
            while True:
                try:
                    item = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    item[0].cancel()
            self._jobs.put(None)

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)


@dataclass(eq=False, slots=True)
class _Run:
    """One background index (``start``): its stats so far and the future its caller waits on."""

    future: Future[IndexStats | None] = field(default_factory=Future)
    stats: IndexStats | None = None
    progress: ProgressCallback | None = None
    on_waiting: Callable[[], None] | None = None


class IndexHost:
    """A ``Workspace`` kept up to date in the background, with the state front ends report."""

    def __init__(self, workspace: Workspace, *, lock_retry_seconds: float = LOCK_RETRY_SECONDS) -> None:
        self.workspace = workspace
        self.root = workspace.root
        self.lock_retry_seconds = lock_retry_seconds
        self.state: HostState = "idle"
        self.last_error: str | None = None
        self.progress: IndexProgress | None = None
        self.last_stats: IndexStats | None = None
        self.index_planned = False  # a background index will run once the model is loaded
        self._cancel = threading.Event()
        self._closed = threading.Event()
        self._opened = threading.Event()  # set once an open attempt finished, successfully or not
        self._write = threading.Lock()  # this process's writes and lock probes, one at a time
        self._probe: tuple[float, bool] = (-LOCK_PROBE_TTL, False)
        self._worker = _SerialWorker(f"semcode-index-{workspace.root.name}")
        self._run: _Run | None = None  # the background index in progress, phase 1 or the dense tier
        self._priority: list[str] = []  # workspace-relative paths the dense tier embeds first
        self._writers_waiting = 0  # update_files calls waiting for _write: the dense tier yields to them
        self._count_guard = threading.Lock()
        self._last_save = 0.0  # monotonic time of the last update_files (the compaction waits for quiet)
        self._compact_timer: threading.Timer | None = None
        self._preemptions = 0  # compactions stopped by a save since the last one that finished
        self._saves_queued = 0  # submit_update jobs not started yet: a compaction running stops for them

    # ----------------------------------------------------------------- opening
    def open(self) -> Workspace:
        """Load the model and open the index (in the caller's thread); a failure is recorded and raised."""
        if self.workspace.is_open:
            return self.workspace
        if self.state in ("idle", "error"):
            self.state = "starting"
        try:
            self.workspace.open()
        except SemcodeError as exc:
            self._fail(str(exc))
            raise
        except Exception as exc:  # a bug or a broken install: reported through status, not a crash
            log.exception("opening %s failed", self.root)
            self._fail(f"loading the model failed: {exc}")
            raise SemcodeError(f"loading the model failed: {exc}") from exc
        finally:
            self._opened.set()
        self.last_error = None
        if self.state == "starting" and not self.index_planned:
            self.state = self._resting_state()
        return self.workspace

    def wait_open(self, timeout: float = OPEN_TIMEOUT) -> Workspace:
        """The open workspace, once the background open finished (for reads that must not load twice)."""
        if self.workspace.is_open:
            return self.workspace
        if not self._opened.is_set() and self.state == "idle":
            return self.open()  # nothing is loading it in the background: load it here
        if not self._opened.wait(timeout):
            raise NotReadyError("the embedding model is still loading; try again in a few seconds")
        if not self.workspace.is_open:
            raise NotReadyError(f"the semantic index is unavailable: {self.last_error}")
        return self.workspace

    @property
    def is_open(self) -> bool:
        return self.workspace.is_open

    # ----------------------------------------------------------------- background work
    def start(
        self,
        *,
        index: bool = True,
        full: bool = False,
        progress: ProgressCallback | None = None,
        on_waiting: Callable[[], None] | None = None,
    ) -> Future[IndexStats | None]:
        """Open, then (``index``) bring the index up to date, on the host's thread, waiting out other writers.

        The index runs in two phases (module doc): the future resolves when both are done, with
        the run's stats, or None when opening or indexing failed (then ``state`` is ``error`` and
        ``last_error`` says why). Searches answer from the end of the first phase on.
        """
        self.index_planned = index
        if not self.workspace.is_open:
            self.state = "starting"
        run = _Run(progress=progress, on_waiting=on_waiting)

        def job() -> None:
            if self._run is not None:  # a newer start supersedes the run in progress
                self._finish(self._run, self._run.stats or IndexStats(cancelled=True), cancelled=True)
            try:
                if index and not self.workspace.is_open:
                    self.workspace.prewalk()  # the walk overlaps the model worker's start
                self.open()
                if not index:
                    run.future.set_result(None)
                    return
                self._run = run
                run.stats = self._index_loop(full, progress, True, on_waiting, embed=False, run=run)
            except SemcodeError:
                self._finish(run, None)  # recorded in state and last_error
                return
            except Exception as exc:  # a background failure must reach status, not vanish
                log.exception("indexing %s failed", self.root)
                self._fail(f"indexing failed: {exc}")
                self._finish(run, None)
                return
            if run.stats.cancelled or not run.stats.chunks_pending:
                self._finish(run, run.stats)
            else:
                self._worker.submit(lambda: self._embed_step(run))

        if self._worker.submit(job).cancelled():  # the host is closed: the run never starts
            run.future.cancel()
            run.future.set_running_or_notify_cancel()
        return run.future

    def prioritize(self, paths: Iterable[str | Path]) -> None:
        """Files worth embedding first (open in an editor): the dense tier takes them next."""
        fresh: list[str] = []
        for path in paths:
            try:
                fresh.append(self.workspace.relative_path(path))
            except SemcodeError:  # outside this folder: not ours to embed
                continue
        self._priority = list(dict.fromkeys([*fresh, *self._priority]))[:MAX_PRIORITY_PATHS]

    def _embed_step(self, run: _Run) -> None:
        """One resumable slice of the dense tier; queues the next one unless done, cancelled or superseded."""
        if self._run is not run or run.future.done():
            return
        assert run.stats is not None
        if self._closed.is_set() or self._cancel.is_set():
            run.stats.cancelled = True
            self._finish(run, run.stats)
            return
        ws = self.workspace
        with self._write:
            before = ws.pending_chunks()
            total = ws.count_chunks()
            self.state = "indexing"
            self.progress = IndexProgress(total - before, total, message="embedding", stage="vectors")

            def on_progress(p: IndexProgress) -> None:
                self.progress = p
                if run.progress is not None:
                    run.progress(p)

            try:
                ws.embed_pending(
                    on_progress,
                    self._cancel,
                    priority=lambda: list(self._priority),
                    pause=self._should_pause,
                    stats=run.stats,
                )
            except IndexLockedError:
                self.state = "waiting_for_lock"
                self._probe = (time.monotonic(), True)
                if run.on_waiting is not None:
                    run.on_waiting()
                if self._cancel.wait(self.lock_retry_seconds):
                    run.stats.cancelled = True
                    self._finish(run, run.stats)
                else:
                    self._worker.submit(lambda: self._embed_step(run))
                return
            except SemcodeError as exc:
                self._fail(str(exc))
                self._finish(run, None)
                return
            except Exception as exc:  # a background failure must reach status, not vanish
                log.exception("embedding %s failed", self.root)
                self._fail(f"embedding failed: {exc}")
                self._finish(run, None)
                return
        after = run.stats.chunks_pending
        stalled = after >= before and not self._should_pause()  # rows whose text cannot be rebuilt
        if run.stats.cancelled or not after or stalled:
            if stalled and after:
                log.warning("%s: %d chunks could not be embedded; the next index run retries them", self.root, after)
            self._finish(run, run.stats)
        else:
            self._worker.submit(lambda: self._embed_step(run))

    def _should_pause(self) -> bool:
        return self._worker.has_queued() or self._writers_waiting > 0 or self._closed.is_set()

    def _finish(self, run: _Run, stats: IndexStats | None, *, cancelled: bool = False) -> None:
        """End a background run: state and progress first, then its future (callers read state next)."""
        if self._run is run:
            self._run = None
        if run.future.done():
            return
        if stats is not None:
            stats.cancelled = stats.cancelled or cancelled
            self.last_stats = stats
            self.progress = None
            if self.state != "error":
                self.state = self._resting_state()
                self.workspace.warm()
            log.info(
                "indexed %s: %d files, %d chunks (%d embedded, %d pending)%s",
                self.root,
                stats.files_seen,
                stats.chunks_total,
                stats.chunks_embedded,
                stats.chunks_pending,
                " (cancelled)" if stats.cancelled else "",
            )
        else:
            self.progress = None
        run.future.set_result(stats)

    def submit(self, job: Callable[[], T]) -> Future[T]:
        """Run ``job`` on the host's write thread, after the writes queued before it."""
        return self._worker.submit(job)

    def cancel(self) -> None:
        """Ask the running index to stop at the next file (what is committed stays consistent)."""
        self._cancel.set()

    def close(self) -> None:
        """Cancel, refuse further work and drop queued jobs."""
        self._closed.set()
        self._cancel.set()
        with self._count_guard:
            timer, self._compact_timer = self._compact_timer, None
        if timer is not None:
            timer.cancel()
        self._worker.close()
        self.workspace.buffers.close()
        run = self._run
        if run is not None:  # its next step was dropped with the queue
            self._finish(run, run.stats or IndexStats(cancelled=True), cancelled=True)

    def join(self, timeout: float) -> None:
        """Give a cancelled index time to finish the write in progress."""
        self._worker.join(timeout)

    # ----------------------------------------------------------------- writes
    def index(
        self,
        *,
        full: bool = False,
        progress: ProgressCallback | None = None,
        retry_locked: bool = False,
        on_waiting: Callable[[], None] | None = None,
        queries: bool = True,
    ) -> IndexStats:
        """Index now, in the caller's thread: both phases, so the index is complete when it returns.

        ``queries=False``: nothing in this process searches afterwards (``semcode index``): the model's
        query worker is stopped while it runs and the name table is not built after it.

        Another process's lock raises ``IndexLockedError`` at once (before the model loads) unless
        ``retry_locked``: then wait, retrying every ``lock_retry_seconds``, until the lock is free or
        the run is cancelled (then the stats say ``cancelled``). ``HostBusyError`` when this process
        is writing already (a background run included, until its dense tier is done).
        """
        return self._index_loop(full, progress, retry_locked, on_waiting, embed=True, run=None, queries=queries)

    def _index_loop(
        self,
        full: bool,
        progress: ProgressCallback | None,
        retry_locked: bool,
        on_waiting: Callable[[], None] | None,
        *,
        embed: bool,
        run: _Run | None,
        queries: bool = True,
    ) -> IndexStats:
        while True:
            if self._closed.is_set():
                return IndexStats(cancelled=True)
            try:
                return self._index_once(full, progress, embed=embed, run=run, queries=queries)
            except IndexLockedError:
                if not retry_locked:
                    raise
                self.state = "waiting_for_lock"
                self._probe = (time.monotonic(), True)
                if on_waiting is not None:
                    on_waiting()
                log.info("another semcode process is writing %s; retrying in %.0fs", self.root, self.lock_retry_seconds)
                if self._cancel.wait(self.lock_retry_seconds):
                    self.state = self._resting_state() if self.workspace.is_open else "idle"
                    return IndexStats(cancelled=True)

    def _index_once(
        self,
        full: bool,
        progress: ProgressCallback | None,
        *,
        embed: bool = True,
        run: _Run | None = None,
        queries: bool = True,
    ) -> IndexStats:
        ws = self.workspace
        try:
            ws.ensure_writable()  # before the model loads: a locked index answers at once
        except IndexLockedError:
            raise
        except SemcodeError as exc:  # the model file is missing or bad: nothing to index with
            self._fail(str(exc))
            raise
        if (self._run is not None and self._run is not run) or not self._write.acquire(blocking=False):
            raise HostBusyError("this process is already indexing the workspace; its status shows the progress")
        previous = self.state
        if not self._closed.is_set():
            self._cancel.clear()  # a cancel is for the run in progress, not for the next one
        try:
            self.open()
            if not queries:
                ws.release_query_worker()
            self.state, self.progress = "indexing", None

            def on_progress(p: IndexProgress) -> None:
                self.progress = p
                if progress is not None:
                    progress(p)

            stats = ws.index(on_progress, self._cancel, full=full, embed=embed, priority=list(self._priority))
        except IndexLockedError:
            self.progress = None
            self.state = previous if previous != "indexing" else self._resting_state()
            raise
        except SemcodeError as exc:
            self.progress = None
            self._fail(str(exc))
            raise
        except BaseException:
            self.progress = None
            raise
        finally:
            self._write.release()
        self.last_stats = stats
        self.last_error = None
        if run is not None and not stats.cancelled and stats.chunks_pending:
            # The dense tier follows at once: still "indexing", now counting chunks.
            total = stats.chunks_total
            self.progress = IndexProgress(total - stats.chunks_pending, total, message="embedding", stage="vectors")
        else:
            self.progress = None
            self.state = self._resting_state()
            if queries:
                ws.warm()
        self._probe = (time.monotonic(), False)
        log.info(
            "indexed %s: %d files, %d chunks (%d embedded, %d pending) in %.1fs%s",
            self.root,
            stats.files_seen,
            stats.chunks_total,
            stats.chunks_embedded,
            stats.chunks_pending,
            stats.seconds,
            " (cancelled)" if stats.cancelled else "",
        )
        return stats

    def submit_update(self, paths: list[str]) -> Future[IndexStats]:
        """``update_files`` on the host's write thread, after the writes queued before it (a server's
        save); a compaction running when it is queued stops for it (``_compact``)."""
        with self._count_guard:
            self._saves_queued += 1
        started = threading.Event()

        def job() -> IndexStats:
            started.set()
            with self._count_guard:
                self._saves_queued -= 1
            return self.update_files(paths)

        future = self._worker.submit(job)
        future.add_done_callback(lambda _f: self._unqueue(started))
        return future

    def _unqueue(self, started: threading.Event) -> None:
        """A queued save dropped before it ran (the host closed) no longer counts as waiting."""
        if not started.is_set():
            with self._count_guard:
                self._saves_queued -= 1

    def update_files(self, paths: list[str], *, wait_for_lock: bool = True) -> IndexStats:
        """Re-index files that changed or disappeared (in the caller's thread; waits for our own writes)."""
        if not self.workspace.is_open:
            return IndexStats()  # the initial index will see them
        with self._count_guard:
            self._writers_waiting += 1  # a dense-tier step in progress yields to this write
        try:
            with self._write:
                self.workspace.defer_compaction()  # not inside a save: after it, on the worker
                try:
                    stats = self.workspace.update_files(paths, wait_for_lock=wait_for_lock)
                finally:
                    self.workspace.defer_compaction(False)
        finally:
            with self._count_guard:
                self._writers_waiting -= 1
        self._last_save = time.monotonic()
        if stats.files_indexed or stats.files_deleted:
            # The save's scratch (LanceDB's commit, the name table's patch) back to the system, after the
            # lock and out of the save's path: ~1 ms (max 6.5) with the fixed mmap threshold, -7-10 MB at a
            # 179K-chunk server's peak during saves (BENCHMARKS.md, "rss8 (session 8)"); and, now and then,
            # the file pages touched since (engine/memory.py, release_file_pages).
            release_native_memory(min_interval=FILE_PAGES_INTERVAL_S)
        if self.workspace.compaction_due():
            self._schedule_compaction()
        return stats

    def _schedule_compaction(self, delay: float | None = None) -> None:
        """Compact once no save came for ``COMPACT_QUIET_S`` (one timer at a time)."""
        with self._count_guard:
            if self._closed.is_set() or (self._compact_timer is not None and self._compact_timer.is_alive()):
                return  # the armed timer looks at the last save when it fires
            timer = threading.Timer(COMPACT_QUIET_S if delay is None else delay, self._compact_when_quiet)
            timer.name, timer.daemon = f"semcode-compact-{self.root.name}", True
            self._compact_timer = timer
        timer.start()

    def _compact_when_quiet(self) -> None:
        quiet_for = time.monotonic() - self._last_save
        with self._count_guard:
            self._compact_timer = None
        if quiet_for < COMPACT_QUIET_S:  # a save came meanwhile: wait for the quiet after it
            self._schedule_compaction(COMPACT_QUIET_S - quiet_for)
        elif not self._closed.is_set():
            self._worker.submit(self._compact)

    def _compact(self) -> None:
        """The compaction a save made due (every ``COMPACT_EVERY_WRITES`` writes), after a quiet period;
        a save that comes meanwhile stops it (``MaintenancePreempted``) and schedules it again."""
        preempt = self._save_waiting if self._preemptions < MAX_PREEMPTIONS else None
        try:
            with self._write:
                self.workspace.compact_if_due(preempt)
            self._preemptions = 0
        except MaintenancePreempted as exc:
            self._preemptions += 1
            log.info("%s: %s; again after %.0f s without a save", self.root, exc, COMPACT_QUIET_S)
        except SemcodeError as exc:  # e.g. another process holds the lock now: the next one compacts
            log.info("deferred compaction of %s skipped: %s", self.root, exc)

    def _save_waiting(self) -> bool:
        return self._writers_waiting > 0 or self._saves_queued > 0

    def seal(self) -> bool:
        """Seal the index for the next start (engine/seal.py), unless a write of ours or another process's
        is running: never waits. At exit, where the check's ~0.3 s at 179K rows keeps no one waiting."""
        if not self.workspace.is_open or not self._write.acquire(blocking=False):
            return False
        try:
            seal = getattr(self.workspace.store, "seal", None)  # a shared index's overlay has none
            return bool(seal()) if seal is not None else False
        except Exception as exc:  # noqa: BLE001 - only an optimisation of the next start
            log.info("could not seal the index of %s: %s", self.root, exc)
            return False
        finally:
            self._write.release()

    def writing(self) -> bool:
        return self.state in ("indexing", "waiting_for_lock") or self._write.locked()

    # ----------------------------------------------------------------- what front ends report
    def locked_by_other(self) -> bool:
        """Whether another process holds the write lock (probed at most once per ``LOCK_PROBE_TTL``)."""
        if self.state == "indexing":
            return False  # we are the writer
        checked_at, locked = self._probe
        if time.monotonic() - checked_at < LOCK_PROBE_TTL:
            return locked
        if not self._write.acquire(blocking=False):
            return False  # our own write is starting or running
        try:
            locked = self.workspace.locked_by_other()
        finally:
            self._write.release()
        self._probe = (time.monotonic(), locked)
        return locked

    def partial_note(self) -> tuple[bool, str | None]:
        """(partial, explanation) for answers given now."""
        if self.state == "indexing":
            p = self.progress
            if p is not None and p.stage == "vectors":
                return True, (
                    f"the semantic index is still being built (embedding {p.done_files} of {p.total_files} chunks): "
                    "lexical and symbol results cover every file, semantic results only the chunks embedded so far"
                )
            done = f" ({p.done_files}/{p.total_files} files)" if p else ""
            return True, f"the index is still being built{done}: results may miss files"
        if self.state == "starting":
            return self.index_planned, "semcode is starting: the model loads, then the index is brought up to date"
        if self.state == "waiting_for_lock" or self.locked_by_other():
            return True, (
                "another semcode process (e.g. `semcode serve`) is writing this index: "
                "results come from what it has committed so far"
            )
        if self.state == "not_indexed":
            return False, "the workspace is not indexed yet"
        if self.state == "error" and self.last_error:
            return False, f"the last indexing run failed: {self.last_error}"
        pending = self._pending_chunks()
        if pending:
            total = self.workspace.count_chunks()
            return True, (
                f"embedding {total - pending} of {total} chunks: the rest have no semantic vector yet (the next "
                "index run embeds them); lexical and symbol results cover every file"
            )
        return False, None

    def _pending_chunks(self) -> int:
        if not self.workspace.is_open:
            return 0
        try:
            return self.workspace.pending_chunks()
        except Exception as exc:  # noqa: BLE001 - a damaged index must not break every answer
            log.debug("pending count of %s: %s", self.root, exc)
            return 0

    def lexical_ready(self) -> bool:
        """Whether every file is searchable lexically and by symbol now (the first phase is done),
        though the dense tier may still be embedding (``pending_chunks``)."""
        if self.state == "ready":
            return True
        progress = self.progress
        return self.state == "indexing" and progress is not None and progress.stage == "vectors"

    @property
    def partial(self) -> bool:
        return self.partial_note()[0]

    def status(self) -> dict[str, Any]:
        """The status record (``engine.results.STATUS_FIELDS``). Never raises, never loads the model."""
        locked = self.locked_by_other()
        partial, note = self.partial_note()
        ws = self.workspace
        base: dict[str, Any] = {
            "root": self.root,
            "state": self.state,
            "locked_by_other_process": locked,
            "partial": partial,
            "lexical_ready": self.lexical_ready(),
            "progress": progress_record(self.progress),
            "last_error": self.last_error,
            "note": note,
            "index_path": self._index_path(),
        }
        if not ws.is_open:
            return status_record(**base)
        try:
            info = ws.model_info  # the file's header: a restart's model may still be starting
            store = ws.store
            return status_record(
                **base,
                files=store.count_files(),
                chunks=store.count_chunks(),
                model=info.name,
                model_path=info.path,
                dimension=info.dimension,
                vector_index=store.has_vector_index(),
                cached_embeddings=store.stats()["cached_embeddings"],
                pending_chunks=store.pending_count(),
                rebuilt_reason=ws.rebuilt_reason,
                model_worker=_worker_record(ws.loaded_embedder),
                metrics=metrics().headline(),
                unsaved_buffers=ws.buffers.summary(),
            )
        except Exception as exc:  # noqa: BLE001 - a damaged index must still answer status
            log.warning("status of %s: %s", self.root, exc)
            return status_record(**(base | {"state": "error", "last_error": f"cannot read the index: {exc}"}))

    # ----------------------------------------------------------------- helpers
    def _index_path(self) -> Path | None:
        try:
            return self.workspace.index_path
        except SemcodeError:  # a bad model names no index
            return None

    def _resting_state(self) -> HostState:
        try:
            return "ready" if self.workspace.count_files() else "not_indexed"
        except SemcodeError as exc:
            self.last_error = str(exc)
            return "error"

    def _fail(self, message: str) -> None:
        self.state, self.last_error = "error", message
        log.info("%s: %s", self.root, message)  # the front end reports it (one line, its own way)


def _worker_record(embedder: Any) -> dict[str, Any] | None:
    """Restarts and the last crash of the model's worker processes (None for an in-process model)."""
    if not hasattr(embedder, "restarts"):
        return None
    return {"restarts": int(embedder.restarts), "last_error": getattr(embedder, "last_error", None)}
