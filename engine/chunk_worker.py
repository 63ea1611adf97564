"""Chunking on a second core: a child process running ``chunk_file`` and the lexical terms (issue 11).

Phase 1 (chunks + lexical tier for the whole workspace) is pure Python and tree-sitter, bound to one
core by the GIL, and it is what stands between ``initialize`` and the first search. On a first index
of many files the indexer hands some files to this child while it chunks others itself, so both cores
work. The child loads only the chunker and the model's vocabulary (``vocab_only``: no tensors), so its
token counts, and therefore its chunks, are exactly the parent's.

Protocol: ``python -m engine.chunk_worker --vocab GGUF`` speaks the framing of
``engine.models.worker_main`` on its stdin/stdout: after a ``J`` hello it answers each pickled request
``(path, text, max_tokens)`` with a pickled reply ``("ok", [chunk fields...], [lexical terms...])`` or
``("error", "ExceptionName: message")``. Pickle is safe here: both ends are this package.

Anything going wrong with the child (it fails to start, dies, answers an error about itself) makes
``ChunkWorker`` refuse further work; the indexer then chunks those files itself. Nothing is lost and
the result is the same, only slower.
"""

from __future__ import annotations

import argparse
import logging
import os
import pickle
import queue
import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from typing import Any

from .children import package_env
from .models.worker_main import FrameEOF, encode_json, read_frame, write_frame
from .records import Chunk

log = logging.getLogger(__name__)

START_TIMEOUT_S = 60.0
REQUEST_TIMEOUT_S = 120.0  # one file; a 1 MB file of one-character lines chunks in a few seconds
MAX_QUEUED = 2  # files waiting for the child: more would only make the parent idle at the end
_FIELDS = ("path", "language", "start_line", "end_line", "content", "symbol", "kind", "parent", "header")


class ChunkWorker:
    """One chunking child at nice 0 (the user waits for phase 1), fed by a thread; thread-safe ``submit``."""

    def __init__(self, vocab_path: str, *, nice: int = 0) -> None:
        self.vocab_path = vocab_path
        self.nice = nice
        self.failed: str | None = None  # why the child cannot be used (then ``submit`` returns None)
        self._jobs: queue.SimpleQueue[tuple[Future[tuple[list[Chunk], list[str]]], bytes] | None] = queue.SimpleQueue()
        self._queued = 0
        self._guard = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._thread = threading.Thread(target=self._run, name="semcode-chunk-worker", daemon=True)
        self._thread.start()

    # ----------------------------------------------------------------- the parent's side
    def busy(self) -> bool:
        """Whether enough files wait for the child already (then the caller chunks the next one itself)."""
        return self.failed is not None or self._queued >= MAX_QUEUED

    def submit(self, path: str, text: str, max_tokens: int) -> Future[tuple[list[Chunk], list[str]]] | None:
        """Chunk ``text`` in the child; None when the child is unusable (chunk it in this process)."""
        if self.failed is not None:
            return None
        future: Future[tuple[list[Chunk], list[str]]] = Future()
        with self._guard:
            self._queued += 1
        self._jobs.put((future, pickle.dumps((path, text, max_tokens), protocol=pickle.HIGHEST_PROTOCOL)))
        return future

    def close(self) -> None:
        """Stop the child; queued files fail (their callers chunk them themselves)."""
        self._jobs.put(None)
        self._thread.join(10.0)
        self._stop_child()

    # ----------------------------------------------------------------- the feeding thread
    def _run(self) -> None:
        try:
            self._start_child()
        except Exception as exc:  # noqa: BLE001 - the indexer falls back to chunking in-process
            self._fail(f"could not start: {exc}")
        while True:
            item = self._jobs.get()
            if item is None:
                break
            future, payload = item
            with self._guard:
                self._queued -= 1
            if self.failed is not None or not future.set_running_or_notify_cancel():
                if not future.done():
                    future.set_exception(RuntimeError(f"chunk worker unavailable: {self.failed}"))
                continue
            try:
                future.set_result(self._request(payload))
            except Exception as exc:  # noqa: BLE001 - handed to the caller, which chunks in-process
                future.set_exception(exc)
        self._drain()

    def _start_child(self) -> None:
        env = package_env()
        argv = [sys.executable, "-m", "engine.chunk_worker", "--vocab", self.vocab_path, "--nice", str(self.nice)]
        self._proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,  # the child logs warnings only; they belong in our stderr log
            env=env,
            cwd=os.path.abspath(os.sep),  # never the workspace: nothing is written there
            close_fds=True,
            bufsize=0,
        )
        hello = read_frame(self._proc.stdout.fileno(), time.monotonic() + START_TIMEOUT_S)  # type: ignore[union-attr]
        if hello[:1] != b"J":
            raise RuntimeError(hello[1:].decode("utf-8", errors="replace"))
        log.debug("chunk worker started (pid %d)", self._proc.pid)

    def _request(self, payload: bytes) -> tuple[list[Chunk], list[str]]:
        proc = self._proc
        if proc is None or proc.stdin is None or proc.stdout is None:
            raise RuntimeError("chunk worker not running")
        try:
            write_frame(proc.stdin.fileno(), payload)
            reply = pickle.loads(read_frame(proc.stdout.fileno(), time.monotonic() + REQUEST_TIMEOUT_S))
        except (FrameEOF, OSError, TimeoutError) as exc:
            self._fail(f"the child stopped answering ({type(exc).__name__})")
            raise RuntimeError(f"chunk worker failed: {self.failed}") from exc
        if reply[0] != "ok":
            raise RuntimeError(str(reply[1]))  # this file's chunking failed; the caller retries in-process
        chunks = [Chunk(**dict(zip(_FIELDS, fields, strict=True))) for fields in reply[1]]
        return chunks, list(reply[2])

    def _fail(self, reason: str) -> None:
        if self.failed is None:
            self.failed = reason
            log.info("chunking in one process from now on: the chunk worker %s", reason)
        self._stop_child()

    def _drain(self) -> None:
        while True:
            try:
                item = self._jobs.get_nowait()
            except queue.Empty:
                return
            if item is not None and not item[0].done():
                item[0].set_exception(RuntimeError("chunk worker closed"))

    def _stop_child(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.stdin is not None:
                proc.stdin.close()
            proc.wait(2.0)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


# ----------------------------------------------------------------------------- the child
def _serve(vocab_path: str) -> int:
    proto = os.dup(1)
    os.dup2(2, 1)  # a stray print (or native printf) must never corrupt a frame
    sys.stdout = sys.stderr
    stdin = sys.stdin.buffer.fileno()
    try:
        from .chunking import chunk_file
        from .lexical import document_terms
        from .models.worker import _Vocab

        vocab = _Vocab(vocab_path)
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which chunks in-process
        write_frame(proto, b"E" + f"{type(exc).__name__}: {exc}".encode())
        return 3
    write_frame(proto, encode_json(b"J", {"op": "hello", "pid": os.getpid()}))
    while True:
        try:
            path, text, max_tokens = pickle.loads(read_frame(stdin))
        except FrameEOF:
            return 0
        try:
            chunks = chunk_file(path, text, max_tokens=max_tokens, count_tokens=vocab.count)
            fields = [tuple(getattr(c, name) for name in _FIELDS) for c in chunks]
            terms = [document_terms(c.content, path=c.path, symbol=c.symbol) for c in chunks]
            reply: Any = ("ok", fields, terms)
        except Exception as exc:  # noqa: BLE001 - one odd file: the parent decides what it means
            reply = ("error", f"{type(exc).__name__}: {exc}")
        try:
            write_frame(proto, pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL))
        except BrokenPipeError:
            return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="engine.chunk_worker")
    parser.add_argument("--vocab", required=True, help="GGUF model whose vocabulary counts tokens")
    parser.add_argument("--nice", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="semcode-chunker %(levelname)s %(message)s")
    if args.nice:
        os.nice(args.nice)
    return _serve(args.vocab)


if __name__ == "__main__":
    sys.exit(main())
