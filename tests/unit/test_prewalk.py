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


def test_the_walk_child_finds_what_the_walk_finds(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """engine/walk_child.py runs ``engine.files.walk`` in a child: the same files, skips and log lines."""
    import logging
    import os

    from engine.config import EngineConfig
    from engine.files import walk
    from engine.walk_child import walk_in_child

    root = tmp_path / "ws"
    (root / "pkg" / "sub").mkdir(parents=True)
    (root / "pkg" / "a.py").write_text("def a():\n    return 1\n")
    (root / "pkg" / "sub" / "b.ts").write_text("export const b = 1\n")
    (root / "pkg" / "sub" / "skip_me.py").write_text("x = 1\n")
    (root / "pkg" / ".gitignore").write_text("sub/skip_*.py\n")
    (root / ".semcodeignore").write_text("generated/\n")
    (root / "generated").mkdir()
    (root / "generated" / "g.py").write_text("g = 1\n")
    (root / "big.md").write_text("x" * 2_000)
    (root / "venv").mkdir()
    (root / "venv" / "pyvenv.cfg").write_text("home = /usr\n")
    (root / "venv" / "lib.py").write_text("v = 1\n")
    outside = tmp_path / "outside.py"
    outside.write_text("o = 1\n")
    (root / "link_out.py").symlink_to(outside)
    (root / "link_in.py").symlink_to(root / "pkg" / "a.py")
    os.mkfifo(root / "pipe.py")
    (root / os.fsdecode(b"bad\xff.py")).write_text("b = 1\n")
    config = EngineConfig(max_file_size=1_000, exclude=("*.tmp",))
    (root / "x.tmp.py").write_text("t = 1\n")

    want_skipped: list[tuple[str, str]] = []
    want = list(walk(root, config, want_skipped))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="engine.files"):
        got, got_skipped = walk_in_child(root, config)
    assert got == want and got_skipped == want_skipped
    assert {f.path for f in got} == {"pkg/a.py", "pkg/sub/b.ts", "link_in.py", "x.tmp.py"}
    assert len(want_skipped) >= 4  # big.md, venv, link_out.py, pipe.py (and the undecodable name)
    logged = [r.getMessage() for r in caplog.records if r.name == "engine.files"]
    assert all(any(rel in line for line in logged) for rel, _reason in want_skipped)
