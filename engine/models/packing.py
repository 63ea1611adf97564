"""Packing texts into the model's decodes: which texts share one llama.cpp batch.

``Llama.embed(list)`` walks its texts in the order given and starts a new decode of ``n_batch`` tokens
whenever the next text does not fit (next fit). A decode costs about the same whether it is full or
not, so the order decides how many decodes a set of texts needs. First-fit-decreasing (FFD) bins are
near the lower bound on code-like lengths (999 stdlib functions: 239 decodes vs a bound of 236, against
295 in the texts' own order), and the wider the set the FFD plan covers, the fewer half-empty decodes:
one plan over a whole write batch of 256 texts, cut into calls of whole bins, leaves at most one partly
filled decode per write batch instead of one per call of 32.

Pure logic (token counts in, positions out), so it is tested without a model; ``SEMCODE_PACK=0`` turns
packing off for benchmarks.
"""

from __future__ import annotations

import os
from collections.abc import Sequence


def packing_enabled() -> bool:
    return os.environ.get("SEMCODE_PACK", "1") != "0"


def ffd_bins(lengths: Sequence[int], capacity: int, ties: Sequence[str] | None = None) -> list[list[int]]:
    """First-fit-decreasing bins of ``capacity`` tokens: lists of positions into ``lengths``.

    Deterministic: equal lengths are taken in the order of ``ties`` (the texts themselves), then by
    position, so the same texts share the same decodes whatever order they come in (a vector depends
    slightly on its decode's neighbours; a background index must equal a blocking one). A text longer
    than the capacity gets a bin of its own (the caller's length cap keeps that from llama.cpp).
    """
    bins: list[list[int]] = []
    room: list[int] = []
    tie = ties if ties is not None else [""] * len(lengths)
    for i in sorted(range(len(lengths)), key=lambda i: (-lengths[i], tie[i], i)):
        size = lengths[i]
        for b, left in enumerate(room):
            if size <= left:
                bins[b].append(i)
                room[b] -= size
                break
        else:
            bins.append([i])
            room.append(capacity - size)
    return bins


def packing_order(lengths: Sequence[int], capacity: int) -> list[int]:
    """An order of texts in which next-fit packing needs at most as many decodes as FFD has bins.

    A decode that starts inside a bin takes the rest of that bin, which fits, so next fit over the
    bins laid end to end never needs more decodes than there are bins.
    """
    return [i for b in ffd_bins(lengths, capacity) for i in b]


def next_fit_decodes(lengths: Sequence[int], capacity: int) -> int:
    """How many decodes ``Llama.embed`` makes for texts of these token counts, in this order."""
    decodes, used = 0, capacity
    for n in lengths:
        if used + n > capacity:
            decodes, used = decodes + 1, 0
        used += n
    return decodes


def packed_calls(
    lengths: Sequence[int], capacity: int, texts_per_call: int, ties: Sequence[str] | None = None
) -> list[list[int]]:
    """One FFD plan over all the texts, cut into calls of whole bins of about ``texts_per_call`` texts.

    Every position appears exactly once. A call ends after the bin that brings it to
    ``texts_per_call`` texts (so a call may hold a few more), which keeps each call's decodes full;
    each call's positions are in bin order, so next fit over that call needs no more decodes than
    its bins.
    """
    calls: list[list[int]] = []
    call: list[int] = []
    for b in ffd_bins(lengths, capacity, ties):
        call.extend(b)
        if len(call) >= texts_per_call:
            calls.append(call)
            call = []
    if call:
        calls.append(call)
    return calls
