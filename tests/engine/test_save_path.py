"""A one-file save (issue 11): exactly that file's rows change, in one commit, through the indexed path.

Real model through llama.cpp, real LanceDB on disk. The crash side of the same path is in
tests/reliability/test_crash.py (the ``save`` scene: a kill at each of its commit boundaries).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import engine.store as store_module
from engine.config import EngineConfig
from engine.errors import ModelError
from engine.records import text_hash
from engine.row_ids import take_over_ids
from engine.workspace import Workspace

EDITED = "python/checksum.py"


def make_ws(root: Path, index_dir: Path, embedder) -> Workspace:
    return Workspace(root, EngineConfig(index_dir=str(index_dir)), embedder=embedder)


def rows_by_path(ws: Workspace) -> dict[str, list[dict[str, Any]]]:
    """Every chunk row (with its id and vector), grouped by path, in line order."""
    table = ws.store._chunks.to_arrow()
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in table.to_pylist():
        row["vector"] = np.asarray(row["vector"], dtype=np.float32)
        grouped.setdefault(row["path"], []).append(row)
    for rows in grouped.values():
        rows.sort(key=lambda r: (r["start_line"], r["end_line"], r["id"]))
    return grouped


def same_rows(a: list[dict[str, Any]], b: list[dict[str, Any]], *, ids: bool = True, tolerance: float = 0.9999) -> bool:
    skip = {"vector"} | (set() if ids else {"id"})
    if [{k: v for k, v in r.items() if k not in skip} for r in a] != [
        {k: v for k, v in r.items() if k not in skip} for r in b
    ]:
        return False
    # llama.cpp's vector of a text depends slightly on what shares its batch (tests/engine/test_tiers_pipeline.py).
    return all(float(np.dot(x["vector"], y["vector"])) > tolerance for x, y in zip(a, b, strict=True))


def rebuilt(root: Path, tmp_path: Path, embedder) -> dict[str, list[dict[str, Any]]]:
    ws = make_ws(root, tmp_path / f"rebuild-{len(list(tmp_path.iterdir()))}", embedder)
    ws.index()
    return rows_by_path(ws)


@pytest.fixture
def indexed(workspace_copy: Path, tmp_path: Path, embedder) -> Workspace:
    ws = make_ws(workspace_copy, tmp_path / "index", embedder)
    ws.index()
    return ws


def _append_function(root: Path) -> str:
    target = root / EDITED
    target.write_text(target.read_text() + "\n\ndef zq_saved_helper(value):\n    return value * 41 + 1\n")
    return EDITED


def test_a_save_changes_exactly_the_saved_files_rows(indexed: Workspace, tmp_path: Path, embedder) -> None:
    before = rows_by_path(indexed)
    version = indexed.store._chunks.version
    _append_function(indexed.root)
    stats = indexed.update_files([EDITED])
    assert stats.files_indexed == 1 and stats.chunks_embedded == 1  # only the new function's text
    after = rows_by_path(indexed)
    assert set(after) == set(before)
    for path in before:
        if path != EDITED:  # every other file: the very same rows, ids and vectors
            assert same_rows(after[path], before[path]), path
    assert len(after[EDITED]) == len(before[EDITED]) + 1
    # The saved file's rows are what a clean rebuild of the new text gives, ids included.
    assert same_rows(after[EDITED], rebuilt(indexed.root, tmp_path, embedder)[EDITED])
    # One commit for the rows, one for the manifest, one for the embedding cache (no delete, no rewrite).
    assert indexed.store._chunks.version == version + 1
    assert indexed.check().ok
    assert indexed.search("zq_saved_helper", limit=3)[0].symbol == "zq_saved_helper"


def test_the_ids_of_a_file_are_its_path_and_ordinals(indexed: Workspace) -> None:
    rows = rows_by_path(indexed)[EDITED]
    assert [r["id"] for r in rows] == [text_hash(f"{EDITED}\0{i}") for i in range(len(rows))]


def test_a_save_that_shrinks_a_file_drops_its_surplus_rows(indexed: Workspace, tmp_path: Path, embedder) -> None:
    target = indexed.root / EDITED
    before = rows_by_path(indexed)[EDITED]
    lines = target.read_text().splitlines(keepends=True)
    # Drop the last function: fewer chunks than before, so some rows must be deleted.
    last_def = max(i for i, line in enumerate(lines) if line.startswith("def "))
    target.write_text("".join(lines[:last_def]))
    indexed.update_files([EDITED])
    after = rows_by_path(indexed)[EDITED]
    assert 0 < len(after) < len(before)
    assert same_rows(after, rebuilt(indexed.root, tmp_path, embedder)[EDITED])
    assert indexed.check().ok


def test_a_shrinking_save_joins_no_whole_table_and_no_search_sees_its_blank_rows(
    indexed: Workspace, tmp_path: Path, embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The surplus rows of a file that shrank are blanked in the rows' commit and deleted by id next, not
    by the whole-table merge (1.5 s and +350 MB at 179K rows). Between the two commits a search sees the
    file's new version only: no old text of it, and no blank row, by meaning, words or name."""
    from lancedb.merge import LanceMergeInsertBuilder

    whole_table: list[str] = []
    real_delete_clause = LanceMergeInsertBuilder.when_not_matched_by_source_delete

    def spy(self: Any, condition: Any = None) -> Any:
        whole_table.append(str(condition))
        return real_delete_clause(self, condition)

    monkeypatch.setattr(LanceMergeInsertBuilder, "when_not_matched_by_source_delete", spy)
    target = indexed.root / EDITED
    lines = target.read_text().splitlines(keepends=True)
    last_def = max(i for i, line in enumerate(lines) if line.startswith("def "))
    dropped = lines[last_def].split("(")[0].removeprefix("def ").strip()
    kept = next(line for line in lines[:last_def] if line.startswith("def ")).split("(")[0].removeprefix("def ")
    target.write_text("".join(lines[:last_def]))
    seen: list[list[Any]] = []
    real_fault_point = store_module.fault_point

    def at(name: str) -> None:
        real_fault_point(name)
        if name == "chunks.vanished":
            assert indexed.store.rows(f"path = '{store_module.VANISHED_PATH}'", columns=["id"])  # blank, not gone
            for query in (dropped, kept, "checksum of a file", "def", ""):
                if query:
                    seen.append(indexed.search(query, limit=20))
            seen.append([r["path"] for r in indexed.store.vector_search(embedder.embed_query(kept), limit=200)])

    monkeypatch.setattr(store_module, "fault_point", at)
    indexed.update_files([EDITED])
    assert seen, "the shrink never took the blank-row path"
    assert not whole_table
    *hits, nearest = seen
    assert store_module.VANISHED_PATH not in nearest
    for found in hits:
        assert all(h.path != store_module.VANISHED_PATH for h in found)
        assert not any(h.path == EDITED and h.symbol == dropped for h in found)  # the old version is gone
    assert any(h.path == EDITED for h in hits[1])  # the new one is there
    assert not indexed.store.rows(f"path = '{store_module.VANISHED_PATH}'", columns=["id"])
    assert same_rows(rows_by_path(indexed)[EDITED], rebuilt(indexed.root, tmp_path, embedder)[EDITED])
    assert indexed.check().ok


def test_a_save_next_to_a_deleted_file_and_folder(indexed: Workspace, tmp_path: Path, embedder) -> None:
    _append_function(indexed.root)
    (indexed.root / "web" / "strings.js").unlink()
    shutil.rmtree(indexed.root / "go")
    stats = indexed.update_files([EDITED, "web/strings.js", "go"])
    assert stats.files_deleted == 2
    got = rows_by_path(indexed)
    assert "web/strings.js" not in got and "go/matrix.go" not in got
    assert {"web/strings.js", "go/matrix.go"}.isdisjoint(indexed.indexed_paths())
    reference = rebuilt(indexed.root, tmp_path, embedder)
    assert got.keys() == reference.keys()
    assert all(same_rows(got[p], reference[p]) for p in got)
    assert indexed.check().ok


def test_rows_of_the_older_id_scheme_are_taken_over(
    workspace_copy: Path, tmp_path: Path, embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    def old_chunk_id(chunk, ordinal: int = 0) -> str:  # semcode before this change: lines and text too
        return text_hash(f"{chunk.path}\0{ordinal}\0{chunk.start_line}\0{chunk.end_line}\0{chunk.hash}")

    ws = make_ws(workspace_copy, tmp_path / "index", embedder)
    with monkeypatch.context() as patch:
        patch.setattr(store_module, "chunk_id", old_chunk_id)
        ws.index()
    old_ids = {r["id"] for r in rows_by_path(ws)[EDITED]}
    _append_function(workspace_copy)
    ws.update_files([EDITED])
    rows = rows_by_path(ws)[EDITED]
    assert old_ids <= {r["id"] for r in rows}  # every old row overwritten in place, none deleted
    assert same_rows(rows, rebuilt(workspace_copy, tmp_path, embedder)[EDITED], ids=False)
    assert ws.check().ok  # no duplicate ids, counts and file hashes agree


def test_writes_look_rows_up_through_scalar_indexes(indexed: Workspace) -> None:
    store = indexed.store
    indexed_columns = {
        name: {idx.columns[0]: idx.index_type for idx in table.list_indices()}
        for name, table in (("chunks", store._chunks), ("files", store._files), ("cache", store._embeddings))
    }
    assert indexed_columns["chunks"]["id"] == indexed_columns["chunks"]["path"] == "BTree"
    assert indexed_columns["files"]["path"] == indexed_columns["cache"]["text_hash"] == "BTree"


def test_take_over_ids() -> None:
    old = {"a": {"a0", "a1", "x"}, "b": {"b0", "b1"}}
    # "a": x vanished, a2 is new: a2's row takes over x. "b" grew: nothing to take over.
    got = take_over_ids(["a", "a", "a", "b", "b", "b"], ["a0", "a1", "a2", "b0", "b1", "b2"], old)
    assert got == ["a0", "a1", "x", "b0", "b1", "b2"]
    # "a" shrank below its old row count: only a delete removes the surplus.
    assert take_over_ids(["a"], ["a0"], old) is None
    assert take_over_ids([], [], {"a": {"a0"}}) is None
    assert take_over_ids(["c"], ["c0"], {}) == ["c0"]


def test_large_index_maintenance_runs_in_a_child_process(
    workspace_copy: Path, tmp_path: Path, embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine import maintenance

    monkeypatch.setattr(store_module, "MAINTENANCE_CHILD_MIN_ROWS", 0)  # any size counts as large here
    ran: list[tuple[str, bool]] = []

    def recorded(lance_dir: Path, operation: str, params: dict[str, Any], preempt: Any = None) -> bool:
        done = maintenance.in_child(lance_dir, operation, params, preempt)
        ran.append((operation, done))
        return done

    ws = Workspace(
        workspace_copy, EngineConfig(index_dir=str(tmp_path / "index"), vector_index_min_rows=1), embedder=embedder
    )
    ws.open().store.maintainer = recorded
    ws.index()
    assert ("ivf", True) in ran and ("optimize", True) in ran
    assert ws.store.has_vector_index()
    assert {idx.columns[0] for idx in ws.store._chunks.list_indices()} >= {"lex", "vector", "id", "path"}
    assert ws.check().ok
    assert ws.search("swap rows and columns of a matrix", limit=3)[0].path == "go/matrix.go"
    _append_function(workspace_copy)  # and a save still lands after the child's commits
    ws.update_files([EDITED])
    assert ws.search("zq_saved_helper", limit=3)[0].symbol == "zq_saved_helper"


def test_a_full_reindex_builds_its_indexes_anew_in_children_before_the_compaction(
    workspace_copy: Path, tmp_path: Path, embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``index --full`` over a large index: every row is new, so the vector and full-text indexes cover
    none of them. Each is built anew in a child of its own, then the compaction (chunk table alone, then
    the small tables) only remaps them: one segment each, every row indexed, nothing lost."""
    from engine import maintenance

    monkeypatch.setattr(store_module, "MAINTENANCE_CHILD_MIN_ROWS", 0)  # any size counts as large here
    ran: list[tuple[str, Any, bool]] = []

    def recorded(lance_dir: Path, operation: str, params: dict[str, Any], preempt: Any = None) -> bool:
        done = maintenance.in_child(lance_dir, operation, params, preempt)
        ran.append((operation, params.get("tables"), done))
        return done

    ws = Workspace(
        workspace_copy, EngineConfig(index_dir=str(tmp_path / "index"), vector_index_min_rows=1), embedder=embedder
    )
    ws.open().store.maintainer = recorded
    ws.index()
    before = ws.search("swap rows and columns of a matrix", limit=5)
    chunks = ws.store.count_chunks()
    ran.clear()
    stats = ws.index(full=True)
    assert stats.chunks_embedded == 0 and stats.chunks_cached == chunks  # every vector from the cache
    assert ran == [
        ("fts", None, True),
        ("ivf", None, True),
        ("optimize", ["chunks"], True),
        ("optimize", ["files", "embeddings"], True),
    ]
    table = ws.store._chunks
    for name in ("lex_idx", "vector_idx"):
        index = table.index_stats(name)
        assert index is not None and index.num_unindexed_rows == 0 and index.num_indexed_rows == chunks
        assert index.num_indices == 1  # built anew, not a delta beside an index of deleted rows
    assert table.stats()["fragment_stats"]["num_fragments"] == 1
    assert ws.check().ok and ws.store.count_chunks() == chunks
    after = ws.search("swap rows and columns of a matrix", limit=5)
    assert [(h.path, h.start_line) for h in after] == [(h.path, h.start_line) for h in before]
    _append_function(workspace_copy)  # and a save still lands after the children's commits
    ws.update_files([EDITED])
    assert ws.search("zq_saved_helper", limit=3)[0].symbol == "zq_saved_helper"


def test_a_server_compacts_after_the_save_that_made_it_due(indexed: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    """Once, after the saves: the compaction waits for a quiet spell (``COMPACT_QUIET_S`` without a save)."""
    import time

    import engine.host
    from engine.host import IndexHost

    monkeypatch.setattr(store_module, "COMPACT_EVERY_WRITES", 2)
    monkeypatch.setattr(engine.host, "COMPACT_QUIET_S", 5.0)  # longer than any gap between the saves below
    host = IndexHost(indexed)
    try:
        host.wait_open()
        store = indexed.store
        due: list[bool] = []
        compact = store.compact_if_due

        def observed(preempt: Any = None) -> None:  # the compaction job: it finds the flag the save left
            due.append(store.compaction_due)
            compact(preempt)

        monkeypatch.setattr(store, "compact_if_due", observed)
        for n in range(4):  # saves of one file: each one write, every second one makes compaction due
            (indexed.root / EDITED).write_text(
                (indexed.root / EDITED).read_text() + f"\n\ndef zq{n}():\n    return {n}\n"
            )
            host.update_files([EDITED])
            assert not due  # not inside a save, nor between saves
        deadline = time.monotonic() + 60
        while not due and time.monotonic() < deadline:  # a hang guard: the quiet spell is 5 s
            time.sleep(0.05)
        host.submit(lambda: None).result(timeout=60)  # the write thread ran what was queued behind the saves
        assert due == [True] and not store.compaction_due  # once, after the saves that made it due
        assert indexed.check().ok
        assert indexed.search("zq3", limit=3)[0].symbol == "zq3"
    finally:
        host.close()


def test_a_saves_new_chunks_are_embedded_on_the_interactive_path(
    workspace_copy: Path, tmp_path: Path, embedder
) -> None:
    from collections.abc import Iterable, Iterator, Sequence

    from engine.models.base import Embedder

    class Recording(Embedder):
        """The real model; notes which path document texts take."""

        def __init__(self) -> None:
            self.info = embedder.info
            self.calls: list[tuple[str, int]] = []

        def _embed_texts(self, texts: Sequence[str]) -> np.ndarray:
            return embedder._embed_texts(texts)

        def count_tokens(self, text: str) -> int:
            return embedder.count_tokens(text)

        def embed_batch(self, texts: Iterable[str], *, batch_size: int | None = None) -> Iterator[np.ndarray]:
            texts = list(texts)
            self.calls.append(("batch", len(texts)))
            yield from embedder.embed_batch(texts, batch_size=batch_size)

        def embed_interactive(self, texts: Sequence[str]) -> np.ndarray:
            self.calls.append(("interactive", len(texts)))
            return embedder.embed_interactive(texts)

    recording = Recording()
    ws = make_ws(workspace_copy, tmp_path / "index", recording)
    ws.index()
    assert recording.calls and all(kind == "batch" for kind, _ in recording.calls)  # indexing: the index worker
    recording.calls.clear()
    before = rows_by_path(ws)[EDITED]
    # The model fails while the save reads the embedding cache (its new text is embedded meanwhile):
    # the save fails with the model's error and the file's rows stay as they were.
    failing = ModelError("the query worker died")
    recording.embed_interactive = lambda texts: (_ for _ in ()).throw(failing)  # type: ignore[method-assign]
    _append_function(workspace_copy)
    with pytest.raises(ModelError):
        ws.update_files([EDITED])
    assert same_rows(rows_by_path(ws)[EDITED], before)
    del recording.embed_interactive
    ws.update_files([EDITED])
    assert recording.calls == [("interactive", 1)]  # the save's one new chunk, on the query worker
    assert ws.search("zq_saved_helper", limit=3)[0].symbol == "zq_saved_helper"


def test_repeated_saves_of_one_file_read_back_what_they_wrote(indexed: Workspace, tmp_path: Path, embedder) -> None:
    """A save keeps the manifest entry and the row ids it wrote, so the next save of the same file
    reads neither again; each save must still leave what a clean rebuild leaves, and a write made by
    anyone else in between (another process, the dense tier) must make it read again."""
    target = indexed.root / EDITED
    original = target.read_text()
    versions = [
        original + "\n\ndef zq_one(value):\n    return value + 1\n",  # grew
        original + "\n\ndef zq_two(value):\n    return value + 2\n",  # same length, other text
        original + "\n\ndef zq_two(value):\n    return value + 2\n\n\ndef zq_three():\n    return 3\n",
        original,  # shrank: surplus rows blanked, then deleted
    ]
    for n, text in enumerate(versions):
        target.write_text(text)
        indexed.update_files([EDITED])
        store = indexed.store
        assert store._own_manifest is not None and EDITED in store._own_manifest[1]  # kept for the next save
        assert store._own_rows is not None and EDITED in store._own_rows[1]
        if n == 1:  # another writer (its own store on the same index) changes the file's rows meanwhile
            other = make_ws(indexed.root, tmp_path / "index", embedder)
            target.write_text(text + "\n\ndef zq_other():\n    return 0\n")
            other.update_files([EDITED])
            target.write_text(text)
            indexed.update_files([EDITED])  # our kept rows and entry describe older versions: read again
        got = rows_by_path(indexed)
        reference = rebuilt(indexed.root, tmp_path, embedder)
        assert got.keys() == reference.keys()
        # A text embedded alone (a save) and in a rebuild's batch: 0.99989 seen for zq_one's vector.
        assert same_rows(got[EDITED], reference[EDITED], tolerance=0.999), n
        assert indexed.check().ok, n
    target.unlink()
    indexed.update_files([EDITED])
    assert EDITED not in rows_by_path(indexed) and EDITED not in indexed.indexed_paths()
    assert indexed.check().ok


def test_a_save_prepared_during_its_debounce_only_writes(indexed: Workspace, tmp_path: Path, embedder) -> None:
    """``prepare_update`` (a server calls it on didSave, before the debounce) chunks the file and embeds its
    new chunk ahead; the re-index then takes both from memory. A text changed after its preparation is
    chunked and embedded again: what is kept is only ever used for the exact text it was made from.
    Vectors compare at 0.999: a text embedded alone (ahead, or a save) and in a rebuild's batch differ a
    little, more with the AVX-512 kernels of the dispatch build (as in the test above)."""
    _append_function(indexed.root)
    indexed.prepare_update([EDITED])
    indexed.save_ahead.wait([EDITED])
    stats = indexed.update_files([EDITED])
    assert stats.files_indexed == 1 and stats.chunks_embedded == 0  # embedded ahead, not by the re-index
    assert indexed.search("zq_saved_helper", limit=3)[0].symbol == "zq_saved_helper"
    assert same_rows(rows_by_path(indexed)[EDITED], rebuilt(indexed.root, tmp_path, embedder)[EDITED], tolerance=0.999)
    # Prepared, then changed again before the re-index: the later text is what gets indexed.
    target = indexed.root / EDITED
    target.write_text(target.read_text() + "\n\ndef zq_prepared_only():\n    return 1\n")
    indexed.prepare_update([EDITED])
    indexed.save_ahead.wait([EDITED])
    target.write_text(target.read_text().replace("zq_prepared_only", "zq_written_later"))
    stats = indexed.update_files([EDITED])
    assert stats.chunks_embedded == 1
    symbols = {r["symbol"] for r in rows_by_path(indexed)[EDITED]}
    assert "zq_written_later" in symbols and "zq_prepared_only" not in symbols
    assert same_rows(rows_by_path(indexed)[EDITED], rebuilt(indexed.root, tmp_path, embedder)[EDITED], tolerance=0.999)
    assert indexed.check().ok
    # Prepared, then another writer (its own store on the same index) changes the file's rows: the rows the
    # preparation read describe an older table version, and the re-index reads them again.
    indexed.prepare_update([EDITED])
    indexed.save_ahead.wait([EDITED])
    ahead = indexed.store._ahead_rows
    assert ahead is not None and EDITED in ahead[1]
    other = make_ws(indexed.root, tmp_path / "index", embedder)
    prepared_text = target.read_text()
    target.write_text(prepared_text + "\n\ndef zq_other_one():\n    return 2\n\n\ndef zq_other_two():\n    return 3\n")
    other.update_files([EDITED])  # two rows more than the preparation read: stale ids would leave one behind
    target.write_text(prepared_text + "\n\ndef zq_ours_again():\n    return 4\n")
    indexed.store._chunks.checkout_latest()  # this process sees the other's commit (a reader's refresh)
    indexed.update_files([EDITED])
    assert same_rows(rows_by_path(indexed)[EDITED], rebuilt(indexed.root, tmp_path, embedder)[EDITED], tolerance=0.999)
    assert indexed.check().ok
