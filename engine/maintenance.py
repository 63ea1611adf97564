"""The vector index build and compaction of a large index in a short-lived child process.

Building the IVF index or compacting a 178K-row chunk table takes LanceDB/Arrow ~500 MB of native
memory, of which a long-lived process (the language server) kept ~350 MB afterwards (BENCHMARKS.md
"writes (session 4)"). In a child it goes back to the system when the child exits; the price is the
child's own ~165 MB at that moment, which is why the full-text build (~60-200 MB) stays in process.
The parent holds the index's write lock for the whole run (the child never takes it), so no other
writer interleaves; LanceDB commits are atomic, so a child killed at any point leaves the table at its
previous version or the new one.

A fault point (engine/faults.py) reached in the child ends the child like ``kill -9``; the parent
then ends the same way, so the torture tests see the process die at that boundary, as in-process.
Any other failure of the child is logged and the operation runs in this process instead.

A save goes first (issue 11): the periodic compaction passes ``preempt``, and when it says a save waits
for the write lock the child is killed (``MaintenancePreempted``), so that the save waits ~50 ms instead
of the whole step (one compaction of a 179K-row chunk table: 15.6 s). The killed step's uncommitted
files (~200 MB) are deleted by the next compaction (``store.optimize_tables``).

**The CLI's hand-off** (``hand_off``). ``semcode index`` holds ~320 MB when its run reaches the final
maintenance (LanceDB's code and caches, the interpreter's heap), and its children's peaks (the IVF build:
466 MB at 179K rows) stacked on it: ~780 MB (BENCHMARKS.md, "indexrss7 (session 7)"). Nothing in it is
needed any more, so the CLI prints its summary and ``exec``s this module with the steps still to run:
the same process (the caller still waits for it, its exit status is the command's), holding the same
write lock (the lock file's descriptor is kept open across the exec), but now ~14 MB, since this module
imports only the standard library until a step has to run here. Each step runs in a child as before.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from . import faults
from .children import package_env
from .errors import MaintenancePreempted
from .lance_io import child_environment
from .maintenance_steps import Step, run_steps

log = logging.getLogger(__name__)

CHILD_TIMEOUT = 3600.0  # seconds; an IVF build of a very large index is minutes, never an hour
OPERATIONS = ("ivf", "fts", "optimize")
# Lance's I/O threads bound its scans' read-ahead (fragments in flight: twice the threads). The
# compaction of a 179K-row chunk table peaked at 517-559 MB with the local store's default, 447 MB with
# 2, in the same time (BENCHMARKS.md, "memory6 (session 6)"); a child reads a local disk, and only it.
# Lance's IVF shuffle (the vector index's build, and a delta folded in by a compaction) holds the
# partition-assigned vectors it reads until it has this many bytes, then sorts and spills them to disk;
# its default, 128 MiB, is 87K vectors of 384 dimensions. At 179K rows the k-means sample was the larger
# holder (store.IVF_SAMPLE_RATE: 488 -> 321 MB); 32 MiB bounds the shuffle for larger tables (-3-5 MB
# here, within noise; BENCHMARKS.md, "rss10 (session 10)"). A user's own setting wins.
CHILD_ENV = {"LANCE_IO_THREADS": "2", "LANCE_SHUFFLE_BATCH_BYTES": str(32 << 20)}
PREEMPT_POLL_S = 0.05  # how often a running child asks ``preempt`` whether a save waits


def hand_off(lance_dir: Path, steps: Sequence[Step], lock_fd: int, *, verbose: bool = False) -> None:
    """Replace this process by ``python -m engine.maintenance --chain`` running ``steps`` (never returns).

    ``lock_fd``: the open descriptor of the index's write lock (an ``flock``): inherited across the exec,
    so the lock stays held by this same process until the steps are done. POSIX only."""
    os.set_inheritable(lock_fd, True)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    env = package_env(dict(os.environ))
    command = [
        sys.executable,
        "-m",
        "engine.maintenance",
        "--chain",
        str(lance_dir),
        json.dumps([asdict(step) for step in steps]),
        str(lock_fd),
        "1" if verbose else "0",
    ]
    os.execve(sys.executable, command, env)


def run_chain(lance_dir: Path, steps: Sequence[Step], lock_fd: int) -> int:
    """The hand-off's side: the steps, each in a child; one whose child failed runs here."""
    import fcntl

    try:  # the lock this process held before the exec: the same open file, so this cannot block
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        log.warning("index maintenance skipped: the index's write lock was not handed over (%s)", exc)
        return 0  # the index is complete without it; the next write's compaction catches up
    started = time.perf_counter()

    def here(step: Step) -> None:
        try:
            run(lance_dir, step.operation, step.params)
        except Exception as exc:  # noqa: BLE001 - maintenance never fails the index run
            log.warning("index maintenance (%s) failed: %s", step.operation, exc)

    run_steps(steps, lambda step: in_child(lance_dir, step.operation, step.params), here)
    log.info(
        "index maintenance (%s) done in %.1f s", ", ".join(s.operation for s in steps), time.perf_counter() - started
    )
    os.close(lock_fd)  # the lock released: the seal takes it as any writer does, or finds it taken and skips
    seal_index(lance_dir.parent)
    return 0


def seal_index(index_dir: Path) -> bool:
    """Seal the index the steps left (engine/seal.py), so that the next start of a server skips its check
    of every chunk row (~0.2 s at 179K rows). Opened with its own meta.json's identity: never rebuilds,
    never waits for the lock; False (and nothing written) when anything disagrees."""
    try:
        from .store import ChunkStore

        sealed = ChunkStore.as_recorded(index_dir).seal()
    except Exception as exc:  # noqa: BLE001 - only an optimisation of the next start
        log.info("the index at %s was not sealed: %s", index_dir, exc)
        return False
    log.debug("the index at %s was %ssealed", index_dir, "" if sealed else "not ")
    return sealed


def child_command(lance_dir: Path, operation: str, params: dict[str, Any]) -> list[str]:
    return [sys.executable, "-m", "engine.maintenance", str(lance_dir), operation, json.dumps(params)]


def in_child(
    lance_dir: Path, operation: str, params: dict[str, Any], preempt: Callable[[], bool] | None = None
) -> bool:
    """Run ``operation`` on the index at ``lance_dir`` in a child; False when it could not (run it here).

    ``preempt``: asked while the child runs; True kills it and raises ``MaintenancePreempted``.
    """
    env = package_env(child_environment(dict(os.environ)))  # the user's TMPDIR: the child's index build spills there
    for key, value in CHILD_ENV.items():
        env.setdefault(key, value)
    plan = faults.child_spec()
    if plan is not None:
        env[faults.ENV_VAR] = plan
    command = child_command(lance_dir, operation, params)
    try:
        proc = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("index maintenance (%s) could not run in a child process: %s", operation, exc)
        return False
    deadline = time.monotonic() + CHILD_TIMEOUT
    while True:
        try:
            code = proc.wait(timeout=PREEMPT_POLL_S)
            break
        except subprocess.TimeoutExpired:
            if preempt is not None and preempt():
                proc.kill()  # as safe as a crash of the child at this instant (module doc)
                proc.wait()
                raise MaintenancePreempted(f"index maintenance ({operation}) stopped: a save came first") from None
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                log.warning("index maintenance (%s) in a child process took over %.0f s", operation, CHILD_TIMEOUT)
                return False
    if code == faults.EXIT_CODE and plan is not None:
        os._exit(faults.EXIT_CODE)  # the fault plan fired in the child: this process dies there too
    if code != 0:
        log.warning("index maintenance (%s) in a child process failed (exit %s)", operation, code)
        return False
    return True


def run(lance_dir: Path, operation: str, params: dict[str, Any]) -> None:
    """The operation itself (the child's side): the same steps and fault points as ``ChunkStore``'s."""
    from . import store
    from .memory import release_file_pages

    # What the imports read in (the interpreter's, numpy's, pyarrow's and LanceDB's pages: ~75 MB of a
    # fresh child's ~145) is not what the step runs: the step reads back the code it uses.
    release_file_pages()
    db = store.connect(lance_dir)
    chunks = db.open_table(store.CHUNKS)
    if operation == "ivf":
        chunks.create_index("vector", replace=True, config=store.ivf_config(int(params["partition_rows"])))
    elif operation == "fts":
        faults.fault_point("fts.before")
        chunks.create_index(store.FTS_COLUMN, replace=True, config=store.fts_config())
        faults.fault_point("fts.after")
    elif operation == "optimize":
        names = params.get("tables") or [store.CHUNKS, store.FILES, store.EMBEDDINGS]
        store.optimize_tables(
            [chunks if name == store.CHUNKS else db.open_table(name) for name in names],
            compact=lambda table: table.name == store.CHUNKS and _compact_chunks(lance_dir),
        )
    else:
        raise ValueError(f"unknown index maintenance operation {operation!r}")


def _compact_chunks(lance_dir: Path) -> bool:
    """The chunk table's optimize through pylance (engine/lance_compaction.py); False: not installed, or
    not the Lance of this LanceDB (the caller then optimizes through LanceDB)."""
    from . import store
    from .lance_compaction import compact

    return compact(lance_dir / f"{store.CHUNKS}.lance", cleanup_older_than=store.CLEANUP_AGE)


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--chain":
        lance_dir, plan, lock_fd, verbose = Path(argv[1]), json.loads(argv[2]), int(argv[3]), argv[4] == "1"
        level = logging.INFO if verbose else logging.WARNING
        logging.basicConfig(level=level, stream=sys.stderr, format="semcode maintenance: %(message)s")
        return run_chain(lance_dir, [Step(**step) for step in plan], lock_fd)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="semcode maintenance: %(message)s")
    lance_dir, operation, params = Path(argv[0]), argv[1], json.loads(argv[2])
    run(lance_dir, operation, params)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
