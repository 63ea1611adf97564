"""Can this CPU run the installed llama.cpp build? Read from files, before llama.cpp is loaded.

``scripts/build-llama.sh`` builds llama.cpp with runtime CPU dispatch by default (one CPU backend per
x86 level, the best this CPU runs picked at load: ``engine/models/backend.py``), or with one fixed set:
the portable x86-64-v3 set (``SEMCODE_LLAMA_CPU=portable``) or AVX-512 (``SEMCODE_LLAMA_CPU=avx512``,
on a CPU that has it). It writes, beside the venv, a marker (``semcode-llama-cpu.json``) with the cpuinfo
flags that build needs (for a dispatch build: those of the least demanding variant it kept), the
variants it built, and the size of a library it describes. A venv or home directory shared between
machines can carry an AVX-512 build to a CPU without AVX-512, where the first embedding dies of SIGILL.
``check_build`` compares the marker with this CPU's flags and raises a ``ModelError`` naming the
missing instructions and the fix, before any process loads llama.cpp. Without a marker (a plain
``pip install``), or with one whose library size no longer matches (llama-cpp-python reinstalled
since), it says nothing: the worker child still proves the build, and a SIGILL there is reported by
``describe_exit``.

Pure logic over text in, so it is unit-tested with fake cpuinfo and markers.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelError

MARKER_NAME = "semcode-llama-cpu.json"
CPUINFO = Path("/proc/cpuinfo")
REBUILD = (
    "rebuild llama-cpp-python for any x86-64 CPU: `SEMCODE_LLAMA_CPU=dispatch bash scripts/build-llama.sh "
    ".venv/bin/python` (the default: one CPU backend per instruction-set level, the best this CPU runs "
    "picked at load; `SEMCODE_LLAMA_CPU=portable` builds the x86-64-v3 set alone)"
)
DEFAULT_LIB = "libggml-cpu.so"  # what a marker without "lib" describes (a fixed-set build)


class LlamaBuildError(ModelError):
    """The installed llama.cpp build uses instructions this CPU lacks."""


@dataclass(frozen=True, slots=True)
class BuildMarker:
    requires: tuple[str, ...]  # /proc/cpuinfo flags the build needs
    cmake_args: str
    lib: str  # the library it describes (libggml-cpu.so; a dispatch build: its lowest variant's file)
    lib_size: int
    variants: tuple[str, ...] = ()  # a dispatch build: the CPU backends it built (engine/models/backend.py)


def cpu_flags(cpuinfo: str) -> set[str]:
    """The flags of the first CPU in /proc/cpuinfo text ("flags" on x86, "Features" on ARM)."""
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def parse_marker(text: str) -> BuildMarker | None:
    """The marker's content, or None when it is not one (damaged, or written by something else)."""
    try:
        data = json.loads(text)
        return BuildMarker(
            requires=tuple(str(f) for f in data["requires"]),
            cmake_args=str(data.get("cmake_args", "")),
            lib=str(data.get("lib", "")),
            lib_size=int(data.get("lib_size", -1)),
            variants=tuple(str(v) for v in data.get("variants", ())),
        )
    except (ValueError, KeyError, TypeError):
        return None


def missing_flags(marker: BuildMarker, flags: set[str]) -> list[str]:
    """The build's required flags this CPU lacks ([] when the CPU's flags are unknown: no false alarm)."""
    if not flags:
        return []
    return [f for f in marker.requires if f not in flags]


def marker_is_current(marker: BuildMarker, lib_size: int | None) -> bool:
    """Does the marker describe the library installed now? (a later `pip install` leaves it behind)"""
    return lib_size is not None and lib_size == marker.lib_size


def check(marker_text: str | None, cpuinfo: str, lib_size: int | None) -> None:
    """Raise ``LlamaBuildError`` when a current marker needs flags the CPU lacks; else return."""
    if marker_text is None:
        return
    marker = parse_marker(marker_text)
    if marker is None or not marker_is_current(marker, lib_size):
        return
    missing = missing_flags(marker, cpu_flags(cpuinfo))
    if missing and marker.variants:
        raise LlamaBuildError(
            f"the installed llama-cpp-python has CPU backends for {' '.join(marker.variants)}, and this CPU "
            f"runs none of them (it lacks {' '.join(missing)}, which the least demanding one needs). "
            f"Fix: {REBUILD}, after adding a lower level to SEMCODE_LLAMA_VARIANTS (x64 runs on any x86-64 CPU)"
        )
    if missing:
        raise LlamaBuildError(
            f"the installed llama-cpp-python was built for instructions this CPU lacks ({' '.join(missing)}; "
            f"built with {marker.cmake_args or 'its own flags'}): embedding would die of SIGILL. "
            f"It was probably built on another machine sharing this venv or cache. Fix: {REBUILD}"
        )


def installed_marker() -> tuple[str | None, int | None]:
    """(the marker's text, the size now of the library it names inside llama_cpp/lib), without importing
    llama_cpp. The size is None when llama_cpp or that library is not there (reinstalled another way)."""
    marker = Path(sys.prefix) / MARKER_NAME
    try:
        text: str | None = marker.read_text(encoding="utf-8")
    except OSError:
        text = None
    parsed = parse_marker(text) if text is not None else None
    name = Path(parsed.lib).name if parsed is not None and parsed.lib else DEFAULT_LIB
    size: int | None = None
    lib_dir = llama_lib_dir()
    if lib_dir is not None:
        try:
            size = (lib_dir / name).stat().st_size
        except OSError:
            size = None
    return text, size


def llama_lib_dir() -> Path | None:
    """llama_cpp's ``lib`` directory (its libllama, libggml and CPU backends), found without importing
    llama_cpp; None when llama_cpp is not installed."""
    try:
        spec = importlib.util.find_spec("llama_cpp")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "lib"


def read_cpuinfo() -> str:
    """/proc/cpuinfo, or the file ``$SEMCODE_CPUINFO`` names (tests: another CPU's flags, as in
    scripts/build-llama.sh)."""
    try:
        return Path(os.environ.get("SEMCODE_CPUINFO") or CPUINFO).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def check_build() -> None:
    """``check`` on the installed marker and this machine's /proc/cpuinfo (a few small file reads)."""
    text, size = installed_marker()
    if text is not None:
        check(text, read_cpuinfo(), size)
