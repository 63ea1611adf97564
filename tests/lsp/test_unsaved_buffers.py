"""Unsaved buffers over LSP: what the editor holds is searched, not the stale disk copy.

Real server over stdio (pytest-lsp), real model, real LanceDB. Edits are sent as incremental
``didChange`` notifications, as editors send them, and never saved unless the test says so.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient
from test_server import indexed, plain, search, start

SERVER = ClientServerConfig(server_command=[sys.executable, "-m", "lsp_server", "--log-level", "debug"])
pytestmark = pytest.mark.timeout(300)

NEW_FUNCTION = (
    "\n\ndef quux_flange_polisher(gizmos):\n"
    '    """Polish every gizmo until it sparkles."""\n'
    "    return [gizmo.polish() for gizmo in gizmos]\n"
)


@pytest_lsp.fixture(params=["visual-studio-code"], config=SERVER)
async def client(lsp_client: LanguageClient, request: pytest.FixtureRequest, workspace_copy: Path):
    await start(lsp_client, request, workspace_copy)
    yield
    await asyncio.wait_for(lsp_client.shutdown_session(), 60)


def open_document(client: LanguageClient, path: Path) -> str:
    text = path.read_text()
    item = types.TextDocumentItem(uri=path.as_uri(), language_id="python", version=1, text=text)
    client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=item))
    return text


def insert(client: LanguageClient, path: Path, line: int, text: str, version: int = 2) -> None:
    at = types.Position(line=line, character=0)
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=path.as_uri(), version=version),
            content_changes=[types.TextDocumentContentChangePartial(range=types.Range(at, at), text=text)],
        )
    )


async def poll(
    ask: Callable[[], Awaitable[list[dict[str, Any]]]], found: Callable[[list[dict[str, Any]]], bool], timeout: float
) -> list[dict[str, Any]]:
    """Ask until ``found`` holds; fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        results = plain(await ask())
        if found(results):
            return results
        assert time.monotonic() < deadline, f"not found within {timeout}s: {results}"
        await asyncio.sleep(0.02)


def named(results: list[dict[str, Any]], symbol: str) -> list[dict[str, Any]]:
    return [r for r in results if r.get("symbol") == symbol]


async def test_an_unsaved_function_is_searchable_at_once_and_gone_after_close(
    client: LanguageClient, workspace_copy: Path
) -> None:
    await indexed(client)
    path = workspace_copy / "python/checksum.py"
    text = open_document(client, path)
    insert(client, path, len(text.splitlines()), NEW_FUNCTION)
    # The acceptance of issue 15: found within 1 s of the didChange (the lexical tier answers at once).
    results = await poll(
        lambda: search(client, "quux_flange_polisher", limit=5), lambda r: bool(named(r, "quux_flange_polisher")), 1.0
    )
    hit = named(results, "quux_flange_polisher")[0]
    assert (hit["uri"], hit["dirty"], hit["source"]) == (path.as_uri(), True, "buffer")
    assert hit["range"]["start"]["line"] == len(text.splitlines()) + 2
    # Then semantically, once its chunk is embedded (after a short pause in typing).
    results = await poll(
        lambda: search(client, "make every gizmo sparkle", limit=3),
        lambda r: any("semantic" in h["why"] for h in named(r, "quux_flange_polisher")),
        30.0,
    )
    # The rest of the file is searched from the buffer too, not twice (the disk copy is left out).
    crc = plain(await search(client, "CRC32 checksum of a file", limit=10))
    assert [r.get("source") for r in crc if r["uri"] == path.as_uri()][:1] == ["buffer"]
    assert not [r for r in crc if r["uri"] == path.as_uri() and not r.get("dirty")]
    status = plain(await client.protocol.send_request_async("semcode/status", {}))
    assert status["folders"][0]["unsavedBuffers"] == {"documents": 1, "chunks": 3, "pending": 0}

    client.text_document_did_close(
        types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=path.as_uri()))
    )
    await poll(
        lambda: search(client, "quux_flange_polisher", limit=10), lambda r: not named(r, "quux_flange_polisher"), 5.0
    )
    crc = plain(await search(client, "CRC32 checksum of a file", limit=3))
    assert crc[0]["symbol"] == "crc32_of_file" and "dirty" not in crc[0] and "source" not in crc[0]


async def test_a_saved_buffer_hands_over_to_the_index(client: LanguageClient, workspace_copy: Path) -> None:
    await indexed(client)
    path = workspace_copy / "python/checksum.py"
    text = open_document(client, path)
    insert(client, path, len(text.splitlines()), NEW_FUNCTION)
    await poll(lambda: search(client, "quux_flange_polisher"), lambda r: bool(named(r, "quux_flange_polisher")), 5.0)
    path.write_text(text + NEW_FUNCTION)
    client.text_document_did_save(
        types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=path.as_uri()))
    )
    # Once the saved file is re-indexed the hit comes from the index, and stays after closing.
    await poll(
        lambda: search(client, "quux_flange_polisher"),
        lambda r: any(not h.get("dirty") for h in named(r, "quux_flange_polisher")),
        30.0,
    )
    client.text_document_did_close(
        types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=path.as_uri()))
    )
    results = plain(await search(client, "quux_flange_polisher"))
    assert named(results, "quux_flange_polisher") and not any(r.get("dirty") for r in results)


async def test_find_similar_on_an_unsaved_selection(client: LanguageClient, workspace_copy: Path) -> None:
    await indexed(client)
    path = workspace_copy / "python/checksum.py"
    open_document(client, path)
    twin = (
        "\ndef fahrenheit_from_celsius(degrees):\n"
        "    scaled = degrees * 9 / 5\n"
        "    result = scaled + 32\n"
        "    return round(result, 2)\n\n"
    )
    insert(client, path, 2, twin)  # above everything: the file's functions move 6 lines down
    selection = types.Range(types.Position(3, 0), types.Position(7, 0))  # the new function, only in the buffer
    locations = plain(
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="semcode.findSimilar", arguments=[path.as_uri(), selection])
        )
    )
    # Its twin, where the buffer has it (line 20; line 14 on disk), and not the selection itself.
    assert (locations[0]["uri"], locations[0]["range"]["start"]["line"]) == (path.as_uri(), 20)
    assert all(not (loc["uri"] == path.as_uri() and loc["range"]["start"]["line"] in range(3, 7)) for loc in locations)
