"""Scoring: when a result is a hit, MRR@10, recalls, latency percentiles."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .extract import Query

TOP_K = 10
Location = tuple[str, int, int]  # (workspace-relative path, first line, last line), 0-based inclusive


@dataclass(slots=True)
class SystemResult:
    name: str
    label: str
    mrr10: float
    recall1: float
    recall5: float
    recall10: float
    file_recall10: float
    mean_ms: float
    p95_ms: float
    index_s: float | None
    ranks: list[int | None]


def is_hit(result: Location, query: Query) -> bool:
    path, start, end = result
    if path != query.path:
        return False
    overlap = min(end, query.end_line) - max(start, query.start_line) + 1
    target_span, result_span = query.end_line - query.start_line + 1, end - start + 1
    return overlap > 0 and overlap >= 0.5 * min(target_span, result_span) and result_span <= max(4 * target_span, 40)


def first_hit_rank(results: list[Location], query: Query, k: int = TOP_K) -> int | None:
    return next((i + 1 for i, r in enumerate(results[:k]) if is_hit(r, query)), None)


def score(queries: list[Query], ranked: list[list[Location]], k: int = TOP_K) -> dict[str, Any]:
    """MRR@k, Recall@1/5/k and file-level Recall@k; ``ranks`` is each query's first hit rank (None: miss)."""
    ranks = [first_hit_rank(results, q, k) for q, results in zip(queries, ranked, strict=True)]
    n = max(len(queries), 1)

    def recall(cut: int) -> float:
        return sum(1 for r in ranks if r is not None and r <= cut) / n

    file_hits = sum(any(r[0] == q.path for r in results[:k]) for q, results in zip(queries, ranked, strict=True))
    return {
        "mrr10": sum(1.0 / r for r in ranks if r) / n,
        "recall1": recall(1),
        "recall5": recall(5),
        "recall10": recall(k),
        "file_recall10": file_hits / n,
        "ranks": ranks,
    }


def _timed(queries: list[Query], search: Callable[[str], list[Location]]) -> tuple[list[list[Location]], list[float]]:
    ranked, millis = [], []
    for query in queries:
        t0 = time.perf_counter()
        ranked.append(search(query.text))
        millis.append((time.perf_counter() - t0) * 1000)
    return ranked, millis


def _result(
    name: str,
    label: str,
    queries: list[Query],
    ranked: list[list[Location]],
    millis: list[float],
    index_s: float | None,
) -> SystemResult:
    sc = score(queries, ranked)
    ordered = sorted(millis)
    p95 = ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)] if ordered else 0.0
    return SystemResult(
        name,
        label,
        sc["mrr10"],
        sc["recall1"],
        sc["recall5"],
        sc["recall10"],
        sc["file_recall10"],
        sum(millis) / max(len(millis), 1),
        p95,
        index_s,
        sc["ranks"],
    )
