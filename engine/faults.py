"""Fault injection for the crash-torture tests: die like ``kill -9`` at a named commit boundary.

``SEMCODE_FAULT_AT=<boundary>[:N]`` makes the N-th (default first) time this process reaches
``<boundary>`` end with ``os._exit(137)``: no ``finally`` blocks, no flushing, no lock release by
Python, exactly what a SIGKILL or a power cut leaves behind. The variable is read once; when it is
unset each boundary costs one attribute test.

Boundaries (see ``BOUNDARIES``) sit before and after every commit the store makes, so a test can stop
a writer between any two of them.
"""

from __future__ import annotations

import os
import threading

ENV_VAR = "SEMCODE_FAULT_AT"
EXIT_CODE = 137  # what a shell reports for a process killed by SIGKILL

BOUNDARIES: tuple[str, ...] = (
    "cache.before",  # embedding cache merge (new vectors stored, used ones marked used)
    "uses.before",  # inside that: new vectors stored, the use marks of the others not yet appended (cache_uses.py)
    "cache.after",
    "uses.fold",  # the use log's fold (index maintenance): its new file written, not yet renamed over the old
    "evict.before",  # embedding cache over its bound: least recently used rows deleted
    "evict.mid",  # after the first of its deletes by hash (a few thousand each), before the others
    "evict.after",
    "chunks.before",  # chunk rows merge (replace a batch of files)
    "chunks.vanished",  # a shrinking file's rows replaced, its surplus rows blank (store.VANISHED_PATH), not deleted
    "chunks.mid",  # one-file fast path: written files' rows replaced, removed files' rows not yet deleted
    "chunks.after",
    "manifest.before",  # manifest merge for that batch
    "manifest.mid",  # manifest upserted, removed files' entries not yet deleted
    "manifest.after",
    "remove.before",  # remove_files / clear
    "remove.after",
    "touch.before",  # manifest-only update (mtime changed, content did not)
    "touch.after",
    "vectors.before",  # dense tier: placeholder rows take their model vectors
    "vectors.after",
    "fts.before",  # full-text index (re)build
    "fts.after",
    "scalar.before",  # a scalar (B-tree) index on a look-up column: chunks id/path, files path, cache text_hash
    "scalar.after",
    "optimize.before",  # compaction of each table
    "optimize.mid",
    "optimize.after",
    "rebuild.mid",  # old index moved away, new tables not yet created
    "repair.mid",  # check --repair between its deletes
    "derive.mid",  # the BF16 copy of a model (engine/models/derive.py): half its tensors written, not renamed
)


class _Plan:
    __slots__ = ("hits", "lock", "name", "nth")

    def __init__(self, spec: str) -> None:
        name, _, count = spec.partition(":")
        self.name = name.strip()
        try:
            self.nth = max(1, int(count)) if count else 1
        except ValueError:
            self.nth = 1
        self.hits = 0
        self.lock = threading.Lock()


_PLAN: _Plan | None = _Plan(os.environ[ENV_VAR]) if os.environ.get(ENV_VAR) else None


def fault_point(name: str) -> None:
    """A commit boundary: exit abruptly here when ``SEMCODE_FAULT_AT`` names it."""
    if _PLAN is None or _PLAN.name != name:
        return
    with _PLAN.lock:
        _PLAN.hits += 1
        if _PLAN.hits >= _PLAN.nth:
            os._exit(EXIT_CODE)


def configure(spec: str | None) -> None:
    """Set the fault plan in this process (a forked test worker), as ``SEMCODE_FAULT_AT`` would."""
    global _PLAN
    _PLAN = _Plan(spec) if spec else None


def child_spec() -> str | None:
    """The plan for a child process that carries on this one's work (engine/maintenance.py): the same
    boundary, at the hit still to come; None when no plan is set."""
    if _PLAN is None:
        return None
    with _PLAN.lock:
        return f"{_PLAN.name}:{max(1, _PLAN.nth - _PLAN.hits)}"
