"""The language server with a timestamp (seconds since the process started) around each step of its start.

For ``bench_scale.py serve --server-script bench/timed_server.py``: lines ``TIMING <s> cpu <s> [thread] > step`` and
``TIMING <s> cpu <s> [thread] < step <took>s`` on stderr (BENCHMARKS.md, "restart7 (session 7)"). Profiling only:
it wraps engine functions in place; a step the tree under test does not have is left out.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
import threading
import time
from typing import Any


def _process_start() -> float:
    """This process's start (wall clock), from /proc: the interpreter's own start-up counts too."""
    with open("/proc/self/stat") as f:
        ticks = int(f.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/uptime") as f:
        uptime = float(f.read().split()[0])
    return time.time() - (uptime - ticks / os.sysconf("SC_CLK_TCK"))


START = _process_start()


def stamp(message: str) -> None:
    """Wall seconds since the process started, then this process's CPU seconds so far (every thread)."""
    now, cpu = time.time() - START, time.process_time()
    sys.stderr.write(f"TIMING {now:7.3f} cpu {cpu:6.3f} [{threading.current_thread().name}] {message}\n")


def wrap(module: str, owner: str | None, name: str) -> None:
    try:
        target: Any = importlib.import_module(module)
        if owner:
            target = getattr(target, owner)
        fn = getattr(target, name)
    except (ImportError, AttributeError):
        return
    label = f"{owner or module}.{name}"

    @functools.wraps(fn)
    def timed(*args: Any, **kwargs: Any) -> Any:
        began = time.time()
        stamp(f"> {label}")
        try:
            return fn(*args, **kwargs)
        finally:
            stamp(f"< {label} {time.time() - began:.3f}s")

    setattr(target, name, timed)


STEPS = [
    ("engine.workspace", None, "shared_embedder"),
    ("engine.workspace", None, "_import_store_modules"),
    ("engine.workspace", "_Prewalk", "_run"),
    ("engine.walk_child", None, "walk_in_child"),
    ("engine.workspace", "Workspace", "open"),
    ("engine.workspace", "Workspace", "index"),
    ("engine.workspace", "Workspace", "warm"),
    ("engine.workspace", "Workspace", "_take_prewalk"),
    ("engine.store", "ChunkStore", "__init__"),
    ("engine.store", "ChunkStore", "manifest"),
    ("engine.store", "ChunkStore", "path_rows"),
    ("engine.store", "ChunkStore", "ensure_indexes"),
    ("engine.store", "ChunkStore", "touch_files"),
    ("engine.indexer", "Indexer", "index_all"),
    ("engine.indexer", "Indexer", "_index_walked"),
    ("engine.indexer", "Indexer", "_run"),
    ("engine.host", "IndexHost", "_finish"),
    ("engine.models.worker", "_Slot", "_spawn"),
    ("engine.models.worker", "WorkerEmbedder", "_vocabulary"),
    ("lsp_server.features.lifecycle", None, "initialize"),
]


def main() -> int:
    stamp("script start")
    importlib.import_module("lsp_server.app")
    stamp("imported lsp_server.app")
    for step in STEPS:
        wrap(*step)
    from lsp_server.__main__ import main as serve

    return serve()


if __name__ == "__main__":
    sys.exit(main())
