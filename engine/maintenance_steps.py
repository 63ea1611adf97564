"""The steps of a large index's maintenance and the order they run in (``ChunkStore.maintenance_steps``).

Shared by the store (each step in a child, beside the process that wrote the index) and the CLI's
hand-off (``engine.maintenance --chain``: the same steps after that process has gone); standard
library only, so the hand-off's process stays small.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Step:
    """One maintenance operation of ``ChunkStore.maintenance_steps``."""

    operation: str
    params: dict[str, Any] = field(default_factory=dict)
    rebuild: bool = False  # an index built anew: if it fails, the compaction folds the rows in as a delta


def run_steps(steps: Sequence[Step], child: Callable[[Step], bool], here: Callable[[Step], None]) -> None:
    """Each step in a child (``child`` False: it could not). A failed rebuild skips the other rebuilds
    (nothing is lost, the compaction below folds the rows in, with more memory); a compaction whose
    child failed runs ``here``."""
    rebuilding = True
    for step in steps:
        if step.rebuild:
            if rebuilding and not child(step):
                rebuilding = False
        elif not child(step):
            here(step)
