"""Small helpers for LanceDB filters and Arrow vector columns, shared by the store and its cache."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

IN_LIST_SIZE = 500  # values per ``IN (...)`` filter: long lists make slow query plans


def sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def sql_in(column: str, values: Iterable[str]) -> str:
    return f"{column} IN ({', '.join(sql_string(v) for v in values)})"


def parts(values: Sequence[str], size: int = IN_LIST_SIZE) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def vector_array(vectors: np.ndarray, dimension: int) -> Any:
    import pyarrow as pa

    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
    return pa.FixedSizeListArray.from_arrays(flat, dimension)


def vectors_of(table: Any) -> np.ndarray:
    """The ``vector`` column of an Arrow table or batch as a float32 matrix."""
    column = table["vector"]
    if hasattr(column, "combine_chunks"):
        column = column.combine_chunks()
    size = column.type.list_size
    if len(column) == 0:
        return np.zeros((0, size), dtype=np.float32)
    return column.flatten().to_numpy(zero_copy_only=False).reshape(-1, size).astype(np.float32, copy=False)
