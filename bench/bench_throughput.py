"""Transformer throughput against the machine's limit: sgemm GFLOP/s, then raw llama-cpp-python settings.

    .venv/bin/python bench/bench_throughput.py [--texts 400] [--sweep default|threads|format|all] [--json-out F]

1. sgemm: float32 numpy matmul (n=1024 and 2048) with 1 and 2 OpenBLAS threads, with and without
   OPENBLAS_CORETYPE (each in a fresh process, since OpenBLAS reads its environment at import).
2. The FLOP ceiling of the model in tokens/s: GFLOP/s divided by the model's FLOP per token
   (2 x parameters in the layers' matrices + attention at the texts' mean length), read from the GGUF.
3. Raw ``Llama.embed`` over real code (stdlib functions, as bench/bench_embed.py), one fresh process per
   setting: model format, threads, n_batch (= n_ubatch = n_ctx), texts sorted by token length within each
   write batch of 256 (what the indexer can do) or not, OMP_WAIT_POLICY. Tokens/s and % of the ceiling.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from engine.models.packing import next_fit_decodes  # noqa: E402 - light (no llama.cpp), after the path

FLUSH = 256  # chunks per indexer write batch (engine.indexer.WRITE_BATCH_CHUNKS)


# ------------------------------------------------------------------------------------------ children
def child_sgemm(n: int, repeats: int) -> dict[str, Any]:
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    a @ b  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    config: dict[str, Any] = {}
    with contextlib.suppress(Exception):  # the kernel OpenBLAS picked (numpy's bundled scipy-openblas)
        import ctypes
        import glob

        lib_dir = Path(np.__file__).parent.parent / "numpy.libs"
        lib = ctypes.CDLL(glob.glob(str(lib_dir / "libscipy_openblas*.so"))[0])
        lib.scipy_openblas_get_corename64_.restype = ctypes.c_char_p
        config = {
            "core": lib.scipy_openblas_get_corename64_().decode(),
            "threads": lib.scipy_openblas_get_num_threads64_(),
        }
    return {"n": n, "gflops": 2 * n**3 / best / 1e9, "seconds": best, "blas": config}


def child_embed(cfg: dict[str, Any]) -> dict[str, Any]:
    if cfg.get("nice"):
        os.nice(int(cfg["nice"]))  # as the index worker runs (engine/models/worker.py: INDEX_NICE)
    import llama_cpp
    from bench_embed import stdlib_functions

    from engine.models.backend import ensure_cpu_backend
    from engine.models.llama import quiet_llama_logs

    quiet_llama_logs()
    ensure_cpu_backend(llama_cpp)  # a dispatch build: the variant for this CPU (no-op otherwise)
    n_batch = cfg["n_batch"]
    with contextlib.redirect_stderr(io.StringIO()):
        llm = llama_cpp.Llama(
            model_path=cfg["model"], embedding=True, n_ctx=n_batch, n_batch=n_batch, n_ubatch=n_batch,
            n_threads=cfg["threads"], n_threads_batch=cfg["threads"], flash_attn=cfg.get("flash", True),
            verbose=True,
        )  # fmt: skip
    llm.verbose = False
    texts = stdlib_functions(cfg["texts"])
    lengths = [len(llm.tokenize(t.encode("utf-8"))) for t in texts]
    pairs = [(t, n) for t, n in zip(texts, lengths, strict=True) if n <= n_batch]
    if cfg["order"] == "sorted":
        ordered: list[tuple[str, int]] = []
        for i in range(0, len(pairs), FLUSH):
            ordered.extend(sorted(pairs[i : i + FLUSH], key=lambda p: p[1]))
        pairs = ordered
    if cfg["order"] == "ffd-call":  # what the engine did in session 3: FFD within each call of `group` texts
        from engine.models.llama import packing_order

        batches = []
        for i in range(0, len(pairs), cfg["group"]):
            call = pairs[i : i + cfg["group"]]
            batches.append([call[j] for j in packing_order([p[1] for p in call], n_batch)])
    elif cfg["order"] == "ffd":  # first-fit decreasing bins of n_batch tokens per write batch, calls of whole bins
        batches = []
        for i in range(0, len(pairs), FLUSH):
            bins: list[list[tuple[str, int]]] = []
            room: list[int] = []
            for pair in sorted(pairs[i : i + FLUSH], key=lambda p: -p[1]):
                for b, left in enumerate(room):
                    if pair[1] <= left:
                        bins[b].append(pair)
                        room[b] -= pair[1]
                        break
                else:
                    bins.append([pair])
                    room.append(n_batch - pair[1])
            call: list[tuple[str, int]] = []
            for b in bins:
                call.extend(b)
                if len(call) >= cfg["group"]:
                    batches.append(call)
                    call = []
            if call:
                batches.append(call)
    else:
        batches = [pairs[i : i + cfg["group"]] for i in range(0, len(pairs), cfg["group"])]
    decodes = sum(next_fit_decodes([p[1] for p in b], n_batch) for b in batches)
    llm.embed([p[0] for p in batches[0]])  # warm-up: page the weights in
    tokens = sum(p[1] for p in pairs)
    adaptive = cfg.get("adaptive", False)
    sampler = _OtherLoad() if adaptive else None
    used_one = 0
    others = _OtherLoad()  # CPU the rest of the machine used meanwhile: is this a quiet-machine figure?
    cpu0 = time.process_time()  # every thread of this process: with PASSIVE waits, ~the compute alone
    t0 = time.perf_counter()
    for batch in batches:
        if sampler is not None:
            # ggml's threads meet at a barrier after every graph node: one preempted thread stalls the
            # other, so with the cores taken by other processes one thread is faster than two.
            one = sampler.others_busy_cores() > 0.5
            used_one += one
            n = 1 if one else cfg["threads"]
            llama_cpp.llama_set_n_threads(llm._ctx.ctx, n, n)
        llm.embed([p[0] for p in batch], truncate=False)
    seconds = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    other_cores = others.others_busy_cores()
    llm.close()
    return {"tokens": tokens, "texts": len(pairs), "seconds": seconds, "tokens_per_s": tokens / seconds,
            "cpu_seconds": cpu, "tokens_per_cpu_s": tokens / cpu if cpu else 0.0,
            "mean_tokens": tokens / len(pairs), "batches_on_one_thread": used_one, "batches": len(batches),
            "decodes": decodes, "other_cores": other_cores}  # fmt: skip


class _OtherLoad:
    """CPU used by other processes since the last call, in cores (from /proc/stat and our own times)."""

    def __init__(self) -> None:
        self.ncpu = os.cpu_count() or 1
        self.last = self._sample()

    @staticmethod
    def _sample() -> tuple[float, float, float]:
        with open("/proc/stat") as fh:
            fields = [float(x) for x in fh.readline().split()[1:]]
        idle = fields[3] + fields[4]
        total = sum(fields[:8])
        t = os.times()
        tick = os.sysconf("SC_CLK_TCK")
        return total, idle, (t.user + t.system) * tick

    def others_busy_cores(self) -> float:
        now = self._sample()
        d_total, d_idle, d_own = (a - b for a, b in zip(now, self.last, strict=True))
        self.last = now
        if d_total <= 0:
            return 0.0
        return max(0.0, (d_total - d_idle - d_own) / d_total * self.ncpu)


def run_child(kind: str, payload: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    python = payload.get("python") or sys.executable  # another venv: e.g. a native (AVX-512) build
    full_env = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
    for key, value in env.items():
        if value == "":
            full_env.pop(key, None)
    out = subprocess.run(
        [python, __file__, "--child", kind, json.dumps(payload)],
        env=full_env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------ model FLOPs
def flop_per_token(model: str, mean_tokens: float) -> float:
    """2 x weights of the per-layer matrices + attention (QK^T and AV) at the mean sequence length."""
    from engine.models.gguf_file import inspect_gguf

    meta = inspect_gguf(model).metadata
    arch = meta["general.architecture"]
    d = int(meta[f"{arch}.embedding_length"])
    ff = int(meta[f"{arch}.feed_forward_length"])
    layers = int(meta[f"{arch}.block_count"])
    per_layer = 2 * (4 * d * d + 2 * d * ff) + 2 * 2 * mean_tokens * d
    return layers * per_layer


def model_file(fmt: str) -> str:
    from engine.models.provision import default_model_path

    return str(default_model_path(quant=fmt))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--texts", type=int, default=400)
    sweeps = ("sgemm", "default", "batch", "format", "all", "speed", "s4", "blas", "native")
    ap.add_argument("--sweep", default="default", choices=sweeps)
    ap.add_argument("--blas", default="/tmp/speed-blas-venv/bin/python",
                    help="a Python whose llama.cpp has ggml's BLAS backend (OpenBLAS): --sweep blas")  # fmt: skip
    ap.add_argument("--native", default="/tmp/native-venv/bin/python", help="a Python with a native llama.cpp build")
    ap.add_argument("--label", default="", help="a note for the output (e.g. 'busy x2')")
    ap.add_argument("--json-out")
    args = ap.parse_args()
    if args.child:
        kind, payload = args.child
        data = json.loads(payload)
        result = child_sgemm(**data) if kind == "sgemm" else child_embed(data)
        print(json.dumps(result))
        return 0

    rows: list[dict[str, Any]] = []
    load = os.getloadavg()[0]
    coretype = os.environ.get("OPENBLAS_CORETYPE", "")
    print(f"# load average {load:.2f} at start; OPENBLAS_CORETYPE={coretype or '(unset)'}; {args.label}")
    best_gflops = 0.0
    if args.sweep in ("sgemm", "default", "all", "speed", "s4", "blas", "native"):
        session4 = args.sweep in ("s4", "blas", "native")  # the kernel OpenBLAS picks, nothing else
        cores = [""] if session4 else sorted({coretype, "", "Haswell", "SkylakeX", "SapphireRapids"})
        for core in cores:
            for threads in (1, 2):
                env = {"OPENBLAS_NUM_THREADS": str(threads), "OPENBLAS_CORETYPE": core}
                r = run_child("sgemm", {"n": 2048, "repeats": 5}, env)
                r.update(kind="sgemm", threads=threads, coretype=core or "(unset)")
                rows.append(r)
                best_gflops = max(best_gflops, r["gflops"] if threads == 2 else 0.0)
                print(f"sgemm n=2048 threads={threads} CORETYPE={core or '(unset)':<15} {r['gflops']:7.1f} GFLOP/s"
                      f"  {r['blas']}", flush=True)  # fmt: skip
    if args.sweep == "sgemm":
        return 0
    if not best_gflops:
        r = run_child("sgemm", {"n": 2048, "repeats": 5}, {"OPENBLAS_NUM_THREADS": "2"})
        best_gflops = r["gflops"]

    base = {"model": model_file("q8_0"), "threads": 2, "n_batch": 512, "order": "as-is", "group": 32,
            "texts": args.texts}  # fmt: skip
    settings: list[tuple[str, dict[str, Any], dict[str, str]]] = [("q8_0 2t b512 as-is", base, {})]
    if args.sweep == "speed":  # what the worker runs (PASSIVE, 32 texts a call) against each change alone
        passive = {"OMP_WAIT_POLICY": "PASSIVE"}
        settings = [
            ("q8_0 2t as-is PASSIVE (product)", base, passive),
            ("q8_0 2t ffd PASSIVE", {**base, "order": "ffd"}, passive),
            ("q8_0 2t sorted PASSIVE", {**base, "order": "sorted"}, passive),
            ("q8_0 2t ffd g64 PASSIVE", {**base, "order": "ffd", "group": 64}, passive),
            ("q8_0 2t as-is spinning OMP", base, {"OMP_WAIT_POLICY": ""}),
            ("q8_0 1t as-is PASSIVE", {**base, "threads": 1}, passive),
            ("f32 2t as-is PASSIVE", {**base, "model": model_file("f32")}, passive),
            ("f32 2t ffd PASSIVE", {**base, "order": "ffd", "model": model_file("f32")}, passive),
            ("f16 2t as-is PASSIVE", {**base, "model": model_file("f16")}, passive),
            ("q8_0 2t as-is PASSIVE (product, again)", base, passive),
        ]
    if args.sweep == "s4":  # session 4: packing scope, build, format, waiting policy (quiet machine)
        passive = {"OMP_WAIT_POLICY": "PASSIVE"}
        native = {"python": args.native}
        f32 = {"model": model_file("f32")}
        settings = [
            ("q8_0 as-is (no packing)", base, passive),
            ("q8_0 ffd per call (s3 engine)", {**base, "order": "ffd-call"}, passive),
            ("q8_0 ffd per 256", {**base, "order": "ffd"}, passive),
            ("q8_0 ffd per 256 spinning", {**base, "order": "ffd"}, {"OMP_WAIT_POLICY": ""}),
            ("f32 ffd per 256", {**base, "order": "ffd", **f32}, passive),
            ("native q8_0 as-is", {**base, **native}, passive),
            ("native q8_0 ffd per 256", {**base, "order": "ffd", **native}, passive),
            ("native f32 ffd per 256", {**base, "order": "ffd", **f32, **native}, passive),
            ("q8_0 ffd per 256 g64", {**base, "order": "ffd", "group": 64}, passive),
            ("q8_0 ffd per call (s3 engine), again", {**base, "order": "ffd-call"}, passive),
        ]
    if args.sweep == "blas":  # session 4: ggml's BLAS backend (OpenBLAS sgemm for the matmuls) vs the product
        passive = {"OMP_WAIT_POLICY": "PASSIVE"}
        blas = {"python": args.blas}
        f32 = {"model": model_file("f32")}
        ffd = {**base, "order": "ffd"}
        settings = [
            ("q8_0 ffd per 256 (product)", ffd, passive),
            ("blas f32 ffd per 256", {**ffd, **f32, **blas}, passive),
            ("f32 ffd per 256", {**ffd, **f32}, passive),
            ("blas q8_0 ffd per 256", {**ffd, **blas}, passive),
            (
                "blas f32 ffd per 256, OpenBLAS 1 thread",
                {**ffd, **f32, **blas},
                {**passive, "OPENBLAS_NUM_THREADS": "1"},
            ),
            ("q8_0 ffd per 256 (product), again", ffd, passive),
            ("blas f32 ffd per 256, again", {**ffd, **f32, **blas}, passive),
        ]
    if args.sweep == "native":  # the product against a native (AVX-512) build, alternated
        passive = {"OMP_WAIT_POLICY": "PASSIVE"}
        ffd = {**base, "order": "ffd"}
        native = {**ffd, "python": args.native}
        settings = [
            ("q8_0 ffd per 256 (product)", ffd, passive),
            ("native q8_0 ffd per 256", native, passive),
            ("native f32 ffd per 256", {**native, "model": model_file("f32")}, passive),
            ("q8_0 ffd per 256 (product), again", ffd, passive),
            ("native q8_0 ffd per 256, again", native, passive),
        ]
    if args.sweep in ("default", "batch", "all"):
        settings += [
            ("q8_0 2t b512 sorted", {**base, "order": "sorted"}, {}),
            ("q8_0 2t b512 ffd", {**base, "order": "ffd"}, {}),
            ("q8_0 2t b512 ffd PASSIVE", {**base, "order": "ffd"}, {"OMP_WAIT_POLICY": "PASSIVE"}),
            ("q8_0 2t b256 sorted", {**base, "order": "sorted", "n_batch": 256}, {}),
            ("q8_0 2t b512 sorted g256", {**base, "order": "sorted", "group": 256}, {}),
            ("q8_0 2t b512 sorted PASSIVE", {**base, "order": "sorted"}, {"OMP_WAIT_POLICY": "PASSIVE"}),
            ("q8_0 1t b512 sorted", {**base, "order": "sorted", "threads": 1}, {}),
            ("q8_0 2t b512 sorted adaptive", {**base, "order": "sorted", "adaptive": True}, {}),
            (
                "q8_0 2t b512 sorted adaptive PASSIVE",
                {**base, "order": "sorted", "adaptive": True},
                {"OMP_WAIT_POLICY": "PASSIVE"},
            ),
        ]
    if args.sweep in ("format", "all"):
        settings += [
            ("f32 2t b512 sorted", {**base, "order": "sorted", "model": model_file("f32")}, {}),
            ("f16 2t b512 sorted", {**base, "order": "sorted", "model": model_file("f16")}, {}),
            (
                "f32 2t b512 ffd PASSIVE",
                {**base, "order": "ffd", "model": model_file("f32")},
                {"OMP_WAIT_POLICY": "PASSIVE"},
            ),
        ]
    if args.sweep == "all":
        settings += [
            ("q8_0 2t b128 sorted", {**base, "order": "sorted", "n_batch": 128}, {}),
            ("q8_0 2t b512 sorted noflash", {**base, "order": "sorted", "flash": False}, {}),
        ]
    for name, cfg, env in settings:
        r = run_child("embed", cfg, env)
        ceiling = best_gflops * 1e9 / flop_per_token(cfg["model"], r["mean_tokens"])
        r.update(kind="embed", setting=name, env=env, ceiling_tokens_per_s=ceiling,
                 pct_of_ceiling=100 * r["tokens_per_s"] / ceiling, load_start=load, label=args.label)  # fmt: skip
        rows.append(r)
        print(f"{name:<30} {r['tokens_per_s']:8,.0f} tokens/s  {r['pct_of_ceiling']:5.1f}% of {ceiling:,.0f} "
              f"({r['texts']} texts, {r['mean_tokens']:.0f} tokens/text, {r['decodes']} decodes, {r['seconds']:.1f}s; "
              f"{r['tokens_per_cpu_s']:,.0f} tokens per CPU-second; others used {r['other_cores']:.2f} cores)",
              flush=True)  # fmt: skip
    print(f"# load average {os.getloadavg()[0]:.2f} at end")
    if args.json_out:
        with open(args.json_out, "a") as handle:
            for row in rows:
                handle.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
