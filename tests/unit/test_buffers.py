"""Unsaved buffers searched in place of their files (engine.buffers): fake embedder, real LanceDB."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.buffers import UnsavedBuffers
from engine.search import SearchFilters
from engine.workspace import Workspace

NEW_FUNCTION = (
    "\n\ndef zorblax_quantum_flange(widgets):\n"
    '    """Polish every widget with the quantum flange."""\n'
    "    return [w.flange() for w in widgets]\n"
)


@pytest.fixture
def indexed(workspace: Workspace) -> Workspace:
    workspace.index()
    return workspace


def buffer_hits(ws: Workspace, query: str, **kwargs) -> list:
    return [h for h in ws.search(query, **kwargs) if h.source == "buffer"]


def test_typed_function_is_found_lexically_at_once_then_semantically(indexed: Workspace, fake_embedder) -> None:
    path = indexed.root / "net/retry.py"
    text = path.read_text() + NEW_FUNCTION
    indexed.buffers.debounce = 3600  # still typing: no vector for the new chunk yet
    assert indexed.buffers.update(path, text)
    hits = indexed.search("zorblax_quantum_flange", limit=5)
    assert hits[0].symbol == "zorblax_quantum_flange" and hits[0].source == "buffer"
    assert hits[0].semantic_score is None and hits[0].lexical_score  # lexical tier only, for now
    # The unchanged function's vector came from the cache: only the new chunk waits for the model.
    assert indexed.buffers.summary() == {"documents": 1, "chunks": 2, "pending": 1}
    # The disk copy of the file is not searched while its buffer is: retry_request comes from the buffer.
    retry = indexed.search("retry an HTTP request with exponential backoff", limit=3)
    assert [h.source for h in retry if h.path == "net/retry.py"] == ["buffer"]

    indexed.buffers.debounce = 0  # a pause in typing
    indexed.buffers.update(path, text)
    assert indexed.buffers.wait_idle(10)
    hit = indexed.search("polish widget quantum flange", limit=1)[0]
    assert (hit.symbol, hit.source) == ("zorblax_quantum_flange", "buffer") and hit.semantic_score is not None
    assert indexed.buffers.summary()["pending"] == 0

    indexed.buffers.discard(path)  # closed without saving
    assert not buffer_hits(indexed, "zorblax_quantum_flange")
    assert all(h.symbol != "zorblax_quantum_flange" for h in indexed.search("polish widget quantum flange"))
    assert any(h.symbol == "retry_request" for h in indexed.search("retry an HTTP request with exponential backoff"))


def test_a_buffer_is_scored_with_the_full_text_index_stemmer(indexed: Workspace) -> None:
    """``frobnicating`` finds an unsaved ``frobnicate``: the index's Snowball stemmer, not a suffix strip."""
    path = indexed.root / "net/retry.py"
    indexed.buffers.debounce = 3600  # lexical only: the buffer's BM25 alone can find it
    assert indexed.buffers.update(path, path.read_text() + "\n\ndef frobnicate(things):\n    return things\n")
    hits = buffer_hits(indexed, "frobnicating", limit=5)
    assert hits and hits[0].symbol == "frobnicate" and hits[0].lexical_score
    assert hits[0].matched_terms == ("frobnicating",)


def test_a_buffer_the_index_holds_is_not_searched_or_kept(indexed: Workspace) -> None:
    path = indexed.root / "net/retry.py"
    assert indexed.buffers.update(path, path.read_text())  # didOpen of an unmodified file
    assert not buffer_hits(indexed, "retry request")
    assert indexed.buffers.summary()["documents"] == 0 and indexed.buffers.text("net/retry.py") is None
    # Edits undone: back to the index's text, back to the index's rows.
    indexed.buffers.update(path, path.read_text() + NEW_FUNCTION)
    assert buffer_hits(indexed, "zorblax_quantum_flange")
    indexed.buffers.update(path, path.read_text())
    assert not buffer_hits(indexed, "zorblax_quantum_flange")


def test_save_hands_over_to_the_index_without_embedding_again(indexed: Workspace, fake_embedder) -> None:
    path = indexed.root / "net/retry.py"
    text = path.read_text() + NEW_FUNCTION
    indexed.buffers.update(path, text)
    indexed.search("zorblax_quantum_flange")
    assert indexed.buffers.wait_idle(10)
    batches = fake_embedder.batches
    path.write_text(text)  # didSave, then the server re-indexes the file
    stats = indexed.update_files(["net/retry.py"])
    assert stats.chunks_embedded == 0 and fake_embedder.batches == batches  # the buffer's vector was reused
    assert indexed.buffers.wait_idle(10)
    hits = indexed.search("zorblax_quantum_flange", limit=1)
    assert (hits[0].symbol, hits[0].source) == ("zorblax_quantum_flange", "index")
    assert indexed.buffers.summary()["documents"] == 0


def test_workspace_symbols_come_from_the_buffer(indexed: Workspace) -> None:
    path = indexed.root / "text/slug.py"
    indexed.buffers.update(path, path.read_text().replace("def slugify(", "def slugify_title("))
    found = indexed.symbols("slugify")
    assert [(h.symbol, h.source) for h in found][:1] == [("slugify_title", "buffer")]
    assert all(h.symbol != "slugify" for h in found)  # the disk copy's name is gone with the edit


def test_a_new_unsaved_file_is_searched(indexed: Workspace) -> None:
    assert indexed.buffers.update(indexed.root / "net/flange.py", NEW_FUNCTION)
    hits = buffer_hits(indexed, "zorblax_quantum_flange")
    assert hits and hits[0].path == "net/flange.py"
    # Filters apply to buffers as to the index.
    assert buffer_hits(indexed, "zorblax_quantum_flange", filters=SearchFilters(path="net/"))
    assert not buffer_hits(indexed, "zorblax_quantum_flange", filters=SearchFilters(language="javascript"))
    assert not buffer_hits(indexed, "zorblax_quantum_flange", filters=SearchFilters(path="text/**"))


def test_buffers_the_index_would_skip_are_never_searched(indexed: Workspace, tmp_path: Path) -> None:
    root = indexed.root
    (root / ".gitignore").write_text("generated/\n")
    (root / "generated").mkdir()
    outside = tmp_path / "elsewhere.py"
    key = "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----\n"
    assert not indexed.buffers.update(outside, NEW_FUNCTION)
    outside.write_text(NEW_FUNCTION)
    (root / "net/link.py").symlink_to(outside)  # inside by name, outside in fact
    assert not indexed.buffers.update(root / "net/link.py", NEW_FUNCTION)
    assert not indexed.buffers.update(root / "generated/out.py", NEW_FUNCTION)
    assert not indexed.buffers.update(root / "node_modules/x.py", NEW_FUNCTION)
    assert not indexed.buffers.update(root / "net/huge.py", NEW_FUNCTION + "#" * indexed.config.max_file_size)
    assert indexed.buffers.update(root / "net/keys.py", NEW_FUNCTION + key)  # the path is fine, the text is not
    assert indexed.buffers.update(root / "net/binary.py", NEW_FUNCTION + "\0")
    assert not buffer_hits(indexed, "zorblax_quantum_flange")
    assert indexed.buffers.summary()["documents"] == 0
    # A buffer that grows past the limit stops being searched.
    path = root / "net/retry.py"
    indexed.buffers.update(path, path.read_text() + NEW_FUNCTION)
    assert buffer_hits(indexed, "zorblax_quantum_flange")
    indexed.buffers.update(path, path.read_text() + NEW_FUNCTION + "#" * indexed.config.max_file_size)
    assert not buffer_hits(indexed, "zorblax_quantum_flange")


def test_memory_is_bounded(indexed: Workspace) -> None:
    buffers = UnsavedBuffers(indexed, max_documents=2, max_bytes=10_000)
    for name in ("a", "b", "c"):
        assert buffers.update(indexed.root / f"net/{name}.py", f"def only_in_{name}():\n    return 1\n")
    assert sorted(buffers.view().paths) == ["net/b.py", "net/c.py"]  # the least recently changed went
    buffers.update(indexed.root / "net/d.py", "x = 1\n" * 1665)  # 9990 bytes: only it fits
    assert buffers.view().paths == ("net/d.py",)
    buffers.close()


def test_find_similar_uses_the_unsaved_selection(indexed: Workspace) -> None:
    path = indexed.root / "text/slug.py"
    twin = "\n\ndef make_slug(heading):\n    words = heading.lower().split()\n    return '-'.join(words)\n"
    text = path.read_text() + twin
    indexed.buffers.update(path, text)
    assert indexed.buffers.wait_idle(10)
    lines = text.splitlines()
    start = lines.index("def make_slug(heading):")
    # Cursor in the new function (only the buffer has it): its chunk is the query, itself excluded.
    hits = indexed.find_similar(str(path), start + 1, start + 1)
    assert hits and (hits[0].symbol, hits[0].source) == ("slugify", "buffer")
    assert all(h.symbol != "make_slug" for h in hits)
    # A selection, as the language server sends it with the buffer's lines.
    hits = indexed.find_similar(str(path), start, start + 2)
    assert hits[0].symbol == "slugify"
    assert indexed.buffers.chunk_at("text/slug.py", start + 1).symbol == "make_slug"


def test_on_a_shared_snapshot_the_snapshot_counts_as_the_index(
    indexed: Workspace, fake_embedder, tmp_path: Path
) -> None:
    import shutil

    from engine.config import EngineConfig
    from engine.shared_index import SharedWorkspace, publish

    publish(indexed.store, str(tmp_path / "snapshots"), root=indexed.root)
    clone = tmp_path / "clone"
    shutil.copytree(indexed.root, clone)
    config = EngineConfig(index_dir=str(tmp_path / "clone-index"), shared_index=str(tmp_path / "snapshots"))
    ws = SharedWorkspace(clone, config, embedder=fake_embedder)
    ws.index()
    path = clone / "net/retry.py"
    ws.buffers.update(path, path.read_text())  # opened, unmodified: the snapshot holds this text
    assert ws.buffers.view().paths == ()
    ws.buffers.update(path, path.read_text() + NEW_FUNCTION)
    hits = [h for h in ws.search("zorblax_quantum_flange") if h.source == "buffer"]
    assert hits and hits[0].symbol == "zorblax_quantum_flange"
