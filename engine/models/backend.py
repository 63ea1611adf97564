"""Load llama.cpp's CPU backend before the first model: the one variant this CPU runs best, never AMX.

A dispatch build (``scripts/build-llama.sh``, the default on x86-64) has no CPU backend linked in: ggml
loads ``libggml-cpu-<variant>.so`` at run time. llama-cpp-python does nothing about it itself, and
``llama_backend_init`` (called by ``llama_cpp.Llama``) falls back to ggml's ``ggml_backend_load_all()``,
which searches only the Python executable's directory and the current directory: no backend (a bare
NULL from the model load), or, worse, a library planted in the user's workspace. So every process that
loads a model (the worker child, the in-process embedder, the static tier, the converter) calls
``ensure_cpu_backend()`` first: it picks the variant from /proc/cpuinfo (``cpu_variants.pick``), loads
that exact file with ``ggml_backend_load`` (whose own CPUID score check refuses it if the CPU cannot run
it; then the next best is tried), and raises a ``ModelError`` naming the CPU's gap when none loads.
A build with the CPU backend linked in (portable, avx512, a plain pip install) already has it
registered: nothing is loaded then.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ModelError
from . import cpu_build, cpu_variants

log = logging.getLogger(__name__)
_lock = threading.Lock()
_loaded: CpuBackend | None = None


@dataclass(frozen=True, slots=True)
class CpuBackend:
    variant: str | None  # None: the CPU backend is linked into libggml (no runtime dispatch)
    path: str | None
    available: tuple[str, ...]  # the variants installed beside libllama

    def describe(self) -> str:
        if self.variant is None:
            return "built in (one CPU backend, no runtime dispatch)"
        amx = [n for n in self.available if n in cpu_variants.VARIANTS and cpu_variants.VARIANTS[n].uses_amx]
        rest = [n for n in self.available if n not in amx]
        skipped = f", never {' '.join(amx)} (AMX)" if amx else ""
        return f"{self.variant}, picked at load from {' '.join(rest)}{skipped} ({self.path})"


def variant_files(lib_dir: Path) -> dict[str, Path]:
    """The CPU backend variants installed in ``lib_dir``: name -> file."""
    found: dict[str, Path] = {}
    try:
        entries = sorted(lib_dir.iterdir())
    except OSError:
        return found
    for entry in entries:
        name = cpu_variants.variant_name(entry.name)
        if name is not None and entry.is_file():
            found[name] = entry
    return found


def _libllama(llama_cpp: Any) -> tuple[Any, Path]:
    """libllama as llama_cpp loaded it (its ggml symbols are its libggml's: one backend registry) and
    the directory it came from (LLAMA_CPP_LIB_PATH included)."""
    module = llama_cpp.llama_cpp
    return module._lib, Path(module._base_path)


def ensure_cpu_backend(llama_cpp: Any) -> CpuBackend:
    """Make sure a CPU backend is registered in this process (once); say which."""
    global _loaded
    with _lock:
        if _loaded is not None:
            return _loaded
        lib, lib_dir = _libllama(llama_cpp)
        files = variant_files(lib_dir)
        count = lib.ggml_backend_reg_count
        count.restype, count.argtypes = ctypes.c_size_t, []
        if not files or int(count()) > 0:
            # linked in (no variant files), or registered already by someone else in this process
            _loaded = CpuBackend(None, None, tuple(sorted(files)))
            return _loaded
        _loaded = _load_best(lib, files)
        log.info("llama.cpp CPU backend: %s", _loaded.describe())
        return _loaded


def _load_best(lib: Any, files: dict[str, Path]) -> CpuBackend:
    load = lib.ggml_backend_load
    load.restype, load.argtypes = ctypes.c_void_p, [ctypes.c_char_p]
    flags = cpu_build.cpu_flags(cpu_build.read_cpuinfo())
    available = tuple(name for name, _ in sorted(files.items(), key=lambda kv: _rank(kv[0])))
    tried: list[str] = []
    for variant in cpu_variants.candidates(files, flags):
        path = files[variant.name]
        if load(str(path).encode()):
            return CpuBackend(variant.name, str(path), available)
        tried.append(variant.name)  # ggml's CPUID check said no (flags unknown, or the OS disabled it)
    low = cpu_variants.lowest(files)
    need = f"; the least it needs is {low.name}: {' '.join(low.flags) or 'x86-64'}" if low else ""
    lacks = [f for f in low.flags if f not in flags] if low and flags else []
    raise ModelError(
        "no llama.cpp CPU backend loads on this CPU: installed "
        f"{' '.join(available) or 'none'}{need}"
        + (f" (this CPU lacks {' '.join(lacks)})" if lacks else "")
        + (f"; ggml refused {' '.join(tried)}" if tried else "")
        + f". Fix: {cpu_build.REBUILD}"
    )


def _rank(name: str) -> tuple[int, str]:
    variant = cpu_variants.VARIANTS.get(name)
    return (variant.score if variant else 1 << 20, name)


def backend_path() -> str | None:
    """The CPU backend file this CPU should load, for a llama.cpp process the engine does not start
    itself (llama-cpp-python's own ``python -m llama_cpp.server``): give it as ``GGML_BACKEND_PATH``,
    which ggml's ``ggml_backend_load_all`` loads. None on a build with the backend linked in."""
    lib_dir = cpu_build.llama_lib_dir()
    files = variant_files(lib_dir) if lib_dir is not None else {}
    if not files:
        return None
    variant = cpu_variants.pick(files, cpu_build.cpu_flags(cpu_build.read_cpuinfo()))
    return str(files[variant.name]) if variant is not None else None


def loaded() -> CpuBackend | None:
    """The backend ``ensure_cpu_backend`` settled on in this process, if it ran."""
    return _loaded
