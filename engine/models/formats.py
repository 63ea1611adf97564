"""Which format of the model's weights llama.cpp runs: the file as it is, or a BF16 copy of it.

``model_format`` (setting ``modelFormat``, or ``$SEMCODE_MODEL_FORMAT``): ``auto`` (the default),
``as-is`` or ``bf16``. A BF16 copy (``engine/models/derive.py``) runs 1.2-1.5x faster than Q8_0 where
the CPU backend llama.cpp loads has AVX512_BF16 (ggml's zen4 and cooperlake levels: AMD Zen 4/5, Intel
Cooper Lake and the AMX Xeons, which get zen4), and its vectors are as close to F32's as Q8_0's or closer;
elsewhere (cascadelake, icelake, skylakex, AVX2 levels) ggml has no BF16 dot product and it would be slow,
so Q8_0 stays. ``auto`` takes the BF16 copy when all of these hold:

- the CPU backend this process loads (or, before any load, the one ``backend.py`` will pick from
  /proc/cpuinfo: the same choice) has AVX512_BF16; a backend linked into libggml (a fixed-set build)
  counts only when its build flags say ``GGML_AVX512_BF16=ON``;
- every matrix of the model's layers is Q8_0, F16 or F32 (converted exactly; a K-quant or another
  format stays as it is) and not already BF16;
- the copy is at most ``AUTO_MAX_GROWTH`` bytes larger than the file: both model processes hold it
  whole (mmap, prefetched), against a 500 MB budget for the serving tree; the default MiniLM grows 10 MB;
- no shared index is configured: a team's snapshot is embedded with the file as published, on whatever
  CPU the publisher had, so a clone and CI must agree without knowing each other's CPU;
- the folder has no index yet built with the file as it is: an index keeps the format its vectors were
  made with (no re-embedding because of a format change), and so does one built with the BF16 copy
  (which wins when both exist: it was made after, with ``bf16`` forced or on this CPU);
- it is not ``semcode index --publish`` (the CLI asks for ``as-is`` then): a published snapshot is
  searched by clones on any CPU.

The copy's vectors differ slightly from the file's (min cosine 0.99975 to Q8_0's), so it has its own
fingerprint (of its own bytes), hence its own index folder and embedding cache. ``bf16`` forces the copy
(any CPU, any size: slow where the backend lacks AVX512_BF16), ``as-is`` never makes one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..config import EngineConfig
from ..errors import ConfigError
from . import cpu_build, cpu_variants
from .derive import BF16, CONVERTIBLE, is_layer_matrix
from .gguf_file import GGUFInfo, TensorEntry

log = logging.getLogger(__name__)

AUTO_MAX_GROWTH = 64 * 1024 * 1024  # bytes a BF16 copy may add to the file for ``auto`` to take it
BF16_FEATURE = "AVX512_BF16"


@dataclass(frozen=True, slots=True)
class CpuBf16:
    """Does the CPU backend llama.cpp runs here multiply BF16 natively, and which backend is it."""

    native: bool
    backend: str  # "zen4", "cascadelake", "built in (...)"
    why: str


@dataclass(frozen=True, slots=True)
class Bf16Plan:
    """What a BF16 copy of a file would convert, and whether it can be made."""

    convert: int  # matrices converted
    growth: int  # bytes the copy adds to the file (negative: smaller, from F32)
    blocker: str  # why no copy can be made ("" = it can)
    already_bf16: bool = False  # the blocker is that the layers are BF16 already: the file is its own copy


@dataclass(frozen=True, slots=True)
class FormatChoice:
    """The outcome: what is loaded and why (``semcode doctor`` shows it)."""

    requested: str  # auto, as-is, bf16 (the setting or the environment)
    format: str  # "as-is" or "bf16"
    source: Path  # the model file as configured
    path: Path  # the file llama.cpp loads (the BF16 copy or the source)
    reason: str

    def describe(self) -> str:
        what = "BF16 copy" if self.format == "bf16" else "the file as it is"
        return f"{what} (model_format={self.requested}): {self.reason}"


def cpu_bf16(cpuinfo: str | None = None, lib_dir: Path | None = None) -> CpuBf16:
    """Whether the CPU backend of this process (loaded, or the one that will be) has AVX512_BF16."""
    from . import backend

    loaded = backend.loaded()
    if loaded is not None and loaded.variant is not None:
        return _variant_bf16(loaded.variant, "loaded")
    lib_dir = lib_dir if lib_dir is not None else cpu_build.llama_lib_dir()
    files = backend.variant_files(lib_dir) if lib_dir is not None else {}
    if files and loaded is None:
        flags = cpu_build.cpu_flags(cpuinfo if cpuinfo is not None else cpu_build.read_cpuinfo())
        picked = cpu_variants.pick(files, flags)
        if picked is None:
            return CpuBf16(False, "none", "no CPU backend of this llama-cpp-python runs on this CPU")
        return _variant_bf16(picked.name, "picked for this CPU")
    return _built_in_bf16(cpuinfo)


def _variant_bf16(name: str, how: str) -> CpuBf16:
    variant = cpu_variants.VARIANTS.get(name)
    native = variant is not None and BF16_FEATURE in variant.features
    has = "has" if native else "has no"
    return CpuBf16(native, name, f"the CPU backend {how} ({name}) {has} {BF16_FEATURE}")


def _built_in_bf16(cpuinfo: str | None) -> CpuBf16:
    """A CPU backend linked into libggml: only its build flags (the install marker) say what it runs."""
    text, size = cpu_build.installed_marker()
    marker = cpu_build.parse_marker(text) if text is not None else None
    if marker is None or not cpu_build.marker_is_current(marker, size):
        return CpuBf16(
            False,
            "built in",
            f"the CPU backend is built into this llama-cpp-python and nothing says it has {BF16_FEATURE}",
        )
    flags = cpu_build.cpu_flags(cpuinfo if cpuinfo is not None else cpu_build.read_cpuinfo())
    native = "GGML_AVX512_BF16=ON" in marker.cmake_args and (not flags or "avx512_bf16" in flags)
    has = "has" if native else "has no"
    return CpuBf16(native, "built in", f"the CPU backend built into this llama-cpp-python {has} {BF16_FEATURE}")


def bf16_plan(tensors: Sequence[TensorEntry]) -> Bf16Plan:
    """Which layer matrices a BF16 copy converts, the bytes it adds, or why it cannot be made."""
    layers = [t for t in tensors if is_layer_matrix(t.name, t.shape)]
    others = sorted({_type_name(t.ttype) for t in layers if t.ttype not in CONVERTIBLE and t.ttype != BF16})
    if not layers:
        return Bf16Plan(0, 0, "the file has no layer matrices (blk.N.*.weight) to convert")
    if others:
        return Bf16Plan(
            0, 0, f"its layers hold {', '.join(others)} matrices, which are not converted (Q8_0, F16, F32 are)"
        )
    convert = [t for t in layers if t.ttype in CONVERTIBLE]
    if not convert:
        return Bf16Plan(0, 0, "its layers are BF16 already", already_bf16=True)
    growth = sum(t.elements * 2 - t.nbytes for t in convert)
    return Bf16Plan(len(convert), growth, "")


def _type_name(ttype: int) -> str:
    try:
        import gguf

        return gguf.GGMLQuantizationType(ttype).name
    except (ImportError, ValueError):
        return f"type {ttype}"


def derived_path(source: GGUFInfo) -> Path:
    """Where the BF16 copy of ``source`` is cached: beside the converted models, never in a workspace."""
    from .provision import models_dir

    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in source.path.stem)[:64]
    return models_dir() / "bf16" / f"{stem}-{source.fingerprint[:16]}-bf16.gguf"


IndexExists = Callable[[GGUFInfo], bool]  # has this folder an index built with this file's vectors?


def choose(
    config: EngineConfig,
    source: GGUFInfo,
    *,
    index_exists: IndexExists | None = None,
    cpu: CpuBf16 | None = None,
    make: Callable[[GGUFInfo, Path], Path] | None = None,
) -> FormatChoice:
    """The file llama.cpp loads for ``source`` under ``config`` (the BF16 copy made once when chosen).

    ``index_exists`` (a workspace's) keeps an index's format; ``cpu`` and ``make`` are for tests.
    """
    from .derive import derive_bf16, derived_is_valid
    from .gguf_file import inspect_gguf

    requested = config.effective_model_format()  # ConfigError on a bad $SEMCODE_MODEL_FORMAT

    def as_is(reason: str) -> FormatChoice:
        return FormatChoice(requested, "as-is", source.path, source.path, reason)

    if requested == "as-is":
        return as_is("set so")
    plan = bf16_plan(source.tensors)
    target = derived_path(source)
    make = make or (lambda src, dst: derive_bf16(src.path, dst, src.fingerprint))
    if requested == "bf16":
        if plan.blocker:
            if plan.already_bf16:
                return as_is(plan.blocker)
            raise ConfigError(f"model_format=bf16: no BF16 copy of {source.path} can be made: {plan.blocker}")
        cpu = cpu or cpu_bf16()
        path = make(source, target)
        note = "" if cpu.native else f"; slow here: {cpu.why}"
        return FormatChoice(requested, "bf16", source.path, path, f"set so{note}")
    # auto
    if config.shared_index:
        return as_is("a shared index is configured: its snapshot was embedded with the file as published")
    if plan.blocker:
        return as_is(f"no BF16 copy: {plan.blocker}")
    cached = derived_is_valid(target, source.fingerprint)
    if index_exists is not None:  # an index keeps its format; with both (bf16 forced once), the BF16 one
        if cached and index_exists(inspect_gguf(target)):
            return FormatChoice(requested, "bf16", source.path, target, "this folder's index was built with it")
        if index_exists(source):
            return as_is("this folder's index was built with it (an index keeps its format: nothing is re-embedded)")
    cpu = cpu or cpu_bf16()
    if not cpu.native:
        return as_is(cpu.why)
    if plan.growth > AUTO_MAX_GROWTH:
        return as_is(
            f"its BF16 copy would be {plan.growth / 1e6:.0f} MB larger (auto takes at most "
            f"{AUTO_MAX_GROWTH / 1e6:.0f} MB more per model process); set model_format=bf16 to force it"
        )
    try:
        path = target if cached else make(source, target)
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - auto falls back to the file as it is, and says why
        log.warning("no BF16 copy of %s (%s): using the file as it is", source.path, exc)
        return as_is(f"making its BF16 copy failed: {exc}")
    grown = f"{plan.growth / 1e6:+.0f} MB" if plan.growth else "the same size"
    return FormatChoice(requested, "bf16", source.path, path, f"{cpu.why}; {plan.convert} layer matrices, {grown}")
