"""Which llama.cpp CPU backend variant a dispatch build loads (engine/models/cpu_variants.py, backend.py).

Fake /proc/cpuinfo text for CPU families this machine is not: the choice must be the best variant the
CPU runs, never an AMX one, never one with an instruction the CPU lacks, and a clear ModelError when
none fits. The loader runs against a fake libllama (a Python object whose ``ggml_backend_load`` records
the files asked for), so no variant is really loaded here.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from engine.errors import ModelError
from engine.models import backend, cpu_build
from engine.models.cpu_variants import BUILT, VARIANTS, candidates, pick, requirement, variant_name

ROOT = Path(__file__).resolve().parents[2]
SCRIPT_ENV = ("CMAKE_ARGS", "SEMCODE_LLAMA_CPU", "SEMCODE_LLAMA_VARIANTS")  # what the tests set themselves
BASE = "fpu sse2 pni ssse3 sse4_1 sse4_2 popcnt avx avx2 fma f16c bmi1 bmi2"
AVX512 = "avx512f avx512cd avx512vl avx512dq avx512bw"
CPUS = {
    "core2": "fpu sse2 pni ssse3",  # no SSE4.2, no AVX: only x64 runs
    "sandy-bridge": "fpu sse2 pni ssse3 sse4_1 sse4_2 popcnt avx",  # AVX without AVX2
    "zen3": BASE,  # AVX2, no AVX-512
    "alder-lake": f"{BASE} avx_vnni",
    "skylake-sp": f"{BASE} {AVX512}",
    "cascade-lake": f"{BASE} {AVX512} avx512_vnni",
    "ice-lake": f"{BASE} {AVX512} avx512ifma avx512vbmi avx512_vnni avx512_vbmi2",
    "epyc-zen4": f"{BASE} {AVX512} avx512ifma avx512vbmi avx512_vnni avx512_bf16 avx512_vbmi2",
    "sapphire-rapids": f"{BASE} {AVX512} avx512vbmi avx512_vnni avx512_bf16 avx_vnni amx_bf16 amx_tile amx_int8",
    # a VM that hides AVX-512 from the guest kernel although the host has it
    "vm-no-avx512": f"{BASE} avx_vnni",
}
EXPECTED = {  # with the default BUILT set
    "core2": "x64", "sandy-bridge": "x64", "zen3": "haswell", "alder-lake": "alderlake",
    "skylake-sp": "skylakex", "cascade-lake": "cascadelake", "ice-lake": "icelake", "epyc-zen4": "zen4",
    "sapphire-rapids": "zen4", "vm-no-avx512": "alderlake",
}  # fmt: skip


def flags(cpu: str) -> set[str]:
    return set(CPUS[cpu].split())


def cpuinfo(text: str) -> str:
    return "".join(f"processor\t: {i}\nmodel name\t: test\nflags\t\t: {text}\n\n" for i in range(2))


@pytest.mark.parametrize("cpu", sorted(CPUS))
def test_the_best_built_variant_the_cpu_runs_is_picked(cpu: str) -> None:
    chosen = pick(BUILT, flags(cpu))
    assert chosen is not None and chosen.name == EXPECTED[cpu]
    assert chosen.runs_on(flags(cpu)) and not chosen.uses_amx
    # every candidate runs on the CPU, and none scores above the chosen one
    for other in candidates(BUILT, flags(cpu)):
        assert other.runs_on(flags(cpu)) and other.score <= chosen.score


@pytest.mark.parametrize("cpu", sorted(CPUS))
def test_amx_is_never_picked_even_when_installed(cpu: str) -> None:
    every = list(VARIANTS)  # a plain `pip install` with GGML_CPU_ALL_VARIANTS builds sapphirerapids too
    chosen = pick(every, flags(cpu))
    assert chosen is not None and not chosen.uses_amx and chosen.name != "sapphirerapids"
    assert all(not v.uses_amx for v in candidates(every, flags(cpu)))
    assert VARIANTS["sapphirerapids"].uses_amx and VARIANTS["sapphirerapids"].runs_on(flags("sapphire-rapids"))


def test_ggml_levels_not_built_fall_back_to_a_built_one() -> None:
    assert pick(list(VARIANTS), flags("sandy-bridge")).name == "sandybridge"  # type: ignore[union-attr]
    assert pick(BUILT, flags("sandy-bridge")).name == "x64"  # type: ignore[union-attr]
    cooper = f"{BASE} {AVX512} avx512_vnni avx512_bf16"  # Cooper Lake: BF16 without VBMI
    assert pick(list(VARIANTS), set(cooper.split())).name == "cooperlake"  # type: ignore[union-attr]
    assert pick(BUILT, set(cooper.split())).name == "cascadelake"  # type: ignore[union-attr]


def test_unknown_flags_leave_the_choice_to_ggml_check_and_unknown_files_are_never_loaded() -> None:
    """No /proc/cpuinfo: every non-AMX variant is a candidate, best first (ggml's CPUID check decides)."""
    names = [v.name for v in candidates([*BUILT, "sapphirerapids", "future9000"], set())]
    assert names[0] == "zen4" and names[-1] == "x64" and "sapphirerapids" not in names
    assert "future9000" not in names
    assert pick(["future9000"], flags("epyc-zen4")) is None


def test_the_requirement_is_what_every_built_variant_needs() -> None:
    assert requirement(BUILT) == ()  # x64 runs on any x86-64 CPU
    assert requirement(["haswell", "zen4"]) == VARIANTS["haswell"].flags
    # not nested: a Skylake-SP runs skylakex without AVX-VNNI, so avx_vnni is no requirement
    assert "avx_vnni" not in requirement(["alderlake", "skylakex"])
    assert requirement(["sapphirerapids"]) == ()


def test_variant_file_names() -> None:
    assert variant_name("libggml-cpu-zen4.so") == "zen4"
    assert variant_name("ggml-cpu-haswell.dll") == "haswell"
    assert variant_name("libggml-cpu.so") is None and variant_name("libggml-cpu-zen4.so.0") is None
    assert variant_name("libggml-base.so") is None


def test_the_scores_match_ggml_order() -> None:
    """ggml's score is a sum of feature bits: AVX-512 levels above AVX2 ones, BF16+VNNI+VBMI on top."""
    order = sorted(VARIANTS.values(), key=lambda v: v.score)
    assert order[0].name == "x64" and order[-1].name == "sapphirerapids" and order[-2].name == "zen4"
    assert VARIANTS["alderlake"].score < VARIANTS["skylakex"].score < VARIANTS["cascadelake"].score
    assert VARIANTS["cascadelake"].score < VARIANTS["icelake"].score < VARIANTS["zen4"].score


def test_the_script_builds_the_same_table() -> None:
    """scripts/build-llama.sh keeps its own copy of ggml's variant list: the two must agree."""
    env = {k: v for k, v in os.environ.items() if k not in SCRIPT_ENV}
    no_amx = tuple(n for n in VARIANTS if not VARIANTS[n].uses_amx)
    for wanted, expected in (({}, BUILT), ({"SEMCODE_LLAMA_VARIANTS": " ".join(no_amx)}, no_amx)):
        run_env = {**env, **wanted}
        done = subprocess.run(
            ["bash", str(ROOT / "scripts" / "build-llama.sh"), "--print-variants"],
            env=run_env, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        table = {line.split(":")[0]: tuple(line.split(":")[1].split()) for line in done.stdout.splitlines()}
        assert set(table) == set(expected)
        for name, needs in table.items():
            assert set(needs) == set(VARIANTS[name].flags), name
        requires = subprocess.run(
            ["bash", str(ROOT / "scripts" / "build-llama.sh"), "--print-requires"],
            env=run_env, capture_output=True, text=True, timeout=30,
        ).stdout.split()  # fmt: skip
        assert set(requires) == set(requirement(table))


def test_the_script_refuses_amx_and_unknown_variants() -> None:
    env = {k: v for k, v in os.environ.items() if k not in SCRIPT_ENV}
    for wanted, said in (("zen4 sapphirerapids", "AMX"), ("zen4 zen9", "unknown")):
        done = subprocess.run(
            ["bash", str(ROOT / "scripts" / "build-llama.sh"), "--print-cmake-args"],
            env={**env, "SEMCODE_LLAMA_VARIANTS": wanted}, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert done.returncode == 2 and said in done.stderr and not done.stdout


class FakeLibllama:
    """libllama's two ggml entry points the loader uses; ``refuse``: files whose CPUID score says no."""

    def __init__(self, registered: int = 0, refuse: tuple[str, ...] = ()) -> None:
        self.loaded: list[str] = []
        self.registered = registered
        self.refuse = refuse

        def reg_count() -> int:
            return self.registered

        def load(path: bytes) -> int | None:
            self.loaded.append(Path(path.decode()).name)
            if any(r in path.decode() for r in self.refuse):
                return None
            self.registered += 1
            return 0x1234

        self.ggml_backend_reg_count: Any = reg_count
        self.ggml_backend_load: Any = load


@pytest.fixture
def lib_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    lib = tmp_path / "lib"
    lib.mkdir()
    for name in (*BUILT, "sapphirerapids"):
        (lib / f"libggml-cpu-{name}.so").write_bytes(b"\x7fELF")
    (lib / "libggml-base.so").write_bytes(b"\x7fELF")
    monkeypatch.setattr(backend, "_loaded", None)
    return lib


def load(monkeypatch: pytest.MonkeyPatch, lib_dir: Path, cpu_text: str, fake: FakeLibllama) -> backend.CpuBackend:
    fake_cpuinfo = lib_dir.parent / "cpuinfo"
    fake_cpuinfo.write_text(cpuinfo(cpu_text) if cpu_text else "")
    monkeypatch.setattr(cpu_build, "CPUINFO", fake_cpuinfo)
    monkeypatch.setattr(backend, "_libllama", lambda llama_cpp: (fake, lib_dir))
    return backend.ensure_cpu_backend(object())


@pytest.mark.parametrize("cpu", ["epyc-zen4", "sapphire-rapids", "zen3", "core2"])
def test_the_loader_loads_exactly_the_picked_file(monkeypatch: pytest.MonkeyPatch, lib_dir: Path, cpu: str) -> None:
    fake = FakeLibllama()
    got = load(monkeypatch, lib_dir, CPUS[cpu], fake)
    assert got.variant == EXPECTED[cpu] and fake.loaded == [f"libggml-cpu-{EXPECTED[cpu]}.so"]
    assert got.describe().startswith(f"{EXPECTED[cpu]}, picked at load from x64 haswell alderlake skylakex")
    assert "never sapphirerapids (AMX)" in got.describe()
    assert backend.ensure_cpu_backend(object()) is got and len(fake.loaded) == 1  # once per process


def test_a_variant_ggml_refuses_falls_back_to_the_next(monkeypatch: pytest.MonkeyPatch, lib_dir: Path) -> None:
    """cpuinfo says AVX-512 but ggml's CPUID check refuses zen4 (say, the OS has it off): icelake next."""
    fake = FakeLibllama(refuse=("zen4",))
    got = load(monkeypatch, lib_dir, CPUS["epyc-zen4"], fake)
    assert got.variant == "icelake" and fake.loaded == ["libggml-cpu-zen4.so", "libggml-cpu-icelake.so"]


def test_without_cpuinfo_ggml_decides_but_never_amx(monkeypatch: pytest.MonkeyPatch, lib_dir: Path) -> None:
    fake = FakeLibllama(refuse=("zen4", "icelake", "cascadelake", "skylakex"))
    got = load(monkeypatch, lib_dir, "", fake)
    assert got.variant == "alderlake" and "libggml-cpu-sapphirerapids.so" not in fake.loaded


def test_a_cpu_below_every_built_variant_gets_a_clear_error(monkeypatch: pytest.MonkeyPatch, lib_dir: Path) -> None:
    for name in ("x64", "alderlake"):
        (lib_dir / f"libggml-cpu-{name}.so").unlink()  # built with SEMCODE_LLAMA_VARIANTS="haswell ..."
    fake = FakeLibllama()
    with pytest.raises(ModelError) as err:
        load(monkeypatch, lib_dir, CPUS["sandy-bridge"], fake)
    text = str(err.value)
    assert "haswell" in text and "avx2" in text and "build-llama.sh" in text and fake.loaded == []


def test_a_build_with_the_backend_linked_in_loads_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(backend, "_loaded", None)
    fake = FakeLibllama(registered=1)
    monkeypatch.setattr(backend, "_libllama", lambda llama_cpp: (fake, tmp_path))
    got = backend.ensure_cpu_backend(object())
    assert got.variant is None and fake.loaded == [] and "built in" in got.describe()


def test_the_marker_of_a_dispatch_build(tmp_path: Path) -> None:
    """The marker's requirement is what every built variant needs: a CPU below it gets a ModelError."""
    import json

    marker = json.dumps({"requires": list(requirement(["haswell", "zen4"])), "cmake_args": "-DGGML_BACKEND_DL=ON",
                         "lib": "libggml-cpu-haswell.so", "lib_size": 10, "variants": ["haswell", "zen4"]})  # fmt: skip
    cpu_build.check(marker, cpuinfo(CPUS["zen3"]), 10)
    with pytest.raises(cpu_build.LlamaBuildError) as err:
        cpu_build.check(marker, cpuinfo(CPUS["sandy-bridge"]), 10)
    assert "haswell zen4" in str(err.value) and "avx2" in str(err.value) and "x64" in str(err.value)
    full = json.dumps({"requires": list(requirement(BUILT)), "cmake_args": "", "lib": "libggml-cpu-x64.so",
                       "lib_size": 10, "variants": list(BUILT)})  # fmt: skip
    cpu_build.check(full, cpuinfo(CPUS["core2"]), 10)  # x64 is built: any x86-64 CPU runs it
