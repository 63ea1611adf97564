"""The persistent embedding cache: chunk-text hash -> vector, bounded, least recently used evicted first.

It lives in the index's LanceDB directory (table ``embeddings``), beside the chunk rows, so it is keyed
by the model as well: an index folder belongs to one (workspace, model fingerprint) pair and its
``meta.json`` fingerprint is checked on open; another model never reads these vectors, and a model
change rebuilds the folder, cache included. What it buys: a vector outlives the chunk rows it was
made for. Switching branches A -> B deletes the A-only rows; switching back finds their vectors here
and embeds nothing.

Each row carries ``last_used`` (milliseconds since the epoch): the time the vector was stored. A use
by a later index run goes to the cache's use log instead (engine/cache_uses.py: 40 bytes appended per
vector, not a rewrite of its row), and a vector's last use is the later of the two. The log is folded
to one record per vector by index maintenance (``fold_uses``, in the compaction of this table).
When the table holds more than ``limit`` rows, the least recently used are deleted in one batch down
to ``LOW_WATER`` of the limit, so eviction is rare and never per row. Every write happens with the
store's write lock held; a crash at any point leaves a table that is merely a little fuller or
emptier, or a use log a little behind, and nothing else depends on either (a missing vector is
embedded again).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .cache_uses import USES_FILE, UseLog, effective_times, fold, now_ms
from .config import DEFAULT_CACHE_VECTORS
from .faults import fault_point
from .lance_rows import parts, sql_in, vector_array, vectors_of

if TYPE_CHECKING:
    import pyarrow as pa
    from lancedb.table import Table

log = logging.getLogger(__name__)

DEFAULT_LIMIT = DEFAULT_CACHE_VECTORS  # the ``embedding_cache_vectors`` setting's default
LOW_WATER = 0.9  # an eviction leaves this share of the limit, so the next one is ~10% of a limit away
MISSED_MAX = 16_384  # text hashes remembered as not in the table (see ``_missed``), oldest forgotten first
DELETE_PART = 4096  # hashes per eviction delete: 4 x 2,000 took 0.09 s at 183K rows (a commit each)
FOLD_FACTOR = 2  # the use log is folded in place once it holds this many records per vector of the bound


def uses_path(table: Table) -> Path:
    """The use log of a cache table: beside its directory in the index's LanceDB directory."""
    uri: str = table.uri  # type: ignore[attr-defined]  # a local LanceTable's directory (the store's are)
    return Path(uri).parent / USES_FILE


def fold_uses(table: Table) -> int:
    """Fold the cache table's use log (engine/cache_uses.py ``fold``); called with the write lock held,
    by index maintenance after the table's compaction. Returns the records kept."""
    uses = UseLog(uses_path(table))
    if not uses.records():
        uses.discard_temp()
        return 0
    if "last_used" not in table.schema.names:  # not migrated yet: the next write adds the column first
        return uses.records()
    return fold(stored_times(table), uses)


def stored_times(table: Table) -> pa.Table:
    """Every row's ``text_hash`` and ``last_used`` (the time it was stored), without the vectors."""
    return table.search().select(["text_hash", "last_used"]).limit(None).to_arrow()


def cache_schema(dimension: int) -> pa.Schema:
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

    def __init__(self, table: Table, dimension: int, limit: int = DEFAULT_LIMIT) -> None:
        self.table = table
        self.dimension = dimension
        self.limit = max(1, int(limit))
        self.evicted = 0  # rows evicted by this process (for status and metrics)
        self.uses = UseLog(uses_path(table))
        # Hashes this process found missing from the table (a look-up's misses, its own evictions). A
        # vector used later under such a hash (taken from the chunk rows, or from an indexer's memory) is
        # stored again; any other used vector is in the table (as of its look-up), so only its use is
        # logged. Bounded: a hash forgotten here is at worst not stored again, while its rows still hold it.
        self._missed: dict[str, None] = {}
        self._missed_lock = threading.Lock()

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
        self._note_missed(key for key in wanted if key not in found)
        return found

    def count(self) -> int:
        return self.table.count_rows()

    def may_have_evicted(self) -> bool:
        """Whether some vectors may be missing for having been evicted (never true below the low-water mark
        unless the bound was raised since): only then is a lookup in the chunk rows worth its scan."""
        return self.evicted > 0 or self.count() >= int(self.limit * LOW_WATER)

    # ----------------------------------------------------------------- writes (write lock held)
    def put(self, new: Mapping[str, np.ndarray], used: Mapping[str, np.ndarray] | None = None) -> None:
        """Store ``new`` vectors and mark ``used`` ones as used now.

        A used vector missing from the table (evicted, or found in the chunk rows) is stored again:
        what was used recently is what the next branch switch needs. The rest of ``used`` is in the
        table already and only its use is logged (engine/cache_uses.py), without touching its rows.
        """
        if not new and not used:
            return
        used = used or {}
        rows = {key: used[key] for key in self._take_missed([*used, *new]) if key in used}
        rows.update(new)
        stamp = now_ms()
        fault_point("cache.before")
        if rows:
            if self.needs_migration():
                self.migrate()
            self._merge(rows, stamp)
        fault_point("uses.before")  # new vectors stored, the uses of the others not yet logged
        self.uses.append((key for key in used if key not in rows), stamp)
        fault_point("cache.after")
        if self.uses.records() > FOLD_FACTOR * self.limit + 4096:  # no maintenance ran for a long time
            fold_uses(self.table)

    def _merge(self, rows: Mapping[str, np.ndarray], stamp: int) -> None:
        import pyarrow as pa

        keys = list(rows)
        data = pa.Table.from_arrays(
            [
                pa.array(keys, pa.string()),
                vector_array(np.stack([rows[k] for k in keys]), self.dimension),
                pa.array([stamp] * len(keys), pa.int64()),
            ],
            schema=cache_schema(self.dimension),
        )
        (
            self.table.merge_insert("text_hash")
            # Stored by another process meanwhile: only its time changes (it was stored then, or now).
            .when_matched_update_all(where="target.last_used < source.last_used")
            .when_not_matched_insert_all()
            .execute(data)
        )

    def _note_missed(self, keys: Iterable[str]) -> None:
        with self._missed_lock:
            for key in keys:
                self._missed[key] = None
            excess = len(self._missed) - MISSED_MAX
            if excess > 0:
                for key in list(self._missed)[:excess]:
                    del self._missed[key]

    def _take_missed(self, keys: Iterable[str]) -> list[str]:
        """Those of ``keys`` known to be missing from the table, forgotten here (they are stored now)."""
        with self._missed_lock:
            if not self._missed:
                return []
            taken = [key for key in keys if key in self._missed]
            for key in taken:
                self._missed.pop(key, None)
            return taken

    def use_times(self) -> dict[str, int]:
        """text hash -> last use (ms) of every cached vector: its row's time or its latest logged use."""
        if self.needs_migration():
            return dict.fromkeys(
                self.table.search().select(["text_hash"]).limit(None).to_arrow()["text_hash"].to_pylist(), 0
            )
        times = effective_times(stored_times(self.table), self.uses.read())
        return dict(zip(times["text_hash"].to_pylist(), times["last_used"].to_pylist(), strict=True))

    def evict(self) -> int:
        """Delete the least recently used rows when over the limit, down to ``LOW_WATER``; returns how many.

        Least recently used by the later of the row's time and its logged use; rows used at the same
        time go by hash order. Deleted by hash, a few thousand per commit: a crash after one of them
        leaves a table between the limit and its low-water mark, which the next write's eviction trims.
        """
        count = self.table.count_rows()
        if count <= self.limit:
            return 0
        if self.needs_migration():
            self.migrate()
        import pyarrow.compute as pc

        keep = int(self.limit * LOW_WATER)
        drop = count - keep
        times = effective_times(stored_times(self.table), self.uses.read())
        order = pc.sort_indices(times, sort_keys=[("last_used", "ascending"), ("text_hash", "ascending")])
        victims = times["text_hash"].take(order[:drop]).to_pylist()
        del times, order
        fault_point("evict.before")
        for n, part in enumerate(parts(victims, DELETE_PART)):
            self.table.delete(sql_in("text_hash", part))
            if n == 0:
                fault_point("evict.mid")
        fault_point("evict.after")
        self._note_missed(victims)
        self.evicted += len(victims)
        log.info("embedding cache: evicted %d least recently used vectors (limit %d)", len(victims), self.limit)
        return len(victims)

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
