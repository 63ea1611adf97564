"""The CPU backend the installed llama.cpp really loads (engine/models/backend.py), in fresh processes.

On a dispatch build (``libggml-cpu-<variant>.so`` files beside libllama, scripts/build-llama.sh's
default) the process must map exactly one variant, the one ``cpu_variants.pick`` names for this CPU's
/proc/cpuinfo, never an AMX one, and a real embedding must come out of it; a plain ``llama_cpp.Llama``
without the engine's loader finds no backend there (llama-cpp-python does not load them itself). On a
build with the backend linked in (portable, avx512) nothing is loaded and the same embedding works.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, sys
import llama_cpp
from engine.config import EngineConfig
from engine.models import cpu_build, cpu_variants, describe_model
from engine.models.backend import ensure_cpu_backend, variant_files
from engine.models.llama import LlamaEmbedder

files = variant_files(__import__("pathlib").Path(llama_cpp.llama_cpp._base_path))
backend = ensure_cpu_backend(llama_cpp)
info = describe_model(EngineConfig())
embedder = LlamaEmbedder(info.path)
vector = embedder.embed_query("open a file and read its lines")
maps = sorted({line.split()[-1] for line in open("/proc/self/maps") if "libggml-cpu" in line})
flags = cpu_build.cpu_flags(cpu_build.read_cpuinfo())
best = cpu_variants.pick(files, flags)
real = __import__("os").path.realpath(backend.path) if backend.path else None  # /proc/self/maps resolves links
print(json.dumps({"variant": backend.variant, "path": real, "files": sorted(files),
                  "best": best.name if best else None, "maps": maps, "shape": list(vector.shape),
                  "dimension": embedder.info.dimension, "embedder_variant": embedder.cpu_backend.variant}))
"""


def run(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=180)


def test_the_loaded_cpu_backend_is_the_best_this_cpu_runs_and_embeds(tmp_path: Path) -> None:
    done = run(PROBE, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["shape"] == [got["dimension"]]
    if not got["files"]:  # the CPU backend is linked in: nothing to choose
        assert got["variant"] is None and got["embedder_variant"] is None
        return
    assert got["variant"] == got["best"] == got["embedder_variant"], got
    assert got["maps"] == [got["path"]], got  # exactly the chosen file is mapped, no other variant
    assert "sapphirerapids" not in got["variant"]


def test_a_plain_llama_finds_no_dispatch_backend_even_one_planted_in_the_cwd(tmp_path: Path) -> None:
    """What the loader is for: ggml's own search (exe dir, cwd) misses llama_cpp/lib. A file named like a
    backend in the current directory is not loaded by the engine (it loads by full path from lib/)."""
    probe = (
        "import llama_cpp, json, pathlib\n"
        "from engine.models.backend import variant_files\n"
        "print(json.dumps(sorted(variant_files(pathlib.Path(llama_cpp.llama_cpp._base_path)))))\n"
    )
    listed = run(probe, tmp_path)
    assert listed.returncode == 0, listed.stderr[-2000:]
    if not json.loads(listed.stdout.strip().splitlines()[-1]):
        pytest.skip("the installed llama.cpp has its CPU backend linked in (not a dispatch build)")
    (tmp_path / "libggml-cpu-zen4.so").write_bytes(b"not a library")  # would be dlopen()ed by ggml's search
    done = run(PROBE, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert str(tmp_path) not in got["path"] and got["maps"] == [got["path"]]
    plain = run(
        "import llama_cpp\n"
        "from engine.models import describe_model\n"
        "from engine.config import EngineConfig\n"
        "try:\n"
        "    llama_cpp.Llama(model_path=str(describe_model(EngineConfig()).path), embedding=True, verbose=False)\n"
        "    print('loaded')\n"
        "except ValueError:\n"
        "    print('no backend')\n",
        ROOT,
    )
    assert plain.stdout.strip().splitlines()[-1] == "no backend", plain.stderr[-2000:]
