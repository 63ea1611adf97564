"""workspace/semanticSearch, workspace/symbol and semcode/status."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any, TypeVar

from lsprotocol import types

from engine.errors import ConfigError, SemcodeError
from engine.host import IndexHost
from engine.records import SearchHit
from engine.results import camel_case, check_limit, hit_record
from engine.search import MAX_LIMIT, SearchFilters

from ..convert import hit_to_symbol_information, search_result, to_plain
from ..server import SemcodeServer, request_error

log = logging.getLogger(__name__)
T = TypeVar("T")
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
    limit = check_limit(params.get("limit", 10), maximum=MAX_LIMIT)
    filters = params.get("filters")
    if filters is None:
        filters = {}
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


def searchable_folders(ls: SemcodeServer) -> list[IndexHost]:
    hosts = ls.open_folders()
    if not hosts:
        if any(h.state in ("starting", "indexing", "waiting_for_lock") for h in ls.folders.values()):
            return []  # the model is still loading: an empty, partial answer
        errors = [h.last_error for h in ls.folders.values() if h.last_error]
        raise SemcodeError(ls.last_error or (errors[0] if errors else "no workspace folder is indexed"))
    return hosts


def merge_hits(per_folder: list[tuple[T, list[SearchHit]]], limit: int) -> list[tuple[T, SearchHit]]:
    """The best hits of several folders. Engine scores are relative to each folder's best hit (1.0),
    so with several folders each folder's scores are scaled by its best semantic similarity: the
    order inside a folder stays, and the folder whose code matches better comes first."""
    answering = [(folder, hits) for folder, hits in per_folder if hits]
    if len(answering) > 1:
        answering = [(folder, _scaled(hits)) for folder, hits in answering]
    merged = [(folder, hit) for folder, hits in answering for hit in hits]
    merged.sort(key=lambda pair: -pair[1].score)
    return merged[:limit]


def _scaled(hits: list[SearchHit]) -> list[SearchHit]:
    best = max((h.semantic_score for h in hits if h.semantic_score is not None), default=None)
    if best is None:
        return hits
    return [replace(h, score=round(h.score * max(best, 0.0), 6)) for h in hits]


async def semantic_search(ls: SemcodeServer, params: Any) -> list[dict[str, Any]]:
    try:
        query, limit, filters = parse_search_params(params)
        hosts = searchable_folders(ls)
        per_folder = [(h, await ls.in_thread(h.workspace.search, query, limit=limit, filters=filters)) for h in hosts]
    except (SemcodeError, ValueError) as exc:
        raise request_error(exc) from exc
    partial = any(h.partial for h in ls.folders.values())
    return [search_result(hit_record(hit, host.root), partial=partial) for host, hit in merge_hits(per_folder, limit)]


async def workspace_symbol(ls: SemcodeServer, params: types.WorkspaceSymbolParams) -> list[types.SymbolInformation]:
    try:
        hosts = searchable_folders(ls)
        per_folder = [(h, await ls.in_thread(h.workspace.symbols, params.query, limit=100)) for h in hosts]
    except (SemcodeError, ValueError) as exc:
        raise request_error(exc) from exc
    return [hit_to_symbol_information(hit, host.root) for host, hit in merge_hits(per_folder, 100)]


async def status(ls: SemcodeServer, params: Any = None) -> dict[str, Any]:
    return await status_report(ls)


async def metrics_report(ls: SemcodeServer, params: Any = None) -> dict[str, Any]:
    """``semcode/metrics``: the process's metrics as Prometheus text and as JSON samples."""
    from engine.metrics import metrics

    m = metrics()
    return {"prometheus": m.prometheus_text(), "samples": m.snapshot(), "headline": m.headline()}


async def status_command(ls: SemcodeServer, *args: Any) -> dict[str, Any]:
    return await status_report(ls)


def _overall_state(states: list[str], ls: SemcodeServer) -> str:
    if any(s in ("indexing", "waiting_for_lock") for s in states):
        return "indexing"
    if any(s in ("starting", "idle") for s in states):
        return "starting"
    if any(s == "error" for s in states) or (ls.last_error and not states):
        return "error"
    return "ready"


async def status_report(ls: SemcodeServer) -> dict[str, Any]:
    """``semcode/status``: answers in every state, a bad model included (``state: "error"``)."""
    hosts = list(ls.folders.values())
    records = [await ls.in_thread(h.status) for h in hosts]
    opened = [r for r in records if r["model"] is not None]
    errors = [r["last_error"] for r in records if r["last_error"]]
    report: dict[str, Any] = {
        "state": _overall_state([r["state"] for r in records], ls),
        "files": sum(r["files"] or 0 for r in records),
        "chunks": sum(r["chunks"] or 0 for r in records),
        "model": opened[0]["model"] if opened else None,
        "dimension": opened[0]["dimension"] if opened else None,
        "indexPath": opened[0]["index_path"] if opened else None,
        "workspaceFolders": [str(h.root) for h in hosts],
        "lastError": errors[0] if errors else ls.last_error,
        "folders": [camel_case(r) for r in records],
        "metrics": _headline(),
    }
    progress = [r["progress"] for r in records if r["progress"]]
    if progress:
        report["progress"] = {"done": sum(p["done"] for p in progress), "total": sum(p["total"] for p in progress)}
    return report


def _headline() -> dict[str, Any]:
    from engine.metrics import metrics

    return metrics().headline()
