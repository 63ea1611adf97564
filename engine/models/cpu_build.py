"""Can this CPU run the installed llama.cpp build? Read from files, before llama.cpp is loaded.

``scripts/build-llama.sh`` builds llama.cpp with the portable x86-64-v3 set, or with AVX-512 when asked
(``SEMCODE_LLAMA_CPU=avx512``, on a CPU that has it), and writes, beside the venv, a
marker (``semcode-llama-cpu.json``) with the cpuinfo flags that build needs and the size of the
library it describes. A venv or home directory shared between machines can carry an AVX-512 build to a
CPU without AVX-512, where the first embedding dies of SIGILL. ``check_build`` compares the marker with
this CPU's flags and raises a ``ModelError`` naming the missing instructions and the fix, before any
process loads llama.cpp. Without a marker (a plain ``pip install``), or with one whose library size no
longer matches (llama-cpp-python reinstalled since), it says nothing: the worker child still proves the
build, and a SIGILL there is reported by ``describe_exit``.

Pure logic over text in, so it is unit-tested with fake cpuinfo and markers.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelError

MARKER_NAME = "semcode-llama-cpu.json"
CPUINFO = Path("/proc/cpuinfo")
REBUILD = (
    "rebuild llama-cpp-python portable: `SEMCODE_LLAMA_CPU=portable bash scripts/build-llama.sh .venv/bin/python` "
    "(the default: the x86-64-v3 set every x86-64 CPU since ~2015 runs)"
)


class LlamaBuildError(ModelError):
    """The installed llama.cpp build uses instructions this CPU lacks."""


@dataclass(frozen=True, slots=True)
class BuildMarker:
    requires: tuple[str, ...]  # /proc/cpuinfo flags the build needs
    cmake_args: str
    lib: str  # the library it describes (libggml-cpu.so)
    lib_size: int


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
    if missing:
        raise LlamaBuildError(
            f"the installed llama-cpp-python was built for instructions this CPU lacks ({' '.join(missing)}; "
            f"built with {marker.cmake_args or 'its own flags'}): embedding would die of SIGILL. "
            f"It was probably built on another machine sharing this venv or cache. Fix: {REBUILD}"
        )


def installed_marker() -> tuple[str | None, int | None]:
    """(the marker's text, the size of the libggml-cpu.so llama_cpp would load now), without importing it."""
    marker = Path(sys.prefix) / MARKER_NAME
    try:
        text: str | None = marker.read_text(encoding="utf-8")
    except OSError:
        text = None
    size: int | None = None
    try:
        spec = importlib.util.find_spec("llama_cpp")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        lib = Path(next(iter(spec.submodule_search_locations))) / "lib" / "libggml-cpu.so"
        try:
            size = lib.stat().st_size
        except OSError:
            size = None
    return text, size


def read_cpuinfo() -> str:
    try:
        return CPUINFO.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def check_build() -> None:
    """``check`` on the installed marker and this machine's /proc/cpuinfo (a few small file reads)."""
    text, size = installed_marker()
    if text is not None:
        check(text, read_cpuinfo(), size)
