"""semcode driven by Serena's solidlsp (PyPI ``serena-agent``), as Serena itself would drive it.

Run with the Serena venv, not the project's: ``scripts/serena-test.sh``. The server command comes from
``$SEMCODE_SERVER_CMD`` (default: ``<repo>/.venv/bin/python -m lsp_server``). The server is started twice
on ``fixture/``: once with ``references.similarCode`` on, once off (the second start reuses the model and
the index that the first one built in the temporary ``SEMCODE_CACHE_DIR``).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("solidlsp", reason="needs serena-agent (scripts/serena-test.sh installs it in its own venv)")

from semcode_solidlsp import KEY, SemcodeLanguageServer, register, semcode_ls_id
from solidlsp.ls import SolidLanguageServer
from solidlsp.ls_config import LanguageServerConfig, LanguageServerRegistry
from solidlsp.ls_exceptions import SolidLSPException
from solidlsp.settings import SolidLSPSettings

pytestmark = pytest.mark.serena

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
FIXTURE = HERE / "fixture"
SYMBOL_KIND = {"class": 5, "method": 6, "constructor": 9, "function": 12}
SERVER_LOGS: list[Path] = []  # read by conftest.py to attach the server log to a failure


def server_command(log_file: Path) -> list[str]:
    raw = os.environ.get("SEMCODE_SERVER_CMD")
    command = shlex.split(raw) if raw else [str(REPO / ".venv" / "bin" / "python"), "-m", "lsp_server"]
    if not Path(command[0]).is_absolute() and (REPO / command[0]).exists():
        command[0] = str(REPO / command[0])  # relative to the repository root
    return [*command, "--log-file", str(log_file), "--log-level", "debug"]


def line_of(relative_path: str, needle: str) -> int:
    """0-based line of the first line of a fixture file containing ``needle``."""
    for number, line in enumerate((FIXTURE / relative_path).read_text().splitlines()):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {relative_path}")


def rel(uri_or_location: Any) -> str:
    uri = uri_or_location["uri"] if isinstance(uri_or_location, dict) else uri_or_location
    return Path(uri.removeprefix("file://")).relative_to(FIXTURE).as_posix()


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("semcode-cache")


@pytest.fixture(scope="module", params=[True, False], ids=["similarCode-on", "similarCode-off"])
def ls(
    request: pytest.FixtureRequest, cache_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SemcodeLanguageServer]:
    similar: bool = request.param
    tmp = tmp_path_factory.mktemp("serena")
    log_file = tmp / "semcode-server.log"
    SERVER_LOGS.append(log_file)
    register()
    ls_id = LanguageServerRegistry.get_instance().resolve(KEY)
    settings = SolidLSPSettings(
        solidlsp_dir=str(tmp / "solidlsp"),
        project_data_path=str(tmp / "project-data"),
        ls_specific_settings={
            KEY: {
                "command": server_command(log_file),
                "env": {"SEMCODE_CACHE_DIR": str(cache_dir)},
                "initializationOptions": {"references": {"similarCode": similar}},
            }
        },
    )
    config = LanguageServerConfig(ls_id=ls_id, trace_lsp_communication=True)
    started = time.monotonic()
    server = SolidLanguageServer.create(config, str(FIXTURE), timeout=60, solidlsp_settings=settings)
    assert isinstance(server, SemcodeLanguageServer)
    server.start()
    try:
        server.startup_status = server.wait_until_indexed(timeout=120)
        server.startup_seconds = time.monotonic() - started
        server.similar = similar
        print(f"\nsemcode (similarCode={similar}) started and indexed in {server.startup_seconds:.1f}s; log {log_file}")
        yield server
    finally:
        server.stop()


# ---------------------------------------------------------------------------- registration and startup
def test_registration() -> None:
    register()
    register()  # idempotent
    ls_id = LanguageServerRegistry.get_instance().resolve(KEY)
    assert ls_id.get_ls_class() is SemcodeLanguageServer
    assert ls_id.get_source_fn_matcher().is_relevant_filename("pkg/cache.py")
    assert ls_id.get_source_fn_matcher().is_relevant_filename("web/lru.ts")
    assert not ls_id.get_source_fn_matcher().is_relevant_filename("logo.png")
    assert semcode_ls_id().get_priority() == 0  # not auto-detected by Serena


def test_registration_by_entry_point(tmp_path: Path) -> None:
    """A package declaring an entry point in ``solidlsp.language_server_registration`` is picked up."""
    dist = tmp_path / "semcode_serena-0.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: semcode-serena\nVersion: 0.1.0\n")
    (dist / "entry_points.txt").write_text(
        "[solidlsp.language_server_registration]\nsemcode = semcode_solidlsp:register\n"
    )
    code = (
        "from solidlsp.ls_config import LanguageServerRegistry as R; "
        "print(R.get_instance().resolve('semcode').get_ls_class().__name__)"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(HERE)])}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "SemcodeLanguageServer", out.stdout


def test_indexing_finished(ls: SemcodeLanguageServer) -> None:
    status = ls.startup_status
    assert status["state"] == "ready", status
    assert status["lastError"] is None, status
    assert status["files"] == 6, status  # 3 .py + 3 .ts
    assert status["chunks"] >= 10, status
    assert status["workspaceFolders"] == [str(FIXTURE)], status
    # work-done progress: begin "Indexing workspace <name>", then an end
    kinds = [value.get("kind") for _, value in ls.progress_log]
    assert "begin" in kinds and kinds[-1] == "end", ls.progress_log
    begin = next(value for _, value in ls.progress_log if value.get("kind") == "begin")
    assert begin["title"] == "Indexing workspace fixture", begin
    # settings were accepted (an invalid one is reported with an Error showMessage)
    assert not [m for m in ls.messages if m.get("type") == 1], ls.messages


def test_settings_from_workspace_configuration(ls: SemcodeLanguageServer) -> None:
    # we advertise workspace.configuration, so the server asks for the "semcode" section
    sections = [item.get("section") for params in ls.configuration_requests for item in params["items"]]
    assert KEY in sections, ls.configuration_requests


# ---------------------------------------------------------------------------- document symbols
def test_document_symbols_python(ls: SemcodeLanguageServer) -> None:
    symbols = ls.request_document_symbols("cache.py")
    roots = {s["name"]: s for s in symbols.root_symbols}
    assert set(roots) == {"Cache", "make_cache"}, list(roots)

    cache = roots["Cache"]
    assert cache["kind"] == SYMBOL_KIND["class"]
    assert cache["range"]["start"]["line"] == line_of("cache.py", "class Cache:")
    assert cache["range"]["end"]["line"] >= line_of("cache.py", "return key")
    assert cache["selectionRange"]["start"] == {"line": line_of("cache.py", "class Cache:"), "character": 6}
    assert cache["parent"] is None

    methods = {c["name"]: c for c in cache["children"]}
    assert {"__init__", "get", "put", "evict"} <= set(methods), list(methods)
    for name in ("get", "put", "evict"):
        method = methods[name]
        assert method["kind"] == SYMBOL_KIND["method"], (name, method["kind"])
        def_line = line_of("cache.py", f"def {name}(")
        assert method["range"]["start"]["line"] == def_line, name
        assert method["selectionRange"]["start"] == {"line": def_line, "character": 8}, name
        assert method["parent"]["name"] == "Cache"
    assert methods["__init__"]["kind"] in (SYMBOL_KIND["method"], SYMBOL_KIND["constructor"])
    evict = methods["evict"]
    assert evict["range"]["end"]["line"] == line_of("cache.py", "return key")
    assert "popitem" in evict["body"].get_text()  # Serena reads symbol bodies from these ranges

    make_cache = roots["make_cache"]
    assert make_cache["kind"] == SYMBOL_KIND["function"]
    assert make_cache["range"]["start"]["line"] == line_of("cache.py", "def make_cache(")


def test_document_symbols_typescript(ls: SemcodeLanguageServer) -> None:
    roots = {s["name"]: s for s in ls.request_document_symbols("web/lru.ts").root_symbols}
    assert "LruCache" in roots, list(roots)
    lru = roots["LruCache"]
    assert lru["kind"] == SYMBOL_KIND["class"]
    assert lru["range"]["start"]["line"] == line_of("web/lru.ts", "export class LruCache")
    methods = {c["name"]: c for c in lru["children"]}
    assert {"get", "put", "evict"} <= set(methods), list(methods)
    assert methods["evict"]["range"]["start"]["line"] == line_of("web/lru.ts", "evict(): string")

    functions = {s["name"]: s for s in ls.request_document_symbols("web/query.ts").root_symbols}
    assert {"parseQueryString", "firstParam"} <= set(functions), list(functions)
    assert functions["parseQueryString"]["kind"] == SYMBOL_KIND["function"]


def test_symbol_overview_of_directory(ls: SemcodeLanguageServer) -> None:
    # Serena's get_symbols_overview: document symbols of every matching file under a directory
    overview = ls.request_dir_overview("web")
    names = {path: {s["name"] for s in symbols} for path, symbols in overview.items()}
    assert names == {
        "web/format.ts": {"formatDuration"},
        "web/lru.ts": {"LruCache"},
        "web/query.ts": {"parseQueryString", "firstParam"},
    }, names


# ---------------------------------------------------------------------------- workspace symbols
def test_workspace_symbol_finds_class(ls: SemcodeLanguageServer) -> None:
    symbols = ls.request_workspace_symbol("Cache")
    assert symbols, symbols
    found = [(s["name"], s["kind"], rel(s["location"])) for s in symbols]
    assert ("Cache", SYMBOL_KIND["class"], "cache.py") in found, found
    cache = next(s for s in symbols if s["name"] == "Cache" and rel(s["location"]) == "cache.py")
    # LSP: the location reveals the symbol, so it starts at the class line, not at the module docstring
    assert cache["location"]["range"]["start"]["line"] == line_of("cache.py", "class Cache:"), cache["location"]
    # the exact name ranks above anything merely similar
    assert symbols[0]["name"] in ("Cache", "LruCache"), found


def test_workspace_symbol_finds_method_with_container(ls: SemcodeLanguageServer) -> None:
    symbols = ls.request_workspace_symbol("evict")
    found = {(s["name"], s.get("containerName"), rel(s["location"])) for s in symbols}
    assert ("evict", "Cache", "cache.py") in found, found
    assert ("evict", "LruCache", "web/lru.ts") in found, found


# ---------------------------------------------------------------------------- references = similar code
def test_references(ls: SemcodeLanguageServer) -> None:
    line = line_of("cache.py", "def evict(")
    locations = ls.request_references("cache.py", line, 8)
    if not ls.similar:
        assert locations == [], locations
        return
    assert locations, "references.similarCode is on: expected similar-code locations"
    # the selection itself is excluded
    assert not any(loc["relativePath"] == "cache.py" and loc["range"]["start"]["line"] == line for loc in locations), [
        (loc["relativePath"], loc["range"]) for loc in locations
    ]
    # the closest code in another file is the TypeScript twin LruCache.evict
    other = next(loc for loc in locations if loc["relativePath"] != "cache.py")
    assert other["relativePath"] == "web/lru.ts", [(loc["relativePath"], loc["range"]) for loc in locations]
    assert other["range"]["start"]["line"] == line_of("web/lru.ts", "evict(): string"), other
    for loc in locations:
        assert loc["range"]["start"]["line"] <= loc["range"]["end"]["line"], loc
        assert (FIXTURE / loc["relativePath"]).is_file()


def test_referencing_symbols(ls: SemcodeLanguageServer) -> None:
    # Serena's find_referencing_symbols maps each location to the symbol containing it
    line = line_of("cache.py", "def evict(")
    refs = list(ls.request_referencing_symbols("cache.py", line, 8, include_imports=False, include_self=False))
    if not ls.similar:
        assert refs == []
        return
    names = [(r.symbol["name"], r.symbol["location"]["relativePath"]) for r in refs]
    assert ("evict", "web/lru.ts") in names or ("LruCache", "web/lru.ts") in names, names


# ---------------------------------------------------------------------------- custom requests
def test_semantic_search_paraphrase(ls: SemcodeLanguageServer) -> None:
    results = ls.semantic_search("detect corrupted data by summing bytes modulo a prime", limit=5)
    assert 1 <= len(results) <= 5, results
    top = results[0]
    assert top.get("symbol") == "adler32_checksum", [(r.get("symbol"), r["score"], r.get("why")) for r in results]
    assert rel(top) == "integrity.py"
    # the range is the whole chunk; it contains the function (a leading module header may be part of it)
    def_line = line_of("integrity.py", "def adler32_checksum(")
    assert top["range"]["start"]["line"] <= def_line < top["range"]["end"]["line"], top["range"]
    assert top["range"]["end"]["line"] >= line_of("integrity.py", "return (high << 16) | low"), top["range"]
    assert top["kind"] == "function" and top["language"] == "python"
    assert "adler32_checksum" in top["preview"]
    assert not top.get("partial"), top  # indexing has finished
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True), scores


def test_semantic_search_typescript_and_filters(ls: SemcodeLanguageServer) -> None:
    results = ls.semantic_search("read the parameters from a URL's query string", limit=3)
    assert results[0].get("symbol") == "parseQueryString", [(r.get("symbol"), r["score"]) for r in results]
    assert rel(results[0]) == "web/query.ts"
    only_python = ls.semantic_search("least recently used eviction", limit=5, filters={"language": "python"})
    assert only_python and all(r.get("language") == "python" for r in only_python), only_python
    assert {rel(r) for r in only_python} <= {"cache.py", "integrity.py", "geometry.py"}


def test_semantic_search_invalid_params(ls: SemcodeLanguageServer) -> None:
    with pytest.raises(SolidLSPException) as excinfo:
        ls.server.send_request("workspace/semanticSearch", {"query": "", "limit": 5})
    assert getattr(excinfo.value.cause, "code", None) == -32602, excinfo.value
    assert ls.is_running()


def test_find_similar_command(ls: SemcodeLanguageServer) -> None:
    line = line_of("web/lru.ts", "evict(): string")
    uri = (FIXTURE / "web/lru.ts").as_uri()
    locations = ls.find_similar(uri, {"start": {"line": line, "character": 2}, "end": {"line": line, "character": 2}})
    assert locations, locations
    found = [(rel(loc), loc["range"]["start"]["line"]) for loc in locations]
    assert ("web/lru.ts", line) not in found, found  # not the selection itself
    first_elsewhere = next(item for item in found if item[0] != "web/lru.ts")
    assert first_elsewhere == ("cache.py", line_of("cache.py", "def evict(")), found
