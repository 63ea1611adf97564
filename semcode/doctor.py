"""``semcode doctor``: each part of the stack checked for real, with the fix when it fails."""

from __future__ import annotations

import importlib
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

from engine.config import EngineConfig, cache_root
from engine.errors import SemcodeError


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


DEPENDENCIES = (
    ("llama_cpp", "llama-cpp-python"),
    ("lancedb", "lancedb"),
    ("pyarrow", "pyarrow"),
    ("tree_sitter_language_pack", "'tree-sitter-language-pack>=0.13,<1'"),
    ("pygls", "pygls"),
    ("psutil", "psutil"),
    ("gguf", "gguf"),
    ("safetensors", "safetensors"),
    ("pathspec", "pathspec"),
)
# Imported in a worker child only ("llama.cpp build"): loading a build made for another CPU can kill the
# process, and the doctor must report that, not die of it.
NATIVE_IN_CHILD = frozenset({"llama_cpp"})
# llama_print_system_info() feature -> the /proc/cpuinfo flag the CPU needs for it (x86-64)
CPU_FLAG_FOR_FEATURE = {
    "SSE3": "pni", "SSSE3": "ssse3", "AVX": "avx", "AVX2": "avx2", "AVX_VNNI": "avx_vnni", "F16C": "f16c",
    "FMA": "fma", "BMI2": "bmi2", "AVX512": "avx512f", "AVX512_VBMI": "avx512vbmi", "AVX512_VNNI": "avx512_vnni",
    "AVX512_BF16": "avx512_bf16", "AMX_INT8": "amx_int8",
}  # fmt: skip
CPU_FLAGS_SHOWN = (
    "avx", "avx2", "fma", "f16c", "bmi2", "avx_vnni", "avx512f", "avx512_vnni", "avx512_bf16", "avx512vbmi",
    "amx_tile", "amx_int8", "amx_bf16",
)  # fmt: skip
GRAMMAR_PROBES = {
    "python": "def f(x):\n    return x\n",
    "javascript": "function f(x) { return x }\n",
    "typescript": "function f(x: number): number { return x }\n",
    "go": "package m\nfunc F() {}\n",
    "rust": "fn f() {}\n",
    "java": "class A { void f() {} }\n",
    "c": "int f(void) { return 0; }\n",
}


def _guard(name: str, fn: Callable[[], Check]) -> Check:
    try:
        return fn()
    except SemcodeError as exc:
        return Check(name, False, str(exc), _fix_for(exc))
    except Exception as exc:  # noqa: BLE001 - doctor reports every failure instead of crashing
        return Check(name, False, f"{type(exc).__name__}: {exc}", "report this as a bug with the output above")


def _fix_for(exc: Exception) -> str:
    text = str(exc)
    return text.split("run ", 1)[1] if "run `" in text else ""


def run_checks(config: EngineConfig, report: Callable[[Check], None] | None = None) -> list[Check]:
    """Every check, in the order a user needs them: the model file first (a bad one shows in milliseconds,
    before the slow imports), then the llama.cpp build and a real embedding, both in worker processes.
    ``report`` is called with each check as soon as it is done (a front end can print as it goes)."""
    checks: list[Check] = []

    def add(check: Check) -> Check:
        checks.append(check)
        if report is not None:
            report(check)
        return check

    add(
        Check(
            "python",
            sys.version_info >= (3, 10),
            f"{platform.python_version()} ({sys.executable})",
            "use Python 3.10 or newer",
        )
    )
    model_file = add(_guard("model file", lambda: _model_file(config)))
    if not config.embeddings_url:
        add(_guard("model format", lambda: _model_format(config)))
    add(_guard("llama.cpp build", _llama_build))
    if model_file.ok:
        add(_guard("model", lambda: _model(config)))
    else:
        add(Check("model", False, f"not loaded: {model_file.detail}", model_file.fix))
    for module, package in DEPENDENCIES:
        add(_guard(f"module {module}", partial(_import, module, package)))
    if config.embeddings_url:
        add(_guard("embeddings server", lambda: _embeddings_server(config)))
    if config.shared_index:
        add(_guard("shared index", lambda: _shared_index(config)))
    add(_guard("store", lambda: _store()))
    add(_guard("memory", _memory))
    add(_guard("grammars", _grammars))
    add(Check("cache dir", True, str(cache_root())))
    return checks


def _model_file(config: EngineConfig) -> Check:
    """The GGUF header only (no llama.cpp): missing, not GGUF, truncated, not an embedding model."""
    from engine.models import describe_model

    started = time.perf_counter()
    info = describe_model(config)  # may convert the default model once
    ms = (time.perf_counter() - started) * 1000
    size_mb = Path(info.path).stat().st_size / 1e6
    return Check(
        "model file",
        True,
        f"{info.path} ({size_mb:.0f} MB): {info.name}, dim {info.dimension}, context {info.context_length}, "
        f"pooling {info.pooling}; header checked in {ms:.0f} ms",
    )


def _model_format(config: EngineConfig) -> Check:
    """Which format of the model llama.cpp runs (engine/models/formats.py) and why."""
    from engine.models import resolve_model

    choice = resolve_model(config).choice
    keep = " An index built before keeps the format it was built with." if choice.requested == "auto" else ""
    size_mb = choice.path.stat().st_size / 1e6
    return Check(
        "model format",
        True,
        f"{choice.describe()}; loads {choice.path} ({size_mb:.0f} MB).{keep} Set model_format (or "
        "$SEMCODE_MODEL_FORMAT) to auto, as-is or bf16 to choose",
    )


def _import(module: str, package: str) -> Check:
    if module in NATIVE_IN_CHILD:
        return _find(module, package)
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        return Check(f"module {module}", False, str(exc), f"pip install {package}")
    return Check(f"module {module}", True, getattr(mod, "__version__", "installed"))


def _find(module: str, package: str) -> Check:
    import importlib.util
    from importlib.metadata import PackageNotFoundError, version

    if importlib.util.find_spec(module) is None:
        return Check(f"module {module}", False, f"No module named '{module}'", f"pip install {package}")
    try:
        found = version(package.strip("'").split(">")[0].split("=")[0])
    except PackageNotFoundError:
        found = "installed"
    return Check(f"module {module}", True, f"{found} (loaded in a worker process, see 'llama.cpp build')")


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (or ``$SEMCODE_CPUINFO``, as the backend's pick reads them;
    empty where there is none)."""
    from engine.models.cpu_build import cpu_flags as parse_flags
    from engine.models.cpu_build import read_cpuinfo

    return parse_flags(read_cpuinfo())


def build_features(system_info: str) -> list[str]:
    """The features llama.cpp's CPU backend was compiled with ("AVX2 = 1" entries of its system info)."""
    found: list[str] = []
    for part in system_info.replace("\n", "|").split("|"):
        name, eq, value = part.partition("=")
        name = name.strip().rsplit(":", 1)[-1].strip()
        if eq and value.strip() == "1" and name and name not in found:
            found.append(name)
    return found


def compare_features(features: list[str], flags: set[str]) -> list[str]:
    """Build features whose instruction set the CPU lacks (each would end in SIGILL)."""
    if not flags:
        return []
    return [f for f in features if f in CPU_FLAG_FOR_FEATURE and CPU_FLAG_FOR_FEATURE[f] not in flags]


def _llama_build() -> Check:
    """llama.cpp's compiled CPU features, probed in a child process, next to the CPU's own flags."""
    from engine.models.cpu_build import REBUILD, LlamaBuildError, check_build

    try:
        check_build()  # the install marker against /proc/cpuinfo: names the fix without a crash
    except LlamaBuildError as exc:
        return Check("llama.cpp build", False, str(exc), REBUILD)
    probed = probe_llama()
    text = probed.get("text", "")
    features = build_features(text)
    flags = cpu_flags()
    missing = compare_features(features, flags)
    shown = " ".join(f for f in CPU_FLAGS_SHOWN if f in flags) or "unknown"
    isa = [f for f in features if f in CPU_FLAG_FOR_FEATURE]
    other = [f for f in features if f not in CPU_FLAG_FOR_FEATURE]
    detail = f"llama.cpp uses {' '.join(isa) or 'no SIMD extensions'}"
    if other:
        detail += f" ({', '.join(other)})"
    detail += f"; this CPU has {shown}"
    if probed.get("cpu_backend"):  # which CPU backend the worker loaded (a dispatch build: the variant)
        detail += f"; CPU backend {probed['cpu_backend']}"
    if missing:
        return Check(
            "llama.cpp build",
            False,
            f"{detail}. The build uses {', '.join(missing)}, which this CPU lacks: embedding would die of SIGILL",
            REBUILD,
        )
    return Check("llama.cpp build", True, detail)


def probe_system_info(timeout: float = 60.0) -> str:
    """``llama_print_system_info()`` from a worker child: a build that crashes on import is reported."""
    return probe_llama(timeout).get("text", "")


def probe_llama(timeout: float = 60.0) -> dict[str, str]:
    """A worker child's ``system_info`` reply: llama.cpp's system info (``text``) and the CPU backend it
    loaded (``cpu_backend``, ``variant``). A build that crashes on import is reported as ModelWorkerError."""
    import subprocess

    from engine.errors import ModelWorkerError
    from engine.models.worker import describe_exit, worker_env
    from engine.models.worker_main import FrameEOF, encode_json, read_frame, write_frame

    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.models.worker_main"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=worker_env(),
        cwd=Path(tempfile.gettempdir()),
        bufsize=0,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    deadline = time.monotonic() + timeout
    try:
        read_frame(proc.stdout.fileno(), deadline)  # hello
        write_frame(proc.stdin.fileno(), encode_json(b"J", {"op": "system_info"}))
        reply = read_frame(proc.stdout.fileno(), deadline)
    except (FrameEOF, BrokenPipeError, TimeoutError):
        proc.kill()
        code = proc.wait()
        tail = proc.stderr.read().decode("utf-8", errors="replace").splitlines()[-20:]
        raise ModelWorkerError(describe_exit(code, tail)) from None
    finally:
        proc.stdin.close()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    proc.stdout.close()
    proc.stderr.close()
    if reply[:1] != b"J":
        raise ModelWorkerError(f"the llama.cpp probe failed: {reply[1:].decode('utf-8', errors='replace')}")
    import json

    return {str(k): str(v) for k, v in json.loads(reply[1:]).items()}


def _model(config: EngineConfig) -> Check:
    """A real embedding, in a worker process: a crash in llama.cpp is reported, not fatal."""
    from engine.models import describe_model, load_embedder

    started = time.perf_counter()
    described = describe_model(config)
    embedder = load_embedder(config)  # a worker child: a crash in llama.cpp is a ModelWorkerError here
    try:
        vector = embedder.embed_query("open a file and read its lines")
    finally:
        embedder.close()
    info = embedder.info
    ms = (time.perf_counter() - started) * 1000
    return Check(
        "model",
        bool(vector.shape == (info.dimension,)) and info == described,
        f"{info.name}: dim {info.dimension}, context {info.context_length}, pooling {info.pooling}, "
        f"loaded and embedded in {ms:.0f} ms in a worker process ({info.path})",
    )


def _embeddings_server(config: EngineConfig) -> Check:
    from engine.workspace import shared_embedder

    embedder = shared_embedder(config)  # probed on creation: unreachable, wrong key, not embeddings
    started = time.perf_counter()
    vectors = embedder.embed_documents(["def read_lines(path):\n    return open(path).read().splitlines()"])
    ms = (time.perf_counter() - started) * 1000
    info = embedder.info
    tokenizer = getattr(embedder, "_tokenize_style", None) or "none (token counts estimated)"
    return Check(
        "embeddings server",
        bool(vectors.shape == (1, info.dimension)),
        f"{getattr(embedder, 'url', config.embeddings_url)}: model {info.name}, dim {info.dimension}, "
        f"context {info.context_length}, tokenizer {tokenizer}, one embedding in {ms:.0f} ms",
    )


def _shared_index(config: EngineConfig) -> Check:
    from engine.chunking import CHUNKER_VERSION
    from engine.shared_index import SharedLocation, check_compatible
    from engine.workspace import shared_embedder

    location = SharedLocation(config.shared_index or "")
    info = location.latest()
    check_compatible(info, shared_embedder(config).info, chunker_version=CHUNKER_VERSION, uri=location.uri)
    return Check("shared index", True, f"{location.uri}: {info.describe()}, published {info.published_at}")


def _store() -> Check:
    import numpy as np

    from engine.records import Chunk
    from engine.store import ChunkStore, FileRecord

    with tempfile.TemporaryDirectory(prefix="semcode-doctor-") as tmp:
        store = ChunkStore(Path(tmp), dimension=8, fingerprint="doctor")
        chunk = Chunk("a.py", "python", 0, 0, "x = 1")
        vector = np.ones((1, 8), dtype=np.float32) / np.sqrt(8)
        store.replace_files([FileRecord("a.py", 5, 0, "h", 1)], [chunk], vector, ["x"])
        hits = store.vector_search(vector[0], limit=1)
    return Check("store", len(hits) == 1, "LanceDB write + vector search in a temp dir worked")


def _memory() -> Check:
    from engine.memory import MemoryMonitor

    reading = MemoryMonitor().read()
    return Check(
        "memory",
        True,
        f"{reading.available_mb:.0f} MB available ({reading.percent_used:.0f}% used), "
        f"pressure {reading.pressure.name.lower()}",
    )


def _grammars() -> Check:
    from engine.chunking import document_symbols

    missing = [lang for lang, code in GRAMMAR_PROBES.items() if not document_symbols(lang, code)]
    if missing:
        return Check(
            "grammars",
            False,
            f"no symbols parsed for: {', '.join(missing)}",
            "pip install 'tree-sitter-language-pack>=0.13,<1'",
        )
    return Check("grammars", True, f"parsed {', '.join(GRAMMAR_PROBES)} offline")
