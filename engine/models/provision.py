"""The default model: all-MiniLM-L6-v2 converted once into the cache, then reused.

Q8_0 is the default (measured on this 2-core CPU, 1,000 stdlib functions, see the report in
bench/bench_embed.py): F32 and Q8_0 run at the same speed within noise while F16 is ~30% slower (no
native F16 arithmetic on most CPUs); Q8_0 agrees with an exact float64 reference to cosine >= 0.999
and is a quarter of the F32 file (25 MB vs 91 MB, less to page in and keep resident).
Q8_0 is made from the F32 conversion by llama.cpp's own quantizer.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..config import cache_root
from ..errors import ModelConversionError, ModelError
from .convert import MODEL_NAME, convert, quantize
from .gguf_file import inspect_gguf

log = logging.getLogger(__name__)

DEFAULT_QUANT = "q8_0"
DEFAULT_FILENAME = f"{MODEL_NAME}-{DEFAULT_QUANT}.gguf"
LOCK_TIMEOUT_S = 300.0  # a conversion takes a few seconds; a stale lock should not block forever


def models_dir() -> Path:
    return cache_root() / "models"


def default_model_path(*, quant: str = DEFAULT_QUANT) -> Path:
    """Path of the default GGUF model, converting it first if needed (once, even across processes)."""
    target = models_dir() / f"{MODEL_NAME}-{quant}.gguf"
    if _valid(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(target.with_name(target.name + ".lock")):
        if _valid(target):  # another process converted it while we waited for the lock
            return target
        log.info("converting %s to %s (one time)", MODEL_NAME, target)
        _build(target, quant)
        inspect_gguf(target)  # a file we cannot read back must not be left in place silently
    return target


def _valid(path: Path) -> bool:
    if not path.exists():
        return False
    try:
        inspect_gguf(path)
        return True
    except ModelError as exc:
        log.warning("the cached model %s is unusable (%s); converting it again", path, exc)
        return False


def _build(target: Path, quant: str) -> None:
    """Write ``target`` atomically: a temp file in the same directory, then os.replace."""
    tmp_dir = target.parent
    fd, tmp_name = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=tmp_dir)
    os.close(fd)
    tmp = Path(tmp_name)
    f32_tmp: Path | None = None
    try:
        if quant in ("f32", "f16"):
            convert(tmp, outtype=quant)
        else:
            fd, f32_name = tempfile.mkstemp(prefix=target.name + ".f32.", suffix=".tmp", dir=tmp_dir)
            os.close(fd)
            f32_tmp = Path(f32_name)
            convert(f32_tmp, outtype="f32")
            quantize(f32_tmp, tmp, quant)
        with open(tmp, "rb+") as fh:  # make the bytes durable before the rename makes them visible
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        raise ModelConversionError(f"cannot write the default model to {target}: {exc}") from exc
    finally:
        for leftover in (tmp, f32_tmp):
            if leftover is not None:
                with contextlib.suppress(FileNotFoundError):
                    leftover.unlink()


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    from filelock import FileLock, Timeout

    lock = FileLock(str(path), timeout=LOCK_TIMEOUT_S)
    try:
        with lock:
            yield
    except Timeout as exc:
        raise ModelConversionError(
            f"timed out waiting for another semcode process to convert the default model ({path} is "
            "locked). If no other semcode process is running, delete the lock file and retry."
        ) from exc
