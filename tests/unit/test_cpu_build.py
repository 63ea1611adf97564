"""The install-time CPU choice (scripts/build-llama.sh) and the engine's check of it (engine/models/cpu_build.py).

No other CPU is needed: the script reads a fake /proc/cpuinfo (SEMCODE_CPUINFO), and the engine's check
takes cpuinfo text and a marker, so an AVX-512 build met by an AVX2-only CPU is tested on any machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from engine.config import EngineConfig
from engine.models import cpu_build, load_embedder
from engine.models.cpu_build import LlamaBuildError, check, cpu_flags, parse_marker

ROOT = Path(__file__).resolve().parents[2]
SCRIPT_ENV = ("CMAKE_ARGS", "SEMCODE_LLAMA_CPU", "SEMCODE_LLAMA_VARIANTS")  # what the tests set themselves
BASE = "fpu sse2 pni ssse3 sse4_1 sse4_2 popcnt avx avx2 fma f16c bmi1 bmi2"
AVX512 = "avx512f avx512cd avx512vl avx512dq avx512bw"
CPUS = {
    "haswell": BASE,  # AVX2 only
    "old": "fpu sse2 pni ssse3 sse4_1 sse4_2 popcnt avx",  # Sandy Bridge: no AVX2
    "skylake-x": f"{BASE} {AVX512}",  # AVX-512 without VNNI/BF16/VBMI
    "epyc-zen4": f"{BASE} {AVX512} avx512ifma avx512vbmi avx512_vnni avx512_bf16 avx512_vbmi2",
    "sapphire-rapids": f"{BASE} {AVX512} avx512vbmi avx512_vnni avx512_bf16 avx_vnni amx_bf16 amx_tile amx_int8",
}


def cpuinfo(flags: str, cores: int = 2) -> str:
    return "".join(f"processor\t: {i}\nmodel name\t: test\nflags\t\t: {flags}\n\n" for i in range(cores))


def run_script(tmp_path: Path, cpu: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    fake = tmp_path / f"cpuinfo-{cpu}"
    fake.write_text(cpuinfo(CPUS[cpu]))
    full = {k: v for k, v in os.environ.items() if k not in SCRIPT_ENV}
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / "build-llama.sh"), *args],
        env={**full, "SEMCODE_CPUINFO": str(fake), **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


def script(tmp_path: Path, cpu: str, *args: str, **env: str) -> str:
    done = run_script(tmp_path, cpu, *args, **env)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def marker(requires: str, size: int = 1234, lib: str = "x") -> str:
    return json.dumps({"requires": requires.split(), "cmake_args": "-DGGML_AVX512=ON", "lib": lib, "lib_size": size})


def installed_lib() -> tuple[str, int | None]:
    """The library the installed marker describes (libggml-cpu.so, or a dispatch build's lowest variant)
    and its size: a fake marker naming it counts as current."""
    text, size = cpu_build.installed_marker()
    parsed = cpu_build.parse_marker(text) if text else None
    return (Path(parsed.lib).name if parsed and parsed.lib else cpu_build.DEFAULT_LIB), size


pytestmark = pytest.mark.skipif(os.uname().machine not in ("x86_64", "amd64"), reason="x86-64 flag sets")


def test_cpu_flags_reads_the_first_cpu() -> None:
    assert cpu_flags(cpuinfo("avx avx2 avx512f")) == {"avx", "avx2", "avx512f"}
    assert cpu_flags("processor : 0\nFeatures : fp asimd\n") == {"fp", "asimd"}  # ARM
    assert cpu_flags("") == set()


@pytest.mark.parametrize("cpu", sorted(CPUS))
def test_every_cpu_gets_the_dispatch_build_by_default(tmp_path: Path, cpu: str) -> None:
    """A wheel may run on another CPU than the one it was built on: the default picks its CPU code at load
    (one backend per level), so it fixes no instruction set at build time."""
    args = script(tmp_path, cpu, "--print-cmake-args")
    assert "-DGGML_NATIVE=OFF" in args and "-DGGML_BACKEND_DL=ON" in args and "-DGGML_CPU_ALL_VARIANTS=ON" in args
    assert "AVX512=ON" not in args and "AMX" not in args  # the variants set their own; AMX's is never built
    assert "sapphirerapids" not in script(tmp_path, cpu, "--print-variants")
    assert script(tmp_path, cpu, "--print-requires") == ""  # x64 is built: any x86-64 CPU runs one


@pytest.mark.parametrize("cpu", sorted(CPUS))
def test_the_portable_build_when_asked(tmp_path: Path, cpu: str) -> None:
    args = script(tmp_path, cpu, "--print-cmake-args", SEMCODE_LLAMA_CPU="portable")
    assert "-DGGML_NATIVE=OFF" in args and "-DGGML_AVX512=OFF" in args and "-DGGML_AVX2=ON" in args
    assert "-DGGML_AMX_TILE=OFF" in args and "BACKEND_DL" not in args


@pytest.mark.parametrize("cpu", ["skylake-x", "epyc-zen4", "sapphire-rapids"])
def test_avx512_cpus_get_an_avx512_build_when_asked_and_never_amx(tmp_path: Path, cpu: str) -> None:
    args = script(tmp_path, cpu, "--print-cmake-args", SEMCODE_LLAMA_CPU="avx512")
    assert "-DGGML_NATIVE=OFF" in args and "-DGGML_AVX512=ON" in args and "-DGGML_AVX2=ON" in args
    for amx in ("AMX_TILE", "AMX_INT8", "AMX_BF16"):
        assert f"-DGGML_{amx}=OFF" in args
    extras_on = {e for e in ("VBMI", "VNNI", "BF16") if f"-DGGML_AVX512_{e}=ON" in args}
    assert extras_on == (set() if cpu == "skylake-x" else {"VBMI", "VNNI", "BF16"})


@pytest.mark.parametrize("cpu", ["haswell", "old"])
def test_avx512_is_refused_on_a_cpu_without_it(tmp_path: Path, cpu: str) -> None:
    done = run_script(tmp_path, cpu, "--print-cmake-args", SEMCODE_LLAMA_CPU="avx512")
    assert done.returncode == 2 and "avx512f" in done.stderr and not done.stdout


def test_no_cpuinfo_means_the_same_default_build(tmp_path: Path) -> None:
    for fake in (tmp_path / "missing", tmp_path / "no-flags"):
        if fake.name == "no-flags":
            fake.write_text("processor\t: 0\n")
        env = {k: v for k, v in os.environ.items() if k not in SCRIPT_ENV}
        done = subprocess.run(
            ["bash", str(ROOT / "scripts" / "build-llama.sh"), "--print-cmake-args"],
            env={**env, "SEMCODE_CPUINFO": str(fake)},
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0 and "-DGGML_CPU_ALL_VARIANTS=ON" in done.stdout, (fake.name, done.stderr)


def test_the_default_and_portable_builds_are_one_wheel_for_every_cpu(tmp_path: Path) -> None:
    assert script(tmp_path, "epyc-zen4", "--print-cmake-args") == script(tmp_path, "haswell", "--print-cmake-args")
    py = sys.executable
    assert script(tmp_path, "epyc-zen4", "--cache-key", py) == script(tmp_path, "haswell", "--cache-key", py)
    portable = {"SEMCODE_LLAMA_CPU": "portable"}
    assert script(tmp_path, "epyc-zen4", "--cache-key", py, **portable) == script(
        tmp_path, "haswell", "--cache-key", py, **portable
    )
    # the wheel cache keeps one wheel per flag set and variant list: never another build's wheel
    keys = {
        script(tmp_path, "epyc-zen4", "--cache-key", py, SEMCODE_LLAMA_CPU="avx512"),
        script(tmp_path, "haswell", "--cache-key", py, **portable),
        script(tmp_path, "haswell", "--cache-key", py),
        script(tmp_path, "haswell", "--cache-key", py, SEMCODE_LLAMA_VARIANTS="x64 haswell zen4"),
    }
    assert len(keys) == 4


def test_what_the_script_records_is_what_the_engine_checks(tmp_path: Path) -> None:
    """The marker of each machine's build passes on that machine and, for AVX-512, fails on an AVX2 one."""
    for cpu in ("haswell", "skylake-x", "epyc-zen4", "sapphire-rapids"):
        requires = script(
            tmp_path, cpu, "--print-requires", SEMCODE_LLAMA_CPU="portable" if cpu == "haswell" else "avx512"
        )
        check(marker(requires), cpuinfo(CPUS[cpu]), 1234)  # its own machine: fine
        if cpu != "haswell":
            with pytest.raises(LlamaBuildError) as err:
                check(marker(requires), cpuinfo(CPUS["haswell"]), 1234)
            assert "avx512f" in str(err.value) and "build-llama.sh" in str(err.value)
            assert "SEMCODE_LLAMA_CPU=portable" in str(err.value)
    portable = script(tmp_path, "haswell", "--print-requires", SEMCODE_LLAMA_CPU="portable")
    with pytest.raises(LlamaBuildError, match="avx2"):
        check(marker(portable), cpuinfo(CPUS["old"]), 1234)
    check(marker(script(tmp_path, "haswell", "--print-requires")), cpuinfo(CPUS["old"]), 1234)  # dispatch: fine


def test_no_false_alarm_without_a_current_marker() -> None:
    avx2_cpu = cpuinfo(CPUS["haswell"])
    needs_avx512 = marker(f"avx avx2 {AVX512}", size=1234)
    check(None, avx2_cpu, 1234)  # a plain pip install: no marker
    check(needs_avx512, avx2_cpu, 999)  # llama-cpp-python reinstalled since: another library
    check(needs_avx512, avx2_cpu, None)  # llama_cpp not installed
    check("{not json", avx2_cpu, 1234)  # damaged marker
    check(needs_avx512, "", 1234)  # flags unknown (no /proc/cpuinfo)
    assert parse_marker('{"cmake_args": "x"}') is None


def test_load_embedder_names_the_fix_before_llama_cpp_is_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A venv carrying an AVX-512 build to an AVX2-only CPU: a clear ModelError, no child, no SIGILL."""
    lib, size = installed_lib()
    if size is None:
        pytest.skip("llama_cpp is not installed")
    prefix = tmp_path / "venv"
    prefix.mkdir()
    (prefix / cpu_build.MARKER_NAME).write_text(marker(f"avx avx2 {AVX512}", size=size, lib=lib))
    fake = tmp_path / "cpuinfo"
    fake.write_text(cpuinfo(CPUS["haswell"]))
    monkeypatch.setattr(sys, "prefix", str(prefix))
    monkeypatch.setattr(cpu_build, "CPUINFO", fake)
    model = ROOT / "tests" / "fixtures" / "missing-on-purpose.gguf"
    resolved = types.SimpleNamespace(path=model, gguf=None, prefixes=None)
    monkeypatch.setattr("engine.models.resolve_model", lambda config: resolved)
    with pytest.raises(LlamaBuildError, match="avx512f"):
        load_embedder(EngineConfig(), in_process=True)
    fake.write_text(cpuinfo(CPUS["epyc-zen4"]))
    cpu_build.check_build()  # the same marker on an AVX-512 CPU: fine


def test_doctor_reports_the_marker_without_starting_llama_cpp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from semcode import doctor

    lib, size = installed_lib()
    if size is None:
        pytest.skip("llama_cpp is not installed")
    (tmp_path / cpu_build.MARKER_NAME).write_text(marker(f"avx avx2 {AVX512}", size=size, lib=lib))
    fake = tmp_path / "cpuinfo"
    fake.write_text(cpuinfo(CPUS["haswell"]))
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    monkeypatch.setattr(cpu_build, "CPUINFO", fake)

    def no_child() -> dict[str, str]:
        raise AssertionError("the doctor must not load this build in a child")

    monkeypatch.setattr(doctor, "probe_llama", no_child)
    check_result = doctor._llama_build()
    assert not check_result.ok and "avx512f" in check_result.detail and "SIGILL" in check_result.detail
    assert "build-llama.sh" in check_result.fix
