"""Hybrid retrieval: what each side alone misses, the fusion finds (real model, real LanceDB)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import EngineConfig
from engine.search import FusionWeights
from engine.workspace import Workspace

REDIRECTS = """import urllib.parse


def follow_location(response, history):
    target = urllib.parse.urljoin(response.url, response.headers["location"])
    if len(history) >= retry_budget:
        raise RuntimeError("too many hops")
    history.append(target)
    return target


def normalise_scheme(url):
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower() or "http"
    return urllib.parse.urlunsplit((scheme, *parts[1:]))
"""
LEXICAL_ONLY = FusionWeights(dense=0.0, lexical=1.0)


@pytest.fixture
def workspace(workspace_copy: Path, tmp_path: Path, embedder) -> Workspace:
    (workspace_copy / "python/redirects.py").write_text(REDIRECTS)
    ws = Workspace(workspace_copy, EngineConfig(index_dir=str(tmp_path / "index")), embedder=embedder)
    ws.index()
    return ws


def symbols(hits) -> list[str]:
    return [h.symbol for h in hits]


def test_exact_identifier_that_dense_alone_misses(workspace: Workspace) -> None:
    # "retry budget" means retrying to the model, so dense ranks the retry client first; the
    # identifier itself only occurs in follow_location.
    query = "retry_budget"
    assert symbols(workspace.search(query, limit=3, hybrid=False))[0] != "follow_location"
    assert symbols(workspace.searcher.search(query, limit=3, weights=LEXICAL_ONLY))[0] == "follow_location"
    hit = workspace.search(query, limit=3)[0]
    assert hit.symbol == "follow_location"
    assert "retry_budget" in hit.matched_terms and "lexical" in hit.why


def test_paraphrase_that_lexical_alone_misses(workspace: Workspace) -> None:
    query = "turn a heading into lowercase words joined by dashes"
    assert "slugify" not in symbols(workspace.searcher.search(query, limit=10, weights=LEXICAL_ONLY))
    hit = workspace.search(query, limit=3)[0]
    assert hit.symbol == "slugify" and hit.lexical_score is None and hit.semantic_score


def test_hybrid_can_be_turned_off(workspace_copy: Path, tmp_path: Path, embedder) -> None:
    (workspace_copy / "python/redirects.py").write_text(REDIRECTS)
    ws = Workspace(workspace_copy, EngineConfig(index_dir=str(tmp_path / "i"), hybrid=False), embedder=embedder)
    ws.index()
    hits = ws.search("retry_budget", limit=5)
    assert all(h.lexical_score is None for h in hits)
    assert hits[0].symbol != "follow_location"
