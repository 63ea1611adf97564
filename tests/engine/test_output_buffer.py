"""llama.cpp's logits rows of the output buffer hold no memory, and the vectors do not change (real model)."""

from __future__ import annotations

import ctypes
import mmap
import sys
from pathlib import Path

import numpy as np
import pytest

import engine.models.llama as llama_module
from engine.models.llama import LlamaEmbedder

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="madvise/mincore: Linux only")

LONG = "def handler(request, response):\n    return response.write(request.body)  # echo\n" * 60


def resident_fraction(start: int, end: int) -> float:
    """Share of the pages of [start, end) that are in memory now (mincore works for anonymous memory)."""
    page = mmap.PAGESIZE
    lo, hi = start // page * page, -(-end // page) * page
    pages = (hi - lo) // page
    vec = (ctypes.c_ubyte * pages)()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    assert libc.mincore(lo, hi - lo, vec) == 0, ctypes.get_errno()
    return sum(b & 1 for b in vec) / pages


class _NoRelease:
    def __init__(self, *args: object) -> None:
        pass

    def __call__(self) -> int:
        return 0

    def watch(self, context: object) -> None:
        pass


def _embed(emb: LlamaEmbedder) -> np.ndarray:
    texts = [emb.cap(LONG), emb.cap(LONG[::-1]), "parse a url", "def f(): pass"]
    return emb.embed_documents(texts)


def test_the_logits_rows_are_given_back_after_load_and_after_a_reallocation(
    default_model_path: Path, monkeypatch: pytest.MonkeyPatch
):
    emb = LlamaEmbedder(default_model_path, threads=1)
    try:
        release = emb._release_logits
        start, end = release.region() or (0, 0)
        assert end - start > 10 << 20  # MiniLM: 256 outputs x 30,522 logits x 4 B at load
        assert resident_fraction(start, end) < 0.05
        query = emb.embed_query("how is a url parsed")
        vectors = _embed(emb)  # a full 512-token decode: the buffer grows (a new one, cleared)
        start2, end2 = release.region() or (0, 0)
        assert start2 != start  # a new buffer, of 512 rows: it was released whole, not the last decode's rows
        assert release.released_bytes > 2 * (end - start) * 0.9  # the decode that grew it: 512 rows
        end2 = start2 + release.released_bytes
        assert resident_fraction(start2, end2) < 0.05
        again = _embed(emb)  # the same buffer: nothing to release, nothing faulted back in
        assert release() == 0 and resident_fraction(start2, end2) < 0.05
        assert np.array_equal(vectors, again)

        # Without the release (as before): the same vectors, and the cleared rows stay resident.
        monkeypatch.setattr(llama_module, "LogitsRelease", _NoRelease)
        plain = LlamaEmbedder(default_model_path, threads=1)
        try:
            assert np.array_equal(plain.embed_query("how is a url parsed"), query)
            assert np.array_equal(_embed(plain), vectors)
            ps, pe = _region_of(plain)
            assert resident_fraction(ps, pe) > 0.9
        finally:
            plain.close()
    finally:
        emb.close()


def _region_of(emb: LlamaEmbedder) -> tuple[int, int]:
    import llama_cpp

    from engine.models.output_buffer import LogitsRelease

    return LogitsRelease(llama_cpp, emb._llm._ctx.ctx).region() or (0, 0)
