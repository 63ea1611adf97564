"""The in-memory name table answers the symbol/file look-ups exactly as the LanceDB filters do
(real LanceDB on disk; the look-ups need no model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.names import NameTable
from engine.ranking import RankingOptions, analyse_query
from engine.records import Chunk
from engine.search import LOOKUP_DEFINITIONS, Searcher, SearchFilters
from engine.store import ChunkStore, FileRecord

DIM = 8
FILES = {
    "src/session.py": ["Session", "Session.request", "Session.send", "merge_setting", "run"],
    "src/adapters/__init__.py": ["get_adapter", "HTTPAdapter.send", "run"],
    "src/default/index.js": ["defaults", "$defaults", "run"],
    "src/default/config.ts": ["Config", "Config.load", "run"],
    "lua/picker.lua": ["Picker", "Picker:find", "Picker:get_selection"],
    "rust/parser/mod.rs": ["Parser", "Parser.parse", "run"],
    "lib/jquery.ui/widget.js": ["widget", "Widget.create"],
    "Request.cs": ["Request", "Request.Send"],
    "docs/request.md": [""],
    "tests/test_session.py": ["test_request", "run"],
}
# Many definitions of one name, more than the look-up's limit: which ones are kept must match too.
BULK = {f"bulk/m{i}.py": ["run", f"Task{i}.run", f"Task{i}"] for i in range(60)}
QUERIES = [
    "Session", "request", "send", "get_adapter", "HTTPAdapter", "defaults", "find", "Picker:find",
    "parse", "Parser", "widget", "jquery", "Request", "run", "Task7.run", "merge_setting",
    "how the Session sends a request", "default configuration of the parser", "where are widgets created",
    "adapters for the transport", "Request.Send", "nothing matches this", "x",
]  # fmt: skip


def _store(path: Path) -> ChunkStore:
    store = ChunkStore(path, dimension=DIM, fingerprint="names")
    rng = np.random.default_rng(5)
    for files in (FILES, BULK):
        records, chunks = [], []
        for f, (file, symbols) in enumerate(files.items()):
            language = "python" if file.endswith(".py") else file.rsplit(".", 1)[-1]
            kinds = ["class" if s[:1].isupper() and "." not in s else "function" for s in symbols]
            records.append(FileRecord(file, 1, f, f"h{file}", len(symbols)))
            chunks += [
                Chunk(file, language, i * 5, i * 5 + 4, f"{s} body {i}", symbol=s, kind=k)
                for i, (s, k) in enumerate(zip(symbols, kinds, strict=True))
            ]
        vectors = rng.normal(size=(len(chunks), DIM)).astype(np.float32)
        store.replace_files(records, chunks, vectors, [c.content for c in chunks])
    return store


def _both(searcher: Searcher, table: NameTable, query: str, filters: SearchFilters) -> tuple[list[str], list[str]]:
    info, options, columns = analyse_query(query), RankingOptions(), ["id", "path", "symbol"]
    in_memory = searcher._lookup_in_table(table, info, filters, options, None, columns)
    assert in_memory is not None
    filtered = searcher._lookup_filtered(info, filters, options, None, columns)
    return [r["id"] for r in in_memory], [r["id"] for r in filtered]


@pytest.mark.parametrize(
    "filters",
    [SearchFilters(), SearchFilters(language="python"), SearchFilters(path="src/**"), SearchFilters(kind="class")],
)
def test_in_memory_lookup_returns_the_rows_the_store_filters_return(tmp_path: Path, filters: SearchFilters) -> None:
    store = _store(tmp_path / "idx")
    table = store._names.build_now()
    assert table is not None and table.rows == store.count_chunks()
    searcher = Searcher(store, embedder=None)  # type: ignore[arg-type]  # look-ups only
    nonempty = 0
    for query in QUERIES:
        in_memory, filtered = _both(searcher, table, query, filters)
        assert in_memory == filtered, query
        nonempty += bool(filtered)
    assert nonempty >= 8  # the fixture exercises the filters, not only empty answers
    # 125 chunks define "run", more than the look-up keeps: the same first 100, in the same order.
    in_memory, filtered = _both(searcher, table, "run", SearchFilters())
    assert len(filtered) == LOOKUP_DEFINITIONS and in_memory == filtered


def test_a_write_is_patched_in_and_compaction_is_caught(tmp_path: Path) -> None:
    store = _store(tmp_path / "idx")
    table = store._names.build_now()
    assert store.name_table() is table
    searcher = Searcher(store, embedder=None)  # type: ignore[arg-type]
    store.replace_files(
        [FileRecord("src/session.py", 2, 99, "h2", 1)],
        [Chunk("src/session.py", "python", 0, 3, "class Session: pass", symbol="Session", kind="class")],
        np.ones((1, DIM), dtype=np.float32),
        ["session"],
    )
    # Our own write: the table of the new version is patched in at once (tests/engine/test_name_patch.py).
    rebuilt = store.name_table()
    assert rebuilt is not None and rebuilt is not table and rebuilt.version == store._chunks.version
    in_memory, filtered = _both(searcher, rebuilt, "Session", SearchFilters())
    assert in_memory == filtered and len(filtered) >= 1
    # Compaction moves rows: row ids of the old table no longer name the same rows. The look-up
    # notices and reports it (None) instead of answering with other rows.
    store.optimize()
    info = analyse_query("run")
    stale = searcher._lookup_in_table(rebuilt, info, SearchFilters(), RankingOptions(), None, ["id", "path"])
    fresh = searcher._lookup_filtered(info, SearchFilters(), RankingOptions(), None, ["id", "path"])
    assert stale is None or [r["id"] for r in stale] == [r["id"] for r in fresh]
