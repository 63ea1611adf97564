"""The embedding cache's use log: when each cached vector was last used, appended beside its table.

The cache's eviction keeps the vectors used most recently (engine/embedding_cache.py). Marking a use in
the LanceDB table itself rewrote the rows, vectors included: every 4,096-chunk write of ``index --full``
at 179K chunks took +68-117 MB of high-water and ~1.9 s for it (its phase-1 peak, and ~40% of the run;
BENCHMARKS.md "rss8 (session 8)", "rss9 (session 9)"). A use is 40 bytes here instead, appended to a
plain file: the text hash (up to 32 bytes, NUL-padded; ``records.text_hash`` is 32 hex characters) and
the time in milliseconds since the epoch, little-endian. A vector's last use is the later of its row's
``last_used`` (the time it was stored) and its latest record here.

The file is read only by the eviction (rare: ~10% of the bound apart) and rewritten only by ``fold``
(index maintenance, or when it outgrows the bound): one record per hash still in the table and used
after it was stored, so it stays below ~40 bytes per cached vector. Every append and rewrite happens
with the index's write lock held (the maintenance child runs under its parent's).

Crash safety: the log only orders evictions. A lost append (a crash before it, or a lost page cache at a
power cut: appends are not synced) makes a vector look older than it is, so at worst it is evicted
sooner and embedded again later; index rows never depend on it. A crash inside an append can leave a
partial record at the end: readers ignore it and the next append cuts it off first, so records never
shift. A fold writes a new file and renames it over the old one (atomic); a crash before the rename
leaves the old log whole and a temporary file the next fold deletes. A record from the future (a
damaged sector) counts as now.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .faults import fault_point

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)

USES_FILE = "embeddings.uses"  # beside ``embeddings.lance`` in the index's LanceDB directory
KEY_BYTES = 32
RECORD = np.dtype([("key", f"S{KEY_BYTES}"), ("ms", "<i8")])
TEMP_SUFFIX = ".fold"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class UseLog:
    """The append-only file of (text hash, use time) records of one embedding cache."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def records(self) -> int:
        try:
            return self.path.stat().st_size // RECORD.itemsize
        except OSError:
            return 0

    def append(self, keys: Iterable[str], stamp: int) -> None:
        """Record that ``keys`` were used at ``stamp``. Never raises: a lost mark only ages a vector."""
        encoded = [key.encode("utf-8") for key in keys]
        encoded = [key for key in encoded if 0 < len(key) <= KEY_BYTES]  # longer keys: their row's time only
        if not encoded:
            return
        data = memoryview(_records(encoded, stamp))
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as exc:
            log.debug("embedding cache: use marks not recorded: %s", exc)
            return
        try:
            torn = os.fstat(fd).st_size % RECORD.itemsize
            if torn:  # a crash inside an earlier append: cut its partial record, or every later one shifts
                os.ftruncate(fd, os.fstat(fd).st_size - torn)
            while data:
                written = os.write(fd, data)
                data = data[written:]
        except OSError as exc:
            log.debug("embedding cache: use marks not recorded: %s", exc)
        finally:
            os.close(fd)

    def read(self) -> pa.Table:
        """The latest use of each hash recorded: columns ``text_hash`` (string) and ``used_ms`` (int64)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        try:
            raw = self.path.read_bytes()
        except OSError:
            raw = b""
        records = np.frombuffer(raw, dtype=RECORD, count=len(raw) // RECORD.itemsize)
        keys = pa.array(records["key"], pa.binary()).cast(pa.string(), safe=False)  # NUL padding dropped by numpy
        stamps = np.minimum(records["ms"], now_ms())  # a damaged record from the future counts as now
        table = pa.table({"text_hash": keys, "used_ms": pa.array(stamps, pa.int64())})
        table = table.filter(pc.greater(pc.binary_length(table["text_hash"]), 0))
        latest = table.group_by("text_hash").aggregate([("used_ms", "max")])
        return latest.rename_columns(["text_hash", "used_ms"])

    def rewrite(self, table: pa.Table) -> None:
        """Replace the log by ``table``'s records (``text_hash``, ``used_ms``) in one rename."""
        keys = [key.encode("utf-8") for key in table["text_hash"].to_pylist()]
        temp = self.path.with_name(self.path.name + TEMP_SUFFIX)
        with open(temp, "wb") as out:
            out.write(_records(keys, table["used_ms"].to_numpy()))
            out.flush()
            os.fsync(out.fileno())
        fault_point("uses.fold")  # the new log written, the old one still in place
        os.replace(temp, self.path)

    def discard_temp(self) -> None:
        """A fold's leftover of a crash before its rename."""
        self.path.with_name(self.path.name + TEMP_SUFFIX).unlink(missing_ok=True)


def _records(keys: list[bytes], stamps: int | np.ndarray) -> bytes:
    """The file's bytes for these keys (each at most ``KEY_BYTES``) used at ``stamps`` (one, or one each)."""
    records = np.empty(len(keys), dtype=RECORD)
    records["key"] = keys
    records["ms"] = stamps
    return records.tobytes()


def effective_times(stored: pa.Table, uses: pa.Table) -> pa.Table:
    """``stored`` (``text_hash``, ``last_used``: the table's rows) with ``last_used`` raised to each hash's
    latest recorded use; one row per stored row, in no particular order."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not uses.num_rows:
        return stored.select(["text_hash", "last_used"])
    joined = stored.select(["text_hash", "last_used"]).join(uses, "text_hash", join_type="left outer")
    later = pc.max_element_wise(joined["last_used"], pc.fill_null(joined["used_ms"], 0))
    return pa.table({"text_hash": joined["text_hash"], "last_used": later.cast(pa.int64())})


def fold(stored: pa.Table, log_file: UseLog) -> int:
    """Rewrite the log to what still matters against ``stored`` (the table's ``text_hash``, ``last_used``):
    one record per hash still stored and used after it was stored. Returns the records kept."""
    import pyarrow.compute as pc

    log_file.discard_temp()
    if not log_file.records():
        return 0
    uses = log_file.read()
    joined = uses.join(stored.select(["text_hash", "last_used"]), "text_hash", join_type="inner")
    kept = joined.filter(pc.greater(joined["used_ms"], joined["last_used"])).select(["text_hash", "used_ms"])
    log_file.rewrite(kept)
    return int(kept.num_rows)
