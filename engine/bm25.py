"""A small index's full-text (BM25) search from memory, ranking as LanceDB's FTS index over ``lex``.

On a small index the dense search, the look-ups and the hits' texts come from memory
(engine/row_payload.py); BM25 was the query's last LanceDB read, and it ran on the second core beside
the query embedding (BENCHMARKS.md, "bm25mem (session 8)"). This is the same search over postings kept
beside the payload (numpy arrays, one block per scan or save), scored as LanceDB scores a table whose
rows are all in its index:

- the analyzer of ``store.fts_config``: split on whitespace, tokens of 64 bytes or more dropped
  (tantivy's ``RemoveLongFilter`` keeps shorter ones), lower case, Snowball English stemmer (tantivy's
  ``Stemmer`` is rust-stemmers' English, the algorithm ``snowballstemmer`` implements); no stop words,
  no folding. A query's tokens count as often as they occur (``format formats`` scores ``format`` twice,
  as LanceDB does).
- BM25 as lance's ``IndexBM25Scorer``: k1 = 1.2, b = 0.75, idf = ln((N - df + 0.5) / (df + 0.5) + 1),
  N the documents (rows with at least one token), avgdl their mean token count, all in float32.

N, df and avgdl count the live rows only. LanceDB's index counts a deleted row until a compaction and
scores rows appended after its build by a flat scan with statistics of its own, so right after a save
the two differ slightly; after the compaction (``ChunkStore.optimize``) they agree again, and this
search always scores as the index would if it were rebuilt now (tests/engine/test_bm25_memory.py).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pyarrow as pa

K1 = np.float32(1.2)  # lance-index scorer.rs
B = np.float32(0.75)
MAX_TOKEN_BYTES = 64  # fts_config(max_token_length=64): a token this long or longer is dropped
_ONE, _HALF = np.float32(1.0), np.float32(0.5)
_local = threading.local()  # a Snowball stemmer keeps state while it stems: one per thread


def _stem(word: str) -> str:
    # snowballstemmer hands over to PyStemmer (the C build of the same algorithm) when it is installed:
    # 0.2 instead of 32 us a word, the most of a name table's build (rxjs: 2,400 words, ~80 ms).
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        import snowballstemmer

        stemmer = _local.stemmer = snowballstemmer.stemmer("english")
    stemmed: str = stemmer.stemWord(word)
    return stemmed


@lru_cache(maxsize=1 << 17)
def index_token(raw: str) -> str | None:
    """The term the FTS analyzer makes of one whitespace-separated token, None if it drops it."""
    if not raw or len(raw.encode()) >= MAX_TOKEN_BYTES:  # RemoveLongFilter runs before LowerCaser
        return None
    return _stem(raw.lower())


def query_tokens(query: str) -> list[str]:
    """The index terms of a query string, in order, repeats kept (LanceDB scores a repeated term twice)."""
    return [term for term in map(index_token, query.split()) if term is not None]


@dataclass(frozen=True, slots=True)
class _Block:
    """Postings of consecutive table positions ``first`` .. ``first + len(lengths)``: per term, the
    positions of the rows that have it and how often (CSR: ``starts[t]:starts[t + 1]``)."""

    first: int
    terms: dict[str, int]
    starts: np.ndarray  # int64, one more than terms
    docs: np.ndarray  # int32 table positions
    freqs: np.ndarray  # uint16, or int32 if a count does not fit
    lex: pa.Array  # the rows' ``lex`` strings: the shown hits' matched terms (search.py ``_matched``)

    @staticmethod
    def of(lex: pa.Array, first: int) -> _Block:
        import pyarrow as pa
        import pyarrow.compute as pc

        rows = len(lex)
        lists = pc.split_pattern(lex, " ")
        flat = pc.list_flatten(lists)
        parents = np.asarray(pc.list_parent_indices(lists).to_numpy(zero_copy_only=False), dtype=np.int64)
        encoded = pc.dictionary_encode(flat)
        if isinstance(encoded, pa.ChunkedArray):
            encoded = encoded.combine_chunks()
        raw_ids = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
        terms: dict[str, int] = {}
        term_of = np.fromiter(
            (-1 if (t := index_token(raw)) is None else terms.setdefault(t, len(terms))
             for raw in encoded.dictionary.to_pylist()),
            dtype=np.int64,
        )  # fmt: skip
        term_ids = term_of[raw_ids] if len(raw_ids) else raw_ids
        kept = term_ids >= 0
        keys, counts = np.unique(term_ids[kept] * max(rows, 1) + parents[kept], return_counts=True)
        term_sorted = keys // max(rows, 1)
        freqs = counts.astype(np.uint16) if counts.size == 0 or counts.max() < 1 << 16 else counts.astype(np.int32)
        return _Block(
            first=first,
            terms=terms,
            starts=np.searchsorted(term_sorted, np.arange(len(terms) + 1)).astype(np.int64),
            docs=(keys % max(rows, 1) + first).astype(np.int32),
            freqs=freqs,
            lex=lex,
        )

    def postings(self, term: str) -> tuple[np.ndarray, np.ndarray] | None:
        t = self.terms.get(term)
        if t is None:
            return None
        start, end = int(self.starts[t]), int(self.starts[t + 1])
        return self.docs[start:end], self.freqs[start:end]

    @property
    def nbytes(self) -> int:
        return int(self.starts.nbytes + self.docs.nbytes + self.freqs.nbytes + self.lex.nbytes)


def _lengths(block: _Block, rows: int) -> np.ndarray:
    """Tokens per row of a block (the document lengths), from its postings."""
    lengths = np.zeros(rows, dtype=np.int64)
    np.add.at(lengths, block.docs.astype(np.int64) - block.first, block.freqs.astype(np.int64))
    return lengths.astype(np.int32)


@dataclass(frozen=True, slots=True)
class LexicalIndex:
    """The postings of every row of a name table (its positions, in order), in blocks.

    Never changed once made: ``extended`` returns a new index sharing these blocks (a query may still
    read this one). Rows a save replaced stay in their block; the caller's live mask hides them.
    """

    blocks: tuple[_Block, ...]
    lengths: np.ndarray  # int32 tokens per position

    @staticmethod
    def of(lex: pa.Array | pa.ChunkedArray) -> LexicalIndex:
        block = _Block.of(_one_array(lex), 0)
        return LexicalIndex(blocks=(block,), lengths=_lengths(block, len(block.lex)))

    def extended(self, lex: pa.Array | pa.ChunkedArray) -> LexicalIndex:
        """This index with rows appended (a save's new rows, in the table's order)."""
        if not len(lex):
            return self
        block = _Block.of(_one_array(lex), len(self.lengths))
        return LexicalIndex(
            blocks=(*self.blocks, block), lengths=np.concatenate([self.lengths, _lengths(block, len(block.lex))])
        )

    @property
    def nbytes(self) -> int:
        return sum(block.nbytes for block in self.blocks) + int(self.lengths.nbytes)

    def search(
        self, query: str, alive: np.ndarray | None, allowed: np.ndarray, limit: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Positions of the ``limit`` best rows by BM25 among ``allowed`` (a mask of live rows that
        pass the query's filters) and their scores, best first; ``alive`` (None: every row) is what
        the statistics count. Rows without a query term are never returned (LanceDB's neither)."""
        tokens = query_tokens(query)
        n = len(self.lengths)
        if not tokens or n == 0 or limit <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        # A row without a token (an empty ``lex``, or only tokens too long) is no document to LanceDB.
        lengths = self.lengths if alive is None else self.lengths[alive]
        docs_count, total = int(np.count_nonzero(lengths)), int(lengths.sum(dtype=np.int64))
        if docs_count == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        num_docs = np.float32(docs_count)
        avgdl = np.float32(total) / num_docs
        scores = np.zeros(n, dtype=np.float32)
        for token in tokens:
            found = [p for p in (block.postings(token) for block in self.blocks) if p is not None]
            if not found:
                continue
            docs = np.concatenate([d for d, _ in found]) if len(found) > 1 else found[0][0]
            freqs = np.concatenate([f for _, f in found]) if len(found) > 1 else found[0][1]
            if alive is not None:
                live = alive[docs]
                docs, freqs = docs[live], freqs[live]
            if not len(docs):
                continue
            df = np.float32(len(docs))
            idf = np.log((num_docs - df + _HALF) / (df + _HALF) + _ONE, dtype=np.float32)
            tf = freqs.astype(np.float32)
            norm = K1 * (_ONE - B + B * self.lengths[docs].astype(np.float32) / avgdl)
            scores[docs] += idf * ((K1 + _ONE) * tf / (tf + norm))
        candidates = np.flatnonzero((scores > 0) & allowed)
        if len(candidates) > limit:
            top = np.argpartition(-scores[candidates], limit - 1)[:limit]
            candidates = np.sort(candidates[top])
        order = np.argsort(-scores[candidates], kind="stable")
        best = candidates[order]
        return best, scores[best]

    def lex(self, positions: np.ndarray) -> list[str]:
        """The ``lex`` strings of these positions."""
        import pyarrow as pa

        out: list[str] = []
        starts = [block.first for block in self.blocks]
        for position in positions.tolist():
            b = int(np.searchsorted(starts, position, side="right")) - 1
            value = self.blocks[b].lex[position - starts[b]]
            out.append((value.as_py() if isinstance(value, pa.Scalar) else value) or "")
        return out


def _one_array(lex: pa.Array | pa.ChunkedArray) -> pa.Array:
    import pyarrow as pa

    if isinstance(lex, pa.ChunkedArray):
        return lex.combine_chunks() if lex.num_chunks != 1 else lex.chunk(0)
    return lex
