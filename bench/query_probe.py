"""Where a slow ``workspace/semanticSearch`` goes over LSP: stages, LanceDB round trips, GC, faults, LSP I/O.

    # the server of bench_scale's client, or of any LSP client (one JSON line per request to $TIMED_LOG):
    TREE=<tree> TIMED_LOG=/tmp/probe.jsonl python bench/query_probe.py serve
    python bench/query_probe.py report /tmp/probe.jsonl [--per-run 105] [--first 5:30]

On top of ``query_stages.py``'s timers (``ChunkStore`` reads, ``Searcher`` stages, the query vector) each
record has: the time from the request's body parsed to its response written (``recv_to_sent``) and the
part after the handler (``after_handler``: JSON encoding and the write, ``send``); LanceDB's sync calls
(``LOOP.run``: each a round trip to its event-loop thread); collector pauses by generation (``gc0/1/2``);
the process's CPU (``pcpu``, every thread); page faults and context switches (``majflt``, ``minflt``,
``nvcsw``, ``nivcsw``). ``report`` compares the first occurrences of bench_scale's questions (``--first``:
requests 5-29 of each run of ``--per-run``, after the 5 warm-ups) with their repeats, and lists the
slowest requests. BENCHMARKS.md, "query10 (session 10)".
"""

from __future__ import annotations

import gc
import json
import os
import resource
import runpy
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

from query_stages import wrap_timed

STORE_CALLS = [
    "vector_search", "text_search", "take_rows", "take_vectors", "contents", "rows", "name_table",
    "pending_count", "chunk_version",
]  # fmt: skip
SEARCH_STAGES = ["search", "_lexical", "_lookup", "_dense", "_fuse", "_fill_contents", "_imports"]
REPORT = [
    "recv_to_sent", "handler", "recv_to_handler", "after_handler", "send", "query_vector", "Q._dense",
    "S.vector_search", "Q._lexical", "S.text_search", "Q._lookup", "S.take_vectors", "S.take_rows", "Q._fuse",
    "Q._fill_contents", "S.contents", "Q._imports", "LOOP.run", "pcpu", "majflt", "minflt", "nvcsw", "nivcsw",
    "gc0", "gc1", "gc2",
]  # fmt: skip


def serve() -> None:
    tree = os.environ.get("TREE", str(Path(__file__).resolve().parents[1]))
    sys.path.insert(0, tree)
    sys.argv = ["lsp_server"]
    import pygls.protocol.json_rpc as json_rpc
    from lancedb import background_loop

    import engine.search as search
    import engine.store as store
    import lsp_server.app as app
    import lsp_server.features.search as features

    log = open(os.environ.get("TIMED_LOG", "/tmp/query_probe.jsonl"), "a", buffering=1)  # noqa: SIM115
    current: dict[str, dict[str, Any] | None] = {"record": None}
    lock = threading.Lock()
    received: dict[Any, float] = {}
    finished: dict[Any, dict[str, Any]] = {}

    def add(label: str, ms: float) -> None:
        record = current["record"]
        if record is not None:
            with lock:
                record.setdefault(label, []).append(round(ms, 2))

    def timed(owner: Any, name: str, label: str) -> None:
        if hasattr(owner, name):  # a tree without this method is timed without it
            wrap_timed(owner, name, label, add)

    for name in STORE_CALLS:
        timed(store.ChunkStore, name, f"S.{name}")
    for name in SEARCH_STAGES:
        timed(search.Searcher, name, f"Q.{name}")
    timed(search, "query_vector", "query_vector")
    run = background_loop.BackgroundEventLoop.run

    def loop_run(self: Any, future: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return run(self, future)
        finally:
            add("LOOP.run", (time.perf_counter() - t0) * 1000)

    background_loop.BackgroundEventLoop.run = loop_run  # type: ignore[method-assign]
    gc_started: list[float] = [0.0]

    def collected(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            gc_started[0] = time.perf_counter()
        else:
            add(f"gc{info['generation']}", (time.perf_counter() - gc_started[0]) * 1000)

    gc.callbacks.append(collected)
    handle_message = json_rpc.JsonRPCProtocol.handle_message

    def handle(self: Any, message: Any) -> Any:
        if getattr(message, "method", None) == "workspace/semanticSearch":
            received[message.id] = time.perf_counter()
        return handle_message(self, message)

    json_rpc.JsonRPCProtocol.handle_message = handle  # type: ignore[method-assign]
    send_response = json_rpc.JsonRPCProtocol._send_response

    def send(self: Any, msg_id: Any, result: Any = None, error: Any = None) -> Any:
        t0 = time.perf_counter()
        try:
            return send_response(self, msg_id, result, error)
        finally:
            record = finished.pop(msg_id, None)
            if record is not None:
                now = time.perf_counter()
                record["send"] = round((now - t0) * 1000, 2)
                record["recv_to_sent"] = round((now - record.pop("_received")) * 1000, 2)
                record["after_handler"] = round((now - record.pop("_handled")) * 1000, 2)
                log.write(json.dumps(record) + "\n")

    json_rpc.JsonRPCProtocol._send_response = send  # type: ignore[method-assign]
    original_handler = features.semantic_search

    async def semantic_search(ls: Any, params: Any) -> Any:
        msg_id = ls.protocol._ctx_msg_id.get()
        record: dict[str, Any] = {"t": time.time()}
        current["record"] = record
        t0, c0, usage = time.perf_counter(), time.process_time(), resource.getrusage(resource.RUSAGE_SELF)
        record["recv_to_handler"] = round((t0 - received.get(msg_id, t0)) * 1000, 2)
        try:
            return await original_handler(ls, params)
        finally:
            t1, after = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
            record["handler"] = round((t1 - t0) * 1000, 2)
            record["pcpu"] = round((time.process_time() - c0) * 1000, 2)
            for key in ("majflt", "minflt", "nvcsw", "nivcsw"):
                record[key] = getattr(after, "ru_" + key) - getattr(usage, "ru_" + key)
            record["load"] = os.getloadavg()[0]
            current["record"] = None
            record["_received"], record["_handled"] = received.pop(msg_id, t0), t1
            finished[msg_id] = record

    app.FEATURES[:] = [(m, semantic_search if h is original_handler else h, o) for m, h, o in app.FEATURES]
    runpy.run_module("lsp_server", run_name="__main__")


def _total(record: dict[str, Any], key: str) -> float:
    value = record.get(key, 0)
    return float(sum(value) if isinstance(value, list) else value)


def report(path: str, per_run: int, first: tuple[int, int]) -> None:
    records = [json.loads(line) for line in Path(path).read_text().splitlines()]
    for start in range(0, len(records), per_run):
        run = records[start : start + per_run]
        firsts, repeats = run[first[0] : first[1]], run[first[1] + 5 :]
        slow = sorted(run[first[0] :], key=lambda r: -r["handler"])[: max(1, len(run) // 20)]
        print(f"== requests {start}-{start + len(run) - 1}: first occurrences vs repeats (mean), slowest 5%")
        for key in REPORT:
            if not firsts or not repeats or not any(key in r for r in run):
                continue
            a = statistics.mean(_total(r, key) for r in firsts)
            b = statistics.mean(_total(r, key) for r in repeats)
            print(f"  {key:18s} first {a:7.2f}  repeat {b:7.2f}  slowest", [round(_total(r, key), 1) for r in slow])


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "report":
        args = sys.argv[2:]
        per_run = int(args[args.index("--per-run") + 1]) if "--per-run" in args else 105
        lo, hi = (args[args.index("--first") + 1] if "--first" in args else "5:30").split(":")
        report(args[0], per_run, (int(lo), int(hi)))
    else:
        serve()
