"""The whole engine on a real workspace: real GGUF model through llama.cpp, real LanceDB on disk."""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from engine.config import EngineConfig
from engine.errors import ConfigError, IndexLockedError
from engine.records import Chunk
from engine.search import SearchFilters
from engine.store import ChunkStore, FileRecord
from engine.workspace import Workspace

INDEXED = {
    "python/http_retry.py",
    "python/checksum.py",
    "web/strings.js",
    "web/cache.ts",
    "go/matrix.go",
    "rust/stack.rs",
}


@pytest.fixture
def workspace(workspace_copy: Path, tmp_path: Path, embedder) -> Workspace:
    return Workspace(workspace_copy, EngineConfig(index_dir=str(tmp_path / "index")), embedder=embedder)


def top(ws: Workspace, query: str, **kwargs) -> tuple[str, str]:
    hit = ws.search(query, limit=5, **kwargs)[0]
    return hit.path, hit.symbol


def test_index_then_search_finds_the_right_function_in_each_language(workspace: Workspace) -> None:
    stats = workspace.index()
    assert stats.files_indexed == len(INDEXED)
    assert stats.chunks_embedded == stats.chunks_total > 0
    assert set(workspace.store.manifest()) == INDEXED  # ignored, vendored, secret and .log files are not
    assert top(workspace, "retry an HTTP request with exponential backoff") == (
        "python/http_retry.py",
        "RetryingClient.request_with_backoff",
    )
    assert top(workspace, "compute the CRC32 checksum of a file") == ("python/checksum.py", "crc32_of_file")
    assert top(workspace, "convert a title into a URL slug") == ("web/strings.js", "slugify")
    assert top(workspace, "least recently used cache eviction")[0] == "web/cache.ts"
    assert top(workspace, "swap rows and columns of a matrix") == ("go/matrix.go", "Transpose")


def test_results_carry_location_symbol_and_explanation(workspace: Workspace) -> None:
    workspace.index()
    hit = workspace.search("parse the key value pairs of a query string", limit=3)[0]
    assert (hit.path, hit.symbol, hit.kind, hit.language) == (
        "python/http_retry.py",
        "parse_query_string",
        "function",
        "python",
    )
    lines = (workspace.root / hit.path).read_text().splitlines()
    assert lines[hit.start_line].startswith("def parse_query_string")
    assert lines[hit.end_line].strip() == "return pairs"
    assert "def parse_query_string" in hit.preview
    assert 0 < hit.score <= 1 and hit.semantic_score is not None
    assert "semantic" in hit.why


def test_nothing_is_written_inside_the_workspace(workspace: Workspace) -> None:
    before = sorted(p for p in workspace.root.rglob("*"))
    workspace.index()
    assert sorted(p for p in workspace.root.rglob("*")) == before


def test_reindex_embeds_nothing_when_nothing_changed(workspace: Workspace) -> None:
    first = workspace.index()
    second = workspace.index()
    assert second.files_indexed == 0
    assert second.files_unchanged == first.files_indexed
    assert second.chunks_embedded == 0
    assert second.chunks_total == first.chunks_total


def test_touching_a_file_without_changing_it_does_not_rechunk(workspace: Workspace) -> None:
    workspace.index()
    path = workspace.root / "python/checksum.py"
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 5_000_000_000))
    stats = workspace.index()
    assert (stats.files_indexed, stats.chunks_embedded, stats.files_unchanged) == (0, 0, len(INDEXED))
    assert workspace.store.manifest()["python/checksum.py"].mtime_ns == path.stat().st_mtime_ns


def test_changing_one_function_embeds_only_that_chunk(workspace: Workspace) -> None:
    workspace.index()
    path = workspace.root / "python/checksum.py"
    path.write_text(path.read_text().replace("return round(result, 2)", "return round(result, 3)"))
    stats = workspace.index()
    assert stats.files_indexed == 1
    assert stats.chunks_embedded == 1  # celsius_to_fahrenheit only; crc32_of_file comes from the cache
    assert stats.chunks_cached >= 1
    hit = workspace.search("convert celsius to fahrenheit", limit=1)[0]
    assert "round(result, 3)" in hit.preview


def test_update_files_handles_created_changed_and_deleted_files(workspace: Workspace) -> None:
    workspace.index()
    (workspace.root / "python/geometry.py").write_text(
        "import math\n\n\ndef area_of_circle(radius):\n    squared = radius * radius\n    return math.pi * squared\n"
    )
    (workspace.root / "web/strings.js").unlink()
    stats = workspace.update_files(["python/geometry.py", str(workspace.root / "web/strings.js")])
    assert (stats.files_indexed, stats.files_deleted) == (1, 1)
    assert top(workspace, "area of a circle from its radius") == ("python/geometry.py", "area_of_circle")
    assert all(h.path != "web/strings.js" for h in workspace.search("slugify a title", limit=20))
    assert "web/strings.js" not in workspace.store.manifest()


def test_bad_source_files_are_skipped_with_a_log_line(workspace: Workspace, caplog) -> None:
    root = workspace.root
    (root / "binary.py").write_bytes(b"\x00\x01\x02 not text" * 10)
    (root / "latin1.py").write_bytes(b"name = '\xe9t\xe9'\n")
    (root / "huge.py").write_text("x = 1\n" * 400_000)
    (root / "dangling.py").symlink_to(root / "does-not-exist.py")
    config = EngineConfig(index_dir=workspace.config.index_dir, max_file_size=1_000_000)
    ws = Workspace(root, config, embedder=workspace.embedder)
    with caplog.at_level(logging.INFO, logger="engine"):
        stats = ws.index()
    reasons = dict(stats.skipped)
    assert reasons["binary.py"] == "binary file"
    assert reasons["latin1.py"].startswith("not valid UTF-8")
    assert reasons["huge.py"].startswith("larger than max_file_size")
    assert "dangling.py" not in ws.store.manifest()
    assert "binary.py" in caplog.text and "latin1.py" in caplog.text
    assert set(ws.store.manifest()) == INDEXED
    assert ws.check().ok


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_is_skipped(workspace: Workspace) -> None:
    secret = workspace.root / "python/private.py"
    secret.write_text("def hidden():\n    return 1\n")
    secret.chmod(0)
    stats = workspace.index()
    assert dict(stats.skipped)["python/private.py"] == "permission denied"


def test_file_deleted_while_indexing_is_dropped_cleanly(workspace: Workspace) -> None:
    victim = workspace.root / "web/strings.js"

    def delete_on_first_report(progress) -> None:
        if victim.exists():
            victim.unlink()

    stats = workspace.index(progress=delete_on_first_report)
    assert "web/strings.js" not in workspace.store.manifest()
    assert stats.files_indexed == len(INDEXED) - 1
    assert workspace.check().ok


def test_cancel_keeps_the_index_consistent_and_resumable(workspace: Workspace) -> None:
    cancel = threading.Event()
    cancel.set()  # cancelled before the first file: nothing written, nothing half-written
    stats = workspace.index(cancel=cancel)
    assert stats.cancelled and workspace.store.count_chunks() == 0
    assert workspace.check().ok
    resumed = workspace.index()
    assert resumed.files_indexed == len(INDEXED) and workspace.check().ok


def test_filters_by_language_kind_path_and_min_score(workspace: Workspace) -> None:
    workspace.index()
    query = "remove the oldest entry"
    assert {h.language for h in workspace.search(query, limit=10, filters=SearchFilters(language="rust"))} == {"rust"}
    assert {h.kind for h in workspace.search(query, limit=10, filters=SearchFilters(kind="method"))} == {"method"}
    assert {h.path for h in workspace.search(query, limit=10, filters=SearchFilters(path="web/**"))} <= {
        "web/cache.ts",
        "web/strings.js",
    }
    assert {h.path for h in workspace.search(query, limit=10, filters=SearchFilters(path="*.go"))} == {"go/matrix.go"}
    strict = workspace.search(query, limit=10, filters=SearchFilters(min_score=0.99))
    assert strict == []
    with pytest.raises(ConfigError):
        workspace.search("   ")
    with pytest.raises(ConfigError):
        workspace.search("x", limit=0)


def test_find_similar_excludes_the_selection(workspace: Workspace) -> None:
    (workspace.root / "python/convert.py").write_text(
        "def kelvin_to_celsius(kelvin):\n    shifted = kelvin - 273.15\n    return round(shifted, 2)\n"
    )
    workspace.index()
    hits = workspace.find_similar("python/convert.py", 0, 0)  # cursor in the function
    assert hits and all(h.path != "python/convert.py" for h in hits)
    assert hits[0].symbol == "celsius_to_fahrenheit"


def test_replacing_a_file_is_atomic_for_readers(tmp_path: Path, embedder) -> None:
    store = ChunkStore(tmp_path / "idx", dimension=embedder.info.dimension, fingerprint="atomic")
    dim = embedder.info.dimension
    rng = np.random.default_rng(0)

    def version(n: int) -> tuple[list[Chunk], np.ndarray]:
        chunks = [
            Chunk("a.py", "python", i * 3, i * 3 + 2, f"def f{n}_{i}(): pass", symbol=f"f{n}_{i}", kind="function")
            for i in range(n)
        ]
        vectors = rng.normal(size=(n, dim)).astype(np.float32)
        return chunks, vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    seen: set[int] = set()
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            seen.add(len(store.rows("path = 'a.py'", columns=["id"])))

    chunks, vectors = version(3)
    store.replace_files([FileRecord("a.py", 1, 1, "h3", 3)], chunks, vectors, ["x"] * 3)
    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for round_ in range(12):
            n = 5 if round_ % 2 == 0 else 3
            chunks, vectors = version(n)
            store.replace_files([FileRecord("a.py", 1, round_, f"h{n}", n)], chunks, vectors, ["x"] * n)
    finally:
        stop.set()
        thread.join()
    assert seen <= {3, 5} and seen  # never both versions (8) and never neither (0)


def test_integrity_check_finds_and_repairs_injected_damage(workspace: Workspace) -> None:
    workspace.index()
    store = workspace.store
    dim = workspace.embedder.info.dimension
    # LanceDB refuses NaN on write, so damage looks like what a broken model or disk leaves: zeros.
    zero_chunk = Chunk("python/nan.py", "python", 0, 1, "def broken(): pass", symbol="broken", kind="function")
    (workspace.root / "python/nan.py").write_text("def broken(): pass\n")
    store.replace_files(
        [FileRecord("python/nan.py", 1, 1, "h", 1)], [zero_chunk], np.zeros((1, dim), dtype=np.float32), ["broken"]
    )
    (workspace.root / "rust/stack.rs").unlink()  # rows whose file is gone
    store._files.delete("path = 'go/matrix.go'")  # rows without a manifest entry
    report = workspace.check()
    assert not report.ok
    assert report.bad_vectors and "rust/stack.rs" in report.orphan_paths
    assert "go/matrix.go" in report.orphan_paths and report.dimension_ok
    repaired = workspace.check(repair=True)
    assert repaired.repaired and workspace.check().ok
    stats = workspace.index()  # the repaired files are embedded again
    assert {"python/nan.py", "go/matrix.go"} <= set(store.manifest())
    assert stats.files_indexed == 2 and workspace.check().ok
    assert top(workspace, "swap rows and columns of a matrix") == ("go/matrix.go", "Transpose")


def test_a_different_model_rebuilds_the_index(tmp_path: Path) -> None:
    first = ChunkStore(tmp_path / "idx", dimension=4, fingerprint="model-a", model_name="a")
    vector = np.ones((1, 4), dtype=np.float32) / 2
    chunk = Chunk("a.py", "python", 0, 0, "x")
    first.replace_files([FileRecord("a.py", 1, 1, "h", 1)], [chunk], vector, ["x"], new_vectors={chunk.hash: vector[0]})
    assert first.rebuilt_reason is None and first.count_chunks() == 1
    second = ChunkStore(tmp_path / "idx", dimension=8, fingerprint="model-b", model_name="b")
    # A reader of another model reads nothing and touches nothing; its first write rebuilds.
    assert second.stale_reason == "the embedding model changed (was a)" and second.rebuilt_reason is None
    assert second.count_chunks() == 0 and second.count_files() == 0 and first.count_chunks() == 1
    with second.writer():
        pass
    assert second.rebuilt_reason == "the embedding model changed (was a)"
    assert second.count_chunks() == 0 and second.count_files() == 0


def test_one_writer_at_a_time(workspace: Workspace) -> None:
    workspace.index()
    with workspace.store.writer(), pytest.raises(IndexLockedError, match="another semcode process"):
        other = ChunkStore(
            workspace.store.path,
            dimension=workspace.embedder.info.dimension,
            fingerprint=workspace.embedder.info.fingerprint,
        )
        with other.writer():  # a second handle stands for a second process: flock is per open file
            pass


def test_memory_pressure_shrinks_batches_but_indexes_the_same(workspace: Workspace, tmp_path: Path) -> None:
    tight = Workspace(
        workspace.root, EngineConfig(index_dir=str(tmp_path / "tight"), memory_limit_mb=1), embedder=workspace.embedder
    )
    assert tight.monitor.batch_size(32) == 4  # RSS is far above 1 MB: critical pressure
    stats = tight.index()
    normal = workspace.index()
    assert stats.chunks_total == normal.chunks_total
    query = "retry an HTTP request with exponential backoff"
    assert top(tight, query) == top(workspace, query)


def test_a_different_chunker_version_rebuilds_the_index(tmp_path: Path) -> None:
    first = ChunkStore(tmp_path / "idx", dimension=4, fingerprint="m", chunker_version=1)
    vector = np.ones((1, 4), dtype=np.float32) / 2
    chunk = Chunk("a.py", "python", 0, 0, "x")
    first.replace_files([FileRecord("a.py", 1, 1, "h", 1)], [chunk], vector, ["x"], new_vectors={chunk.hash: vector[0]})
    again = ChunkStore(tmp_path / "idx", dimension=4, fingerprint="m", chunker_version=1)
    assert again.rebuilt_reason is None and again.count_chunks() == 1
    upgraded = ChunkStore(tmp_path / "idx", dimension=4, fingerprint="m", chunker_version=2)
    upgraded.clear()  # any write takes the write lock, which rebuilds
    assert upgraded.rebuilt_reason == "this semcode version splits code into chunks differently"
    assert upgraded.count_files() == 0  # so every file is chunked again
    # The vectors are the model's, not the chunker's: the cache survives, so unchanged texts embed nothing.
    text_hash = chunk.hash
    assert np.allclose(upgraded.cached_vectors([text_hash])[text_hash], vector[0])
    meta = tmp_path / "idx" / "meta.json"
    meta.write_text(json.dumps(json.loads(meta.read_text()) | {"schema": -1}))
    reformatted = ChunkStore(tmp_path / "idx", dimension=4, fingerprint="m", chunker_version=2)
    reformatted.clear()
    assert reformatted.cached_vectors([text_hash]) == {}  # another format: nothing on disk is trusted
    assert not (tmp_path / "idx" / "cache.carry").exists()
