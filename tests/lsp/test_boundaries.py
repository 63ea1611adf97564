"""What the language server must refuse or survive: paths outside the workspace, FIFOs, a bad model,
two workspace folders sharing one ``indexDir``. Real server over stdio, driven by pytest-lsp."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities
from test_server import plain, search, start

WORKSPACE_FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "workspace"

SERVER = ClientServerConfig(server_command=[sys.executable, "-m", "lsp_server", "--log-level", "debug"])
pytestmark = pytest.mark.timeout(300)


@pytest_lsp.fixture(params=["neovim"], config=SERVER)
async def client(lsp_client: LanguageClient, request: pytest.FixtureRequest, workspace_copy: Path):
    await start(lsp_client, request, workspace_copy)
    yield
    await asyncio.wait_for(lsp_client.shutdown_session(), 20)  # a blocked server fails here, not hangs


@pytest_lsp.fixture(params=["neovim"], config=SERVER)
async def bad_model_client(lsp_client: LanguageClient, request: pytest.FixtureRequest, workspace_copy: Path):
    await start(lsp_client, request, workspace_copy, {"model": str(workspace_copy.parent / "missing-model.gguf")})
    yield
    await asyncio.wait_for(lsp_client.shutdown_session(), 20)


@pytest.fixture
def two_roots(tmp_path: Path) -> tuple[Path, Path]:
    first, second = tmp_path / "first", tmp_path / "second"
    shutil.copytree(WORKSPACE_FIXTURE / "python", first)
    shutil.copytree(WORKSPACE_FIXTURE / "web", second)
    return first, second


@pytest_lsp.fixture(params=["neovim"], config=SERVER)
async def two_folder_client(
    lsp_client: LanguageClient, request: pytest.FixtureRequest, two_roots: tuple[Path, Path], tmp_path: Path
):
    first, second = two_roots
    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities(request.param),
            root_uri=first.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=r.as_uri(), name=r.name) for r in (first, second)],
            initialization_options={"indexDir": str(tmp_path / "shared-index")},
        )
    )
    yield
    await asyncio.wait_for(lsp_client.shutdown_session(), 20)


async def document_symbols(client: LanguageClient, path: Path) -> list[Any]:
    return await asyncio.wait_for(
        client.text_document_document_symbol_async(types.DocumentSymbolParams(types.TextDocumentIdentifier(path))),
        10,
    )


async def test_nothing_outside_the_workspace_is_read(client: LanguageClient, workspace_copy: Path) -> None:
    outside = workspace_copy.parent / "outside.py"
    outside.write_text("def secret_outside_the_workspace():\n    return 42\n")
    uri = f"{workspace_copy.as_uri()}/../outside.py"
    assert await document_symbols(client, uri) == []
    actions = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri),
            range=types.Range(types.Position(0, 0), types.Position(1, 0)),
            context=types.CodeActionContext(diagnostics=[]),
        )
    )
    assert not actions
    with pytest.raises(JsonRpcInvalidParams, match="not in a workspace folder"):
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(
                command="semcode.findSimilar",
                arguments=[uri, {"start": {"line": 0, "character": 0}, "end": {"line": 1, "character": 0}}],
            )
        )
    inside = await document_symbols(client, (workspace_copy / "python/checksum.py").as_uri())
    assert inside, "a file inside the workspace still has symbols"


async def test_a_fifo_never_blocks_the_server(client: LanguageClient, workspace_copy: Path) -> None:
    fifo = workspace_copy / "fifo.py"
    os.mkfifo(fifo)
    assert await document_symbols(client, fifo.as_uri()) == []
    status = plain(await asyncio.wait_for(client.protocol.send_request_async("semcode/status", {}), 10))
    assert status["workspaceFolders"] == [str(workspace_copy.resolve())]


async def test_status_with_a_bad_model_says_error(bad_model_client: LanguageClient) -> None:
    for _ in range(600):
        status = plain(await bad_model_client.protocol.send_request_async("semcode/status", None))
        if status["state"] not in ("starting", "indexing"):
            break
        await asyncio.sleep(0.05)
    assert status["state"] == "error", status
    assert "missing-model.gguf" in status["lastError"]
    assert status["folders"][0]["state"] == "error" and status["folders"][0]["lastError"]
    errors = [m.message for m in bad_model_client.messages if m.type == types.MessageType.Error]
    assert any("missing-model.gguf" in e for e in errors)


@pytest.mark.xfail(reason="each folder's own index subfolder comes with the reliability branch", strict=False)
async def test_two_folders_with_one_index_dir_keep_their_own_index(
    two_folder_client: LanguageClient, two_roots: tuple[Path, Path]
) -> None:
    first, second = two_roots
    for _ in range(3600):
        status = plain(await two_folder_client.protocol.send_request_async("semcode/status", {}))
        if status["state"] == "ready" and all(f["state"] == "ready" for f in status["folders"]):
            break
        await asyncio.sleep(0.05)
    by_root = {f["root"]: f for f in status["folders"]}
    assert by_root[str(first.resolve())]["files"] == 2 and by_root[str(second.resolve())]["files"] == 2, status
    assert by_root[str(first.resolve())]["indexPath"] != by_root[str(second.resolve())]["indexPath"]
    crc = plain(await search(two_folder_client, "compute the checksum of a file", limit=1))[0]
    assert crc["uri"] == (first / "checksum.py").as_uri()
    slug = plain(await search(two_folder_client, "turn a title into a slug", limit=1))[0]
    assert slug["uri"] == (second / "strings.js").as_uri()
