"""A BF16 copy of a GGUF embedding model: its layers' matrices as BF16, everything else byte for byte.

    python -m engine.models.derive SRC.gguf DST.gguf      # what ``derive_bf16`` runs in a child process

Why (BENCHMARKS.md "flops9 (session 9)" and "flops10 (session 10)"): on a CPU backend with AVX512_BF16
(ggml's zen4 and cooperlake levels) a BF16 matrix multiplies with ``vdpbf16ps``, 1.2-1.5x the speed of
Q8_0's int8 kernel in the same rounds, and its vectors are closer to F32's than Q8_0's own (most of Q8_0's
error is in the activations its matmul quantizes to int8). Each source matrix is converted exactly
(Q8_0: d x q, F16 and F32 as they are) to float32, then rounded to BF16 (round to nearest even, as ggml's
``ggml_fp32_to_bf16``), so the same source always gives the same bytes.

Which tensors: the 2-D ``*.weight`` matrices of the transformer's blocks (``blk.N.`` / ``enc.blk.N.``),
the ones every token's matmul reads; ``token_embd`` and the other tables outside the blocks only feed
``get_rows`` (a few rows per token), so they stay as they are (the shipped MiniLM: 35 MB instead of 46,
the same speed within the spread, +10 MB per model process instead of +20). Metadata is copied, plus
``semcode.bf16_source`` (the source file's fingerprint) and ``semcode.bf16_version``, so a copy made from
another file or by another recipe is never taken for this one.

Written in a child process (``derive_bf16``): the parent (a language server) keeps neither gguf's
reader nor the numpy temporaries, and a crash of the conversion is an error, not the server's death.
The child writes a temporary file beside the target and fsyncs it; the parent checks it and renames it
into place, under a file lock, so a crash at any point leaves either no file or the whole one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import ModelConversionError, ModelError

log = logging.getLogger(__name__)

DERIVE_VERSION = 1  # bump when the recipe changes: cached copies carry it and are made again
SOURCE_KEY = "semcode.bf16_source"
VERSION_KEY = "semcode.bf16_version"
DERIVE_TIMEOUT_S = 900.0

# ggml type codes (enum ggml_type)
F32, F16, Q8_0, BF16 = 0, 1, 8, 30
CONVERTIBLE = {F32: "F32", F16: "F16", Q8_0: "Q8_0"}  # converted exactly to float32, then rounded to BF16
LLAMA_FTYPE_MOSTLY_BF16 = 32
_LAYER = re.compile(r"(^|\.)blk\.\d+\.")


def is_layer_matrix(name: str, shape: tuple[int, ...]) -> bool:
    """A matrix of the transformer's blocks (what every token's matmul reads): converted to BF16."""
    return len(shape) == 2 and name.endswith(".weight") and _LAYER.search(name) is not None


def derive_file(src: str | os.PathLike[str], dst: str | os.PathLike[str], source_fingerprint: str) -> None:
    """Write the BF16 copy of ``src`` to ``dst`` (a new file) and fsync it. Runs in the child."""
    import gguf
    import numpy as np
    from gguf import GGMLQuantizationType, GGUFReader, GGUFWriter

    from ..faults import fault_point

    reader = GGUFReader(str(src))
    arch = reader.fields["general.architecture"].contents()
    writer = GGUFWriter(str(dst), arch)
    for field in reader.fields.values():
        if field.name in ("general.architecture", SOURCE_KEY, VERSION_KEY) or field.name.startswith("GGUF."):
            continue  # the architecture and the GGUF.* counts are written by GGUFWriter itself
        vtype = field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        value = field.contents()
        if field.name == "general.file_type":
            value = LLAMA_FTYPE_MOSTLY_BF16
        writer.add_key_value(field.name, value, vtype, sub_type=sub)
    writer.add_string(SOURCE_KEY, source_fingerprint)
    writer.add_uint32(VERSION_KEY, DERIVE_VERSION)
    plan: list[tuple[Any, bool]] = []
    for t in reader.tensors:
        convert = int(t.tensor_type) in CONVERTIBLE and is_layer_matrix(t.name, tuple(int(d) for d in t.shape))
        plan.append((t, convert))
        if convert:  # BF16 bytes: numpy shape (rows..., ne0 * 2) of uint8
            rows = tuple(int(d) for d in reversed(t.shape[1:]))
            writer.add_tensor_info(
                t.name, (*rows, int(t.shape[0]) * 2), np.dtype(np.uint8), int(t.n_elements) * 2,
                GGMLQuantizationType.BF16,
            )  # fmt: skip
        else:
            writer.add_tensor_info(t.name, t.data.shape, t.data.dtype, t.data.nbytes, t.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for i, (t, convert) in enumerate(plan):
        if i == len(plan) // 2:
            fault_point("derive.mid")  # crash tests: half the tensors written, nothing renamed
        if not convert:
            writer.write_tensor_data(t.data)
            continue
        kind = int(t.tensor_type)
        if kind == Q8_0:
            f32 = gguf.quants.dequantize(t.data, GGMLQuantizationType.Q8_0)  # exact: d (f16) x q (int8)
        else:
            f32 = np.asarray(t.data, dtype=np.float32)
        writer.write_tensor_data(gguf.quants.quantize(f32, GGMLQuantizationType.BF16))
    writer.close()
    with open(dst, "rb+") as fh:  # durable before the parent's rename makes it visible
        os.fsync(fh.fileno())


def derive_bf16(src: Path, target: Path, source_fingerprint: str) -> Path:
    """Make ``target``, the BF16 copy of ``src``, once even across processes; return it.

    A child process writes a temporary file beside ``target``; it is checked, then renamed over it.
    Temporary files a crashed earlier attempt left behind are removed first (under the lock, so never
    another process's file in progress).
    """
    from .gguf_file import inspect_gguf
    from .provision import _file_lock

    target.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(target.with_name(target.name + ".lock")):
        if derived_is_valid(target, source_fingerprint):
            return target  # another process made it while we waited
        for stale in target.parent.glob(f".{target.name}.*.tmp"):
            with contextlib.suppress(OSError):
                stale.unlink()
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            started = time.perf_counter()
            _run_child(src, tmp, source_fingerprint)
            info = inspect_gguf(tmp)  # a file we cannot read back never takes the target's name
            if info.metadata.get(SOURCE_KEY) != source_fingerprint:
                raise ModelConversionError(f"the BF16 copy of {src} does not name its source")
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o644 & ~umask)  # mkstemp's 0600 is for the file in progress, not the copy
            os.replace(tmp, target)
            log.info(
                "made the BF16 copy of %s: %s (%.1f MB, %.1f s)",
                src.name, target, target.stat().st_size / 1e6, time.perf_counter() - started,
            )  # fmt: skip
        except OSError as exc:
            raise ModelConversionError(f"cannot write the BF16 copy of {src} to {target}: {exc}") from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    return target


def derived_is_valid(path: Path, source_fingerprint: str) -> bool:
    """Is ``path`` a whole BF16 copy of the source with this fingerprint, by this recipe?"""
    from .gguf_file import inspect_gguf

    if not path.is_file():
        return False
    try:
        meta = inspect_gguf(path).metadata
    except ModelError as exc:
        log.warning("the BF16 copy %s is unusable (%s); making it again", path, exc)
        return False
    return meta.get(SOURCE_KEY) == source_fingerprint and meta.get(VERSION_KEY) == DERIVE_VERSION


def _run_child(src: Path, tmp: Path, source_fingerprint: str) -> None:
    from ..children import package_env

    argv = [sys.executable, "-m", "engine.models.derive", str(src), str(tmp), source_fingerprint]
    try:
        done = subprocess.run(
            argv, env=package_env(), cwd=os.path.abspath(os.sep), capture_output=True, text=True,
            timeout=DERIVE_TIMEOUT_S, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise ModelConversionError(
            f"making the BF16 copy of {src} took over {DERIVE_TIMEOUT_S:.0f} s and was stopped; "
            "set model_format = as-is to use the file as it is"
        ) from None
    if done.returncode != 0:
        tail = " ".join(done.stderr.strip().splitlines()[-3:])[-400:]
        raise ModelConversionError(
            f"making the BF16 copy of {src} failed (exit {done.returncode}{': ' + tail if tail else ''}); "
            "set model_format = as-is to use the file as it is"
        )


def _main(argv: list[str]) -> int:
    src, dst, fingerprint = argv
    derive_file(src, dst, fingerprint)
    return 0


@contextlib.contextmanager
def _no_stdout() -> Iterator[None]:
    with contextlib.redirect_stdout(sys.stderr):
        yield


if __name__ == "__main__":
    with _no_stdout():
        sys.exit(_main(sys.argv[1:]))
