"""Search candidates: store rows become typed records, and the evidence they carry reaches the hit."""

from __future__ import annotations

from engine.records import Candidate
from engine.search import FusionWeights, Searcher, SearchFilters
from engine.workspace import Workspace

ROW = {
    "id": "c1",
    "path": "net/retry.py",
    "language": "python",
    "symbol": "retry_request",
    "kind": "function",
    "parent": "",
    "start_line": 3,
    "end_line": 9,
    "content": "def retry_request(url):\n    ...",
}


def test_score_columns_become_evidence() -> None:
    dense = Candidate.from_row({**ROW, "_distance": 0.25})
    lexical = Candidate.from_row({**ROW, "lex": "retry request url", "_score": 4.5})
    lookup = Candidate.from_row({**ROW, "parent": None})
    assert (dense.semantic, dense.lexical, dense.lex) == (0.75, None, "")
    assert (lexical.semantic, lexical.lexical, lexical.lex) == (None, 4.5, "retry request url")
    assert (lookup.semantic, lookup.lexical, lookup.parent) == (None, None, "")
    assert Candidate.from_row(ROW, semantic=0.5).semantic == 0.5  # a similarity computed elsewhere


def test_fusion_merges_both_lists_evidence_into_one_hit(workspace: Workspace) -> None:
    searcher = Searcher(workspace.open().store, workspace.embedder)
    dense = [Candidate.from_row({**ROW, "_distance": 0.2})]
    lexical = [Candidate.from_row({**ROW, "lex": "retry request url", "_score": 3.0})]
    (hit,) = searcher._fuse(dense, lexical, ["retry", "url"], 10, SearchFilters(), FusionWeights())
    assert (hit.semantic_score, hit.lexical_score, hit.matched_terms) == (0.8, 3.0, ("retry", "url"))
    assert hit.score == 1.0  # first in both lists: the best possible fused score
    assert hit.why == "semantic 0.800; lexical 3.00; terms: retry, url"
