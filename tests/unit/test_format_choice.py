"""The model format choice (engine/models/formats.py): pure logic over a CPU's flags, the installed CPU
backends' file names and a GGUF's tensor table. Another CPU is a fake /proc/cpuinfo; the GGUF is the real
shipped model (its header only: nothing is converted or loaded here)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from engine.config import EngineConfig
from engine.errors import ConfigError
from engine.models import backend, formats
from engine.models.gguf_file import TensorEntry, inspect_gguf
from engine.models.provision import PACKAGED_MODEL

_SKX = "fpu sse4_2 avx f16c fma avx2 bmi2 avx512f avx512cd avx512vl avx512dq avx512bw"
CPUINFO = {
    "zen4": f"flags\t: {_SKX} avx512vbmi avx512_vnni avx512_bf16\n",  # AMD EPYC Zen 4
    "cascadelake": f"flags\t: {_SKX} avx512_vnni\n",  # Xeon Cascade Lake: no BF16
    "sapphirerapids": f"flags\t: {_SKX} avx512vbmi avx512_vnni avx512_bf16 amx_tile amx_int8 amx_bf16\n",
    "haswell": "flags\t: fpu sse4_2 avx f16c fma avx2 bmi2\n",
}
AUTO = EngineConfig(model_format="auto")  # tests/conftest.py makes as-is the session's default
BUILT = ("x64", "haswell", "skylakex", "cascadelake", "icelake", "zen4", "alderlake")


@pytest.fixture
def lib_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A llama_cpp/lib of a dispatch build (what scripts/build-llama.sh installs), no backend loaded yet."""
    for name in BUILT:
        (tmp_path / f"libggml-cpu-{name}.so").write_bytes(b"")
    monkeypatch.setattr(backend, "_loaded", None)  # another test may have loaded one in this process
    return tmp_path


@pytest.mark.parametrize(
    ("cpu", "variant", "native"),
    [("zen4", "zen4", True), ("cascadelake", "cascadelake", False), ("sapphirerapids", "zen4", True),
     ("haswell", "haswell", False)],
)  # fmt: skip
def test_the_format_follows_the_cpu_variant_the_backend_picks(
    lib_dir: Path, cpu: str, variant: str, native: bool
) -> None:
    got = formats.cpu_bf16(CPUINFO[cpu], lib_dir)
    assert (got.backend, got.native) == (variant, native)
    source = inspect_gguf(PACKAGED_MODEL)

    def make(src: object, dst: Path) -> Path:
        return dst  # the derivation itself is tested with the real model (tests/engine)

    choice = formats.choose(AUTO, source, cpu=got, make=make)
    assert choice.format == ("bf16" if native else "as-is")
    assert variant in choice.reason
    if not native:
        assert choice.path == PACKAGED_MODEL and "has no AVX512_BF16" in choice.reason


def test_the_loaded_backend_wins_over_the_prediction(lib_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Once this process has loaded a CPU backend, that one decides (ggml may refuse the best pick)."""
    monkeypatch.setattr(backend, "_loaded", backend.CpuBackend("icelake", "/x/libggml-cpu-icelake.so", BUILT))
    got = formats.cpu_bf16(CPUINFO["zen4"], lib_dir)
    assert (got.backend, got.native) == ("icelake", False) and "loaded" in got.why


def test_semcode_cpuinfo_names_another_cpu(lib_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "cpuinfo"
    fake.write_text(CPUINFO["cascadelake"])
    monkeypatch.setenv("SEMCODE_CPUINFO", str(fake))
    assert formats.cpu_bf16(None, lib_dir).backend == "cascadelake"


def _t(name: str, ttype: int, *shape: int) -> TensorEntry:
    return TensorEntry(name, ttype, shape)


def test_the_bf16_plan_converts_layer_matrices_only_and_knows_what_it_cannot() -> None:
    q8 = [_t("token_embd.weight", 8, 384, 30522), _t("blk.0.attn_q.weight", 8, 384, 384),
          _t("blk.0.attn_q.bias", 0, 384), _t("position_embd.weight", 0, 384, 512)]  # fmt: skip
    plan = formats.bf16_plan(q8)
    assert plan.convert == 1 and plan.growth == 384 * 384 * 2 - 384 * 384 // 32 * 34 and not plan.blocker
    assert formats.bf16_plan([_t("blk.0.ffn_up.weight", 0, 384, 1536)]).growth == -384 * 1536 * 2  # F32 shrinks
    assert "Q4_K" in formats.bf16_plan([*q8, _t("blk.1.ffn_up.weight", 12, 384, 1536)]).blocker
    assert "already" in formats.bf16_plan([_t("enc.blk.0.attn_q.weight", 30, 384, 384)]).blocker
    assert formats.bf16_plan([_t("token_embd.weight", 8, 384, 10)]).blocker  # no layers at all


def test_the_shipped_model_grows_by_ten_megabytes() -> None:
    from engine.models.gguf_file import tensor_table

    plan = formats.bf16_plan(tensor_table(PACKAGED_MODEL))
    assert plan.convert == 36 and 9e6 < plan.growth < 11e6  # 6 layers x 6 matrices; token_embd stays Q8_0


def test_auto_keeps_a_big_copy_and_a_shared_index_out(lib_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = inspect_gguf(PACKAGED_MODEL)
    cpu = formats.cpu_bf16(CPUINFO["zen4"], lib_dir)

    def make(src: object, dst: Path) -> Path:
        raise AssertionError("no copy may be made")

    shared = formats.choose(EngineConfig(model_format="auto", shared_index="/srv/snap"), source, cpu=cpu, make=make)
    assert shared.format == "as-is" and "shared index" in shared.reason
    monkeypatch.setattr(formats, "AUTO_MAX_GROWTH", 1_000_000)
    big = formats.choose(AUTO, source, cpu=cpu, make=make)
    assert big.format == "as-is" and "10 MB larger" in big.reason and "model_format=bf16" in big.reason
    assert formats.choose(EngineConfig(model_format="as-is"), source, cpu=cpu, make=make).format == "as-is"


def test_an_existing_index_of_the_file_keeps_it(lib_dir: Path) -> None:
    source = inspect_gguf(PACKAGED_MODEL)
    cpu = formats.cpu_bf16(CPUINFO["zen4"], lib_dir)

    def make(src: object, dst: Path) -> Path:
        raise AssertionError("no copy may be made for a folder indexed with the file as it is")

    choice = formats.choose(AUTO, source, cpu=cpu, make=make, index_exists=lambda g: g.path == PACKAGED_MODEL)
    assert choice.format == "as-is" and "nothing is re-embedded" in choice.reason


def test_a_bad_format_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r"model_format must be one of auto, as-is, bf16, got 'q4'"):
        EngineConfig.from_dict({"modelFormat": "q4"})
    assert EngineConfig.from_dict({"modelFormat": " BF16 "}).model_format == "bf16"
    monkeypatch.delenv("SEMCODE_MODEL_FORMAT", raising=False)
    assert EngineConfig().effective_model_format() == "auto"  # the product's default
    monkeypatch.setenv("SEMCODE_MODEL_FORMAT", "fast")
    with pytest.raises(ConfigError, match=r"\$SEMCODE_MODEL_FORMAT must be one of auto, as-is, bf16, got 'fast'"):
        EngineConfig().effective_model_format()
    assert EngineConfig(model_format="as-is").effective_model_format() == "as-is"  # the setting wins
    monkeypatch.setenv("SEMCODE_MODEL_FORMAT", "AS-IS")
    assert EngineConfig().effective_model_format() == "as-is"


def test_forcing_bf16_on_a_file_that_cannot_be_converted_says_why(tmp_path: Path) -> None:
    source = dataclasses.replace(inspect_gguf(PACKAGED_MODEL), tensors=(_t("blk.0.ffn_up.weight", 12, 384, 1536),))
    with pytest.raises(ConfigError, match=r"model_format=bf16: no BF16 copy .* Q4_K"):
        formats.choose(EngineConfig(model_format="bf16"), source)
