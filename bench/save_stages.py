"""Where a save's time goes inside the language server: every step of a didSave, timed, per save.

    # as the server of bench_scale.py (one JSON line per didSave to $SAVE_LOG):
    SAVE_LOG=/tmp/saves.jsonl bench/bench_scale.py serve WS --index-dir DIR --saves 25 \
        --server-script bench/save_stages.py
    # then one table per save (the slowest first), and each step's p50 / p95 over the saves
    python bench/save_stages.py report /tmp/saves.jsonl [--top 5]

A save's record opens when its didSave reaches ``schedule_update`` and closes when the next one does
(or at exit). Each wrapped call made meanwhile, from any thread, is one event: name, thread, start
offset from the didSave, wall and thread-CPU ms. Queries polled during the save (the bench's searches)
are recorded too (``Searcher.search``, LanceDB calls on their threads), so a save's stage can be read
beside what ran with it. ``TREE``: run another source tree with this script (A/B of two commits).
"""

from __future__ import annotations

import functools
import json
import os
import runpy
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

WRAPPED: dict[str, list[str]] = {
    "engine.host:IndexHost": ["update_files", "_compact", "_embed_step"],
    "engine.workspace:Workspace": ["update_files", "prepare_update", "_record_index", "_maintain"],
    "engine.save_ahead:SaveAhead": ["_prepare", "wait"],
    "engine.indexer:Indexer": ["index_paths", "_flush", "_known_or_ahead", "_chunk_here"],
    "engine.store:ChunkStore": [
        "read_ahead", "manifest", "path_rows", "replace_files", "_replace_rows", "_after_chunk_commit",
        "_name_rows", "_row_ids", "_put_manifest", "_cache_vectors", "_evict", "_after_write", "ensure_indexes",
        "count_chunks", "pending_count", "touch_files", "optimize", "_in_child", "_fresh_caches", "chunk_version",
        "name_table",
    ],
    "engine.names:NameIndex": ["patch", "_build", "current"],
    "engine.models.worker:WorkerEmbedder": ["embed_interactive", "embed_query"],
    "engine.search:Searcher": ["search"],
    "engine.buffers:UnsavedBuffers": ["rebase", "share_vectors"],
    "lancedb.table:LanceTable": ["add", "delete", "merge_insert", "count_rows", "list_indices", "index_stats"],
    "lancedb.merge:LanceMergeInsertBuilder": ["execute"],
    "lancedb.query:LanceQueryBuilder": ["to_arrow"],
    "engine.memory": ["trim_malloc"],
}  # fmt: skip
# modules that imported trim_malloc by name
TRIM_USERS = ["engine.store", "engine.names", "engine.workspace", "engine.host"]


class Recorder:
    """One JSON line per event (a didSave, or a wrapped call ending): absolute times, any thread."""

    def __init__(self, path: str) -> None:
        self.log = open(path, "a", buffering=1)  # noqa: SIM115 - for the life of the server
        self.lock = threading.Lock()
        self.n = 0
        self.run = f"{os.getpid()}-{int(time.time())}"

    def start(self, uri: str) -> None:
        with self.lock:
            self.n += 1
            self._write({"save": self.n, "uri": uri.rsplit("/", 1)[-1], "at": time.perf_counter() * 1000})

    def event(self, name: str, start: float, wall: float, cpu: float, extra: Any = None) -> None:
        if not self.n:
            return  # before the first save: the start-up run
        line = [name, threading.current_thread().name, round(start * 1000, 2), round(wall * 1000, 2),
                round(cpu * 1000, 2)]  # fmt: skip
        if extra is not None:
            line.append(extra)
        with self.lock:
            self._write({"e": line})

    def _write(self, record: dict[str, Any]) -> None:
        record["run"] = self.run
        self.log.write(json.dumps(record) + "\n")


def _wrap(owner: Any, name: str, label: str, rec: Recorder) -> None:
    original = getattr(owner, name, None)
    if original is None:
        return
    if getattr(original, "_save_stages", False):
        return

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0, c0 = time.perf_counter(), time.thread_time()
        result = None
        try:
            result = original(*args, **kwargs)
            return result
        finally:
            extra = None
            if label == "Searcher.search" and args[1:]:  # the bench's poll: did it find the marker?
                query = str(args[1])
                extra = [
                    query[:40],
                    any(query in (h.preview or "") or h.symbol.startswith(query) for h in (result or [])),
                ]
            rec.event(label, t0, time.perf_counter() - t0, time.thread_time() - c0, extra)

    wrapper._save_stages = True  # type: ignore[attr-defined]
    setattr(owner, name, wrapper)


def serve() -> None:
    tree = os.environ.get("TREE", str(Path(__file__).resolve().parents[1]))
    sys.path.insert(0, tree)
    sys.argv = ["lsp_server", *sys.argv[1:]]
    import importlib

    rec = Recorder(os.environ.get("SAVE_LOG", "/tmp/save_stages.jsonl"))
    for target, names in WRAPPED.items():
        module_name, _, cls = target.partition(":")
        module = importlib.import_module(module_name)
        owner = getattr(module, cls) if cls else module
        for name in names:
            _wrap(owner, name, f"{cls or module_name.rsplit('.', 1)[-1]}.{name}", rec)
    trim = importlib.import_module("engine.memory").trim_malloc
    for module_name in TRIM_USERS:
        module = importlib.import_module(module_name)
        if hasattr(module, "trim_malloc"):
            module.trim_malloc = trim  # type: ignore[attr-defined]
    import gc

    gc_started: dict[str, float] = {}

    def on_gc(phase: str, info: dict[str, Any]) -> None:  # a full collection is a pause of every thread
        if info.get("generation") != 2:
            return
        if phase == "start":
            gc_started["t"], gc_started["c"] = time.perf_counter(), time.thread_time()
        elif "t" in gc_started:
            t0, c0 = gc_started.pop("t"), gc_started.pop("c")
            rec.event("gc.collect(2)", t0, time.perf_counter() - t0, time.thread_time() - c0, info.get("collected"))

    gc.callbacks.append(on_gc)
    import lsp_server.features.indexing as indexing

    schedule = indexing.schedule_update

    def schedule_update(ls: Any, uri: str) -> None:
        rec.start(uri)
        t0, c0 = time.perf_counter(), time.thread_time()
        try:
            schedule(ls, uri)
        finally:
            rec.event("schedule_update", t0, time.perf_counter() - t0, time.thread_time() - c0)

    indexing.schedule_update = schedule_update
    # RSS after each save (and with SP_TRIM=1, after a malloc_trim right after it: freed or held?)
    host_mod = importlib.import_module("engine.host")
    update = host_mod.IndexHost.update_files

    def rss_kb() -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def update_files(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return update(self, *args, **kwargs)
        finally:
            before = rss_kb()
            t0 = time.perf_counter()
            if os.environ.get("SP_TRIM") == "1":
                trim()
            rec.event("rss_after_update", t0, time.perf_counter() - t0, 0.0, [before, rss_kb()])

    host_mod.IndexHost.update_files = update_files
    runpy.run_module("lsp_server", run_name="__main__")


# --------------------------------------------------------------------------------------------- report
SHOWN = (
    "IndexHost.update_files", "Workspace.update_files", "SaveAhead.wait", "SaveAhead._prepare",
    "ChunkStore.read_ahead", "WorkerEmbedder.embed_interactive", "Indexer.index_paths", "ChunkStore.manifest",
    "ChunkStore.path_rows", "Indexer._flush", "ChunkStore.replace_files", "ChunkStore._replace_rows",
    "LanceMergeInsertBuilder.execute", "ChunkStore._after_chunk_commit", "NameIndex.patch", "ChunkStore._put_manifest",
    "ChunkStore._cache_vectors", "ChunkStore._evict", "ChunkStore._after_write", "memory.trim_malloc",
    "ChunkStore.ensure_indexes", "ChunkStore.count_chunks", "ChunkStore.pending_count", "UnsavedBuffers.rebase",
    "NameIndex._build", "ChunkStore.optimize", "IndexHost._compact", "Searcher.search",
)  # fmt: skip


def _pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p * (len(values) - 1)))] if values else 0.0


def _saves(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per save: its didSave time, its update_files (the first to start after it), every event from the
    didSave to the end of that update, and when the first search that found its marker answered."""
    saves = [dict(x, events=[]) for x in lines if "save" in x]
    events = sorted((x["e"] for x in lines if "e" in x), key=lambda e: e[2])
    updates = [e for e in events if e[0] == "IndexHost.update_files"]
    for n, save in enumerate(saves):
        at = save["at"]
        nxt = saves[n + 1]["at"] if n + 1 < len(saves) else float("inf")
        update = next((u for u in updates if u[2] >= at and u[2] < nxt), None)
        save["update"] = update
        end = update[2] + update[3] if update else nxt
        found = [e for e in events if e[0] == "Searcher.search" and e[2] >= at and len(e) > 5 and e[5][1]]
        save["searchable"] = (found[0][2] + found[0][3] - at) if found else None
        # everything that overlaps [at, end]
        save["events"] = [e for e in events if e[2] <= end and e[2] + e[3] >= at]
    return saves


def report(files: list[str], top: int) -> None:
    for name in files:
        lines = [json.loads(line) for line in Path(name).read_text().splitlines() if line.strip()]
        runs = list(dict.fromkeys(x["run"] for x in lines))
        for run in runs:
            saves = [s for s in _saves([x for x in lines if x["run"] == run]) if s["update"] is not None]
            print(f"== {name} run {run}: {len(saves)} saves with an update")
            totals: dict[str, list[float]] = {}
            for sv in saves:
                per: dict[str, float] = {}
                u = sv["update"]
                for e in sv["events"]:
                    if e[0] == "Searcher.search" or e[1] != u[1] or e[2] < u[2]:
                        continue  # the update's own thread, inside the update
                    per[e[0]] = per.get(e[0], 0.0) + e[3]
                for k, v in per.items():
                    totals.setdefault(k, []).append(v)
            print(f"  {'update_files step (sum per save)':36s} {'saves':>5s} {'p50':>8s} {'p95':>8s} {'max':>8s}")
            for key in sorted(totals, key=lambda k: -statistics.median(totals[k])):
                v = totals[key]
                print(f"  {key:36s} {len(v):5d} {_pct(v, 0.5):8.1f} {_pct(v, 0.95):8.1f} {max(v):8.1f}")
            print("  per save: update start / took / searchable (ms from didSave):")
            print("   ", [(s["save"], round(s["update"][2] - s["at"]), round(s["update"][3]),
                          None if s["searchable"] is None else round(s["searchable"])) for s in saves])  # fmt: skip
            ordered = sorted(saves, key=lambda s: -(s["searchable"] or 0))
            for sv in ordered[:top]:
                u = sv["update"]
                print(f"  -- save {sv['save']}: update_files at {u[2] - sv['at']:.0f} ms, takes {u[3]:.0f} ms; "
                      f"searchable at {sv['searchable'] or 0:.0f} ms")  # fmt: skip
                for e in sv["events"]:
                    if e[0] == "Searcher.search":
                        if e[3] >= 40 or (len(e) > 5 and e[5][1]):
                            found = e[5][1] if len(e) > 5 else "?"
                            at = e[2] - sv["at"]
                            print(f"     {at:8.1f} +{e[3]:7.1f} ms (cpu {e[4]:6.1f})  search found={found} [{e[1]}]")
                        continue
                    if e[3] < 3 and e[0] not in SHOWN:
                        continue
                    if e[0] == "ChunkStore.pending_count" and e[3] < 3:
                        continue
                    print(f"     {e[2] - sv['at']:8.1f} +{e[3]:7.1f} ms (cpu {e[4]:6.1f})  {e[0]:36s} [{e[1]}]")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "report":
        top = 5
        args = sys.argv[2:]
        if "--top" in args:
            i = args.index("--top")
            top = int(args[i + 1])
            args = args[:i] + args[i + 2 :]
        report(args, top)
    else:
        serve()
