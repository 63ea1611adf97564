"""The name table patched after our own saves equals one built from a scan of the same table version
(real LanceDB on disk; the look-ups need no model). Writes by anyone else still rebuild it.

A save that changes, adds and deletes names, a file that shrinks (the whole-table merge), a file that is
new, a file that is deleted, a rename: after each, the patched table must see exactly the rows, names and
row ids a rebuilt table sees, and answer the look-ups as the LanceDB filters do.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from engine import row_payload
from engine.names import NameTable, RowFilter
from engine.ranking import RankingOptions, analyse_query
from engine.records import Chunk
from engine.search import Searcher, SearchFilters
from engine.store import ChunkStore, FileRecord

DIM = 8
START = {
    "src/session.py": ["Session", "Session.request", "Session.send", "merge_setting", "run"],
    "src/adapters/__init__.py": ["get_adapter", "HTTPAdapter.send", "run"],
    "src/default/index.js": ["defaults", "$defaults", "run"],
    "lua/picker.lua": ["Picker", "Picker:find", "Picker:get_selection"],
    "rust/parser/mod.rs": ["Parser", "Parser.parse", "run"],
    "Request.cs": ["Request", "Request.Send"],
    "docs/request.md": [""],
}
BULK = {f"bulk/m{i}.py": ["run", f"Task{i}.run", f"Task{i}"] for i in range(40)}
QUERIES = [
    "Session", "request", "send", "get_adapter", "HTTPAdapter", "defaults", "find", "parse", "Parser",
    "Request", "run", "Task7.run", "merge_setting", "rename_me", "Renamed", "brand_new", "Widget",
    "how the Session sends a request", "where are widgets created", "helpers for the picker", "m3",
]  # fmt: skip
_version = [0]


def _chunks(path: str, symbols: list[str]) -> list[Chunk]:
    language = "python" if path.endswith(".py") else path.rsplit(".", 1)[-1]
    kinds = ["class" if s[:1].isupper() and "." not in s else "function" for s in symbols]
    return [
        Chunk(path, language, i * 5, i * 5 + 4, f"{s} body {i}", symbol=s, kind=k)
        for i, (s, k) in enumerate(zip(symbols, kinds, strict=True))
    ]


def _write(store: ChunkStore, files: dict[str, list[str]], removed: tuple[str, ...] = (), **kw: bool) -> None:
    """One ``replace_files`` call, as the indexer makes for a save of these files."""
    _version[0] += 1
    records = [FileRecord(p, 1, _version[0], f"h{p}{_version[0]}", len(s)) for p, s in files.items()]
    chunks = [c for p, s in files.items() for c in _chunks(p, s)]
    vectors = np.random.default_rng(_version[0]).normal(size=(len(chunks), DIM)).astype(np.float32)
    store.replace_files(records, chunks, vectors, [c.content for c in chunks], removed=list(removed), **kw)


def _store(path: Path) -> ChunkStore:
    store = ChunkStore(path, dimension=DIM, fingerprint="names")
    _write(store, START, new_paths=True)
    _write(store, BULK, new_paths=True)
    store._ensure_scalar_indexes()  # as a server's index run leaves it: saves read rows through the B-tree
    return store


def _rebuilt(store: ChunkStore) -> NameTable:
    return NameTable(*store._load_names())


def _assert_searches_read_rows_the_table_holds(store: ChunkStore, table: NameTable) -> None:
    """A large table keeps the candidate columns alone: a search's rows come from it and equal the
    columns LanceDB holds for the same rows."""
    columns = ["id", "path", "language", "symbol", "kind", "parent", "start_line", "end_line"]
    assert table.has_candidate_columns and not table.has_payload
    version = store._chunks.version
    for seed in range(3):
        query = np.random.default_rng(100 + seed).normal(size=DIM).astype(np.float32)
        found = store.vector_search(query, limit=12, content=False, version=version)
        stored = store._chunks.take_row_ids([r["_rowid"] for r in found]).select(columns).with_row_id().to_arrow()
        by_row = {r["_rowid"]: r for r in stored.to_pylist()}
        assert found and all({k: r[k] for k in columns} == {k: by_row[r["_rowid"]][k] for k in columns} for r in found)
    for terms in ("run", "session request", "picker find", "task7"):
        found = store.text_search(terms, limit=12, content=False, lex=False, version=version)
        direct = store.text_search(terms, limit=12, content=False)  # LanceDB's own columns
        assert [(r["_rowid"], r["_score"]) for r in found] == [(r["_rowid"], r["_score"]) for r in direct]
        assert [{k: r[k] for k in columns} for r in found] == [{k: r[k] for k in columns} for r in direct]


def _assert_current_equals_rebuilt(store: ChunkStore) -> NameTable:
    version = store._chunks.version
    table = store._names._table
    assert table is not None and table.version == version, "the write was not patched into the table"
    assert store.name_table() is table  # a query takes it as is: no rebuild, no LanceDB filters
    fresh = _rebuilt(store)
    assert fresh.version == version
    assert table.snapshot() == fresh.snapshot()  # the payload (vectors, texts) included
    assert table.rows == fresh.rows == store.count_chunks()
    # A small table answers the vector search from memory: the rows and distances LanceDB gives.
    for seed in range(3 if table.has_payload else 0):
        query = np.random.default_rng(100 + seed).normal(size=DIM).astype(np.float32)
        in_memory = table.nearest(query, RowFilter(), 12)
        assert in_memory is not None
        stored = store.vector_search(query, limit=12, content=False)
        assert [r["id"] for r in in_memory] == [r["id"] for r in stored]
        assert [r["_rowid"] for r in in_memory] == [r["_rowid"] for r in stored]
        assert np.allclose([r["_distance"] for r in in_memory], [r["_distance"] for r in stored], atol=1e-5)
        texts = table.contents([r["_rowid"] for r in stored])
        assert texts == store.contents([r["_rowid"] for r in stored])
    if not table.has_payload:
        _assert_searches_read_rows_the_table_holds(store, table)
    searcher = Searcher(store, embedder=None)  # type: ignore[arg-type]  # look-ups only
    for filters in (SearchFilters(), SearchFilters(language="python"), SearchFilters(kind="class")):
        for query in QUERIES:
            info, options, columns = analyse_query(query), RankingOptions(), ["id", "path", "symbol"]
            patched = searcher._lookup_in_table(table, info, filters, options, None, columns)
            filtered = searcher._lookup_filtered(info, filters, options, None, columns)
            assert patched is not None, query
            assert [r["id"] for r in patched] == [r["id"] for r in filtered], (query, filters)
    return table


@pytest.mark.parametrize("size", ["small", "large"])
def test_saves_patch_the_name_table_to_what_a_rebuild_gives(tmp_path: Path, monkeypatch, size: str) -> None:
    if size == "large":  # no vectors or texts in memory: the candidate columns alone
        monkeypatch.setattr(row_payload, "PAYLOAD_BYTES", 0)
    store = _store(tmp_path / "idx")
    built = store._names.build_now()
    assert built is not None and built.version == store._chunks.version
    assert built.has_payload == (size == "small") and built.has_candidate_columns
    # Same number of chunks, one name changed and one renamed: the keyed upsert (ids taken over).
    _write(store, {"src/session.py": ["Session", "Session.request", "Session.receive", "merge_setting", "rename_me"]})
    first = _assert_current_equals_rebuilt(store)
    assert first is not built
    # Names added (the file grew), in a second file at once.
    _write(
        store,
        {
            "src/session.py": ["Session", "Session.request", "Session.receive", "merge_setting", "rename_me", "extra"],
            "lua/picker.lua": ["Picker", "Picker:find", "Picker:get_selection", "Picker:close", "Widget"],
        },
    )
    _assert_current_equals_rebuilt(store)
    # Names deleted (the file shrank: the whole-table merge with its source delete).
    _write(store, {"rust/parser/mod.rs": ["Parser"]})
    _assert_current_equals_rebuilt(store)
    # A file the table never had, next to a deleted one (its own delete commit): two versions, one patch.
    version = store._chunks.version
    _write(store, {"src/brand_new/index.ts": ["brand_new", "Brand.new"]}, removed=("src/adapters/__init__.py",))
    assert store._chunks.version >= version + 2
    table = _assert_current_equals_rebuilt(store)
    assert table.defining(["get_adapter"]) == [] and table.defining(["brand_new"])
    # A rename: the old path's rows go, the new path's come, in one write.
    _write(store, {"src/renamed.py": ["Renamed", "Renamed.run"]}, removed=("src/default/index.js",))
    _assert_current_equals_rebuilt(store)
    # A file emptied, then the same path written again, then many saves of one file in a row.
    _write(store, {"docs/request.md": []})
    _assert_current_equals_rebuilt(store)
    _write(store, {"docs/request.md": ["", ""]})
    _assert_current_equals_rebuilt(store)
    for i in range(6):
        _write(store, {f"bulk/m{i}.py": ["run", f"Task{i}.run", f"Task{i}", f"helper{i}"][: 2 + i % 3]})
        _assert_current_equals_rebuilt(store)


def test_a_write_that_is_not_a_save_rebuilds_the_table(tmp_path: Path) -> None:
    store = _store(tmp_path / "idx")
    store._names.build_now()
    _write(store, {"src/session.py": ["Session", "Session.request"]})
    _assert_current_equals_rebuilt(store)
    # Compaction moves every row: never patched; the next query starts a rebuild (and filters meanwhile).
    store.optimize()
    assert store._names._table is not None and store._names._table.version != store._chunks.version
    store._names.build_now()
    _assert_current_equals_rebuilt(store)
    # Another process's write (its own ChunkStore on the same index) is never patched here either.
    other = ChunkStore(tmp_path / "idx", dimension=DIM, fingerprint="names")
    _write(other, {"src/session.py": ["Session", "Session.request", "Session.send", "other_writer"]})
    stale = store._names._table
    assert stale is not None and stale.version != store._chunks.version  # a query would rebuild it
    # And our next save starts from a version our table does not describe: no patch on a stale table.
    _write(store, {"Request.cs": ["Request", "Request.Send", "Request.Cancel"]})
    assert store._names._table is stale and stale.version != store._chunks.version
    assert store.name_table() is None  # so the LanceDB filters answer while it is rebuilt, in the background
    deadline = time.monotonic() + 60
    while store._names._building and time.monotonic() < deadline:
        time.sleep(0.01)
    table = _assert_current_equals_rebuilt(store)
    assert table.defining(["other_writer"]) and table.defining(["cancel"])


def test_saves_during_a_rebuild_are_replayed_on_the_built_table(tmp_path: Path) -> None:
    store = _store(tmp_path / "idx")
    store.optimize()  # the table is rebuilt after a compaction; saves come in while its scan runs
    scanned = store._load_names()  # what the build's scan read, before the saves below
    names = store._names
    names._building = True  # a build is running: our saves must be logged for it
    _write(store, {"src/session.py": ["Session", "Session.request", "Session.receive", "merge_setting", "run"]})
    _write(store, {"rust/parser/mod.rs": ["Parser"], "new/thing.py": ["Thing"]}, removed=("Request.cs",))
    assert names._table is None
    names._load = lambda: scanned
    names.build_now()
    _assert_current_equals_rebuilt(store)


def test_a_shrinking_save_patches_its_blank_rows_version_too(tmp_path: Path, monkeypatch) -> None:
    """A file that shrinks changes in two commits: its surplus rows blank (under ``VANISHED_PATH``), then
    deleted. The table of the version in between is patched as well, so a query that reads that version
    takes it (no rebuild); it equals a rebuild of that version, and the look-ups find no blank row."""
    import engine.store as store_module

    store = _store(tmp_path / "idx")
    store._names.build_now()
    seen: list[int] = []
    real_fault_point = store_module.fault_point

    def at(name: str) -> None:
        real_fault_point(name)
        if name == "chunks.vanished":
            table = _assert_current_equals_rebuilt(store)
            blank = store.rows(f"path = '{store_module.VANISHED_PATH}'", columns=["id"])
            assert len(blank) == 3  # session.py went from 5 chunks to 2
            # Placeholders, so vector search leaves them out: the carried count says so without a recount.
            assert store.pending_count() == store._chunks.count_rows("tier = 0") == 3
            seen.append(table.version)

    monkeypatch.setattr(store_module, "fault_point", at)
    assert store.pending_count() == 0
    _write(store, {"src/session.py": ["Session", "Session.request"]})
    assert seen, "the shrink never took the blank-row path"
    table = _assert_current_equals_rebuilt(store)
    assert table.version > seen[0]
    assert not store.rows(f"path = '{store_module.VANISHED_PATH}'", columns=["id"])
    assert store._pending == (store._chunks.version, 0)  # no placeholder left, none recounted
