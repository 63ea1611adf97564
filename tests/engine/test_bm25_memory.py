"""A small index's BM25 from memory (engine/bm25.py) ranks as LanceDB's full-text index does.

Real model through llama.cpp, real LanceDB on disk. On an index as an index run leaves it (every row in
the FTS index) the in-memory search must return LanceDB's rows in LanceDB's order with its scores.
After each kind of save the name table is patched, not rebuilt, and must equal what LanceDB's index gives
once it covers the saved rows: LanceDB itself scores the rows a save appended by a flat scan with
statistics of its own and counts deleted rows until a compaction, so the reference is a copy of the
saved table with its FTS index built again (what ``ChunkStore.optimize`` converges to).
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import pytest

from engine.bm25 import LexicalIndex, index_token, query_tokens
from engine.config import EngineConfig
from engine.lexical import query_terms
from engine.names import NameTable, RowFilter
from engine.store import FTS_COLUMN, LANCE_DIR, ChunkStore, connect, fts_config
from engine.workspace import Workspace

EDITED = "python/checksum.py"
QUERIES = [
    "retry a request with backoff",
    "checksum of a file",
    "compute the crc32 checksum",
    "matrix multiply",
    "cache entries expire",
    "stack push pop",
    "format formats formatted string",  # one stem three times: LanceDB counts each
    "HTTPRetry",
    "lru cache eviction",
    "slugify a title",
    "zq_saved_helper value",
]
LIMIT = 40


@pytest.fixture
def indexed(workspace_copy: Path, tmp_path: Path, embedder) -> Workspace:
    ws = Workspace(workspace_copy, EngineConfig(index_dir=str(tmp_path / "index")), embedder=embedder)
    ws.index()
    return ws


def _queries(store: ChunkStore, seed: int) -> list[str]:
    """The fixed queries plus random draws of words from the chunks' own lexical terms."""
    rng = random.Random(seed)
    lexes = [r[FTS_COLUMN] for r in store.rows("true", columns=[FTS_COLUMN])]
    drawn = []
    for _ in range(40):
        words = rng.choice(lexes).split()
        drawn.append(" ".join(rng.sample(words, min(len(words), rng.randint(1, 8)))))
    return [" ".join(query_terms(q)) for q in QUERIES] + drawn


def _assert_same(mine: list[dict[str, Any]], lance: list[dict[str, Any]], query: str) -> None:
    """Same rows with the same scores (float32: 1e-4), in the same order except among equal scores."""
    assert len(mine) == len(lance), query
    for a, b in zip(mine, lance, strict=True):
        assert abs(a["_score"] - b["_score"]) <= 1e-4 * max(1.0, abs(b["_score"])), (query, a["id"], b["id"])

    def groups(rows: list[dict[str, Any]]) -> list[tuple[float, frozenset[str]]]:
        out: list[tuple[float, set[str]]] = []
        for row in rows:
            if out and abs(out[-1][0] - row["_score"]) <= 1e-4 * max(1.0, abs(row["_score"])):
                out[-1][1].add(row["id"])
            else:
                out.append((row["_score"], {row["id"]}))
        return [(round(score, 3), frozenset(ids)) for score, ids in out]

    cut = lambda rows: groups(rows)[:-1] if len(rows) == LIMIT else groups(rows)  # noqa: E731 - ties at the limit
    assert [ids for _, ids in cut(mine)] == [ids for _, ids in cut(lance)], query
    # What the search reads from a hit: the row's own columns, its lex text and row id.
    by_id = {row["id"]: row for row in lance}
    for row in mine:
        theirs = by_id.get(row["id"])
        if theirs is not None:
            assert row["lex"] == theirs["lex"] and row["_rowid"] == theirs["_rowid"], query
            assert (row["path"], row["start_line"], row["symbol"]) == (
                theirs["path"],
                theirs["start_line"],
                theirs["symbol"],
            )


def _compare(table: NameTable, search: Any, queries: list[str]) -> int:
    """Compare every query unfiltered and per language; the number of queries that found rows."""
    found = 0
    for query in queries:
        for language in (None, "python", "go"):
            mine = table.text_search(query, RowFilter(language=language), LIMIT)
            assert mine is not None
            where = f"language = '{language}'" if language else None
            _assert_same(mine, search(query, limit=LIMIT, where=where), f"{query} [{language}]")
            found += bool(mine)
    return found


def _reindexed_copy(store: ChunkStore, tmp_path: Path) -> Any:
    """A copy of the chunk table with its FTS index built again over every live row."""
    copy = tmp_path / f"copy-{len(list(tmp_path.glob('copy-*')))}"
    shutil.copytree(store.path / LANCE_DIR, copy)
    chunks = connect(copy).open_table("chunks")
    chunks.create_index(FTS_COLUMN, replace=True, config=fts_config())

    def search(query: str, *, limit: int, where: str | None) -> list[dict[str, Any]]:
        q = chunks.search(query, query_type="fts", fts_columns=FTS_COLUMN).limit(limit)
        if where:
            q = q.where(where, prefilter=True)
        columns = ["id", "path", "language", "symbol", "kind", "start_line", FTS_COLUMN, "_score"]
        rows: list[dict[str, Any]] = q.select(columns).with_row_id(True).to_list()
        return rows

    return search


def test_the_in_memory_bm25_ranks_as_lancedbs_index(indexed: Workspace) -> None:
    store = indexed.store
    table = store._names.build_now()
    assert table is not None and table.has_lexical
    found = _compare(table, lambda q, **kw: store.text_search(q, content=False, **kw), _queries(store, 1))
    assert found > 60  # the queries find rows: the comparison is not of empty lists


def test_after_every_kind_of_save_it_ranks_as_lancedbs_index_built_again(indexed: Workspace, tmp_path: Path) -> None:
    store = indexed.store
    assert store._names.build_now() is not None
    root = indexed.root
    target = root / EDITED
    lines = target.read_text().splitlines(keepends=True)
    last_def = max(i for i, line in enumerate(lines) if line.startswith("def "))
    saves = [
        # grown: a new function (new rows appended, the file's old rows replaced)
        lambda: target.write_text(target.read_text() + "\n\ndef zq_saved_helper(value):\n    return value * 41 + 1\n"),
        # shrunk: the last function gone (rows deleted)
        lambda: target.write_text("".join(lines[:last_def])),
        # a new file
        lambda: (root / "python" / "formats.py").write_text(
            "def format_title(title):\n    '''Format a title as a slug.'''\n    return title.lower()\n"
        ),
        # a deleted file
        lambda: (root / "web" / "strings.js").unlink(),
    ]
    paths = [[EDITED], [EDITED], ["python/formats.py"], ["web/strings.js"]]
    for save, saved in zip(saves, paths, strict=True):
        save()
        indexed.update_files(saved)
        table = store.name_table()
        assert table is not None and table.version == store.chunk_version()
        assert table is store._names._table and table.has_lexical  # patched, not rebuilt or dropped
        _compare(table, _reindexed_copy(store, tmp_path), _queries(store, len(saved[0])))
        # and a rebuilt table (a scan) equals the patched one, postings included
        assert NameTable(*store._load_names()).snapshot() == table.snapshot()


def test_the_analyzer_is_lancedbs(tmp_path: Path) -> None:
    """Tokens of 64 bytes or more are dropped (bytes, not characters), the rest lower-cased and stemmed;
    a dropped token does not count in the document's length."""
    import pyarrow as pa

    a63, a64 = "a" * 62 + "b", "a" * 63 + "b"
    e63, e64 = "é" * 31 + "b", "é" * 32  # 63 and 64 bytes
    docs = [f"x {a63}", f"x {a64}", f"x {e63}", f"x {e64}", "X Running RUNS runner", "ÉCOLE école", "", "x x x"]
    assert index_token(a63) is not None and index_token(a64) is None
    assert index_token(e63) is not None and index_token(e64) is None
    assert query_tokens("Running RUNS formats") == ["run", "run", "format"]
    db = connect(tmp_path / "lance")
    table = db.create_table("docs", pa.table({"id": [str(i) for i in range(len(docs))], "lex": docs}))
    table.create_index("lex", config=fts_config())
    index = LexicalIndex.of(pa.array(docs))
    import numpy as np

    for query in [a63, a64, e63, "run", "école", "ÉCOLE", "x", "x run", "runner runs", "nothing"]:
        lance = table.search(query, query_type="fts", fts_columns="lex").limit(10).select(["id", "_score"]).to_list()
        positions, scores = index.search(query, None, np.ones(len(docs), dtype=bool), 10)
        mine = [{"id": str(p), "_score": float(s)} for p, s in zip(positions.tolist(), scores.tolist(), strict=True)]
        assert sorted((r["id"], round(r["_score"], 4)) for r in mine) == sorted(
            (r["id"], round(r["_score"], 4)) for r in lance
        ), query
