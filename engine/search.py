"""Search: a query embedding against the chunk vectors, fused with BM25 over code-aware terms.

Fusion is weighted reciprocal rank fusion. Each side's weight depends on the query: a code-shaped
query (``parseArgs``, ``foo_bar``) leans lexical, a sentence leans semantic. Overlapping hits in one
file are collapsed into the best one, so a symbol is not listed twice.
"""

from __future__ import annotations

import fnmatch
import gc
import logging
import re
import threading
import weakref
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import numpy as np

from . import ranking as _ranking
from .bm25 import index_token
from .chunking.languages import CONTAINER_KINDS
from .errors import ConfigError
from .lexical import document_terms, looks_like_identifier, query_terms
from .models.base import Embedder
from .names import NameTable, RowFilter, lookup_rows
from .ranking import (
    QueryInfo,
    RankingOptions,
    Reranker,
    analyse_query,
    file_lookup_words,
    file_word_lookup_where,
    forwarder_suspects,
    imported_paths,
    overload_suspects,
    symbol_lookup_names,
    symbol_lookup_where,
    twin_files,
)
from .records import Candidate, SearchHit
from .store import ChunkStore, sql_in, sql_string

if TYPE_CHECKING:
    from .buffers import BufferView, UnsavedBuffers

log = logging.getLogger(__name__)

PREVIEW_LINES = 12
LIKELY_HITS = 4  # x limit: the best fused candidates whose texts are read with the re-ranking's (large index)
TEXT_CACHE_CHUNKS = 4096  # chunk texts kept between queries (a few MB)
IMPORT_LINES = 60  # a JS/TS file's imports are in its first chunks (ranking's twin rule reads them)
IMPORT_CHUNKS = 8  # chunks read per file for them, at most
PREVIEW_CHARS = 600
MAX_LIMIT = 200
SIMILAR_RELATIVE_FLOOR = 0.5  # similar code scores at least half the best match (a cross-language twin: 0.55)
REFERENCES_MIN_SCORE = 0.3  # cosine below which a "reference" would be noise


@dataclass(frozen=True, slots=True)
class SearchFilters:
    path: str | None = None  # glob, e.g. "src/**/*.py" or "*.ts"
    language: str | None = None
    kind: str | None = None
    min_score: float | None = None  # on the semantic (cosine) score

    def where(self) -> str | None:
        clauses = []
        if self.path:
            clauses.append(f"path LIKE {sql_string(_glob_to_like(self.path))}")
        if self.language:
            clauses.append(f"language = {sql_string(self.language)}")
        if self.kind:
            clauses.append(f"kind = {sql_string(self.kind)}")
        return " AND ".join(clauses) or None

    def accepts(self, row: dict[str, Any]) -> bool:
        """``where()`` and ``accepts_path`` for a row that is not in the store (an unsaved buffer's chunk)."""
        if self.language and row["language"] != self.language:
            return False
        if self.kind and row["kind"] != self.kind:
            return False
        return self.accepts_path(row["path"])

    def accepts_path(self, path: str) -> bool:
        if not self.path:
            return True
        pattern = _normalise_glob(self.path)
        # fnmatch's "*" crosses "/", so "**/x" also needs a try without the leading directory part.
        return fnmatch.fnmatchcase(path, pattern) or fnmatch.fnmatchcase(path, pattern.removeprefix("**/"))


@dataclass(frozen=True, slots=True)
class FusionWeights:
    """Weights of each ranked list in reciprocal rank fusion; k dampens the top ranks' advantage."""

    dense: float = 1.0
    lexical: float = 0.5
    k: float = 20.0


# Measured on four corpora (bench/quality_sweep.py, BENCHMARKS.md): with stemmed BM25, equal weights
# and k=20 were best on average; lexical weights 0.5-1.0 and k 10-60 were all within 0.01 MRR.
SENTENCE_WEIGHTS = FusionWeights(dense=1.0, lexical=1.0, k=20.0)
IDENTIFIER_WEIGHTS = FusionWeights(dense=0.5, lexical=1.0, k=20.0)


def _normalise_glob(glob: str) -> str:
    """``src/`` means everything below src; a pattern without a slash matches a file name anywhere."""
    glob = glob.strip().lstrip("./") if glob.startswith("./") else glob.strip()
    if glob.endswith("/"):
        glob += "**"
    return glob if "/" in glob else "**/" + glob


def _glob_to_like(glob: str) -> str:
    """A SQL LIKE that is a superset of the glob (prefilter); ``accepts_path`` then decides exactly."""
    like = re.sub(r"\*+", "%", _normalise_glob(glob)).replace("?", "_")
    return like.replace("%/", "%")


class LookupRow(NamedTuple):
    """A symbol/file-name look-up row: the candidate, and its stored vector to score it by cosine."""

    candidate: Candidate
    vector: Any  # the row's vector column (a list or array), or None for a buffer's chunk
    tier: int


class ChunkReader(Protocol):
    """The read API ``Searcher`` uses: a ``ChunkStore``, or an ``OverlayStore`` over a shared snapshot."""

    def vector_search(self, vector: np.ndarray, *, limit: int, where: str | None = None) -> list[dict[str, Any]]: ...

    def text_search(self, terms: str, *, limit: int, where: str | None = None) -> list[dict[str, Any]]: ...

    def rows(
        self, where: str, *, columns: Sequence[str] | None = None, limit: int = 10_000
    ) -> list[dict[str, Any]]: ...

    def count_chunks(self) -> int: ...


LOOKUP_DEFINITIONS = 100  # chunks named like a queried identifier
LOOKUP_FILE_CHUNKS = 40  # chunks of files named like it (any of them can stand for the file)
LOOKUP_WORD_FILE_CHUNKS = 120  # chunks of files named like a word of a sentence
# Look-up rows carry their vectors so they are scored by the same cosine as the dense pool.
_LOOKUP_COLUMNS = ["id", "path", "language", "symbol", "kind", "parent", "start_line", "end_line", "content"]
_TIER_MODEL = 2  # store.TIER_MODEL: the vector is the model's embedding (not a placeholder or static one)


def _add_accepted(
    rows: list[dict[str, Any]], seen: set[str], found: Iterable[dict[str, Any]], filters: SearchFilters
) -> None:
    """Append the look-up rows the filters' path glob accepts, each chunk once."""
    for row in found:
        if row["id"] not in seen and filters.accepts_path(row["path"]):
            seen.add(row["id"])
            rows.append(row)


class Searcher:
    def __init__(
        self,
        store: ChunkReader,
        embedder: Embedder,
        *,
        hybrid: bool = True,
        ranking: RankingOptions | None = None,
        buffers: UnsavedBuffers | None = None,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.hybrid = hybrid
        self.ranking = RankingOptions() if ranking is None else ranking
        self.buffers = buffers  # an editor's unsaved buffers, searched in place of their files
        # Files' relative imports (the twin rule), valid for one table version (one name table).
        self._imports_of: dict[str, frozenset[str]] = {}
        self._imports_table: object | None = None
        # Chunk texts read for the re-ranking's suspects and the shown hits, by chunk id, for one table
        # version too: queries share most of their candidates, and in the language server every LanceDB
        # read costs 5-10 ms (BENCHMARKS.md, "Integration (lead), session 5").
        self._texts: OrderedDict[str, str] = OrderedDict()
        self._texts_table: object | None = None
        self._texts_lock = threading.Lock()

    def _view(self) -> BufferView | None:
        view = self.buffers.view() if self.buffers is not None else None
        return view if view else None

    def search(
        self,
        query: str,
        *,
        limit: int = 10,
        filters: SearchFilters | None = None,
        hybrid: bool | None = None,
        weights: FusionWeights | None = None,
        ranking: RankingOptions | None = None,
        vector: np.ndarray | None = None,
    ) -> list[SearchHit]:
        """``ranking`` overrides the searcher's re-ranking signals for this call (ablations);
        ``vector`` is a precomputed query embedding (benchmarks asking one query many ways)."""
        query = query.strip()
        if not query:
            raise ConfigError("the query is empty")
        _check_limit(limit)
        filters = filters or SearchFilters()
        options = self.ranking if ranking is None else ranking
        use_hybrid = self.hybrid if hybrid is None else hybrid
        pool = max(limit * 4, 40)
        terms = query_terms(query)
        info = analyse_query(query, forms=options.forms)
        view = self._view()  # one state of the unsaved buffers for the three candidate lists
        version = self.store.chunk_version() if isinstance(self.store, ChunkStore) else None
        # The full-text search and the symbol look-up do not need the query vector: they run on a
        # worker thread while the query is embedded and the vector search runs (LanceDB and llama.cpp
        # release the GIL), so the look-up adds little to a query's latency.
        lexical_job = lookup_job = None
        if use_hybrid and terms:
            lexical_job = _pool().submit(self._lexical, terms, pool, filters, view, version)
        if options.active and (options.symbols or options.filename or options.file_words):
            lookup_job = _pool().submit(self._lookup, info, filters, options, view, version)
        if vector is None:
            # A small index's BM25, look-ups and dense search run from memory: the embedding may take
            # both cores (the query worker's other half was left for LanceDB's full-text search).
            table = self.store.name_table(version) if isinstance(self.store, ChunkStore) else None
            alone = table is not None and table.has_lexical and not view
            vector = query_vector(self.embedder, query, alone=alone)
        dense = self._dense(vector, pool, filters, view, version)
        lexical = lexical_job.result() if lexical_job is not None else []
        looked_up = lookup_job.result() if lookup_job is not None else []
        if looked_up and _ranking.LOOKUP_COSINE:
            dense, lookup = _merge_lookup(dense, looked_up, vector, filters)
        else:
            lookup = [row.candidate for row in looked_up]
        if weights is None:
            weights = IDENTIFIER_WEIGHTS if looks_like_identifier(query) else SENTENCE_WEIGHTS
        return self._fuse(
            dense, lexical, terms, limit, filters, weights, options=options, info=info, lookup=lookup, version=version
        )

    def _lexical(
        self,
        terms: list[str],
        pool: int,
        filters: SearchFilters,
        view: BufferView | None = None,
        version: int | None = None,
    ) -> list[Candidate]:
        where = view.where(filters.where()) if view else filters.where()
        # The table as is: the heap settles on the query's own thread (``_dense``), not beside it here.
        table = self.store.name_table(version) if isinstance(self.store, ChunkStore) else None
        in_memory = table.text_search(" ".join(terms), _row_filter(filters, view), pool) if table is not None else None
        if in_memory is not None:  # a small table's postings are in memory (engine/bm25.py)
            found = in_memory
        elif isinstance(self.store, ChunkStore):  # without content: read for the final hits only
            # Without ``lex`` too unless the unsaved buffers' re-scoring needs it: the shown hits'
            # matched terms are worked out from their texts (``_fuse``).
            found = self.store.text_search(
                " ".join(terms), limit=pool, where=where, content=False, lex=view is not None, version=version
            )
        else:
            found = self.store.text_search(" ".join(terms), limit=pool, where=where)
        found = [r for r in found if filters.accepts_path(r["path"])]
        if view:
            found = view.lexical(found, terms, filters, pool, self.store.count_chunks())
        return [Candidate.from_row(r) for r in found]

    def _lookup(
        self,
        info: QueryInfo,
        filters: SearchFilters,
        options: RankingOptions,
        view: BufferView | None = None,
        version: int | None = None,
    ) -> list[LookupRow]:
        """Chunks that define, belong to or share a file name with an identifier of the query.

        Dense and BM25 pools often miss the definition of a short, common name (``Request``, ``Context``):
        every use of it scores alike. A direct look-up by name puts it among the candidates.
        """
        columns = [*_LOOKUP_COLUMNS, "vector", "tier"]
        table = self._name_table(version)
        if table is not None and isinstance(self.store, ChunkStore):
            columns.remove("content")
        found = self._lookup_in_table(table, info, filters, options, view, columns) if table is not None else None
        rows = self._lookup_filtered(info, filters, options, view, columns) if found is None else found
        if view:
            rows = view.lookup(info, filters, rows)
        return [LookupRow(Candidate.from_row(r), r.get("vector"), r.get("tier", _TIER_MODEL)) for r in rows]

    def _fill_contents(self, rows: Sequence[Candidate], version: int | None = None) -> None:
        """Read the text of the final hits: a ``ChunkStore``'s candidates come without it (~300 rows
        read per query, 10 shown). ``version``: the chunk table version the query read."""
        if not isinstance(self.store, ChunkStore):
            return
        table = self.store.name_table(version)  # a new object for every table version (None: not known yet)
        pending: dict[int, Candidate] = {}
        with self._texts_lock:  # searches of several requests run in threads at once
            if table is None or table is not self._texts_table:
                self._texts, self._texts_table = OrderedDict(), table
            texts = self._texts
            for r in rows:
                if r.row_id is None:
                    continue
                known = texts.get(r.id)
                if known is not None:
                    r.content, r.row_id = known, None
                    texts.move_to_end(r.id)
                else:
                    pending[r.row_id] = r
        if not pending:
            return
        read = self._read_contents(pending, table)
        if table is None:
            return
        with self._texts_lock:
            if self._texts is texts:
                for row in read:
                    texts[row.id] = row.content
                while len(texts) > TEXT_CACHE_CHUNKS:
                    texts.popitem(last=False)

    def _texts_in_memory(self, version: int | None) -> bool:
        if not isinstance(self.store, ChunkStore):
            return True  # no reads to save
        table = self.store.name_table(version)
        return table is not None and table.has_texts

    def _read_contents(self, pending: dict[int, Candidate], table: NameTable | None = None) -> list[Candidate]:
        """Read these candidates' texts (by row id, by chunk id for rows moved since); those read."""
        assert isinstance(self.store, ChunkStore)
        found = table.contents(list(pending)) if table is not None else None
        if found is None:  # the table keeps no texts (a large index): read them
            found = self.store.contents(list(pending))
        read: list[Candidate] = []
        missing: dict[str, Candidate] = {}
        for row_id, row in pending.items():
            text = found.get(row_id)  # a row id names one row for good: its text is this candidate's
            if text is not None:
                row.content = text
                read.append(row)
            else:  # the row moved (a compaction in between): read it by id
                missing[row.id] = row
            row.row_id = None
        if missing:
            for stored in self.store.rows(sql_in("id", list(missing)), columns=["id", "content"], limit=len(missing)):
                missing[stored["id"]].content = stored["content"]
                read.append(missing[stored["id"]])
        return read

    def _imports(self, paths: Sequence[str], version: int | None = None) -> dict[str, frozenset[str]]:
        """The relative imports of these files (``ranking.imported_paths``), read from their first
        chunks: where JS/TS files keep their imports."""
        if not paths or not isinstance(self.store, ChunkStore):
            return {}
        table = self.store.name_table(version)  # a new object for every table version
        if table is None or table is not self._imports_table:
            self._imports_of, self._imports_table = {}, table
        known = self._imports_of
        missing = [p for p in paths if p not in known]
        if missing:
            texts = self._leading_texts(table, missing)
            for path in missing:
                known[path] = imported_paths(path, "\n".join(text for _, text in sorted(texts.get(path, []))))
        return {p: known[p] for p in paths}

    def _leading_texts(self, table: NameTable | None, paths: list[str]) -> dict[str, list[tuple[int, str]]]:
        """(start line, text) of the chunks that start in the first ``IMPORT_LINES`` lines of each path.

        By row id through the name table (one take: ~1 ms where the filter below scanned the table,
        up to 60 ms at p95 inside the server); by filter while there is no table or rows moved since."""
        assert isinstance(self.store, ChunkStore)
        texts: dict[str, list[tuple[int, str]]] = defaultdict(list)
        if table is not None:
            wanted = [row_id for path in paths for row_id in table.leading_rows(path, IMPORT_CHUNKS)]
            found = table.leading_texts(wanted)
            if found is None:
                found = self.store.take_rows(wanted, columns=["path", "start_line", "content"]) if wanted else []
            asked = set(paths)
            if len(found) == len(wanted) and all(row["path"] in asked for row in found):
                for row in found:
                    if int(row["start_line"]) < IMPORT_LINES:
                        texts[row["path"]].append((int(row["start_line"]), row["content"] or ""))
                return texts
        where = f"({sql_in('path', paths)}) AND start_line < {IMPORT_LINES}"
        for row in self.store.rows(where, columns=["path", "start_line", "content"], limit=len(paths) * IMPORT_CHUNKS):
            texts[row["path"]].append((int(row["start_line"]), row["content"] or ""))
        return texts

    def _name_table(self, version: int | None = None) -> NameTable | None:
        # A ChunkStore has one; a snapshot overlay filters in LanceDB.
        table = self.store.name_table(version) if isinstance(self.store, ChunkStore) else None
        if table is not None:
            _settle_heap(table)
        return table

    def _lookup_in_table(
        self,
        table: NameTable,
        info: QueryInfo,
        filters: SearchFilters,
        options: RankingOptions,
        view: BufferView | None,
        columns: list[str],
    ) -> list[dict[str, Any]] | None:
        """``_lookup_filtered`` answered from the in-memory name table: the same rows, no table scan.

        None when the rows read back are not the ones the table named (the table changed in between).
        """
        keep = _row_filter(filters, view)
        groups: list[tuple[list[int], int]] = []
        names = symbol_lookup_names(info) if options.symbols or options.filename else []
        if names:
            groups.append((table.defining([*names, *("$" + n for n in names)]), LOOKUP_DEFINITIONS))
            groups.append((table.in_files_named(names), LOOKUP_FILE_CHUNKS))
        words = file_lookup_words(info) if options.file_words else []
        if words:
            groups.append((table.in_files_named(words, module_dirs=True), LOOKUP_WORD_FILE_CHUNKS))
        if table.has_payload and "content" not in columns:  # every column in memory: no read
            in_memory: list[dict[str, Any]] = []
            for candidates, limit in groups:
                in_memory.extend(table.take_rows(candidates, keep, limit) or ())
            rows: list[dict[str, Any]] = []
            _add_accepted(rows, set(), in_memory, filters)
            return rows
        wanted: list[tuple[int, str]] = []
        for candidates, limit in groups:
            wanted.extend(table.take(candidates, keep, limit))
        if not wanted:
            return []
        if not isinstance(self.store, ChunkStore):
            return None
        row_ids = list(dict(wanted))
        known = table.candidate_rows(row_ids) if "content" not in columns else None
        if known is not None and len(known) == len(row_ids):  # the vectors alone from LanceDB, by row id
            vectors = self.store.take_vectors(row_ids)
            with_vectors = [{**row, "vector": vectors[row_id]} for row_id, row in known.items() if row_id in vectors]
            read = lookup_rows(with_vectors, wanted)
        else:
            read = lookup_rows(self.store.take_rows(row_ids, columns=columns), wanted)
        if read is None:
            return None
        if "content" not in columns:
            read = [{**row, "_rowid": row_id} for row, (row_id, _) in zip(read, wanted, strict=True)]
        rows = []
        _add_accepted(rows, set(), read, filters)
        return rows

    def _lookup_filtered(
        self,
        info: QueryInfo,
        filters: SearchFilters,
        options: RankingOptions,
        view: BufferView | None,
        columns: list[str],
    ) -> list[dict[str, Any]]:
        """The look-ups as LanceDB filters (table scans): while the name table is being built."""
        wanted: list[tuple[str, int]] = []
        wheres = symbol_lookup_where(info) if options.symbols or options.filename else None
        if wheres:
            wanted.extend(zip(wheres, (LOOKUP_DEFINITIONS, LOOKUP_FILE_CHUNKS), strict=True))
        words = file_word_lookup_where(info) if options.file_words else None
        if words:
            wanted.append((words, LOOKUP_WORD_FILE_CHUNKS))
        extra = view.where(filters.where()) if view else filters.where()
        rows: list[dict[str, Any]] = []
        seen: set[str] = set()
        for where, limit in wanted:
            try:
                found = self.store.rows(f"({where}) AND {extra}" if extra else where, columns=columns, limit=limit)
            except Exception as exc:  # noqa: BLE001 - a look-up is an extra; search must answer without it
                log.debug("symbol look-up failed: %s", exc)
                continue
            _add_accepted(rows, seen, found, filters)
        return rows

    def similar(
        self,
        code: str,
        *,
        limit: int = 10,
        exclude: tuple[str, int, int] | None = None,
        filters: SearchFilters | None = None,
        min_score: float | None = None,
    ) -> list[SearchHit]:
        """Chunks whose code is most like ``code``; ``exclude`` = (path, start, end) of the selection.

        Hits below half the best match's similarity are dropped; ``min_score`` adds an absolute floor
        for callers where a weak match would mislead (references, which Serena attributes to symbols).
        """
        if not code.strip():
            raise ConfigError("nothing selected: select some code or put the cursor in a symbol")
        _check_limit(limit)
        filters = filters or SearchFilters()
        vector = self.embedder.embed_interactive([code])[0]  # someone waits: ahead of indexing
        rows = self._dense(vector, limit + 20, filters, self._view())
        if exclude:
            path, start, end = exclude
            rows = [r for r in rows if not (r.path == path and r.start_line <= end and r.end_line >= start)]
        if rows:
            floor = max(min_score or 0.0, SIMILAR_RELATIVE_FLOOR * (rows[0].semantic or 0.0))
            rows = [r for r in rows if (r.semantic or 0.0) >= floor]
        return self._fuse(rows, [], [], limit, filters, FusionWeights(lexical=0.0))

    def symbols(self, query: str, *, limit: int = 50) -> list[SearchHit]:
        """Indexed symbols matched by name (substring, case-insensitive), then semantically."""
        _check_limit(limit)
        named: list[Candidate] = []
        query = query.strip()
        view = self._view()  # unsaved buffers' symbols replace their files' indexed ones
        if query:
            pattern = "%" + query.lower().replace("'", "''").replace("%", "\\%") + "%"
            where = f"symbol != '' AND lower(symbol) LIKE '{pattern}'"
            rows = self.store.rows(view.hide(where) if view else where, limit=limit * 4)
            if view:
                rows += [dict(r) for r in view.rows if r["symbol"] and query.lower() in r["symbol"].lower()]
            named = [Candidate.from_row(r) for r in rows]
            named.sort(key=lambda r: (not r.symbol.lower().endswith(query.lower()), len(r.symbol), r.path))
        hits = [self._hit(r, score=1.0) for r in named[:limit]]
        if query and len(hits) < limit:
            seen = {(h.path, h.start_line) for h in hits}
            for hit in self.search(query, limit=limit, hybrid=True):
                if hit.symbol and (hit.path, hit.start_line) not in seen:
                    hits.append(hit)
                    seen.add((hit.path, hit.start_line))
        elif not query:
            rows = [dict(r) for r in view.rows if r["symbol"]] if view else []
            rows += self.store.rows(view.hide("symbol != ''") if view else "symbol != ''", limit=limit)
            hits = [self._hit(Candidate.from_row(r), score=1.0) for r in rows]
        return hits[:limit]

    # ----------------------------------------------------------------- internals
    def _dense(
        self,
        vector: np.ndarray,
        limit: int,
        filters: SearchFilters,
        view: BufferView | None = None,
        version: int | None = None,
    ) -> list[Candidate]:
        where = view.where(filters.where()) if view else filters.where()
        table = self._name_table(version) if isinstance(self.store, ChunkStore) else None
        found_in_memory = table.nearest(vector, _row_filter(filters, view), limit) if table is not None else None
        if found_in_memory is not None:  # a small table's vectors are in memory (engine/row_payload.py)
            found = found_in_memory
        elif isinstance(self.store, ChunkStore):
            found = self.store.vector_search(vector, limit=limit, where=where, content=False, version=version)
        else:
            found = self.store.vector_search(vector, limit=limit, where=where)
        found = [r for r in found if filters.accepts_path(r["path"])]
        if view:
            found = view.dense(found, vector, filters, limit)
        rows = [Candidate.from_row(r) for r in found]
        if filters.min_score is not None:
            rows = [r for r in rows if (r.semantic or 0.0) >= filters.min_score]
        return rows

    def _fuse(
        self,
        dense: list[Candidate],
        lexical: list[Candidate],
        terms: list[str],
        limit: int,
        filters: SearchFilters,
        weights: FusionWeights,
        *,
        options: RankingOptions | None = None,
        info: QueryInfo | None = None,
        lookup: list[Candidate] | None = None,
        version: int | None = None,
    ) -> list[SearchHit]:
        fused: dict[str, Candidate] = {}
        scores: dict[str, float] = {}
        for rank, row in enumerate(dense):
            fused[row.id] = row
            scores[row.id] = weights.dense / (weights.k + rank + 1)
        for rank, row in enumerate(lexical):
            entry = fused.setdefault(row.id, row)
            entry.lexical = row.lexical
            entry.lex = row.lex  # the matched terms are worked out for the shown hits only (below)
            scores[row.id] = scores.get(row.id, 0.0) + weights.lexical / (weights.k + rank + 1)
        # The score of a chunk ranked first by every list in play: results are scaled to (0, 1].
        best = (weights.dense * bool(dense) + weights.lexical * bool(lexical)) / (weights.k + 1)
        if options is not None and options.active and info is not None:
            for row in lookup or ():
                fused.setdefault(row.id, row)
            # The texts the re-ranking reads, in one take, beside the twin rule's imports (another
            # take, on a pool thread): each LanceDB read is a few ms inside the server, and they were
            # three reads one after another.
            twins = twin_files(fused.values()) if options.twins and info.kind != "symbol" else None
            imports_job = _pool().submit(self._imports, twins, version) if twins else None
            suspects: dict[str, Candidate] = {}
            if options.overloads:  # the fold tells a signature from a body by its text
                suspects.update((row.id, row) for row in overload_suspects(fused.values()))
            if options.forwarders and info.kind != "symbol":  # so does the forwarder rule a wrapper
                suspects.update((row.id, row) for row in forwarder_suspects(fused.values()))
            if suspects and not self._texts_in_memory(version):
                # The texts the hits will show, most likely, in the same read: on a large index each
                # read of texts is a LanceDB take (6-14 ms inside the server at 179K chunks), and the
                # hits' own was a second one after the re-ranking.
                likely = sorted(fused, key=lambda key: -scores.get(key, 0.0))[: limit * LIKELY_HITS]
                suspects.update((key, fused[key]) for key in likely)
                suspects.update((row.id, row) for row in lookup or ())
            if suspects:
                self._fill_contents(list(suspects.values()), version)
            imports = imports_job.result() if imports_job is not None else ({} if twins is not None else None)
            ordered = Reranker(options).rerank(list(fused.values()), scores, info, imports)
            top = max(scores.values(), default=0.0) or 1.0
            # Re-ranked scores are in units of the best fused score; boosts can pass 1, so the
            # displayed scores are scaled back into (0, 1] (order unchanged).
            ceiling = max(1.0, max((r.rank_score for r in ordered), default=1.0))
            final = {r.id: r.rank_score * top / ceiling for r in ordered}
            ordered = [r for r in ordered if final[r.id] > 0]
            # A header yields to its own member only while ranking is plain fusion: the re-ranker
            # already decides between a class and its methods, and a deferred header would follow a
            # member that diversity or size pushed down (BENCHMARKS.md, ranking session 3).
            defer_headers = _ranking.DEFER_HEADERS_RERANKED and not (options.symbols and info.names)
        else:
            final = scores
            ordered = sorted((r for r in fused.values() if scores[r.id] > 0), key=lambda r: -scores[r.id])
            defer_headers = True
        scores = final
        picked: list[Candidate] = []
        deferred: list[Candidate] = []
        for index, row in enumerate(ordered):
            if filters.min_score is not None and (-1.0 if row.semantic is None else row.semantic) < filters.min_score:
                continue  # lexical-only hits have no semantic score to vouch for them
            if any(_overlaps(row, h) for h in picked):
                continue  # a window overlapping a better hit in the same file adds nothing
            if (
                defer_headers
                and row.kind in CONTAINER_KINDS
                and any(_inside(member, row) for member in ordered[index + 1 :])
            ):
                deferred.append(row)  # a class header that matched because a method of it matched
                continue
            picked.append(row)
            # The deferred header follows its best member, scored as it was.
            for container in [c for c in deferred if _inside(row, c)]:
                deferred.remove(container)
                if len(picked) < limit:
                    picked.append(container)
            if len(picked) >= limit:
                break
        picked = picked[:limit]
        self._fill_contents(picked, version)
        matched = {row.id for row in lexical}
        for row in picked:
            if row.id in matched:
                lex = row.lex or document_terms(row.content, path=row.path, symbol=row.symbol)  # as indexed
                row.terms = _matched(terms, lex)
        return [self._hit(row, score=scores[row.id] / best) for row in picked]

    @staticmethod
    def _hit(row: Candidate, *, score: float) -> SearchHit:
        return SearchHit(
            path=row.path,
            start_line=row.start_line,
            end_line=row.end_line,
            score=round(float(score), 6),
            symbol=row.symbol,
            kind=row.kind,
            language=row.language,
            preview=_preview(row.content),
            parent=row.parent,
            start_col=_indent(row.content),
            semantic_score=row.semantic,
            lexical_score=row.lexical,
            matched_terms=tuple(row.terms),
            signals=tuple(row.signals),
            source=row.source,
        )


QUERY_VECTOR_CACHE = 256  # query embeddings kept per embedder (an editor re-sends a query as its user pages)
_query_vectors: weakref.WeakKeyDictionary[Embedder, OrderedDict[str, np.ndarray]] = weakref.WeakKeyDictionary()
_query_vectors_lock = threading.Lock()


def query_vector(embedder: Embedder, query: str, *, alone: bool = False) -> np.ndarray:
    """``embedder.embed_query(query)`` (``embed_query_alone`` with ``alone``: the same vector), remembered
    for the last ``QUERY_VECTOR_CACHE`` queries.

    A query's vector depends only on the model and the text, so a repeated query (the same search sent
    again, another page of it, an agent asking twice) skips the round trip to the query worker, ~6-13 ms
    of a query at load 2 (BENCHMARKS.md, querylat). Each caller gets its own copy.
    """
    with _query_vectors_lock:
        cache = _query_vectors.get(embedder)
        if cache is None:
            cache = _query_vectors[embedder] = OrderedDict()
        known = cache.get(query)
        if known is not None:
            cache.move_to_end(query)
            copy: np.ndarray = known.copy()
            return copy
    vector: np.ndarray = np.asarray(embedder.embed_query_alone(query) if alone else embedder.embed_query(query))
    with _query_vectors_lock:
        cache[query] = vector.copy()
        while len(cache) > QUERY_VECTOR_CACHE:
            cache.popitem(last=False)
    return vector


_settled: int | None = None  # scan_key of the last name table the collector was told about


def _row_filter(filters: SearchFilters, view: BufferView | None) -> RowFilter:
    """The query's filters (and the unsaved buffers' hidden files) for rows of the name table."""
    return RowFilter(
        language=filters.language,
        kind=filters.kind,
        path_like=RowFilter.like(_glob_to_like(filters.path)) if filters.path else None,
        hidden=frozenset(view.paths) if view else frozenset(),
    )


def _settle_heap(table: NameTable) -> None:
    """Move what the process holds now (a fresh name table: ~10^5 lists at 178K chunks, the modules) out
    of the cyclic collector's reach, once per name table built by a scan. A full collection walked all of it: a 90 ms
    pause inside a query at 178K chunks, the largest single stall of the query path (BENCHMARKS.md,
    querylat). Frozen objects are still freed by reference counting (the name table holds no cycles, so
    an old table goes when the next replaces it); ``gc.freeze`` is O(1). The young generations are
    collected first (a few ms), so the only garbage frozen with it is cycles that had already reached the
    oldest generation: kept, not collected (bounded per table version; the next step is to freeze on the
    name table's build thread after a full collection there).
    """
    global _settled
    # Once per scan, not per save: a save's patched copy shares the scan's objects, and freezing after
    # every save would keep each save's old-generation cycles for good.
    if _settled != table.scan_key:
        _settled = table.scan_key
        gc.collect(1)
        gc.freeze()


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="semcode-search")
        return _POOL


def _merge_lookup(
    dense: list[Candidate], lookup: list[LookupRow], vector: np.ndarray, filters: SearchFilters
) -> tuple[list[Candidate], list[Candidate]]:
    """Look-up rows scored by the query's cosine and merged into the dense list in that order.

    A row named like the query has its own evidence only if its text matches too: its cosine ranks
    it among the dense candidates (a definition the dense pool missed enters at its rank, not at the
    top), so the re-ranker's gates and the fusion treat it like any other candidate. Rows without a
    model vector (placeholders, static vectors) stay unscored extras, as before.
    """
    in_dense = {r.id for r in dense}
    query = np.asarray(vector, dtype=np.float32)
    query_norm = float(np.linalg.norm(query)) or 1.0
    scored: list[Candidate] = []
    unscored: list[Candidate] = []
    for row in lookup:
        candidate = row.candidate
        if candidate.id in in_dense:
            continue
        if row.vector is None or row.tier != _TIER_MODEL:
            unscored.append(candidate)
            continue
        vec = np.asarray(row.vector, dtype=np.float32)
        norm = float(np.linalg.norm(vec))
        if not norm or vec.shape != query.shape:
            unscored.append(candidate)
            continue
        candidate.semantic = float(vec @ query) / (norm * query_norm)
        if filters.min_score is None or candidate.semantic >= filters.min_score:
            scored.append(candidate)
    if not scored:
        return dense, unscored
    merged = sorted([*dense, *scored], key=lambda r: -(r.semantic or 0.0))
    return merged, unscored


def _check_limit(limit: int) -> None:
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
        raise ConfigError(f"limit must be an integer between 1 and {MAX_LIMIT}, got {limit!r}")


def _overlaps(row: Candidate, hit: Candidate) -> bool:
    """Same file and the same thing: parts of one split symbol, or overlapping windows.

    A container's header chunk spans the whole container, so it never hides its members.
    """
    if row.path != hit.path:
        return False
    start, end = row.start_line, row.end_line
    overlap = min(end, hit.end_line) - max(start, hit.start_line) + 1
    if row.symbol and row.symbol == hit.symbol and row.kind == hit.kind:
        return overlap > -2  # overlapping or adjacent parts of one long symbol
    if row.kind in CONTAINER_KINDS or hit.kind in CONTAINER_KINDS:
        return False
    return overlap > 0 and overlap >= 0.5 * min(end - start + 1, hit.end_line - hit.start_line + 1)


def _inside(member: Candidate, container: Candidate) -> bool:
    """``member`` is a chunk of a symbol within ``container`` (same file, range inside, not itself)."""
    return (
        member.path == container.path
        and member.id != container.id
        and member.kind not in ("block", "")
        and container.start_line <= member.start_line
        and member.end_line <= container.end_line
    )


def _matched(terms: list[str], lex: str) -> list[str]:
    """Query terms found in the chunk, compared as the full-text index sees them (its analyzer and stemmer,
    engine/bm25.py): ``parsing`` matches ``parse``, as the BM25 hit did."""
    present = {index_token(token) for token in lex.split()}
    present.discard(None)
    return [t for t in terms if index_token(t) in present]


def _indent(content: str) -> int:
    first = content.split("\n", 1)[0]
    return len(first) - len(first.lstrip())


def _preview(content: str) -> str:
    lines = content.splitlines()[:PREVIEW_LINES]
    text = "\n".join(lines)
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"
