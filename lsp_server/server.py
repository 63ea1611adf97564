"""The semcode language server: its state, and JSON-RPC that answers every request.

Handlers live in ``features/`` as module-level functions (one module per concern) and are
registered in one place, ``app.py``; this module imports none of them. Each workspace folder is
an ``engine.host.IndexHost``: it indexes on its own thread (writes to one folder are serialised
there) and keeps the state ``semcode/status`` reports. Reads run in the default thread pool, so
slow engine work never runs on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote

import attrs
from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcMethodNotFound
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol

from engine.config import EngineConfig
from engine.errors import ConfigError, SemcodeError
from engine.host import IndexHost

from .convert import uri_to_path
from .options import ServerOptions

log = logging.getLogger(__name__)
T = TypeVar("T")

try:
    from importlib.metadata import version

    SERVER_VERSION = version("semcode")
except Exception:  # noqa: BLE001 - running from a source tree
    SERVER_VERSION = "0.0.0+source"

SEMANTIC_SEARCH = "workspace/semanticSearch"
STATUS = "semcode/status"
METRICS = "semcode/metrics"
PARSE_ERROR, INVALID_REQUEST, INVALID_PARAMS = -32700, -32600, -32602


@attrs.define
class CustomRequest:
    """A request whose ``params`` may be omitted, as JSON-RPC allows (pygls' fallback requires them)."""

    id: int | str
    method: str
    jsonrpc: str
    params: Any = None


@attrs.define
class CustomNotification:
    """A notification of a method pygls does not know, ``params`` optional (it is then ignored)."""

    method: str
    jsonrpc: str
    params: Any = None


@attrs.define
class RejectedMessage:
    """A message whose params could not be read: a request gets an error reply, a notification nothing."""

    id: int | str | None
    method: str
    code: int
    message: str
    is_request: bool


def _error_reply(msg_id: int | str | None, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": msg_id, "error": {"code": code, "message": message}}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class SemcodeProtocol(LanguageServerProtocol):
    """pygls' protocol, made to answer what it would drop and to log expected rejections in one line.

    - a request for an unknown method, with or without ``params``: -32601 (pygls needs ``params``);
    - a request whose ``params`` do not fit the method: -32602 (pygls logs and drops it);
    - a body that is not JSON or not a JSON-RPC message: -32700 / -32600 with ``id: null``;
    - a handler's deliberate error (``JsonRpcException``): replied with one log line, no traceback.
    """

    def structure_message(self, data: dict[str, Any]) -> Any:
        if "jsonrpc" not in data:
            return data  # a nested object of the message being read
        method = data.get("method")
        is_request = "id" in data and "error" not in data and "result" not in data
        if not isinstance(method, str):
            if "method" in data:
                return RejectedMessage(data.get("id"), "", INVALID_REQUEST, "'method' must be a string", is_request)
            return super().structure_message(data)  # a response to one of our requests
        message_type = self.get_message_type(method)
        if message_type is None:
            message_type = CustomRequest if is_request else CustomNotification
        try:
            return self._converter.structure(data, message_type)
        except Exception as exc:  # noqa: BLE001 - the client sent params this method does not take
            log.warning("rejected %s (id %r): invalid params: %s", method, data.get("id"), _first_line(exc))
            return RejectedMessage(data.get("id"), method, INVALID_PARAMS, f"invalid params for {method}", is_request)

    def handle_message(self, message: Any) -> None:
        if isinstance(message, RejectedMessage):
            if message.is_request:
                self._send_data(_error_reply(message.id, message.code, message.message))
            return
        if not hasattr(message, "jsonrpc"):
            log.warning("rejected a body that is not a JSON-RPC message: %.80r", message)
            self._send_data(_error_reply(None, INVALID_REQUEST, "Invalid Request: not a JSON-RPC message"))
            return
        super().handle_message(message)

    def _send_handler_result(self, future: Future[Any], *, msg_id: Any) -> None:
        exc = None if future.cancelled() else future.exception()
        if isinstance(exc, JsonRpcException):
            self._request_futures.pop(msg_id, None)
            log.info("request %r rejected: %s", msg_id, exc.message)
            self._send_response(msg_id, error=exc.to_response_error())
            return
        super()._send_handler_result(future, msg_id=msg_id)


class _ParseErrorLog(logging.Filter):
    """pygls logs a body that is not JSON with a traceback; it is the client's mistake: one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], ValueError) and record.msg == "Unable to handle message":
            record.msg, record.args = "rejected a body that is not JSON: %s", (_first_line(record.exc_info[1]),)
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


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
        self.folders: dict[Path, IndexHost] = {}
        self.last_error: str | None = None
        self.save_tasks: dict[str, asyncio.Future[None]] = {}  # per folder: its pending update
        self.pending_updates: dict[str, dict[str, None]] = {}  # per folder: paths saved or changed meanwhile
        self.update_started: dict[str, float] = {}  # per folder: monotonic time of its burst's first event
        self.background_tasks: set[asyncio.Future[Any]] = set()
        self.save_delay = 0.3  # seconds: a burst of saves (or a branch switch's file events) is indexed once
        logging.getLogger("pygls.server").addFilter(_ParseErrorLog())

    def report_server_error(self, error: Exception, source: Any) -> None:
        if source is JsonRpcException and isinstance(error, ValueError):
            # The message loop could not decode a body (bad JSON or bad UTF-8): say so, keep serving.
            self.protocol._send_data(_error_reply(None, PARSE_ERROR, f"Parse error: {_first_line(error)}"))
            return
        if isinstance(error, JsonRpcMethodNotFound):
            return  # pygls logged the unknown method already
        super().report_server_error(error, source)  # a bug: pygls logs it and tells the user

    # ----------------------------------------------------------------- folders
    def add_folder(self, root: Path, config: EngineConfig | None = None) -> IndexHost:
        """Host a workspace folder (its own Workspace and index); replaces a previous host of it."""
        previous = self.folders.pop(root, None)
        if previous is not None:
            previous.close()
        from engine.shared_index import open_workspace  # on a team snapshot when sharedIndex is set

        host = IndexHost(open_workspace(root, config or self.options.engine))
        self.folders[root] = host
        self._feed_open_documents(host)
        return host

    def _feed_open_documents(self, host: IndexHost) -> None:
        """Documents opened before this host existed (new settings re-create hosts): their unsaved text counts."""
        try:
            documents = list(self.workspace.text_documents.items())
        except RuntimeError:  # not initialized yet: nothing is open
            return
        for uri, document in documents:
            try:
                host.workspace.buffers.update(uri_to_path(uri), document.source)
            except ValueError:  # not a file URI
                continue

    def remove_folder(self, root: Path) -> None:
        host = self.folders.pop(root, None)
        if host is not None:
            host.close()

    def folder_for(self, path: Path) -> IndexHost | None:
        """The innermost workspace folder containing ``path`` (after resolving symlinks and ``..``)."""
        try:
            path = path.resolve()
        except (OSError, RuntimeError):
            return None
        best: IndexHost | None = None
        for root, host in self.folders.items():
            if (path == root or root in path.parents) and (best is None or len(str(root)) > len(str(best.root))):
                best = host
        return best

    def open_text(self, uri: str) -> str | None:
        """The editor's text of an open document (it may hold unsaved edits), or None."""
        document = self.workspace.text_documents.get(unquote(uri))
        return document.source if document is not None else None

    def open_folders(self) -> list[IndexHost]:
        """Folders whose model and index are open (searchable)."""
        return [h for h in self.folders.values() if h.is_open]

    # ----------------------------------------------------------------- threads
    async def in_thread(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a read off the event loop."""
        return await asyncio.to_thread(fn, *args, **kwargs)

    def call_from_thread(self, loop: asyncio.AbstractEventLoop, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn`` on the event loop: pygls' transport is not thread-safe."""
        loop.call_soon_threadsafe(fn, *args)

    def spawn(self, awaitable: Any) -> asyncio.Future[Any]:
        """Run in the background, holding a reference so the task is not garbage-collected mid-way."""
        task: asyncio.Future[Any] = asyncio.ensure_future(awaitable)
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

    if isinstance(exc, (ValueError, TypeError, ConfigError)):
        return JsonRpcInvalidParams(message=str(exc))
    if isinstance(exc, SemcodeError):
        return JsonRpcInternalError(message=str(exc))
    return exc
