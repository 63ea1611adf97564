"""Where a query's time goes inside the language server: per-stage wall and thread-CPU times.

    # as the server of any LSP benchmark (one JSON line per workspace/semanticSearch to $TIMED_LOG):
    TIMED_LOG=/tmp/stages.jsonl python bench/query_stages.py serve
    ../shared/bench/codesearch_bench.py run npm:rxjs@7.8.1 --server-cmd "python bench/query_stages.py serve" ...
    bench/bench_scale.py serve WS --server-script bench/query_stages.py ...   (no argument: serve)
    # then, per stage: calls per query, p50 / p95 / mean wall ms; and the slowest 5% of requests
    python bench/query_stages.py report /tmp/stages.jsonl [...]

Environment: TREE (a source tree to run instead of this one: A/B of two commits with one script),
QTHREADS (the query worker's llama.cpp threads), SWITCH (``sys.setswitchinterval``).
Timers wrap ``ChunkStore`` reads and ``Searcher`` stages; requests are assumed one at a time.
"""

from __future__ import annotations

import functools
import json
import os
import runpy
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

STORE_CALLS = ["vector_search", "text_search", "take_rows", "contents", "rows", "name_table", "pending_count"]
SEARCH_STAGES = ["search", "_lexical", "_lookup", "_dense", "_fuse", "_fill_contents", "_imports"]
SLOW = ["engine.search.query_vector", "Searcher._dense", "Searcher._fuse", "Searcher._lexical", "Searcher._lookup"]


def wrap_timed(owner: Any, name: str, label: str, add: Callable[[str, float], None]) -> None:
    """Replace ``owner.name`` by a wrapper that reports its wall and thread-CPU ms as ``label`` and
    ``label.cpu`` to ``add`` (query_probe.py's timers too)."""
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0, c0 = time.perf_counter(), time.thread_time()
        try:
            return original(*args, **kwargs)
        finally:
            add(label, (time.perf_counter() - t0) * 1000)
            add(label + ".cpu", (time.thread_time() - c0) * 1000)

    setattr(owner, name, wrapper)


def serve() -> None:
    tree = os.environ.get("TREE", str(Path(__file__).resolve().parents[1]))
    sys.path.insert(0, tree)
    sys.argv = ["lsp_server"]
    if os.environ.get("SWITCH"):
        sys.setswitchinterval(float(os.environ["SWITCH"]))
    import engine.search as search
    import engine.store as store

    if os.environ.get("QTHREADS"):
        _query_threads(int(os.environ["QTHREADS"]))
    import lsp_server.features.search as features

    log = open(os.environ.get("TIMED_LOG", "/tmp/query_stages.jsonl"), "a", buffering=1)  # noqa: SIM115
    current: dict[str, dict[str, Any] | None] = {"record": None}

    def add(label: str, ms: float) -> None:
        record = current["record"]
        if record is not None:
            record.setdefault(label, []).append(round(ms, 2))

    def timed(owner: Any, name: str, label: str) -> None:
        wrap_timed(owner, name, label, add)

    for name in STORE_CALLS:
        timed(store.ChunkStore, name, f"ChunkStore.{name}")
    for name in SEARCH_STAGES:
        timed(search.Searcher, name, f"Searcher.{name}")
    timed(search, "query_vector", "engine.search.query_vector")
    original_handler = features.semantic_search

    async def semantic_search(ls: Any, params: Any) -> Any:
        record: dict[str, Any] = {"t": time.time()}
        current["record"] = record
        t0 = time.perf_counter()
        try:
            return await original_handler(ls, params)
        finally:
            record["handler"] = round((time.perf_counter() - t0) * 1000, 2)
            current["record"] = None
            log.write(json.dumps(record) + "\n")

    import lsp_server.app as app

    app.FEATURES[:] = [(m, semantic_search if h is original_handler else h, o) for m, h, o in app.FEATURES]
    runpy.run_module("lsp_server", run_name="__main__")


def _query_threads(threads: int) -> None:
    import engine.models.worker as worker

    spawn = worker._Slot._spawn

    def spawn_with(slot: Any) -> Any:
        if slot.role != "query":
            return spawn(slot)
        saved = slot.owner.query_threads
        slot.owner.query_threads = threads
        try:
            return spawn(slot)
        finally:
            slot.owner.query_threads = saved

    worker._Slot._spawn = spawn_with


def _pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))] if values else 0.0


def report(files: list[str]) -> None:
    for name in files:
        records = [json.loads(line) for line in Path(name).read_text().splitlines()]
        print(f"== {name}: {len(records)} requests")
        for key in sorted({k for r in records for k in r if k != "t" and not k.endswith(".cpu")}):
            seen = [r for r in records if key in r]
            totals = [sum(r[key]) if isinstance(r[key], list) else r[key] for r in seen]
            calls = statistics.mean(len(r[key]) if isinstance(r[key], list) else 1 for r in seen)
            print(
                f"  {key:30s} calls/q {calls:4.1f}  p50 {_pct(totals, 0.5):7.2f}  p95 {_pct(totals, 0.95):7.2f}"
                f"  mean {statistics.mean(totals):7.2f} ms"
            )
        slow = sorted(records, key=lambda r: -r["handler"])[: max(1, len(records) // 20)]
        print("  slowest 5%: handler", [r["handler"] for r in slow])
        for key in SLOW:
            print(f"    {key:28s}", [round(sum(r.get(key, [0])), 1) for r in slow])


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "report":
        report(sys.argv[2:])
    else:
        serve()
