"""``packing_order``: llama-cpp-python's next-fit packing over it needs no more decodes than FFD has bins."""

from __future__ import annotations

import random

from engine.models.llama import packing_order


def next_fit_decodes(lengths: list[int], capacity: int) -> int:
    """How many decodes ``Llama.embed`` makes for texts of these token counts, in this order."""
    decodes, used = 0, capacity
    for n in lengths:
        if used + n > capacity:
            decodes, used = decodes + 1, 0
        used += n
    return decodes


def test_the_order_is_a_permutation_that_packs_at_least_as_tight_as_first_fit_decreasing() -> None:
    rng = random.Random(3)
    fewer = 0
    for _ in range(300):
        lengths = [min(512, int(rng.lognormvariate(4.7, 0.7)) + 8) for _ in range(rng.randint(1, 64))]
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
