"""An in-memory table of the chunk rows' names: the symbol and file-name look-ups without a table scan.

The search's look-ups (``engine.search.Searcher._lookup``) ask for the chunks that define a queried name
(``lower(symbol) = 'x' OR LIKE '%.x' OR LIKE '%:x'``) and the chunks of files named like it
(``lower(path) LIKE '%/x.%'`` ...). As LanceDB filters those are scans of the whole chunk table: 6-20 ms
on a 3K-chunk index, ~140 ms at 178K chunks (BENCHMARKS.md, scalequery). This table answers the same
filters from dictionaries keyed by the last segment of a symbol and the names on a path, and returns the
matching rows' LanceDB row ids in the table's scan order, so the first ``limit`` matches are the rows
the filter returned. Their columns are then read by row id (``ChunkStore.take_rows``).

One table describes one version of the chunk table; it is rebuilt (one scan of four columns, in a
background thread) when the version changes, and until then the caller uses the LanceDB filters.

Differences from the SQL filters (both deliberate, both rare): ``_`` in a name or in ``__init__.py``
matches itself only (in LIKE it matches any one character), and ``lower()`` is Python's.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)

NAME_COLUMNS = ["path", "symbol", "kind", "language"]  # what the table is built from (plus id, row id)
_DIR_FILES = ("mod.rs", "__init__.py")  # a directory that names a module by its own name


def _tail(symbol: str) -> str:
    """The last segment of a qualified symbol (``Session.request`` -> ``request``, ``Picker:find`` -> ``find``)."""
    return symbol[max(symbol.rfind("."), symbol.rfind(":")) + 1 :]


@dataclass(frozen=True, slots=True)
class RowFilter:
    """What a look-up row must also satisfy: the query's filters and the unsaved buffers' hidden files.

    ``path_like`` is the store's SQL prefilter (a superset of the glob) as a regex: the limit counts the
    rows that pass it, and the caller's exact glob test comes after, as with the LanceDB filter.
    """

    language: str | None = None
    kind: str | None = None
    path_like: re.Pattern[str] | None = None
    hidden: frozenset[str] = frozenset()

    @staticmethod
    def like(pattern: str) -> re.Pattern[str]:
        """A SQL LIKE pattern (``%``, ``_``) as a regex that matches what LIKE matches."""
        parts = [".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern]
        return re.compile("".join(parts), re.DOTALL)


class NameTable:
    """Names of every chunk row of one table version (see the module doc)."""

    def __init__(self, version: int, table: pa.Table) -> None:
        self.version = version
        self.rows = table.num_rows
        self._row_ids = table["_rowid"].to_numpy()
        self._ids = table["id"].combine_chunks()
        paths: list[str] = table["path"].to_pylist()
        kinds: list[str] = table["kind"].to_pylist()
        languages: list[str] = table["language"].to_pylist()
        self._kind_names, kind_codes = _codes(kinds)
        self._language_names, language_codes = _codes(languages)
        self._kinds = np.asarray(kind_codes, dtype=np.int32)
        self._languages = np.asarray(language_codes, dtype=np.int32)
        path_index: dict[str, int] = {}
        path_of_row = np.empty(len(paths), dtype=np.int32)
        for i, path in enumerate(paths):
            path_of_row[i] = path_index.setdefault(path, len(path_index))
        self._paths = list(path_index)
        self._path_of_row = path_of_row
        # Rows of each path, in scan order: one stable sort, then offsets per path.
        order = np.argsort(path_of_row, kind="stable").astype(np.int32)
        self._path_order = order
        self._path_starts = np.searchsorted(path_of_row[order], np.arange(len(self._paths) + 1)).astype(np.int64)
        self._by_tail: dict[str, list[int]] = {}
        for i, symbol in enumerate(table["symbol"].to_pylist()):
            if symbol:
                self._by_tail.setdefault(_tail(symbol.lower()), []).append(i)
        # Path names: the part before the first dot of every dotted component (``Foo.Bar.cs`` -> ``foo``),
        # and the directory of a module file (``pkg/__init__.py``, ``x/index.js``, ``m/mod.rs`` -> the dir).
        self._by_file: dict[str, list[int]] = {}
        self._by_first_file: dict[str, list[int]] = {}
        self._by_module_dir: dict[str, list[int]] = {}
        for p, path in enumerate(self._paths):
            parts = path.lower().split("/")
            for position, part in enumerate(parts):
                if "." in part:
                    target = self._by_first_file if position == 0 else self._by_file
                    target.setdefault(part.split(".", 1)[0], []).append(p)
                if position >= 1 and position + 1 < len(parts):
                    following = parts[position + 1]
                    last = position + 2 == len(parts)
                    if following.startswith("index.") or (last and following in _DIR_FILES):
                        self._by_module_dir.setdefault(part, []).append(p)

    # ----------------------------------------------------------------- matching
    def defining(self, names: Iterable[str]) -> list[int]:
        """Rows (scan order) whose symbol is one of ``names`` or ends with ``.name`` / ``:name`` (lower case)."""
        found: set[int] = set()
        for name in names:
            found.update(self._by_tail.get(name, ()))
        return sorted(found)

    def in_files_named(self, names: Iterable[str], *, module_dirs: bool = False) -> list[int]:
        """Rows of files with a path component ``name.*`` (and, with ``module_dirs``, ``name/index.*``,
        ``name/mod.rs``, ``name/__init__.py``)."""
        paths: set[int] = set()
        for name in names:
            if "/" in name or "." in name:
                continue  # never a single path component
            paths.update(self._by_file.get(name, ()))
            paths.update(self._by_first_file.get(name, ()))
            if module_dirs:
                paths.update(self._by_module_dir.get(name, ()))
        if not paths:
            return []
        rows = [self._path_order[self._path_starts[p] : self._path_starts[p + 1]] for p in paths]
        return sorted(np.concatenate(rows).tolist())

    def take(self, rows: Sequence[int], keep: RowFilter, limit: int) -> list[tuple[int, str]]:
        """The first ``limit`` of ``rows`` that pass ``keep``: (LanceDB row id, chunk id) pairs."""
        language = self._code(self._language_names, keep.language)
        kind = self._code(self._kind_names, keep.kind)
        out: list[tuple[int, str]] = []
        for row in rows:
            if language is not None and self._languages[row] != language:
                continue
            if kind is not None and self._kinds[row] != kind:
                continue
            path = self._paths[self._path_of_row[row]]
            if path in keep.hidden or (keep.path_like is not None and not keep.path_like.fullmatch(path)):
                continue
            out.append((int(self._row_ids[row]), self._ids[row].as_py()))
            if len(out) >= limit:
                break
        return out

    @staticmethod
    def _code(names: list[str], value: str | None) -> int | None:
        if value is None:
            return None
        try:
            return names.index(value)
        except ValueError:
            return -1  # no row has it: nothing passes


def _codes(values: list[str]) -> tuple[list[str], list[int]]:
    index: dict[str, int] = {}
    codes = [index.setdefault(v, len(index)) for v in values]
    return list(index), codes


class NameIndex:
    """The current ``NameTable`` of a chunk table, rebuilt in a background thread when the table changes.

    ``current(version)`` never waits: it returns the table of that version, or None (and starts a
    rebuild if none is running) so the caller falls back to the LanceDB filters for that query.
    """

    def __init__(self, load: Callable[[], tuple[int, pa.Table]]) -> None:
        self._load = load  # -> (version, table of NAME_COLUMNS + id + _rowid in scan order)
        self._table: NameTable | None = None
        self._building = False
        self._lock = threading.Lock()

    def current(self, version: int) -> NameTable | None:
        table = self._table
        if table is not None and table.version == version:
            return table
        with self._lock:
            if self._building:
                return None
            self._building = True
        threading.Thread(target=self._build, name="semcode-names", daemon=True).start()
        return None

    def build_now(self) -> NameTable | None:
        """Build in the caller's thread (tests, benchmarks)."""
        with self._lock:
            self._building = True
        self._build()
        return self._table

    def clear(self) -> None:
        self._table = None

    def _build(self) -> None:
        started = time.perf_counter()
        try:
            version, arrow = self._load()
            self._table = NameTable(version, arrow)
            log.debug("name table of %d rows (version %d) in %.0f ms", arrow.num_rows, version,
                      (time.perf_counter() - started) * 1000)  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - the LanceDB filters answer meanwhile
            log.debug("name table build failed: %s", exc)
        finally:
            with self._lock:
                self._building = False


def lookup_rows(rows: list[dict[str, Any]], wanted: Sequence[tuple[int, str]]) -> list[dict[str, Any]] | None:
    """``rows`` (read by row id) in the order of ``wanted``; None if any is missing or another row.

    A row id names a row of one table version: a compaction in between moves rows, and then the
    caller uses the LanceDB filters instead.
    """
    by_id = {row["id"]: row for row in rows}
    ordered = [by_id.get(chunk_id) for _, chunk_id in wanted]
    if any(row is None for row in ordered):
        return None
    return [row for row in ordered if row is not None]
