"""Keeping the index fresh: initial index with work-done progress, saves, watched files, reindex."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from pathlib import Path
from typing import Any

from lsprotocol import types

from engine.errors import IndexLockedError, SemcodeError
from engine.records import IndexProgress, IndexStats

from ..convert import uri_to_path
from ..server import Folder, SemcodeServer

log = logging.getLogger(__name__)
LOCK_RETRY_SECONDS = 1.0
REPORT_INTERVAL = 0.2


def supports_progress(ls: SemcodeServer) -> bool:
    window = ls.client_capabilities.window
    return bool(window and window.work_done_progress)


async def index_folder(ls: SemcodeServer, folder: Folder, *, full: bool = False) -> IndexStats | None:
    """Index one folder in the index thread, reporting work-done progress; progress always ends."""
    loop = asyncio.get_running_loop()
    token: str | None = None
    if supports_progress(ls):
        token = f"semcode-index-{uuid.uuid4().hex}"
        try:
            await ls.work_done_progress.create_async(token)
        except Exception as exc:  # noqa: BLE001 - a client may refuse; index without progress then
            log.warning("client refused a progress token: %s", exc)
            token = None
    folder.cancel.clear()
    folder.indexing = True
    folder.progress = None
    result: IndexStats | None = None
    end_message = "done"
    try:
        if token:
            ls.work_done_progress.begin(
                token,
                types.WorkDoneProgressBegin(
                    title=f"Indexing workspace {folder.root.name}",
                    cancellable=True,
                    message="loading model",
                    percentage=0,
                ),
            )
            cancelled = ls.work_done_progress.tokens.get(token)
            if cancelled is not None:
                cancelled.add_done_callback(lambda f: folder.cancel.set() if f.cancelled() else None)
        last_report = 0.0

        def on_progress(progress: IndexProgress) -> None:
            nonlocal last_report
            folder.progress = (progress.done_files, progress.total_files)
            now = time.monotonic()
            if token and (now - last_report >= REPORT_INTERVAL or progress.done_files == progress.total_files):
                last_report = now
                ls.call_from_thread(
                    loop,
                    ls.work_done_progress.report,
                    token,
                    types.WorkDoneProgressReport(
                        message=progress.message, percentage=progress.percentage, cancellable=True
                    ),
                )

        workspace = await ls.in_index_thread(ls.workspace_of, folder)
        while True:
            try:
                result = await ls.in_index_thread(lambda: workspace.index(on_progress, folder.cancel, full=full))
                break
            except IndexLockedError:
                if token:
                    ls.work_done_progress.report(
                        token,
                        types.WorkDoneProgressReport(
                            message="waiting for another semcode process to finish writing the index"
                        ),
                    )
                await asyncio.sleep(LOCK_RETRY_SECONDS)
                if folder.cancel.is_set():
                    end_message = "cancelled"
                    return None
        if result.cancelled:
            end_message = "cancelled"
        else:
            end_message = (
                f"{result.chunks_total} chunks: {result.files_indexed} files indexed, "
                f"{result.files_unchanged} unchanged, {result.files_skipped} skipped"
            )
        ls.log_to_client(
            f"{folder.root}: {end_message} in {result.seconds:.1f}s ({result.chunks_embedded} chunks embedded)"
        )
        if workspace.store.rebuilt_reason:
            ls.log_to_client(f"the index was rebuilt: {workspace.store.rebuilt_reason}", types.MessageType.Warning)
        return result
    except SemcodeError as exc:
        end_message = f"failed: {exc}"
        ls.show_error(str(exc))
        return None
    except Exception as exc:
        log.exception("indexing %s failed", folder.root)
        end_message = f"failed: {exc}"
        ls.show_error(f"indexing {folder.root} failed: {exc}")
        return None
    finally:
        folder.indexing = False
        if token:
            ls.work_done_progress.end(token, types.WorkDoneProgressEnd(message=end_message))


def index_all_folders(ls: SemcodeServer, *, full: bool = False) -> list[asyncio.Task[IndexStats | None]]:
    return [ls.spawn(index_folder(ls, folder, full=full)) for folder in ls.folders.values()]


# --------------------------------------------------------------------- saves and watched files
def schedule_update(ls: SemcodeServer, uri: str) -> None:
    """Re-index ``uri`` after a short quiet period; a newer event for the same URI restarts the timer."""
    try:
        path = uri_to_path(uri)
    except ValueError:
        return
    if ls.folder_for(path) is None:
        return
    previous = ls.save_tasks.pop(uri, None)
    if previous is not None:
        previous.cancel()
    ls.save_tasks[uri] = ls.spawn(_update_later(ls, uri, path))


async def _update_later(ls: SemcodeServer, uri: str, path: Path) -> None:
    try:
        await asyncio.sleep(ls.save_delay)
    except asyncio.CancelledError:
        return
    ls.save_tasks.pop(uri, None)
    folder = ls.folder_for(path)
    if folder is None or folder.workspace is None:
        return  # the initial index will see the file
    try:
        stats = await ls.in_index_thread(folder.workspace.update_files, [str(path)])
        log.info(
            "re-indexed %s: %d chunks embedded, %d from cache, %d deleted",
            path,
            stats.chunks_embedded,
            stats.chunks_cached,
            stats.files_deleted,
        )
    except SemcodeError as exc:
        ls.show_error(f"could not re-index {path.name}: {exc}")
    except Exception:
        log.exception("re-indexing %s failed", path)


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


def register(server: SemcodeServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: SemcodeServer, params: types.DidSaveTextDocumentParams) -> None:
        schedule_update(ls, params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: SemcodeServer, params: types.DidOpenTextDocumentParams) -> None:
        """Nothing to index: the file on disk is what is indexed; pygls keeps the text for symbols."""

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: SemcodeServer, params: types.DidChangeTextDocumentParams) -> None:
        """Unsaved edits are not indexed (the index follows the disk); pygls keeps the text."""

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: SemcodeServer, params: types.DidCloseTextDocumentParams) -> None:
        """Nothing to do."""

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def did_change_watched_files(ls: SemcodeServer, params: types.DidChangeWatchedFilesParams) -> None:
        for change in params.changes:
            schedule_update(ls, change.uri)

    @server.feature(types.WINDOW_WORK_DONE_PROGRESS_CANCEL)
    def progress_cancel(ls: SemcodeServer, params: types.WorkDoneProgressCancelParams) -> None:
        for folder in ls.folders.values():
            if folder.indexing:
                folder.cancel.set()

    @server.command("semcode.reindex")
    async def reindex(ls: SemcodeServer, *args: Any) -> dict[str, int]:
        full = bool(args and isinstance(args[0], dict) and args[0].get("full"))
        results = await asyncio.gather(*index_all_folders(ls, full=full))
        done = [r for r in results if r is not None]
        return {
            "files": sum(f.workspace.store.count_files() for f in ls.ready_folders()),
            "chunks": sum(r.chunks_total for r in done),
        }
