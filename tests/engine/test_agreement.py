"""Name agreement (``engine.agreement``, ``RankingOptions.agreement``) on a real index.

Real default model and real LanceDB: each test ranks with the signal off and on, and fails if the
signal stops moving the function a docstring-style sentence describes above its neighbours.
"""

from __future__ import annotations

import pytest

from engine.config import EngineConfig
from engine.ranking import RankingOptions
from engine.workspace import Workspace

PY_JAR = 'class CookieJar:\n    def __init__(self):\n        self._cookies = {}\n        self._domains = set()\n\n    def update(self, other):\n        if isinstance(other, CookieJar):\n            for name, value in other._cookies.items():\n                self._cookies[name] = value\n        else:\n            self._cookies.update(other)\n\n    def get_dict(self, domain=None, path=None):\n        result = {}\n        for name, value in self._cookies.items():\n            if domain is None or name.startswith(domain):\n                result[name] = value\n        return result\n\n    def merge_cookies_from(self, source):\n        for name in source:\n            self._cookies.setdefault(name, source[name])\n            self._domains.add(name.split(".")[0])\n        return self\n'

TS_SUBSCRIPTION = 'export class Subscription {\n  private finalizers: Array<() => void> | null = null;\n  public closed = false;\n\n  unsubscribe(): void {\n    if (this.closed) return;\n    this.closed = true;\n    for (const finalizer of this.finalizers ?? []) {\n      execFinalizer(finalizer);\n    }\n    this.finalizers = null;\n  }\n\n  add(teardown: () => void): void {\n    if (this.closed) {\n      execFinalizer(teardown);\n    } else {\n      (this.finalizers ??= []).push(teardown);\n    }\n  }\n\n  remove(teardown: () => void): void {\n    const list = this.finalizers;\n    if (list) {\n      const index = list.indexOf(teardown);\n      if (index >= 0) list.splice(index, 1);\n    }\n  }\n}\n\nfunction execFinalizer(finalizer: () => void): void {\n  try {\n    finalizer();\n  } catch (error) {\n    reportError(error);\n  }\n}\n\nfunction reportError(error: unknown): void {\n  setTimeout(() => {\n    throw error;\n  });\n}\n'


@pytest.fixture(scope="module")
def agreement_ws(tmp_path_factory: pytest.TempPathFactory, embedder) -> Workspace:
    root = tmp_path_factory.mktemp("agreement")
    (root / "jar.py").write_text(PY_JAR)
    (root / "subscription.ts").write_text(TS_SUBSCRIPTION)
    ws = Workspace(root, EngineConfig(index_dir=str(tmp_path_factory.mktemp("agreement-idx"))), embedder=embedder)
    ws.index()
    return ws


@pytest.mark.parametrize(
    ("query", "described", "above_it_without"),
    [
        # The class whose name the sentence also spells ("jar", "cookies") ranks first without it.
        ("Updates this jar with cookies from another jar or dict-like.", "CookieJar.update", "CookieJar"),
        # ``unsubscribe`` runs the finalizers too: the model cannot tell "removes" from it.
        ("Removes a finalizer from this subscription.", "Subscription.remove", "Subscription.unsubscribe"),
    ],
)
def test_the_function_a_sentence_names_by_its_words_ranks_first(
    agreement_ws: Workspace, query: str, described: str, above_it_without: str
) -> None:
    without = agreement_ws.searcher.search(query, limit=5, ranking=RankingOptions().without("agreement"))
    assert without[0].symbol == above_it_without, [(h.symbol, h.signals) for h in without]
    hits = agreement_ws.searcher.search(query, limit=5)
    assert hits[0].symbol == described, [(h.symbol, h.signals) for h in hits]
    assert any(s.startswith("name agreement") for s in hits[0].signals), hits[0].signals


def test_a_symbol_query_gets_no_agreement(agreement_ws: Workspace) -> None:
    hits = agreement_ws.searcher.search("update", limit=5)
    assert not any(s.startswith("name agreement") for h in hits for s in h.signals)
