"""Workspace as a front object, and search (fusion, filters, similar) through its public calls.

The fake embedder makes texts that share words close, so these check the plumbing of fusion and
filters, not ranking quality (tests/engine does that with the real model).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from engine.config import EngineConfig
from engine.errors import ConfigError, SourceFileError, StoreError
from engine.search import SearchFilters
from engine.workspace import Workspace

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))


def test_constructing_touches_nothing_and_open_is_explicit(workspace: Workspace, config) -> None:
    assert not workspace.is_open and not Path(config.index_dir).exists()
    with pytest.raises(StoreError, match="not open"):
        workspace.store  # noqa: B018 - the property no longer opens anything
    assert workspace.locked_by_other() is False and workspace.rebuilt_reason is None
    assert workspace.open() is workspace and workspace.is_open and workspace.count_files() == 0


def test_search_one_liner_opens_and_finds(workspace: Workspace) -> None:
    workspace.index()
    hits = workspace.search("retry request backoff", limit=2)
    assert hits[0].path == "net/retry.py" and len(hits) == 2
    assert hits[0].score >= hits[1].score and "semantic" in hits[0].why


def test_hybrid_fusion_and_dense_only_both_answer(workspace: Workspace) -> None:
    workspace.index()
    hybrid = workspace.search("formatDate", limit=3)
    assert hybrid[0].symbol == "formatDate" and "lexical" in hybrid[0].why
    dense = workspace.search("formatDate", limit=3, hybrid=False)
    assert dense and all(h.lexical_score is None for h in dense)


def test_filters_by_language_and_path(workspace: Workspace) -> None:
    workspace.index()
    only_js = workspace.search("text", limit=5, filters=SearchFilters(language="javascript"))
    assert {h.language for h in only_js} == {"javascript"}
    only_text = workspace.search("title words", limit=5, filters=SearchFilters(path="text/"))
    assert {h.path for h in only_text} == {"text/slug.py"}


def test_find_similar_excludes_the_selection_and_refuses_outside_paths(workspace: Workspace, tmp_path: Path) -> None:
    workspace.index()
    similar = workspace.find_similar("net/retry.py", 0, 4, limit=5)
    assert all(h.path != "net/retry.py" for h in similar)
    (tmp_path / "outside.py").write_text("def f(): pass\n")
    with pytest.raises(ConfigError, match="outside the workspace"):
        workspace.find_similar(str(tmp_path / "outside.py"), 0, 0)
    with pytest.raises(ConfigError, match="outside the workspace"):
        workspace.find_similar("../outside.py", 0, 0)


def test_counts_manifest_and_status_come_from_the_workspace(workspace: Workspace) -> None:
    workspace.index()
    assert workspace.count_files() == 3 and workspace.count_chunks() == 3
    assert workspace.indexed_paths() == ["net/retry.py", "text/slug.py", "web/format.js"]
    status = workspace.status()
    assert (status["state"], status["files"], status["dimension"]) == ("ready", 3, 64)


def test_non_regular_files_are_never_opened(small_root: Path, workspace: Workspace) -> None:
    fifo = small_root / "fifo.py"
    os.mkfifo(fifo)
    with pytest.raises(SourceFileError, match="not a regular file"):
        workspace.read_text(fifo)  # would block forever if it were opened for reading
    with pytest.raises(SourceFileError, match="not a regular file"):
        workspace.read_text(small_root / "net")
    with pytest.raises(ConfigError, match="outside"):
        workspace.read_text("/etc/hostname")
    assert "retry_request" in workspace.read_text("net/retry.py")


def test_the_project_has_no_import_cycles() -> None:
    import check_imports

    assert check_imports.check() == []


def test_a_model_that_fails_to_load_leaves_no_import_thread_behind(
    small_root: Path, config: EngineConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process exiting while the LanceDB preload thread is inside a native import aborts (SIGABRT):
    ``open`` waits for it even when the model fails."""
    import threading
    import time

    from engine import workspace as workspace_module
    from engine.errors import ModelError

    monkeypatch.setattr(workspace_module, "_import_store_modules", lambda: time.sleep(0.5))

    class BrokenModel:
        @property
        def info(self) -> object:
            raise ModelError("model file not found: nope.gguf")

    ws = Workspace(small_root, config, embedder=BrokenModel())  # type: ignore[arg-type]
    with pytest.raises(ModelError):
        ws.open()
    assert not [t for t in threading.enumerate() if t.name == "semcode-import-lancedb" and t.is_alive()]
