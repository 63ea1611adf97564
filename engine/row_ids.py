"""Row ids for replacing a file's chunk rows in one cheap, atomic commit.

Replacing a file's rows must be one commit (a reader sees the old rows or the new ones, never both or
neither). LanceDB's ``merge_insert`` with a "not matched by source" delete does that, but it scans and
joins the whole chunk table: ~0.5 s at 178K rows for a one-file save. A ``merge_insert`` keyed on ``id``
without that clause joins through the ``id`` scalar index in milliseconds, but deletes nothing. So each
old row whose id the new version does not produce is taken over by a new chunk whose id is new (an
update of that row, in the same commit): when a file has at least as many new-id chunks as vanished
ids, every old row is matched and the commit is an update-and-insert. A file that shrank has rows
that must go (``plan_ids``): they are blanked in that commit and deleted by id in the next.

Ids are the path and the chunk's ordinal (``store.chunk_id``), so a file that grew or kept its size
reuses its own ids and nothing is taken over; taking over is for rows of an older id scheme. Taking over
an id is safe because nothing derives meaning from a row's id beyond uniqueness within the
table: the dense tier updates a row only when its id *and* text hash still match (``set_vectors``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def take_over_ids(paths: Sequence[str], ids: Sequence[str], old: Mapping[str, set[str]]) -> list[str] | None:
    """Ids for the new rows (``paths[i]``, natural id ``ids[i]``) so that every old row is overwritten.

    ``old``: each written path's current row ids. None when some file has more vanished rows than
    new-id chunks (it shrank): see ``plan_ids`` for what then becomes of the surplus.
    """
    taken, surplus = plan_ids(paths, ids, old)
    return None if surplus else taken


def plan_ids(paths: Sequence[str], ids: Sequence[str], old: Mapping[str, set[str]]) -> tuple[list[str], list[str]]:
    """``take_over_ids``, and the old ids no new row takes over (a file that shrank), sorted.

    The surplus rows are overwritten in the same commit by rows no search can find (``store.VANISHED_PATH``)
    and deleted by id right after: a file still changes in one commit, and neither commit joins the whole
    table (the merge with a "not matched by source" delete took 1.5 s and +350 MB at 179K rows).
    """
    natural: dict[str, set[str]] = {}
    for path, row_id in zip(paths, ids, strict=True):
        natural.setdefault(path, set()).add(row_id)
    vanished: dict[str, list[str]] = {}
    for path, held in old.items():
        gone = sorted(held - natural.get(path, set()))
        if gone:
            vanished[path] = gone
    out = list(ids)
    for i, (path, row_id) in enumerate(zip(paths, ids, strict=True)):
        spare = vanished.get(path)
        if spare and row_id not in old.get(path, ()):
            out[i] = spare.pop()
    return out, sorted(row_id for gone in vanished.values() for row_id in gone)
