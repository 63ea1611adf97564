"""The persistent embedding cache: chunk-text hash -> vector, bounded, least recently used evicted first.

It lives in the index's LanceDB directory (table ``embeddings``), beside the chunk rows, so it is keyed
by the model as well: an index folder belongs to one (workspace, model fingerprint) pair and its
``meta.json`` fingerprint is checked on open; another model never reads these vectors, and a model
change rebuilds the folder, cache included. What it buys: a vector outlives the chunk rows it was
made for. Switching branches A -> B deletes the A-only rows; switching back finds their vectors here
and embeds nothing.

Each row carries ``last_used`` (milliseconds since the epoch): written when the vector is stored and
again whenever an index run uses it (the same merge that stores new vectors, so no extra commit).
When the table holds more than ``limit`` rows, the oldest are deleted in one batch down to
``LOW_WATER`` of the limit, so eviction is rare and never per row. Every write happens with the
store's write lock held; a crash at any point leaves a table that is merely a little fuller or
emptier, and nothing else depends on its contents (a missing vector is embedded again).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from .config import DEFAULT_CACHE_VECTORS
from .faults import fault_point
from .lance_rows import parts, sql_in, vector_array, vectors_of

log = logging.getLogger(__name__)

DEFAULT_LIMIT = DEFAULT_CACHE_VECTORS  # the ``embedding_cache_vectors`` setting's default
LOW_WATER = 0.9  # an eviction leaves this share of the limit, so the next one is ~10% of a limit away


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def cache_schema(dimension: int) -> Any:
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("text_hash", pa.string()),
            pa.field("vector", pa.list_(pa.float32(), dimension)),
            pa.field("last_used", pa.int64()),
        ]
    )


class EmbeddingCache:
    """The ``embeddings`` table of one index. Reads need no lock; writes are made by the store's writer."""

    def __init__(self, table: Any, dimension: int, limit: int = DEFAULT_LIMIT) -> None:
        self.table = table
        self.dimension = dimension
        self.limit = max(1, int(limit))
        self.evicted = 0  # rows evicted by this process (for status and metrics)

    # ----------------------------------------------------------------- schema
    def needs_migration(self) -> bool:
        """An index written before ``last_used`` existed: the column is added by the next writer."""
        return "last_used" not in self.table.schema.names

    def migrate(self) -> None:
        """Add ``last_used`` (0: older than anything used from now on). Called with the write lock held."""
        if not self.needs_migration():
            return
        log.info("adding last-use times to the embedding cache")
        fault_point("cache.before")
        self.table.add_columns({"last_used": "CAST(0 AS BIGINT)"})
        fault_point("cache.after")

    # ----------------------------------------------------------------- reads
    def lookup(self, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        wanted = sorted(set(hashes))
        found: dict[str, np.ndarray] = {}
        for part in parts(wanted):
            table = (
                self.table.search()
                .where(sql_in("text_hash", part))
                .select(["text_hash", "vector"])
                .limit(len(part) * 2)
                .to_arrow()
            )
            vectors = vectors_of(table)
            for i, key in enumerate(table["text_hash"].to_pylist()):
                found[key] = vectors[i]
        return found

    def count(self) -> int:
        return self.table.count_rows()

    def may_have_evicted(self) -> bool:
        """Whether some vectors may be missing for having been evicted (never true below the low-water mark
        unless the bound was raised since): only then is a lookup in the chunk rows worth its scan."""
        return self.evicted > 0 or self.count() >= int(self.limit * LOW_WATER)

    # ----------------------------------------------------------------- writes (write lock held)
    def put(self, new: Mapping[str, np.ndarray], used: Mapping[str, np.ndarray] | None = None) -> None:
        """Store ``new`` vectors and mark ``used`` ones as used now, in one commit.

        A used vector missing from the table (evicted, or found in the chunk rows) is stored again:
        what was used recently is what the next branch switch needs.
        """
        if not new and not used:
            return
        rows = dict(used or {})
        rows.update(new)
        if self.needs_migration():
            self.migrate()
        import pyarrow as pa

        keys = list(rows)
        stamp = now_ms()
        data = pa.Table.from_arrays(
            [
                pa.array(keys, pa.string()),
                vector_array(np.stack([rows[k] for k in keys]), self.dimension),
                pa.array([stamp] * len(keys), pa.int64()),
            ],
            schema=cache_schema(self.dimension),
        )
        fault_point("cache.before")
        (
            self.table.merge_insert("text_hash")
            # Only the use time changes; a row touched this very millisecond is left alone.
            .when_matched_update_all(where="target.last_used < source.last_used")
            .when_not_matched_insert_all()
            .execute(data)
        )
        fault_point("cache.after")

    def evict(self) -> int:
        """Delete the least recently used rows when over the limit, down to ``LOW_WATER``; returns how many."""
        count = self.table.count_rows()
        if count <= self.limit:
            return 0
        if self.needs_migration():
            self.migrate()
        keep = int(self.limit * LOW_WATER)
        drop = count - keep
        used = self.table.search().select(["last_used"]).limit(None).to_arrow()["last_used"].to_numpy()
        cutoff = int(np.partition(used, drop - 1)[drop - 1])  # the drop-th oldest use time
        older = int((used < cutoff).sum())
        fault_point("evict.before")
        if older:
            self.table.delete(f"last_used < {cutoff}")
        tied = drop - older  # rows used at exactly the cutoff time: as many as needed, by hash order
        if tied > 0:
            fault_point("evict.mid")
            at_cutoff = (
                self.table.search()
                .where(f"last_used = {cutoff}")
                .select(["text_hash"])
                .limit(None)
                .to_arrow()["text_hash"]
                .to_pylist()
            )
            victims = sorted(at_cutoff)[:tied]
            for part in parts(victims):
                self.table.delete(sql_in("text_hash", part))
        fault_point("evict.after")
        self.evicted += drop
        log.info("embedding cache: evicted %d least recently used vectors (limit %d)", drop, self.limit)
        return drop

    def drop(self, hashes: Sequence[str]) -> None:
        """Forget these vectors (damaged ones found by ``check``)."""
        for part in parts(sorted(set(hashes))):
            self.table.delete(sql_in("text_hash", part))

    def bad_hashes(self) -> list[str]:
        """Text hashes whose cached vector is not finite or is all zeros: it would poison every chunk using it."""
        bad: list[str] = []
        for batch in self.table.search().select(["text_hash", "vector"]).limit(None).to_batches(4096):
            vectors = vectors_of(batch)
            damaged = ~(np.isfinite(vectors).all(axis=1) & (np.abs(vectors).sum(axis=1) > 0))
            if damaged.any():
                keys = batch["text_hash"].to_pylist()
                bad.extend(keys[i] for i in np.flatnonzero(damaged))
        return bad
