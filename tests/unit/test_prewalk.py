"""``Workspace.prewalk``: an early walk is used once by the next index, and not when it is stale."""

from __future__ import annotations

from pathlib import Path

import pytest

import engine.workspace
from engine.workspace import Workspace


def test_an_early_walk_indexes_the_same_as_walking_then(workspace: Workspace, tmp_path: Path) -> None:
    (workspace.root / ".env").write_text("SECRET_KEY=abc\n")  # skipped: the skip must be reported either way
    reference = Workspace(workspace.root, workspace.config.__class__(index_dir=str(tmp_path / "ref")))
    reference._embedder = workspace.embedder
    want = reference.index()
    workspace.prewalk()
    got = workspace.index()
    assert got.files_seen == want.files_seen == 3
    assert got.chunks_total == want.chunks_total and got.skipped == want.skipped
    assert sorted(workspace.indexed_paths()) == sorted(reference.indexed_paths())
    assert workspace._prewalk is None  # used once


def test_a_stale_early_walk_is_walked_again(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    workspace.prewalk()
    assert workspace._prewalk is not None
    workspace._prewalk._done.wait()
    (workspace.root / "late.py").write_text("def arrived_after_the_walk():\n    return 1\n")
    monkeypatch.setattr(engine.workspace, "PREWALK_MAX_AGE_S", 0.0)
    stats = workspace.index()
    assert stats.files_seen == 4
    assert "late.py" in workspace.indexed_paths()


def test_a_fresh_early_walk_is_what_the_index_uses_and_the_next_index_walks_again(workspace: Workspace) -> None:
    workspace.prewalk()
    assert workspace._prewalk is not None
    workspace._prewalk._done.wait()
    (workspace.root / "new.py").write_text("def created_after_the_early_walk():\n    return 2\n")
    assert workspace.index().files_seen == 3  # the early walk's list, taken a moment ago
    assert workspace.index().files_seen == 4  # no early walk left: this one walks
    assert "new.py" in workspace.indexed_paths()
