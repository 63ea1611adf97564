"""A branch switch seen by the language server: one batched update, and metrics that match it.

The client reports the switch's file events the way VS Code does (several didChangeWatchedFiles
notifications, one change per file); the server must turn them into one index update with one
progress stream, and `semcode/metrics` must count exactly what the update embedded and what it took
from the embedding cache. Real git, real model, real LanceDB, the server over stdio.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest_lsp
from branch_repo import checkout, make_repo
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from engine.config import EngineConfig
from engine.workspace import Workspace

SERVER = ClientServerConfig(server_command=[sys.executable, "-m", "lsp_server", "--log-level", "debug"])
EXTRA_FILES = 40  # B's extra modules: with the others, more files than one save-sized update
TIMEOUT = 180


@pytest_lsp.fixture(config=SERVER)
async def client(lsp_client: LanguageClient, tmp_path: Path):
    repo = make_repo(tmp_path / "repo", extra_b_files=EXTRA_FILES)
    lsp_client.repo = repo  # type: ignore[attr-defined]

    @lsp_client.feature(types.CLIENT_REGISTER_CAPABILITY)
    def register_capability(params: types.RegistrationParams) -> None:  # the file watcher, as VS Code does
        return None

    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"),
            root_uri=repo.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=repo.as_uri(), name=repo.name)],
        )
    )
    yield
    await lsp_client.shutdown_session()


def plain(value: Any) -> Any:
    if hasattr(value, "_asdict"):
        return {k: plain(v) for k, v in value._asdict().items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def indexing_streams(client: LanguageClient) -> list[list[Any]]:
    """The work-done progress streams of index runs that ended, in the order they began."""
    return [
        reports
        for reports in client.progress_reports.values()
        if reports
        and isinstance(reports[0], types.WorkDoneProgressBegin)
        and "Indexing" in reports[0].title
        and isinstance(reports[-1], types.WorkDoneProgressEnd)
    ]


async def until_indexed(client: LanguageClient, runs: int) -> None:
    for _ in range(TIMEOUT * 20):
        if len(indexing_streams(client)) >= runs:
            status = plain(await client.protocol.send_request_async("semcode/status", {}))
            if status["state"] == "ready":
                return
        await asyncio.sleep(0.05)
    raise AssertionError(f"index run {runs} did not finish")


async def samples(client: LanguageClient) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    text = plain(await client.protocol.send_request_async("semcode/metrics", {}))["prometheus"]
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):  # raises on text Prometheus would reject
        for sample in family.samples:
            out[sample.name] = out.get(sample.name, 0.0) + sample.value
    return out


def delta(after: dict[str, float], before: dict[str, float], name: str) -> float:
    return after.get(name, 0.0) - before.get(name, 0.0)


def notify_switch(client: LanguageClient, repo: Path, paths: list[str]) -> None:
    """The watcher's events for a checkout: in three notifications, as a client flushes them."""
    events = []
    for rel in paths:
        kind = types.FileChangeType.Changed if (repo / rel).exists() else types.FileChangeType.Deleted
        events.append(types.FileEvent(uri=(repo / rel).as_uri(), type=kind))
    third = len(events) // 3 + 1
    for start in range(0, len(events), third):
        client.workspace_did_change_watched_files(
            types.DidChangeWatchedFilesParams(changes=events[start : start + third])
        )


def stored_rows(repo: Path, embedder) -> tuple[set[str], dict[str, int]]:
    """The index the server wrote, read from this process: text hashes, and rows per path."""
    ws = Workspace(repo, EngineConfig(), embedder=embedder)
    rows = ws.open().store.rows("true", columns=["path", "text_hash"], limit=100_000)
    per_path: dict[str, int] = {}
    for row in rows:
        per_path[row["path"]] = per_path.get(row["path"], 0) + 1
    return {r["text_hash"] for r in rows}, per_path


async def test_a_branch_switch_is_one_update_and_the_metrics_count_it(client: LanguageClient, embedder) -> None:
    repo: Path = client.repo  # type: ignore[attr-defined]
    await until_indexed(client, 1)
    hashes_a, _ = stored_rows(repo, embedder)
    start = await samples(client)
    assert start["semcode_embeddings_total"] == len(hashes_a)  # the first index embedded each text once

    # A -> B: 40+ files change; one update, one progress stream; only B's new texts are embedded.
    notify_switch(client, repo, checkout(repo, "b"))
    await until_indexed(client, 2)
    await asyncio.sleep(1.0)  # no second update may follow the first
    assert len(indexing_streams(client)) == 2
    on_b = await samples(client)
    hashes_b, rows_b = stored_rows(repo, embedder)
    assert delta(on_b, start, "semcode_embeddings_total") == len(hashes_b - hashes_a) > EXTRA_FILES
    assert on_b["semcode_index_files"] == len(rows_b)

    # B -> A: nothing embedded; every chunk of the files that changed back came from the cache.
    changed = checkout(repo, "a")
    notify_switch(client, repo, changed)
    await until_indexed(client, 3)
    back = await samples(client)
    hashes_back, rows_a = stored_rows(repo, embedder)
    assert hashes_back == hashes_a
    assert delta(back, on_b, "semcode_embeddings_total") == 0
    reindexed = [p for p in changed if p in rows_a]  # present on A: read, chunked, vectors from the cache
    assert delta(back, on_b, "semcode_embedding_cache_hits_total") == sum(rows_a[p] for p in reindexed)
    assert delta(back, on_b, "semcode_files_indexed_total") == len(reindexed)
    assert back["semcode_embedding_cache_vectors"] >= len(hashes_a | hashes_b)
    status = plain(await client.protocol.send_request_async("semcode/status", {}))
    assert status["metrics"]["embeddings"] == back["semcode_embeddings_total"]
    assert status["metrics"]["cacheHits"] == back["semcode_embedding_cache_hits_total"]
