"""Memory-pressure adaptation: shrink embedding batches and the in-memory cache when memory is short.

Levels come from psutil: the system's available memory and, when a limit is configured, this
process's RSS. The indexer asks before every batch, so it reacts within one batch.
"""

from __future__ import annotations

import enum
import logging
import time
from dataclasses import dataclass

log = logging.getLogger(__name__)


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


# A reading is reused this long: the indexer asks once per file, and psutil's reads of /proc cost
# ~0.3-3 ms each (13% of phase 1 on a loaded machine, cProfile); memory does not change that fast.
READING_TTL_S = 0.25


class MemoryMonitor:
    def __init__(self, limit_mb: int = 0, *, elevated_percent: float = 85.0, critical_percent: float = 93.0) -> None:
        self.limit_mb = limit_mb
        self.elevated_percent = elevated_percent
        self.critical_percent = critical_percent
        self._last = Pressure.NORMAL
        self._reading: tuple[float, MemoryReading] | None = None

    def read(self) -> MemoryReading:
        cached = self._reading
        now = time.monotonic()
        if cached is not None and now - cached[0] < READING_TTL_S:
            return cached[1]
        reading = self._measure()
        self._reading = (now, reading)
        return reading

    def _measure(self) -> MemoryReading:
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
