"""Shared parts of the torture suite: a generated workspace, a forkserver of indexing workers, snapshots.

An index is judged by what a user gets from it: the set of (path, start, end, chunk hash, file hash)
rows and the manifest. After any crash, the next index run plus ``check`` must give exactly what a
clean rebuild of the same files gives.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import queue
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from driver import PRELOAD, worker_main  # noqa: E402

SEED = 20261201
WORKER_TIMEOUT = 180.0  # seconds; a worker still running then is a hang, and fails the test
RESULTS: list[dict[str, Any]] = []  # figures for RELIABILITY.md, printed at the end (pytest -s)

WORDS = (
    "parse render invoice customer ledger retry socket buffer cache token matrix vector stream "
    "encode decode compress archive schedule queue worker thread lock mutex signal timeout budget "
    "account balance payment refund order cart price tax discount coupon report export import"
).split()


def _source(i: int, version: int) -> tuple[str, str]:
    """(relative path, text) of generated file ``i`` in ``version``."""
    rng = __import__("random").Random(SEED * 31 + i * 7 + version * 1009)
    kind = ("py", "js", "md")[i % 3]
    names = [f"{rng.choice(WORDS)}_{rng.choice(WORDS)}_{i}_{k}" for k in range(3)]
    if kind == "py":
        body = "\n\n".join(
            f"def {n}(items, limit={k + 1}):\n"
            f'    """{" ".join(rng.sample(WORDS, 6))}."""\n'
            f"    total = 0\n    for item in items[:limit]:\n        total += len(str(item)) * {i + k}\n"
            f"    return total  # {rng.choice(WORDS)}\n"
            for k, n in enumerate(names)
        )
        return f"pkg{i % 4}/mod_{i}.py", body + "\n"
    if kind == "js":
        if version == 2 and i % 6 == 4:
            names = names[:2]  # this edit drops a function: the file shrinks (store.VANISHED_PATH's blank rows)
        body = "\n\n".join(
            f"function {n.replace('_', '')}(list) {{\n  // {' '.join(rng.sample(WORDS, 5))}\n"
            f"  return list.filter((x) => x > {k}).map((x) => x * {i});\n}}"
            for k, n in enumerate(names)
        )
        return f"web/part_{i}.js", body + "\n"
    sections = "\n\n".join(f"## {n}\n\n{' '.join(rng.sample(WORDS, 12))}." for n in names)
    return f"docs/page_{i}.md", f"# Page {i}\n\n{sections}\n"


def workspace_files(version: int, n_files: int = 12) -> dict[str, str]:
    """Version 1, or version 2: a third of the files edited, some deleted, a few added."""
    files: dict[str, str] = {}
    for i in range(n_files + (3 if version == 2 else 0)):
        if version == 2 and i % 7 == 3:
            continue  # deleted in version 2
        edited = version == 2 and (i % 3 == 1 or i >= n_files)
        path, text = _source(i, 2 if edited else 1)
        files[path] = text
    return files


def materialize(root: Path, version: int) -> None:
    """Make ``root`` hold exactly the files of ``version``, with fixed mtimes (stable references)."""
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    for n, (rel, text) in enumerate(sorted(workspace_files(version).items())):
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        stamp = 1_700_000_000_000_000_000 + version * 1_000_000_000 + n
        os.utime(target, ns=(stamp, stamp))


def open_ws(root: Path, index_dir: Path, embedder):
    from engine.config import EngineConfig
    from engine.workspace import Workspace

    return Workspace(root, EngineConfig(index_dir=str(index_dir)), embedder=embedder).open()


def snapshot(ws) -> tuple[tuple[tuple[Any, ...], ...], dict[str, tuple[Any, ...]]]:
    """The index as a user gets it: its rows (a multiset: windows of one repeated line are equal) and manifest."""
    rows = ws.store.rows("true", columns=["path", "start_line", "end_line", "text_hash", "file_hash"], limit=10**7)
    keyed = tuple(sorted((r["path"], r["start_line"], r["end_line"], r["text_hash"], r["file_hash"]) for r in rows))
    manifest = {p: (r.size, r.mtime_ns, r.content_hash, r.chunk_count) for p, r in ws.store.manifest().items()}
    return keyed, manifest


def clean_rebuild(root: Path, index_dir: Path, embedder):
    ws = open_ws(root, index_dir, embedder)
    ws.index()
    assert ws.check().ok
    return snapshot(ws)


def recover(root: Path, index_dir: Path, embedder) -> tuple[Any, dict[str, Any]]:
    """The next index run after a crash, then ``check``: returns the snapshot and what recovery did."""
    ws = open_ws(root, index_dir, embedder)
    stats = ws.index(wait_for_lock=True)
    report = ws.check()
    assert report.ok, report.to_dict()
    return snapshot(ws), {"recovered_files": stats.files_indexed, "recovered_deleted": stats.files_deleted}


@dataclass
class Run:
    exitcode: int | None
    outcome: str  # killed | done | fault | locked | exit:<code>
    ready_to_end: float
    messages: list[str] = field(default_factory=list)


class Workers:
    """Indexing processes forked from a forkserver that already imported the heavy modules."""

    def __init__(self) -> None:
        self.ctx = multiprocessing.get_context("forkserver")
        self.ctx.set_forkserver_preload(PRELOAD)

    def start(self, **kwargs: Any):
        channel = self.ctx.Queue()
        proc = self.ctx.Process(target=worker_main, args=({**kwargs, "report": channel},), daemon=True)
        proc.start()
        return proc, channel

    @staticmethod
    def wait_for(channel, word: str, timeout: float = WORKER_TIMEOUT, proc=None) -> list[str]:
        """Messages up to ``word`` (or LOCKED/DONE); stops early when ``proc`` died (a fault point
        exits before its queue is flushed, so a READY may never arrive)."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                message = channel.get(timeout=0.2)
            except queue.Empty:
                if proc is not None and not proc.is_alive():
                    return seen
                continue
            seen.append(message)
            if message.split(" ", 1)[0] in (word, "LOCKED", "DONE"):
                return seen
        raise AssertionError(f"worker said nothing for {timeout}s (seen {seen})")

    def run(self, *, kill_after: float | None = None, **kwargs: Any) -> Run:
        """Run one worker; with ``kill_after``, SIGKILL it that many seconds after it is READY."""
        proc, channel = self.start(**kwargs)
        try:
            messages = self.wait_for(channel, "READY", proc=proc)
            ready = time.monotonic()
            if kill_after is not None and messages and messages[-1] == "READY":
                proc.join(kill_after)
                if proc.is_alive():
                    proc.kill()
            proc.join(WORKER_TIMEOUT)
            assert not proc.is_alive(), "worker hung"
        finally:
            if proc.is_alive():
                proc.kill()
                proc.join(10)
        elapsed = time.monotonic() - ready
        while True:
            try:
                messages.append(channel.get_nowait())
            except (queue.Empty, OSError, ValueError):
                break
        code = proc.exitcode
        outcome = {-9: "killed", 0: "done", 137: "fault", 3: "locked"}.get(code, f"exit:{code}")
        return Run(code, outcome, elapsed, messages)


@pytest.fixture(scope="session")
def workers(default_model_path: Path) -> Workers:
    return Workers()


def record(**figures: Any) -> None:
    RESULTS.append(figures)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if RESULTS:
        out = os.environ.get("SEMCODE_RELIABILITY_RESULTS")
        text = "\n".join(json.dumps(r, sort_keys=True) for r in RESULTS)
        if out:
            Path(out).write_text(text + "\n")
