"""Time to the first hybrid search result over real LSP, from ``initialize``, and (optionally) to complete.

    .venv/bin/python bench/bench_lsp_first_result.py PATH [--query TEXT] [--complete] [--timeout S] [--json-out F]

Starts ``python -m lsp_server`` over stdio with a fresh temporary ``indexDir`` (the user's index is not
touched), sends ``initialize`` (the clock starts here) and ``initialized``, then polls
``workspace/semanticSearch`` every 50 ms until an answer holds hits. Reports: the server process
start to ``initialize`` reply, time to the first non-empty answer (LanceDB searches the rows written
so far, so this may come from the first write, with ``partial``), whether it said ``partial``, which
tiers answered (hits with a ``semantic`` score vs lexical only, from each hit's ``why``), the
``semcode/status`` note at that moment, and the time until every file is searchable (phase 1 over:
the status note says the dense tier is embedding). ``--complete`` keeps polling ``semcode/status`` until no chunk is
pending (time to complete, chunks/s over the whole run). Prints the load average at start and end.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from lsp_stdio import read_message, write_message

ROOT = Path(__file__).resolve().parents[1]


class Client:
    """A minimal JSON-RPC client over the server's stdio (requests, replies, server requests answered)."""

    def __init__(self, cmd: list[str], env: dict[str, str], stderr_path: Path) -> None:
        self._stderr = open(stderr_path, "wb")  # noqa: SIM115 - closed in close()
        # cwd=ROOT: `python -m lsp_server` imports from the working directory first, whatever PYTHONPATH says
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, env=env, cwd=ROOT
        )
        self.replies: dict[int, dict[str, Any]] = {}
        self.progress: list[tuple[float, dict[str, Any]]] = []
        self._cond = threading.Condition()
        self._next = 1
        self._write = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        out = self.proc.stdout
        assert out is not None
        while (msg := read_message(out)) is not None:
            if "method" in msg and "id" in msg:  # a server request (progress token, configuration)
                result: Any = [None] if msg["method"] == "workspace/configuration" else None
                self._send({"id": msg["id"], "result": result})
            elif msg.get("method") == "$/progress":
                self.progress.append((time.perf_counter(), msg["params"].get("value", {})))
            elif "id" in msg and "method" not in msg:
                with self._cond:
                    self.replies[msg["id"]] = msg
                    self._cond.notify_all()

    def _send(self, message: dict[str, Any]) -> None:
        with self._write:
            assert self.proc.stdin is not None
            write_message(self.proc.stdin, {"jsonrpc": "2.0", **message})

    def notify(self, method: str, params: Any) -> None:
        self._send({"method": method, "params": params})

    def request(self, method: str, params: Any, timeout: float = 600) -> dict[str, Any]:
        with self._cond:
            msg_id = self._next
            self._next += 1
        self._send({"id": msg_id, "method": method, "params": params})
        deadline = time.monotonic() + timeout
        with self._cond:
            while msg_id not in self.replies:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no reply to {method}")
                self._cond.wait(left)
            return self.replies.pop(msg_id)

    def close(self) -> None:
        try:
            self.request("shutdown", None, timeout=60)
            self.notify("exit", None)
            self.proc.wait(30)
        except Exception:  # noqa: BLE001 - a bench must not hang on a stuck server
            self.proc.kill()
        self._stderr.close()


def tiers_of(hits: list[dict[str, Any]]) -> dict[str, int]:
    semantic = sum(1 for h in hits if "semantic" in h.get("why", ""))
    lexical = sum(1 for h in hits if "lexical" in h.get("why", ""))
    return {"hits": len(hits), "with_semantic": semantic, "with_lexical": lexical}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("path")
    ap.add_argument("--query", default="parse the request headers and return the response")
    ap.add_argument("--complete", action="store_true", help="also wait until every chunk is embedded")
    ap.add_argument("--timeout", type=float, default=1200.0)
    ap.add_argument("--label", default="")
    ap.add_argument("--json-out")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--log-out", help="copy the server's stderr log here")
    ap.add_argument("--server-log-level", default="info")
    args = ap.parse_args()
    root = Path(args.path).resolve()
    load_start = os.getloadavg()
    print(f"# load average {load_start[0]:.2f} {load_start[1]:.2f} at start ({os.cpu_count()} cores) {args.label}")
    result: dict[str, Any] = {"path": str(root), "label": args.label, "load_start": load_start[0]}
    with tempfile.TemporaryDirectory(prefix="semcode-bench-lsp-") as tmp:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
        spawned = time.perf_counter()
        client = Client(
            [args.python, "-m", "lsp_server", "--log-level", args.server_log_level],
            env,
            Path(tmp) / "server-stderr.log",
        )
        try:
            t0 = time.perf_counter()
            client.request(
                "initialize",
                {
                    "processId": os.getpid(),
                    "rootUri": root.as_uri(),
                    "workspaceFolders": [{"uri": root.as_uri(), "name": root.name}],
                    "capabilities": {"window": {"workDoneProgress": True}},
                    "initializationOptions": {"indexDir": str(Path(tmp) / "index")},
                },
            )
            result["initialize_reply_s"] = time.perf_counter() - t0
            result["spawn_to_initialize_reply_s"] = time.perf_counter() - spawned
            client.notify("initialized", {})
            polls = 0
            while True:
                reply = client.request("workspace/semanticSearch", {"query": args.query, "limit": 10})
                polls += 1
                hits = reply.get("result") or []
                if hits:
                    break
                if time.perf_counter() - t0 > args.timeout:
                    raise TimeoutError("no hits before the timeout")
                time.sleep(0.05)
            first = time.perf_counter() - t0
            status = client.request("semcode/status", None).get("result") or {}
            folder = (status.get("folders") or [status])[0] if isinstance(status, dict) else {}
            result.update(
                first_result_s=first,
                polls=polls,
                partial=bool(hits[0].get("partial")),
                tiers=tiers_of(hits),
                top_why=hits[0].get("why"),
                note=folder.get("note"),
                files=folder.get("files"),
                chunks=folder.get("chunks"),
                pending_at_first=folder.get("pending_chunks", folder.get("pendingChunks")),
            )
            print(
                f"first hybrid result {first:.2f} s after initialize ({polls} polls; initialize reply "
                f"{result['initialize_reply_s']:.2f} s): partial={result['partial']} tiers={result['tiers']}"
            )
            print(f"  files {result['files']} chunks {result['chunks']} pending {result['pending_at_first']}")
            print(f"  note: {result['note']}")
            # Every file searchable (lexical + symbols): phase 1 over, the dense tier running or done.
            while True:
                status = client.request("semcode/status", None).get("result") or {}
                folder = (status.get("folders") or [status])[0]
                if folder.get("state") in ("ready", "error") or "(embedding" in (folder.get("note") or ""):
                    break
                if time.perf_counter() - t0 > args.timeout:
                    break
                time.sleep(0.05)
            lexical_done = time.perf_counter() - t0
            reply = client.request("workspace/semanticSearch", {"query": args.query, "limit": 10})
            result.update(
                all_files_searchable_s=lexical_done,
                files_at_phase1=folder.get("files"),
                chunks_at_phase1=folder.get("chunks"),
                tiers_at_phase1=tiers_of(reply.get("result") or []),
            )
            print(
                f"every file searchable (lexical + symbols) {lexical_done:.2f} s after initialize: "
                f"{folder.get('files')} files, {folder.get('chunks')} chunks; tiers {result['tiers_at_phase1']}"
            )
            if args.complete:
                while True:
                    status = client.request("semcode/status", None).get("result") or {}
                    folder = (status.get("folders") or [status])[0]
                    pending = folder.get("pending_chunks", folder.get("pendingChunks"))
                    state = folder.get("state")
                    if state == "ready" and pending == 0:
                        break
                    if state == "error":
                        raise RuntimeError(f"indexing failed: {folder.get('last_error', folder.get('lastError'))}")
                    if time.perf_counter() - t0 > args.timeout:
                        result["incomplete_pending"] = pending
                        print(f"  timeout: {pending} chunks still pending")
                        break
                    time.sleep(1.0)
                complete = time.perf_counter() - t0
                result.update(complete_s=complete, chunks=folder.get("chunks"), files=folder.get("files"))
                rate = (folder.get("chunks") or 0) / complete
                print(f"complete {complete:.1f} s after initialize: {folder.get('chunks')} chunks, {rate:.1f} chunks/s")
                reply = client.request("workspace/semanticSearch", {"query": args.query, "limit": 10})
                hits = reply.get("result") or []
                result["final_tiers"] = tiers_of(hits)
                result["final_partial"] = bool(hits and hits[0].get("partial"))
        finally:
            client.close()
            log_text = (Path(tmp) / "server-stderr.log").read_text(errors="replace")
            stderr_tail = log_text.splitlines()[-5:]
            if args.log_out:
                Path(args.log_out).write_text(log_text)
    result["load_end"] = os.getloadavg()[0]
    print(f"# load average {result['load_end']:.2f} at end")
    if "first_result_s" not in result:
        print("\n".join(stderr_tail), file=sys.stderr)
    if args.json_out:
        with open(args.json_out, "a") as fh:
            fh.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
