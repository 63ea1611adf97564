"""Packing texts into decodes (engine/models/packing.py) and ``Embedder.embed_packed`` around it.

The plan is pure logic over token counts; a fake embedder that records its calls and simulates
llama-cpp-python's next-fit decodes stands in for the model (the real model's vectors under packing
are checked in tests/engine/test_phase1_speed.py).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np
import pytest

from engine.models.base import Embedder, ModelInfo
from engine.models.llama import packing_order
from engine.models.packing import ffd_bins, next_fit_decodes, packed_calls


def code_like_lengths(rng: random.Random, n: int) -> list[int]:
    return [min(512, int(rng.lognormvariate(4.7, 0.7)) + 8) for _ in range(n)]


def test_the_order_is_a_permutation_that_packs_at_least_as_tight_as_first_fit_decreasing() -> None:
    rng = random.Random(3)
    fewer = 0
    for _ in range(300):
        lengths = code_like_lengths(rng, rng.randint(1, 64))
        order = packing_order(lengths, 512)
        assert sorted(order) == list(range(len(lengths)))
        packed = next_fit_decodes([lengths[i] for i in order], 512)
        lower_bound = -(-sum(lengths) // 512)
        assert lower_bound <= packed <= next_fit_decodes(sorted(lengths, reverse=True), 512)
        fewer += packed < next_fit_decodes(lengths, 512)
    assert fewer > 150  # on code-like lengths it usually saves decodes


def test_the_order_is_deterministic_and_keeps_ties_in_place() -> None:
    assert packing_order([10, 10, 10], 512) == [0, 1, 2]
    assert packing_order([100, 500, 300, 200], 512) == packing_order([100, 500, 300, 200], 512) == [1, 2, 3, 0]


def test_next_fit_counts_decodes_as_llama_cpp_python_does() -> None:
    assert next_fit_decodes([], 512) == 0
    assert next_fit_decodes([512], 512) == 1
    assert next_fit_decodes([300, 300, 200], 512) == 2  # 300 | 300+200
    assert next_fit_decodes([200, 300, 300], 512) == 2  # 200+300 | 300
    assert next_fit_decodes([100] * 6, 512) == 2


def test_bins_never_overflow_and_hold_every_text_once() -> None:
    rng = random.Random(5)
    for _ in range(100):
        lengths = code_like_lengths(rng, rng.randint(1, 300))
        bins = ffd_bins(lengths, 512)
        assert sorted(i for b in bins for i in b) == list(range(len(lengths)))
        assert all(sum(lengths[i] for i in b) <= 512 for b in bins)


def test_calls_are_whole_bins_of_about_the_asked_size_and_pack_as_their_bins() -> None:
    rng = random.Random(7)
    for _ in range(100):
        lengths = code_like_lengths(rng, rng.randint(1, 300))
        calls = packed_calls(lengths, 512, 32)
        assert sorted(i for c in calls for i in c) == list(range(len(lengths)))
        assert all(len(c) >= 32 for c in calls[:-1])
        # Next fit over each call, in the call's order, needs no more decodes than one FFD plan overall.
        decodes = sum(next_fit_decodes([lengths[i] for i in c], 512) for c in calls)
        assert decodes == len(ffd_bins(lengths, 512))


def test_one_plan_per_write_batch_needs_fewer_decodes_than_one_per_call() -> None:
    """The reason for planning over the write batch: per call of 32, each call ends on a part-empty decode."""
    rng = random.Random(11)
    lengths = code_like_lengths(rng, 256)
    per_call = sum(
        next_fit_decodes([lengths[i : i + 32][j] for j in packing_order(lengths[i : i + 32], 512)], 512)
        for i in range(0, 256, 32)
    )
    whole = sum(next_fit_decodes([lengths[i] for i in c], 512) for c in packed_calls(lengths, 512, 32))
    assert whole < per_call
    assert whole - -(-sum(lengths) // 512) <= 2  # within two decodes of the lower bound


class DecodeCounter(Embedder):
    """A fake whose vector is a function of its text alone; counts next-fit decodes per call."""

    def __init__(self, capacity: int | None) -> None:
        self.info = ModelInfo("fake", "<fake>", 8, 512, "mean", "fake-8")
        self.capacity = capacity
        self.calls: list[list[str]] = []
        self.decodes = 0

    @property
    def pack_capacity(self) -> int | None:
        return self.capacity

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def _embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        self.decodes += next_fit_decodes([self.count_tokens(t) for t in texts], self.info.context_length)
        out = np.zeros((len(texts), 8), dtype=np.float32)
        for row, text in enumerate(texts):
            out[row, len(text.split()) % 8] = 1.0
            out[row, hash(text) % 8] += 0.5
        return out


def texts_of(lengths: list[int]) -> list[str]:
    return [" ".join(f"w{i}" for _ in range(n)) for i, n in enumerate(lengths)]


@pytest.mark.parametrize("capacity", [512, None])
def test_embed_packed_gives_every_text_its_own_vector(capacity: int | None) -> None:
    texts = texts_of(code_like_lengths(random.Random(2), 200))
    packed = DecodeCounter(capacity)
    seen: list[int] = []
    matrix = np.zeros((len(texts), 8), dtype=np.float32)
    for positions, vectors in packed.embed_packed(texts, batch_size=32):
        seen.extend(positions)
        matrix[list(positions)] = vectors
    assert sorted(seen) == list(range(len(texts)))
    one_by_one = DecodeCounter(None)
    expected = np.concatenate([one_by_one.embed_documents([t]) for t in texts])
    assert np.array_equal(matrix, expected)
    assert np.array_equal(DecodeCounter(capacity).embed_documents(texts), expected)


def test_embed_packed_saves_decodes_over_input_order_and_cuts_long_texts() -> None:
    lengths = code_like_lengths(random.Random(4), 256)
    lengths[10] = 2000  # over the context: capped to 512 tokens before packing, as llama.cpp needs
    planned, plain = DecodeCounter(512), DecodeCounter(None)
    list(planned.embed_packed(texts_of(lengths), batch_size=32))
    list(plain.embed_packed(texts_of(lengths), batch_size=32))
    assert max(len(t.split()) for call in planned.calls for t in call) == 512
    assert planned.decodes < plain.decodes
    assert [len(c) for c in plain.calls] == [32] * 8  # no plan: embed_batch's calls, in input order
