"""The chunk table's compaction through Lance's own Python API, at a fraction of LanceDB's memory.

LanceDB's ``Table.optimize`` compacts with Lance's default options: every fragment decoded and encoded
again, and every index remapped to the new row addresses inside the compaction. At 179K chunk rows that
step is the maintenance child's largest, 370-392 MB (the index remap ~100-200 MB of it). Lance itself can
copy the fragments' pages as they are (``compaction_mode="try_binary_copy"``) and defer the indexes' remap
(``defer_index_remap``: a fragment-reuse index maps the old addresses to the new ones at read time, until
LanceDB's next ``optimize`` remaps the indexes and drops it): 154 MB for the compaction, 218 MB for the
indexes' deltas after it, in 2 s instead of 8, with the same search results row for row (BENCHMARKS.md,
"Lead, session 12"). LanceDB's Python API exposes neither option; pylance, the same Lance, does.

pylance must be the very Lance that LanceDB bundles: the two write the same table, and an older or newer
Lance may write what the other does not read. ``LANCE_OF_LANCEDB`` names the pairs known to match (from
LanceDB's Cargo.lock); any other installation uses LanceDB's ``optimize`` as before.
"""

from __future__ import annotations

import functools
import logging
from datetime import timedelta
from pathlib import Path
from types import ModuleType

log = logging.getLogger(__name__)

# LanceDB release -> the Lance release its Rust library is built with (lancedb's Cargo.lock).
LANCE_OF_LANCEDB = {"0.40.0": "13.0.0"}


@functools.cache
def matching_lance() -> ModuleType | None:
    """pylance, if installed at the version of the Lance inside the installed LanceDB; else None."""
    try:
        import lance
        import lancedb
    except ImportError:
        log.info("pylance is not installed: compacting through LanceDB")
        return None
    wanted = LANCE_OF_LANCEDB.get(lancedb.__version__)
    if wanted is not None and lance.__version__ == wanted:
        return lance
    log.info(
        "pylance %s does not match LanceDB %s (wants %s): compacting through LanceDB",
        lance.__version__,
        lancedb.__version__,
        wanted,
    )
    return None


def compact(table_path: Path, *, cleanup_older_than: timedelta) -> bool:
    """Compact one table, fold its new rows into its indexes and drop old versions, as LanceDB's
    ``optimize`` does, with binary copy and a deferred index remap. False: no matching pylance (the
    caller optimizes through LanceDB); nothing was done then."""
    lance = matching_lance()
    if lance is None:
        return False
    lance.dataset(str(table_path)).optimize.compact_files(compaction_mode="try_binary_copy", defer_index_remap=True)
    dataset = lance.dataset(str(table_path))  # the compacted version, whatever the call left in the old object
    dataset.optimize.optimize_indices()
    dataset.cleanup_old_versions(older_than=cleanup_older_than, delete_unverified=True)
    return True
