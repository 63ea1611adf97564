"""The embedding worker process: ``python -m engine.models.worker_main --model PATH ...``.

llama.cpp kills its process on a bad day (SIGILL when the build uses an instruction the CPU lacks,
SIGSEGV, GGML_ASSERT's abort, the OOM killer's SIGKILL). Running it here, in a child, turns each of
those into an error the parent can report and recover from (see ``engine.models.worker``).

Protocol over the child's stdin/stdout: frames of a 4-byte little-endian length and a payload whose
first byte is its kind: ``J`` JSON, ``V`` vectors (``<II`` rows, dim, then float32 rows), ``E`` an error
(JSON ``{"type", "message"}``). The parent sends ``J`` requests (``embed``, ``system_info``, ``ping``);
the child answers each with one frame, after a ``J`` hello (or an ``E``) once the model is loaded.

The protocol owns the real stdout: fd 1 is re-pointed at stderr before anything native is loaded, so
a stray ``printf`` in llama.cpp (or a ``print``) can never corrupt a frame or reach the parent's stdout.
This module's top level imports only the standard library: the parent imports the framing helpers.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import select
import struct
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

_HEADER = struct.Struct("<I")
_SHAPE = struct.Struct("<II")
MAX_FRAME = 1 << 30  # a sanity bound: a corrupt length must not make the reader allocate terabytes

log = logging.getLogger("engine.models.worker_main")


class FrameEOF(EOFError):
    """The other side closed the pipe."""


# -- framing (shared with the parent) -------------------------------------------------------------------


def encode_json(kind: bytes, obj: Any) -> bytes:
    return kind + json.dumps(obj, ensure_ascii=False).encode("utf-8")


def encode_vectors(vectors: np.ndarray) -> bytes:
    import numpy as np

    arr = np.ascontiguousarray(vectors, dtype="<f4")
    rows, dim = (arr.shape[0], arr.shape[1]) if arr.ndim == 2 else (0, 0)
    return b"V" + _SHAPE.pack(rows, dim) + arr.tobytes()


def decode_vectors(payload: bytes) -> np.ndarray:
    import numpy as np

    rows, dim = _SHAPE.unpack_from(payload, 1)
    return np.frombuffer(payload, dtype="<f4", offset=1 + _SHAPE.size, count=rows * dim).reshape(rows, dim)


def write_frame(fd: int, payload: bytes) -> None:
    data = memoryview(_HEADER.pack(len(payload)) + payload)
    while data:
        n = os.write(fd, data)
        data = data[n:]


def read_frame(fd: int, deadline: float | None = None) -> bytes:
    """One frame from ``fd``; ``TimeoutError`` past ``deadline`` (monotonic), ``FrameEOF`` on EOF."""
    (length,) = _HEADER.unpack(_read_exact(fd, _HEADER.size, deadline))
    if length > MAX_FRAME:
        raise ValueError(f"frame of {length} bytes: the stream is corrupt")
    return _read_exact(fd, length, deadline)


def _read_exact(fd: int, n: int, deadline: float | None) -> bytes:
    parts: list[bytes] = []
    while n:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                raise TimeoutError
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            raise FrameEOF
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


# -- the child ----------------------------------------------------------------------------------------


def _isolate_stdout() -> int:
    """Keep the real stdout for frames; everything else that writes to fd 1 lands on stderr."""
    proto = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return proto


def _harden() -> None:
    import faulthandler
    import signal

    try:
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crash must not drop a core file in the cwd
    except (ImportError, ValueError, OSError):  # pragma: no cover - non-POSIX
        pass
    faulthandler.enable()  # a Python traceback on stderr, then the signal kills us as before
    # Ctrl-C in a terminal reaches the whole process group: the parent decides when we stop (stdin EOF)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _error_frame(exc: BaseException) -> bytes:
    from ..errors import SemcodeError

    kind = type(exc).__name__ if isinstance(exc, SemcodeError) else "ModelError"
    message = str(exc) if isinstance(exc, SemcodeError) else f"{type(exc).__name__}: {exc}"
    return encode_json(b"E", {"type": kind, "message": message})


def _system_info() -> dict[str, str]:
    """llama.cpp's system info (the CPU backend's compiled features) and which CPU backend is loaded."""
    from .backend import ensure_cpu_backend
    from .llama import _import_llama_cpp, quiet_llama_logs

    llama_cpp = _import_llama_cpp()
    quiet_llama_logs()
    backend = ensure_cpu_backend(llama_cpp)  # a dispatch build lists no CPU features before this
    raw = llama_cpp.llama_print_system_info()
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw)
    return {"text": text, "cpu_backend": backend.describe(), "variant": backend.variant or ""}


def _write_to_stdout_every_way(text: str) -> None:
    import ctypes
    import ctypes.util

    print(text)
    sys.__stdout__.write(text + "\n") if sys.__stdout__ else None
    os.write(1, (text + "\n").encode())
    libc_name = ctypes.util.find_library("c")
    if libc_name:
        libc = ctypes.CDLL(libc_name)
        libc.puts((text + " (libc)").encode())
        libc.fflush(None)
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    proto = _isolate_stdout()
    _harden()
    parser = argparse.ArgumentParser(prog="engine.models.worker_main")
    parser.add_argument("--model", help="GGUF embedding model; without it only system_info/ping work")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--max-tokens", type=int, default=0)
    parser.add_argument("--nice", type=int, default=0)
    parser.add_argument("--idle-exit", type=float, default=0.0, help="exit after this many idle seconds")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=getattr(logging, str(args.log_level).upper(), logging.WARNING),
        format=f"semcode-worker[{os.getpid()}] %(levelname)s %(name)s: %(message)s",
    )
    # OpenMP threads spin while waiting by default: on a busy 2-core machine that made 2 threads slower
    # than 1. Must be set before llama.cpp (libgomp) is loaded.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if args.nice:
        os.nice(args.nice)
    stdin = sys.stdin.buffer.fileno()

    embedder: Any = None
    if args.model:
        try:
            from .info import DEFAULT_MAX_TOKENS
            from .llama import LlamaEmbedder

            embedder = LlamaEmbedder(args.model, threads=args.threads, max_tokens=args.max_tokens or DEFAULT_MAX_TOKENS)
            embedder._embed_texts(["warm up"])  # runs the compute kernels now: a SIGILL shows at start
            # llama.cpp read the whole GGUF in at load (and this interpreter its libraries): what a query
            # needs comes back at its first touch, the token table's unused rows (12 MB of MiniLM's) not.
            from ..memory import release_file_pages

            release_file_pages()
        except Exception as exc:  # noqa: BLE001 - every load failure goes back to the parent as a frame
            write_frame(proto, _error_frame(exc))
            return 3
        hello = {"op": "hello", "pid": os.getpid(), "dimension": embedder.info.dimension}
        hello["fingerprint"] = embedder.info.fingerprint
    else:
        hello = {"op": "hello", "pid": os.getpid()}
    write_frame(proto, encode_json(b"J", hello))
    return _serve(stdin, proto, embedder, args.idle_exit)


def _serve(stdin: int, proto: int, embedder: Any, idle_exit: float) -> int:
    while True:
        if idle_exit > 0 and not select.select([stdin], [], [], idle_exit)[0]:
            log.info("idle for %.0f s: exiting (the parent restarts the worker when it needs it)", idle_exit)
            return 0
        try:
            payload = read_frame(stdin)
        except FrameEOF:
            return 0  # the parent closed our stdin or died
        try:
            request = json.loads(payload[1:].decode("utf-8"))
            op = request.get("op")
            if op == "embed":
                if embedder is None:
                    raise ValueError("this worker has no model")
                reply = encode_vectors(_embed(embedder, request))
            elif op == "system_info":
                reply = encode_json(b"J", {"op": "system_info", **_system_info()})
            elif op == "stdout_probe":  # proves the isolation (tests): every way of writing to stdout
                _write_to_stdout_every_way(str(request.get("text", "probe")))
                reply = encode_json(b"J", {"op": "stdout_probe"})
            elif op == "release_pages":  # the parent's index maintenance is about to peak
                from ..memory import release_file_pages

                reply = encode_json(b"J", {"op": "release_pages", "bytes": release_file_pages()})
            elif op == "ping":
                reply = encode_json(b"J", {"op": "pong", "pid": os.getpid()})
            else:
                raise ValueError(f"unknown request {op!r}")
        except Exception as exc:  # noqa: BLE001 - a failed request is answered, the worker lives on
            reply = _error_frame(exc)
        try:
            write_frame(proto, reply)
        except BrokenPipeError:
            return 0


def _embed(embedder: Any, request: dict[str, Any]) -> Any:
    """An embed request, on ``request["threads"]`` llama.cpp threads if it asks (then back to ours)."""
    threads = int(request.get("threads") or 0)
    switch = threads > 0 and hasattr(embedder, "set_threads") and threads != embedder.threads
    if switch:
        embedder.set_threads(threads)
    try:
        return embedder._embed_texts(list(request["texts"]))
    finally:
        if switch:
            embedder.set_threads(embedder.threads)


if __name__ == "__main__":
    sys.exit(main())
