"""Phase 1's speed-ups (issue 11) change nothing but the time: real tokenizer, real LanceDB."""

from __future__ import annotations

import random
import string
from pathlib import Path

import numpy as np
import pytest

from engine.chunking import chunk_file
from engine.chunking.chunker import _Chunker
from engine.config import EngineConfig
from engine.workspace import Workspace

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "chunking"
REPO = Path(__file__).resolve().parents[2]


def test_the_no_tokenizer_shortcut_never_claims_a_text_fits_that_does_not(embedder) -> None:
    rng = random.Random(7)
    chunker = _Chunker("a.py", "python", "", 64, embedder.count_tokens, 40, 8)
    alphabets = [string.punctuation, string.ascii_letters + " ", string.printable, '\t\n !"#', "a1_." * 3]
    checked = 0
    for _ in range(3000):
        alphabet = rng.choice(alphabets)
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80)))
        for limit in (16, 32, 64):
            if chunker._surely_under(text, limit):
                checked += 1
                assert embedder.count_tokens(text) <= limit, (text, limit)
    assert checked > 1000  # the shortcut was taken often enough to mean something
    assert not chunker._surely_under("naïve café", 64)  # never for non-ASCII text


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.iterdir()))
def test_chunks_are_the_same_with_and_without_the_shortcut(name: str, embedder, monkeypatch) -> None:
    text = (FIXTURES / name).read_text(encoding="utf-8")
    fast = chunk_file(name, text, max_tokens=96, count_tokens=embedder.count_tokens)
    monkeypatch.setattr(_Chunker, "_surely_under", lambda self, text, limit: False)
    slow = chunk_file(name, text, max_tokens=96, count_tokens=embedder.count_tokens)
    assert fast == slow


def test_a_first_index_appends_and_a_reindex_still_replaces_files(tmp_path: Path, embedder) -> None:
    """The first index's rows are appended (no merge); edits, deletions and additions after it merge as before."""
    root = tmp_path / "ws"
    root.mkdir()
    (root / "a.py").write_text("def alpha():\n    return 'first version of alpha'\n")
    (root / "b.py").write_text("def beta():\n    return 2\n")
    ws = Workspace(root, EngineConfig(index_dir=str(tmp_path / "index")), embedder=embedder)
    stats = ws.index()
    assert stats.files_indexed == 2 and ws.check().ok
    (root / "a.py").write_text("def alpha():\n    return 'second version'\n\n\ndef gamma():\n    return 3\n")
    (root / "b.py").unlink()
    (root / "c.py").write_text("def delta():\n    return 4\n")
    ws.index()
    report = ws.check()
    assert report.ok, report
    rows = ws.store.rows("true", columns=["path", "symbol", "content"])
    assert sorted((r["path"], r["symbol"]) for r in rows) == [("a.py", "alpha"), ("a.py", "gamma"), ("c.py", "delta")]
    assert all("first version" not in r["content"] for r in rows)
    assert ws.store.pending_count() == 0


def _rows(ws: Workspace) -> list[dict]:
    return ws.store._chunks.to_arrow().drop_columns(["vector"]).sort_by("id").to_pylist()


def _phase1(root: Path, index_dir: Path, monkeypatch, *, min_files: int, vocab: str | None = None) -> Workspace:
    import engine.indexer

    monkeypatch.setattr(engine.indexer, "CHUNK_WORKER_MIN_FILES", min_files)
    ws = Workspace(root, EngineConfig(index_dir=str(index_dir)))
    if vocab is not None:
        monkeypatch.setattr(type(ws.embedder), "vocabulary_path", lambda self: vocab)
    ws.index(embed=False)
    return ws


def test_phase1_on_two_cores_writes_exactly_what_one_core_writes(tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "ws"
    for fixture in FIXTURES.iterdir():  # every language, several copies: the worker gets a share
        for copy in range(3):
            target = root / f"copy{copy}" / fixture.name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(fixture.read_text(encoding="utf-8"))
    (root / "broken.py").write_bytes(b"def f(:\n    \x00\xff return\n")  # binary: skipped alike
    from engine.chunk_worker import ChunkWorker

    handed: list[str] = []
    submit = ChunkWorker.submit
    monkeypatch.setattr(ChunkWorker, "submit", lambda self, path, *a: handed.append(path) or submit(self, path, *a))
    one = _phase1(root, tmp_path / "one", monkeypatch, min_files=10**9)
    assert not handed
    import engine.indexer

    here: list[str] = []
    chunk_here = engine.indexer.Indexer._chunk_here
    monkeypatch.setattr(
        engine.indexer.Indexer,
        "_chunk_here",
        lambda self, file, *a: here.append(file.path) or chunk_here(self, file, *a),
    )
    two = _phase1(root, tmp_path / "two", monkeypatch, min_files=1)
    assert handed and not set(handed) & set(here)  # the child chunked its share: none came back to be redone
    assert _rows(two) == _rows(one)
    assert two.store.manifest() == one.store.manifest()
    assert two.check().ok and two.store.pending_count() == two.store.count_chunks() > 0


def test_a_chunk_worker_that_cannot_start_changes_nothing(tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    for fixture in FIXTURES.iterdir():
        (root / fixture.name).write_text(fixture.read_text(encoding="utf-8"))
    one = _phase1(root, tmp_path / "one", monkeypatch, min_files=10**9)
    broken = _phase1(root, tmp_path / "two", monkeypatch, min_files=1, vocab=str(tmp_path / "no-such-model.gguf"))
    assert _rows(broken) == _rows(one)


def test_packed_decodes_give_every_text_its_own_vector(default_model_path: Path) -> None:
    """Reordering a call's texts for fuller decodes (packing_order) must hand each text back its vector."""
    from engine.models.llama import LlamaEmbedder

    texts = [f"def f{i}(x):\n" + "    x = x + 1\n" * (1 + (i * 7) % 40) + f"    return '{i}'" for i in range(40)]
    embedder = LlamaEmbedder(default_model_path, threads=2)
    try:
        embedder.pack = True
        packed = embedder.embed_documents(texts)
        embedder.pack = False
        plain = embedder.embed_documents(texts)
        alone = np.stack([embedder.embed_documents([t])[0] for t in texts[:8]])
    finally:
        embedder.close()
    # Q8_0: a text's row position in a decode moves its vector by up to ~2e-4 (llama.cpp's repacked
    # 4-row int8 GEMM vs its tail rows); the same plan in F32 agrees to 1e-5 (test below).
    assert (packed * plain).sum(axis=1).min() > 0.9995  # same text, other decode neighbours
    assert (packed[:8] * alone).sum(axis=1).min() > 0.9995
    assert ((packed @ plain.T).argmax(axis=1) == np.arange(len(texts))).all()


@pytest.fixture(scope="module")
def f32_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from engine.models.convert import convert, load_source

    return Path(convert(tmp_path_factory.mktemp("f32") / "minilm-f32.gguf", outtype="f32", source=load_source()))


def test_one_plan_per_write_batch_changes_no_vector_beyond_float_noise(f32_model: Path) -> None:
    """The indexer's path: one packing plan over a write batch, calls of whole bins, each text's vector
    as if it were embedded alone. F32, so any difference is the packing's, not int8 rounding's."""
    from engine.models.llama import LlamaEmbedder

    texts = [f"def g{i}(y):\n" + "    y = y * 3 - 1\n" * (1 + (i * 11) % 60) + f"    return {i}" for i in range(60)]
    embedder = LlamaEmbedder(f32_model, threads=2)
    try:
        planned = np.zeros((len(texts), embedder.info.dimension), dtype=np.float32)
        calls = []
        for positions, vectors in embedder.embed_packed(texts, batch_size=8):
            calls.append(list(positions))
            planned[list(positions)] = vectors
        alone = np.concatenate([embedder.embed_documents([t]) for t in texts])
    finally:
        embedder.close()
    assert sorted(i for c in calls for i in c) == list(range(len(texts)))
    assert any(c != sorted(c) or c[0] != min(c) for c in calls)  # the plan did reorder the batch
    assert (planned * alone).sum(axis=1).min() > 0.99999
