"""``semcode mcp``: semantic code search for AI agents, served over MCP (stdio).

Tools: ``semantic_search``, ``find_similar``, ``index_status`` and ``reindex``. They answer from the
same on-disk index the language server keeps (``EngineConfig.index_path``), so ``semcode serve`` and
``semcode mcp`` on one workspace share one index. One process writes at a time (the store's write
lock): while another process holds it, this server only reads the committed index, says so
(``partial``/``locked_by_other_process``) and retries its own indexing later.

The model loads and the initial index runs in a background thread, so the server answers at once;
until the index is complete, results carry ``partial: true``. Lines in results come both 0-based
(``start_line``/``end_line``, as in LSP) and 1-based (``start_line_1``/``end_line_1``, as editors
show them); ``find_similar`` takes 1-based lines. Logs go to stderr only: stdout is the MCP channel.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, Field

from engine.config import EngineConfig
from engine.errors import IndexLockedError, SemcodeError
from engine.records import IndexProgress, IndexStats, SearchHit
from engine.search import MAX_LIMIT, SearchFilters
from engine.workspace import Workspace

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_PAGE_SIZE = 50
PREVIEW_CHARS = 400
MAX_QUERY_CHARS = 2_000
MAX_CODE_CHARS = 20_000
LOCK_RETRY_SECONDS = 2.0
LOCK_PROBE_TTL = 1.0  # seconds a lock probe stays valid: probing takes the lock for an instant
READY_TIMEOUT = 120.0  # how long a tool call waits for the model to load
SHUTDOWN_GRACE = 10.0  # seconds to let a cancelled index finish its current write on exit


class ToolInputError(SemcodeError):
    """A tool argument is invalid; the message tells the agent what to send instead."""


# --------------------------------------------------------------------- result shapes
class Hit(BaseModel):
    """One match: a symbol (or a window of lines outside symbols) in one file."""

    rank: int = Field(description="1 = best match (across pages)")
    file: str = Field(description="path relative to the workspace root, POSIX separators")
    name_path: str = Field(description="symbol identity like 'Class/method'; '' for code outside symbols")
    kind: str = Field(description="function, method, class, ... or block/module for plain windows")
    language: str
    start_line: int = Field(description="first line, 0-based")
    end_line: int = Field(description="last line (inclusive), 0-based")
    start_line_1: int = Field(description="first line, 1-based (as editors show it)")
    end_line_1: int = Field(description="last line (inclusive), 1-based")
    score: float = Field(description="relevance, 1.0 = best possible; comparable within one answer only")
    why: str = Field(description="why it matched: semantic similarity, BM25 score, matched terms")
    preview: str = Field(description=f"the start of the code (at most {PREVIEW_CHARS} characters)")


class SearchResult(BaseModel):
    workspace_root: str
    results: list[Hit]
    page: int
    page_size: int
    next_page: int | None = Field(description="call again with page=next_page for more; null = no more")
    partial: bool = Field(
        description="true while the index is incomplete (still building, or another "
        "semcode process is writing it): results may miss files"
    )
    note: str | None = None


class IndexStatus(BaseModel):
    workspace_root: str
    state: str = Field(description="starting | indexing | waiting_for_lock | ready | not_indexed | error")
    files: int | None
    chunks: int | None
    model: str | None
    dimension: int | None
    index_path: str | None
    locked_by_other_process: bool = Field(
        description="another semcode process (e.g. `semcode serve`) is "
        "writing this index; this server only reads meanwhile"
    )
    partial: bool
    progress: dict[str, int] | None = Field(default=None, description="{done, total} files while indexing")
    last_error: str | None = None
    note: str | None = None


class ReindexResult(BaseModel):
    scope: str = Field(description="'.' for the whole workspace, else the re-indexed file or folder")
    files_seen: int
    files_indexed: int = Field(description="files read and chunked because they were new or changed")
    files_unchanged: int
    files_deleted: int
    files_skipped: int
    chunks_embedded: int
    chunks_from_cache: int
    seconds: float
    files: int = Field(description="files in the whole index afterwards")
    chunks: int = Field(description="chunks in the whole index afterwards")


# --------------------------------------------------------------------- the engine side
class McpEngine:
    """A Workspace plus background indexing that respects other processes' write lock."""

    def __init__(self, root: Path, config: EngineConfig, *, index_on_start: bool = True) -> None:
        self.workspace = Workspace(root, config)
        self.root = self.workspace.root
        self.index_on_start = index_on_start
        self.state = "starting"
        self.last_error: str | None = None
        self.progress: IndexProgress | None = None
        self.opened = False  # model loaded and index opened: reads can start
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._index_mutex = threading.Lock()  # our own writes and lock probes, one at a time
        self._probe: tuple[float, bool] = (0.0, False)
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._background, name="semcode-mcp-index", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def wait_stopped(self, timeout: float) -> None:
        """Give a cancelled index time to finish the write in progress (the thread is a daemon)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _background(self) -> None:
        try:
            self.workspace.store  # noqa: B018 - loads the model and opens the index
        except SemcodeError as exc:
            self._fail(str(exc))
            return
        except Exception as exc:  # a background failure must reach the tools, not kill them
            log.exception("loading the model failed")
            self._fail(f"loading the model failed: {exc}")
            return
        if not self.index_on_start:  # else "starting" until the first index attempt says indexing or waiting
            self.state = "ready" if self.workspace.store.count_files() else "not_indexed"
        self.opened = True
        self._ready.set()
        if self.index_on_start:
            self._index_until_done()

    def _fail(self, message: str) -> None:
        self.state, self.last_error = "error", message
        log.error("%s", message)
        self._ready.set()

    def _index_until_done(self) -> None:
        """Index once; while another process holds the write lock, read only and retry later."""
        while not self._stop.is_set():
            try:
                stats = self._index_whole()
            except IndexLockedError:
                self.state = "waiting_for_lock"
                log.info("another semcode process is writing the index; retrying in %.0fs", LOCK_RETRY_SECONDS)
                self._stop.wait(LOCK_RETRY_SECONDS)
                continue
            except SemcodeError as exc:
                self.state, self.last_error = "error", str(exc)
                log.error("indexing failed: %s", exc)
                return
            except Exception as exc:  # reported by index_status
                log.exception("indexing failed")
                self.state, self.last_error = "error", f"indexing failed: {exc}"
                return
            log.info(
                "indexed %s: %d files, %d chunks (%d embedded) in %.1fs",
                self.root,
                stats.files_seen,
                stats.chunks_total,
                stats.chunks_embedded,
                stats.seconds,
            )
            return

    def _index_whole(self) -> IndexStats:
        with self._index_mutex:
            self.state = "indexing"
            self.progress = None
            try:
                stats = self.workspace.index(self._on_progress, self._stop, wait_for_lock=False)
            except IndexLockedError:
                self.state = "waiting_for_lock"
                raise
            finally:
                self.progress = None
            self.state = "ready"
            return stats

    def _on_progress(self, progress: IndexProgress) -> None:
        self.progress = progress

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> Workspace:
        if not self._ready.wait(timeout):
            raise ToolInputError("the embedding model is still loading; try again in a few seconds")
        if not self.opened:
            raise ToolInputError(f"the semantic index is unavailable: {self.last_error}")
        return self.workspace

    # ----------------------------------------------------------------- locks
    def locked_by_other(self) -> bool:
        """Whether another process holds the index's write lock (probed at most once a second)."""
        if self.state == "indexing":
            return False  # we are the writer
        checked_at, locked = self._probe
        if time.monotonic() - checked_at < LOCK_PROBE_TTL:
            return locked
        if not self._index_mutex.acquire(blocking=False):
            return False  # our own indexing is starting or running
        try:
            # One index per (workspace, model) below this folder; the server's model has one of them.
            folder = self.workspace.config.index_path(self.root)
            locked = any(_probe_lock(lock) for lock in folder.glob("*/write.lock"))
        finally:
            self._index_mutex.release()
        self._probe = (time.monotonic(), locked)
        return locked

    def partial_note(self) -> tuple[bool, str | None]:
        """(partial, explanation) for answers given now."""
        if self.state == "indexing":
            done = f" ({self.progress.done_files}/{self.progress.total_files} files)" if self.progress else ""
            return True, f"the index is still being built{done}: results may miss files"
        if self.state == "starting":
            return self.index_on_start, "semcode is starting: the model loads, then the index is brought up to date"
        if self.state == "waiting_for_lock" or self.locked_by_other():
            return True, (
                "another semcode process (e.g. `semcode serve`) is writing this index: "
                "results come from what it has committed so far"
            )
        if self.state == "not_indexed":
            return False, "the workspace is not indexed yet: call reindex"
        if self.state == "error" and self.last_error:
            return False, f"the last indexing run failed: {self.last_error}"
        return False, None

    # ----------------------------------------------------------------- writes
    def reindex(self, scope: str | None) -> ReindexResult:
        ws = self.wait_ready()
        rel = self.relative_path(scope, must_exist=False) if scope else "."
        if not self._index_mutex.acquire(blocking=False):
            raise ToolInputError("this server is already indexing the workspace; call index_status to follow it")
        state_after, self.state = self.state, "indexing"
        try:
            stats = self._index_scope(ws, rel)
            state_after = "ready"
        except IndexLockedError as exc:
            self._probe = (time.monotonic(), True)
            raise ToolInputError(
                "another semcode process (e.g. `semcode serve`) is indexing this workspace right now, "
                "so this server will not write; its committed results are searchable meanwhile. "
                "Try reindex again when index_status shows locked_by_other_process=false."
            ) from exc
        finally:
            self.state = state_after
            self._index_mutex.release()
        store = ws.store
        return ReindexResult(
            scope=rel,
            files_seen=stats.files_seen,
            files_indexed=stats.files_indexed,
            files_unchanged=stats.files_unchanged,
            files_deleted=stats.files_deleted,
            files_skipped=stats.files_skipped,
            chunks_embedded=stats.chunks_embedded,
            chunks_from_cache=stats.chunks_cached,
            seconds=round(stats.seconds, 2),
            files=store.count_files(),
            chunks=store.count_chunks(),
        )

    def _index_scope(self, ws: Workspace, rel: str) -> IndexStats:
        if rel == ".":
            return ws.index(self._on_progress, self._stop, wait_for_lock=False)
        target = self.root / rel
        if target.is_dir():
            paths = self._paths_below(ws, rel)
            if not paths:
                raise ToolInputError(f"no indexable files in {rel} (ignored, binary or empty)")
            return ws.update_files(paths, wait_for_lock=False)
        if not target.exists() and rel not in ws.store.manifest():
            raise ToolInputError(f"{rel} does not exist in the workspace and is not in the index")
        return ws.update_files([rel], wait_for_lock=False)

    def _paths_below(self, ws: Workspace, rel_dir: str) -> list[str]:
        from engine.files import walk

        prefix = rel_dir.rstrip("/") + "/"
        on_disk = [f.path for f in walk(self.root, ws.config) if f.path.startswith(prefix)]
        indexed = [p for p in ws.store.manifest() if p.startswith(prefix)]
        return list(dict.fromkeys(on_disk + indexed))

    # ----------------------------------------------------------------- path arguments
    def relative_path(self, path: str, *, must_exist: bool = True) -> str:
        """A workspace-relative POSIX path for an absolute or relative path inside the workspace."""
        if not path.strip() or "\0" in path:
            raise ToolInputError("path is empty")
        candidate = Path(path.strip())
        if not candidate.is_absolute():
            candidate = self.root / candidate
        try:
            rel = candidate.resolve().relative_to(self.root).as_posix()
        except (ValueError, OSError, RuntimeError):
            raise ToolInputError(
                f"{path} is outside the workspace {self.root}; give a path inside it, "
                "relative to the workspace root or absolute"
            ) from None
        if must_exist and not (self.root / rel).exists():
            raise ToolInputError(f"{path} does not exist in the workspace {self.root}")
        return rel


def _probe_lock(lock_path: Path) -> bool:
    try:
        with open(lock_path, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
            return False
    except OSError:
        return False


# --------------------------------------------------------------------- tool logic (plain functions)
def _check_page(limit: int, page: int) -> None:
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ToolInputError(f"limit must be between 1 and {MAX_PAGE_SIZE} (results per page), got {limit}")
    if page < 1:
        raise ToolInputError(f"page must be 1 or more, got {page}")
    if (page - 1) * limit >= MAX_LIMIT:
        raise ToolInputError(
            f"at most {MAX_LIMIT} results can be paged through; page {page} with limit {limit} "
            "is beyond that: refine the query or use the path/language/kind filters"
        )


def _fetch_size(limit: int, page: int) -> int:
    """How many hits to ask the engine for: this page plus one to know whether a next page exists.

    Rounded up to a multiple of 50 so consecutive pages come from the same candidate pool (the engine's
    fusion pool grows with the limit) and therefore agree on the order.
    """
    wanted = page * limit + 1
    return min(MAX_LIMIT, -(-wanted // 50) * 50)


def _to_hit(hit: SearchHit, rank: int) -> Hit:
    preview = hit.preview if len(hit.preview) <= PREVIEW_CHARS else hit.preview[: PREVIEW_CHARS - 1] + "…"
    return Hit(
        rank=rank,
        file=hit.path,
        name_path=hit.name_path,
        kind=hit.kind,
        language=hit.language,
        start_line=hit.start_line,
        end_line=hit.end_line,
        start_line_1=hit.start_line + 1,
        end_line_1=hit.end_line + 1,
        score=round(hit.score, 4),
        why=hit.why or "semantic similarity",
        preview=preview,
    )


def _page(engine: McpEngine, hits: list[SearchHit], limit: int, page: int) -> SearchResult:
    start = (page - 1) * limit
    chosen = hits[start : start + limit]
    has_more = len(hits) > start + limit and start + limit < MAX_LIMIT
    partial, note = engine.partial_note()
    if not hits and note is None:
        note = "no matches" if engine.workspace.store.count_chunks() else "the index is empty: call reindex"
    results = [_to_hit(hit, start + i + 1) for i, hit in enumerate(chosen)]
    return SearchResult(
        workspace_root=str(engine.root),
        results=results,
        page=page,
        page_size=limit,
        next_page=page + 1 if has_more else None,
        partial=partial,
        note=note,
    )


def _filters(engine: McpEngine, path: str | None, language: str | None, kind: str | None) -> SearchFilters:
    return SearchFilters(
        path=_path_glob(engine, path or ""),
        language=(language or "").strip().lower() or None,
        kind=(kind or "").strip().lower() or None,
    )


def _path_glob(engine: McpEngine, path: str) -> str | None:
    """The engine's path filter for a file, a folder or a glob, relative to the workspace root."""
    text = path.strip()
    if not text:
        return None
    if not any(c in text for c in "*?["):  # a plain file or folder: it must exist
        rel = engine.relative_path(text)
        if rel == ".":
            return None
        return rel + "/" if (engine.root / rel).is_dir() else rel
    if Path(text).is_absolute():
        try:
            text = Path(text).relative_to(engine.root).as_posix()
        except ValueError:
            raise ToolInputError(
                f"{path} is outside the workspace {engine.root}; give a glob relative to the "
                "workspace root such as 'src/**/*.py'"
            ) from None
    if ".." in Path(text).parts:
        raise ToolInputError(f"{path} is outside the workspace {engine.root}: '..' is not allowed in a glob")
    return text.removeprefix("./")


def do_search(
    engine: McpEngine, query: str, limit: int, page: int, path: str | None, language: str | None, kind: str | None
) -> SearchResult:
    query = query.strip()
    if not query:
        raise ToolInputError("query is empty: describe the code you are looking for, e.g. 'parse URL query string'")
    if len(query) > MAX_QUERY_CHARS:
        raise ToolInputError(
            f"query is too long ({len(query)} characters, at most {MAX_QUERY_CHARS}); "
            "to search with a piece of code use find_similar(code=...)"
        )
    _check_page(limit, page)
    filters = _filters(engine, path, language, kind)
    ws = engine.wait_ready()
    hits = ws.search(query, limit=_fetch_size(limit, page), filters=filters)
    return _page(engine, hits, limit, page)


def do_similar(
    engine: McpEngine,
    path: str | None,
    start_line: int | None,
    end_line: int | None,
    code: str | None,
    limit: int,
    page: int,
) -> SearchResult:
    _check_page(limit, page)
    fetch = _fetch_size(limit, page)
    if code is not None and code.strip():
        if path is not None:
            raise ToolInputError("give either code or path (with start_line), not both")
        if len(code) > MAX_CODE_CHARS:
            raise ToolInputError(f"code is too long ({len(code)} characters, at most {MAX_CODE_CHARS})")
        ws = engine.wait_ready()
        return _page(engine, ws.similar_code(code, limit=fetch), limit, page)
    if path is None:
        raise ToolInputError("give either code (a snippet) or path with start_line (and optionally end_line)")
    rel = engine.relative_path(path)
    start, end = _line_range(engine.root / rel, start_line, end_line)
    ws = engine.wait_ready()
    return _page(engine, ws.find_similar(rel, start, end, limit=fetch), limit, page)


def _line_range(file: Path, start_line: int | None, end_line: int | None) -> tuple[int, int]:
    """Validate 1-based inclusive lines against the file; return 0-based inclusive lines."""
    if not file.is_file():
        raise ToolInputError(f"{file} is not a file")
    if start_line is None:
        raise ToolInputError("start_line is required with path (1-based; the first line of the file is 1)")
    end_line = start_line if end_line is None else end_line
    if start_line < 1 or end_line < 1:
        raise ToolInputError(
            f"lines are 1-based: start_line and end_line must be 1 or more, got {start_line} and {end_line}"
        )
    if end_line < start_line:
        raise ToolInputError(f"end_line ({end_line}) is before start_line ({start_line})")
    try:
        count = len(file.read_text(encoding="utf-8", errors="replace").splitlines())
    except OSError as exc:
        raise ToolInputError(f"cannot read {file}: {exc.strerror or exc}") from exc
    if start_line > count:
        raise ToolInputError(f"start_line {start_line} is past the end of the file ({count} lines)")
    return start_line - 1, min(end_line, count) - 1


def do_status(engine: McpEngine) -> IndexStatus:
    locked = engine.locked_by_other()
    partial, note = engine.partial_note()
    base = {
        "workspace_root": str(engine.root),
        "state": engine.state,
        "locked_by_other_process": locked,
        "partial": partial,
        "last_error": engine.last_error,
        "note": note,
    }
    if not engine.opened:
        return IndexStatus(**base, files=None, chunks=None, model=None, dimension=None, index_path=None)
    store = engine.workspace.store
    info = engine.workspace.embedder.info
    progress = engine.progress
    return IndexStatus(
        **base,
        files=store.count_files(),
        chunks=store.count_chunks(),
        model=info.name,
        dimension=info.dimension,
        index_path=str(store.path),
        progress={"done": progress.done_files, "total": progress.total_files} if progress else None,
    )


# --------------------------------------------------------------------- the MCP server
SEARCH_DESCRIPTION = """\
Find code by meaning in this workspace (semantic + keyword search over functions, methods, classes).
Use it when you know WHAT the code does but not its name or file, e.g. "retry an HTTP request with backoff",
"where are CRC checksums computed", "parse the query string of a URL". Prefer it over grep for concepts;
use grep for exact identifiers you already know.
Returns matches best first, each with file (workspace-relative), name_path (symbol identity like
'Class/method', usable with symbol tools such as Serena's), kind, start_line/end_line (0-based) and
start_line_1/end_line_1 (1-based), score, why (what matched) and a short preview.
Results are paginated: when next_page is not null, call again with page=next_page.
partial=true means the index is still being built (or another semcode process is writing it)."""

SIMILAR_DESCRIPTION = """\
Find code similar to a given piece of code: duplicates, near-copies, other implementations of the same idea,
places a fix should also be applied to. Two ways to call it:
- by location: path (workspace-relative or absolute) + start_line and optionally end_line, 1-BASED and
  inclusive (the first line of a file is 1, as editors show it). With start_line only (or end_line ==
  start_line) it uses the whole symbol (function/method/class) containing that line.
  The given location itself is excluded from the results.
- by content: code = a snippet (it need not exist in the workspace). If it is copied from the workspace,
  its own location will usually be the first result.
Returns the same shape as semantic_search (paginated with page/next_page)."""

STATUS_DESCRIPTION = """\
Report the state of this workspace's semantic index: state (starting, indexing, waiting_for_lock, ready,
not_indexed, error), number of indexed files and chunks, the embedding model and its dimension, the
index location, whether another semcode process (e.g. the editor's `semcode serve`) holds the write lock,
indexing progress, and partial (true = searches may miss files for now)."""

REINDEX_DESCRIPTION = """\
Bring the semantic index up to date after files changed: re-embeds only new or changed code (cheap when
little changed). path (optional, workspace-relative or absolute) limits it to one file or folder; omit it for
the whole workspace. Returns counts of files indexed/unchanged/deleted and chunks embedded. Fails with a
clear message when another semcode process is writing the index (search still works then)."""

INSTRUCTIONS = """\
semcode: offline semantic code search over one workspace. Use semantic_search to find code by what it does,
find_similar to find code like a given location or snippet, index_status to check the index, reindex after
editing files. Paths are workspace-relative; lines come 0-based (start_line) and 1-based (start_line_1)."""

Limit = Annotated[int, Field(description=f"results per page, 1..{MAX_PAGE_SIZE}")]
Page = Annotated[int, Field(description="1-based page number; use next_page from the previous answer")]


def build_server(engine: McpEngine) -> Any:
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError
    from mcp.types import ToolAnnotations

    @contextlib.asynccontextmanager
    async def lifespan(_server: Any) -> AsyncIterator[dict[str, Any]]:
        # Entered once the stdio transport owns fd 1, so nothing the model loader prints can reach the wire.
        engine.start()
        try:
            yield {}
        finally:
            engine.stop()  # cancels indexing at the next file; what is committed stays consistent

    server = MCPServer("semcode", instructions=INSTRUCTIONS, log_level="WARNING", lifespan=lifespan)
    read_only = ToolAnnotations(read_only_hint=True, open_world_hint=False)

    def tool_errors(call: Callable[[], T]) -> T:
        try:
            return call()
        except SemcodeError as exc:  # expected: bad arguments, locked index, bad model
            raise ToolError(str(exc)) from exc

    @server.tool(description=SEARCH_DESCRIPTION, annotations=read_only)
    def semantic_search(
        query: Annotated[str, Field(description="what the code does, in words or with identifiers")],
        limit: Limit = 10,
        path: Annotated[
            str | None,
            Field(description="only files matching this glob or folder, e.g. 'src/', '**/*.ts', 'engine/store.py'"),
        ] = None,
        language: Annotated[str | None, Field(description="only this language, e.g. python, typescript")] = None,
        kind: Annotated[str | None, Field(description="only this symbol kind: function, method, class, ...")] = None,
        page: Page = 1,
    ) -> SearchResult:
        return tool_errors(lambda: do_search(engine, query, limit, page, path, language, kind))

    @server.tool(description=SIMILAR_DESCRIPTION, annotations=read_only)
    def find_similar(
        path: Annotated[
            str | None,
            Field(description="file of the code to compare, workspace-relative or absolute (use with start_line)"),
        ] = None,
        start_line: Annotated[int | None, Field(description="first line, 1-based")] = None,
        end_line: Annotated[
            int | None,
            Field(description="last line, 1-based, inclusive (default: start_line = the symbol containing it)"),
        ] = None,
        code: Annotated[str | None, Field(description="a code snippet to compare (instead of path)")] = None,
        limit: Limit = 10,
        page: Page = 1,
    ) -> SearchResult:
        return tool_errors(lambda: do_similar(engine, path, start_line, end_line, code, limit, page))

    @server.tool(description=STATUS_DESCRIPTION, annotations=read_only)
    def index_status() -> IndexStatus:
        return tool_errors(lambda: do_status(engine))

    @server.tool(
        description=REINDEX_DESCRIPTION,
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False
        ),
    )
    def reindex(
        path: Annotated[str | None, Field(description="only this file or folder (default: whole workspace)")] = None,
    ) -> ReindexResult:
        return tool_errors(lambda: engine.reindex(path))

    return server


def _config(args: argparse.Namespace) -> EngineConfig:
    """Engine settings from the command line: the same options (and names) as the other subcommands."""
    from semcode.cli import _config as cli_config

    return cli_config(args)


def main(args: argparse.Namespace) -> int:
    """Entry point of ``semcode mcp [path] [--model M] [--no-index]``; serves until stdin closes."""
    root = Path(getattr(args, "path", None) or ".")
    if not root.is_dir():
        raise SemcodeError(f"not a folder: {root}")
    engine = McpEngine(root, _config(args), index_on_start=not getattr(args, "no_index", False))
    server = build_server(engine)
    log.info("semcode MCP server for %s (index %s)", engine.root, engine.workspace.config.index_path(engine.root))
    try:
        server.run("stdio")
    finally:
        engine.stop()
        engine.wait_stopped(SHUTDOWN_GRACE)
    return 0
