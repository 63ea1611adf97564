"""Time from ``didChange`` to searchable, over LSP: a function typed into an unsaved buffer.

    flock /tmp/semcode-heavy.lock .venv/bin/python bench/bench_buffers.py [--trials 20] [--folder PATH]

Starts ``python -m lsp_server`` on stdio against a copy of a small fixture (default
``tests/fixtures/workspace``) with a private cache (no user index is touched), waits until the index is
complete, opens one file and then, per trial, replaces its text (one full-document ``didChange``) with the
disk text plus a new function of a new name. The clock starts when the notification is written; it
polls ``workspace/semanticSearch`` for the name (one request at a time, each a full round trip) and
records when the function is first returned marked ``dirty`` (lexical tier) and when that hit first
carries a semantic score (dense tier: the buffer's debounce, then its chunk embedded on the query
worker). Also the latency of a query with and without a dirty buffer. Prints the load average (1 min)
at start and end: figures measured on a busy machine are not figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
FIXTURE = ROOT / "tests" / "fixtures" / "workspace"
WORDS = ["amber", "basalt", "cobalt", "dune", "ember", "fjord", "garnet", "harbor", "indigo", "juniper"]


def new_function(trial: int) -> tuple[str, str]:
    name = f"polish_{WORDS[trial % len(WORDS)]}_gizmo_{trial}"
    body = (
        f"\n\ndef {name}(gizmos, rounds={trial + 2}):\n"
        f'    """Polish every {WORDS[trial % len(WORDS)]} gizmo until it sparkles."""\n'
        "    for _ in range(rounds):\n"
        "        gizmos = [gizmo.polish() for gizmo in gizmos]\n"
        "    return gizmos\n"
    )
    return name, body


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run(folder: Path, trials: int) -> int:
    from lsprotocol import types
    from pygls.lsp.client import LanguageClient

    from lsp_server.convert import to_plain as plain

    with tempfile.TemporaryDirectory(prefix="semcode-bench-buffers-") as tmp:
        root = Path(tmp) / "ws"
        shutil.copytree(folder, root)
        env = os.environ | {"SEMCODE_CACHE_DIR": str(Path(tmp) / "cache"), "PYTHONPATH": str(ROOT)}
        client = LanguageClient("bench-buffers", "0")
        await client.start_io(sys.executable, "-m", "lsp_server", "--log-level", "warning", env=env)
        await client.initialize_async(
            types.InitializeParams(
                capabilities=types.ClientCapabilities(),
                root_uri=root.as_uri(),
                workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name="ws")],
            )
        )
        client.initialized(types.InitializedParams())
        started = time.perf_counter()
        while True:
            status = plain(await client.protocol.send_request_async("semcode/status", {}))
            folder_status = status["folders"][0] if status["folders"] else {}
            if folder_status.get("state") == "ready" and not folder_status.get("partial"):
                break
            if time.perf_counter() - started > 600:
                raise SystemExit(f"the index was not ready after 600 s: {status}")
            await asyncio.sleep(0.2)
        print(f"indexed {folder_status['files']} files, {folder_status['chunks']} chunks")

        target = next(p for p in sorted(root.rglob("*.py")))
        uri, base = target.as_uri(), target.read_text()
        client.text_document_did_open(
            types.DidOpenTextDocumentParams(types.TextDocumentItem(uri=uri, language_id="python", version=1, text=base))
        )

        async def search(query: str) -> list[dict[str, Any]]:
            return plain(await client.protocol.send_request_async("workspace/semanticSearch", {"query": query}))

        async def timed(query: str) -> float:
            t0 = time.perf_counter()
            await search(query)
            return (time.perf_counter() - t0) * 1000

        clean = [await timed("polish every gizmo until it sparkles") for _ in range(20)]
        lexical: list[float] = []
        dense: list[float] = []
        version = 1
        for trial in range(trials):
            name, body = new_function(trial)
            version += 1
            client.text_document_did_change(
                types.DidChangeTextDocumentParams(
                    text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                    content_changes=[types.TextDocumentContentChangeWholeDocument(text=base + body)],
                )
            )
            t0 = time.perf_counter()
            seen_lexical = None
            while time.perf_counter() - t0 < 30:
                hits = [h for h in await search(name) if h.get("symbol") == name and h.get("dirty")]
                now = time.perf_counter() - t0
                if hits and seen_lexical is None:
                    seen_lexical = now
                if hits and "semantic" in hits[0]["why"]:
                    lexical.append(seen_lexical * 1000)
                    dense.append(now * 1000)
                    break
            else:
                raise SystemExit(f"trial {trial}: {name} not found semantically within 30 s")
        dirty = [await timed("polish every gizmo until it sparkles") for _ in range(20)]
        await client.shutdown_async(None)
        client.exit(None)
        await client.stop()

    def line(label: str, values: list[float]) -> str:
        return (
            f"{label}: median {statistics.median(values):.0f} ms, p90 {pct(values, 0.9):.0f} ms, "
            f"max {max(values):.0f} ms (n={len(values)})"
        )

    print(line("didChange -> found (lexical, marked dirty)", lexical))
    print(line("didChange -> found with a semantic score (dense)", dense))
    print(line("query latency, no unsaved buffer", clean))
    print(line("query latency, one unsaved buffer", dirty))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--folder", type=Path, default=FIXTURE)
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f} ({os.cpu_count()} logical cores)")
    code = asyncio.run(run(args.folder, args.trials))
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    return code


if __name__ == "__main__":
    sys.exit(main())
