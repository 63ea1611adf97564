"""``semcode doctor``: bad models are reported fast, and nothing native can kill it (real child processes)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

from semcode.doctor import build_features, compare_features, cpu_flags, probe_llama, probe_system_info

ROOT = Path(__file__).resolve().parents[1]

NATIVE_INFO = (
    "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX_VNNI = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | "
    "AVX512 = 1 | AVX512_VBMI = 1 | AVX512_VNNI = 1 | AVX512_BF16 = 1 | AMX_INT8 = 1 | LLAMAFILE = 1 | "
    "OPENMP = 1 | REPACK = 1 | "
)


def _bad_models(tmp_path: Path, default_model_path: Path) -> dict[str, tuple[Path, str]]:
    import gguf

    not_gguf = tmp_path / "notes.gguf"
    not_gguf.write_text("this is not a model\n")
    truncated = tmp_path / "cut.gguf"
    data = default_model_path.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    llm = tmp_path / "tiny-llama.gguf"
    w = gguf.GGUFWriter(str(llm), "llama")
    w.add_context_length(2048)
    w.add_embedding_length(16)
    w.add_causal_attention(True)
    w.add_tensor("token_embd.weight", np.zeros(16, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return {
        "missing": (tmp_path / "nope.gguf", "not found"),
        "not gguf": (not_gguf, "not a GGUF file"),
        "truncated": (truncated, "truncated"),
        "generative": (llm, "not an embedding model"),
    }


def test_a_bad_model_is_reported_in_under_2_seconds(tmp_path: Path, default_model_path: Path):
    """Timed from the start of the doctor (imports included), before llama.cpp is ever loaded."""
    bad = _bad_models(tmp_path, default_model_path)
    code = (
        "import json, sys, time\n"
        "t0 = time.perf_counter()\n"
        "from engine.config import EngineConfig\n"
        "from semcode.doctor import run_checks\n"
        "def report(check):\n"
        "    if check.name == 'model file':\n"
        "        print(json.dumps({'s': time.perf_counter() - t0, 'ok': check.ok, 'detail': check.detail,\n"
        "                          'llama': 'llama_cpp' in sys.modules}), file=sys.stderr, flush=True)\n"
        "        raise SystemExit(0)\n"
        "run_checks(EngineConfig(model_path=sys.argv[1]), report=report)\n"
    )
    for kind, (path, words) in bad.items():
        proc = subprocess.run([sys.executable, "-c", code, str(path)], cwd=ROOT, capture_output=True, timeout=60)
        assert proc.returncode == 0, proc.stderr.decode()[-2000:]
        result = json.loads(proc.stderr.decode().strip().splitlines()[-1])
        assert not result["ok"] and words in result["detail"] and str(path) in result["detail"], (kind, result)
        assert result["s"] < 2.0, (kind, result)
        assert not result["llama"], kind  # the header is checked before llama.cpp is imported


def test_the_full_doctor_reports_a_bad_model_without_loading_it(tmp_path: Path, default_model_path: Path):
    path, words = _bad_models(tmp_path, default_model_path)["truncated"]
    done = subprocess.run(
        [sys.executable, "-m", "semcode", "doctor", "--json", "--model", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
    assert not checks["model file"]["ok"] and words in checks["model file"]["detail"]
    assert not checks["model"]["ok"] and words in checks["model"]["detail"]
    assert checks["llama.cpp build"]["ok"] and checks["store"]["ok"]
    assert "CPU backend" in checks["llama.cpp build"]["detail"]  # which one the worker loaded


def test_build_features_are_compared_with_the_cpu():
    features = build_features(NATIVE_INFO)
    assert features[:3] == ["SSE3", "SSSE3", "AVX"] and "AMX_INT8" in features and "OPENMP" in features
    epyc = {"pni", "ssse3", "avx", "avx2", "f16c", "fma", "bmi2"}  # no AVX-512, no AMX
    assert compare_features(features, epyc) == [
        "AVX_VNNI", "AVX512", "AVX512_VBMI", "AVX512_VNNI", "AVX512_BF16", "AMX_INT8",
    ]  # fmt: skip
    assert compare_features(features, set()) == []  # unknown CPU: nothing claimed


def test_the_real_build_runs_on_this_cpu():
    text = probe_system_info()
    features = build_features(text)
    assert "AVX2" in features or "NEON" in features or features, text
    assert compare_features(features, cpu_flags()) == [], text


def test_the_doctor_names_the_cpu_backend_the_worker_loaded():
    """A dispatch build: the variant this CPU's flags call for (never AMX); else the linked-in one."""
    from engine.models.cpu_variants import pick

    got = probe_llama()
    if got.get("variant"):
        path = Path(got["cpu_backend"].rsplit("(", 1)[-1].rstrip(")"))
        files = [p.name[len("libggml-cpu-") : -len(".so")] for p in path.parent.glob("libggml-cpu-*.so")]
        best = pick(files, cpu_flags())
        assert best is not None and got["variant"] == best.name and not best.uses_amx, got
        assert got["cpu_backend"].startswith(f"{best.name}, picked at load from"), got
    else:
        assert got["cpu_backend"].startswith("built in"), got
    assert build_features(got["text"]), got  # the loaded backend's features are listed


def test_doctor_survives_a_llama_cpp_that_dies_of_sigill(tmp_path: Path, default_model_path: Path):
    """A llama_cpp whose import kills its process with a real SIGILL: the doctor reports it and goes on."""
    fake = tmp_path / "fake" / "llama_cpp"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("import os, signal\nos.kill(os.getpid(), signal.SIGILL)\n")
    model = tmp_path / "model.gguf"
    shutil.copyfile(default_model_path, model)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(tmp_path / "fake")]))
    done = subprocess.run(
        [sys.executable, "-m", "semcode", "doctor", "--json", "--model", str(model)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    assert done.returncode == 1 and done.returncode != -signal.SIGILL, done.stderr[-2000:]
    checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
    for name in ("llama.cpp build", "model"):
        assert not checks[name]["ok"]
        assert "SIGILL" in checks[name]["detail"] and "build-llama.sh" in checks[name]["detail"], checks[name]
    assert checks["model file"]["ok"] and checks["store"]["ok"]


def test_the_doctor_says_which_model_format_and_why_and_it_follows_the_loaded_backend(tmp_path: Path):
    """On a CPU whose backend lacks AVX512_BF16 (a fake Cascade Lake /proc/cpuinfo: the worker then loads
    the cascadelake variant, which runs here too) the file runs as it is; on this CPU, what its backend says."""
    from engine.models import formats

    skx = "fpu sse4_2 avx f16c fma avx2 bmi2 avx512f avx512cd avx512vl avx512dq avx512bw"
    fake = tmp_path / "cpuinfo"
    fake.write_text(f"flags\t: {skx} avx512_vnni\n")
    runs = {}
    auto = {"SEMCODE_MODEL_FORMAT": "auto"}  # the product's default (tests/conftest.py sets as-is)
    for name, extra in (("cascadelake", {"SEMCODE_CPUINFO": str(fake), **auto}), ("this cpu", auto)):
        done = subprocess.run(
            [sys.executable, "-m", "semcode", "doctor", "--json"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=180,
            env={**os.environ, **extra},
        )
        runs[name] = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
    fmt, build = runs["cascadelake"]["model format"], runs["cascadelake"]["llama.cpp build"]
    if "CPU backend cascadelake" not in build["detail"]:  # a build with its CPU backend linked in
        assert "built in" in build["detail"]
    else:
        assert fmt["ok"] and fmt["detail"].startswith("the file as it is (model_format=auto)"), fmt
        assert "(cascadelake) has no AVX512_BF16" in fmt["detail"], fmt
    here = runs["this cpu"]["model format"]
    assert here["ok"] and ("BF16 copy" in here["detail"]) == formats.cpu_bf16().native, here
    assert runs["this cpu"]["model"]["ok"], runs["this cpu"]["model"]
