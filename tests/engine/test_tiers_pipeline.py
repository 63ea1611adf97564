"""Searchable at once (issue 11): the lexical tier first for the whole workspace, the dense tier after.

Real model through llama.cpp, real LanceDB on disk. ``GatedEmbedder`` is the real model with a gate in
front of document batches, so a test can hold the dense tier at a known point; queries are not gated.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

import engine.indexer
from engine.config import EngineConfig
from engine.host import IndexHost
from engine.indexer import Indexer
from engine.models.base import Embedder
from engine.records import IndexProgress
from engine.store import TIER_MODEL, TIER_PLACEHOLDER
from engine.workspace import Workspace

REPO = Path(__file__).resolve().parents[2]
FILES = 6  # indexable files of the fixture workspace (tests/engine/test_pipeline.py: INDEXED)


class GatedEmbedder(Embedder):
    """The real embedder; every document batch first waits for ``gate`` (open by default)."""

    def __init__(self, real: Embedder) -> None:
        self.real = real
        self.info = real.info
        self.gate = threading.Event()
        self.gate.set()
        self.waiting = threading.Event()  # set once a document batch waited at the gate
        self.document_calls = 0

    def _embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return self.real._embed_texts(texts)

    def count_tokens(self, text: str) -> int:
        return self.real.count_tokens(text)

    def cap(self, text: str) -> str:
        return self.real.cap(text)

    def _wait_at_gate(self) -> None:
        self.document_calls += 1
        if not self.gate.is_set():
            self.waiting.set()
            assert self.gate.wait(120), "the test never opened the gate"

    @property
    def pack_capacity(self) -> int | None:
        return self.real.pack_capacity  # the same packing plans as the real embedder's

    def embed_batch(self, texts: Iterable[str], *, batch_size: int | None = None) -> Iterator[np.ndarray]:
        self._wait_at_gate()
        yield from self.real.embed_batch(texts, batch_size=batch_size)

    def embed_packed(
        self, texts: Sequence[str], *, batch_size: int | None = None
    ) -> Iterator[tuple[Sequence[int], np.ndarray]]:
        if self.pack_capacity:  # else the base class goes through embed_batch, which waits there
            self._wait_at_gate()
        yield from super().embed_packed(texts, batch_size=batch_size)  # planned here, embedded by the real one


@pytest.fixture
def gated(embedder) -> GatedEmbedder:
    return GatedEmbedder(embedder)


def make_ws(root: Path, index_dir: Path, embedder: Embedder) -> Workspace:
    return Workspace(root, EngineConfig(index_dir=str(index_dir)), embedder=embedder)


def blocking_index(root: Path, index_dir: Path, embedder: Embedder) -> Workspace:
    """The index as it was built before the tiers: every chunk embedded before its batch is written."""
    ws = make_ws(root, index_dir, embedder).open()
    with ws.store.writer():
        Indexer(ws.root, ws.config, ws.store, ws.embedder).index_all(embed=True)
        ws.store.ensure_indexes(vector_index_min_rows=ws.config.vector_index_min_rows)
    assert ws.store.pending_count() == 0
    return ws


def dump(ws: Workspace) -> tuple[list[dict], np.ndarray]:
    """Every chunk row (all columns but the vector) in id order, and the vectors in that order."""
    table = ws.store._chunks.to_arrow().sort_by("id")
    column = table["vector"].combine_chunks()
    vectors = column.flatten().to_numpy(zero_copy_only=False).reshape(len(column), -1)
    return table.drop_columns(["vector"]).to_pylist(), vectors


def assert_same_index(ws: Workspace, reference: Workspace, *, same_batches: bool = True) -> None:
    """Same rows and manifest; vectors within 1e-6 when the texts were embedded in the same batches.

    llama.cpp's result for a text depends slightly on what shares its batch (measured: up to 2.4e-3
    per component for a text embedded alone vs. with five others, cosine > 0.9999), exactly as an
    incremental save differs from a full rebuild in the old blocking pipeline. A test whose batches
    differ from a from-scratch build by construction (``same_batches=False``) checks the cosine.
    """
    rows, vectors = dump(ws)
    ref_rows, ref_vectors = dump(reference)
    assert rows == ref_rows
    if same_batches:
        assert np.abs(vectors - ref_vectors).max() < 1e-6
    else:
        assert (vectors * ref_vectors).sum(axis=1).min() > 0.9999
    assert ws.store.manifest().keys() == reference.store.manifest().keys()
    assert {p: r.content_hash for p, r in ws.store.manifest().items()} == {
        p: r.content_hash for p, r in reference.store.manifest().items()
    }


def wait_for(predicate, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def test_lexical_and_symbol_search_answer_before_any_embedding(workspace_copy: Path, tmp_path: Path, gated) -> None:
    gated.gate.clear()  # any document embedding would hang here (and fail the test after 120 s)
    ws = make_ws(workspace_copy, tmp_path / "index", gated)
    stats = ws.index(embed=False)
    assert not gated.waiting.is_set() and gated.document_calls == 0
    assert stats.files_indexed == FILES and stats.chunks_embedded == 0
    assert stats.chunks_pending == stats.chunks_total == ws.count_chunks() > 0
    assert ws.check().ok  # placeholder zeros are fine on tier-0 rows
    hits = ws.search("crc32_of_file", limit=3)
    assert hits[0].path == "python/checksum.py" and hits[0].symbol == "crc32_of_file"
    assert hits[0].semantic_score is None and hits[0].lexical_score is not None  # the lexical tier answered
    assert all(h.semantic_score is None for h in ws.search("exponential backoff retry", limit=10))
    assert ws.store.vector_search(gated.embed_query("retry"), limit=10) == []  # never a placeholder
    assert [h.symbol for h in ws.symbols("slugify", limit=5)][:1] == ["slugify"]
    status = ws.status()
    assert status["pending_chunks"] == stats.chunks_total
    host = IndexHost(ws)
    host.open()
    partial, note = host.partial_note()
    assert partial and f"embedding 0 of {stats.chunks_total} chunks" in note


def test_background_embedding_ends_equal_to_a_blocking_index(
    workspace_copy: Path, tmp_path: Path, gated, embedder
) -> None:
    gated.gate.clear()
    ws = make_ws(workspace_copy, tmp_path / "index", gated)
    host = IndexHost(ws)
    host.prioritize([workspace_copy / "web/cache.ts", tmp_path / "elsewhere.py"])  # an editor opened these
    assert host._priority == ["web/cache.ts"]
    future = host.start()
    wait_for(gated.waiting.is_set)  # phase 1 is done, the dense tier waits at the gate
    assert host.state == "indexing" and host.progress is not None and host.progress.stage == "vectors"
    partial, note = host.partial_note()
    assert partial and "embedding 0 of" in note and "lexical and symbol results cover every file" in note
    assert ws.search("crc32_of_file", limit=1)[0].path == "python/checksum.py"  # answers between the phases
    assert host.status()["pending_chunks"] == ws.count_chunks()
    gated.gate.set()
    stats = future.result(300)
    assert stats is not None and not stats.cancelled and stats.chunks_pending == 0
    assert stats.chunks_embedded == stats.chunks_total == ws.count_chunks()
    assert host.state == "ready" and host.partial_note() == (False, None) and host.status()["pending_chunks"] == 0
    assert ws.check().ok
    assert_same_index(ws, blocking_index(workspace_copy, tmp_path / "blocking", embedder))
    hit = ws.search("compute the CRC32 checksum of a file", limit=1)[0]
    assert hit.symbol == "crc32_of_file" and hit.semantic_score is not None


def test_an_edit_during_background_embedding_is_not_lost(workspace_copy: Path, tmp_path: Path, gated, embedder) -> None:
    gated.gate.clear()
    ws = make_ws(workspace_copy, tmp_path / "index", gated)
    host = IndexHost(ws)
    future = host.start()
    wait_for(gated.waiting.is_set)
    path = workspace_copy / "python/checksum.py"
    old_hash = ws.store.manifest()["python/checksum.py"].content_hash
    path.write_text(path.read_text().replace("return round(result, 2)", "return round(result, 3)"))
    saved = host.submit(lambda: host.update_files(["python/checksum.py"]))  # a save, as the LSP queues it
    gated.gate.set()
    assert saved.result(300).files_indexed == 1
    stats = future.result(300)
    assert stats is not None and stats.chunks_pending == 0 and host.state == "ready"
    assert ws.check().ok
    rows = ws.store.rows("path = 'python/checksum.py'", columns=["content", "file_hash", "tier"])
    assert any("round(result, 3)" in r["content"] for r in rows)
    assert {r["file_hash"] for r in rows} != {old_hash} and {r["tier"] for r in rows} == {TIER_MODEL}
    # The save embedded the edited chunk on its own; a from-scratch build embeds it with the others.
    assert_same_index(ws, blocking_index(workspace_copy, tmp_path / "blocking", embedder), same_batches=False)


def test_vectors_of_a_file_reindexed_meanwhile_never_come_back(workspace_copy: Path, tmp_path: Path, embedder) -> None:
    ws = make_ws(workspace_copy, tmp_path / "index", embedder)
    ws.index(embed=False)
    stale = ws.store.rows(f"path = 'python/checksum.py' AND tier = {TIER_PLACEHOLDER}", columns=["id", "text_hash"])
    assert stale
    path = workspace_copy / "python/checksum.py"
    path.write_text(path.read_text().replace("return round(result, 2)", "return round(result, 3)"))
    ws.update_files(["python/checksum.py"])  # embeds inline: the file's rows are tier 2 now
    before = dump(ws)
    noise = np.random.default_rng(1).normal(size=(len(stale), embedder.info.dimension)).astype(np.float32)
    updated = ws.store.set_vectors([r["id"] for r in stale], [r["text_hash"] for r in stale], noise)
    assert updated == 0
    after = dump(ws)
    assert after[0] == before[0] and np.array_equal(after[1], before[1])
    assert ws.check().ok
    ws.embed_pending()
    assert ws.pending_chunks() == 0 and ws.check().ok
    # The save embedded the edited chunk on its own, the dense tier the others without it.
    assert_same_index(ws, blocking_index(workspace_copy, tmp_path / "blocking", embedder), same_batches=False)


def test_the_dense_tier_takes_open_files_then_recent_ones_first(
    workspace_copy: Path, tmp_path: Path, embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = make_ws(workspace_copy, tmp_path / "index", embedder)
    ages = {"go/matrix.go": 10, "rust/stack.rs": 20, "web/strings.js": 30}  # seconds before now
    now = time.time()
    for rel, age in ages.items():
        os.utime(workspace_copy / rel, (now - age, now - age))
    for rel in ("python/http_retry.py", "python/checksum.py", "web/cache.ts"):
        os.utime(workspace_copy / rel, (now - 1000, now - 1000))
    ws.index(embed=False)
    monkeypatch.setattr(engine.indexer, "EMBED_WRITE_ROWS", 1)  # one file per batch, so the order shows
    order: list[str] = []

    def record(p: IndexProgress) -> None:
        assert p.stage == "vectors"
        order.append(p.current)

    stats = ws.embed_pending(record, priority=["web/cache.ts"])
    assert stats.chunks_pending == 0 and len(order) == FILES
    assert order[:4] == ["web/cache.ts", "go/matrix.go", "rust/stack.rs", "web/strings.js"]
    assert ws.check().ok


def test_a_kill_during_the_dense_tier_leaves_a_consistent_index(
    workspace_copy: Path, tmp_path: Path, embedder, default_model_path: Path
) -> None:
    env = dict(os.environ, SEMCODE_FAULT_AT="vectors.before", PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "semcode.cli", "index", str(workspace_copy), "--index-dir", str(tmp_path / "index")]
    result = subprocess.run(cmd, env=env, capture_output=True, timeout=600, cwd=REPO)
    assert result.returncode == 137, result.stderr.decode()[-2000:]
    ws = make_ws(workspace_copy, tmp_path / "index", embedder)
    assert ws.check().ok  # phase 1 committed every file; every row is a placeholder or a model vector
    assert ws.pending_chunks() == ws.count_chunks() > 0
    assert ws.search("crc32_of_file", limit=1)[0].path == "python/checksum.py"
    stats = ws.index()  # nothing changed on disk: the next run only fills in the placeholders
    assert stats.files_indexed == 0 and stats.chunks_pending == 0
    # The embedding cache commits before the rows: the killed run's work is not lost.
    assert (stats.chunks_embedded, stats.chunks_cached) == (0, ws.count_chunks())
    assert ws.check().ok
    assert_same_index(ws, blocking_index(workspace_copy, tmp_path / "blocking", embedder))
