"""workspace/semanticSearch, workspace/symbol and semcode/status."""

from __future__ import annotations

import logging
from typing import Any

from lsprotocol import types

from engine.errors import ConfigError, SemcodeError
from engine.records import SearchHit
from engine.search import MAX_LIMIT, SearchFilters

from ..convert import hit_to_result, hit_to_symbol_information, to_plain
from ..server import SEMANTIC_SEARCH, STATUS, Folder, SemcodeServer, request_error

log = logging.getLogger(__name__)
FILTER_KEYS = {"path", "language", "kind", "minScore"}


def parse_search_params(raw: Any) -> tuple[str, int, SearchFilters]:
    params = to_plain(raw)
    if not isinstance(params, dict):
        raise ConfigError("params must be an object {query, limit?, filters?}")
    unknown = set(params) - {"query", "limit", "filters"}
    if unknown:
        raise ConfigError(f"unknown parameter(s): {', '.join(sorted(unknown))}")
    query = params.get("query")
    if not isinstance(query, str) or not query.strip():
        raise ConfigError("'query' must be a non-empty string")
    limit = params.get("limit", 10)
    if isinstance(limit, float) and limit.is_integer():
        limit = int(limit)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
        raise ConfigError(f"'limit' must be an integer between 1 and {MAX_LIMIT}, got {limit!r}")
    filters = params.get("filters") or {}
    if not isinstance(filters, dict):
        raise ConfigError("'filters' must be an object {path?, language?, kind?, minScore?}")
    if set(filters) - FILTER_KEYS:
        raise ConfigError(f"unknown filter(s): {', '.join(sorted(set(filters) - FILTER_KEYS))}")
    for key in ("path", "language", "kind"):
        if filters.get(key) is not None and not isinstance(filters[key], str):
            raise ConfigError(f"filter '{key}' must be a string")
    min_score = filters.get("minScore")
    if min_score is not None and (isinstance(min_score, bool) or not isinstance(min_score, (int, float))):
        raise ConfigError("filter 'minScore' must be a number")
    return (
        query,
        limit,
        SearchFilters(
            path=filters.get("path"),
            language=filters.get("language"),
            kind=filters.get("kind"),
            min_score=float(min_score) if min_score is not None else None,
        ),
    )


def searchable_folders(ls: SemcodeServer) -> list[Folder]:
    folders = ls.ready_folders()
    if not folders:
        if any(f.indexing for f in ls.folders.values()):
            return []  # the model is still loading: an empty, partial answer
        raise SemcodeError(ls.last_error or "no workspace folder is indexed")
    return folders


def merge_hits(per_folder: list[tuple[Folder, list[SearchHit]]], limit: int) -> list[tuple[Folder, SearchHit]]:
    merged = [(folder, hit) for folder, hits in per_folder for hit in hits]
    merged.sort(key=lambda pair: -pair[1].score)
    return merged[:limit]


def register(server: SemcodeServer) -> None:
    @server.feature(SEMANTIC_SEARCH)
    async def semantic_search(ls: SemcodeServer, params: Any) -> list[dict[str, Any]]:
        try:
            query, limit, filters = parse_search_params(params)
            folders = searchable_folders(ls)
            per_folder = [
                (f, await ls.in_thread(f.workspace.search, query, limit=limit, filters=filters)) for f in folders
            ]
        except (SemcodeError, ValueError) as exc:
            raise request_error(exc) from exc
        partial = any(f.indexing for f in ls.folders.values()) or len(folders) < len(ls.folders)
        return [hit_to_result(hit, folder.root, partial=partial) for folder, hit in merge_hits(per_folder, limit)]

    @server.feature(types.WORKSPACE_SYMBOL)
    async def workspace_symbol(ls: SemcodeServer, params: types.WorkspaceSymbolParams) -> list[types.SymbolInformation]:
        try:
            folders = searchable_folders(ls)
            per_folder = [(f, await ls.in_thread(f.workspace.symbols, params.query, limit=100)) for f in folders]
        except (SemcodeError, ValueError) as exc:
            raise request_error(exc) from exc
        return [hit_to_symbol_information(hit, folder.root) for folder, hit in merge_hits(per_folder, 100)]

    @server.feature(STATUS)
    async def status(ls: SemcodeServer, params: Any = None) -> dict[str, Any]:
        return await status_report(ls)

    @server.command("semcode.status")
    async def status_command(ls: SemcodeServer, *args: Any) -> dict[str, Any]:
        return await status_report(ls)


async def status_report(ls: SemcodeServer) -> dict[str, Any]:
    folders = list(ls.folders.values())
    states = [f for f in folders if f.workspace is not None]
    details = [await ls.in_thread(f.workspace.status) for f in states]
    indexing = any(f.indexing for f in folders)
    if indexing:
        state = "indexing"
    elif ls.last_error and not details:
        state = "error"
    elif details:
        state = "ready"
    else:
        state = "starting"
    report: dict[str, Any] = {
        "state": state,
        "files": sum(d["files"] for d in details),
        "chunks": sum(d["chunks"] for d in details),
        "model": details[0]["model"] if details else None,
        "dimension": details[0]["dimension"] if details else None,
        "indexPath": details[0]["indexPath"] if details else None,
        "workspaceFolders": [str(f.root) for f in folders],
        "lastError": ls.last_error,
        "folders": details,
    }
    progress = [f.progress for f in folders if f.indexing and f.progress]
    if progress:
        report["progress"] = {"done": sum(p[0] for p in progress), "total": sum(p[1] for p in progress)}
    return report
