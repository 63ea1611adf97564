"""Embedding throughput: semcode's Embedder.embed_batch pipeline vs raw llama-cpp-python, same run.

Usage: python bench/bench_embed.py [--model PATH] [--chunks 1000] [--threads N] [--batch 32] [--rounds 1]
                                   [--engine worker|inprocess]

The engine side is what ``load_embedder`` returns: by default the ``WorkerEmbedder`` (llama.cpp in a child
process, tokens counted in this process), or the in-process ``LlamaEmbedder`` with ``--engine inprocess``.
The raw side always runs in this process. Both use OMP_WAIT_POLICY=PASSIVE (what the worker sets) unless
the variable is already set.

The texts are real code: function sources from the Python standard library (ast, deterministic order).
Both sides load the same GGUF with the same settings (n_ctx = n_batch = n_ubatch, flash attention,
threads); batches are timed alternately (engine first on even batches, raw first on odd ones) so
that drift in machine load hits both sides alike. Output goes to stdout (this is a tool, not the server).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import io
import os
import platform
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before llama_cpp (libgomp) is loaded

from engine.config import EngineConfig
from engine.models import load_embedder
from engine.models.llama import quiet_llama_logs
from engine.models.packing import packed_calls


def stdlib_functions(count: int, min_chars: int = 120, max_chars: int = 1500) -> list[str]:
    """Function sources from the stdlib, in sorted file order: the same list on every run."""
    root = Path(sysconfig.get_paths()["stdlib"])
    out: list[str] = []
    for path in sorted(root.rglob("*.py")):
        if "test" in path.parts or "site-packages" in path.parts or "idlelib" in path.parts:
            continue
        try:
            source = path.read_text(encoding="utf-8")
            tree = ast.parse(source)
        except (SyntaxError, UnicodeDecodeError, ValueError, OSError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                text = ast.get_source_segment(source, node)
                if text and min_chars <= len(text) <= max_chars:
                    out.append(text)
                    if len(out) >= count:
                        return out
    return out


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


@dataclass
class Side:
    name: str
    seconds: float = 0.0

    def rate(self, tokens: int) -> float:
        return tokens / self.seconds if self.seconds else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="GGUF file (default: the provisioned all-MiniLM-L6-v2)")
    ap.add_argument("--chunks", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=0, help="0 = physical cores")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--raw-mode", choices=("list", "single"), default="list",
                    help="raw side: Llama.embed(batch) or one Llama.embed(text) per text")  # fmt: skip
    ap.add_argument("--engine", choices=("worker", "inprocess"), default="worker")
    ap.add_argument("--write-batch", type=int, default=256,
                    help="texts per engine call of embed_packed, as the indexer's write batch "
                    "(0: embed_batch per --batch texts, the session-3 engine); "
                    "raw: the same texts in calls of --batch")  # fmt: skip
    ap.add_argument("--index-nice", type=int, default=0,
                    help="nice of the worker's index child (the product uses 10; 0 = same footing as raw)")  # fmt: skip
    args = ap.parse_args()

    config = EngineConfig(model_path=args.model, threads=args.threads, batch_size=args.batch)
    embedder = load_embedder(config, in_process=args.engine == "inprocess")
    if hasattr(embedder, "_index"):  # the index child starts lazily: its priority can still be chosen
        embedder._index.nice = args.index_nice  # type: ignore[attr-defined]
    model_path = embedder.info.path
    n_ctx = embedder.info.context_length
    threads = config.effective_threads()

    import llama_cpp

    from engine.models.backend import ensure_cpu_backend

    quiet_llama_logs()
    backend = ensure_cpu_backend(llama_cpp)  # a dispatch build: the variant for this CPU (no-op otherwise)
    print(f"llama.cpp CPU backend (raw side): {backend.describe()}")
    with contextlib.redirect_stderr(io.StringIO()):
        raw = llama_cpp.Llama(
            model_path=model_path, embedding=True, n_ctx=n_ctx, n_batch=n_ctx, n_ubatch=n_ctx,
            n_threads=threads, n_threads_batch=threads, flash_attn=True, verbose=True,
        )  # fmt: skip
    raw.verbose = False  # verbose=True only to keep llama-cpp-python's hands off fd 1, as the engine does

    texts = stdlib_functions(args.chunks)
    tokens_each = [embedder.count_tokens(t) for t in texts]
    fits = [t for t, n in zip(texts, tokens_each, strict=True) if n <= n_ctx]  # raw would cut the others
    tokens = sum(n for n in tokens_each if n <= n_ctx)
    group = args.write_batch or args.batch
    batches = [fits[i : i + group] for i in range(0, len(fits), group)]

    # warm-up: page the weights in, build the graphs
    list(embedder.embed_batch(batches[0][: args.batch]))
    raw.embed(batches[0][: args.batch])

    method = "embed_packed" if args.write_batch else "embed_batch"
    engine_side = Side(f"engine {type(embedder).__name__}.{method}")
    raw_side = Side(f"raw Llama.embed ({args.raw_mode}, calls of {args.batch} in input order)")
    planned_side = Side("raw Llama.embed, the engine's packing plan")

    def run_engine(batch: list[str]) -> None:
        if args.write_batch:
            for _ in embedder.embed_packed(batch, batch_size=args.batch):
                pass
        else:
            for _ in embedder.embed_batch(batch, batch_size=args.batch):
                pass

    def run_raw(batch: list[str]) -> None:
        for i in range(0, len(batch), args.batch):
            if args.raw_mode == "list":
                raw.embed(batch[i : i + args.batch], normalize=True)
            else:
                for text in batch[i : i + args.batch]:
                    raw.embed(text, normalize=True)

    def run_planned(batch: list[str]) -> None:  # raw with the same plan: the pipeline's own overhead
        lengths = [len(raw.tokenize(t.encode("utf-8"))) for t in batch]
        for call in packed_calls(lengths, n_ctx, args.batch):
            raw.embed([batch[j] for j in call], normalize=True)

    sides = [(engine_side, run_engine), (raw_side, run_raw)]
    if args.write_batch:
        sides.append((planned_side, run_planned))
    for r in range(args.rounds):
        for i, batch in enumerate(batches):
            order = sides[(i + r) % len(sides) :] + sides[: (i + r) % len(sides)]
            for side, fn in order:
                t0 = time.perf_counter()
                fn(batch)
                side.seconds += time.perf_counter() - t0

    total_tokens = tokens * args.rounds
    print(f"machine: {os.cpu_count()} logical cores, {cpu_model()}, {platform.platform()}")
    print(f"python {platform.python_version()}, llama-cpp-python {llama_cpp.__version__}")
    print(
        f"model: {Path(model_path).name} ({os.path.getsize(model_path) / 1e6:.1f} MB), dim "
        f"{embedder.info.dimension}, pooling {embedder.info.pooling}"
    )
    print(f"settings: n_ctx=n_batch=n_ubatch={n_ctx}, flash_attn=on, threads={threads}, batch={args.batch}")
    print(
        f"texts: {len(fits)} stdlib functions ({len(texts) - len(fits)} over {n_ctx} tokens skipped), "
        f"{tokens:,} tokens, {tokens / max(1, len(fits)):.0f} tokens/text, rounds={args.rounds}"
    )
    for side, _ in sides:
        print(f"{side.name:36s} {side.rate(total_tokens):8,.0f} tokens/s  ({side.seconds:.1f} s)")
    print(f"ratio engine/raw: {engine_side.rate(total_tokens) / raw_side.rate(total_tokens):.3f}")
    if args.write_batch:
        same_plan = engine_side.rate(total_tokens) / planned_side.rate(total_tokens)
        print(f"ratio engine/raw with the same plan: {same_plan:.3f}")
    count_us = _time_us(lambda: [embedder.count_tokens(t) for t in fits[:200]]) / min(200, len(fits))
    print(f"count_tokens: {count_us:.1f} us/text ({type(embedder).__name__}, {os.environ['OMP_WAIT_POLICY']=})")
    pids = getattr(embedder, "pids", None)
    if pids:
        from engine.models.worker_main import encode_json

        ping = encode_json(b"J", {"op": "ping"})
        ipc_us = _time_us(lambda: [embedder._index.call(ping, 10.0) for _ in range(200)]) / 200  # type: ignore[attr-defined]
        print(f"one IPC round trip (ping to the index worker): {ipc_us:.1f} us")
    print(f"peak RSS (MB): {_rss(pids)}")
    embedder.close()
    raw.close()


def _time_us(fn: object) -> float:
    t0 = time.perf_counter()
    fn()  # type: ignore[operator]
    return (time.perf_counter() - t0) * 1e6


def _rss(pids: dict[str, int | None] | None) -> str:
    """Peak RSS (VmHWM) of this process and of each worker child."""

    def hwm(pid: int | str) -> float:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    parts = {"this process": hwm("self")}
    for role, pid in (pids or {}).items():
        if pid:
            parts[f"{role} worker"] = hwm(pid)
    total = sum(parts.values())
    return ", ".join(f"{k} {v:.0f}" for k, v in parts.items()) + f"; total {total:.0f}"


if __name__ == "__main__":
    main()
