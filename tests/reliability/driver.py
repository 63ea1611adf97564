"""The indexing process of the torture tests: load the model, say READY, index, say DONE.

``index_worker`` runs in a process forked from a forkserver that has already imported lancedb,
pyarrow and llama.cpp (3 to 4 s per process otherwise), so each kill point costs a model load and
the indexing itself. As a script it does the same from scratch:

    python driver.py ROOT INDEX_DIR [--batch N] [--model PATH] [--full] [--search QUERY] [--nowait]

Exit codes: 0 done, 3 the index was locked by another writer (``nowait``), 137 a fault point.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

LOCKED_EXIT = 3
PRELOAD = ["numpy", "pyarrow", "lancedb", "llama_cpp", "engine.workspace", "engine.indexer"]


def index_worker(
    root: str,
    index_dir: str,
    *,
    batch: int = 0,
    model: str | None = None,
    full: bool = False,
    search: str | None = None,
    nowait: bool = False,
    repair: bool = False,
    fault: str | None = None,
    cache_vectors: int = 0,
    update: bool = False,
    child_maintenance: bool = False,
    report: Any = None,
) -> int:
    """Index ``root`` into ``index_dir``; ``report`` (a queue or None for stdout) gets READY and DONE."""
    import engine.indexer
    from engine import faults
    from engine.config import EngineConfig
    from engine.errors import IndexLockedError
    from engine.workspace import Workspace

    def say(message: str) -> None:
        if report is None:
            print(message, flush=True)
        else:
            report.put(message)

    # The model in this process: a kill -9 then stops everything at once (no model worker left behind).
    os.environ["SEMCODE_INPROCESS_MODEL"] = "1"
    faults.configure(fault)
    if child_maintenance:  # index builds and compaction in a child process, whatever the index's size
        import engine.store

        engine.store.MAINTENANCE_CHILD_MIN_ROWS = 0
    if batch:
        engine.indexer.WRITE_BATCH_CHUNKS = batch
        engine.indexer.LEXICAL_WRITE_CHUNKS = batch  # phase 1's larger batches too: many commits to stop at
        engine.indexer.FIRST_LEXICAL_WRITE_CHUNKS = batch  # and its first write (64 chunks: the whole workspace)
    settings: dict[str, Any] = {"index_dir": index_dir, "threads": 1}
    if model:
        settings["model"] = model
    if cache_vectors:  # a tiny embedding-cache bound: every write evicts
        settings["embedding_cache_vectors"] = cache_vectors
    ws = Workspace(Path(root), EngineConfig.from_dict(settings))
    ws.open()  # load the model and open the index before saying READY
    say("READY")
    started = time.perf_counter()
    if repair:
        checked = ws.check(repair=True)
        say("DONE " + json.dumps({"repaired": checked.repaired}))
        return 0
    try:
        if update:  # what saves do: re-index listed paths (every file indexed or present), not a walk
            listed = {p.relative_to(root).as_posix() for p in Path(root).rglob("*") if p.is_file()}
            stats = ws.update_files(sorted(listed | set(ws.indexed_paths())), wait_for_lock=not nowait)
        else:
            stats = ws.index(full=full, wait_for_lock=not nowait)
    except IndexLockedError:
        say("LOCKED")
        return LOCKED_EXIT
    out: dict[str, Any] = {"seconds": time.perf_counter() - started, "files_indexed": stats.files_indexed}
    if search:
        out["hits"] = [h.path for h in ws.search(search, limit=3)]
    say("DONE " + json.dumps(out))
    return 0


def worker_main(kwargs: dict[str, Any]) -> None:
    """Process target: exit with index_worker's code (os._exit: no atexit work in a forked child)."""
    import os

    code = 1
    try:
        code = index_worker(**kwargs)
    finally:
        channel = kwargs.get("report")
        if channel is not None:  # let the queue's feeder thread deliver DONE before the hard exit
            channel.close()
            channel.join_thread()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("root")
    parser.add_argument("index_dir")
    parser.add_argument("--batch", type=int, default=0)
    parser.add_argument("--model")
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--search")
    parser.add_argument("--nowait", action="store_true")
    args = parser.parse_args()
    return index_worker(
        args.root,
        args.index_dir,
        batch=args.batch,
        model=args.model,
        full=args.full,
        search=args.search,
        nowait=args.nowait,
    )


if __name__ == "__main__":
    sys.exit(main())
