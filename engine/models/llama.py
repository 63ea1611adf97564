"""``LlamaEmbedder``: embeddings from a GGUF model through llama-cpp-python, on the CPU.

llama.cpp has sharp edges that kill the whole process (GGML_ASSERT, exit 134) instead of raising:
``n_ubatch < n_batch``, or a text longer than the model's positions. Both are made impossible here:
n_ctx = n_batch = n_ubatch, never above the model's trained context, and every text is capped (by
``Embedder.cap``) to that many tokens before it reaches llama.cpp.

Nothing may reach stdout (the language server speaks JSON-RPC there). llama.cpp's log goes through
``quiet_llama_logs`` into Python logging. The model is built with ``verbose=True`` on purpose: with
``verbose=False`` llama-cpp-python silences the load by ``dup2``-ing /dev/null over file descriptors 1
and 2, which would swallow whatever another thread writes to stdout meanwhile (an LSP response, say).
Its few verbose ``print(..., file=sys.stderr)`` calls are caught by redirecting ``sys.stderr`` instead,
and ``verbose`` is turned off once the model is loaded so embedding calls do not print timings.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import logging
import threading
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError, missing_dependency
from .backend import ensure_cpu_backend
from .base import Embedder
from .gguf_file import GGUFInfo, inspect_gguf
from .info import DEFAULT_MAX_TOKENS, context_tokens, model_info, pooling_for
from .output_buffer import LogitsRelease
from .packing import ffd_bins, next_fit_decodes, packing_enabled, packing_order

log = logging.getLogger(__name__)
_llama_log = logging.getLogger("llama_cpp.native")

# enum ggml_log_level -> logging level; 5 = "continue the previous line". (llama-cpp-python's own table
# predates the DEBUG level and reports every INFO line as a warning.)
_LEVELS = {0: logging.DEBUG, 1: logging.DEBUG, 2: logging.INFO, 3: logging.WARNING, 4: logging.ERROR}
_log_callback: Any = None  # keep the ctypes callback alive for the life of the process
_log_lock = threading.Lock()
_last_level = logging.INFO
_min_level = logging.WARNING  # raised to ERROR while quantizing (one warning per tensor otherwise)
_recent_errors: list[str] = []  # llama.cpp's own error lines, quoted in ModelError (it returns bare NULLs)


def _import_llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError as exc:
        raise missing_dependency("llama_cpp", "llama-cpp-python") from exc
    return llama_cpp


def quiet_llama_logs() -> None:
    """Route llama.cpp's native log into Python logging (warnings and errors only): never stdout."""
    global _log_callback
    with _log_lock:
        if _log_callback is not None:
            return
        llama_cpp = _import_llama_cpp()

        def _callback(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
            global _last_level
            py_level = _last_level if level == 5 else _LEVELS.get(level, logging.DEBUG)
            _last_level = py_level
            if py_level >= _min_level and _llama_log.isEnabledFor(py_level):
                message = text.decode("utf-8", errors="replace").rstrip()
                if message:
                    _llama_log.log(py_level, "%s", message)
                    if py_level >= logging.ERROR:
                        _recent_errors.append(message)
                        del _recent_errors[:-5]

        # The ctypes wrapper, applied by hand (as a decorator it would make _callback untyped).
        _log_callback = llama_cpp.llama_log_callback(_callback)
        llama_cpp.llama_log_set(_log_callback, ctypes.c_void_p(0))


@contextlib.contextmanager
def errors_only() -> Iterator[None]:
    """Drop llama.cpp's warnings for a while (the quantizer warns about every 384-column matrix)."""
    global _min_level
    previous, _min_level = _min_level, logging.ERROR
    try:
        yield
    finally:
        _min_level = previous


class LlamaEmbedder(Embedder):
    """An ``Embedder`` over ``llama_cpp.Llama`` in embedding mode. Thread-safe (one call at a time)."""

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
    ) -> None:
        path = Path(model_path).expanduser()
        meta = gguf_info or inspect_gguf(path)  # precise errors before llama.cpp sees the file
        llama_cpp = _import_llama_cpp()
        quiet_llama_logs()
        # A dispatch build has no CPU backend until one is loaded (engine/models/backend.py): the best
        # variant for this CPU, never AMX, never a library from the current directory.
        self.cpu_backend = ensure_cpu_backend(llama_cpp)

        # n_ctx = n_batch = n_ubatch: one text per decode never needs more, and n_ubatch < n_batch aborts.
        # Derived in models.info, shared with describe_model(), so both report the same ModelInfo.
        self.n_ctx = context_tokens(meta, max_tokens)
        pooling, pooling_code = pooling_for(meta)
        self.threads = threads or _default_threads()
        self._lock = threading.Lock()  # one llama.cpp context: one decode at a time
        # Tokenizing only reads the vocab (safe beside a decode), so it has its own short lock: a chunker
        # counting tokens must not wait for another thread's embedding batch. close() takes both.
        self._vocab_lock = threading.Lock()
        self._closed = False
        # Texts planned and ordered so that llama.cpp's decodes are full (engine/models/packing.py).
        self.pack = packing_enabled()
        _recent_errors.clear()
        captured = io.StringIO()
        try:
            with contextlib.redirect_stderr(captured):  # verbose=True prints metadata via print()
                self._llm = llama_cpp.Llama(
                    model_path=str(path),
                    embedding=True,
                    n_ctx=self.n_ctx,
                    n_batch=self.n_ctx,
                    n_ubatch=self.n_ctx,
                    n_threads=self.threads,
                    n_threads_batch=self.threads,
                    flash_attn=True,  # batched embedding is ~2x slower without it (measured)
                    pooling_type=pooling_code,
                    n_gpu_layers=0,
                    use_mmap=True,
                    verbose=True,  # see module docstring: verbose=False hijacks fd 1 during the load
                )
        except (ValueError, RuntimeError, OSError) as exc:
            detail = "; ".join(_recent_errors) or str(exc)
            raise ModelError(
                f"llama.cpp could not load the model {path}: {detail}. The file may be damaged or use an "
                "architecture this llama-cpp-python does not support: upgrade llama-cpp-python or pick "
                "another GGUF embedding model."
            ) from exc
        finally:
            if captured.getvalue():
                log.debug("llama-cpp-python while loading %s:\n%s", path.name, captured.getvalue().rstrip())
        self._llm.verbose = False  # no per-call timing output from now on
        # The output buffer's logits rows (30-62 MB for MiniLM) are never written by an embedding
        # graph, only cleared: their pages go back to the kernel now and after each reallocation
        # (engine/models/output_buffer.py).
        self._release_logits = LogitsRelease(llama_cpp, self._llm._ctx.ctx)
        self._release_logits()
        self._release_logits.watch(self._llm._ctx)  # after each decode: a no-op unless it reallocated
        self._vocab = self._llm._model.vocab
        self._tokenize_fn = llama_cpp.llama_tokenize
        self._add_bos = True  # what Llama.embed() uses; the vocab decides which specials it adds
        dimension = int(self._llm.n_embd())
        self.batch_size = batch_size
        self.info = model_info(
            meta, path, query_prefix=query_prefix, document_prefix=document_prefix, max_tokens=max_tokens
        )
        if dimension != self.info.dimension:  # the header lied: trust the vectors llama.cpp really makes
            log.warning(
                "%s declares embedding_length %d but llama.cpp produces %d-dimensional vectors",
                path.name, self.info.dimension, dimension,
            )  # fmt: skip
            self.info = replace(self.info, dimension=dimension)
        log.info(
            "loaded %s (%s, dim %d, n_ctx %d, pooling %s, %d threads)",
            path.name, meta.architecture, dimension, self.n_ctx, pooling, self.threads,
        )  # fmt: skip

    # -- tokens ---------------------------------------------------------------------------------------

    @property
    def pack_capacity(self) -> int | None:
        return self.n_ctx if self.pack else None  # Llama.embed fills decodes of n_batch = n_ctx tokens

    def vocabulary_path(self) -> str | None:
        return self.info.path  # llama_tokenize on a vocab-only load of the same file, same flags

    def count_tokens(self, text: str) -> int:
        """Tokens ``Llama.embed`` would feed for ``text``, special tokens included (no list is built)."""
        data = text.encode("utf-8", errors="replace")
        with self._vocab_lock:  # the vocab is freed by close(): tokenizing after that crashes the process
            self._check_open()
            n = self._tokenize_fn(self._vocab, data, len(data), None, 0, self._add_bos, False)
        return abs(int(n))  # llama_tokenize returns -(needed) when the buffer is too small

    def tokenize(self, text: str) -> list[int]:
        """The model's token ids for ``text`` (special tokens included)."""
        with self._vocab_lock:
            self._check_open()
            return list(self._llm.tokenize(text.encode("utf-8", errors="replace"), add_bos=self._add_bos))

    def _check_open(self) -> None:
        if self._closed:
            raise ModelError(f"the embedding model {self.info.path} was closed")

    # -- embedding ------------------------------------------------------------------------------------

    def _embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.info.dimension), dtype=np.float32)
        order = self._order(texts) if self.pack else None
        with self._lock:
            self._check_open()
            # One embed(list) call: llama-cpp-python packs several texts into each n_batch decode, which
            # was faster than one call per text (3,564 vs 3,119 tokens/s on a quiet 2-core machine,
            # 1,634 vs 732 under load; see bench/bench_embed.py). truncate=False: a text over the limit
            # must raise, never be cut silently (cap() already guarantees it fits).
            vectors = self._llm.embed([texts[i] for i in order] if order else list(texts), truncate=False)
        out = np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.info.dimension)
        if order:
            unpacked = np.empty_like(out)
            unpacked[order] = out
            return unpacked
        return out

    def set_threads(self, threads: int) -> None:
        """The llama.cpp threads of the next decodes (``threads`` stays what the embedder was made with):
        the query worker uses every core for a query nothing else runs beside (worker_main)."""
        with self._lock:
            self._check_open()
            self._llm._ctx.set_n_threads(threads, threads)

    def _order(self, texts: Sequence[str]) -> list[int] | None:
        """The call's texts in FFD order, or None to keep the caller's order when it packs as tightly
        (a call planned by ``embed_packed`` arrives as whole bins: reordering it could only undo that)."""
        lengths = [self.count_tokens(t) for t in texts]
        if next_fit_decodes(lengths, self.n_ctx) <= len(ffd_bins(lengths, self.n_ctx)):
            return None
        return packing_order(lengths, self.n_ctx)

    def close(self) -> None:
        with self._lock, self._vocab_lock:
            if not self._closed:
                self._closed = True
                self._llm.close()


def _default_threads() -> int:
    from ..config import EngineConfig

    return EngineConfig().effective_threads()
