"""A query's row-id searches through LanceDB's async table, one call each on its event-loop thread.

LanceDB's synchronous query builder validates the query into a pydantic model (a 384-float list item by
item for a vector), then hands the result back batch by batch, one event-loop round trip each. Its async
builder passes the numpy vector to Rust as it is and returns the table in one round trip: at 179K chunks
a vector search's 8.1 ms became 5.0 and a full-text search's 2.9 became 1.7 (one thread, quiet;
BENCHMARKS.md, "Lead, session 15"). Same engine, same index, same rows and scores
(``tests/engine/test_lance_reads.py``).

Lance's own Python API (pylance) is faster still for takes by row id, but loading its 218 MB library into
the server costs ~110 MB of RSS (its code pages and runtime) against the 500 MB budget; the server keeps
one Lance. Anything the async path raises falls back to the synchronous call in the store.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pyarrow as pa
    from lancedb.table import Table

log = logging.getLogger(__name__)


def _run(coroutine: Any) -> pa.Table:
    """The coroutine's result, run on LanceDB's event-loop thread (where its synchronous API runs it)."""
    from lancedb.background_loop import LOOP

    table: pa.Table = LOOP.run(coroutine)  # type: ignore[no-untyped-call]
    return table


def _async_table(table: Table) -> Any:
    inner = getattr(table, "_table", None)  # LanceTable wraps an AsyncTable
    if inner is None or not hasattr(inner, "query"):
        raise TypeError(f"{type(table).__name__} has no async table")
    return inner


def nearest_row_ids(
    table: Table,
    vector: np.ndarray,
    *,
    limit: int,
    nprobes: int,
    refine_factor: int,
    where: str | None,
) -> pa.Table:
    """``_rowid`` and cosine ``_distance`` of the nearest rows, as ``store.nearest`` asks them."""
    query = (
        _async_table(table)
        .query()
        .nearest_to(np.asarray(vector, dtype=np.float32))
        .column("vector")
        .distance_type("cosine")
        .limit(limit)
        .nprobes(nprobes)
        .refine_factor(refine_factor)
        .select(["_distance"])
        .with_row_id()
    )
    if where:
        query = query.where(where)  # a prefilter: the async builder's default, as the store asks
    return _run(query.to_arrow())


def full_text_row_ids(table: Table, terms: str, *, column: str, limit: int, where: str | None) -> pa.Table:
    """``_rowid`` and BM25 ``_score`` of the best matches of ``terms`` in ``column``."""
    query = _async_table(table).query().nearest_to_text(terms, columns=[column]).limit(limit)
    query = query.select(["_score"]).with_row_id()
    if where:
        query = query.where(where)
    return _run(query.to_arrow())


def log_fallback(what: str, exc: BaseException) -> None:
    log.debug("LanceDB's async %s failed (%s: %s); the synchronous call answers", what, type(exc).__name__, exc)
