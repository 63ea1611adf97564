"""The seal: a note that the chunk rows and the manifest agreed at two table versions (issue 11, restart).

Every index run starts by finding the files whose chunk rows disagree with their manifest entry
(``store.inconsistent``), the trace a crash between a batch's chunk commit and its manifest commit
leaves: at 179K rows that is a scan of every row's path and file hash, 0.15-0.22 s of a 2 s restart.
A seal lets a restart skip it: it records the versions of the chunk and manifest tables at which a
full check found them in agreement, and the counts it saw. A later start that finds both tables at
exactly those versions, the manifest with that many entries and chunks and the chunk table with that
many rows, knows the rows are the manifest's without reading them.

Why a crash at any instant still heals:

- Any change to either table is a LanceDB commit, which gives that table a new version: a crash after
  a chunk commit and before its manifest commit leaves the chunk table at a version the seal does not
  name, so the next start scans as before. Nothing is ever written "under" a seal.
- The seal is written only by ``ChunkStore.seal``, holding the write lock, after checking the rows
  against the manifest itself (not by reasoning about the writes since), and only when they agree.
- It is one small file replaced atomically (written aside, then renamed): a crash leaves the old seal,
  the new one, or a stray temporary file that nothing reads, and a torn or unreadable seal is no seal.
- It lives inside the ``lance`` directory, so a rebuild, which moves that directory aside in one rename
  and creates new tables whose versions start again at 1, takes the seal away with the old tables: new
  tables never inherit a seal that names their version numbers.

The language server seals at exit (``IndexHost.seal``): the check costs about what the restart saves,
but at a moment nobody waits for.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger(__name__)

SEAL_FILE = "semcode-consistent.json"  # in the lance directory (module doc)


@dataclass(frozen=True, slots=True)
class Seal:
    """The state a full check found the rows and the manifest agreeing in."""

    chunks_version: int
    files_version: int
    entries: int  # manifest entries
    chunks: int  # the manifest's chunk counts summed, which equalled the chunk table's rows


def read_seal(lance_dir: Path) -> Seal | None:
    """The seal in ``lance_dir``; None when there is none or it cannot be read (then it is no seal)."""
    try:
        raw = json.loads((lance_dir / SEAL_FILE).read_text())
        seal = Seal(**raw) if isinstance(raw, dict) else None
    except (OSError, ValueError, TypeError):
        return None
    if seal is None or not all(isinstance(v, int) and not isinstance(v, bool) for v in asdict(seal).values()):
        return None
    return seal


def write_seal(lance_dir: Path, seal: Seal) -> None:
    """Replace the seal atomically: written under a private name, then renamed over the old one."""
    target = lance_dir / SEAL_FILE
    tmp = lance_dir / f".{SEAL_FILE}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        tmp.write_text(json.dumps(asdict(seal)))
        os.replace(tmp, target)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
