"""The name table's index of versions (engine/names.py): a query never starts a rebuild for a save whose
patch landed while it was looking (the table alone, no LanceDB: what ``NameIndex`` decides)."""

from __future__ import annotations

import threading
from typing import Any

import pyarrow as pa

from engine.names import NameIndex, NameTable


def _rows(symbol: str, fragment: int) -> pa.Table:
    return pa.table(
        {
            "id": ["x0"],
            "path": ["pkg/x.py"],
            "symbol": [symbol],
            "kind": ["function"],
            "language": ["python"],
            "_rowid": pa.array([fragment << 32], pa.uint64()),
        }
    )


class _LockLettingAPatchIn:
    """A lock whose next acquire first lets another step run (a save's patch landing in between)."""

    def __init__(self) -> None:
        self.real = threading.Lock()
        self.before_next: Any = None

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        step, self.before_next = self.before_next, None
        if step is not None:
            step()
        return self.real.acquire(blocking, timeout)

    def release(self) -> None:
        self.real.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def test_a_query_that_reads_the_version_a_patch_is_landing_takes_the_patched_table() -> None:
    builds: list[int] = []

    def load() -> tuple[int, pa.Table]:
        builds.append(1)
        return 2, _rows("after", 1)

    index = NameIndex(load)
    index._table = NameTable(1, _rows("before", 0))
    lock = _LockLettingAPatchIn()
    index._lock = lock  # type: ignore[assignment]
    index._patched = threading.Condition(lock)  # type: ignore[arg-type]

    def save() -> None:  # our write 1 -> 2 commits, patches the table and ends, all before the query's lock
        with index.writing(1):
            assert index.patch(1, 2, ["pkg/x.py"], lambda: _rows("after", 1), lambda: 1)

    lock.before_next = save
    table = index.current(2)  # the query read table 1 first, then the save landed
    assert table is not None and table.version == 2 and table.defining(["after"]) == [1]
    assert not builds and not index._building  # no rebuild started for a version the patch already had
