"""Raw llama.cpp embedding speed across builds, models, threads, OpenMP wait policy and machine load.

Usage: python bench/bench_builds.py --build portable=/work/main/.venv/bin/python \\
           --build native=/tmp/native-venv/bin/python [--chunks 200] [--models q8_0,f32]

Each measurement is a fresh child process running the given interpreter (so each build's llama_cpp is
loaded alone, and OMP_WAIT_POLICY is read by libgomp at load): it loads the GGUF like the engine does
(n_ctx = n_batch = n_ubatch, flash attention), warms up, embeds the same stdlib functions in batches of 32
and reports tokens/s. "busy" runs start two ``python3 -c 'while True: pass'`` processes first (killed after),
i.e. both cores contended, as on a laptop compiling in the background. Configurations are interleaved
across builds so that drift in machine load hits every build alike. Output goes to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, sys, time, contextlib, io, ctypes
import llama_cpp
args = json.loads(sys.argv[1])
texts = json.load(open(args["texts"]))
@llama_cpp.llama_log_callback
def _quiet(level, text, user_data):
    pass
llama_cpp.llama_log_set(_quiet, ctypes.c_void_p(0))
with contextlib.redirect_stderr(io.StringIO()):
    llm = llama_cpp.Llama(model_path=args["model"], embedding=True, n_ctx=512, n_batch=512, n_ubatch=512,
                          n_threads=args["threads"], n_threads_batch=args["threads"], flash_attn=True,
                          verbose=True)
llm.verbose = False
fits = [t for t in texts if len(llm.tokenize(t.encode())) <= 512]
tokens = sum(len(llm.tokenize(t.encode())) for t in fits)
batches = [fits[i:i + 32] for i in range(0, len(fits), 32)]
llm.embed(batches[0])
t0 = time.perf_counter()
for b in batches:
    llm.embed(b)
seconds = time.perf_counter() - t0
info = llama_cpp.llama_print_system_info()
print(json.dumps({"tps": tokens / seconds, "tokens": tokens, "seconds": seconds,
                  "system_info": info.decode() if isinstance(info, bytes) else str(info)}))
"""


def models(kinds: list[str], out: Path) -> dict[str, str]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from engine.models.convert import convert, quantize

    paths: dict[str, str] = {}
    f32 = out / "minilm-f32.gguf"
    convert(f32, outtype="f32")
    for kind in kinds:
        if kind == "f32":
            paths[kind] = str(f32)
        elif kind == "f16":
            paths[kind] = str(convert(out / "minilm-f16.gguf", outtype="f16"))
        else:
            paths[kind] = str(quantize(f32, out / f"minilm-{kind}.gguf", kind))
    return paths


def run_one(python: str, model: str, threads: int, omp: str, busy: bool, texts: str) -> dict[str, object]:
    env = dict(os.environ)
    env.pop("OMP_WAIT_POLICY", None)
    if omp != "default":
        env["OMP_WAIT_POLICY"] = omp
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2 if busy else 0)]
    try:
        time.sleep(0.3 if busy else 0.0)
        args = json.dumps({"model": model, "threads": threads, "texts": texts})
        proc = subprocess.run([python, "-c", CHILD, args], capture_output=True, text=True, env=env, timeout=900)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    if proc.returncode != 0:
        return {"error": f"exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", action="append", required=True, help="NAME=PYTHON (repeatable)")
    ap.add_argument("--chunks", type=int, default=200)
    ap.add_argument("--models", default="q8_0,f32")
    ap.add_argument("--matrix-model", default="q8_0", help="models (comma list) for the matrix")
    ap.add_argument("--no-matrix", action="store_true", help="builds x models only (a quick check)")
    ap.add_argument("--quiet-only", action="store_true", help="no runs with two busy loops")
    ap.add_argument("--omp", default="PASSIVE,default", help="OMP_WAIT_POLICY values of the matrix")
    args = ap.parse_args()
    builds = dict(b.split("=", 1) for b in args.build)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_embed import cpu_model, stdlib_functions

    with tempfile.TemporaryDirectory(prefix="semcode-bench-builds-") as tmp:
        texts_path = Path(tmp) / "texts.json"
        texts_path.write_text(json.dumps(stdlib_functions(args.chunks)))
        paths = models(args.models.split(","), Path(tmp))
        print(f"machine: {os.cpu_count()} logical cores, {cpu_model()}; load {os.getloadavg()[0]:.2f}")
        print(f"texts: {args.chunks} stdlib functions, batches of 32, n_ctx 512, flash attention")
        shown: set[str] = set()
        configs = [(kind, 2, "PASSIVE", False) for kind in paths]
        configs += [
            (kind, threads, omp, busy)
            for kind in args.matrix_model.split(",")
            for busy in ((False,) if args.quiet_only else (False, True))
            for threads in (1, 2)
            for omp in args.omp.split(",")
            if (kind, threads, omp, busy) not in configs and not args.no_matrix
        ]
        for kind, threads, omp, busy in configs:
            cells = []
            for name, python in builds.items():
                r = run_one(python, paths[kind], threads, omp, busy, str(texts_path))
                if "error" in r:
                    cells.append(f"{name} {r['error']}")
                    continue
                if name not in shown:
                    print(f"  {name} build: {r['system_info']}")
                    shown.add(name)
                cells.append(f"{name} {r['tps']:7,.0f}")
            load = "busy (2 hogs)" if busy else "quiet"
            print(f"{kind:5s} threads={threads} OMP={omp:8s} {load:13s} tokens/s: " + " | ".join(cells), flush=True)
        print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
