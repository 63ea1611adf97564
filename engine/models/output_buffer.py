"""Give back the logits part of llama.cpp's output buffer, which an embedding context never uses.

llama.cpp reserves one host buffer per context for a decode's outputs: a row of logits (``n_vocab``
floats) and a row of embeddings per output token, and clears it when it (re)allocates it. In embedding
mode with pooling every token is an output (llama-cpp-python's ``embed`` marks them all), so the buffer
is ``n_outputs x (n_vocab + n_embd) x 4`` bytes: for MiniLM (30,522 tokens) 30 MB at load (256 outputs)
and 62 MB after the first full 512-token decode, all resident because of the clear, while an encoder's
graph writes no logits at all. That was a quarter of the query worker's RSS (BENCHMARKS.md,
"rss8 (session 8)").

``release`` hands the logits part's whole pages back to the kernel (``madvise(MADV_DONTNEED)``): a
later read of them sees zeros, which is what the clear left there, so nothing changes for llama.cpp.
It runs once per buffer: after the load and whenever a decode reallocated the buffer (its base moved).
It runs after every decode (``watch`` wraps the context's ``decode``): llama.cpp lays the buffer
out as ``logits[n][n_vocab]`` then ``embd[n][n_embd]`` with ``n`` the larger of the decode's outputs and
``n_seq_max``, so right after the decode that reallocated it the two pointers span all its logits rows
(after a later, shorter decode they span fewer). Nothing outside them is touched: the buffer's
neighbours in memory are llama.cpp's other buffers (the kernel merges adjacent anonymous mappings).
A model whose graph does write logits only faults those pages back in (and keeps them: the next
release waits for the next reallocation), so the call never costs a decode more than once. Linux only
(elsewhere ``MADV_DONTNEED`` need not zero the pages, so nothing is done).
"""

from __future__ import annotations

import ctypes
import logging
import mmap
import sys
from typing import Any

log = logging.getLogger(__name__)

_MADV_DONTNEED = 4  # Linux <sys/mman.h>
_libc: Any = None


def _madvise() -> Any:
    global _libc
    if _libc is None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        libc.madvise.restype = ctypes.c_int
        _libc = libc
    return _libc.madvise


class LogitsRelease:
    """Releases the pages of one context's logits rows when the output buffer is new (see module doc)."""

    def __init__(self, llama_cpp: Any, ctx: Any) -> None:
        self._llama_cpp = llama_cpp
        self._ctx = ctx
        self._released_base: int | None = None
        self.enabled = sys.platform.startswith("linux")
        self.released_bytes = 0  # last release (for tests and logs)

    def region(self) -> tuple[int, int] | None:
        """The logits rows ``[start, end)`` of the current output buffer, or None when there are none."""
        start = ctypes.cast(self._llama_cpp.llama_get_logits(self._ctx), ctypes.c_void_p).value
        end = ctypes.cast(self._llama_cpp.llama_get_embeddings(self._ctx), ctypes.c_void_p).value
        if not start or not end or end <= start:
            return None
        return start, end

    def watch(self, context: Any) -> None:
        """Run after every ``context.decode`` (llama-cpp-python's ``LlamaContext``, which ``embed`` calls)."""
        decode = context.decode

        def decode_then_release(batch: Any) -> None:
            decode(batch)
            self()

        context.decode = decode_then_release

    def __call__(self) -> int:
        """Release the logits pages if the buffer was (re)allocated since the last call; bytes released."""
        if not self.enabled:
            return 0
        region = self.region()
        if region is None or region[0] == self._released_base:
            return 0
        self._released_base = region[0]
        page = mmap.PAGESIZE
        lo = -(-region[0] // page) * page  # whole pages inside the rows only: never the allocator's header
        hi = region[1] // page * page
        if hi <= lo:
            return 0
        if _madvise()(lo, hi - lo, _MADV_DONTNEED) != 0:
            self.enabled = False  # an unexpected error: leave the buffer alone from now on
            log.debug("madvise on llama.cpp's logits buffer failed (errno %d)", ctypes.get_errno())
            return 0
        self.released_bytes = hi - lo
        return hi - lo
