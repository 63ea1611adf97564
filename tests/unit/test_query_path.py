"""The query path's speed-ups keep answers the same: the query-vector cache, look-up vectors read as
numpy rows, and the collector settling on a fresh name table (BENCHMARKS.md, querylat)."""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from engine import row_payload
from engine import search as search_module
from engine.search import QUERY_VECTOR_CACHE, query_vector
from engine.workspace import Workspace


@pytest.fixture
def counting(fake_embedder: Any) -> Callable[[], Any]:
    """New fake embedders (the conftest's kind) that record the queries they embed."""

    def make() -> Any:
        embedder = type(fake_embedder)()
        embedder.queries = []
        original = embedder.embed_query

        def embed_query(query: str) -> np.ndarray:
            embedder.queries.append(query)
            return original(query)

        embedder.embed_query = embed_query
        return embedder

    return make


def test_a_repeated_query_is_embedded_once_per_embedder(counting: Callable[[], Any]) -> None:
    embedder, other = counting(), counting()
    first = query_vector(embedder, "retry a request")
    again = query_vector(embedder, "retry a request")
    assert embedder.queries == ["retry a request"]
    assert np.array_equal(first, again) and np.array_equal(first, embedder.embed_query("retry a request"))
    again[:] = 0  # each caller owns its copy: the cached vector is not changed
    assert np.array_equal(query_vector(embedder, "retry a request"), first)
    query_vector(other, "retry a request")  # another model embeds for itself
    assert other.queries == ["retry a request"]


def test_the_query_vector_cache_is_bounded(counting: Callable[[], Any]) -> None:
    embedder = counting()
    for i in range(QUERY_VECTOR_CACHE + 1):
        query_vector(embedder, f"query {i}")
    query_vector(embedder, f"query {QUERY_VECTOR_CACHE}")  # the newest stayed
    query_vector(embedder, "query 0")  # the oldest was dropped: embedded again
    assert embedder.queries.count("query 0") == 2 and embedder.queries.count(f"query {QUERY_VECTOR_CACHE}") == 1


def test_search_twice_embeds_once_and_answers_alike(small_root: Any, config: Any, counting: Callable[[], Any]) -> None:
    embedder = counting()
    workspace = Workspace(small_root, config, embedder=embedder)
    workspace.index()
    first = workspace.search("retry request backoff", limit=3)
    second = workspace.search("retry request backoff", limit=3)
    assert embedder.queries == ["retry request backoff"]
    assert first == second and first[0].path == "net/retry.py"


def test_lookup_rows_carry_numpy_vectors_equal_to_the_stored_ones(workspace: Workspace) -> None:
    workspace.index()
    store = workspace.store
    table = store._names.build_now()
    assert table is not None
    row_ids = [int(r) for r in table._row_ids]
    rows = store.take_rows(row_ids, columns=["id", "vector", "tier"])
    stored = {r["id"]: r["vector"] for r in store.rows("true", columns=["id", "vector"])}
    assert len(rows) == len(row_ids) == len(stored)
    for row in rows:
        assert isinstance(row["vector"], np.ndarray) and row["vector"].dtype == np.float32
        assert np.array_equal(row["vector"], np.asarray(stored[row["id"]], dtype=np.float32))
    assert "vector" not in store.take_rows(row_ids[:1], columns=["id", "path"])[0]


def test_a_new_name_table_freezes_the_heap_once(workspace: Workspace) -> None:
    workspace.index()
    table = workspace.store._names.build_now()
    assert table is not None
    gc.unfreeze()
    search_module._settled = None
    try:
        workspace.search("slug title", limit=2)
        frozen = gc.get_freeze_count()
        assert frozen > 0
        workspace.search("format a date", limit=2)  # same table: no second freeze
        # (One frozen object of the first query may go in the second: the in-memory BM25 runs beside
        # the freeze on a pool thread. A second freeze would add ~10^5.)
        assert frozen - 8 <= gc.get_freeze_count() <= frozen
        # A save patches the table into a new copy of the same scan: still no freeze (one per save
        # would keep every save's old-generation garbage cycles for good).
        saved = sorted(workspace.store.manifest())[0]
        path = workspace.root / saved
        path.write_text(path.read_text() + "\n\ndef added_after_a_save():\n    return 1\n")
        workspace.update_files([saved])
        patched = workspace.store.name_table()
        assert patched is not None and patched is not table and patched.scan_key == table.scan_key
        workspace.search("added after a save", limit=2)
        assert gc.get_freeze_count() <= frozen  # frozen objects the save freed are gone; none were added
    finally:
        gc.unfreeze()


def test_chunk_texts_are_read_once_per_table_version(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(row_payload, "PAYLOAD_BYTES", 0)  # a large index: its texts stay on disk
    workspace.index()
    table = workspace.store._names.build_now()
    assert table is not None and not table.has_payload
    reads: list[int] = []
    original = type(workspace.store).contents

    def contents(store: Any, row_ids: Any) -> Any:
        reads.append(len(row_ids))
        return original(store, row_ids)

    monkeypatch.setattr(type(workspace.store), "contents", contents)
    first = workspace.search("slug title", limit=3)
    assert reads and all(hit.preview for hit in first)
    reads.clear()
    again = workspace.search("slug title", limit=3)
    assert reads == [] and [(h.path, h.start_line, h.preview) for h in again] == [
        (h.path, h.start_line, h.preview) for h in first
    ]
    # A save is a new table version: its new text is read, never the cached one.
    saved = first[0].path
    path = workspace.root / saved
    path.write_text(path.read_text().replace("slug", "slug_changed_by_a_save"))
    workspace.update_files([saved])
    after = workspace.search("slug title", limit=3)
    assert reads, "the texts of a new table version were not read again"
    assert any("slug_changed_by_a_save" in h.preview for h in after if h.path == saved)


def test_a_small_index_answers_from_memory_what_it_reads_from_lancedb(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Below the payload bound the name table holds the vectors, candidate columns and texts
    (engine/row_payload.py), and the BM25 postings (engine/bm25.py): a query makes no vector search,
    full-text search, take or text read in LanceDB, and ranks exactly as the same index read from
    LanceDB does."""
    workspace.index()
    queries = ["slug title", "format a date", "parse the configuration file"]
    monkeypatch.setattr(row_payload, "PAYLOAD_BYTES", 0)
    assert workspace.store._names.build_now() is not None and not workspace.store.name_table().has_payload
    from_lancedb = [[(h.path, h.start_line, h.score, h.preview) for h in workspace.search(q, limit=5)] for q in queries]
    monkeypatch.undo()
    table = workspace.store._names.build_now()
    assert table is not None and table.has_payload
    reads: list[str] = []
    store_type = type(workspace.store)
    for name in ("vector_search", "take_rows", "contents", "text_search"):
        original = getattr(store_type, name)

        def counted(store: Any, *args: Any, _name: str = name, _original: Any = original, **kw: Any) -> Any:
            reads.append(_name)
            return _original(store, *args, **kw)

        monkeypatch.setattr(store_type, name, counted)
    in_memory = [[(h.path, h.start_line, h.score, h.preview) for h in workspace.search(q, limit=5)] for q in queries]
    assert reads == []
    assert in_memory == from_lancedb


def test_a_search_reads_the_chunk_table_version_once(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each read of a LanceDB table's version is a round trip to its event-loop thread; a query read it
    five times (name table per step, vector search), so now it reads it once and passes it on."""
    workspace.index()
    assert workspace.store._names.build_now() is not None
    workspace.search("slug title", limit=3)  # warm: counts, indexes
    table_type = type(workspace.store._chunks)
    reads: list[int] = []
    original = table_type.version

    def counted(table: Any) -> Any:
        reads.append(1)
        return original.fget(table)

    monkeypatch.setattr(table_type, "version", property(counted))
    hits = workspace.search("make a slug from a title", limit=3)
    assert hits and len(reads) == 1, len(reads)


def test_a_name_table_newer_than_the_asked_version_starts_no_rebuild(workspace: Workspace) -> None:
    """A query that read the version just before a save commits asks for the older table: it filters in
    LanceDB that once; rebuilding the names (0.5 s of CPU at 178K chunks) for a past version is waste."""
    workspace.index()
    names = workspace.store._names
    table = names.build_now()
    assert table is not None
    assert names.current(table.version - 1) is None
    assert not names._building and names._table is table


def test_a_large_index_reads_row_ids_and_scores_alone_and_ranks_the_same(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the payload bound the name table keeps the candidate columns (engine/row_payload.py): the
    vector and full-text searches read row ids and scores alone, the look-ups read vectors alone, and
    every hit (its score, text, matched terms and why) is what the same index gives read from LanceDB."""
    from engine.names import NameTable

    monkeypatch.setattr(row_payload, "PAYLOAD_BYTES", 0)
    workspace.index()
    table = workspace.store._names.build_now()
    assert table is not None and table.has_candidate_columns and not table.has_payload
    queries = ["slug title", "format a date", "parse the configuration file", "slugify"]

    def hits() -> list[list[Any]]:
        return [
            [h for h in workspace.search(q, limit=5)]  # every field: score, text, matched terms, signals
            for q in queries
        ]

    answered: list[int] = []
    original = type(workspace.store)._with_candidate_columns

    def counted(store: Any, *args: Any) -> Any:
        answered.append(1)
        return original(store, *args)

    monkeypatch.setattr(type(workspace.store), "_with_candidate_columns", counted)
    from_memory = hits()
    assert len(answered) >= 2 * len(queries)  # the vector and the full-text search of every query
    monkeypatch.setattr(NameTable, "has_candidate_columns", property(lambda self: False))
    monkeypatch.setattr(NameTable, "candidate_rows", lambda self, row_ids: None)
    answered.clear()
    assert hits() == from_memory and not answered
    assert any(h.matched_terms for found in from_memory for h in found)  # the terms were worked out


def test_a_small_index_embeds_its_query_alone_and_a_large_one_beside_its_bm25(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the BM25 in memory nothing of a query but a few ms of Python runs beside its embedding, so
    the embedder may use every thread (``embed_query_alone``); a large index's BM25 is LanceDB's, on
    the other core, and the query is embedded as before."""
    workspace.index()
    assert workspace.store._names.build_now() is not None
    embedder = workspace.embedder
    calls: list[str] = []
    for name in ("embed_query", "embed_query_alone"):
        original = getattr(embedder, name)

        def counted(query: str, _name: str = name, _original: Any = original) -> Any:
            calls.append(_name)
            return _original(query)

        monkeypatch.setattr(embedder, name, counted)
    alone = workspace.search("a query the cache has not seen", limit=3)
    assert calls[0] == "embed_query_alone"
    calls.clear()
    monkeypatch.setattr(row_payload, "PAYLOAD_BYTES", 0)  # a large index: no payload, no BM25 in memory
    assert workspace.store._names.build_now() is not None and not workspace.store.name_table().has_lexical
    beside = workspace.search("another query the cache has not seen", limit=3)
    assert calls == ["embed_query"]
    assert alone and beside


def test_a_large_index_reads_look_up_vectors_and_texts_by_row_id_alone(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large index's look-ups and shown texts are takes by row id of the one column they need: the chunk
    ids (a string column, half of a 260-row take's CPU at 179K rows) are the name table's. The hits are
    those of the same index read with every column from LanceDB (vectors with chunk ids, texts by id)."""
    from lancedb.query import LanceTakeQueryBuilder

    from engine.names import NameTable

    monkeypatch.setattr(row_payload, "PAYLOAD_BYTES", 0)  # a large index: vectors and texts on disk
    workspace.index()
    table = workspace.store._names.build_now()
    assert table is not None and table.has_candidate_columns and not table.has_texts
    taken: list[list[str]] = []
    select = LanceTakeQueryBuilder.select

    def recorded(builder: Any, columns: Any) -> Any:
        taken.append(list(columns))
        return select(builder, columns)

    monkeypatch.setattr(LanceTakeQueryBuilder, "select", recorded)
    queries = ["slug title", "format a date", "parse the configuration file", "slugify", "Config"]
    by_row_id = [workspace.search(q, limit=5) for q in queries]
    assert ["vector"] in taken and ["content"] in taken  # the look-ups' vectors and the hits' texts
    assert not [columns for columns in taken if "id" in columns]
    assert all(h.preview for found in by_row_id for h in found)
    # The same index read as before the name table kept the candidate columns: chunk ids, and texts
    # matched by them.
    monkeypatch.setattr(NameTable, "has_candidate_columns", property(lambda self: False))
    monkeypatch.setattr(NameTable, "candidate_rows", lambda self, row_ids: None)
    workspace.searcher._texts.clear()
    assert [workspace.search(q, limit=5) for q in queries] == by_row_id
