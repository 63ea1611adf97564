"""Which of llama.cpp's per-CPU backends to load: pure logic over /proc/cpuinfo flags and file names.

The default build (``scripts/build-llama.sh``, ``SEMCODE_LLAMA_CPU=dispatch``) compiles ggml's CPU
backend once per x86 instruction-set level (``GGML_BACKEND_DL`` + ``GGML_CPU_ALL_VARIANTS``), as
``libggml-cpu-<variant>.so`` files beside libllama, so one wheel runs on any x86-64 CPU at the best level
it has. ggml would pick one itself (each file's ``ggml_backend_score`` reads CPUID), but only from the
executable's directory and the current directory (a user's workspace: never load code from there), and
it would pick ``sapphirerapids`` on an Intel Xeon with AMX, whose AMX kernel crashed there. So the engine
picks: the highest-scoring variant whose instructions this CPU's flags all list, never one that uses
AMX (``build-llama.sh`` does not even compile it), and ggml's own score check still runs on the chosen
file before it is used (``ggml_backend_load`` refuses a variant the CPU cannot run).

``VARIANTS`` mirrors the x86 list of ``ggml/src/CMakeLists.txt`` (llama.cpp vendored by
llama-cpp-python 0.3.36) and its score (``ggml-cpu/arch/x86/cpu-feats.cpp``): a build-llama.sh test keeps
the script's list and this one equal.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# ggml feature -> the /proc/cpuinfo flags the CPU needs for it, and the feature's weight in ggml's score
FEATURE_FLAGS: dict[str, tuple[str, ...]] = {
    "SSE42": ("sse4_2",),
    "AVX": ("avx",),
    "F16C": ("f16c",),
    "FMA": ("fma",),
    "AVX2": ("avx2",),
    "BMI2": ("bmi2",),
    "AVX_VNNI": ("avx_vnni",),
    "AVX512": ("avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw"),
    "AVX512_VBMI": ("avx512vbmi",),
    "AVX512_VNNI": ("avx512_vnni",),
    "AVX512_BF16": ("avx512_bf16",),
    "AMX_TILE": ("amx_tile",),
    "AMX_INT8": ("amx_int8",),
}
SCORE = {
    "FMA": 1, "F16C": 1 << 1, "SSE42": 1 << 2, "BMI2": 1 << 3, "AVX": 1 << 4, "AVX2": 1 << 5,
    "AVX_VNNI": 1 << 6, "AVX512": 1 << 7, "AVX512_VBMI": 1 << 8, "AVX512_BF16": 1 << 9,
    "AVX512_VNNI": 1 << 10, "AMX_INT8": 1 << 11,
}  # fmt: skip
AMX = frozenset({"AMX_TILE", "AMX_INT8", "AMX_BF16"})

_HASWELL = ("SSE42", "AVX", "F16C", "FMA", "AVX2", "BMI2")
_SKX = (*_HASWELL, "AVX512")
VARIANT_FEATURES: dict[str, tuple[str, ...]] = {
    "x64": (),
    "sse42": ("SSE42",),
    "sandybridge": ("SSE42", "AVX"),
    "ivybridge": ("SSE42", "AVX", "F16C"),
    "piledriver": ("SSE42", "AVX", "F16C", "FMA"),
    "haswell": _HASWELL,
    "skylakex": _SKX,
    "cannonlake": (*_SKX, "AVX512_VBMI"),
    "cascadelake": (*_SKX, "AVX512_VNNI"),
    "icelake": (*_SKX, "AVX512_VBMI", "AVX512_VNNI"),
    "cooperlake": (*_SKX, "AVX512_VNNI", "AVX512_BF16"),
    "zen4": (*_SKX, "AVX512_VBMI", "AVX512_VNNI", "AVX512_BF16"),
    "alderlake": (*_HASWELL, "AVX_VNNI"),
    "sapphirerapids": (*_SKX, "AVX512_VBMI", "AVX512_VNNI", "AVX512_BF16", "AMX_TILE", "AMX_INT8"),
}
# What build-llama.sh compiles by default: the baseline (any x86-64), x86-64-v3, and the AVX-512 levels
# common in machines people run (Skylake-SP, Cascade Lake and Ice Lake Xeons, AMD Zen 4/5 and Intel's AMX
# Xeons, which get zen4), plus Alder Lake's AVX-VNNI. ggml's other levels fall back to one of these
# (sse42/sandybridge/ivybridge/piledriver -> x64, cannonlake -> skylakex, cooperlake -> cascadelake).
BUILT = ("x64", "haswell", "skylakex", "cascadelake", "icelake", "zen4", "alderlake")
_FILE = re.compile(r"^(?:lib)?ggml-cpu-(?P<name>[A-Za-z0-9_.]+)\.(?:so|dll|dylib)$")


@dataclass(frozen=True, slots=True)
class Variant:
    name: str
    features: tuple[str, ...]

    @property
    def flags(self) -> tuple[str, ...]:
        """The /proc/cpuinfo flags this variant's code needs."""
        return tuple(flag for feature in self.features for flag in FEATURE_FLAGS[feature])

    @property
    def score(self) -> int:
        """ggml's ``ggml_backend_score`` for it on a CPU that runs it (the higher, the better)."""
        return 1 + sum(SCORE.get(feature, 0) for feature in self.features)

    @property
    def uses_amx(self) -> bool:
        return bool(AMX.intersection(self.features))

    def runs_on(self, flags: set[str]) -> bool:
        return all(flag in flags for flag in self.flags)


VARIANTS = {name: Variant(name, features) for name, features in VARIANT_FEATURES.items()}


def variant_name(filename: str) -> str | None:
    """``libggml-cpu-zen4.so`` -> ``zen4``; None for any other file (``libggml-cpu.so`` included)."""
    match = _FILE.match(filename)
    return match.group("name") if match else None


def candidates(available: Iterable[str], flags: set[str]) -> list[Variant]:
    """The variants to try, best first: known to this table, without AMX, and (when the CPU's flags are
    known: ``flags`` not empty) runnable on this CPU. A name this table does not know (another llama.cpp)
    is never loaded: nothing tells whether it uses AMX or an instruction the CPU lacks."""
    known = [VARIANTS[name] for name in set(available) if name in VARIANTS]
    usable = [v for v in known if not v.uses_amx and (not flags or v.runs_on(flags))]
    return sorted(usable, key=lambda v: (-v.score, v.name))


def pick(available: Iterable[str], flags: set[str]) -> Variant | None:
    """The variant ggml would score highest on this CPU, AMX excluded; None when none of them runs."""
    found = candidates(available, flags)
    return found[0] if found else None


def lowest(names: Iterable[str]) -> Variant | None:
    """The least demanding of these variants (AMX ones aside): what a CPU needs for any of them to run."""
    usable = [VARIANTS[n] for n in names if n in VARIANTS and not VARIANTS[n].uses_amx]
    return min(usable, key=lambda v: (v.score, v.name)) if usable else None


def requirement(names: Iterable[str]) -> tuple[str, ...]:
    """The cpuinfo flags every one of these variants needs (AMX ones aside): a CPU without one of them
    runs none, so this is the ``requires`` of a dispatch build's marker (for x64 among them: none)."""
    usable = [VARIANTS[n] for n in names if n in VARIANTS and not VARIANTS[n].uses_amx]
    if not usable:
        return ()
    low = min(usable, key=lambda v: (v.score, v.name))
    return tuple(flag for flag in low.flags if all(flag in v.flags for v in usable))
