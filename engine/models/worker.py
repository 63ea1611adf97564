"""``WorkerEmbedder``: the llama.cpp embedder in child processes, so that its crashes are errors.

The pattern is rust-analyzer's proc-macro server: native code that may take the process down runs in a
child; the parent speaks a small framed protocol to it (``engine.models.worker_main``). When a child
dies (SIGILL, SIGSEGV, SIGABRT from GGML_ASSERT, SIGKILL from the OOM killer) the call raises a
``ModelWorkerError`` naming the cause and the fix, and a later call starts a new child after a backoff
(0.5 s doubling to 30 s; calls fail fast with the same error meanwhile).

Two children, so that indexing never slows a query down much: a query worker at normal priority (started
with the embedder) and an index worker at ``nice`` 10, started at the first document batch and left to
exit after two idle minutes. Both run with ``OMP_WAIT_POLICY=PASSIVE``: waiting OpenMP threads sleep
instead of spinning on the cores the other child needs.

Tokens are counted in the parent (the chunker asks for every chunk: one IPC per count would cost more
than the count). The parent loads llama.cpp's vocabulary only (``vocab_only``: no tensors, no compute
kernels), and only after a child has loaded the same build and run an embedding, so a build that crashes
on this CPU is reported by the child before the parent ever loads it.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import errors
from ..children import package_env
from ..errors import ModelError, ModelWorkerError
from .base import Embedder, _normalise
from .cpu_build import REBUILD
from .gguf_file import GGUFInfo, inspect_gguf
from .info import DEFAULT_MAX_TOKENS, model_info
from .packing import packing_enabled
from .worker_main import FrameEOF, decode_vectors, encode_json, read_frame, write_frame

log = logging.getLogger(__name__)
_child_log = logging.getLogger("engine.models.worker.child")

BACKOFF_START_S = 0.5
BACKOFF_MAX_S = 30.0
START_TIMEOUT_S = 120.0  # loading a big model from a cold disk on a busy machine
INDEX_NICE = 10
RELEASE_PAGES_TIMEOUT_S = 10.0  # a madvise over a worker's mappings: ~10-30 ms
INDEX_IDLE_EXIT_S = 120.0
# A small index's query (nothing beside its embedding) of at least this many characters, ~30 tokens of
# English, runs on every thread; a shorter one is faster on the query worker's one (embed_query_alone).
ALONE_MIN_CHARS = 128


def _request_timeout(texts: int) -> float:
    # generous: a 32-text batch of 512-token chunks takes ~5 s on a quiet 2-core machine, 10x that loaded
    return 120.0 + 5.0 * texts


def describe_exit(returncode: int, stderr_tail: Sequence[str] = ()) -> str:
    """One line: how the worker ended, the likely cause and the fix."""
    if returncode < 0:
        sig = -returncode
        name = _signal_name(sig)
        if sig == signal.SIGILL:
            return (
                f"the embedding worker died of {name}: this CPU lacks an instruction the llama.cpp build uses; "
                f"{REBUILD}"
            )
        if sig == signal.SIGKILL:
            return (
                f"the embedding worker was killed ({name}), most likely by the out-of-memory killer: free "
                "memory, or lower 'threads'/'batch_size', or use a smaller model"
            )
        if sig == signal.SIGABRT:
            detail = _last_native_error(stderr_tail)
            return (
                f"the embedding worker aborted ({name}): llama.cpp rejected the input or the model"
                f"{' (' + detail + ')' if detail else ''}; report it with the model name and the text if it "
                "repeats"
            )
        if sig == signal.SIGSEGV:
            return (
                f"the embedding worker crashed ({name}) inside llama.cpp: usually a llama-cpp-python build for "
                f"another CPU; {REBUILD}, and report it with the model name if it persists"
            )
        if sig == signal.SIGBUS:
            return (
                f"the embedding worker crashed ({name}): the model file changed or shrank while in use; "
                "fetch the model again and do not modify it while semcode runs"
            )
        return f"the embedding worker was stopped by {name}; it restarts on the next request"
    detail = _last_native_error(stderr_tail)
    return (
        f"the embedding worker exited unexpectedly with code {returncode}"
        f"{' (' + detail + ')' if detail else ''}; see the log for its output"
    )


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def _last_native_error(lines: Sequence[str]) -> str:
    for line in reversed(lines):
        if "GGML_ASSERT" in line or "error" in line.lower() or "Fatal Python error" in line:
            return line.strip()[:300]
    return ""


def _line_level(line: str) -> int:
    """The level of a child's log line ("semcode-worker[pid] LEVEL name: ..."); anything else is a warning."""
    if line.startswith("semcode-worker["):
        parts = line.split(" ", 2)
        level = logging.getLevelName(parts[1]) if len(parts) > 1 else None
        if isinstance(level, int):
            return level
    return logging.WARNING  # a traceback, faulthandler's dump, a native message: worth seeing


class _Child:
    """One worker process, its pipes and the thread that forwards its stderr to the log."""

    def __init__(self, argv: list[str], env: dict[str, str], role: str) -> None:
        self.role = role
        self.tail: collections.deque[str] = collections.deque(maxlen=40)
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=os.path.abspath(os.sep),  # never the workspace: nothing is written there
            close_fds=True,
            bufsize=0,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.stdin_fd = self.proc.stdin.fileno()
        self.stdout_fd = self.proc.stdout.fileno()
        self._stderr_thread = threading.Thread(
            target=self._forward_stderr, name=f"semcode-worker-{role}-stderr", daemon=True
        )
        self._stderr_thread.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _forward_stderr(self) -> None:
        stream = self.proc.stderr
        assert stream is not None
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", errors="replace").rstrip()
            if line:
                self.tail.append(line)
                _child_log.log(_line_level(line), "[%s %d] %s", self.role, self.proc.pid, line)
        stream.close()

    def request(self, payload: bytes, timeout: float) -> bytes:
        """Send one frame, read one; ``FrameEOF`` when the child is gone, ``TimeoutError`` when it hangs."""
        try:
            write_frame(self.stdin_fd, payload)
        except (BrokenPipeError, OSError) as exc:
            raise FrameEOF from exc
        return read_frame(self.stdout_fd, time.monotonic() + timeout)

    def wait_exit(self, timeout: float = 5.0) -> int:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._stderr_thread.join(2.0)  # the tail must hold the last words (GGML_ASSERT ...) before we read it
        return code

    def stop(self, grace: float = 2.0) -> None:
        """Close stdin (the child exits at EOF), then kill if it lingers; always reaped (no zombie)."""
        with contextlib.suppress(OSError):
            if self.proc.stdin is not None:  # always: the child was started with stdin=PIPE
                self.proc.stdin.close()
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        with contextlib.suppress(OSError):
            if self.proc.stdout is not None:  # always: stdout=PIPE
                self.proc.stdout.close()
        self._stderr_thread.join(2.0)


class _Slot:
    """A worker role (query or index): starts its child on demand, restarts it with backoff."""

    def __init__(self, owner: WorkerEmbedder, role: str, nice: int, idle_exit: float) -> None:
        self.owner = owner
        self.role = role
        self.nice = nice
        self.idle_exit = idle_exit
        self.lock = threading.Lock()
        self.child: _Child | None = None
        self.started_once = False
        self.delay = BACKOFF_START_S
        self.retry_at = 0.0
        self.failure: ModelError | None = None

    def _spawn(self) -> _Child:
        o = self.owner
        argv = [
            sys.executable, "-m", "engine.models.worker_main",
            "--model", o.info.path, "--threads", str(o.query_threads if self.role == "query" else o.threads),
            "--max-tokens", str(o.max_tokens),
            "--nice", str(self.nice), "--idle-exit", str(self.idle_exit),
            "--log-level", logging.getLevelName(max(logging.INFO, _child_log.getEffectiveLevel())),
        ]  # fmt: skip
        child = _Child(argv, worker_env(), self.role)
        try:
            reply = read_frame(child.stdout_fd, time.monotonic() + START_TIMEOUT_S)
        except (FrameEOF, TimeoutError) as exc:
            if isinstance(exc, TimeoutError):
                child.proc.kill()
            code = child.wait_exit()
            raise ModelWorkerError(describe_exit(code, child.tail)) from None
        if reply[:1] == b"E":
            child.stop()
            raise _remote_error(reply)
        hello = json.loads(reply[1:])
        if hello.get("dimension") != o.info.dimension:  # the header lied; what the vectors are wins
            log.warning("worker reports dimension %s, the header %d", hello.get("dimension"), o.info.dimension)
        log.info("embedding %s worker started (pid %d, nice %d)", self.role, child.pid, self.nice)
        return child

    def call(self, payload: bytes, timeout: float) -> bytes:
        with self.lock:
            if self.owner._closed:
                raise ModelError(f"the embedding model {self.owner.info.path} was closed")
            for attempt in range(2):
                child = self._ensure_child()
                try:
                    reply = child.request(payload, timeout)
                except FrameEOF:
                    code = child.wait_exit()
                    self.child = None
                    if self.owner._closed:
                        raise ModelError(f"the embedding model {self.owner.info.path} was closed") from None
                    if code == 0 and attempt == 0:  # it had exited on idle just before the request: resend
                        continue
                    raise self._fail(ModelWorkerError(describe_exit(code, child.tail))) from None
                except TimeoutError:
                    child.proc.kill()
                    child.wait_exit()
                    self.child = None
                    raise self._fail(
                        ModelWorkerError(
                            f"the embedding worker did not answer within {timeout:.0f} s and was stopped; "
                            "the machine may be overloaded: retry, or lower 'threads'"
                        )
                    ) from None
                self.delay = BACKOFF_START_S  # a working child: the next failure starts the backoff anew
                return reply
            raise AssertionError("unreachable")  # pragma: no cover

    def _ensure_child(self) -> _Child:
        if self.child is not None and self.child.proc.poll() is None:
            return self.child
        if self.child is not None:  # exited on idle (code 0) or died between calls
            code = self.child.wait_exit()
            dead, self.child = self.child, None
            if code != 0:
                raise self._fail(ModelWorkerError(describe_exit(code, dead.tail)))
        if self.failure is not None and time.monotonic() < self.retry_at:
            raise self.failure  # backing off: fail fast with the same error
        try:
            self.child = self._spawn()
        except ModelError as exc:
            raise self._fail(exc) from None
        if self.started_once and self.failure is not None:
            self.owner.restarts += 1
            from ..metrics import metrics

            metrics().worker_restarts.inc()
        self.started_once = True
        self.failure = None
        return self.child

    def _fail(self, exc: ModelError) -> ModelError:
        self.failure = exc
        self.retry_at = time.monotonic() + self.delay
        self.delay = min(self.delay * 2, BACKOFF_MAX_S)
        self.owner.last_error = str(exc)
        log.error("embedding %s worker: %s", self.role, exc)
        return exc

    def pid(self) -> int | None:
        child = self.child
        return child.pid if child is not None and child.proc.poll() is None else None

    def release_pages(self) -> None:
        """Ask an idle running child to release its file pages (``engine.memory.release_file_pages``:
        the mapped model, its libraries' code); a busy or stopped one is left alone. Its next call reads
        back what it touches (~1 ms), unlike a stop (``release``), whose next call waits ~1 s for a start."""
        if not self.lock.acquire(blocking=False):
            return
        try:
            child = self.child
            if child is None or child.proc.poll() is not None:
                return
            try:
                child.request(encode_json(b"J", {"op": "release_pages"}), RELEASE_PAGES_TIMEOUT_S)
            except TimeoutError:  # a late answer would be read as the next call's: stop it (no failure)
                child.proc.kill()
                child.wait_exit()
                self.child = None
            except (FrameEOF, OSError) as exc:  # it died: the next call's start sees how (``_ensure_child``)
                log.debug("embedding %s worker did not release its pages: %s", self.role, exc)
        finally:
            self.lock.release()

    def release(self) -> None:
        """Stop the child after the call in flight, if any; the next call starts a new one (no restart)."""
        with self.lock:
            if self.child is not None:
                self.child.stop()
                self.child = None
                log.info("embedding %s worker stopped until it is needed", self.role)

    def stop(self) -> None:
        if not self.lock.acquire(blocking=False):
            # a call is in flight (a long index batch): kill its child so that close() need not wait for it
            child = self.child
            if child is not None:
                with contextlib.suppress(OSError):
                    child.proc.kill()
            self.lock.acquire()
        try:
            if self.child is not None:
                self.child.stop()
                self.child = None
        finally:
            self.lock.release()


def _remote_error(reply: bytes) -> ModelError:
    data = json.loads(reply[1:])
    cls = getattr(errors, str(data.get("type")), None)
    if not (isinstance(cls, type) and issubclass(cls, ModelError)):
        cls = ModelError
    return cls(str(data.get("message")))


def worker_env() -> dict[str, str]:
    env = package_env()
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # must be in place before the child loads libgomp
    env["PYTHONUNBUFFERED"] = "1"
    return env


class WorkerEmbedder(Embedder):
    """An ``Embedder`` whose llama.cpp runs in child processes. Thread-safe."""

    def __init__(
        self,
        model_path: str | Path,
        *,
        threads: int = 0,
        batch_size: int = 32,
        query_prefix: str = "",
        document_prefix: str = "",
        max_tokens: int = DEFAULT_MAX_TOKENS,
        gguf_info: GGUFInfo | None = None,
        index_nice: int = INDEX_NICE,
        index_idle_exit: float = INDEX_IDLE_EXIT_S,
    ) -> None:
        path = Path(model_path).expanduser()
        meta = gguf_info or inspect_gguf(path)  # precise errors before any child starts
        from ..config import EngineConfig

        self.threads = threads or EngineConfig().effective_threads()
        # The query worker gets half of them: a query's BM25 and name look-ups (and LanceDB's native
        # threads) run beside its embedding, and a llama.cpp thread that loses its core stalls every
        # barrier of the graph. On 2 cores one thread answered rxjs's docstring queries faster over LSP,
        # p50 35-40 vs 42 ms, p95 49-56 vs 55-58 (BENCHMARKS.md, "Integration (lead), session 6").
        self.query_threads = max(1, self.threads // 2)
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self.info = model_info(
            meta, path, query_prefix=query_prefix, document_prefix=document_prefix, max_tokens=max_tokens
        )
        self.last_error: str | None = None
        self.restarts = 0
        self._closed = False
        self._vocab: _Vocab | None = None
        self._vocab_lock = threading.Lock()
        self._query = _Slot(self, "query", 0, 0.0)
        self._index = _Slot(self, "index", index_nice, index_idle_exit)
        self._finalizer = weakref.finalize(self, _stop_slots, self._query, self._index)
        self._vocab_preload: threading.Thread | None = None
        self._preload_guard = threading.Lock()
        with self._query.lock:
            self._query._ensure_child()  # load errors (and a crashing build) surface here, like in-process

    # -- status for front ends --------------------------------------------------------------------------

    @property
    def pids(self) -> dict[str, int | None]:
        return {"query": self._query.pid(), "index": self._index.pid()}

    def status(self) -> dict[str, Any]:
        return {"pids": self.pids, "restarts": self.restarts, "lastError": self.last_error}

    # -- tokens -----------------------------------------------------------------------------------------

    def _vocabulary(self) -> _Vocab:
        with self._vocab_lock:
            if self._closed:
                raise ModelError(f"the embedding model {self.info.path} was closed")
            if self._vocab is None:
                self._vocab = _Vocab(self.info.path)
            return self._vocab

    def prepare_tokens(self) -> None:
        """Load the vocabulary (import llama_cpp + a vocab-only load, ~0.3-1.4 s) on a thread, once: a first
        index's walk and chunking overlap it. Not started by the constructor: a restart with nothing changed
        counts no token (``cap`` skips short queries) and its check no longer waits behind that load
        (BENCHMARKS.md, restart7). Never before the child is up: a build that dies on import (SIGILL) must
        kill the child, never this process (tests/test_doctor.py)."""
        with self._preload_guard:  # not _vocab_lock: a load in progress holds it
            if self._vocab is not None or self._vocab_preload is not None or self._closed:
                return
            self._vocab_preload = threading.Thread(target=self._preload_vocabulary, name="semcode-vocab", daemon=True)
        self._vocab_preload.start()

    def _preload_vocabulary(self) -> None:
        try:
            self._vocabulary()
        except Exception:  # the first real count raises it again, where it can be reported
            log.debug("preloading the vocabulary of %s failed", self.info.path, exc_info=True)

    def vocabulary_path(self) -> str | None:
        return self.info.path  # llama_tokenize on a vocab-only load of the same file, same flags

    @property
    def pack_capacity(self) -> int | None:
        # The index child's LlamaEmbedder fills decodes of n_ctx tokens; planned here, where the tokens
        # are counted, so a whole write batch shares one plan (the child keeps a planned call's order).
        return self.info.context_length if packing_enabled() else None

    def count_tokens(self, text: str) -> int:
        return self._vocabulary().count(text)

    def tokenize(self, text: str) -> list[int]:
        return self._vocabulary().tokenize(text)

    # -- embedding --------------------------------------------------------------------------------------

    def _embed_on(self, slot: _Slot, texts: Sequence[str], threads: int | None = None) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.info.dimension), dtype=np.float32)
        request: dict[str, Any] = {"op": "embed", "texts": list(texts)}
        if threads:
            request["threads"] = threads  # for this request only (worker_main)
        reply = slot.call(encode_json(b"J", request), _request_timeout(len(texts)))
        if reply[:1] == b"E":
            raise _remote_error(reply)
        return decode_vectors(reply)

    def _embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed_on(self._index, texts)  # documents: the low-priority worker

    def embed_query(self, query: str) -> np.ndarray:
        vector: np.ndarray = _normalise(self._embed_on(self._query, [self.cap(self.info.query_prefix + query)]))[0]
        return vector

    def embed_query_alone(self, query: str) -> np.ndarray:
        # Every thread for a long query: nothing of the search but ~3 ms of Python runs beside it, and two
        # llama.cpp threads answered rxjs's docstring queries faster over LSP, p95 median 38.9 vs 44.5 ms
        # (BENCHMARKS.md, "bm25mem (session 8)"). Not for a short one: its one small decode on 2 threads
        # waits at every graph node's barrier, and with OMP_WAIT_POLICY=PASSIVE each wait is a sleep:
        # 9 tokens took 10-12 ms on 2 threads against 5.5-6.7 on one, 15 tokens 11-13 against 8-10; the
        # two were even at ~29 tokens, and 56 took 22-27 against 34-39 (BENCHMARKS.md, "Lead, session 15").
        text = self.cap(self.info.query_prefix + query)
        long = len(text) >= ALONE_MIN_CHARS  # characters, not tokens: a restart loads no vocabulary
        threads = self.threads if long and self.threads > self.query_threads else None
        vector: np.ndarray = _normalise(self._embed_on(self._query, [text], threads))[0]
        return vector

    def embed_interactive(self, texts: Sequence[str]) -> np.ndarray:
        # The query worker: the index worker may be busy with a batch of the dense tier for seconds.
        if not texts:
            return np.zeros((0, self.info.dimension), dtype=np.float32)
        return _normalise(self._embed_on(self._query, [self.cap(self.info.document_prefix + t) for t in texts]))

    def release_query_worker(self) -> None:
        """Stop the query worker (~110 MB with MiniLM) until a query or save needs it: a CLI ``semcode
        index`` kept it idle for the whole run, beside the index worker and the maintenance child. It
        started with the embedder all the same, so a model or build that cannot load fails there."""
        self._query.release()

    def release_worker_pages(self) -> None:
        """Both workers, when running and idle, release their file pages (``_Worker.release_pages``):
        the query worker 88 -> 38 MB beside a maintenance child at 179K chunks (BENCHMARKS.md, "Lead,
        session 12")."""
        self._query.release_pages()
        self._index.release_pages()

    def release_index_worker(self) -> None:
        """Stop the index worker (~150 MB) until the next document batch: it idled beside the index's
        maintenance child (compaction, the vector index's build), whose peak it added to."""
        self._index.release()

    def system_info(self) -> str:
        """llama.cpp's ``llama_print_system_info()`` as the query worker sees it."""
        reply = self._query.call(encode_json(b"J", {"op": "system_info"}), 30.0)
        if reply[:1] == b"E":
            raise _remote_error(reply)
        return str(json.loads(reply[1:])["text"])

    def close(self) -> None:
        self._closed = True
        self._finalizer()
        with self._vocab_lock:
            if self._vocab is not None:
                self._vocab.close()
                self._vocab = None


def _stop_slots(*slots: _Slot) -> None:
    for slot in slots:
        slot.stop()


class _Vocab:
    """llama.cpp's tokenizer for a model, loaded with ``vocab_only`` (no tensors, no compute)."""

    def __init__(self, path: str) -> None:
        from .llama import _import_llama_cpp, quiet_llama_logs

        self._llama_cpp = llama_cpp = _import_llama_cpp()
        quiet_llama_logs()
        params = llama_cpp.llama_model_default_params()
        params.vocab_only = True
        params.use_mmap = True
        self._model = llama_cpp.llama_model_load_from_file(path.encode("utf-8"), params)
        if not self._model:
            raise ModelError(f"llama.cpp could not read the vocabulary of {path}; fetch the model again")
        self._vocab = llama_cpp.llama_model_get_vocab(self._model)
        self._lock = threading.Lock()

    def count(self, text: str) -> int:
        data = text.encode("utf-8", errors="replace")
        with self._lock:
            self._check()
            n = self._llama_cpp.llama_tokenize(self._vocab, data, len(data), None, 0, True, False)
        return abs(int(n))  # -(needed) when the buffer is too small, which a NULL buffer always is

    def tokenize(self, text: str) -> list[int]:

        data = text.encode("utf-8", errors="replace")
        with self._lock:
            self._check()
            n = abs(int(self._llama_cpp.llama_tokenize(self._vocab, data, len(data), None, 0, True, False)))
            buf = (self._llama_cpp.llama_token * max(n, 1))()
            got = int(self._llama_cpp.llama_tokenize(self._vocab, data, len(data), buf, n, True, False))
        return list(buf[:got])

    def _check(self) -> None:
        if self._model is None:
            raise ModelError("the embedding model's vocabulary was closed")

    def close(self) -> None:
        with self._lock:
            if self._model is not None:
                self._llama_cpp.llama_model_free(self._model)
                self._model = None
