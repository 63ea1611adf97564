"""``semcode mcp`` driven end to end through the ``mcp`` client library over stdio.

Real model, real LanceDB: ``SEMCODE_CACHE_DIR`` points at one temporary directory for the whole session,
so the default model is converted once. Every test works on its own copy of
``tests/fixtures/mcp_workspace`` (its own index), so tests do not see each other's writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client

from engine.search import PREVIEW_CHARS

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "mcp_workspace"
REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS = {"semantic_search", "find_similar", "index_status", "reindex"}


# --------------------------------------------------------------------- fixtures and helpers
@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("semcode-cache")


@pytest.fixture
def env(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("SEMCODE_CACHE_DIR", str(cache_dir))  # for EngineConfig.index_path in the test itself
    # The MCP client starts the server with a minimal environment: pass the source tree under test
    # explicitly, or the server would import whatever semcode is installed in the venv.
    source_tree = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    # The model format too (tests/conftest.py): the test's own index paths must be the server's.
    fmt = os.environ.get("SEMCODE_MODEL_FORMAT", "auto")
    return {"SEMCODE_CACHE_DIR": str(cache_dir), "PYTHONUNBUFFERED": "1", "PYTHONPATH": source_tree,
            "SEMCODE_MODEL_FORMAT": fmt}  # fmt: skip


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A private copy of the fixture workspace (own index): for tests that change files."""
    target = tmp_path / "mcp_workspace"
    shutil.copytree(FIXTURE, target)
    return target


@pytest.fixture(scope="module")
def shared_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One copy whose files never change, indexed once and reused by the read-only tests."""
    target = tmp_path_factory.mktemp("shared") / "mcp_workspace"
    shutil.copytree(FIXTURE, target)
    return target


def line_of(path: Path, text: str) -> int:
    """1-based number of the first line containing ``text``."""
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if text in line:
            return number
    raise AssertionError(f"{text!r} not in {path}")


@contextlib.asynccontextmanager
async def mcp_session(workspace: Path, env: dict[str, str], *extra: str) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "semcode", "-v", "mcp", str(workspace), *extra], env=env, cwd=str(workspace)
    )
    log_path = workspace.parent / "mcp-stderr.log"
    with open(log_path, "a") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            yield session
    assert "Traceback" not in log_path.read_text(), f"the server logged a crash, see {log_path}"


async def call(session: ClientSession, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await session.call_tool(tool, arguments)
    assert not result.is_error, result.content[0].text
    assert result.structured_content is not None
    # The text content is the same data as JSON, for clients that only show text.
    assert json.loads(result.content[0].text) == result.structured_content
    return result.structured_content


async def call_error(session: ClientSession, tool: str, **arguments: Any) -> str:
    result = await session.call_tool(tool, arguments)
    assert result.is_error, f"{tool}({arguments}) did not fail: {result.structured_content}"
    return result.content[0].text


async def wait_ready(session: ClientSession, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status = await call(session, "index_status")
        if status["state"] == "ready" and not status["partial"]:
            return status
        assert status["state"] != "error", status
        assert time.monotonic() < deadline, f"not ready after {timeout}s: {status}"
        await asyncio.sleep(0.3)


async def wait_started(session: ClientSession, timeout: float = 120.0) -> dict[str, Any]:
    """index_status once the model has loaded (a --no-index server then rests in not_indexed)."""
    deadline = time.monotonic() + timeout
    status = await call(session, "index_status")
    while status["state"] == "starting" and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        status = await call(session, "index_status")
    return status


def semcode_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "semcode", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ | env,
        check=False,
    )


def names(results: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(hit["file"], hit["name_path"]) for hit in results]


# --------------------------------------------------------------------- tools, search, similar
async def test_tools_search_and_similar(shared_workspace: Path, env: dict[str, str]) -> None:
    workspace = shared_workspace
    async with mcp_session(workspace, env) as session:
        listed = {tool.name: tool for tool in (await session.list_tools()).tools}
        assert set(listed) == TOOLS
        search_schema = listed["semantic_search"].input_schema
        assert search_schema["required"] == ["query"]
        assert {"query", "limit", "path", "language", "kind", "page"} <= set(search_schema["properties"])
        assert set(listed["find_similar"].input_schema["properties"]) == {
            "path",
            "start_line",
            "end_line",
            "code",
            "limit",
            "page",
        }
        assert "1-BASED" in listed["find_similar"].description
        hit_schema = listed["semantic_search"].output_schema["$defs"]["Hit"]["properties"]
        assert {
            "file",
            "name_path",
            "kind",
            "start_line",
            "end_line",
            "start_line_1",
            "end_line_1",
            "score",
            "why",
            "preview",
        } <= set(hit_schema)
        assert listed["semantic_search"].annotations.read_only_hint is True
        assert listed["reindex"].annotations.read_only_hint is False

        status = await wait_ready(session)
        assert status["files"] == 6 and status["chunks"] >= 10
        assert status["model"] == "all-MiniLM-L6-v2" and status["dimension"] == 384
        assert status["locked_by_other_process"] is False
        assert Path(status["index_path"]).is_relative_to(Path(env["SEMCODE_CACHE_DIR"]))

        # A paraphrase (no shared identifiers) finds the method, with its identity and both line bases.
        found = await call(
            session, "semantic_search", query="retry a failed web request, waiting longer each time", limit=3
        )
        assert found["partial"] is False
        top = found["results"][0]
        assert (top["file"], top["name_path"], top["kind"]) == (
            "src/net/client.py",
            "HttpClient/get_with_retry",
            "method",
        )
        def_line = line_of(workspace / "src/net/client.py", "def get_with_retry")
        assert top["start_line_1"] <= def_line <= top["end_line_1"]
        assert (top["start_line_1"], top["end_line_1"]) == (top["start_line"] + 1, top["end_line"] + 1)
        assert "semantic" in top["why"] and len(top["preview"]) <= PREVIEW_CHARS

        found = await call(
            session,
            "semantic_search",
            query="split the parameters after the question mark in an address into key/value pairs",
        )
        assert names(found["results"])[0] == ("web/query.ts", "parseQueryString")
        found = await call(session, "semantic_search", query="CRC checksum of a byte buffer", language="python")
        assert names(found["results"])[0] == ("src/checksum.py", "crc32")
        assert {hit["language"] for hit in found["results"]} == {"python"}
        found = await call(session, "semantic_search", query="checksum", path="web/")
        assert found["results"] and all(hit["file"].startswith("web/") for hit in found["results"])
        found = await call(session, "semantic_search", query="checksum", path=str(workspace / "web"))
        assert found["results"] and all(hit["file"].startswith("web/") for hit in found["results"])
        found = await call(session, "semantic_search", query="checksum", path="**/*.ts", limit=50)
        assert {hit["file"] for hit in found["results"]} == {"web/crc.ts", "web/query.ts", "web/sorting.ts"}
        found = await call(session, "semantic_search", query="checksum", path=".", limit=50)
        assert len({hit["file"] for hit in found["results"]}) == 6

        # Pages: consecutive, no overlap, next_page until the end.
        first = await call(session, "semantic_search", query="compute something", limit=4)
        assert (first["page"], first["page_size"], first["next_page"]) == (1, 4, 2)
        second = await call(session, "semantic_search", query="compute something", limit=4, page=2)
        assert [h["rank"] for h in first["results"] + second["results"]] == list(range(1, 9))
        assert not set(names(first["results"])) & set(names(second["results"]))
        last = await call(session, "semantic_search", query="compute something", limit=50)
        assert last["next_page"] is None and len(last["results"]) < 50

        # find_similar by location (1-based; the location itself is excluded) and by code.
        crc_line = line_of(workspace / "src/checksum.py", "def crc32")
        similar = await call(session, "find_similar", path="src/checksum.py", start_line=crc_line, limit=3)
        assert ("web/crc.ts", "crc32") in names(similar["results"])
        assert ("src/checksum.py", "crc32") not in names(similar["results"])
        whole = line_of(workspace / "src/checksum.py", "return value ^ 0xFFFFFFFF")
        similar = await call(
            session,
            "find_similar",
            path=str(workspace / "src/checksum.py"),
            start_line=crc_line,
            end_line=whole,
            limit=3,
        )
        assert ("web/crc.ts", "crc32") in names(similar["results"])
        snippet = (
            "def merge_sort(items):\n    if len(items) <= 1:\n        return items\n"
            "    middle = len(items) // 2\n"
            "    left, right = merge_sort(items[:middle]), merge_sort(items[middle:])\n"
            "    return merge(left, right)\n"
        )
        similar = await call(session, "find_similar", code=snippet, limit=2)
        assert names(similar["results"])[0] == ("web/sorting.ts", "Sorter/mergeSort")


async def test_invalid_inputs_are_tool_errors(shared_workspace: Path, env: dict[str, str]) -> None:
    async with mcp_session(shared_workspace, env, "--no-index") as session:
        cases: list[tuple[str, dict[str, Any], str]] = [
            ("semantic_search", {"query": "   "}, "query is empty"),
            ("semantic_search", {"query": "x", "limit": 0}, "'limit' must be an integer between 1 and 50"),
            ("semantic_search", {"query": "x", "limit": -3}, "'limit' must be an integer between 1 and 50"),
            ("semantic_search", {"query": "x", "limit": 10**9}, "'limit' must be an integer between 1 and 50"),
            ("semantic_search", {"query": "x", "limit": "ten"}, "limit"),
            ("semantic_search", {"query": "x", "page": 0}, "page must be 1 or more"),
            ("semantic_search", {"query": "x", "page": 500}, "at most 200 results"),
            ("semantic_search", {"query": "x", "path": "/etc"}, "outside the workspace"),
            ("semantic_search", {"query": "x", "path": "../../"}, "outside the workspace"),
            ("semantic_search", {"query": "x", "path": "no/such/dir"}, "does not exist"),
            ("semantic_search", {"query": "x", "path": "../**/*.py"}, "outside the workspace"),
            ("semantic_search", {"query": "x", "path": "/elsewhere/**/*.py"}, "outside the workspace"),
            ("semantic_search", {}, "query"),
            ("find_similar", {}, "give either code"),
            ("find_similar", {"path": "src/missing.py", "start_line": 1}, "does not exist"),
            ("find_similar", {"path": "/etc/passwd", "start_line": 1}, "outside the workspace"),
            ("find_similar", {"path": "src/checksum.py"}, "start_line is required"),
            ("find_similar", {"path": "src/checksum.py", "start_line": 0}, "1-based"),
            ("find_similar", {"path": "src/checksum.py", "start_line": 5, "end_line": 2}, "before start_line"),
            ("find_similar", {"path": "src/checksum.py", "start_line": 9999}, "past the end of the file"),
            ("find_similar", {"path": "src", "start_line": 1}, "is not a file"),
            ("find_similar", {"code": "x = 1", "path": "src/checksum.py"}, "not both"),
            ("reindex", {"path": "/tmp"}, "outside the workspace"),
            ("reindex", {"path": "nothing/here.py"}, "does not exist"),
            ("no_such_tool", {}, "no_such_tool"),
        ]
        for tool, arguments, message in cases:
            text = await call_error(session, tool, **arguments)
            assert message in text, (tool, arguments, text)
        # The server survived all of that.
        status = await call(session, "index_status")
        assert status["state"] in {"starting", "ready", "not_indexed"}


async def test_reindex_workspace_file_and_folder(workspace: Path, env: dict[str, str]) -> None:
    async with mcp_session(workspace, env, "--no-index") as session:
        status = await wait_started(session)
        assert (status["state"], status["files"], status["chunks"]) == ("not_indexed", 0, 0)
        empty = await call(session, "semantic_search", query="checksum")
        assert empty["results"] == [] and "reindex" in empty["note"]

        counts = await call(session, "reindex")
        assert (counts["scope"], counts["files_indexed"], counts["files"]) == (".", 6, 6)
        assert counts["chunks"] == (await call(session, "index_status"))["chunks"] > 0

        (workspace / "src/dates.py").write_text(
            "def is_leap_year(year: int) -> bool:\n"
            '    """Whether February has 29 days in this year of the Gregorian calendar."""\n'
            "    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)\n"
        )
        counts = await call(session, "reindex", path="src/dates.py")
        assert (counts["scope"], counts["files_indexed"], counts["files"]) == ("src/dates.py", 1, 7)
        found = await call(session, "semantic_search", query="does february have an extra day", limit=1)
        assert names(found["results"]) == [("src/dates.py", "is_leap_year")]
        assert found["results"][0]["start_line_1"] == 1

        (workspace / "src/dates.py").unlink()
        counts = await call(session, "reindex", path=str(workspace / "src"))
        assert (counts["scope"], counts["files_deleted"], counts["files"]) == ("src", 1, 6)
        found = await call(session, "semantic_search", query="does february have an extra day", limit=3)
        assert "src/dates.py" not in {hit["file"] for hit in found["results"]}


async def test_reindex_sends_progress_and_status_reports_the_tiers(workspace: Path, env: dict[str, str]) -> None:
    async with mcp_session(workspace, env, "--no-index") as session:
        status = await wait_started(session)
        assert (status["lexical_ready"], status["chunks_embedded"], status["chunks_pending"]) == (False, 0, 0)

        received: list[tuple[float, float | None, str | None]] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            received.append((progress, total, message))

        result = await session.call_tool("reindex", {}, progress_callback=on_progress)
        assert not result.is_error, result.content[0].text
        assert received, "no notifications/progress during reindex"
        values = [value for value, _, _ in received]
        assert values == sorted(set(values)) and values[-1] == 100  # only ever growing, up to done
        assert {total for _, total, _ in received} == {100} and all(message for _, _, message in received)

        status = await call(session, "index_status")
        assert status["state"] == "ready" and status["lexical_ready"] and not status["partial"]
        assert (status["chunks_embedded"], status["chunks_pending"], status["phase"]) == (status["chunks"], 0, None)

        # Without a progress token the call works the same, with no notifications.
        before = len(received)
        counts = await call(session, "reindex", path="src")
        assert counts["scope"] == "src" and len(received) == before


# --------------------------------------------------------------------- one writer at a time
def _index_path(workspace: Path) -> Path:
    """The folder of this workspace's index with the default model (one folder per workspace and model)."""
    from engine.workspace import Workspace

    return Workspace(workspace).index_path


@contextlib.contextmanager
def hold_write_lock(workspace: Path) -> Iterator[None]:
    """Play another semcode process: hold the index's write lock like ChunkStore.writer does."""
    lock_path = _index_path(workspace) / "write.lock"
    with open(lock_path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


async def test_locked_index_is_read_only(shared_workspace: Path, env: dict[str, str]) -> None:
    workspace = shared_workspace
    if not (_index_path(workspace) / "write.lock").exists():  # run alone: index it first
        indexed = semcode_cli("index", str(workspace), env=env)
        assert indexed.returncode == 0, indexed.stderr
    with contextlib.ExitStack() as other_writer:
        other_writer.enter_context(hold_write_lock(workspace))  # held before the server starts
        async with mcp_session(workspace, env) as session:
            status = await call(session, "index_status")
            deadline = time.monotonic() + 120
            while status["state"] != "waiting_for_lock":
                assert status["state"] in {"starting", "indexing"} and time.monotonic() < deadline, status
                await asyncio.sleep(0.2)
                status = await call(session, "index_status")
            assert status["locked_by_other_process"] is True and status["partial"] is True, status
            assert status["files"] == 6, status  # the committed index is readable
            message = await call_error(session, "reindex")
            assert "another semcode process" in message and "will not write" in message
            found = await call(session, "semantic_search", query="merge sort", limit=1)
            assert found["partial"] is True and "another semcode process" in found["note"]
            assert names(found["results"]) == [("web/sorting.ts", "Sorter/mergeSort")]

            other_writer.close()  # the other process is done: the server indexes on its next retry
            status = await wait_ready(session, timeout=30)
            assert status["locked_by_other_process"] is False, status
            counts = await call(session, "reindex")
            assert counts["files_unchanged"] == 6, counts


async def test_reindex_under_a_foreign_lock_names_the_other_process(workspace: Path, env: dict[str, str]) -> None:
    """Called at once, while the model may still be loading: the answer is about the lock, never
    "this server is already indexing" (this server is not writing, the other process is)."""
    _index_path(workspace).mkdir(parents=True, exist_ok=True)
    with hold_write_lock(workspace):
        async with mcp_session(workspace, env) as session:
            for _ in range(3):
                message = await call_error(session, "reindex")
                assert "another semcode process is writing the index" in message, message
                assert "already indexing" not in message
            status = await call(session, "index_status")
            assert status["locked_by_other_process"] is True and status["partial"] is True, status


async def test_a_bad_model_is_reported_by_index_status(workspace: Path, env: dict[str, str]) -> None:
    async with mcp_session(workspace, env, "--model", str(workspace / "missing.gguf")) as session:
        deadline = time.monotonic() + 30
        status = await call(session, "index_status")
        while status["state"] == "starting" and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            status = await call(session, "index_status")
        assert status["state"] == "error" and "missing.gguf" in status["last_error"], status
        message = await call_error(session, "semantic_search", query="merge sort")
        assert "missing.gguf" in message


class RawLanguageClient:
    """Just enough LSP over stdio to start ``semcode serve`` and watch its indexing progress."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.progress: list[dict[str, Any]] = []
        self._next_id = 0
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._reader = asyncio.ensure_future(self._read())

    @classmethod
    async def start(cls, env: dict[str, str], stderr: Any) -> RawLanguageClient:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "semcode",
            "serve",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            env=os.environ | env,
        )
        return cls(process)

    def _send(self, message: dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        assert self.process.stdin is not None
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    async def request(self, method: str, params: Any = None, timeout: float = 60.0) -> Any:
        self._next_id += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[self._next_id] = future
        self._send({"id": self._next_id, "method": method, "params": params})
        return await asyncio.wait_for(future, timeout)

    def notify(self, method: str, params: Any = None) -> None:
        self._send({"method": method, "params": params})

    async def _read(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        while True:
            header = await stdout.readuntil(b"\r\n\r\n")
            length = int(header.split(b"Content-Length:")[1].split(b"\r\n")[0])
            message = json.loads(await stdout.readexactly(length))
            if "method" in message and "id" in message:  # a request from the server
                result = (
                    [{}] * len(message["params"]["items"]) if message["method"] == "workspace/configuration" else None
                )
                self._send({"id": message["id"], "result": result})
            elif "method" in message:
                if message["method"] == "$/progress":
                    self.progress.append(message["params"]["value"])
            elif message.get("id") in self._pending:
                future = self._pending.pop(message["id"])
                if "error" in message:
                    future.set_exception(RuntimeError(message["error"]))
                else:
                    future.set_result(message.get("result"))

    def kinds(self) -> list[str]:
        return [value.get("kind", "") for value in self.progress]

    async def wait_for(self, kind: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while kind not in self.kinds():
            assert time.monotonic() < deadline, f"no {kind} progress after {timeout}s: {self.progress}"
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await self.request("shutdown", timeout=20)
            self.notify("exit")
        try:
            await asyncio.wait_for(self.process.wait(), 20)
        except asyncio.TimeoutError:
            self.process.kill()
        self._reader.cancel()


GENERATED_FILES = 30


def add_generated_files(workspace: Path, count: int) -> None:
    """Enough extra files that the language server's first index takes a few seconds."""
    folder = workspace / "generated"
    folder.mkdir()
    topics = ["invoice", "sensor", "playlist", "warehouse", "ticket", "recipe", "satellite", "garden"]
    for n in range(count):
        topic = topics[n % len(topics)]
        (folder / f"{topic}_{n}.py").write_text(
            f"def total_{topic}_{n}(items: list[float]) -> float:\n"
            f'    """Sum the {topic} amounts of batch {n}, skipping negative values."""\n'
            f"    return sum(x for x in items if x >= 0) * {n + 1}\n\n\n"
            f"class {topic.title()}Store{n}:\n"
            f"    def load_{topic}(self, key: str) -> dict:\n"
            f'        return {{"key": key, "topic": "{topic}", "batch": {n}}}\n'
        )


async def test_concurrent_with_language_server(workspace: Path, env: dict[str, str]) -> None:
    add_generated_files(workspace, GENERATED_FILES)
    uri = workspace.as_uri()
    with open(workspace.parent / "lsp-stderr.log", "w") as lsp_log:
        lsp = await RawLanguageClient.start(env, lsp_log)
        try:
            await lsp.request(
                "initialize",
                {
                    "processId": os.getpid(),
                    "rootUri": uri,
                    "workspaceFolders": [{"uri": uri, "name": "ws"}],
                    "capabilities": {"window": {"workDoneProgress": True}},
                },
            )
            lsp.notify("initialized", {})
            await lsp.wait_for("begin", timeout=120)
            async with mcp_session(workspace, env) as session:
                polls = 0
                while "end" not in lsp.kinds():  # the language server is still indexing
                    status = await call(session, "index_status")
                    if status["locked_by_other_process"] or status["state"] in {"indexing", "waiting_for_lock"}:
                        assert status["partial"] is True, status
                    if polls % 4 == 0:  # searching competes with the indexer for the CPU: not too often
                        found = await call(session, "semantic_search", query="exponential backoff retry", limit=2)
                        assert found["partial"] or found["results"], found
                    polls += 1
                    await asyncio.sleep(0.5)
                # Both processes tried to write; only one wrote at a time. The MCP server retries
                # after the language server releases the lock, then finds nothing left to do.
                status = await wait_ready(session, timeout=60)
                assert status["files"] == 6 + GENERATED_FILES and status["locked_by_other_process"] is False
                found = await call(session, "semantic_search", query="retry a failed web request with backoff", limit=3)
                assert names(found["results"])[0] == ("src/net/client.py", "HttpClient/get_with_retry")
                assert found["partial"] is False
                found = await call(session, "semantic_search", query="sum the sensor amounts of batch 9", limit=1)
                assert names(found["results"]) == [("generated/sensor_9.py", "total_sensor_9")]
                lsp_status = await lsp.request("semcode/status", {})
                assert (lsp_status["files"], lsp_status["chunks"]) == (status["files"], status["chunks"])
        finally:
            await lsp.stop()
    assert "end" in lsp.kinds()
    checked = semcode_cli("check", str(workspace), "--json", env=env)
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout)["ok"] is True
    assert json.loads(checked.stdout)["rows_checked"] == status["chunks"]
