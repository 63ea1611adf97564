"""Name agreement: how much of a candidate's own name the query spells, weighted by rarity.

A docstring-style sentence describes one function ("Updates this jar with cookies ...", "Get the
number of hours between the given dates"), and the function's name is usually made of the
sentence's own words (``update``, ``differenceInHours``). ``engine.ranking``'s "name words" signal
fires only when *every* word of the name is in the query; this one is graded: the share of the
name's words the query holds, each word weighted by how rare it is among the candidates' names (a
query saying "hours" tells ``differenceInHours`` from ``roundToNearestHours``: ``hours`` is half of
the first name and a third of the second; ``get``, on every other name, counts for little).

Words match across inflection (``updates``/``update``, ``pager``/``page``) and abbreviation
(``dict``/``dictionary``, ``str``/``string``: a name word of three letters or more that starts a
query word).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from functools import lru_cache

from .chunking.identifiers import split_identifier

# Words a name is glued with, not words that tell one name from another.
_GLUE = frozenset("a an the of in on to for from by with and or is at as into".split())
ABBREVIATION_MIN = 3  # ``str`` may stand for ``string``; ``in`` for nothing


@lru_cache(maxsize=1 << 16)
def agreement_stem(word: str) -> str:
    """Inflection off: ``updates``/``updated``/``updating``/``update`` -> ``updat``; ``pager`` -> ``pag``."""
    w = word.lower()
    if w.endswith("ies") and len(w) > 4:
        w = w[:-3] + "y"
    elif w.endswith("es") and len(w) > 4 and w[-3] in "sxz":
        w = w[:-2]
    elif w.endswith("ing") and len(w) > 5:
        w = w[:-3]
    elif w.endswith(("ed", "er")) and len(w) > 4:
        w = w[:-2]
    elif w.endswith("s") and not w.endswith("ss") and len(w) > 3:
        w = w[:-1]
    if w.endswith("e") and len(w) > 3:
        w = w[:-1]
    return w


@lru_cache(maxsize=1 << 16)
def name_words(symbol: str) -> tuple[str, ...]:
    """The distinct stems of a symbol's last name part, glue words dropped (``cookiejar_from_dict``
    -> cookiejar, dict)."""
    last = symbol.replace("::", ".").replace("#", ".").replace(":", ".").rsplit(".", 1)[-1]
    stems = [agreement_stem(w) for w in split_identifier(last) if len(w) > 1 and w not in _GLUE]
    return tuple(dict.fromkeys(stems))


class QueryWords:
    """The query's words, ready to be matched against name words."""

    def __init__(self, words: Iterable[str]) -> None:
        self.words = [w.lower() for w in words if len(w) > 1]
        self.stems = {agreement_stem(w) for w in self.words}

    def holds(self, stem: str) -> bool:
        if stem in self.stems:
            return True
        if len(stem) >= ABBREVIATION_MIN:
            return any(w.startswith(stem) for w in self.words)
        return False


def name_agreement(symbols: dict[str, str], query_words: Iterable[str], *, smoothing: float = 0.0) -> dict[str, float]:
    """Per candidate id (``symbols``: id -> symbol), the rarity-weighted share of its name's words
    the query holds, in [0, 1]; candidates without a name or without a matching word are left out.

    Rarity is counted over the candidates' own names (the names competing for this query), as
    ``log(1 + n / df)``, so a word on most candidates' names weighs little.
    """
    words = QueryWords(query_words)
    if not words.words:
        return {}
    per_id = {cid: name_words(sym) for cid, sym in symbols.items() if sym}
    per_id = {cid: stems for cid, stems in per_id.items() if stems}
    if not per_id:
        return {}
    df: dict[str, int] = {}
    for stems in set(per_id.values()):
        for stem in stems:
            df[stem] = df.get(stem, 0) + 1
    n = len(set(per_id.values()))
    prior = smoothing * math.log(1.0 + n / max(1.0, n / max(1, len(df))))
    out: dict[str, float] = {}
    for cid, stems in per_id.items():
        weights = {s: math.log(1.0 + n / df[s]) for s in stems}
        matched = sum(w for s, w in weights.items() if words.holds(s))
        if matched > 0:
            out[cid] = matched / (sum(weights.values()) + prior)
    return out
