"""Two writers and a reader that uses another model on one workspace: nothing is wiped, all stay consistent.

Before the fix, opening the index with another model deleted it (``shutil.rmtree`` without the write
lock), even in a process that only read: ``semcode status --model other.gguf`` wiped the index another
process was writing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Workers, clean_rebuild, materialize, open_ws, record, snapshot

from engine.chunking import CHUNKER_VERSION
from engine.config import EngineConfig
from engine.store import ChunkStore

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def other_model(tmp_path_factory: pytest.TempPathFactory, default_model_path: Path) -> Path:
    """The default model as F16 (the default is Q8_0): another file, so another fingerprint."""
    from engine.models.convert import convert

    return convert(tmp_path_factory.mktemp("other-model") / "minilm-f16.gguf", outtype="f16")


@pytest.mark.slow
def test_two_writers_and_a_reader_of_another_model(
    tmp_path: Path, embedder, workers: Workers, other_model: Path
) -> None:
    from engine.models import load_embedder

    root = tmp_path / "ws"
    materialize(root, 1)
    reference = clean_rebuild(root, tmp_path / "reference", embedder)
    shared = tmp_path / "shared-index-dir"
    other = load_embedder(EngineConfig(model_path=str(other_model), threads=1))
    try:
        assert other.info.fingerprint != embedder.info.fingerprint
        config = EngineConfig(index_dir=str(shared))
        default_path = config.index_path(root.resolve(), embedder.info.fingerprint[:16])
        first, first_q = workers.start(root=str(root), index_dir=str(shared), batch=3)
        assert workers.wait_for(first_q, "READY")[-1] == "READY"
        second, second_q = workers.start(root=str(root), index_dir=str(shared), batch=3, nowait=True)
        assert workers.wait_for(second_q, "READY")[-1] == "READY"
        # While they run: the old data-loss path, a store opened on the same folder with another model...
        intruder = ChunkStore(
            default_path,
            dimension=other.info.dimension,
            fingerprint=other.info.fingerprint,
            model_name=other.info.name,
            chunker_version=CHUNKER_VERSION,
        )
        assert intruder.count_chunks() == 0 and intruder.stale_reason
        # ... and `semcode status --model other.gguf`, a reader in another process.
        env = dict(os.environ, PYTHONPATH=str(REPO))
        status_cmd = [sys.executable, "-m", "semcode.cli", "status", str(root), "--index-dir", str(shared)]
        status = subprocess.run(
            [*status_cmd, "--model", str(other_model), "--json"],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
            cwd=REPO,
        )
        assert status.returncode == 0, status.stderr[-2000:]
        first.join(300)
        second.join(300)
        outcomes = sorted([first.exitcode, second.exitcode])
        # One wrote; the other either found it locked or ran after it (then had nothing to do).
        assert outcomes in ([0, 3], [0, 0]), outcomes
        assert (default_path / "meta.json").exists()
        ws = open_ws(root, shared, embedder)
        assert ws.store.path == default_path and ws.check().ok and snapshot(ws) == reference
        # The other model gets its own index beside it; the first one is untouched.
        run = workers.run(root=str(root), index_dir=str(shared), model=str(other_model), batch=50)
        assert run.outcome == "done", run
        other_ws = open_ws(root, shared, other)
        assert other_ws.store.path != default_path and other_ws.check().ok
        assert snapshot(other_ws)[1] == reference[1]  # the same files, the same manifest
        assert snapshot(open_ws(root, shared, embedder)) == reference and open_ws(root, shared, embedder).check().ok
        record(suite="concurrency", writers=2, readers=2, outcomes=outcomes, other_model="f16")
    finally:
        other.close()
