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

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import anyio
from mcp.server.mcpserver import Context
from pydantic import BaseModel, Field

from engine.config import EngineConfig
from engine.errors import ConfigError, IndexLockedError, SemcodeError
from engine.host import HostBusyError, IndexHost
from engine.records import IndexProgress, IndexStats, SearchHit
from engine.results import check_limit, hit_record, stats_record
from engine.search import MAX_LIMIT, PREVIEW_CHARS, SearchFilters
from engine.workspace import Workspace

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_PAGE_SIZE = 50
MAX_QUERY_CHARS = 2_000
MAX_CODE_CHARS = 20_000
SHUTDOWN_GRACE = 10.0  # seconds to let a cancelled index finish its current write on exit
PROGRESS_INTERVAL = 0.25  # seconds between progress notifications during reindex


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
    partial: bool = Field(description="true = searches may miss files, or some chunks answer by keywords only")
    lexical_ready: bool = Field(
        description="every file is searchable by keywords and symbol names (the first indexing phase is done)"
    )
    chunks_embedded: int | None = Field(description="chunks with a semantic vector (searchable by meaning)")
    chunks_pending: int | None = Field(
        description="chunks still waiting for their semantic vector (searchable by keywords meanwhile)"
    )
    phase: str | None = Field(
        default=None, description="while indexing: 'lexical' (reading files) or 'dense' (embedding chunks)"
    )
    progress: dict[str, int] | None = Field(
        default=None, description="{done, total} while indexing: files in the lexical phase, chunks in the dense one"
    )
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


# --------------------------------------------------------------------- the hosted workspace
def _host_errors(exc: SemcodeError) -> ToolInputError:
    """The host's refusals, worded for an agent."""
    if isinstance(exc, IndexLockedError):
        return ToolInputError(
            "another semcode process is writing the index of this workspace (e.g. `semcode serve` indexing), "
            "so this server will not write now; its committed results are searchable meanwhile. "
            "Try reindex again when index_status shows locked_by_other_process=false."
        )
    if isinstance(exc, HostBusyError):
        return ToolInputError("this server is already indexing the workspace; call index_status to follow it")
    return ToolInputError(str(exc))


def relative_path(host: IndexHost, path: str, *, must_exist: bool = True) -> str:
    """A workspace-relative POSIX path for an absolute or relative path inside the workspace."""
    if not path.strip() or "\0" in path:
        raise ToolInputError("path is empty")
    try:
        rel = host.workspace.relative_path(path.strip())
    except ConfigError:
        raise ToolInputError(
            f"{path} is outside the workspace {host.root}; give a path inside it, "
            "relative to the workspace root or absolute"
        ) from None
    if must_exist and not (host.root / rel).exists():
        raise ToolInputError(f"{path} does not exist in the workspace {host.root}")
    return rel


def do_reindex(
    host: IndexHost, scope: str | None, progress: Callable[[IndexProgress], None] | None = None
) -> ReindexResult:
    rel = relative_path(host, scope, must_exist=False) if scope else "."
    try:
        if rel == ".":
            stats = host.index(progress=progress)
        else:
            ws = host.wait_open()
            stats = _index_scope(host, ws, rel, progress)
    except (IndexLockedError, HostBusyError) as exc:
        raise _host_errors(exc) from exc
    ws = host.workspace
    return ReindexResult(scope=rel, **_reindex_counts(stats), files=ws.count_files(), chunks=ws.count_chunks())


def _reindex_counts(stats: IndexStats) -> dict[str, Any]:
    record = stats_record(stats)
    counts = {k: record[k] for k in ("files_seen", "files_indexed", "files_unchanged", "files_deleted")}
    return counts | {
        "files_skipped": record["files_skipped"],
        "chunks_embedded": record["chunks_embedded"],
        "chunks_from_cache": record["chunks_cached"],
        "seconds": record["seconds"],
    }


def _index_scope(
    host: IndexHost, ws: Workspace, rel: str, progress: Callable[[IndexProgress], None] | None = None
) -> IndexStats:
    target = host.root / rel
    if target.is_dir():
        paths = _paths_below(ws, rel)
        if not paths:
            raise ToolInputError(f"no indexable files in {rel} (ignored, binary or empty)")
    elif not target.exists() and rel not in ws.indexed_paths():
        raise ToolInputError(f"{rel} does not exist in the workspace and is not in the index")
    else:
        paths = [rel]
    ws.ensure_writable()
    if host.writing():
        raise HostBusyError("this process is already indexing the workspace")
    report = progress or (lambda _p: None)
    report(IndexProgress(0, len(paths), message=f"0/{len(paths)} files"))
    stats = host.update_files(paths, wait_for_lock=False)
    report(IndexProgress(len(paths), len(paths), message=f"{len(paths)}/{len(paths)} files"))
    return stats


class ProgressRelay:
    """Index progress from the indexing thread to MCP ``notifications/progress`` on the event loop.

    The thread only records the latest report; ``relay`` sends it at most every ``PROGRESS_INTERVAL``.
    One scale for both phases, so the value only grows (as MCP requires): reading files is 0-50,
    embedding chunks 50-100 (the number of chunks is known only once the files are read).
    """

    def __init__(self) -> None:
        self.latest: IndexProgress | None = None
        self.sent = -1.0  # the last value sent

    def __call__(self, progress: IndexProgress) -> None:
        self.latest = progress

    def value(self, progress: IndexProgress) -> float:
        share = progress.percentage / 2
        return round(share + (50.0 if progress.stage == "vectors" else 0.0), 1)

    async def relay(self, send: Callable[[float, str], Awaitable[None]], done: anyio.Event) -> None:
        while True:
            with anyio.move_on_after(PROGRESS_INTERVAL):
                await done.wait()
            latest = self.latest
            if latest is not None and self.value(latest) > self.sent:
                self.sent = self.value(latest)
                await send(self.sent, latest.message or f"{latest.done_files}/{latest.total_files}")
            if done.is_set():
                return


async def reindex_with_progress(
    host: IndexHost, scope: str | None, send: Callable[[float, str], Awaitable[None]]
) -> ReindexResult:
    """``do_reindex`` in a worker thread, its progress sent meanwhile (``send(value of 100, message)``)."""
    relay, done = ProgressRelay(), anyio.Event()
    outcome: list[ReindexResult | SemcodeError] = []

    def run() -> None:
        try:
            outcome.append(do_reindex(host, scope, relay))
        except SemcodeError as exc:  # raised after the task group, not wrapped in an exception group
            outcome.append(exc)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(relay.relay, send, done)
        try:
            await anyio.to_thread.run_sync(run)
        finally:
            done.set()
    if isinstance(outcome[0], SemcodeError):
        raise outcome[0]
    if relay.sent < 100:
        await send(100.0, "done")
    return outcome[0]


def _paths_below(ws: Workspace, rel_dir: str) -> list[str]:
    from engine.files import walk

    prefix = rel_dir.rstrip("/") + "/"
    on_disk = [f.path for f in walk(ws.root, ws.config) if f.path.startswith(prefix)]
    indexed = [p for p in ws.indexed_paths() if p.startswith(prefix)]
    return list(dict.fromkeys(on_disk + indexed))


# --------------------------------------------------------------------- tool logic (plain functions)
def _check_page(limit: int, page: int) -> None:
    try:
        check_limit(limit, maximum=MAX_PAGE_SIZE)
    except ConfigError as exc:
        raise ToolInputError(f"{exc} (results per page)") from None
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


def _to_hit(hit: SearchHit, root: Path, rank: int) -> Hit:
    record = hit_record(hit, root)
    return Hit(
        rank=rank,
        file=record["path"],
        start_line_1=record["start_line"] + 1,
        end_line_1=record["end_line"] + 1,
        **{k: record[k] for k in ("name_path", "kind", "language", "start_line", "end_line", "preview")},
        score=round(record["score"], 4),
        why=record["why"] or "semantic similarity",
    )


def _page(host: IndexHost, hits: list[SearchHit], limit: int, page: int) -> SearchResult:
    start = (page - 1) * limit
    chosen = hits[start : start + limit]
    has_more = len(hits) > start + limit and start + limit < MAX_LIMIT
    partial, note = _partial_note(host)
    if not hits and note is None:
        note = "no matches" if host.workspace.count_chunks() else "the index is empty: call reindex"
    results = [_to_hit(hit, host.root, start + i + 1) for i, hit in enumerate(chosen)]
    return SearchResult(
        workspace_root=str(host.root),
        results=results,
        page=page,
        page_size=limit,
        next_page=page + 1 if has_more else None,
        partial=partial,
        note=note,
    )


def _partial_note(host: IndexHost) -> tuple[bool, str | None]:
    partial, note = host.partial_note()
    if host.state == "not_indexed" and note:
        note += ": call reindex"
    return partial, note


def _filters(host: IndexHost, path: str | None, language: str | None, kind: str | None) -> SearchFilters:
    return SearchFilters(
        path=_path_glob(host, path or ""),
        language=(language or "").strip().lower() or None,
        kind=(kind or "").strip().lower() or None,
    )


def _path_glob(host: IndexHost, path: str) -> str | None:
    """The engine's path filter for a file, a folder or a glob, relative to the workspace root."""
    text = path.strip()
    if not text:
        return None
    if not any(c in text for c in "*?["):  # a plain file or folder: it must exist
        rel = relative_path(host, text)
        if rel == ".":
            return None
        return rel + "/" if (host.root / rel).is_dir() else rel
    if Path(text).is_absolute():
        try:
            text = Path(text).relative_to(host.root).as_posix()
        except ValueError:
            raise ToolInputError(
                f"{path} is outside the workspace {host.root}; give a glob relative to the "
                "workspace root such as 'src/**/*.py'"
            ) from None
    if ".." in Path(text).parts:
        raise ToolInputError(f"{path} is outside the workspace {host.root}: '..' is not allowed in a glob")
    return text.removeprefix("./")


def do_search(
    host: IndexHost, query: str, limit: int, page: int, path: str | None, language: str | None, kind: str | None
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
    filters = _filters(host, path, language, kind)
    ws = _wait_open(host)
    hits = ws.search(query, limit=_fetch_size(limit, page), filters=filters)
    return _page(host, hits, limit, page)


def do_similar(
    host: IndexHost,
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
        ws = _wait_open(host)
        return _page(host, ws.similar_code(code, limit=fetch), limit, page)
    if path is None:
        raise ToolInputError("give either code (a snippet) or path with start_line (and optionally end_line)")
    rel = relative_path(host, path)
    start, end = _line_range(host.workspace, rel, start_line, end_line)
    ws = _wait_open(host)
    return _page(host, ws.find_similar(rel, start, end, limit=fetch), limit, page)


def _line_range(ws: Workspace, rel: str, start_line: int | None, end_line: int | None) -> tuple[int, int]:
    """Validate 1-based inclusive lines against the file; return 0-based inclusive lines."""
    if not (ws.root / rel).is_file():
        raise ToolInputError(f"{ws.root / rel} is not a file")
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
        count = len(ws.read_text(rel).splitlines())
    except SemcodeError as exc:
        raise ToolInputError(str(exc)) from exc
    if start_line > count:
        raise ToolInputError(f"start_line {start_line} is past the end of the file ({count} lines)")
    return start_line - 1, min(end_line, count) - 1


def _wait_open(host: IndexHost) -> Workspace:
    try:
        return host.wait_open()
    except SemcodeError as exc:
        raise ToolInputError(str(exc)) from exc


def do_status(host: IndexHost) -> IndexStatus:
    record = host.status()
    partial, note = _partial_note(host)
    chunks, pending = record["chunks"], record["pending_chunks"]
    progress = host.progress
    return IndexStatus(
        workspace_root=record["root"],
        **{k: record[k] for k in ("state", "files", "chunks", "model", "dimension", "locked_by_other_process")},
        index_path=record["index_path"] if host.is_open else None,
        partial=partial,
        lexical_ready=bool(record["lexical_ready"]),
        chunks_embedded=None if chunks is None or pending is None else chunks - pending,
        chunks_pending=pending,
        phase=None if progress is None else ("dense" if progress.stage == "vectors" else "lexical"),
        progress=record["progress"],
        last_error=record["last_error"],
        note=note,
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
indexing progress, and partial (true = searches may miss files for now). Indexing has two tiers:
lexical_ready=true once every file is searchable by keywords and symbol names (seconds); chunks_embedded /
chunks_pending count the chunks that are / are not yet searchable by meaning (the dense tier fills in after)."""

REINDEX_DESCRIPTION = """\
Bring the semantic index up to date after files changed: re-embeds only new or changed code (cheap when
little changed). path (optional, workspace-relative or absolute) limits it to one file or folder; omit it for
the whole workspace. Returns counts of files indexed/unchanged/deleted and chunks embedded. Fails with a
clear message when another semcode process is writing the index (search still works then). Sends
notifications/progress (0-50 reading files, 50-100 embedding chunks) when the call carries a progress token."""

INSTRUCTIONS = """\
semcode: offline semantic code search over one workspace. Use semantic_search to find code by what it does,
find_similar to find code like a given location or snippet, index_status to check the index, reindex after
editing files. Paths are workspace-relative; lines come 0-based (start_line) and 1-based (start_line_1)."""

Limit = Annotated[int, Field(description=f"results per page, 1..{MAX_PAGE_SIZE}")]
Page = Annotated[int, Field(description="1-based page number; use next_page from the previous answer")]


def build_server(host: IndexHost, *, index_on_start: bool = True) -> Any:
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError
    from mcp.types import ToolAnnotations

    @contextlib.asynccontextmanager
    async def lifespan(_server: Any) -> AsyncIterator[dict[str, Any]]:
        # Entered once the stdio transport owns fd 1, so nothing the model loader prints can reach the wire.
        host.start(index=index_on_start)
        try:
            yield {}
        finally:
            host.seal()  # the next start skips its check of every chunk row (engine/seal.py)
            host.close()  # cancels indexing at the next file; what is committed stays consistent

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
        return tool_errors(lambda: do_search(host, query, limit, page, path, language, kind))

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
        return tool_errors(lambda: do_similar(host, path, start_line, end_line, code, limit, page))

    @server.tool(description=STATUS_DESCRIPTION, annotations=read_only)
    def index_status() -> IndexStatus:
        return tool_errors(lambda: do_status(host))

    @server.tool(
        description=REINDEX_DESCRIPTION,
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False
        ),
    )
    async def reindex(
        ctx: Context,
        path: Annotated[str | None, Field(description="only this file or folder (default: whole workspace)")] = None,
    ) -> ReindexResult:
        # A client that sent a progress token gets notifications/progress (report_progress is a no-op otherwise).
        try:
            return await reindex_with_progress(
                host, path, lambda value, message: ctx.report_progress(value, 100, message)
            )
        except SemcodeError as exc:
            raise ToolError(str(exc)) from exc

    return server


def main(root: Path, config: EngineConfig, *, index_on_start: bool = True) -> int:
    """Serve ``semcode mcp`` for ``root`` until stdin closes (the CLI parses the command line)."""
    if not root.is_dir():
        raise SemcodeError(f"not a folder: {root}")
    from engine.lance_io import prepare_interactive_writes
    from engine.shared_index import open_workspace  # on a team snapshot when sharedIndex is set

    prepare_interactive_writes()  # before LanceDB runs anything: writes commit without waiting on the disk
    host = IndexHost(open_workspace(root, config))
    server = build_server(host, index_on_start=index_on_start)
    log.info("semcode MCP server for %s (index %s)", host.root, host.status()["index_path"])
    try:
        server.run("stdio")
    finally:
        host.close()
        host.join(SHUTDOWN_GRACE)
    return 0
