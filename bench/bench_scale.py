"""Scale: a ~100K-chunk workspace built from real packages, measured the way the editor uses it.

Usage (each step is one heavy take; hold the shared lock):
    bash bench/scale_workspace.sh /tmp/scale-src                  # the workspace: 10 real packages -> /tmp/scale-src/ws
    python bench/bench_scale.py build WS --index-dir DIR          # index WS (RSS over time)
    python bench/bench_scale.py recall WS --index-dir DIR         # vector index vs flat: recall@10, latency
    python bench/bench_scale.py restart WS --index-dir DIR        # re-index with nothing changed (profiled)
    python bench/bench_scale.py serve WS --index-dir DIR          # over LSP: restart, queries, didSave, RSS
    python bench/bench_scale.py cli WS --index-dir DIR --cli-full # `semcode index --full`, its tree's RSS

The dense column. Embedding 100K chunks with the transformer takes ~1.5 h of both cores, so ``build``
fills it with the **static tier distilled from the same GGUF model** (engine/models/static.py) without PCA,
i.e. vectors of the model's own dimension (384 for MiniLM), written through the engine's real pipeline
(phase 1 chunks + lexical tier, phase 2 vectors, the IVF index, compaction) under the real model's
identity, so the language server started by ``serve`` (real model in its worker) opens the index as its
own. Query latency, recall of the vector index and RSS depend on the number of rows and the dimension,
not on which model made the vectors; the search *quality* of such an index means nothing.

Every figure is printed with the load average; JSON lines go to ``--out`` when given.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import queue
import re
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from lsp_stdio import read_message, write_message

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from engine.config import EngineConfig  # noqa: E402
from engine.models.base import Embedder  # noqa: E402

QUERIES = [
    "open a file and read its lines", "parse command line arguments", "retry an HTTP request with backoff",
    "compute a sha256 digest of a file", "format a date as ISO 8601", "split a path into directory and name",
    "escape HTML special characters", "sort a list of dicts by key", "read environment variables",
    "decode base64 text", "thread pool executor", "serialize an object to JSON", "walk a directory tree",
    "compare two version strings", "temporary directory cleanup", "parse an email address",
    "database connection pool", "render a template with context", "validate a form field", "solve a linear system",
    "shortest path in a graph", "observable that emits on an interval", "deep clone an object",
    "migrate a database schema", "cache the result of a function", "lazy load a module", "websocket handshake",
    "compile a regular expression", "matrix determinant", "ssh connection with a private key",
]  # fmt: skip


def load() -> float:
    return os.getloadavg()[0]


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(values: Sequence[float]) -> str:
    return f"p50 {statistics.median(values):.1f} ms, p95 {percentile(values, 0.95):.1f} ms, max {max(values):.1f} ms"


def status_kb(pid: int | str, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def descendants(pid: int) -> list[int]:
    """pid's children, grandchildren, ... (from /proc, no psutil needed)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


class RssSampler(threading.Thread):
    """RSS (MB) of a process tree every ``every`` seconds; the peak of the sum, and per process VmHWM."""

    def __init__(self, pid: int, every: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.samples: list[tuple[float, float, dict[int, float]]] = []
        self.stage = ""
        self.stop = threading.Event()
        self.t0 = time.perf_counter()
        self.hwm: dict[int, float] = {}
        self.names: dict[int, str] = {}
        self.stage_peaks: dict[str, dict[str, float]] = {}  # stage -> tree peak and each process's peak RSS

    def run(self) -> None:
        while not self.stop.is_set():
            self.sample()
            self.stop.wait(self.every)
        self.sample()

    def sample(self) -> None:
        tree = [self.pid, *descendants(self.pid)]
        each = {p: status_kb(p, "VmRSS") / 1024 for p in tree}
        for p in tree:
            hwm = status_kb(p, "VmHWM") / 1024
            if hwm:
                self.hwm[p] = max(self.hwm.get(p, 0.0), hwm)
                if p not in self.names:
                    try:
                        self.names[p] = Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ")[:90].decode()
                    except OSError:
                        self.names[p] = "?"
        self.samples.append((time.perf_counter() - self.t0, sum(each.values()), each))
        peaks = self.stage_peaks.setdefault(self.stage or "-", {})
        peaks["tree"] = max(peaks.get("tree", 0.0), sum(each.values()))
        for p, mb in each.items():
            key = f"{p} {self._role(p)}"
            peaks[key] = max(peaks.get(key, 0.0), mb)

    def _role(self, pid: int) -> str:
        """A short name for a process of the tree: server, query/index worker, maintenance, chunker."""
        name = self.names.get(pid, "")
        if pid == self.pid:
            return "server"
        for needle, role in (
            ("--nice 0", "query"),
            ("--nice 10", "index"),
            ("maintenance", "maint"),
            ("chunk", "chunker"),
        ):
            if needle in name:
                return role
        return name.split(" -m ")[-1][:20] if " -m " in name else name[:20]

    def smaps(self) -> dict[str, dict[str, int]]:
        """/proc/<pid>/smaps_rollup of every process of the tree now (kB: Rss, Anonymous, file-backed)."""
        out: dict[str, dict[str, int]] = {}
        for p in [self.pid, *descendants(self.pid)]:
            try:
                text = Path(f"/proc/{p}/smaps_rollup").read_text()
            except OSError:
                continue
            fields = {line.split(":")[0]: int(line.split()[1]) for line in text.splitlines()[1:] if line.endswith("kB")}
            out[f"{p} {self._role(p)}"] = {
                k: fields.get(k, 0) // 1024 for k in ("Rss", "Anonymous", "Shared_Clean", "Private_Clean")
            }
        return out

    def mappings(self, top: int = 12) -> dict[str, dict[str, int]]:
        """Where each process's RSS sits now (MB): /proc/<pid>/smaps by mapping, anonymous ones by size class.

        glibc's thread arenas are 64 MB anonymous mappings, its main arena ``[heap]``; Rust and
        Arrow's large buffers are anonymous mappings of their own size; code pages are the ``.so``."""
        out: dict[str, dict[str, int]] = {}
        for p in [self.pid, *descendants(self.pid)]:
            try:
                lines = Path(f"/proc/{p}/smaps").read_text().splitlines()
            except OSError:
                continue
            agg: dict[str, int] = {}
            name = ""
            for line in lines:
                parts = line.split()
                if parts and "-" in parts[0] and not parts[0].endswith(":"):
                    lo, hi = (int(x, 16) for x in parts[0].split("-"))
                    size_mb = (hi - lo) >> 20
                    name = Path(parts[5]).name if len(parts) > 5 else ""
                    if not name:
                        name = "anon 64MB (arena)" if size_mb in (63, 64) else f"anon {'>=1' if size_mb else '<1'}MB"
                elif parts and parts[0] == "Rss:":
                    agg[name] = agg.get(name, 0) + int(parts[1])
            ranked = sorted(agg.items(), key=lambda kv: -kv[1])[:top]
            out[f"{p} {self._role(p)}"] = {k: v >> 10 for k, v in ranked if v >> 10}
        return out

    def peak(self) -> float:
        return max((s[1] for s in self.samples), default=0.0)

    def report(self) -> dict[str, Any]:
        return {
            "peak_tree_rss_mb": round(self.peak(), 1),
            "vmhwm_mb": {f"{p} {self.names.get(p, '')}".strip(): round(v, 1) for p, v in self.hwm.items()},
            "vmhwm_sum_mb": round(sum(self.hwm.values()), 1),
            "stage_peaks_mb": {k: {n: round(v) for n, v in d.items()} for k, d in self.stage_peaks.items()},
        }


# --------------------------------------------------------------------------------------------- build
class StaticAsModel(Embedder):
    """The static tier (no PCA: the model's dimension) under the real model's identity. Bench only."""

    batch_size = 256

    def __init__(self, config: EngineConfig) -> None:
        from engine.models import describe_model
        from engine.models.static import StaticEmbedder, StaticSettings

        self.info = describe_model(config)
        self.static = StaticEmbedder.from_model(
            self.info.path, settings=StaticSettings(pca_dims=0), threads=config.effective_threads()
        )
        if self.static.info.dimension != self.info.dimension:
            raise SystemExit(f"static dimension {self.static.info.dimension} != model {self.info.dimension}")

    def count_tokens(self, text: str) -> int:
        return self.static.count_tokens(text)

    def _embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return self.static._embed_texts(texts)


def cmd_build(args: argparse.Namespace) -> dict[str, Any]:
    from engine.workspace import Workspace

    config = EngineConfig(index_dir=args.index_dir)
    sampler = RssSampler(os.getpid())
    sampler.start()
    t0 = time.perf_counter()
    embedder = StaticAsModel(config)
    ready = time.perf_counter() - t0
    print(f"static table ready in {ready:.1f} s (dimension {embedder.info.dimension}); RSS {sampler.peak():.0f} MB")
    ws = Workspace(Path(args.workspace), config, embedder=embedder)
    last = [0.0]
    marks: list[dict[str, Any]] = []

    def progress(p: Any) -> None:
        now = time.perf_counter()
        sampler.stage = p.stage
        if now - last[0] >= 5 or p.done_files == p.total_files:
            last[0] = now
            rss = status_kb(os.getpid(), "VmRSS") / 1024
            marks.append({"t": round(now - t0, 1), "stage": p.stage, "done": p.done_files, "rss": rss})
            print(f"  {now - t0:7.1f} s {p.stage:8s} {p.done_files}/{p.total_files}  RSS {rss:.0f} MB", flush=True)

    started = time.perf_counter()
    if args.fill:
        # Phase 2 only, over an index whose phase 1 is written: bigger commits than the product's
        # (EMBED_WRITE_ROWS) so that 100K static vectors take minutes, not the better part of an hour.
        import engine.indexer

        engine.indexer.EMBED_WRITE_ROWS = args.fill
        stats = ws.embed_pending(progress, wait_for_lock=True)
    else:
        stats = ws.index(progress, embed=not args.phase1_only)
    seconds = time.perf_counter() - started
    sampler.stop.set()
    sampler.join()
    result = {
        "step": "build",
        "files": ws.count_files(),
        "chunks": ws.count_chunks(),
        "seconds": round(seconds, 1),
        "files_indexed": stats.files_indexed,
        "chunks_embedded": stats.chunks_embedded,
        "vector_index": ws.store.has_vector_index(),
        "rss_over_time": marks,
        **sampler.report(),
    }
    print(
        f"indexed {result['files']} files, {result['chunks']} chunks in {seconds:.0f} s; "
        f"peak RSS {result['peak_tree_rss_mb']} MB; vector index {result['vector_index']}"
    )
    return result


# --------------------------------------------------------------------------------------------- recall
def _all_vectors(table: Any) -> tuple[list[str], np.ndarray]:
    ids: list[str] = []
    parts: list[np.ndarray] = []
    for batch in table.search().select(["id", "vector"]).limit(None).to_batches(8192):
        ids.extend(batch["id"].to_pylist())
        column = batch["vector"]
        parts.append(column.flatten().to_numpy(zero_copy_only=False).reshape(len(column), -1))
    return ids, np.concatenate(parts).astype(np.float32)


def cmd_recall(args: argparse.Namespace) -> dict[str, Any]:
    """Recall@10 of the store's vector index against exact search, over real query and chunk vectors."""
    import shutil
    import tempfile

    import lancedb
    from lancedb.index import IvfFlat, IvfHnswSq, IvfPq, IvfSq

    from engine.models import load_embedder
    from engine.workspace import Workspace

    config = EngineConfig(index_dir=args.index_dir)
    ws = Workspace(Path(args.workspace), config)
    index_path = ws.index_path
    transformer = load_embedder(config, in_process=True)
    query_vectors = [transformer.embed_query(q) for q in QUERIES]
    transformer.close()
    # A copy of the chunks table: each index type is built on it in turn; the real index is untouched.
    tmp = Path(tempfile.mkdtemp(prefix="semcode-scale-recall-"))
    try:
        shutil.copytree(index_path / "lance" / "chunks.lance", tmp / "chunks.lance")
        table = lancedb.connect(str(tmp)).open_table("chunks")
        ids, matrix = _all_vectors(table)
        rng = np.random.default_rng(7)
        sample = rng.choice(len(ids), size=args.queries - len(query_vectors), replace=False)
        # Chunk vectors as queries (in-distribution) plus the transformer's query vectors of real questions.
        queries = np.vstack([np.stack(query_vectors), matrix[sample]])
        norms = np.linalg.norm(matrix, axis=1)
        truth = []
        for q in queries:
            scores = matrix @ q / np.maximum(norms * np.linalg.norm(q), 1e-12)
            truth.append({ids[i] for i in np.argpartition(-scores, 10)[:10]})
        flat_ms = []
        for q in queries[:30]:
            s = time.perf_counter()
            table.search(q).distance_type("cosine").bypass_vector_index().limit(10).select(["id"]).to_list()
            flat_ms.append((time.perf_counter() - s) * 1000)
        print(f"{len(ids)} rows, dimension {matrix.shape[1]}, {len(queries)} queries; load {load():.2f}")
        print(f"flat (exact) search: {summary(flat_ms)}")
        del matrix
        rows = len(ids)
        partitions = max(16, int(rows**0.5))
        kinds = {
            "ivf_flat": lambda: IvfFlat(distance_type="cosine", num_partitions=partitions),
            "ivf_sq": lambda: IvfSq(distance_type="cosine", num_partitions=partitions),
            "ivf_hnsw_sq": lambda: IvfHnswSq(distance_type="cosine", num_partitions=max(1, rows // 100_000 + 1)),
            "ivf_pq": lambda: IvfPq(distance_type="cosine", num_partitions=partitions),
        }
        results: list[dict[str, Any]] = []
        for kind in args.index_types.split(","):
            s = time.perf_counter()
            table.create_index("vector", config=kinds[kind](), replace=True)
            built = time.perf_counter() - s
            print(f"{kind}: built in {built:.1f} s (load {load():.2f})", flush=True)
            for nprobes in [int(n) for n in args.nprobes.split(",")]:
                for refine in [int(r) for r in args.refine.split(",")]:
                    hits, ms = [], []
                    for q, want in zip(queries, truth, strict=True):
                        s = time.perf_counter()
                        query = table.search(q).distance_type("cosine").limit(10).nprobes(nprobes)
                        if refine:
                            query = query.refine_factor(refine)
                        if kind == "ivf_hnsw_sq":
                            query = query.ef(args.ef)
                        got = {r["id"] for r in query.select(["id"]).to_list()}
                        ms.append((time.perf_counter() - s) * 1000)
                        hits.append(len(got & want) / 10)
                    recall = float(np.mean(hits))
                    row = {"kind": kind, "nprobes": nprobes, "refine": refine, "recall10": round(recall, 4)}
                    row |= {"p50_ms": round(statistics.median(ms), 2), "p95_ms": round(percentile(ms, 0.95), 2)}
                    row |= {"build_s": round(built, 1), "load": round(load(), 2)}
                    results.append(row)
                    print(f"  nprobes {nprobes:3d} refine {refine:2d}: recall@10 {recall:.3f}; {summary(ms)}")
                    if kind == "ivf_hnsw_sq":
                        break  # nprobes over one or two partitions: refine does not apply either
        return {"step": "recall", "rows": rows, "flat_ms": summary(flat_ms), "results": results}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------------------------- restart
def cmd_restart(args: argparse.Namespace) -> dict[str, Any]:
    """``Workspace.index()`` with nothing changed: the manifest comparison, profiled."""
    from engine.workspace import Workspace

    config = EngineConfig(index_dir=args.index_dir)
    t0 = time.perf_counter()
    ws = Workspace(Path(args.workspace), config)
    ws.open()
    opened = time.perf_counter() - t0
    runs = []
    profile = cProfile.Profile()
    for i in range(args.repeat):
        s = time.perf_counter()
        if i == args.repeat - 1:
            profile.enable()
        stats = ws.index(embed=True)
        if i == args.repeat - 1:
            profile.disable()
        runs.append(time.perf_counter() - s)
        print(
            f"run {i + 1}: {runs[-1]:.2f} s; {stats.files_seen} files seen, {stats.files_unchanged} unchanged, "
            f"{stats.files_indexed} indexed, {stats.chunks_embedded} embedded (load {load():.2f})",
            flush=True,
        )
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(args.top)
    print(out.getvalue())
    return {"step": "restart", "open_s": round(opened, 2), "runs_s": [round(r, 2) for r in runs]}


# --------------------------------------------------------------------------------------------- cli index
def rss_profile(sampler: RssSampler, every: float = 5.0) -> list[Any]:
    """The tree and each process every ``every`` s so far (which phase holds what), printed and returned;
    each step shows the largest sample within it, so a short peak is not skipped."""
    largest: dict[int, tuple[float, float, dict[int, float]]] = {}
    for sample in list(sampler.samples):
        step = int(sample[0] // every)
        if step not in largest or sample[1] > largest[step][1]:
            largest[step] = sample
    profile = [
        [round(t), round(tree), {sampler._role(p): round(mb) for p, mb in each.items() if mb}]
        for t, tree, each in (largest[step] for step in sorted(largest))
    ]
    print("  t s, tree MB (largest sample of each 5 s), per process: "
          + "; ".join(f"{t} {tree} {each}" for t, tree, each in profile))  # fmt: skip
    return profile


def cmd_cli(args: argparse.Namespace) -> dict[str, Any]:
    """``semcode index WS`` (``--full`` with ``--cli-full``) as a user runs it, its process tree sampled.

    With the index's embedding cache holding every vector (a chunker change, or ``--full`` over an
    index the model built), the run is phase 1, phase 2 from the cache, the vector index and the
    compaction, with the real model's workers: the memory of a whole index run in minutes."""
    command = [sys.executable, "-m", "semcode", "-v", "index", args.workspace, "--index-dir", args.index_dir, "--json"]
    if args.cli_full:
        command.append("--full")
    env = dict(os.environ, PYTHONPATH=args.code or str(ROOT))
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    sampler = RssSampler(proc.pid)
    sampler.stage = "index"
    sampler.start()
    out, err = proc.communicate()
    seconds = time.perf_counter() - started
    sampler.stop.set()
    sampler.join()
    for line in err.splitlines():
        if "worker started" in line or "worker stopped" in line or "vector index" in line:
            print("  " + line[:160])
    if proc.returncode != 0:
        raise SystemExit(f"semcode index failed ({proc.returncode}): {err[-2000:]}")
    summary = json.loads(out)
    profile = rss_profile(sampler)
    result = {"step": "cli", "seconds": round(seconds, 1), "summary": summary, "profile": profile, **sampler.report()}
    print(
        f"semcode index: {summary.get('files_indexed')} files, {summary.get('chunks_total')} chunks "
        f"in {seconds:.0f} s; "
        f"tree peak {result['peak_tree_rss_mb']} MB; per process VmHWM {json.dumps(result['vmhwm_mb'])}"
    )
    return result


# --------------------------------------------------------------------------------------------- serve (LSP)
class LspClient:
    """A minimal LSP client over stdio: requests with ids, replies to the server's own requests."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        self.next_id = 0
        self.replies: dict[int, queue.Queue[dict[str, Any]]] = {}
        self.lock = threading.Lock()
        self.progress: list[dict[str, Any]] = []
        self.updates: list[float] = []  # when each "re-indexed" log line of the server arrived (perf_counter)
        self.update_ms: list[float] = []  # what the server says each update took (Indexer.index_paths)
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_log, daemon=True).start()

    def _read_log(self) -> None:
        """The server's stderr, passed through; the arrival of each save's "re-indexed" line is noted:
        the moment its update committed (the log line is written right after ``update_files`` returns)."""
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode(errors="replace")
            if "re-indexed" in line:
                self.updates.append(time.perf_counter())
                took = re.search(r"re-indexed \d+ file\(s\) in (\d+) ms", line)
                if took:
                    self.update_ms.append(float(took.group(1)))
            sys.stderr.write(line)

    def _send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        with self.lock:
            write_message(self.proc.stdin, message)

    def _read(self) -> None:
        stream = self.proc.stdout
        assert stream is not None
        while (message := read_message(stream)) is not None:
            if "id" in message and "method" in message:  # a request from the server
                self._send({"jsonrpc": "2.0", "id": message["id"], "result": None})
            elif "id" in message:
                box = self.replies.get(message["id"])
                if box is not None:
                    box.put(message)
            elif message.get("method") == "$/progress":
                self.progress.append(message["params"])

    def request(self, method: str, params: Any, timeout: float = 120) -> Any:
        with self.lock:
            self.next_id += 1
            rid = self.next_id
            self.replies[rid] = queue.Queue()
        self._send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        reply = self.replies[rid].get(timeout=timeout)
        del self.replies[rid]
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    def notify(self, method: str, params: Any) -> None:
        self._send({"jsonrpc": "2.0", "method": method, "params": params})

    def close(self) -> None:
        try:
            self.request("shutdown", None, timeout=30)
            self.notify("exit", None)
            self.proc.wait(30)
        except Exception:  # noqa: BLE001 - a bench: make sure the server is gone
            self.proc.kill()


def _edit_target(root: Path) -> Path:
    """A Python file of moderate size to edit (one function's body changes per save)."""
    for candidate in sorted(root.rglob("*.py")):
        if "test" not in candidate.as_posix() and 4_000 < candidate.stat().st_size < 20_000:
            return candidate
    raise SystemExit("no Python file to edit")


def cmd_serve(args: argparse.Namespace) -> dict[str, Any]:
    root = Path(args.workspace).resolve()
    env = dict(os.environ, PYTHONPATH=args.code or str(ROOT))
    # --server-script: the server through a wrapper (e.g. one that times the save path's steps).
    entry = [args.server_script] if args.server_script else ["-m", "lsp_server"]
    command = [sys.executable, *entry, "--log-level", args.server_log_level]
    # Before the clock starts: the search for a file to edit walks the workspace (0.3-0.6 s warm), which
    # counted in the server's start figures and took CPU from it (sessions 4-6).
    target = _edit_target(root)
    original = target.read_text()
    t0 = time.perf_counter()
    client = LspClient(command, env)
    sampler = RssSampler(client.proc.pid)
    sampler.stage = "restart"
    sampler.start()
    result: dict[str, Any] = {"step": "serve", "load_start": round(load(), 2)}
    try:
        client.request(
            "initialize",
            {
                "processId": os.getpid(),
                "rootUri": root.as_uri(),
                "workspaceFolders": [{"uri": root.as_uri(), "name": root.name}],
                "capabilities": {"window": {"workDoneProgress": True}},
                "initializationOptions": {"indexDir": args.index_dir},
            },
        )
        client.notify("initialized", {})
        initialized = time.perf_counter() - t0
        status: dict[str, Any] = {}
        while time.perf_counter() - t0 < 600:
            status = client.request("semcode/status", {})
            folder = status["folders"][0] if status.get("folders") else {}
            if status["state"] == "ready" and not folder.get("partial") and folder.get("files"):
                break
            time.sleep(0.05)
        ready = time.perf_counter() - t0
        ends = [p["value"].get("message") for p in client.progress if p["value"].get("kind") == "end"]
        print(
            f"server: initialize answered {initialized:.2f} s, ready (not partial) {ready:.2f} s after start; "
            f"{status['files']} files, {status['chunks']} chunks; progress end: {ends}"
        )
        result |= {"initialize_s": round(initialized, 2), "ready_s": round(ready, 2), "files": status["files"]}
        result |= {"chunks": status["chunks"], "vector_index": status["folders"][0].get("vectorIndex")}
        if ready > 10:  # a first index (or a long restart): where its memory went
            result["profile_to_ready"] = rss_profile(sampler)
        rss_idle = sampler.report() | {"smaps_mb": sampler.smaps()}
        sampler.stage = "queries"
        # Queries over LSP (hybrid, as the editor sends them). First a warm-up round.
        for q in QUERIES[:5]:
            client.request("workspace/semanticSearch", {"query": q, "limit": 10})
        time.sleep(args.settle)  # the first query starts the name table's build (engine/names.py)
        latencies = []
        for i in range(args.queries):
            s = time.perf_counter()
            hits = client.request("workspace/semanticSearch", {"query": QUERIES[i % len(QUERIES)], "limit": 10})
            latencies.append((time.perf_counter() - s) * 1000)
            assert hits, "no hits"
        print(f"workspace/semanticSearch over LSP, {args.queries} queries: {summary(latencies)} (load {load():.2f})")
        result["query_ms"] = {"p50": statistics.median(latencies), "p95": percentile(latencies, 0.95)}
        # The tree right after the queries (the stage peak above also holds the name table's build).
        after_queries = sampler.smaps()
        result["rss_after_queries_mb"] = {k: v["Rss"] for k, v in after_queries.items()}
        tree_now = sum(v["Rss"] for v in after_queries.values())
        print(f"RSS right after the queries: tree {tree_now} MB, {result['rss_after_queries_mb']}")
        result["mappings_after_queries_mb"] = sampler.mappings()
        print(f"where it sits after the queries (MB): {json.dumps(result['mappings_after_queries_mb'])}")
        # didSave of one changed function: time until a search finds the new text.
        save_ms: list[float] = []
        if not args.saves:
            sampler.stop.set()
            sampler.join()
            result["rss_ready"] = rss_idle
            result["rss_end"] = sampler.report() | {"smaps_mb": sampler.smaps()}
            print(f"RSS after restart: {json.dumps(rss_idle)}")
            print(f"RSS at the end (queries): {json.dumps(result['rss_end'])}")
            return result
        sampler.stage = "saves"
        commit_ms: list[float] = []  # didSave -> the server's update committed (its log line)
        logged_before = len(client.update_ms)
        lines = original.splitlines(keepends=True)
        for n in range(args.saves):
            if args.pause_after and n == args.pause_after:  # a quiet spell: the due compaction starts in it
                time.sleep(args.pause_s)
            marker = f"zqscale{n}marker{os.getpid()}"
            edited = original + f"\n\ndef {marker}_helper(value):\n    return value  # {marker}\n"
            target.write_text(edited)
            s = time.perf_counter()
            client.notify("textDocument/didSave", {"textDocument": {"uri": target.as_uri()}})
            if args.save_wait == "log":  # no searches while the update runs: wait for its log line, then search
                while not [t for t in client.updates if t > s] and time.perf_counter() - s < 60:
                    time.sleep(0.002)
            while True:
                hits = client.request("workspace/semanticSearch", {"query": marker, "limit": 3})
                if any(marker in (h.get("preview") or "") or h.get("symbol", "").startswith(marker) for h in hits):
                    break
                if time.perf_counter() - s > 60:
                    raise SystemExit("the saved function never became searchable")
                time.sleep(0.005)
            save_ms.append((time.perf_counter() - s) * 1000)
            committed = [t for t in client.updates if t > s]
            if committed:
                commit_ms.append((committed[0] - s) * 1000)
        target.write_text(original)
        client.notify("textDocument/didSave", {"textDocument": {"uri": target.as_uri()}})
        debounce = 300.0
        net = [v - debounce for v in save_ms]
        print(
            f"didSave -> searchable ({target.relative_to(root)}, {len(lines)} lines), {args.saves} saves: "
            f"{summary(save_ms)}; minus the server's 300 ms save debounce: {summary(net)}"
        )
        if commit_ms:
            update = [v - debounce for v in commit_ms]
            print(f"didSave -> update committed, minus the debounce ({len(update)} saves): {summary(update)}")
            result["save_update_ms"] = {"p50": statistics.median(update), "p95": percentile(update, 0.95)}
        inside = client.update_ms[logged_before : logged_before + len(save_ms)]
        if inside:
            print(f"the server's update_files itself (index_paths, {len(inside)} saves): {summary(inside)}")
            result["save_index_paths_ms"] = {"p50": statistics.median(inside), "p95": percentile(inside, 0.95)}
        print(f"each save, didSave -> searchable minus the debounce: {[round(v) for v in net]}; "
              f"update_files: {[round(v) for v in inside]}")  # fmt: skip
        result["save_ms"] = {"p50": statistics.median(save_ms), "p95": percentile(save_ms, 0.95)}
        result["save_net_ms"] = {"p50": statistics.median(net), "p95": percentile(net, 0.95)}
        time.sleep(1.0)
        sampler.stop.set()
        sampler.join()
        result["rss_ready"] = rss_idle
        result["rss_end"] = sampler.report() | {"smaps_mb": sampler.smaps()}
        print(f"RSS after restart: {json.dumps(rss_idle)}")
        print(f"RSS at the end (queries + saves): {json.dumps(result['rss_end'])}")
        result["mappings_end_mb"] = sampler.mappings()
        print(f"where it sits at the end (MB): {json.dumps(result['mappings_end_mb'])}")
    finally:
        if target.read_text() != original:  # only when edited: a rewrite's new mtime made every next restart touch it
            target.write_text(original)
        client.close()
    result["load_end"] = round(load(), 2)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=["build", "recall", "restart", "serve", "cli"])
    parser.add_argument("workspace")
    parser.add_argument("--index-dir", required=True)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument(
        "--save-wait",
        choices=["poll", "log"],
        default="poll",
        help="serve: after didSave, poll searches (default) or wait for the server's re-index log line first",
    )
    parser.add_argument("--saves", type=int, default=20, help="serve: 0 = queries only (no file is edited)")
    parser.add_argument("--server-script", help="serve: run this Python script instead of `-m lsp_server`")
    parser.add_argument("--pause-after", type=int, default=0, help="serve: sleep --pause-s before this save (0: never)")
    parser.add_argument("--pause-s", type=float, default=12.0, help="serve: see --pause-after")
    parser.add_argument("--server-log-level", default="warning", help="serve: the server's --log-level")
    parser.add_argument("--settle", type=float, default=2.0, help="serve: seconds between warm-up and queries")
    parser.add_argument("--index-types", default="ivf_flat,ivf_hnsw_sq")
    parser.add_argument("--nprobes", default="10,20,40")
    parser.add_argument("--refine", default="0")
    parser.add_argument("--ef", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--phase1-only", action="store_true", help="build: chunks + lexical tier, no vectors")
    parser.add_argument("--fill", type=int, default=0, help="build: only phase 2, N rows per commit")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument(
        "--cli-full", action="store_true", help="cli: semcode index --full (drop the rows, keep the cache)"
    )
    parser.add_argument("--code", help="serve, cli: run the server / CLI from this source tree (default: this one)")
    parser.add_argument("--out", help="append the result as one JSON line to this file")
    args = parser.parse_args()
    print(f"{args.step}: {os.cpu_count()} cores, load {load():.2f}, {time.strftime('%H:%M:%S', time.gmtime())} UTC")
    step = {"build": cmd_build, "recall": cmd_recall, "restart": cmd_restart, "serve": cmd_serve, "cli": cmd_cli}
    step = step[args.step]
    result = step(args)
    result |= {"load_end": round(load(), 2), "utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime())}
    if args.out:
        with open(args.out, "a") as fh:
            fh.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
