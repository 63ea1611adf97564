"""The rest of a small index's rows in memory: vectors and the columns a candidate shows, beside the names.

On a small index every LanceDB read of a query costs more than the work it does: a flat vector search
of 1,136 rows took 7.7 ms p50 inside the server, a take of 20 rows by row id 9.9 ms, against a few
microseconds of numpy (BENCHMARKS.md, "Lead, session 7"): each read is a round trip to LanceDB's
event-loop thread beside the query's other threads. So while the chunk table is small enough
(``PAYLOAD_BYTES``), the name table (``engine.names.NameTable``) also carries each row's unit-length
vector, tier and the candidate columns the names do not have, and the dense list and the look-ups'
rows come from memory. The search is exact: the rows and distances of LanceDB's flat search (a table
below ``vector_index_min_rows``), and exact where its IVF index is approximate (20K rows up to the bound).
A table past the bound keeps the candidate columns and tiers alone (``ROW_COLUMNS``, ~40 bytes a row:
7 MB at 179K rows): its vector and full-text searches then read only row ids and scores from LanceDB, and
the rows come from memory (a search that also read eight columns of its 40 rows took 11.1 instead of 9.7
ms for vectors, 8.6 instead of 4.4 ms for BM25, at 179K rows; BENCHMARKS.md, "Lead, session 8"). Its
dense search and look-up vectors read LanceDB as before; so does every query while its table is rebuilt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .bm25 import LexicalIndex
from .lance_rows import vectors_of

if TYPE_CHECKING:
    import pyarrow as pa

PAYLOAD_BYTES = 64 << 20  # at most this much per table in memory (vectors + columns): ~42K rows at 384 dims
ROW_COLUMNS = ["symbol", "parent", "start_line", "end_line", "tier"]  # kept for a table of any size
PAYLOAD_COLUMNS = [*ROW_COLUMNS, "vector"]
TEXT_BYTES = 24 << 20  # the chunks' texts too while they take no more than this (the shown hits' reads)
_ROW_BYTES = 96  # the columns beside the vector, roughly (symbol and parent strings, two lines, a tier)
_TEXT_ROW_BYTES = 1200  # a chunk's text, roughly (to decide before the scan whether to read them)
_TIER_PLACEHOLDER = 0  # store.TIER_PLACEHOLDER: no vector yet (found by no vector search)


def payload_fits(rows: int, dimension: int) -> bool:
    """True when a table of ``rows`` rows carries its payload (a build reads ``PAYLOAD_COLUMNS`` too)."""
    return rows * (dimension * 4 + _ROW_BYTES) <= PAYLOAD_BYTES


def texts_fit(rows: int) -> bool:
    """True when a build also reads the texts (kept if they really take at most ``TEXT_BYTES``)."""
    return rows * _TEXT_ROW_BYTES <= TEXT_BYTES


def _unit(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0  # a zero vector stays zero: cosine 0 (placeholders are masked anyway)
    unit: np.ndarray = (matrix / norms).astype(np.float32, copy=False)
    return unit


@dataclass(frozen=True, slots=True)
class RowPayload:
    """Per row (the name table's positions, in order): candidate columns, tier and unit vector (the
    vector on a small table only: ``has_vectors``).

    Never changed once made: ``extended`` returns a new payload sharing this one's arrays, since a
    query may still read the old one. Vectors stay in the blocks they arrived in (the scan, then one
    per patch) so a save copies its own rows only.
    """

    columns: pa.Table  # symbol, parent, start_line, end_line (and content while the texts are kept)
    tiers: np.ndarray  # int8
    blocks: tuple[np.ndarray, ...] | None  # unit-length float32 vectors, rows in order across the blocks
    # BM25 postings and ``lex`` strings (engine/bm25.py) while the texts are kept too: then a query reads
    # nothing from LanceDB. None: the full-text search is LanceDB's.
    lexical: LexicalIndex | None = None

    @property
    def has_texts(self) -> bool:
        return "content" in self.columns.column_names

    @property
    def has_vectors(self) -> bool:
        return self.blocks is not None

    @staticmethod
    def of(table: pa.Table) -> RowPayload | None:
        """The payload of a scan or a patch's rows, None when they were read without its columns
        (the vectors and texts are kept when they were read)."""
        if any(name not in table.column_names for name in ROW_COLUMNS):
            return None
        names = ["symbol", "parent", "start_line", "end_line"]
        vectors = "vector" in table.column_names
        if vectors and "content" in table.column_names and table["content"].nbytes <= TEXT_BYTES:
            names.append("content")
        lexical = None
        if "content" in names and "lex" in table.column_names and table["lex"].nbytes <= TEXT_BYTES:
            lexical = LexicalIndex.of(table["lex"])
        return RowPayload(
            # One chunk per column: a take over the scan's hundreds of batches cost 1.4 ms for 40 rows
            # of a 179K-row table, 0.1 ms over one.
            columns=table.select(names).combine_chunks(),
            tiers=table["tier"].to_numpy().astype(np.int8),
            blocks=(_unit(vectors_of(table)),) if vectors else None,
            lexical=lexical,
        )

    def extended(self, rows: pa.Table) -> RowPayload | None:
        """This payload with ``rows`` appended (a patch's new rows, already in the table's order)."""
        import pyarrow as pa

        more = RowPayload.of(rows)
        if more is None or (self.has_vectors and not more.has_vectors):
            return None
        if more.has_vectors and not self.has_vectors:  # a large table's patch read a small one's columns
            more = RowPayload(more.columns.select(["symbol", "parent", "start_line", "end_line"]), more.tiers, None)
        lexical = None  # postings for the new rows too, numbered after this payload's (texts both sides)
        if self.lexical is not None and more.has_texts and "lex" in rows.column_names:
            lexical = self.lexical.extended(rows["lex"])
        columns = self.columns
        if more.has_texts != self.has_texts:  # the same columns both sides: texts only if both have them
            columns = columns.drop_columns(["content"]) if self.has_texts else columns
            more = (
                RowPayload(more.columns.drop_columns(["content"]), more.tiers, more.blocks) if more.has_texts else more
            )
        blocks = self.blocks  # both sides have vectors or neither (above)
        if blocks is not None and more.blocks is not None and rows.num_rows:
            blocks = (*blocks, *more.blocks)
        return RowPayload(
            columns=pa.concat_tables([columns, more.columns]),
            tiers=np.concatenate([self.tiers, more.tiers]),
            blocks=blocks,
            lexical=lexical if self.has_texts and more.has_texts else None,
        )

    def nearest(self, vector: np.ndarray, allowed: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
        """Positions of the ``limit`` rows nearest to ``vector`` by cosine among ``allowed`` (a mask),
        nearest first, and their cosine distances (LanceDB's ``_distance``: 1 - cosine)."""
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        norm = float(np.linalg.norm(query))
        if norm == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        query = query / norm
        assert self.blocks is not None, "a payload without vectors has no vector search"
        cosine = np.concatenate([block @ query for block in self.blocks]) if self.blocks else np.zeros(0)
        cosine = np.nan_to_num(cosine, nan=-1.0)  # a corrupt (NaN) vector ranks last, never first (check flags it)
        keep = allowed & (self.tiers > _TIER_PLACEHOLDER)
        candidates = np.flatnonzero(keep)
        if len(candidates) > limit:
            scores = cosine[candidates]
            top = np.argpartition(-scores, limit - 1)[:limit]
            candidates = candidates[top]
        order = np.argsort(-cosine[candidates], kind="stable")
        best = candidates[order]
        return best, (1.0 - cosine[best]).astype(np.float32)

    def texts(self, positions: np.ndarray) -> list[str]:
        """The texts of these rows (``has_texts`` only)."""
        import pyarrow as pa

        found: list[str] = self.columns["content"].take(pa.array(positions, type=pa.int64())).to_pylist()
        return found

    def vectors(self, positions: np.ndarray) -> np.ndarray:
        """The unit vectors of these rows (a look-up's rows are scored by the same cosine)."""
        assert self.blocks is not None, "a payload without vectors"
        starts = np.cumsum([0, *(len(block) for block in self.blocks)])
        out = np.empty((len(positions), self.blocks[0].shape[1] if self.blocks else 0), dtype=np.float32)
        for i, position in enumerate(positions.tolist()):
            b = int(np.searchsorted(starts, position, side="right")) - 1
            out[i] = self.blocks[b][position - starts[b]]
        return out

    def rows(self, positions: np.ndarray) -> list[dict[str, Any]]:
        """The candidate columns of these rows, as ``take_rows`` returns them (without id, path, kind,
        language: the name table has those; without the text)."""
        import pyarrow as pa

        columns = self.columns.drop_columns(["content"]) if self.has_texts else self.columns
        picked: list[dict[str, Any]] = columns.take(pa.array(positions, type=pa.int64())).to_pylist()
        for row, position in zip(picked, positions.tolist(), strict=True):
            row["tier"] = int(self.tiers[position])
        return picked
