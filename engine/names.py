"""An in-memory table of the chunk rows' names: the symbol and file-name look-ups without a table scan.

The search's look-ups (``engine.search.Searcher._lookup``) ask for the chunks that define a queried name
(``lower(symbol) = 'x' OR LIKE '%.x' OR LIKE '%:x'``) and the chunks of files named like it
(``lower(path) LIKE '%/x.%'`` ...). As LanceDB filters those are scans of the whole chunk table: 6-20 ms
on a 3K-chunk index, ~140 ms at 178K chunks (BENCHMARKS.md, scalequery). This table answers the same
filters from dictionaries keyed by the last segment of a symbol and the names on a path, and returns the
matching rows' LanceDB row ids in the table's scan order, so the first ``limit`` matches are the rows
the filter returned. Their columns are then read by row id (``ChunkStore.take_rows``).

One table describes one version of the chunk table. After this process's own write of a few files (a
save) the writer patches it to the new version: those files' rows are read back through the B-tree on
``path`` (milliseconds), where a rebuild scans the whole table (~0.6 s of CPU at 178K rows, on the first
query after every save, beside the next save: BENCHMARKS.md, savepath). Any other change (compaction,
the dense tier's vectors, another process's index run) rebuilds it from one scan of four columns in a
background thread, and until then the caller uses the LanceDB filters.

Differences from the SQL filters (both deliberate, both rare): ``_`` in a name or in ``__init__.py``
matches itself only (in LIKE it matches any one character), and ``lower()`` is Python's.
"""

from __future__ import annotations

import copy
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .memory import trim_malloc
from .row_payload import RowPayload

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)

NAME_COLUMNS = ["path", "symbol", "kind", "language"]  # what the table is built from (plus id, row id)
_DIR_FILES = ("mod.rs", "__init__.py")  # a directory that names a module by its own name
PATCH_WAIT_S = 0.2  # how long a query waits for the patch of a write it sees committed
PATCH_MAX_PATHS = 256  # larger writes (an index run, a branch switch) rebuild the table from a scan
PATCH_LOG = 64  # patches kept for replay on a table built while they were made


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
    """Names of every chunk row of one table version (see the module doc).

    A table is never changed once built; ``patched`` derives the table of the next version from it
    after this process's own write of a few files: their old rows are marked dead and their new rows
    appended (LanceDB writes them to new fragments, which a scan reads last), so a save costs
    milliseconds instead of a 0.6 s rebuild. Lists and dictionaries shared with the older table are
    never changed: a query may still be reading it.
    """

    def __init__(self, version: int, table: pa.Table) -> None:
        import pyarrow as pa

        self.version = version
        self.rows = table.num_rows  # live rows
        self._row_ids = table["_rowid"].to_numpy()
        self._ids = pa.chunked_array([table["id"].combine_chunks()])
        self._alive: np.ndarray | None = None  # None: every row; patched tables mark replaced rows dead
        self._max_fragment = int(self._row_ids.max() >> 32) if self.rows else -1
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
        self._path_index = path_index
        self._paths = list(path_index)
        self._path_of_row = path_of_row
        # Rows of each path, in scan order: one stable sort, then offsets per path.
        order = np.argsort(path_of_row, kind="stable").astype(np.int32)
        self._path_order = order
        self._path_starts = np.searchsorted(path_of_row[order], np.arange(len(self._paths) + 1)).astype(np.int64)
        self._path_rows: dict[int, np.ndarray] = {}  # rows of the paths written since the build (patches)
        self._by_tail: dict[str, list[int]] = {}
        for i, symbol in enumerate(table["symbol"].to_pylist()):
            if symbol:
                self._by_tail.setdefault(_tail(symbol.lower()), []).append(i)
        self._tail_extra: dict[str, list[int]] = {}  # rows added by patches, per tail
        # Path names: the part before the first dot of every dotted component (``Foo.Bar.cs`` -> ``foo``),
        # and the directory of a module file (``pkg/__init__.py``, ``x/index.js``, ``m/mod.rs`` -> the dir).
        # One dictionary per kind of name (_FILE, _FIRST_FILE, _MODULE_DIR), name -> path numbers.
        self._by_name: tuple[dict[str, list[int]], ...] = ({}, {}, {})
        for p, path in enumerate(self._paths):
            for which, name in _path_names(path):
                self._by_name[which].setdefault(name, []).append(p)
        self._name_extra: tuple[dict[str, list[int]], ...] = ({}, {}, {})  # paths added by patches
        # The candidate columns (engine/row_payload.py), and a small table's vectors: its dense search
        # and look-up rows from memory. None on a table read without them.
        self._payload = RowPayload.of(table)
        self._sorted_row_ids: tuple[np.ndarray, np.ndarray] | None = None  # for ``contents``, made on first use

    @property
    def scan_key(self) -> int:
        """The same for a table built by a scan and every copy ``patched`` made from it (they share the
        scan's structures), so per-scan work (the query path's ``_settle_heap``) is not redone per save."""
        return id(self._by_name)

    # ----------------------------------------------------------------- matching
    def defining(self, names: Iterable[str]) -> list[int]:
        """Rows (scan order) whose symbol is one of ``names`` or ends with ``.name`` / ``:name`` (lower case)."""
        found: set[int] = set()
        for name in names:
            found.update(self._by_tail.get(name, ()))
            found.update(self._tail_extra.get(name, ()))
        if self._alive is None or not found:
            return sorted(found)
        rows = np.fromiter(found, dtype=np.int64, count=len(found))
        rows.sort()
        live: list[int] = rows[self._alive[rows]].tolist()
        return live

    def in_files_named(self, names: Iterable[str], *, module_dirs: bool = False) -> list[int]:
        """Rows of files with a path component ``name.*`` (and, with ``module_dirs``, ``name/index.*``,
        ``name/mod.rs``, ``name/__init__.py``)."""
        paths: set[int] = set()
        kinds = (_FILE, _FIRST_FILE, _MODULE_DIR) if module_dirs else (_FILE, _FIRST_FILE)
        for name in names:
            if "/" in name or "." in name:
                continue  # never a single path component
            for which in kinds:
                paths.update(self._by_name[which].get(name, ()))
                paths.update(self._name_extra[which].get(name, ()))
        return self._rows_of_paths(paths)

    def _rows_of_paths(self, paths: Iterable[int]) -> list[int]:
        rows = [self._rows_of(p) for p in paths]
        return sorted(np.concatenate(rows).tolist()) if rows else []

    def _rows_of(self, path: int) -> np.ndarray:
        """The live rows of path number ``path``, in scan order."""
        patched = self._path_rows.get(path)
        if patched is not None:
            return patched
        return self._path_order[self._path_starts[path] : self._path_starts[path + 1]]

    def leading_rows(self, path: str, count: int) -> list[int]:
        """LanceDB row ids of the first ``count`` live rows of ``path`` in scan order: its first chunks,
        since a file's chunks are written together and in order (an index run, a save's upsert)."""
        p = self._path_index.get(path)
        if p is None:
            return []
        return [int(self._row_ids[row]) for row in self._rows_of(p)[:count]]

    def take(self, rows: Sequence[int], keep: RowFilter, limit: int) -> list[tuple[int, str]]:
        """The first ``limit`` of ``rows`` that pass ``keep``: (LanceDB row id, chunk id) pairs."""
        return [(int(self._row_ids[row]), self._ids[row].as_py()) for row in self._passing(rows, keep, limit)]

    @property
    def has_payload(self) -> bool:
        """Whether the rows' vectors (and the candidate columns) are in memory: a small table."""
        return self._payload is not None and self._payload.has_vectors

    @property
    def has_texts(self) -> bool:
        return self._payload is not None and self._payload.has_texts

    @property
    def has_candidate_columns(self) -> bool:
        return self._payload is not None

    def candidate_rows(self, row_ids: Sequence[int]) -> dict[int, dict[str, Any]] | None:
        """Row id -> the candidate columns of that live row (as a search selecting ``_LIGHT_COLUMNS``
        returns it, with ``_rowid``), from memory; rows this table does not hold are missing. None
        when the table was read without them."""
        if self._payload is None:
            return None
        found, positions = self._live_positions(row_ids)
        rows = self._row_dicts(positions, vectors=False)
        return dict(zip(found.tolist(), rows, strict=True))

    def take_rows(self, rows: Sequence[int], keep: RowFilter, limit: int) -> list[dict[str, Any]] | None:
        """``take``'s rows with every candidate column and the vector, from memory (as the store's
        ``take_rows`` reads them, plus ``_rowid``); None without a payload."""
        if not self.has_payload:
            return None
        positions = self._passing(rows, keep, limit)
        return self._row_dicts(np.asarray(positions, dtype=np.int64), vectors=True)

    def nearest(self, vector: np.ndarray, keep: RowFilter, limit: int) -> list[dict[str, Any]] | None:
        """The ``limit`` live rows nearest to ``vector`` (cosine) that pass ``keep``, with ``_distance``
        and ``_rowid``: an exact vector search from memory, None without a payload."""
        if self._payload is None or not self._payload.has_vectors:
            return None
        positions, distances = self._payload.nearest(vector, self._mask(keep), limit)
        found = self._row_dicts(positions, vectors=False)
        for row, distance in zip(found, distances.tolist(), strict=True):
            row["_distance"] = distance
        return found

    @property
    def has_lexical(self) -> bool:
        """True when the full-text search runs from memory (``text_search``)."""
        return self._payload is not None and self._payload.lexical is not None

    def text_search(self, query: str, keep: RowFilter, limit: int) -> list[dict[str, Any]] | None:
        """``ChunkStore.text_search(content=False)`` from memory: the ``limit`` live rows that pass
        ``keep`` with the best BM25 score for ``query`` (engine/bm25.py), with ``lex``, ``_score`` and
        ``_rowid``; None when the table keeps no postings."""
        lexical = self._payload.lexical if self._payload is not None else None
        if lexical is None:
            return None
        positions, scores = lexical.search(query, self._alive, self._mask(keep), limit)
        found = self._row_dicts(positions, vectors=False)
        for row, lex, score in zip(found, lexical.lex(positions), scores.tolist(), strict=True):
            row["lex"] = lex
            row["_score"] = score
        return found

    def contents(self, row_ids: Sequence[int]) -> dict[int, str] | None:
        """``ChunkStore.contents`` from memory: row id -> text of the live rows among ``row_ids``; None
        when the table keeps no texts."""
        if self._payload is None or not self._payload.has_texts:
            return None
        found, positions = self._live_positions(row_ids)
        return dict(zip(found.tolist(), self._payload.texts(positions), strict=True))

    def leading_texts(self, row_ids: Sequence[int]) -> list[dict[str, Any]] | None:
        """Path, start line and text of these rows (``leading_rows``' ids) from memory, None when the
        table keeps no texts or a row is not live in it."""
        if self._payload is None or not self._payload.has_texts:
            return None
        found, positions = self._live_positions(row_ids)
        if len(found) != len(row_ids):
            return None
        texts = self._payload.texts(positions)
        starts = self._payload.columns["start_line"].take(positions).to_pylist()
        return [
            {"path": self._paths[self._path_of_row[position]], "start_line": start, "content": text}
            for position, start, text in zip(positions.tolist(), starts, texts, strict=True)
        ]

    def _live_positions(self, row_ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """The live rows among ``row_ids``: their row ids and table positions, in the order asked."""
        if self._sorted_row_ids is None:
            # Live rows only: a file patched twice in one save (a shrink's two commits) has its rows'
            # ids twice, once dead.
            live = np.flatnonzero(self._alive) if self._alive is not None else np.arange(len(self._row_ids))
            order = live[np.argsort(self._row_ids[live], kind="stable")]
            self._sorted_row_ids = (self._row_ids[order], order)
        ordered, order = self._sorted_row_ids
        asked = np.asarray(row_ids, dtype=self._row_ids.dtype)
        if not len(ordered):
            return asked[:0], np.zeros(0, dtype=np.int64)
        at = np.minimum(np.searchsorted(ordered, asked), len(ordered) - 1)
        found = ordered[at] == asked
        return asked[found], order[at[found]]

    def _passing(self, rows: Sequence[int], keep: RowFilter, limit: int) -> list[int]:
        language = self._code(self._language_names, keep.language)
        kind = self._code(self._kind_names, keep.kind)
        out: list[int] = []
        for row in rows:
            if language is not None and self._languages[row] != language:
                continue
            if kind is not None and self._kinds[row] != kind:
                continue
            path = self._paths[self._path_of_row[row]]
            if path in keep.hidden or (keep.path_like is not None and not keep.path_like.fullmatch(path)):
                continue
            out.append(row)
            if len(out) >= limit:
                break
        return out

    def _mask(self, keep: RowFilter) -> np.ndarray:
        """Live rows that pass ``keep``, as a boolean mask over the table's positions."""
        mask = self._alive.copy() if self._alive is not None else np.ones(len(self._row_ids), dtype=bool)
        language = self._code(self._language_names, keep.language)
        if language is not None:
            mask &= self._languages == language
        kind = self._code(self._kind_names, keep.kind)
        if kind is not None:
            mask &= self._kinds == kind
        if keep.path_like is not None or keep.hidden:
            like = keep.path_like
            paths_ok = np.fromiter(
                (p not in keep.hidden and (like is None or like.fullmatch(p) is not None) for p in self._paths),
                dtype=bool,
                count=len(self._paths),
            )
            mask &= paths_ok[self._path_of_row]
        return mask

    def _row_dicts(self, positions: np.ndarray, *, vectors: bool) -> list[dict[str, Any]]:
        assert self._payload is not None
        found = self._payload.rows(positions)
        matrix = self._payload.vectors(positions) if vectors else None
        for i, (row, position) in enumerate(zip(found, positions.tolist(), strict=True)):
            row["id"] = self._ids[position].as_py()
            row["path"] = self._paths[self._path_of_row[position]]
            row["kind"] = self._kind_names[self._kinds[position]]
            row["language"] = self._language_names[self._languages[position]]
            row["_rowid"] = int(self._row_ids[position])
            if matrix is not None:
                row["vector"] = matrix[i]
        return found

    @staticmethod
    def _code(names: list[str], value: str | None) -> int | None:
        if value is None:
            return None
        try:
            return names.index(value)
        except ValueError:
            return -1  # no row has it: nothing passes

    # ----------------------------------------------------------------- patching
    def patched(self, version: int, paths: Iterable[str], rows: pa.Table) -> NameTable | None:
        """The table of ``version``, which differs from this one's only in the rows of ``paths``: they
        are now ``rows`` (NAME_COLUMNS + id + _rowid of exactly those paths, any order).

        None when that cannot be the case (a row of another path, or new rows not in fragments written
        after every surviving row): the caller then builds the table from a scan.
        """
        import pyarrow as pa

        wanted = set(paths)
        if rows.num_rows:
            rows = rows.take(np.argsort(rows["_rowid"].to_numpy(), kind="stable"))
        new_paths: list[str] = rows["path"].to_pylist()
        if any(path not in wanted for path in new_paths):
            return None
        n, added = len(self._row_ids), rows.num_rows
        alive = self._alive.copy() if self._alive is not None else np.ones(n, dtype=bool)
        killed = 0
        for path in wanted:
            p = self._path_index.get(path)
            if p is not None:
                old = self._rows_of(p)
                killed += len(old)
                alive[old] = False
        new_row_ids = rows["_rowid"].to_numpy().astype(self._row_ids.dtype, copy=False)
        max_fragment = self._max_fragment
        if added:
            first = int(new_row_ids[0] >> 32)
            if first <= max_fragment:  # the replaced rows may have held the last fragments: look again
                survivors = self._row_ids[alive]
                max_fragment = int(survivors.max() >> 32) if len(survivors) else -1
                if first <= max_fragment:
                    return None  # not appended after every other row: its place in a scan is unknown
            max_fragment = max(max_fragment, int(new_row_ids[-1] >> 32))
        payload = None
        if self._payload is not None:
            payload = self._payload.extended(rows)
            if payload is None:
                return None  # read without the payload's columns: a scan builds the table with them
        table = copy.copy(self)
        table._payload = payload
        table._sorted_row_ids = None
        path_index, path_list = self._path_index, self._paths
        name_extra = self._name_extra
        path_of_new = np.empty(added, dtype=np.int32)
        for i, path in enumerate(new_paths):
            p = path_index.get(path)
            if p is None:
                if path_index is self._path_index:  # copied once, on the first path the table never had
                    path_index, path_list = dict(path_index), list(path_list)
                    name_extra = tuple(dict(d) for d in name_extra)
                p = path_index[path] = len(path_list)
                path_list.append(path)
                for which, name in _path_names(path):
                    name_extra[which][name] = [*name_extra[which].get(name, ()), p]
            path_of_new[i] = p
        positions = np.arange(n, n + added, dtype=np.int32)
        path_rows = dict(self._path_rows)
        for path in wanted:
            p = path_index.get(path)
            if p is not None:
                path_rows[p] = positions[path_of_new == p]
        tails: dict[str, list[int]] = {}
        for position, symbol in zip(positions.tolist(), rows["symbol"].to_pylist(), strict=True):
            if symbol:
                tails.setdefault(_tail(symbol.lower()), []).append(position)
        tail_extra = dict(self._tail_extra)
        for key, found in tails.items():
            tail_extra[key] = [*tail_extra.get(key, ()), *found]
        kind_names, kind_codes = _codes(rows["kind"].to_pylist(), self._kind_names)
        language_names, language_codes = _codes(rows["language"].to_pylist(), self._language_names)
        ids = [*self._ids.chunks, *rows["id"].chunks]
        table.version = version
        table.rows = self.rows - killed + added
        table._row_ids = np.concatenate([self._row_ids, new_row_ids])
        # Few chunks: ``_ids[row]`` walks them. A server compacts every 64 writes, which rebuilds the table.
        table._ids = pa.chunked_array(ids if len(ids) <= 64 else [pa.concat_arrays(ids)], type=pa.string())
        table._alive = np.concatenate([alive, np.ones(added, dtype=bool)])
        table._max_fragment = max_fragment
        table._kind_names, table._language_names = kind_names, language_names
        table._kinds = np.concatenate([self._kinds, np.asarray(kind_codes, dtype=np.int32)])
        table._languages = np.concatenate([self._languages, np.asarray(language_codes, dtype=np.int32)])
        table._path_index, table._paths, table._name_extra = path_index, path_list, name_extra
        table._path_of_row = np.concatenate([self._path_of_row, path_of_new])
        table._path_rows = path_rows
        table._tail_extra = tail_extra
        return table

    def snapshot(self) -> dict[str, Any]:
        """Everything a look-up can see, by LanceDB row id and independent of the layout: a patched
        table and one built from a scan of the same version must give equal snapshots (tests)."""
        live = np.flatnonzero(self._alive) if self._alive is not None else np.arange(len(self._row_ids))
        rows = [
            (
                int(self._row_ids[r]),
                self._ids[r].as_py(),
                self._paths[self._path_of_row[r]],
                self._kind_names[self._kinds[r]],
                self._language_names[self._languages[r]],
            )
            for r in live.tolist()
        ]
        tails = {}
        for key in self._by_tail.keys() | self._tail_extra.keys():
            found = self.defining([key])
            if found:
                tails[key] = [int(self._row_ids[r]) for r in found]
        names = {}
        for which in (_FILE, _FIRST_FILE, _MODULE_DIR):
            for key in self._by_name[which].keys() | self._name_extra[which].keys():
                paths = [*self._by_name[which].get(key, ()), *self._name_extra[which].get(key, ())]
                found = self._rows_of_paths(paths)
                if found:
                    names[f"{which}:{key}"] = [int(self._row_ids[r]) for r in found]
        payload = []
        if self._payload is not None:  # a patched payload must equal a scanned one too
            vectors = self._payload.has_vectors
            extra = self._row_dicts(live.astype(np.int64), vectors=vectors)
            texts = self._payload.texts(live.astype(np.int64)) if self._payload.has_texts else [None] * len(extra)
            payload = [
                (
                    row["_rowid"],
                    row["symbol"],
                    row["parent"],
                    row["start_line"],
                    row["end_line"],
                    row["tier"],
                    tuple(np.round(row["vector"], 5).tolist()) if vectors else None,
                    text,
                )
                for row, text in zip(extra, texts, strict=True)
            ]
        lexical = []
        if self._payload is not None and self._payload.lexical is not None:  # postings follow from lex and length
            index = self._payload.lexical
            positions = live.astype(np.int64)
            lexical = list(zip(self._row_ids[positions].tolist(), index.lex(positions),
                               index.lengths[positions].tolist(), strict=True))  # fmt: skip
        return {"rows": rows, "tails": tails, "names": names, "payload": payload, "lexical": lexical}


_FILE, _FIRST_FILE, _MODULE_DIR = 0, 1, 2  # the kinds of path names (NameTable._by_name)


def _path_names(path: str) -> Iterator[tuple[int, str]]:
    """The names a path is found by: (kind, name) pairs (see NameTable.__init__)."""
    parts = path.lower().split("/")
    for position, part in enumerate(parts):
        if "." in part:
            yield (_FIRST_FILE if position == 0 else _FILE), part.split(".", 1)[0]
        if position >= 1 and position + 1 < len(parts):
            following = parts[position + 1]
            last = position + 2 == len(parts)
            if following.startswith("index.") or (last and following in _DIR_FILES):
                yield _MODULE_DIR, part


def _codes(values: list[str], known: list[str] | None = None) -> tuple[list[str], list[int]]:
    """Small integer codes of ``values``, extending the code list ``known`` (copied, never changed)."""
    names = list(known or ())
    index = {name: code for code, name in enumerate(names)}
    codes = []
    for value in values:
        code = index.get(value)
        if code is None:
            code = index[value] = len(names)
            names.append(value)
        codes.append(code)
    return names, codes


@dataclass(frozen=True, slots=True)
class _Patch:
    """One write of this process: table version ``before`` -> ``after`` changed the rows of ``paths``."""

    before: int
    after: int
    paths: frozenset[str]
    rows: pa.Table


class NameIndex:
    """The current ``NameTable`` of a chunk table: patched after this process's own small writes,
    rebuilt in a background thread after any other change (compaction, the dense tier, another process).

    ``current(version)`` never waits for a rebuild: it returns the table of that version, or None (and
    starts a rebuild if none is running) so the caller falls back to the LanceDB filters for that query.
    It waits, briefly, for a patch this process's writer is making: the save just committed.
    """

    def __init__(self, load: Callable[[], tuple[int, pa.Table]]) -> None:
        self._load = load  # -> (version, table of NAME_COLUMNS + id + _rowid in scan order)
        self._table: NameTable | None = None
        self._building = False
        self._lock = threading.Lock()
        self._patched = threading.Condition(self._lock)
        self._writing: int | None = None  # the table version a write in progress (ours) started from
        self._log: list[_Patch] = []  # the latest patches, replayed on a table built meanwhile

    def current(self, version: int) -> NameTable | None:
        table = self._table
        if table is not None and table.version == version:
            return table
        with self._lock:
            # Again under the lock: a patch may have landed since the read above (a query that read the new
            # version just before the save's patch was assigned): without this look it started a rebuild,
            # 0.9-1.4 s of CPU and ~100 MB beside the next saves, after one save in ten or so.
            table = self._table
            if table is not None and table.version == version:
                return table
            if table is not None and table.version > version:
                return None  # the caller read the version before our latest write: no rebuild for that
            if table is not None and self._writing == table.version:  # our write is patching it: milliseconds
                self._patched.wait_for(lambda: self._writing is None, timeout=PATCH_WAIT_S)
                table = self._table
                if table is not None and table.version == version:
                    return table
                if self._writing is not None:
                    return None  # slow: filter in LanceDB this once, the patch comes
            if self._building:
                return None
            self._building = True
        threading.Thread(target=self._build, name="semcode-names", daemon=True).start()
        return None

    def may_carry_payload(self) -> bool:
        """False once the table is known to keep no vectors (a large chunk table): a save's patch then
        needs the name and candidate columns only. While none is built, a build may keep them."""
        table = self._table
        return table is None or table.has_payload

    def build_now(self) -> NameTable | None:
        """Build in the caller's thread (tests, benchmarks)."""
        with self._lock:
            self._building = True
        self._build()
        return self._table

    def clear(self) -> None:
        with self._lock:
            self._table = None
            self._log = []

    @contextmanager
    def writing(self, before: int) -> Iterator[None]:
        """Around our write from table version ``before`` that ends with ``patch`` (one at a time: the
        caller holds the write lock): a query that sees its commit waits for the patch."""
        with self._lock:
            self._writing = before
        try:
            yield
        finally:
            with self._lock:
                self._writing = None
                self._patched.notify_all()

    def patch(
        self,
        before: int,
        after: int,
        paths: Sequence[str],
        rows: Callable[[], pa.Table],
        total: Callable[[], int],
    ) -> bool:
        """Our own write took the table from version ``before`` to ``after`` (every version in between
        is ours: the caller holds the write lock) and changed only the rows of ``paths``. ``rows``
        reads those paths' rows now; ``total`` counts the table's rows (a check). True: patched."""
        with self._lock:
            table = self._table
            logging_only = table is None or table.version != before
            if logging_only and not self._building:
                return False  # nothing to patch, and no build that will need this write replayed
        if len(paths) > PATCH_MAX_PATHS:
            with self._lock:
                self._log = []  # a large write: the table is built again
            return False
        entry = _Patch(before, after, frozenset(paths), rows())
        with self._lock:
            self._log = [*self._log[-(PATCH_LOG - 1) :], entry]
            table = self._table
            if table is None or table.version != before:
                return False
            patched = table.patched(after, entry.paths, entry.rows)
            if patched is None or patched.rows != total():
                log.debug("name table: the write to version %d is not a patch; built again", after)
                return False
            self._table = patched
            if self._writing == before:  # the write goes on from here (a shrink's delete): queries wait again
                self._writing = after
            return True

    def _build(self) -> None:
        started = time.perf_counter()
        try:
            version, arrow = self._load()
            table = NameTable(version, arrow)
            with self._lock:
                # Our writes since the version read: the scan saw one of the versions from there on,
                # and each patch replaces its paths' rows whatever the scan saw of them.
                for entry in self._log:
                    if entry.before == table.version:
                        table = table.patched(entry.after, entry.paths, entry.rows) or table
                if self._table is None or table.version >= self._table.version:
                    self._table = table
            log.debug("name table of %d rows (version %d) in %.0f ms", arrow.num_rows, version,
                      (time.perf_counter() - started) * 1000)  # fmt: skip
            # The scan's batches and the build's scratch (~45 MB at 178K rows, freed but kept by glibc)
            # back to the system: a server keeps what the heap held at its largest otherwise.
            del arrow
            trim_malloc()
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
