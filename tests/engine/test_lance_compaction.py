"""The maintenance child's compaction through pylance (engine/lance_compaction.py), on a real LanceDB table:
the same table as LanceDB's ``optimize`` leaves, readable and writable by LanceDB afterwards."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from engine import lance_compaction, store

lance = pytest.importorskip("lance")

DIM = 16
ROWS_PER_WRITE = 400
WRITES = 6
WORDS = ["retry", "socket", "parser", "render", "cookie", "token", "schema", "stream"]


def _batch(start: int, rng: np.random.Generator) -> pa.Table:
    ids = [f"c{start + i}" for i in range(ROWS_PER_WRITE)]
    vectors = rng.standard_normal((ROWS_PER_WRITE, DIM)).astype(np.float32)
    lex = [f"{WORDS[(start + i) % 8]} {WORDS[(start + 3 * i) % 8]} n{i}" for i in range(ROWS_PER_WRITE)]
    return pa.table(
        {
            "id": ids,
            "path": [f"f{(start + i) // 10}.py" for i in range(ROWS_PER_WRITE)],
            "lex": lex,
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), DIM),
        }
    )


@pytest.fixture
def fragmented(tmp_path: Path) -> Path:
    """A chunk-like table of several fragments with deleted rows and every kind of index the store builds."""
    from lancedb.index import IvfSq

    rng = np.random.default_rng(7)
    lance_dir = tmp_path / "a"
    db = store.connect(lance_dir)
    table = db.create_table(store.CHUNKS, _batch(0, rng))
    table.create_scalar_index("id")
    table.create_scalar_index("path")
    table.create_index("lex", config=store.fts_config())
    table.create_index("vector", config=IvfSq(distance_type="cosine", num_partitions=4))
    for write in range(1, WRITES):
        table.add(_batch(write * ROWS_PER_WRITE, rng))
    table.delete("path IN ('f3.py', 'f77.py', 'f150.py')")
    return lance_dir


def _answers(lance_dir: Path) -> dict[str, object]:
    table = store.connect(lance_dir).open_table(store.CHUNKS)
    every = table.search().select(["id", "vector"]).with_row_id(True).limit(100_000).to_arrow()
    id_of_row = dict(zip(every["_rowid"].to_pylist(), every["id"].to_pylist(), strict=True))
    answers: dict[str, object] = {"rows": table.count_rows(), "ids": sorted(id_of_row.values())}
    row_ids_agree = True
    for i in range(0, len(every), 97):
        query = np.asarray(every["vector"][i].as_py(), dtype=np.float32)
        hits = table.search(query).nprobes(4).limit(10).select(["id"]).with_row_id(True).to_arrow()
        answers[f"vector{i}"] = hits["id"].to_pylist()
        pairs = zip(hits["_rowid"].to_pylist(), hits["id"].to_pylist(), strict=True)
        row_ids_agree &= all(id_of_row[row] == chunk_id for row, chunk_id in pairs)
    for word in WORDS:
        hits = table.search(word, query_type="fts", fts_columns="lex").limit(1000).select(["id"]).to_arrow()
        answers[f"fts {word}"] = sorted(hits["id"].to_pylist())
    answers["path"] = sorted(table.search().where("path = 'f40.py'").select(["id"]).to_arrow()["id"].to_pylist())
    answers["id"] = table.search().where("id = 'c1234'").select(["id"]).to_arrow()["id"].to_pylist()
    answers["row ids agree"] = row_ids_agree
    answers["unindexed"] = {idx.name: table.index_stats(idx.name).num_unindexed_rows for idx in table.list_indices()}
    return answers


def test_pylance_compaction_leaves_the_table_lancedbs_optimize_leaves(fragmented: Path, tmp_path: Path) -> None:
    if lance_compaction.matching_lance() is None:
        pytest.skip("pylance is not the Lance of this LanceDB")
    by_lance = tmp_path / "b"
    shutil.copytree(fragmented, by_lance)
    store.connect(fragmented).open_table(store.CHUNKS).optimize(cleanup_older_than=store.CLEANUP_AGE)
    assert lance_compaction.compact(by_lance / f"{store.CHUNKS}.lance", cleanup_older_than=store.CLEANUP_AGE)

    fragments = [len(lance.dataset(str(d / f"{store.CHUNKS}.lance")).get_fragments()) for d in (fragmented, by_lance)]
    assert fragments[1] == fragments[0] < WRITES  # the same fragments (one with few deletions is kept)
    expected = _answers(fragmented)
    assert expected["row ids agree"]
    assert expected["unindexed"] == {"id_idx": 0, "path_idx": 0, "lex_idx": 0, "vector_idx": 0}
    assert _answers(by_lance) == expected

    # LanceDB writes and optimizes the table after it as after its own compaction (the deferred remap's
    # fragment-reuse index is LanceDB's to fold in).
    for lance_dir in (fragmented, by_lance):
        table = store.connect(lance_dir).open_table(store.CHUNKS)
        table.delete("path = 'f41.py'")
        table.add(_batch(10_000, np.random.default_rng(8)))
        table.optimize(cleanup_older_than=store.CLEANUP_AGE)
    assert _answers(by_lance) == _answers(fragmented)


def test_a_pylance_of_another_lance_is_not_used(
    fragmented: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    monkeypatch.setattr(lance_compaction, "LANCE_OF_LANCEDB", {})
    lance_compaction.matching_lance.cache_clear()
    request.addfinalizer(lance_compaction.matching_lance.cache_clear)  # the next test checks the real pairs anew
    path = fragmented / f"{store.CHUNKS}.lance"
    version = lance.dataset(str(path)).version
    assert not lance_compaction.compact(path, cleanup_older_than=store.CLEANUP_AGE)
    assert lance.dataset(str(path)).version == version  # nothing written: the caller optimizes through LanceDB
