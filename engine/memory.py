"""Memory-pressure adaptation: shrink embedding batches and the in-memory cache when memory is short.

Levels come from psutil: the system's available memory and, when a limit is configured, this
process's RSS. The indexer asks before every batch, so it reacts within one batch.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


READING_MAX_AGE = 0.25  # seconds a memory reading is reused


class Pressure(enum.IntEnum):
    NORMAL = 0
    ELEVATED = 1  # shrink batches and the cache by half
    CRITICAL = 2  # one small batch at a time, no in-memory cache


@dataclass(frozen=True, slots=True)
class MemoryReading:
    available_mb: float
    percent_used: float
    rss_mb: float
    pressure: Pressure


class MemoryMonitor:
    def __init__(self, limit_mb: int = 0, *, elevated_percent: float = 85.0, critical_percent: float = 93.0) -> None:
        self.limit_mb = limit_mb
        self.elevated_percent = elevated_percent
        self.critical_percent = critical_percent
        self._last = Pressure.NORMAL
        self._reading: tuple[float, MemoryReading] | None = None

    def read(self, *, max_age: float = READING_MAX_AGE) -> MemoryReading:
        """The current reading; one taken less than ``max_age`` seconds ago is reused.

        The indexer asks once per file: at 13,600 unchanged files, fresh psutil readings took 2.3 s
        of a 4.8 s restart. Memory does not change faster than a quarter second matters.
        """
        now = time.monotonic()
        if self._reading is not None and now - self._reading[0] < max_age:
            return self._reading[1]
        reading = self._read()
        self._reading = (now, reading)
        return reading

    def _read(self) -> MemoryReading:
        import psutil

        vm = psutil.virtual_memory()
        rss_mb = psutil.Process().memory_info().rss / 2**20
        pressure = Pressure.NORMAL
        if vm.percent >= self.critical_percent or vm.available < 256 * 2**20:
            pressure = Pressure.CRITICAL
        elif vm.percent >= self.elevated_percent:
            pressure = Pressure.ELEVATED
        if self.limit_mb:
            if rss_mb >= self.limit_mb:
                pressure = max(pressure, Pressure.CRITICAL)
            elif rss_mb >= 0.8 * self.limit_mb:
                pressure = max(pressure, Pressure.ELEVATED)
        if pressure != self._last:
            log.warning(
                "memory pressure %s (available %.0f MB, rss %.0f MB)",
                pressure.name.lower(),
                vm.available / 2**20,
                rss_mb,
            )
            self._last = pressure
        return MemoryReading(vm.available / 2**20, vm.percent, rss_mb, pressure)

    def batch_size(self, base: int) -> int:
        pressure = self.read().pressure
        if pressure is Pressure.CRITICAL:
            return max(1, base // 8)
        if pressure is Pressure.ELEVATED:
            return max(1, base // 2)
        return base

    def pending_limit(self, base: int) -> int:
        """How many chunks may wait in memory before they are written (the write batch)."""
        return self.batch_size(base)


# ----------------------------------------------------------------------------- the C allocator
# LanceDB (Rust, tokio) and Arrow allocate from many threads. glibc gives each contending thread an arena
# of its own (up to 8 per core) and keeps every arena's high-water mark, so the RSS of an indexing process
# climbed with the table it wrote (1 GB at 13,000 files / 160K chunks in phase 1, of which ~600 MB
# anonymous memory already freed). Two arenas and a trim after each write batch return that memory.
_M_ARENA_MAX = -8  # mallopt parameters (malloc.h)
_M_MMAP_THRESHOLD = -3
_ARENA_MAX = 2
# glibc's mmap threshold starts at 128 KB and rises to the size of each mmapped block freed (up to 32 MB), so
# after LanceDB's first large reads its buffers of up to 32 MB came from the heaps, whose free holes stay
# resident. A fixed threshold keeps every block of this size or more a mapping of its own, unmapped when
# freed: -20-25 MB of a 179K-chunk server after queries and saves (BENCHMARKS.md, "rss8 (session 8)").
MMAP_THRESHOLD = 256 << 10
_libc: object | None = None
_libc_checked = False


def _glibc() -> object | None:
    global _libc, _libc_checked
    if not _libc_checked:
        _libc_checked = True
        import ctypes
        import sys

        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL("libc.so.6")
                libc.gnu_get_libc_version  # noqa: B018 - glibc only (musl has no arenas to limit)
                _libc = libc
            except (OSError, AttributeError):
                _libc = None
    return _libc


def limit_malloc_arenas() -> None:
    """Cap glibc's malloc arenas and fix its mmap threshold (call before native libraries start their
    threads); no-op elsewhere. A user's own ``MALLOC_ARENA_MAX`` / ``MALLOC_MMAP_THRESHOLD_`` wins:
    glibc read it at start and this leaves that setting alone."""
    import os

    libc = _glibc()
    if libc is None:
        return
    if "MALLOC_ARENA_MAX" not in os.environ:
        libc.mallopt(_M_ARENA_MAX, _ARENA_MAX)  # type: ignore[attr-defined]
    if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)  # type: ignore[attr-defined]


# Arrow's default pool is mimalloc, whose pages freed by LanceDB's reader threads stayed resident in its
# 1 GiB arena (~45 MB of a serving process after 30 queries, 0-7 MB of it allocated) and out of reach of
# ``malloc_trim``. With the system pool, Arrow's buffers come from glibc like LanceDB's own (Rust's
# global allocator): one allocator, trimmed together (BENCHMARKS.md, "memory6 (session 6)").
ARROW_POOL_ENV = "ARROW_DEFAULT_MEMORY_POOL"


def use_system_arrow_pool() -> None:
    """Make glibc's malloc Arrow's default pool; a user's own ``ARROW_DEFAULT_MEMORY_POOL`` wins.

    Arrow C++ reads the variable once, at its first allocation, so it is set before then (before
    pyarrow is imported, in practice); child processes (the maintenance child) inherit it. Should
    something have allocated through pyarrow before, its pyarrow-level default is switched too.
    """
    import os

    if os.environ.get(ARROW_POOL_ENV):
        return
    os.environ[ARROW_POOL_ENV] = "system"
    import pyarrow as pa

    if pa.default_memory_pool().backend_name != "system":
        pa.set_memory_pool(pa.system_memory_pool())


def prepare_native_memory() -> None:
    """Before LanceDB and Arrow start allocating: cap glibc's arenas, Arrow on the system pool."""
    limit_malloc_arenas()
    use_system_arrow_pool()


def trim_malloc() -> None:
    """Give memory freed by native code back to the system (glibc ``malloc_trim``); no-op elsewhere."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)  # type: ignore[attr-defined]


# ----------------------------------------------------------------------------- file-backed pages
# A process's RSS also counts the pages of the files it maps that it has touched: in a 179K-chunk server
# 73-82 MB of LanceDB's own code (``_lancedb.abi3.so``: table opening, writes, index builds, run once or
# seldom) and ~40 MB of Arrow's and the other libraries'; in a model worker the whole GGUF file, which
# llama.cpp reads in at load although a query touches only its layers and a few rows of the token table.
# Those pages are copies of files in the page cache. ``MADV_DONTNEED`` takes them out of this process's
# page tables, the page cache keeps them, and a later touch maps them back (a minor fault, no I/O), so
# what stays resident is what is in use. ``MADV_PAGEOUT`` was measured first: it evicts the pages from
# the page cache as well, and every save then read LanceDB's write path back from disk (update 70 ->
# 175 ms). Only mappings with no private (copy-on-write) page qualify: dropping one of those would put
# the file's bytes back over what the dynamic linker wrote there (a library's relocated data).
_MADV_DONTNEED = 4


def _releasable(maps: str, select: Callable[[str], bool] | None) -> list[tuple[int, int]]:
    """The address ranges of read-only file mappings without private pages, from ``/proc/self/smaps``."""
    ranges: list[tuple[int, int]] = []
    current: tuple[int, int] | None = None
    for line in maps.splitlines():
        head = line.split(maxsplit=5)
        if head and "-" in head[0] and len(head) >= 5 and not head[0].endswith(":"):
            current = None
            if len(head) < 6 or "w" in head[1] or head[4] == "0":
                continue  # writable (its pages may be this process's own), or not a file
            path = head[5]
            if not path.startswith("/") or path.endswith("(deleted)") or (select is not None and not select(path)):
                continue
            start, end = (int(part, 16) for part in head[0].split("-"))
            current = (start, end)
        elif current is not None and line.startswith("Anonymous:"):
            if int(line.split()[1]) == 0:
                ranges.append(current)
            current = None
    return ranges


def release_file_pages(select: Callable[[str], bool] | None = None) -> int:
    """Take this process's resident pages of read-only file mappings out of its RSS (``select(path)``:
    which files; default every one); returns the bytes of the mappings released. Linux only, else 0.

    Never loses data: such a mapping's pages are the file's own, mapped back from the page cache."""
    import ctypes

    libc = _glibc()
    if libc is None:
        return 0
    try:
        smaps = Path("/proc/self/smaps").read_text()
    except OSError:
        return 0
    madvise = libc.madvise  # type: ignore[attr-defined]
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    released = 0
    for start, end in _releasable(smaps, select):
        if madvise(start, end - start, _MADV_DONTNEED) == 0:
            released += end - start
    return released


_last_release = float("-inf")


def release_native_memory(min_interval: float = 0.0) -> None:
    """``trim_malloc``, and ``release_file_pages`` unless this process released them less than
    ``min_interval`` seconds ago: a path that runs often (a save) would map its own code back each time."""
    global _last_release
    trim_malloc()
    now = time.monotonic()
    if now - _last_release >= min_interval:
        _last_release = now
        release_file_pages()
