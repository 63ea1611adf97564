"""Two file-system habits of LanceDB that stall a save's commit on a busy disk, turned off in servers.

A save is searchable once its chunk commit lands (a ``merge_insert``, ~20 ms). On a 179K-chunk index
over LSP a few saves in 25 took 200-1,600 ms instead, all of it inside LanceDB's commits with ~0 CPU:
waiting on ext4 while another process's writes were being flushed (BENCHMARKS.md "saves7 (session 7)").
Two system calls of each commit wait there, every other one (new data, deletion, transaction and
manifest files, written and renamed to fresh names) takes well under a millisecond even then:

- ``_versions/latest_version_hint.json`` is rewritten by every commit of every table, by a rename over
  the old file. ext4 (``auto_da_alloc``, the default) starts writing a file renamed over another out at
  once, so the rename queues behind whatever the disk is flushing: 100-400 ms, and up to 2.9 s, measured
  with ``strace`` beside a 1.9 GB copy. The hint is an optimisation for object stores whose listing is
  unordered; on a local disk a reader finds the latest version from the directory the same way, as fast
  (0.3-0.5 ms per version check, with or without it). ``LANCE_USE_VERSION_HINT=0`` stops writing and
  reading it. A reader that still uses a stale hint (another semcode, older) probes forward from it, and
  one that names a cleaned-up version falls back to the listing: checked, it sees the latest version.
- ``merge_insert`` creates and removes an (empty) temporary directory in ``$TMPDIR`` per call (its
  source buffer for conflict retries, on disk past 100 MB, which a save's few rows never reach).
  Removing a directory takes an ext4 journal handle, which waits for the journal's commit of the other
  process's flushed data: up to 1.4 s. On a tmpfs it waits for nothing. The server's ``TMPDIR`` points
  at a private directory under ``/dev/shm`` (Linux, a tmpfs with room, no ``TMPDIR`` of the user's);
  children get the user's ``TMPDIR`` back (``child_environment``): the maintenance child's vector index
  build spills its shuffle (every vector, ~275 MB at 179K chunks) there, and that belongs on disk.
  What else the server itself spills there is an in-process vector index build or compaction, only of
  an index under the maintenance child's 50K rows (its vectors' shuffle: ~75 MB at 384 dimensions).

Both are set once, before LanceDB runs anything (environment variables are not safe to change while
native threads may read them), by the long-running servers whose users wait for a save: the language
server and the MCP server. A user's own setting of either variable wins.
"""

from __future__ import annotations

import logging
import os
import stat
import sys
from pathlib import Path

log = logging.getLogger(__name__)

VERSION_HINT_ENV = "LANCE_USE_VERSION_HINT"
SHM = Path("/dev/shm")
SHM_MIN_FREE = 512 * 1024 * 1024  # bytes free on the tmpfs, or the disk's temporary directory is kept
_ORIGINAL_TMPDIR_ENV = "SEMCODE_ORIGINAL_TMPDIR"  # what children get back ("" = it was unset)


def prepare_interactive_writes() -> str | None:
    """Turn both habits off for this process (see the module doc). Returns the scratch directory now in
    ``TMPDIR``, or None when it was left as it was. Never fails."""
    os.environ.setdefault(VERSION_HINT_ENV, "0")
    if "TMPDIR" in os.environ or _ORIGINAL_TMPDIR_ENV in os.environ:
        return None
    scratch = _scratch_dir()
    if scratch is None:
        return None
    os.environ[_ORIGINAL_TMPDIR_ENV] = ""
    os.environ["TMPDIR"] = str(scratch)
    log.debug("LanceDB's temporary directories go to %s", scratch)
    return str(scratch)


def child_environment(env: dict[str, str]) -> dict[str, str]:
    """``env`` (a copy of this process's environment) with the user's own ``TMPDIR`` back, for a child."""
    original = env.pop(_ORIGINAL_TMPDIR_ENV, None)
    if original is not None:
        if original:
            env["TMPDIR"] = original
        else:
            env.pop("TMPDIR", None)
    return env


def _scratch_dir() -> Path | None:
    """A directory of this user's own on a tmpfs with room (``/dev/shm/semcode-<uid>``), or None."""
    if not sys.platform.startswith("linux") or not _is_tmpfs(SHM):
        return None
    try:
        free = os.statvfs(SHM)
        if free.f_bavail * free.f_frsize < SHM_MIN_FREE:
            return None
        path = SHM / f"semcode-{os.getuid()}"
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:
            pass
        info = path.lstat()  # not a symlink, ours, private: /dev/shm is writable by everyone
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
            return None
        if not os.access(path, os.W_OK | os.X_OK):
            return None
        return path
    except OSError:
        return None


def _is_tmpfs(path: Path) -> bool:
    try:
        mounts = Path("/proc/self/mounts").read_text()
    except OSError:
        return False
    types = [f[2] for f in (line.split() for line in mounts.splitlines()) if len(f) >= 3 and f[1] == str(path)]
    return bool(types) and types[-1] == "tmpfs"  # the last mount on a path is the one seen there
