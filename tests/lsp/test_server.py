"""The language server end to end over stdio, as Neovim and VS Code drive it: real model, real LanceDB."""

from __future__ import annotations

import ast
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

INDEX_TIMEOUT = 180

SERVER = ClientServerConfig(server_command=[sys.executable, "-m", "lsp_server", "--log-level", "debug"])


async def start(
    client: LanguageClient, request: pytest.FixtureRequest, root: Path, init_options: dict[str, Any] | None = None
) -> None:
    client.registrations = []  # type: ignore[attr-defined]

    @client.feature(types.CLIENT_REGISTER_CAPABILITY)
    def register_capability(params: types.RegistrationParams) -> None:  # as VS Code does
        client.registrations.extend(params.registrations)  # type: ignore[attr-defined]

    await client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities(request.param),
            root_uri=root.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name=root.name)],
            initialization_options=init_options,
        )
    )


@pytest_lsp.fixture(params=["neovim", "visual-studio-code"], config=SERVER)
async def client(lsp_client: LanguageClient, request: pytest.FixtureRequest, workspace_copy: Path):
    await start(lsp_client, request, workspace_copy)
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(params=["neovim"], config=SERVER)
async def configured_client(lsp_client: LanguageClient, request: pytest.FixtureRequest, workspace_copy: Path):
    # Invalid values beside valid ones: the bad ones are reported and replaced by defaults.
    await start(
        lsp_client,
        request,
        workspace_copy,
        {"maxFileSize": "big", "hybrid": "yes", "references": {"similarCode": True}, "exclude": ["go/"]},
    )
    yield
    await lsp_client.shutdown_session()


async def indexed(client: LanguageClient) -> list[Any]:
    """The index progress reports once its `end` arrived."""
    for _ in range(INDEX_TIMEOUT * 20):
        for reports in client.progress_reports.values():
            if (
                reports
                and isinstance(reports[0], types.WorkDoneProgressBegin)
                and "Indexing" in reports[0].title
                and isinstance(reports[-1], types.WorkDoneProgressEnd)
            ):
                return reports
        await asyncio.sleep(0.05)
    raise AssertionError("indexing did not finish")


async def search(client: LanguageClient, query: str, **params: Any) -> list[dict[str, Any]]:
    return await client.protocol.send_request_async("workspace/semanticSearch", {"query": query, **params})


def plain(value: Any) -> Any:
    """pygls hands custom results over as namedtuple-like objects."""
    if hasattr(value, "_asdict"):
        return {k: plain(v) for k, v in value._asdict().items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


async def test_indexing_reports_progress_then_search_finds_the_function(
    client: LanguageClient, workspace_copy: Path
) -> None:
    reports = await indexed(client)
    begin, end = reports[0], reports[-1]
    assert begin.title == f"Indexing workspace {workspace_copy.name}" and begin.cancellable
    middle = [r for r in reports[1:-1] if isinstance(r, types.WorkDoneProgressReport)]
    # Phase 1 (every file chunked, searchable lexically), then the embeddings (counted in chunks).
    assert any(r.percentage == 100 and r.message == "6/6 files" for r in middle)
    assert middle[-1].percentage == 100 and middle[-1].message.startswith("embedding 18/18 chunks")
    assert end.message.startswith("11 chunks") or "chunks" in end.message

    results = plain(await search(client, "retry an HTTP request with exponential backoff", limit=3))
    first = results[0]
    assert {k: first[k] for k in ("uri", "range", "symbol", "namePath", "kind", "language")} == {
        "uri": (workspace_copy / "python/http_retry.py").as_uri(),
        "range": {"start": {"line": 10, "character": 4}, "end": {"line": 22, "character": 0}},
        "symbol": "RetryingClient.request_with_backoff",
        "namePath": "RetryingClient/request_with_backoff",
        "kind": "method",
        "language": "python",
    }
    assert "def request_with_backoff" in first["preview"] and 0 < first["score"] <= 1
    assert "semantic" in first["why"] and "partial" not in first
    assert len(results) == 3 and [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)


async def test_status_reports_the_index(client: LanguageClient, workspace_copy: Path) -> None:
    await indexed(client)
    status = plain(await client.protocol.send_request_async("semcode/status", {}))
    assert status["state"] == "ready"
    assert (status["files"], status["dimension"], status["model"]) == (6, 384, "all-MiniLM-L6-v2")
    assert status["chunks"] > 6 and status["workspaceFolders"] == [str(workspace_copy.resolve())]
    assert status["lastError"] is None


async def test_save_after_an_edit_reembeds_only_the_changed_chunk(client: LanguageClient, workspace_copy: Path) -> None:
    await indexed(client)
    before = plain(await client.protocol.send_request_async("semcode/status", {}))["folders"][0]
    path = workspace_copy / "python/checksum.py"
    path.write_text(
        path.read_text()
        .replace("def celsius_to_fahrenheit(celsius):", "def celsius_to_kelvin_absolute(celsius):")
        .replace("result = scaled + 32", "result = celsius + 273.15")
    )
    client.text_document_did_save(types.DidSaveTextDocumentParams(types.TextDocumentIdentifier(path.as_uri())))
    for _ in range(400):
        hits = plain(await search(client, "convert a temperature to kelvin", limit=1))
        if hits[0].get("symbol") == "celsius_to_kelvin_absolute":
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the saved change never reached the index")
    # A save commits its rows first and its embedding-cache entry right after (searchable one commit
    # sooner): the status may be read in between, so wait for the cache to catch up.
    for _ in range(100):
        after = plain(await client.protocol.send_request_async("semcode/status", {}))["folders"][0]
        if after["cachedEmbeddings"] != before["cachedEmbeddings"]:
            break
        await asyncio.sleep(0.05)
    assert after["cachedEmbeddings"] - before["cachedEmbeddings"] == 1  # the one changed function
    assert after["chunks"] == before["chunks"]


async def test_a_save_commits_without_the_version_hint_rename(client: LanguageClient, workspace_copy: Path) -> None:
    """LanceDB's version hint is rewritten by a rename over the old file at every commit, which ext4
    holds up behind any flush in progress (100-2,900 ms beside a large copy: engine/lance_io.py); the
    server commits without it, and its index stays readable by a reader that does use the hint."""
    await indexed(client)
    path = workspace_copy / "python/checksum.py"
    path.write_text(path.read_text() + "\n\ndef hint_free_marker_helper(value):\n    return value\n")
    client.text_document_did_save(types.DidSaveTextDocumentParams(types.TextDocumentIdentifier(path.as_uri())))
    for _ in range(400):
        hits = plain(await search(client, "hint_free_marker_helper", limit=3))
        if any(h.get("symbol") == "hint_free_marker_helper" for h in hits):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the saved function never reached the index")
    status = plain(await client.protocol.send_request_async("semcode/status", {}))
    lance = Path(status["indexPath"]) / "lance"
    tables = sorted(lance.glob("*.lance"))
    assert {t.name for t in tables} >= {"chunks.lance", "files.lance", "embeddings.lance"}
    assert not [t.name for t in tables if (t / "_versions" / "latest_version_hint.json").exists()]
    # A reader of its own (another process, the hint on) sees the server's latest version and rows.
    script = (
        "import json, sys, lancedb; t = lancedb.connect(sys.argv[1]).open_table('chunks'); "
        "print(json.dumps([t.version, t.count_rows(\"symbol = 'hint_free_marker_helper'\")]))"
    )
    reader = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, str(lance), stdout=asyncio.subprocess.PIPE
    )
    out, _ = await reader.communicate()
    version, rows = json.loads(out)
    assert rows == 1 and version >= 2


async def test_deleted_file_disappears_from_results(client: LanguageClient, workspace_copy: Path) -> None:
    await indexed(client)
    target = workspace_copy / "web/strings.js"
    assert any(r["uri"] == target.as_uri() for r in plain(await search(client, "turn a title into a slug", limit=3)))
    target.unlink()
    client.workspace_did_change_watched_files(
        types.DidChangeWatchedFilesParams(
            changes=[types.FileEvent(uri=target.as_uri(), type=types.FileChangeType.Deleted)]
        )
    )
    for _ in range(400):
        if all(r["uri"] != target.as_uri() for r in plain(await search(client, "turn a title into a slug", limit=10))):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the deleted file is still in the results")


async def test_code_action_and_command_return_similar_code(client: LanguageClient, workspace_copy: Path) -> None:
    await indexed(client)
    uri = (workspace_copy / "web/cache.ts").as_uri()
    selection = types.Range(types.Position(14, 2), types.Position(21, 3))  # LruCache.put
    actions = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri),
            range=selection,
            context=types.CodeActionContext(diagnostics=[]),
        )
    )
    assert len(actions) == 1
    action = actions[0]
    # lsprotocol's client side turns a CodeAction that carries a command into a Command whose
    # "command" is the nested dict; the message on the wire is a proper CodeAction.
    assert action.title == "Find similar code"
    nested = action.command
    if isinstance(nested, str):  # ... and stringifies that dict
        nested = ast.literal_eval(nested)
    command = nested if isinstance(nested, dict) else {"command": nested.command, "arguments": nested.arguments}
    assert command["command"] == "semcode.findSimilar"
    locations = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=command["command"], arguments=command["arguments"])
    )
    locations = plain(locations)
    assert locations, "no similar code found"
    for location in locations:
        assert not (location["uri"] == uri and location["range"]["start"]["line"] in range(14, 22))
    assert locations[0]["uri"] == uri and locations[0]["range"]["start"]["line"] == 5  # LruCache.get


async def test_references_are_empty_unless_enabled(client: LanguageClient, workspace_copy: Path) -> None:
    await indexed(client)
    refs = await client.text_document_references_async(
        types.ReferenceParams(
            text_document=types.TextDocumentIdentifier((workspace_copy / "web/cache.ts").as_uri()),
            position=types.Position(15, 4),
            context=types.ReferenceContext(include_declaration=False),
        )
    )
    assert list(refs) == []


async def test_document_symbols_are_hierarchical(client: LanguageClient, workspace_copy: Path) -> None:
    uri = (workspace_copy / "python/http_retry.py").as_uri()
    symbols = await client.text_document_document_symbol_async(
        types.DocumentSymbolParams(types.TextDocumentIdentifier(uri))
    )

    def shape(symbol: types.DocumentSymbol) -> tuple[Any, ...]:
        return (
            symbol.name,
            symbol.kind,
            symbol.range.start.line,
            symbol.range.end.line,
            [shape(child) for child in symbol.children or []],
        )

    assert [shape(s) for s in symbols] == [
        (
            "RetryingClient",
            types.SymbolKind.Class,
            5,
            24,
            [
                ("__init__", types.SymbolKind.Method, 6, 8, []),
                ("request_with_backoff", types.SymbolKind.Method, 10, 21, []),
                ("close", types.SymbolKind.Method, 23, 24, []),
            ],
        ),
        ("parse_query_string", types.SymbolKind.Function, 27, 34, []),
    ]
    method = symbols[0].children[1]
    assert method.selection_range.start == types.Position(10, 8)  # the name, inside the range


async def test_workspace_symbol_matches_names_and_meaning(client: LanguageClient, workspace_copy: Path) -> None:
    await indexed(client)
    symbols = await client.workspace_symbol_async(types.WorkspaceSymbolParams(query="LruCache"))
    first = symbols[0]
    assert (first.name, first.kind, first.location.uri, first.location.range.start.line) == (
        "LruCache",
        types.SymbolKind.Class,
        (workspace_copy / "web/cache.ts").as_uri(),
        0,
    )
    by_meaning = await client.workspace_symbol_async(types.WorkspaceSymbolParams(query="checksum of a file"))
    assert "crc32_of_file" in [s.name for s in by_meaning]


async def test_invalid_params_give_errors_and_the_server_keeps_serving(client: LanguageClient) -> None:
    await indexed(client)
    for params, message in [
        ({}, "'query' must be a non-empty string"),
        ({"query": "x", "limit": -1}, "'limit' must be an integer between 1 and 200"),
        ({"query": "x", "bogus": 1}, "unknown parameter(s): bogus"),
        ({"query": "x", "filters": {"minScore": "high"}}, "filter 'minScore' must be a number"),
    ]:
        with pytest.raises(JsonRpcInvalidParams, match=message.replace("(", r"\(").replace(")", r"\)")):
            await client.protocol.send_request_async("workspace/semanticSearch", params)
    with pytest.raises(JsonRpcInvalidParams, match="takes \\[uri, range\\]"):
        await client.workspace_execute_command_async(types.ExecuteCommandParams(command="semcode.findSimilar"))
    assert plain(await search(client, "compute the checksum of a file", limit=1))[0]["symbol"] == "crc32_of_file"


async def test_invalid_settings_are_reported_and_defaults_used(
    configured_client: LanguageClient, workspace_copy: Path
) -> None:
    await indexed(configured_client)
    errors = [m.message for m in configured_client.messages if m.type == types.MessageType.Error]
    assert any("max_file_size" in e and "'big'" in e for e in errors)
    assert any("hybrid" in e and "'yes'" in e for e in errors)
    status = plain(await configured_client.protocol.send_request_async("semcode/status", {}))
    assert status["files"] == 5  # go/ excluded by the valid setting; the others kept their defaults
    refs = await configured_client.text_document_references_async(
        types.ReferenceParams(
            text_document=types.TextDocumentIdentifier((workspace_copy / "web/cache.ts").as_uri()),
            position=types.Position(15, 4),
            context=types.ReferenceContext(include_declaration=False),
        )
    )
    assert refs and all(r.uri != (workspace_copy / "web/cache.ts").as_uri() or r.range.start.line < 14 for r in refs)


async def test_custom_requests_accept_omitted_params(client: LanguageClient) -> None:
    await indexed(client)
    # JSON-RPC lets a request omit "params"; the VS Code client does for semcode/status.
    status = plain(await client.protocol.send_request_async("semcode/status", None))
    assert status["state"] == "ready"
    with pytest.raises(JsonRpcInvalidParams, match="params must be an object"):
        await client.protocol.send_request_async("workspace/semanticSearch", None)


async def test_metrics_are_prometheus_text_with_the_counts_of_what_happened(
    client: LanguageClient, workspace_copy: Path
) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    await indexed(client)
    before = plain(await client.protocol.send_request_async("semcode/metrics", None))
    for query in ("slugify a title", "retry with backoff", "merge sort"):
        await search(client, query, limit=3)
    after = plain(await client.protocol.send_request_async("semcode/metrics"))  # params omitted: JSON-RPC allows

    def samples(text: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for family in text_string_to_metric_families(text):  # raises on text Prometheus would reject
            for s in family.samples:
                out[s.name] = out.get(s.name, 0.0) + s.value
        return out

    old, new = samples(before["prometheus"]), samples(after["prometheus"])
    assert new["semcode_searches_total"] - old.get("semcode_searches_total", 0) == 3
    assert new["semcode_search_seconds_count"] - old.get("semcode_search_seconds_count", 0) == 3
    assert new["semcode_index_files"] == 6  # the fixture workspace
    assert new["semcode_embeddings_total"] > 0 and after["headline"]["searches"] == new["semcode_searches_total"]
    status = plain(await client.protocol.send_request_async("semcode/status", {}))
    assert status["metrics"]["searches"] == new["semcode_searches_total"]
