"""MemoryMonitor reuses a fresh reading: the indexer asks once per file, psutil is not free."""

from __future__ import annotations

from engine.memory import MemoryMonitor


def test_a_recent_reading_is_reused_and_an_old_one_is_not() -> None:
    monitor = MemoryMonitor()
    calls = []
    real = monitor._read

    def counting():
        calls.append(1)
        return real()

    monitor._read = counting  # type: ignore[method-assign]
    first = monitor.read(max_age=3600)
    for _ in range(1000):
        assert monitor.read(max_age=3600) is first
    assert len(calls) == 1
    assert monitor.read(max_age=0) is not first
    assert len(calls) == 2
