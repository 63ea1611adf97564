"""The BM25 baseline eval compares semcode with: Okapi BM25 over 30-line windows, its own tokenizer."""

from __future__ import annotations

import math
import re
from collections import Counter

from .metrics import TOP_K, Location

BM25_K1, BM25_B, BM25_WINDOW, BM25_STRIDE = 1.2, 0.75, 30, 15
_WORD = re.compile(r"[A-Za-z0-9]+")
_CAMEL_PART = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def tokenize(text: str) -> list[str]:
    """snake_case and camelCase split, lower-cased, 1-character tokens dropped."""
    return [p.lower() for w in _WORD.findall(text) for p in _CAMEL_PART.findall(w) if len(p) >= 2]


class BM25Windows:
    """Okapi BM25 over sliding windows of every file; idf = ln(1 + (N - df + 0.5) / (df + 0.5)).

    Each distinct query term counts once; ties go to the earlier (path, line)."""

    def __init__(
        self,
        files: dict[str, str],
        *,
        window: int = BM25_WINDOW,
        stride: int = BM25_STRIDE,
        k1: float = BM25_K1,
        b: float = BM25_B,
    ) -> None:
        self.k1 = k1
        self.chunks: list[Location] = []
        self.postings: dict[str, list[tuple[int, int]]] = {}
        lengths: list[int] = []
        for path in sorted(files):
            lines = files[path].split("\n")
            if lines and lines[-1] == "":
                lines.pop()
            start = 0
            while start < len(lines):
                end = min(start + window, len(lines))
                tokens = tokenize("\n".join(lines[start:end]))
                if tokens:
                    self._add((path, start, end - 1), tokens, lengths)
                if end >= len(lines):
                    break
                start += stride
        avg = sum(lengths) / len(lengths) if lengths else 1.0
        self.norm = [k1 * (1.0 - b + b * n / avg) for n in lengths]
        total = len(self.chunks)
        self.idf = {t: math.log(1.0 + (total - len(p) + 0.5) / (len(p) + 0.5)) for t, p in self.postings.items()}

    def _add(self, location: Location, tokens: list[str], lengths: list[int]) -> None:
        chunk_id = len(self.chunks)
        self.chunks.append(location)
        lengths.append(len(tokens))
        for term, count in Counter(tokens).items():
            self.postings.setdefault(term, []).append((chunk_id, count))

    def search(self, query: str, limit: int = TOP_K) -> list[Location]:
        scores: dict[int, float] = {}
        for term in sorted(set(tokenize(query))):
            idf = self.idf.get(term, 0.0)
            for chunk_id, tf in self.postings.get(term, ()):
                scores[chunk_id] = scores.get(chunk_id, 0.0) + idf * tf * (self.k1 + 1) / (tf + self.norm[chunk_id])
        best = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
        return [self.chunks[chunk_id] for chunk_id, _ in best]
