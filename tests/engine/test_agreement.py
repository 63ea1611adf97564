"""Name agreement (``engine.agreement``, ``RankingOptions.agreement``) on a real index.

Real default model and real LanceDB: each test ranks with the signal off and on, and fails if the
signal stops moving the function a docstring-style sentence describes above its neighbours.
"""

from __future__ import annotations

import pytest

from engine.config import EngineConfig
from engine.ranking import RankingOptions
from engine.workspace import Workspace

PY_JAR = """\
class CookieJar:
    def __init__(self):
        self._cookies = {}
        self._domains = set()

    def update(self, other):
        if isinstance(other, CookieJar):
            for name, value in other._cookies.items():
                self._cookies[name] = value
        else:
            self._cookies.update(other)

    def get_dict(self, domain=None, path=None):
        result = {}
        for name, value in self._cookies.items():
            if domain is None or name.startswith(domain):
                result[name] = value
        return result

    def merge_cookies_from(self, source):
        for name in source:
            self._cookies.setdefault(name, source[name])
            self._domains.add(name.split(".")[0])
        return self
"""

TS_SUBSCRIPTION = """\
export class Subscription {
  private finalizers: Array<() => void> | null = null;
  public closed = false;

  unsubscribe(): void {
    if (this.closed) return;
    this.closed = true;
    for (const finalizer of this.finalizers ?? []) {
      execFinalizer(finalizer);
    }
    this.finalizers = null;
  }

  add(teardown: () => void): void {
    if (this.closed) {
      execFinalizer(teardown);
    } else {
      (this.finalizers ??= []).push(teardown);
    }
  }

  remove(teardown: () => void): void {
    const list = this.finalizers;
    if (list) {
      const index = list.indexOf(teardown);
      if (index >= 0) list.splice(index, 1);
    }
  }
}

function execFinalizer(finalizer: () => void): void {
  try {
    finalizer();
  } catch (error) {
    reportError(error);
  }
}

function reportError(error: unknown): void {
  setTimeout(() => {
    throw error;
  });
}
"""


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
