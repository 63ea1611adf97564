"""The one serializer of what front ends show: search hits, index status and indexing stats.

Every record is a plain dict with snake_case field names, the same in the CLI's ``--json``, the MCP
tools and the language server. Each front end maps these records to its protocol in a few lines
(``lsp_server/convert.py``, ``semcode/mcp_server.py``) and never rebuilds them from engine objects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .records import IndexProgress, IndexStats, SearchHit

STATUS_FIELDS = (
    "root",
    "state",
    "files",
    "chunks",
    "model",
    "model_path",
    "dimension",
    "index_path",
    "vector_index",
    "cached_embeddings",
    "pending_chunks",  # chunks searchable lexically whose semantic vector is not written yet
    "locked_by_other_process",
    "partial",
    "lexical_ready",  # every file searchable lexically and by symbol (the first indexing phase is done)
    "progress",
    "last_error",
    "note",
    "rebuilt_reason",
    "model_worker",  # {"restarts", "last_error"} of the embedding worker processes, when there are any
    "metrics",  # the process's headline figures (engine.metrics.Metrics.headline)
    "unsaved_buffers",  # {"documents", "chunks", "pending"} of the editor buffers searched in place of files
)


def hit_record(hit: SearchHit, root: Path) -> dict[str, Any]:
    """One search hit. Lines are 0-based and inclusive; ``start_col`` is the symbol's indentation."""
    return {
        "root": str(root),
        "path": hit.path,
        "abs_path": str(root / hit.path),
        "start_line": hit.start_line,
        "end_line": hit.end_line,
        "start_col": hit.start_col,
        "score": hit.score,
        "symbol": hit.symbol,
        "name_path": hit.name_path,
        "kind": hit.kind,
        "language": hit.language,
        "why": hit.why,
        "preview": hit.preview,
        "source": hit.source,  # "index" (the disk copy) or "buffer" (unsaved editor text, lines as the editor has them)
    }


def progress_record(progress: IndexProgress | None) -> dict[str, int] | None:
    return None if progress is None else {"done": progress.done_files, "total": progress.total_files}


def status_record(**values: Any) -> dict[str, Any]:
    """A status record with every field of ``STATUS_FIELDS`` (missing ones are None)."""
    unknown = set(values) - set(STATUS_FIELDS)
    if unknown:
        raise TypeError(f"unknown status field(s): {', '.join(sorted(unknown))}")
    record = dict.fromkeys(STATUS_FIELDS)
    record.update(values)
    for key in ("root", "index_path"):
        if record[key] is not None:
            record[key] = str(record[key])
    record["partial"] = bool(record["partial"])
    record["locked_by_other_process"] = bool(record["locked_by_other_process"])
    return record


def stats_record(stats: IndexStats) -> dict[str, Any]:
    """What one indexing run did."""
    return {
        "files_seen": stats.files_seen,
        "files_indexed": stats.files_indexed,
        "files_unchanged": stats.files_unchanged,
        "files_deleted": stats.files_deleted,
        "files_skipped": stats.files_skipped,
        "chunks_total": stats.chunks_total,
        "chunks_embedded": stats.chunks_embedded,
        "chunks_cached": stats.chunks_cached,
        "chunks_pending": stats.chunks_pending,
        "seconds": round(stats.seconds, 2),
        "cancelled": stats.cancelled,
        "skipped": [{"path": p, "reason": r} for p, r in stats.skipped],
    }


def camel_case(record: dict[str, Any]) -> dict[str, Any]:
    """The same record with camelCase keys, as LSP results spell them (``index_path`` -> ``indexPath``)."""

    def camel(key: str) -> str:
        head, *rest = key.split("_")
        return head + "".join(part.title() for part in rest)

    return {camel(key): value for key, value in record.items()}


def check_limit(value: object, *, maximum: int, name: str = "limit") -> int:
    """A result count from a request: an integer (or integral float) in 1..maximum, else ConfigError."""
    from .errors import ConfigError

    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= maximum:
        raise ConfigError(f"'{name}' must be an integer between 1 and {maximum}, got {value!r}")
    return value
