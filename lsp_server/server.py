"""The semcode language server: state shared by the feature handlers.

Handlers live in ``features/``, one module per concern, and stay thin: they validate, convert
(``convert.py``) and call the engine. Slow engine work never runs on the event loop: writes go
through one index thread (so they are serialised), reads through the default thread pool.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import attrs
from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol

from engine.errors import SemcodeError
from engine.workspace import Workspace

from .options import ServerOptions

log = logging.getLogger(__name__)
T = TypeVar("T")

try:
    from importlib.metadata import version

    SERVER_VERSION = version("semcode")
except Exception:  # noqa: BLE001 - running from a source tree
    SERVER_VERSION = "0.0.0+source"


@dataclass(slots=True)
class Folder:
    """One workspace folder: its engine workspace and its indexing state."""

    root: Path
    workspace: Workspace | None = None
    indexing: bool = False
    cancel: threading.Event = field(default_factory=threading.Event)
    progress: tuple[int, int] | None = None


SEMANTIC_SEARCH = "workspace/semanticSearch"
STATUS = "semcode/status"
CUSTOM_REQUESTS = frozenset({SEMANTIC_SEARCH, STATUS})


@attrs.define
class CustomRequest:
    """A custom request whose ``params`` may be omitted, as JSON-RPC allows (pygls' fallback requires it)."""

    id: int | str
    method: str
    jsonrpc: str
    params: Any = None


class SemcodeProtocol(LanguageServerProtocol):
    def get_message_type(self, method: str) -> type[Any] | None:
        if method in CUSTOM_REQUESTS:
            return CustomRequest
        return super().get_message_type(method)


class SemcodeServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__(
            "semcode",
            SERVER_VERSION,
            text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
            protocol_cls=SemcodeProtocol,
        )
        self.options = ServerOptions()
        self.init_settings: Any = None
        self.folders: dict[Path, Folder] = {}
        self.last_error: str | None = None
        self.index_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="semcode-index")
        self.save_tasks: dict[str, asyncio.Future[None]] = {}
        self.background_tasks: set[asyncio.Future[Any]] = set()
        self.save_delay = 0.3  # seconds: a burst of saves of one file is indexed once

    # ----------------------------------------------------------------- folders
    def folder_for(self, path: Path) -> Folder | None:
        """The innermost workspace folder containing ``path``."""
        path = path.resolve()
        best: Folder | None = None
        for root, folder in self.folders.items():
            if (path == root or root in path.parents) and (best is None or len(str(root)) > len(str(best.root))):
                best = folder
        return best

    def workspace_of(self, folder: Folder) -> Workspace:
        """The folder's engine workspace, created on first use (this loads the model)."""
        if folder.workspace is None:
            from engine.shared_index import open_workspace  # on a team snapshot when sharedIndex is set

            folder.workspace = open_workspace(folder.root, self.options.engine)
        return folder.workspace

    def ready_folders(self) -> list[Folder]:
        return [f for f in self.folders.values() if f.workspace is not None]

    # ----------------------------------------------------------------- threads
    async def in_index_thread(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a write on the single index thread, so writes are serialised."""
        return await asyncio.get_running_loop().run_in_executor(self.index_executor, partial(fn, *args, **kwargs))

    async def in_thread(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a read off the event loop."""
        return await asyncio.to_thread(fn, *args, **kwargs)

    def call_from_thread(self, loop: asyncio.AbstractEventLoop, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn`` on the event loop: pygls' transport is not thread-safe."""
        loop.call_soon_threadsafe(fn, *args)

    def spawn(self, awaitable: Any) -> asyncio.Future[Any]:
        """Run in the background, holding a reference so the task is not garbage-collected mid-way."""
        task = asyncio.ensure_future(awaitable)
        self.background_tasks.add(task)
        task.add_done_callback(self.background_tasks.discard)
        return task

    # ----------------------------------------------------------------- user-visible messages
    def show_error(self, message: str) -> None:
        log.error(message)
        self.last_error = message
        self.window_show_message(types.ShowMessageParams(types.MessageType.Error, f"semcode: {message}"))

    def log_to_client(self, message: str, kind: types.MessageType = types.MessageType.Info) -> None:
        log.info(message)
        self.window_log_message(types.LogMessageParams(kind, f"semcode: {message}"))


def request_error(exc: Exception) -> Exception:
    """A JSON-RPC error for an expected failure: invalid params for bad input, else a server error."""
    from pygls.exceptions import JsonRpcInternalError, JsonRpcInvalidParams

    if isinstance(exc, (ValueError, TypeError)) or type(exc).__name__ == "ConfigError":
        return JsonRpcInvalidParams(message=str(exc))
    if isinstance(exc, SemcodeError):
        return JsonRpcInternalError(message=str(exc))
    return exc


def create_server() -> SemcodeServer:
    from .features import register_all

    server = SemcodeServer()
    register_all(server)
    return server
