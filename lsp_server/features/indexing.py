"""Keeping the index fresh: initial index with work-done progress, saves, watched files, reindex.

The folder's ``IndexHost`` does the work (and waits out other processes' write locks); this module
turns its progress into LSP work-done progress and its results into messages.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from pathlib import Path
from typing import Any

from lsprotocol import types

from engine.errors import SemcodeError
from engine.host import IndexHost
from engine.records import IndexProgress, IndexStats

from ..convert import uri_to_path
from ..server import SemcodeServer

log = logging.getLogger(__name__)
REPORT_INTERVAL = 0.2
BULK_UPDATE_FILES = 32  # changed files in one burst from which the whole folder is re-indexed instead
MAX_UPDATE_DELAY = 2.0  # seconds a stream of file events may postpone its update
PREPARE_MAX_FILES = 4  # the first files of a burst are prepared during the debounce; a branch switch is not


def supports_progress(ls: SemcodeServer) -> bool:
    window = ls.client_capabilities.window
    return bool(window and window.work_done_progress)


class _WorkDone:
    """Work-done progress for one indexing run; safe to call from the host's thread."""

    def __init__(self, ls: SemcodeServer, loop: asyncio.AbstractEventLoop, token: str | None) -> None:
        self.ls, self.loop, self.token = ls, loop, token
        self.last_report = 0.0

    def begin(self, host: IndexHost) -> None:
        if not self.token:
            return
        self.ls.work_done_progress.begin(
            self.token,
            types.WorkDoneProgressBegin(
                title=f"Indexing workspace {host.root.name}", cancellable=True, message="loading model", percentage=0
            ),
        )
        cancelled = self.ls.work_done_progress.tokens.get(self.token)
        if cancelled is not None:
            cancelled.add_done_callback(lambda f: host.cancel() if f.cancelled() else None)

    def _report(self, report: types.WorkDoneProgressReport) -> None:
        if self.token:
            self.ls.call_from_thread(self.loop, self.ls.work_done_progress.report, self.token, report)

    def on_progress(self, progress: IndexProgress) -> None:
        now = time.monotonic()
        if now - self.last_report >= REPORT_INTERVAL or progress.done_files == progress.total_files:
            self.last_report = now
            self._report(
                types.WorkDoneProgressReport(message=progress.message, percentage=progress.percentage, cancellable=True)
            )

    def on_waiting(self) -> None:
        self._report(types.WorkDoneProgressReport(message="waiting for another semcode process to finish writing"))

    def end(self, message: str) -> None:
        if self.token:
            self.ls.work_done_progress.end(self.token, types.WorkDoneProgressEnd(message=message))


async def _progress_token(ls: SemcodeServer) -> str | None:
    if not supports_progress(ls):
        return None
    token = f"semcode-index-{uuid.uuid4().hex}"
    try:
        await ls.work_done_progress.create_async(token)
    except Exception as exc:  # noqa: BLE001 - a client may refuse; index without progress then
        log.warning("client refused a progress token: %s", exc)
        return None
    return token


async def index_folder(ls: SemcodeServer, host: IndexHost, *, full: bool = False) -> IndexStats | None:
    """Index one folder on its host's thread, reporting work-done progress; progress always ends."""
    work = _WorkDone(ls, asyncio.get_running_loop(), await _progress_token(ls))
    end_message = "done"
    try:
        work.begin(host)
        result = await asyncio.wrap_future(host.start(full=full, progress=work.on_progress, on_waiting=work.on_waiting))
        if result is None:
            end_message = f"failed: {host.last_error}"
            ls.show_error(f"indexing {host.root} failed: {host.last_error}")
            return None
        if result.cancelled:
            end_message = "cancelled"
        else:
            end_message = (
                f"{result.chunks_total} chunks: {result.files_indexed} files indexed, "
                f"{result.files_unchanged} unchanged, {result.files_skipped} skipped"
            )
        ls.log_to_client(
            f"{host.root}: {end_message} in {result.seconds:.1f}s ({result.chunks_embedded} chunks embedded)"
        )
        if host.workspace.rebuilt_reason:
            ls.log_to_client(f"the index was rebuilt: {host.workspace.rebuilt_reason}", types.MessageType.Warning)
        return result
    except asyncio.CancelledError:
        end_message = "cancelled"
        raise
    except Exception as exc:
        log.exception("indexing %s failed", host.root)
        end_message = f"failed: {exc}"
        ls.show_error(f"indexing {host.root} failed: {exc}")
        return None
    finally:
        work.end(end_message)


def index_all_folders(ls: SemcodeServer, *, full: bool = False) -> list[asyncio.Future[IndexStats | None]]:
    return [ls.spawn(index_folder(ls, host, full=full)) for host in ls.folders.values()]


# --------------------------------------------------------------------- saves and watched files
def schedule_update(ls: SemcodeServer, uri: str) -> None:
    """Re-index ``uri`` after a short quiet period, together with every file of its folder changed meanwhile.

    One update per folder and burst: a branch switch, stash or rebase sends thousands of events, and
    they become one batched write (and one progress report), not thousands of small ones. A newer
    event restarts the timer, up to ``MAX_UPDATE_DELAY`` after the first one.
    """
    try:
        path = uri_to_path(uri)
    except ValueError:
        return
    host = ls.folder_for(path)
    if host is None:
        return
    key = str(host.root)
    pending = ls.pending_updates.setdefault(key, {})
    first = not pending
    pending[str(path)] = None
    if len(pending) <= PREPARE_MAX_FILES:  # chunk and embed it while the debounce runs (engine/save_ahead.py)
        host.workspace.prepare_update([str(path)])
    previous = ls.save_tasks.get(key)
    if previous is not None and not previous.done():
        if not first and time.monotonic() - ls.update_started.get(key, 0.0) >= MAX_UPDATE_DELAY:
            return  # the timer running now fires soon and takes this path too
        previous.cancel()
    if first:
        ls.update_started[key] = time.monotonic()
    ls.save_tasks[key] = ls.spawn(_update_later(ls, key))


async def _update_later(ls: SemcodeServer, key: str) -> None:
    try:
        await asyncio.sleep(ls.save_delay)
    except asyncio.CancelledError:
        return
    ls.save_tasks.pop(key, None)
    paths = list(ls.pending_updates.pop(key, {}))
    host = next((h for h in ls.folders.values() if str(h.root) == key), None)
    if host is None or not host.is_open or not paths:
        return  # the initial index will see the files
    if len(paths) >= BULK_UPDATE_FILES:
        # A branch switch: the incremental index of the folder (stat-only for unchanged files) with
        # work-done progress, the lexical tier first and the dense tier in the background.
        await index_folder(ls, host)
        return
    try:
        stats = await asyncio.wrap_future(host.submit_update(paths))
        log.info(
            "re-indexed %d file(s) in %.0f ms: %d chunks embedded, %d from cache, %d deleted",
            len(paths),
            stats.seconds * 1000,
            stats.chunks_embedded,
            stats.chunks_cached,
            stats.files_deleted,
        )
    except SemcodeError as exc:
        name = Path(paths[0]).name if len(paths) == 1 else f"{len(paths)} files"
        ls.show_error(f"could not re-index {name}: {exc}")
    except asyncio.CancelledError:
        return
    except Exception:
        log.exception("re-indexing %d file(s) failed", len(paths))


async def register_file_watcher(ls: SemcodeServer) -> None:
    workspace = ls.client_capabilities.workspace
    watched = workspace.did_change_watched_files if workspace else None
    if not (watched and watched.dynamic_registration):
        return
    options = types.DidChangeWatchedFilesRegistrationOptions(watchers=[types.FileSystemWatcher(glob_pattern="**/*")])
    try:
        await ls.client_register_capability_async(
            types.RegistrationParams(
                registrations=[
                    types.Registration(
                        id="semcode-file-watcher",
                        method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
                        register_options=options,
                    )
                ]
            )
        )
    except Exception as exc:  # noqa: BLE001 - without a watcher, saves still keep the index fresh
        log.warning("file watcher registration failed: %s", exc)


# --------------------------------------------------------------------- handlers
def did_save(ls: SemcodeServer, params: types.DidSaveTextDocumentParams) -> None:
    schedule_update(ls, params.text_document.uri)


def _document(ls: SemcodeServer, uri: str) -> tuple[Path, IndexHost] | None:
    """The path of a document and the folder hosting it; None outside every workspace folder."""
    try:
        path = uri_to_path(uri)
    except ValueError:
        return None
    host = ls.folder_for(path)
    return None if host is None else (path, host)


def did_open(ls: SemcodeServer, params: types.DidOpenTextDocumentParams) -> None:
    """An open file is embedded first; its text is searched in place of the file when it differs."""
    found = _document(ls, params.text_document.uri)
    if found is not None:
        path, host = found
        host.prioritize([path])
        host.workspace.buffers.update(path, params.text_document.text)


def did_change(ls: SemcodeServer, params: types.DidChangeTextDocumentParams) -> None:
    """Unsaved edits are searched at once (lexically; semantically after a short pause in typing)."""
    found = _document(ls, params.text_document.uri)
    if found is not None:
        path, host = found
        text = ls.open_text(params.text_document.uri)  # pygls applied the changes already
        if text is not None:
            host.workspace.buffers.update(path, text)


def did_close(ls: SemcodeServer, params: types.DidCloseTextDocumentParams) -> None:
    """Closed without saving: search the disk copy again (a save is re-indexed, then the index takes over)."""
    found = _document(ls, params.text_document.uri)
    if found is not None:
        path, host = found
        host.workspace.buffers.discard(path)


def did_change_watched_files(ls: SemcodeServer, params: types.DidChangeWatchedFilesParams) -> None:
    for change in params.changes:
        schedule_update(ls, change.uri)


def progress_cancel(ls: SemcodeServer, params: types.WorkDoneProgressCancelParams) -> None:
    for host in ls.folders.values():
        if host.writing():
            host.cancel()


async def reindex(ls: SemcodeServer, *args: Any) -> dict[str, int]:
    full = bool(args and isinstance(args[0], dict) and args[0].get("full"))
    results = await asyncio.gather(*index_all_folders(ls, full=full))
    done = [r for r in results if r is not None]
    return {
        "files": sum(h.workspace.count_files() for h in ls.open_folders()),
        "chunks": sum(r.chunks_total for r in done),
    }
