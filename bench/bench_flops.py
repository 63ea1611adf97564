"""Embedding throughput against the FLOP ceiling, as ratios inside one run (BENCHMARKS.md "flops (session 5)").

    flock /tmp/semcode-heavy.lock python bench/bench_flops.py --sweep levers --rounds 2 [--json-out F]

The machine is shared, so absolute tokens/s drift with the others' load; what this measures is each
setting against the product setting *in the same round*: every round runs sgemm (the ceiling) and then
every setting once, each in a fresh process, in an order that alternates between rounds, and the product
setting first and last. Reported per setting: tokens/s (median over rounds), % of the ceiling measured in
the same round, the ratio to the product in the same round (median), and the CPU the rest of the machine
used meanwhile ("others", cores).

Sweeps (each lever alone against the product: Q8_0, 2 threads, PASSIVE, n_batch 512, flash attention,
one first-fit-decreasing plan per write batch of 256 texts, the portable build):
- ``attention``: synthetic texts of exactly L tokens packed into full 512-token decodes, flash on/off.
  If llama.cpp computed attention over the whole ubatch (n_tokens x n_kv with a mask), the cost per token
  would not depend on L; if it skipped masked pairs it would fall with L.
- ``levers``: per-decode token cap (one ``embed`` call per bin of 128/256 tokens: a decode's attention
  spans at most that many tokens), flash off, 1 thread, OpenMP spinning, F32, F16, and the native build.
- ``builds``: the product against a CPU-specific build (``--build NAME=PYTHON``), Q8_0 and F32.
- ``decodes``: n_batch = n_ubatch = n_ctx of 1024-4096 tokens (every text still within the model's 512
  positions, so several texts share each decode), calls of as many texts per decode as the product's,
  and (``--bf16``) BF16 at 512 and 2048 (flops9, session 9).
- ``caps``: decodes of at most 192-384 tokens (one ``embed`` call per FFD bin; n_ctx stays 512), Q8_0 and BF16.
- ``files``: other GGUF files of the model (``--model NAME=FILE``, e.g. BF16 derived from the shipped Q8_0).
- ``bf16``: BF16 (``--bf16 FILE``) with full 512-token decodes and with each ``--caps`` cap, and any
  ``--model NAME=FILE`` beside (flops10, session 10: the per-format decode cap).
- ``engine``: the engine's own ``LlamaEmbedder.embed_packed`` (per write batch) on the product's file and on
  each ``--model NAME=FILE`` (the "decodes" column then shows n_batch).
- ``kv``: the KV cache's type (what flash attention reads K and V in): F32 and BF16 against the default F16,
  for the product and for BF16 (``--bf16 FILE``).
- ``waits``: OpenMP's wait at ggml's per-node barriers: a short spin (``GOMP_SPINCOUNT``), ACTIVE, pinned.
- ``formats``: Q8_0, F32 and (``--bf16 FILE``) BF16 on the product's build and on each ``--build`` (the
  runtime-dispatch build of session 6 against the portable one); each row names the CPU backend loaded.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_throughput import FLUSH, _OtherLoad, child_sgemm, flop_per_token, model_file  # noqa: E402

from engine.models.packing import ffd_bins, next_fit_decodes, packed_calls  # noqa: E402

PASSIVE = {"OMP_WAIT_POLICY": "PASSIVE"}


def _texts(cfg: dict[str, Any], llm: Any) -> list[tuple[str, int]]:
    if cfg.get("synthetic"):  # "a" is one WordPiece token: [CLS] + (L-2) x "a" + [SEP] = L tokens
        length = int(cfg["synthetic"])
        text = " ".join(["a"] * (length - 2))
        n = len(llm.tokenize(text.encode()))
        assert n == length, (n, length)
        count = max(1, cfg["synthetic_tokens"] // length)
        return [(text, n)] * count
    from bench_embed import stdlib_functions

    texts = stdlib_functions(cfg["texts"])
    pairs = [(t, len(llm.tokenize(t.encode("utf-8")))) for t in texts]
    return [p for p in pairs if p[1] <= cfg.get("max_text", cfg["n_batch"])]  # one text <= the model's positions


def _calls(pairs: list[tuple[str, int]], cfg: dict[str, Any]) -> tuple[list[list[tuple[str, int]]], int]:
    """The embed() calls of a setting and how many decodes they make."""
    n_batch = cfg["n_batch"]
    cap = int(cfg.get("decode_cap") or n_batch)
    calls: list[list[tuple[str, int]]] = []
    for i in range(0, len(pairs), FLUSH):
        batch = pairs[i : i + FLUSH]
        lengths = [p[1] for p in batch]
        if cap < n_batch:  # one call per bin of `cap` tokens: every decode holds at most `cap` tokens
            calls += [[batch[j] for j in b] for b in ffd_bins(lengths, cap)]
        else:  # the engine: one plan per write batch, calls of whole bins of about 32 texts
            calls += [[batch[j] for j in c] for c in packed_calls(lengths, n_batch, cfg["group"])]
    decodes = sum(next_fit_decodes([p[1] for p in c], n_batch) for c in calls)
    return calls, decodes


def child_embed(cfg: dict[str, Any]) -> dict[str, Any]:
    import llama_cpp

    from engine.models.backend import ensure_cpu_backend
    from engine.models.llama import quiet_llama_logs

    quiet_llama_logs()
    backend = ensure_cpu_backend(llama_cpp)  # a dispatch build: the variant for this CPU (no-op otherwise)
    n_batch = cfg["n_batch"]
    with contextlib.redirect_stderr(io.StringIO()):
        llm = llama_cpp.Llama(
            model_path=cfg["model"], embedding=True, n_ctx=n_batch, n_batch=n_batch, n_ubatch=n_batch,
            n_threads=cfg["threads"], n_threads_batch=cfg["threads"], flash_attn=cfg["flash"], verbose=True,
            **({"type_k": cfg["type_kv"], "type_v": cfg["type_kv"]} if "type_kv" in cfg else {}),
        )  # fmt: skip
    llm.verbose = False
    pairs = _texts(cfg, llm)
    calls, decodes = _calls(pairs, cfg)
    llm.embed([p[0] for p in calls[0]])  # warm-up: page the weights in
    tokens = sum(p[1] for p in pairs)
    others = _OtherLoad()
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    for call in calls:
        llm.embed([p[0] for p in call], truncate=False)
    seconds = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    other_cores = others.others_busy_cores()
    system = llama_cpp.llama_print_system_info().decode()
    llm.close()
    return {"tokens": tokens, "texts": len(pairs), "seconds": seconds, "tokens_per_s": tokens / seconds,
            "tokens_per_cpu_s": tokens / cpu if cpu else 0.0, "mean_tokens": tokens / len(pairs),
            "calls": len(calls), "decodes": decodes, "other_cores": other_cores,
            "avx512": "AVX512 = 1" in system, "cpu_variant": backend.variant or "built in"}  # fmt: skip


def child_engine(cfg: dict[str, Any]) -> dict[str, Any]:
    """The engine's own path (flops10): ``LlamaEmbedder.embed_packed`` per write batch of FLUSH texts, so the
    packing is the product's, not a replica."""
    import llama_cpp

    from engine.models.llama import LlamaEmbedder

    embedder = LlamaEmbedder(cfg["model"], threads=cfg["threads"])
    backend = embedder.cpu_backend
    pairs = [(t, n) for t, n in _texts(cfg, embedder._llm)]
    texts = [p[0] for p in pairs]
    embedder._embed_texts(texts[:32])  # warm-up: page the weights in
    tokens = sum(p[1] for p in pairs)
    others = _OtherLoad()
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    for i in range(0, len(texts), FLUSH):
        for _ in embedder.embed_packed(texts[i : i + FLUSH], batch_size=cfg["group"]):
            pass
    seconds = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    system = llama_cpp.llama_print_system_info().decode()
    embedder.close()
    return {"tokens": tokens, "texts": len(pairs), "seconds": seconds, "tokens_per_s": tokens / seconds,
            "tokens_per_cpu_s": tokens / cpu if cpu else 0.0, "mean_tokens": tokens / len(pairs),
            "calls": 0, "decodes": embedder.n_ctx, "other_cores": others.others_busy_cores(),
            "avx512": "AVX512 = 1" in system, "cpu_variant": backend.variant or "built in"}  # fmt: skip


def run_child(kind: str, payload: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    python = payload.get("python") or sys.executable
    full_env = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
    for key, value in env.items():
        if value == "":
            full_env.pop(key, None)
    out = subprocess.run(
        [python, __file__, "--child", kind, json.dumps(payload)],
        env=full_env, capture_output=True, text=True, check=True, timeout=600,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def settings(
    sweep: str,
    texts: int,
    builds: dict[str, str],
    bf16: str = "",
    caps: tuple[int, ...] = (192, 256, 384),
    files: dict[str, str] | None = None,
) -> list[tuple[str, dict[str, Any], dict[str, str]]]:
    product = {"model": model_file("q8_0"), "threads": 2, "n_batch": 512, "group": 32, "texts": texts,
               "flash": True, "max_text": 512}  # fmt: skip
    out: list[tuple[str, dict[str, Any], dict[str, str]]] = [("product", product, PASSIVE)]
    if sweep in (
        "bf16",
        "files",
        "engine",
        "kv",
    ):  # no F32/F16 file needed (nor the weights package they are made from)
        f32 = f16 = {}
    else:
        f32, f16 = {"model": model_file("f32")}, {"model": model_file("f16")}
    if sweep == "attention":
        out = []
        for flash in (True, False):
            for length in (32, 128, 512):
                cfg = {**product, "synthetic": length, "synthetic_tokens": 24_576, "flash": flash}
                out.append((f"L={length} flash={'on' if flash else 'off'}", cfg, PASSIVE))
        for name, python in builds.items():  # flash on only: what the engine runs
            for length in (32, 128, 512):
                cfg = {**product, "synthetic": length, "synthetic_tokens": 24_576, "python": python}
                out.append((f"{name} L={length} flash=on", cfg, PASSIVE))
        return out
    if sweep == "levers":
        out += [
            ("decode cap 256", {**product, "decode_cap": 256}, PASSIVE),
            ("decode cap 128", {**product, "decode_cap": 128}, PASSIVE),
            ("flash off", {**product, "flash": False}, PASSIVE),
            ("1 thread", {**product, "threads": 1}, PASSIVE),
            ("OMP spinning (default policy)", product, {"OMP_WAIT_POLICY": ""}),
            ("OMP ACTIVE", product, {"OMP_WAIT_POLICY": "ACTIVE"}),
            ("F32", {**product, **f32}, PASSIVE),
            ("F16", {**product, **f16}, PASSIVE),
        ]
    if sweep == "decodes":  # flops9 (session 9): decodes of several model contexts, each text still <= 512
        for n_batch in (1024, 2048, 4096):
            out += [(f"n_batch {n_batch}", {**product, "n_batch": n_batch, "group": 32 * n_batch // 512}, PASSIVE)]
        out += [(f"n_batch {n_batch} calls of 32", {**product, "n_batch": n_batch}, PASSIVE) for n_batch in (2048,)]
        if bf16:
            out += [("BF16", {**product, "model": bf16}, PASSIVE)]
            out += [("BF16 n_batch 2048", {**product, "model": bf16, "n_batch": 2048, "group": 128}, PASSIVE)]
        return out
    if sweep == "caps":  # flops9: decodes of fewer tokens than the context (one embed call per FFD bin)
        for cap in caps:
            out += [(f"decode cap {cap}", {**product, "decode_cap": cap}, PASSIVE)]
        if bf16:
            out += [("BF16", {**product, "model": bf16}, PASSIVE)]
            out += [
                (f"BF16 decode cap {cap}", {**product, "model": bf16, "decode_cap": cap}, PASSIVE) for cap in caps[-1:]
            ]
        return out
    if sweep == "bf16":  # flops10: BF16 (--bf16 FILE) at the full decode and at each cap, other files beside
        out += [("BF16", {**product, "model": bf16}, PASSIVE)]
        out += [(f"BF16 decode cap {cap}", {**product, "model": bf16, "decode_cap": cap}, PASSIVE) for cap in caps]
        return out + [(name, {**product, "model": path}, PASSIVE) for name, path in (files or {}).items()]
    if sweep == "kv":  # flops10: the KV cache's type (flash attention reads K and V in it): F16 (default), F32, BF16
        out += [("product KV F32", {**product, "type_kv": 0}, PASSIVE)]
        out += [("BF16", {**product, "model": bf16}, PASSIVE)]
        out += [
            (f"BF16 KV {n}", {**product, "model": bf16, "type_kv": t}, PASSIVE) for n, t in (("F32", 0), ("BF16", 30))
        ]
        return out
    if sweep == "engine":  # flops10: the engine's LlamaEmbedder.embed_packed on each file (its own decode cap)
        out = [("product", {**product, "engine": True}, PASSIVE)]
        for name, path in (files or {}).items():
            out += [(name, {**product, "model": path, "engine": True}, PASSIVE)]
        for build, python in builds.items():  # session 13: the same on another build (--build NAME=PYTHON)
            for name, path in (files or {}).items():
                out += [(f"{build} {name}", {**product, "model": path, "engine": True, "python": python}, PASSIVE)]
        return out
    if sweep == "waits":  # flops9: how OpenMP threads wait at ggml's per-node barriers (omp barrier)
        spin = {"OMP_WAIT_POLICY": ""}
        out += [
            ("GOMP_SPINCOUNT 10k", product, {**spin, "GOMP_SPINCOUNT": "10000"}),
            ("GOMP_SPINCOUNT 100k", product, {**spin, "GOMP_SPINCOUNT": "100000"}),
            ("OMP ACTIVE", product, {"OMP_WAIT_POLICY": "ACTIVE"}),
            ("threads pinned", product, {**PASSIVE, "OMP_PROC_BIND": "close", "OMP_PLACES": "cores"}),
        ]
        if bf16:  # session 15: the shipped format through the engine, sleeping waits against a short spin
            engine = {**product, "model": bf16, "engine": True}
            out += [("BF16 engine", engine, PASSIVE)]
            out += [
                (f"BF16 engine GOMP_SPINCOUNT {n}", engine, {**spin, "GOMP_SPINCOUNT": n}) for n in ("1000", "10000")
            ]
        return out
    if sweep == "files":  # flops9: other GGUF files of the model on the product's build (--model NAME=FILE)
        return out + [(name, {**product, "model": path}, PASSIVE) for name, path in (files or {}).items()]
    if sweep == "formats":  # every format on the product's build and on each other build (dispatch: session 6)
        out += [("portable F32", {**product, **f32}, PASSIVE)]
        out += [("portable BF16", {**product, "model": bf16}, PASSIVE)] if bf16 else []
        for name, python in builds.items():
            out += [
                (f"{name} Q8_0", {**product, "python": python}, PASSIVE),
                (f"{name} F32", {**product, **f32, "python": python}, PASSIVE),
            ]
            out += [(f"{name} BF16", {**product, "model": bf16, "python": python}, PASSIVE)] if bf16 else []
        return out
    for name, python in builds.items():
        out += [
            (f"{name} Q8_0", {**product, "python": python}, PASSIVE),
            (f"{name} F32", {**product, **f32, "python": python}, PASSIVE),
        ]
        if sweep == "builds":
            out += [(f"{name} F16", {**product, **f16, "python": python}, PASSIVE)]
            if bf16:  # AVX512_BF16 dot products: 2 multiply-adds per lane and instruction where F32 has 1
                out += [(f"{name} BF16", {**product, "model": bf16, "python": python}, PASSIVE)]
            # (n_batch 1024, texts still <= 512 tokens: llama.cpp aborts the process, SIGABRT, 20:55 UTC.)
            # Each OpenMP thread pinned to its own core: no migration between the barriers of a decode.
            bind = {**PASSIVE, "OMP_PROC_BIND": "close", "OMP_PLACES": "cores"}
            out += [(f"{name} Q8_0 threads pinned", {**product, "python": python}, bind)]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument(
        "--sweep",
        default="levers",
        choices=(
            "attention",
            "levers",
            "builds",
            "formats",
            "decodes",
            "caps",
            "waits",
            "files",
            "bf16",
            "engine",
            "kv",
        ),
    )
    ap.add_argument("--texts", type=int, default=250)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--build", action="append", default=[], help="NAME=PYTHON: another llama-cpp-python build")
    ap.add_argument("--bf16", default="", help="a BF16 GGUF of the model (--sweep builds)")
    ap.add_argument("--caps", default="192,256,384", help="--sweep caps: decode caps (tokens), comma-separated")
    ap.add_argument("--model", action="append", default=[], help="NAME=GGUF: --sweep files")
    ap.add_argument("--only", default="", help="comma-separated setting names to keep (besides the product)")
    ap.add_argument("--json-out")
    args = ap.parse_args()
    if args.child:
        kind, payload = args.child
        data = json.loads(payload)
        if kind == "sgemm":
            print(json.dumps(child_sgemm(**data)))
        else:
            print(json.dumps(child_engine(data) if data.get("engine") else child_embed(data)))
        return 0

    builds = dict(b.split("=", 1) for b in args.build)
    plan = settings(args.sweep, args.texts, builds, args.bf16, tuple(int(c) for c in args.caps.split(",")),
                    dict(m.split("=", 1) for m in args.model))  # fmt: skip
    if args.only:
        keep = set(args.only.split(","))
        plan = [p for p in plan if p[0] == "product" or p[0] in keep]
    print(f"# {time.strftime('%H:%M:%S', time.gmtime())} UTC, uptime load {os.getloadavg()}", flush=True)
    rows: list[dict[str, Any]] = []
    for rnd in range(args.rounds):
        sg = run_child("sgemm", {"n": 2048, "repeats": 5}, {"OPENBLAS_NUM_THREADS": "2"})
        sg1 = run_child("sgemm", {"n": 2048, "repeats": 5}, {"OPENBLAS_NUM_THREADS": "1"})
        # The ceiling: both cores at the one-thread rate (one thread needs only one free core, so it moves
        # less with the others' load than the 2-thread figure; quiet, 2 threads gave 196-202 = 2 x 99-100).
        gflops = max(sg["gflops"], 2 * sg1["gflops"])
        print(f"round {rnd + 1}: sgemm n=2048 2 threads {sg['gflops']:.1f} GFLOP/s, 1 thread {sg1['gflops']:.1f}"
              f" ({sg['blas']}); load {os.getloadavg()[0]:.2f}", flush=True)  # fmt: skip
        head, rest = plan[:1], plan[1:]
        order = head + (rest if rnd % 2 == 0 else rest[::-1]) + (head if args.sweep != "attention" else [])
        for name, cfg, env in order:
            r = run_child("embed", cfg, env)
            ceiling = gflops * 1e9 / flop_per_token(cfg["model"], r["mean_tokens"])
            r.update(setting=name, round=rnd + 1, env=env, gflops=gflops, gflops_1t=sg1["gflops"],
                     ceiling=ceiling, pct=100 * r["tokens_per_s"] / ceiling, load=os.getloadavg()[0])  # fmt: skip
            rows.append(r)
            print(f"  {name:<32} {r['tokens_per_s']:7,.0f} tok/s {r['pct']:5.1f}% of {ceiling:,.0f}  "
                  f"{r['tokens_per_cpu_s']:6,.0f}/CPU-s  {r['decodes']} decodes  others {r['other_cores']:.2f}  "
                  f"CPU backend {r.get('cpu_variant', '?')}",
                  flush=True)  # fmt: skip
    print(f"# summary (median over rounds; ratio = to the product in the same round); load {os.getloadavg()}")
    products = {}
    for r in rows:
        if r["setting"] == "product":
            products.setdefault(r["round"], []).append(r["tokens_per_s"])
    for name in dict.fromkeys(r["setting"] for r in rows):
        mine = [r for r in rows if r["setting"] == name]
        tps = statistics.median(r["tokens_per_s"] for r in mine)
        pct = statistics.median(r["pct"] for r in mine)
        ratios = [r["tokens_per_s"] / statistics.mean(products[r["round"]]) for r in mine if r["round"] in products]
        ratio = f"{statistics.median(ratios):.3f}x" if ratios else "-"
        others = max(r["other_cores"] for r in mine)
        print(f"| {name} | {tps:,.0f} | {pct:.1f}% | {ratio} | {others:.2f} |")
    if args.json_out:
        with open(args.json_out, "a") as handle:
            for row in rows:
                handle.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
