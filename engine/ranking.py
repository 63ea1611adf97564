"""Code-aware re-ranking of fused search candidates.

The fused dense + BM25 score says how well a chunk's text matches the query. What a developer means
by a query also depends on what the chunk *is*: the class that defines ``HandlerStack`` rather than a
method that uses it, ``Foo.swift`` rather than ``FooDelegate.swift``, the implementation rather than
its test, the code rather than the Markdown that describes it. This module reads the query
(``analyse_query``), then adjusts each candidate's score with a few named signals
(``Reranker.rerank``), each of which can be turned off (``RankingOptions``) so its effect can be
measured alone. Every adjustment is recorded on the candidate so a hit can say why it moved.

Scores are additive on the fused score scaled so the best fused candidate is 1.0; penalties multiply.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from functools import lru_cache
from pathlib import PurePosixPath
from posixpath import dirname, normpath, splitext
from typing import Any

from .agreement import name_agreement
from .chunking.identifiers import split_identifier
from .lexical import query_terms
from .records import Candidate

# Kinds that define a name (a hit on them *is* the symbol), most definitional first.
TYPE_KINDS = frozenset(
    {"class", "interface", "struct", "enum", "trait", "type", "union", "object", "module", "namespace"}
)
CALLABLE_KINDS = frozenset({"function", "method", "constructor", "macro"})
# variable / constant: Python module assignments the chunker names (flask's ``g``, ``session``).
DEFINITION_KINDS = TYPE_KINDS | CALLABLE_KINDS | frozenset({"impl", "extension", "variable", "constant"})

# Signal sizes, in units of the best fused score. Tuned on the development set of bench/sembench
# (BENCHMARKS.md, section "ranking"); each is an order of magnitude, not a fine-tuned constant.
DEFINITION_BOOST = 1.0  # the chunk defines the queried name (scaled by MIXED_FACTOR in sentences)
# A bare symbol query is about its definition: the boost must beat a member's boost plus a full fused
# score (a large struct's fields match the name worse than its methods' bodies do).
SYMBOL_DEFINITION_BOOST = 2.0
# ``Engine`` asked: the type ``Engine`` rather than a method ``defaultValidator.Engine`` (a capitalised
# name is a type's in most languages; a callable keeps most of the boost where no type has the name).
CALLABLE_TYPE_NAME_FACTOR = 0.8
MIXED_FACTOR = 0.35  # a name inside a sentence is one clue among others, not the whole question
# ... but a question or a heading that names a type is about it ("Op and SqlExpressionBuilder for
# composing WHERE conditions"), where prose mentions types on its way (a docstring's "... an Observable").
MIXED_FACTOR_HEADINGS = 1.0  # 0.7: -0.002, 1.5: +0.000 on the dev set
OTHER_CASE_FACTOR = 0.6  # the name matches only across case or convention
MEMBER_BOOST = 0.35  # the chunk is a member of the queried type
PARTIAL_NAME_BOOST = 0.15  # the chunk's name starts with the queried name (FooBar for Foo)
NAME_WORDS_BOOST = 0.2  # natural-language query whose words spell the chunk's name
# A sentence spells part of a chunk's own name (rarity-weighted share, engine.agreement): the
# graded form of NAME_WORDS_BOOST, for the docstring-style sentence that describes one function.
NAME_AGREEMENT_BOOST = 0.5
# Prose only: a question or a heading is about an area (a few files), not one function's name (all
# forms: semble development set 0.903 -> 0.893, prose only 0.904; docstring corpora equal).
AGREEMENT_PROSE_ONLY = True
AGREEMENT_SMOOTHING = 0.0  # a prior of this many average name words (a one-word name scores less for its one word)
# Callables only: a sentence describing behaviour names a function by its words; its nouns name the
# classes and types it mentions on its way ("... of the Notification", "... an Observable").
AGREEMENT_CALLABLES_ONLY = True
STEM_EXACT_BOOST = 0.6  # file stem == queried symbol (Foo.swift for Foo)
STEM_PREFIX_BOOST = 0.1  # file stem starts with it (FooDelegate.swift)
STEM_WORD_BOOST = 0.25  # natural-language query: a query word is the file stem
# A question's subject names a file ("how finders feed entries ..." -> finders.lua): as strong a clue
# as a symbol query's file name (0.4: -0.004, 0.8: +0.002, 1.0: +0.000 on the dev set), and only
# partly gated by the file's text (a small module that *is* the subject may describe it in few words).
STEM_SUBJECT_BOOST = 0.6
SUBJECT_GATE_FLOOR = 0.75
# Questions only: a heading's first word is often a modifier ("HTTP response settling", "JSON Pointer").
SUBJECT_FORMS = ("question",)
STEM_JOINED_BOOST = 0.5  # two consecutive query words are the file stem (RetryMiddleware.php): twice the clue
PATH_WORD_BOOST = 0.08  # natural-language query: a query word names a directory on the path
PATH_WORD_CAP = 0.16
# A question or heading names an area, often a directory ("exception hierarchy" -> Exception/).
PATH_WORD_BOOST_HEADINGS = 0.12
PATH_WORD_CAP_HEADINGS = 0.24
COHERENCE_WEIGHT = 0.15  # a file's other strong chunks lift its best one
COHERENCE_CHUNKS = 3
COHERENCE_FLOOR_RANK = 20
COHERENCE_NATURAL_ONLY = True  # a symbol query is about one definition, not a file
DIVERSITY_DECAY = 0.4  # past the free ones, the n-th chunk of one file keeps DECAY**n of its score
# Chunks of one file before the decay starts: a file-level question wants other files, a
# function-level one may want two functions of one file.
DIVERSITY_FREE = 2
# A "how/what/where" question asks how something works across a codebase: its answer is a few files,
# so a second chunk of the best file is worth less than the next file.
DIVERSITY_FREE_QUESTION = 1
# A topic phrase ("update and delete statement builders": no article, no verb to be) names an area,
# not one function: like a question, its answer is several files.
DIVERSITY_FREE_TOPIC = 1
_QUESTION_WORDS = frozenset({"how", "what", "where", "which", "why"})
# Words of prose: a sentence with one (or ending in a full stop) describes behaviour, usually of one
# function (a docstring's "Returns the ..."); a query without any is written like a heading.
_PROSE_WORDS = frozenset("the a an this that these those given if is are it its whether will should be".split())
GATE_SEMANTIC_MARGIN = 0.4  # cosine below the best at which word signals fade out
GATE_LEXICAL_MARGIN = 0.8  # fraction of the best BM25 score below which they fade out
GATE_COHERENCE = True
TINY_CHUNK_LINES = 4
TINY_SPARES_TYPES = True  # a three-line class is a definition worth finding; a three-line helper less so

# Path classes ranked down unless the query asks for them: (name, factor, words that ask for it).
_TEST_WORDS = frozenset({"test", "tests", "testing", "spec", "specs", "mock", "mocks", "fixture", "fixtures"})
_EXAMPLE_WORDS = frozenset({"example", "examples", "sample", "samples", "demo", "demos", "tutorial"})
_DOC_WORDS = frozenset(
    {
        "doc",
        "docs",
        "documentation",
        "readme",
        "guide",
        "changelog",
        "markdown",
        "config",
        "configuration",
        "yaml",
        "json",
        "toml",
        "manual",
        "faq",
        "license",
        "contributing",
    }
)
_VENDOR_WORDS = frozenset({"vendor", "vendored", "third", "generated", "bundle", "dist"})
_COMPAT_WORDS = frozenset({"compat", "compatibility", "legacy", "shim", "polyfill", "deprecated"})
_STUB_WORDS = frozenset({"type", "types", "typing", "typings", "declaration", "declarations", "stub", "stubs", "dts"})
_PLATFORM_WORDS = frozenset({"windows", "win", "win32", "win64", "msvc", "mingw", "cygwin"})

TEST_FACTOR = 0.55
EXAMPLE_FACTOR = 0.6
DOC_FACTOR = 0.5
VENDOR_FACTOR = 0.5
COMPAT_FACTOR = 0.7
STUB_FACTOR = 0.7
PLATFORM_FACTOR = 0.8
TINY_FACTOR = 0.85
# src/v3/ beside src/v4/: a legacy copy (0.7, compat's factor, still put v3 definitions first: tsrank)
OLDER_VERSION_FACTOR = 0.5

_TEST_DIR = re.compile(
    r"(^|/)(tests?|testing|__tests__|spec|specs|test_?utils|testdata|fixtures?|mocks?|__mocks__)(/|$)", re.I
)
_TEST_FILE = re.compile(
    r"(^|/)(test_[^/]*|[^/]*_(test|tests|spec)\.[^/]+|[^/]*\.(test|spec)\.[^/]+|[^/]*Tests?\.[^/]+|[^/]*Spec\.[^/]+|conftest\.py)$"
)
_EXAMPLE_DIR = re.compile(r"(^|/)(examples?|samples?|demos?|tutorials?|benchmarks?|bench)(/|$)", re.I)
_VENDOR_DIR = re.compile(
    r"(^|/)(vendor|vendored|third_party|thirdparty|external|node_modules|dist|generated|gen)(/|$)|\.min\.js$|\.generated\.|_pb2\.py$|\.pb\.go$",
    re.I,
)
_COMPAT_PATH = re.compile(r"(^|/|_|-)(compat|legacy|shims?|polyfills?|deprecated)(/|_|-|\.|$)", re.I)
_PLATFORM_DIR = re.compile(
    r"(^|/)(win|windows|win32|win64|msvc|mingw|cygwin)(/|$)|_win(32|64)?\.[^/]+$|_windows\.[^/]+$", re.I
)
_DOC_SUFFIXES = frozenset({".md", ".mdx", ".rst", ".txt", ".adoc", ".markdown", ".org"})

# Capitalised only because they open a sentence; any other capitalised first word may be a type
# ("Request type and HTTP request representation").
_SENTENCE_STARTERS = frozenset(
    "how what where when why which who whose is are does do can could should would will the a an "
    "find show list get give explain describe implement implementing implementation code logic "
    "function functions method methods class classes support handling handle using use".split()
)
_KIND_NOUNS = frozenset(
    "type types class classes protocol protocols struct structs interface interfaces trait traits module "
    "modules object objects enum record records function functions method methods macro macros".split()
)
# Whether a capitalised plain word counts as a name (first word: only before a kind noun). Mid-sentence
# capitals were worth +0.001 on the development set, and docstring-style queries ("Returns a simple
# Observable that ...") name types they do not ask for: off.
CAPITAL_FIRST = True
CAPITAL_MID = False
CAPITAL_MID_HEADINGS = True  # ... but in questions and topic phrases they are names (+0.005 on the dev set)
CAPITAL_FIRST_TOPIC = True  # a heading starts with its subject ("Transaction block and ...")
_IDENT_SHAPE = re.compile(r"[a-z][A-Z]|[A-Z]{2,}[a-z]|_|::|\w\.\w|\w#\w|\w:\w|\(\)")


@dataclass(frozen=True, slots=True)
class RankingOptions:
    """Which re-ranking signals are on (the defaults are the measured best); all off is plain fusion."""

    symbols: bool = True  # look the queried name up among indexed symbols; definitions first
    filename: bool = True  # file stem / path words against the query
    coherence: bool = True  # a file with several strong chunks rises
    penalties: bool = True  # tests, examples, docs, vendored, compat shims, stubs, platform twins
    size: bool = True  # a chunk of a few lines yields to a substantial one
    diversity: bool = True  # later chunks of one file decay
    file_words: bool = True  # sentences: files named like a query word join the candidates
    overloads: bool = True  # a bodiless overload signature stands for its implementation
    forms: bool = True  # questions and heading-like phrases are about areas and named types, prose about a function
    forwarders: bool = True  # a thin wrapper that only calls a same-named function yields to that function
    twins: bool = True  # a query word naming files of one name in parallel trees is shared among them
    agreement: bool = True  # sentences: the share of a chunk's own name the query spells (engine.agreement)

    @classmethod
    def off(cls) -> RankingOptions:
        return cls(**{f.name: False for f in fields(cls)})

    @classmethod
    def only(cls, *names: str) -> RankingOptions:
        return replace(cls.off(), **dict.fromkeys(names, True))

    def without(self, *names: str) -> RankingOptions:
        return replace(self, **dict.fromkeys(names, False))

    @property
    def active(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))


@dataclass(frozen=True, slots=True)
class QueryInfo:
    """What the query is: ``symbol`` (one identifier), ``mixed`` (words and identifiers) or ``natural``."""

    text: str
    kind: str
    names: tuple[str, ...]  # identifiers to look up, as written (``Rack::Response`` -> ``Response``)
    qualifiers: tuple[str, ...]  # the qualifying parts of a qualified name (``Rack``)
    words: tuple[str, ...]  # lower-case query terms (stop words dropped)
    asks: frozenset[str]  # path classes the query asks for ("test", "docs", ...)
    form: str = "prose"  # "question" (how/what/where ...), "topic" (a heading-like phrase) or "prose"

    @property
    def is_symbol(self) -> bool:
        return self.kind == "symbol"


# The per-string helpers below are pure and see the same paths and names query after query: cached,
# they took the re-ranking of ~300 candidates from ~15 ms to a few (BENCHMARKS.md, scalequery).
_CACHED = 1 << 16


@lru_cache(maxsize=_CACHED)
def _norm(name: str) -> str:
    """Compare names across conventions: ``parse_config`` == ``parseConfig`` == ``ParseConfig``."""
    return re.sub(r"[^0-9a-z]", "", name.lower())


def _capital_name(tokens: list[str], i: int, form: str) -> bool:
    """A capitalised plain word that probably names a type: mid-sentence in a question or a topic
    phrase (``how the Gin Engine embeds RouterGroup``), or first when a kind noun follows (``Request
    type and ...``). In prose a capital names what a sentence mentions more than what it asks for
    (a docstring's "Returns an Observable that ..."), and its first word is usually the verb."""
    word = tokens[i].strip(".,;:?!'\"`()")
    if not word[:1].isupper() or word.isupper() or not word.isalpha():
        return False
    if i == 0:
        following = tokens[1].lower().strip(".,;:") if len(tokens) > 1 else ""
        if form == "topic" and CAPITAL_FIRST_TOPIC:
            return word.lower() not in _SENTENCE_STARTERS
        return CAPITAL_FIRST and following in _KIND_NOUNS and word.lower() not in _SENTENCE_STARTERS
    return CAPITAL_MID or (CAPITAL_MID_HEADINGS and form != "prose")


def _form(tokens: list[str], lowered: set[str], text: str) -> str:
    """``question`` (how/what/where ...), ``topic`` (written like a heading: no article, no verb
    "to be", no full stop: "update and delete statement builders") or ``prose`` (a sentence that
    describes behaviour, usually one function's: "Returns the number of ...")."""
    if tokens and tokens[0].lower() in _QUESTION_WORDS:
        return "question"
    if len(tokens) > 1 and not lowered & _PROSE_WORDS and not text.endswith("."):
        return "topic"
    return "prose"


def _written_as_prose(text: str) -> bool:
    """The query's own form is prose, whether or not the ``forms`` signal reads it (so the agreement
    signal and the forms signal can each be switched off alone)."""
    tokens = text.strip().split()
    lowered = {t.lower().strip(".,;:?!()'\"`") for t in tokens}
    return _form(tokens, lowered, text.strip()) == "prose"


def analyse_query(query: str, *, forms: bool = True) -> QueryInfo:
    """``forms=False`` reads every sentence as prose (the ranking before query forms, for ablations)."""
    text = query.strip()
    tokens = text.split()
    words = tuple(query_terms(text))
    lowered = {t.lower().strip(".,;:?!()'\"`") for t in tokens}
    asks = set()
    for name, vocab in (
        ("test", _TEST_WORDS),
        ("example", _EXAMPLE_WORDS),
        ("docs", _DOC_WORDS),
        ("vendor", _VENDOR_WORDS),
        ("compat", _COMPAT_WORDS),
        ("stub", _STUB_WORDS),
        ("platform", _PLATFORM_WORDS),
    ):
        if lowered & vocab:
            asks.add(name)
    names: list[str] = []
    qualifiers: list[str] = []
    form = _form(tokens, lowered, text) if forms else "prose"
    if len(tokens) == 1:
        kind = "symbol"
        candidates = tokens
    else:
        # An identifier inside a sentence: camelCase, snake_case, dotted, or a capitalised word that
        # is not the sentence's first (``how the Gin Engine embeds RouterGroup``).
        candidates = [
            t
            for i, t in enumerate(tokens)
            if _IDENT_SHAPE.search(t.strip(".,;:?!'\"`")) or _capital_name(tokens, i, form)
        ]
        kind = "mixed" if candidates else "natural"
    for token in candidates:
        token = token.strip(".,;:?!'\"`()")
        # ``Rack::Response``, ``Plug.Conn``, ``Foo#bar``, ``Picker:get_selection`` (Lua methods), ``a->b``.
        parts = [p for p in re.split(r"::|->|\.|#|/|\\|:", token.removesuffix("()")) if p]
        if not parts or not re.search(r"[A-Za-z]", parts[-1]):
            continue
        if kind != "symbol" and len(parts[-1]) < 3:
            continue  # "i.e.", "e.g." in a sentence
        names.append(parts[-1])
        qualifiers.extend(parts[:-1])
    if not names:
        kind = "natural"
    return QueryInfo(text, kind, tuple(dict.fromkeys(names)), tuple(qualifiers), words, frozenset(asks), form)


@lru_cache(maxsize=_CACHED)
def path_class(path: str, language: str) -> str | None:
    """The class of file a penalty applies to, or None for ordinary source."""
    lowered = path.lower()
    if language == "text" or PurePosixPath(lowered).suffix in _DOC_SUFFIXES:
        return "docs"
    if _TEST_DIR.search(path) or _TEST_FILE.search(path):
        return "test"
    if _EXAMPLE_DIR.search(path):
        return "example"
    if _VENDOR_DIR.search(path):
        return "vendor"
    if lowered.endswith(".d.ts") or lowered.endswith(".pyi"):
        return "stub"
    if _COMPAT_PATH.search(path):
        return "compat"
    if _PLATFORM_DIR.search(path):
        return "platform"
    return None


def _factor(klass: str) -> float:
    # Looked up at call time so a benchmark can override the module constants (bench/sembench_rank.py --set).
    return {
        "docs": DOC_FACTOR,
        "test": TEST_FACTOR,
        "example": EXAMPLE_FACTOR,
        "vendor": VENDOR_FACTOR,
        "stub": STUB_FACTOR,
        "compat": COMPAT_FACTOR,
        "platform": PLATFORM_FACTOR,
    }[klass]


# Files named for their role in a directory: the directory is their real name (lib/defaults/index.js).
_INDEX_STEMS = frozenset({"index", "init", "mod", "main", "lib", "package", "module", "core", "base"})


@lru_cache(maxsize=_CACHED)
def _stem(path: str) -> str:
    pure = PurePosixPath(path)
    name = pure.name
    stem = name.split(".", 1)[0] if not name.startswith(".") else name
    if _norm(stem) in _INDEX_STEMS and len(pure.parts) > 1:
        return pure.parts[-2]
    return stem


@lru_cache(maxsize=_CACHED)
def _directories(path: str) -> frozenset[str]:
    """The path's directory names, normalised (``_norm``)."""
    return frozenset(_norm(d) for d in PurePosixPath(path).parts[:-1])


@lru_cache(maxsize=_CACHED)
def _related(a: str, b: str) -> bool:
    """Two words of one family: ``config``/``configuration``, ``settle``/``settling``, ``route``/``routes``.

    Not ``context``/``content`` or ``form``/``format``: the shorter word must be (almost) a prefix.
    """
    if a == b:
        return True
    short, long = sorted((a, b), key=len)
    if long in (short + "s", short + "es"):
        return True
    common = 0
    for x, y in zip(short, long, strict=False):
        if x != y:
            break
        common += 1
    return common >= 5 and len(short) - common <= 1 and common >= 0.45 * len(long)


_SUBJECT_SKIP = frozenset("how what where which why does do is are can the a an".split())


def _subject(query: QueryInfo) -> set[str]:
    """A question's subject: its first word after the question and auxiliary words, and that word
    joined with the next (``how finders feed ...`` -> finders; ``how cookie jars ...`` -> cookiejars)."""
    if query.form not in SUBJECT_FORMS:
        return set()
    tokens = [_norm(t) for t in query.text.split()]
    tokens = [t for t in tokens if t]
    i = 0
    while i < len(tokens) and tokens[i] in _SUBJECT_SKIP:
        i += 1
    if i >= len(tokens) or len(tokens[i]) < 3:
        return set()
    found = {tokens[i]}
    if i + 1 < len(tokens):
        found.add(tokens[i] + tokens[i + 1])
    return found


@lru_cache(maxsize=_CACHED)
def _word_stem(word: str) -> str:
    for suffix in ("ing", "ers", "er", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


_NAME_SEPARATORS = re.compile(r"::|->|\.|#|:")


@lru_cache(maxsize=_CACHED)
def _name_word_stems(symbol: str) -> frozenset[str]:
    """The stems of the words (3+ letters) of a symbol's own name: ``ConfigParser`` -> config, pars."""
    return frozenset(_word_stem(w) for w in split_identifier(_last(symbol)) if len(w) > 2)


@lru_cache(maxsize=_CACHED)
def _last(name: str) -> str:
    """The last part of a qualified name: ``Session.request``, ``Rack::Utils``, ``Picker:find`` (Lua)."""
    return _NAME_SEPARATORS.split(name)[-1] if name else ""


def _owner(row: Candidate) -> str:
    """The enclosing symbol's last name part: the chunk's parent, else its qualified name's qualifier
    (Lua's ``Picker:find`` has no parent node, its name says ``Picker``)."""
    if row.parent:
        return _last(row.parent)
    parts = _NAME_SEPARATORS.split(row.symbol) if row.symbol else []
    return parts[-2] if len(parts) > 1 else ""


class Reranker:
    """Applies the signals of ``options`` to fused candidates."""

    def __init__(self, options: RankingOptions) -> None:
        self.options = options

    def rerank(
        self,
        rows: list[Candidate],
        base: dict[str, float],
        query: QueryInfo,
        imports: Mapping[str, frozenset[str]] | None = None,
    ) -> list[Candidate]:
        """Rows sorted by their adjusted score, stored in ``row.rank_score``; ``row.signals`` says why.

        ``imports``: the relative imports of the files of ``twin_files(rows)`` (``imported_paths``)."""
        opts = self.options
        folded: set[str] = set()
        if opts.overloads:
            rows, base, folded = fold_overloads(rows, base)
        top = max(base.values(), default=0.0) or 1.0
        names = [_norm(n) for n in query.names if _norm(n)]
        capitalised = {_norm(n) for n in query.names if n[:1].isupper()}
        exact_names = set(query.names)
        quals = {_norm(q) for q in query.qualifiers}
        word_stems = {_word_stem(w) for w in query.words if len(w) > 2}
        content_words = {w for w in query.words if len(w) > 2}
        # A word of the query related to this name (a file stem, a directory)? Many rows share their
        # names, so each is asked once per call (it was ~350K generator steps per query on rxjs).
        related_memo: dict[str, bool] = {}

        def related_to_query(name: str) -> bool:
            known = related_memo.get(name)
            if known is None:
                known = related_memo[name] = any(_related(name, w) for w in content_words)
            return known

        joined = {_norm(a + b) for a, b in zip(query.words, query.words[1:], strict=False)}
        gates = _evidence_gates(rows)
        older = _older_version_dirs(rows) if opts.penalties and OLDER_VERSION_FACTOR < 1 else set()
        subject = _subject(query) if STEM_SUBJECT_BOOST else set()
        stem_files = _files_per_stem(rows) if opts.twins and TWIN_STEM_SPLIT else defaultdict(int)
        mixed = MIXED_FACTOR if query.form == "prose" else MIXED_FACTOR_HEADINGS
        agreement = (
            name_agreement(
                {r.id: r.symbol for r in rows if r.kind in CALLABLE_KINDS or not AGREEMENT_CALLABLES_ONLY},
                query.words,
                smoothing=AGREEMENT_SMOOTHING,
            )
            if opts.agreement
            and query.kind != "symbol"
            and (not AGREEMENT_PROSE_ONLY or _written_as_prose(query.text))
            and NAME_AGREEMENT_BOOST
            else {}
        )
        for row in rows:
            score = base.get(row.id, 0.0) / top
            signals: list[str] = ["overload signatures folded in"] if row.id in folded else []
            gate = gates[row.id]
            sym_last = _norm(_last(row.symbol))
            parent_last = _norm(_owner(row))
            stem = _norm(_stem(row.path))
            twin_row = row.language in TWIN_LANGUAGES  # the stem split: JS/TS files only (see TWIN_STEM_SPLIT)
            if opts.symbols and names:
                boost, label = 0.0, ""
                for name in names:
                    if sym_last == name and row.kind in DEFINITION_KINDS:
                        weight = SYMBOL_DEFINITION_BOOST if query.kind == "symbol" else DEFINITION_BOOST * mixed
                        if row.kind in ("impl", "extension"):
                            weight *= 0.6
                        elif row.kind in CALLABLE_KINDS and name in capitalised:
                            weight *= CALLABLE_TYPE_NAME_FACTOR
                        if _last(row.symbol).lstrip("$_") not in exact_names:
                            weight *= OTHER_CASE_FACTOR  # ``Timeout`` asked, a ``timeout`` property found
                            # (``$ZodType``, ``_record``: a prefix convention, not another name)
                        if quals and parent_last in quals:
                            weight += 0.1
                        if weight > boost:
                            boost, label = weight, "definition"
                    elif parent_last == name and row.symbol:
                        weight = MEMBER_BOOST * (1.0 if query.kind == "symbol" else mixed)
                        if weight > boost:
                            boost, label = weight, "member"
                    elif sym_last.startswith(name) and len(name) >= 3:
                        weight = PARTIAL_NAME_BOOST * (1.0 if query.kind == "symbol" else mixed)
                        if weight > boost:
                            boost, label = weight, "name prefix"
                if boost:
                    score += boost
                    signals.append(f"{label} +{boost:.2f}")
            if opts.symbols and query.kind != "symbol" and row.symbol and word_stems:
                # ``parse config`` names ``parseConfig`` / ``ConfigParser``: every word of the chunk's
                # own name (two or more) is a query word.
                own = _name_word_stems(row.symbol)
                if len(own) >= 2 and own <= word_stems and gate > 0:
                    score += NAME_WORDS_BOOST * gate
                    signals.append(f"name words +{NAME_WORDS_BOOST * gate:.2f}")
            if row.id in agreement and gate > 0:
                lift = NAME_AGREEMENT_BOOST * agreement[row.id] * gate
                if lift > 0.005:
                    score += lift
                    signals.append(f"name agreement +{lift:.2f}")
            if opts.filename:
                boost, label = 0.0, ""
                for name in names:
                    if stem == name or (len(name) >= 4 and _word_stem(stem) == _word_stem(name)):
                        weight = STEM_EXACT_BOOST * (1.0 if query.kind == "symbol" else mixed)
                        shared = max(1, stem_files[stem]) if query.kind != "symbol" and twin_row else 1
                        if weight / shared > boost:
                            boost, label = weight / shared, "file name" if shared < 2 else f"file name (1 of {shared})"
                    elif stem.startswith(name) and len(name) >= 3 and boost < STEM_PREFIX_BOOST:
                        boost, label = STEM_PREFIX_BOOST, "file name prefix"
                if not boost and query.kind != "symbol" and stem:
                    if stem in joined:  # two query words spell the file name (RetryMiddleware.php)
                        boost, label = STEM_JOINED_BOOST * gate, "file name"
                    elif related_to_query(stem):
                        boost, label = STEM_WORD_BOOST * gate, "file name"
                        if stem_files[stem] > 1 and twin_row:
                            # ``schemas.ts`` in classic/, mini/ and core/: the word names none of them
                            boost /= stem_files[stem]
                            label = f"file name (1 of {stem_files[stem]})"
                    if subject and (
                        stem in subject or any(stem in (w + "s", w + "es") or w == stem + "s" for w in subject)
                    ):
                        # "how finders feed entries ..." is about finders.lua, however its text reads
                        weight = STEM_SUBJECT_BOOST * max(gate, SUBJECT_GATE_FLOOR)
                        if weight > boost:
                            boost, label = weight, "subject's file"
                if boost > 0.005:
                    score += boost
                    signals.append(f"{label} +{boost:.2f}")
                if query.kind != "symbol" and word_stems:
                    dirs = _directories(row.path)
                    hits = sum(1 for d in dirs if d and related_to_query(d))
                    per_dir, cap = (
                        (PATH_WORD_BOOST, PATH_WORD_CAP)
                        if query.form == "prose"
                        else (PATH_WORD_BOOST_HEADINGS, PATH_WORD_CAP_HEADINGS)
                    )
                    path_boost = min(cap, per_dir * hits) * gate
                    if path_boost > 0.005:
                        score += path_boost
                        signals.append(f"path +{path_boost:.2f}")
            if opts.size and (row.kind not in TYPE_KINDS or not TINY_SPARES_TYPES):
                lines = row.end_line - row.start_line + 1
                if lines < TINY_CHUNK_LINES and "definition" not in " ".join(signals):
                    score *= TINY_FACTOR
                    signals.append(f"tiny ×{TINY_FACTOR}")
            if opts.penalties:
                klass = path_class(row.path, row.language)
                if klass and klass not in query.asks:
                    factor = _factor(klass)
                    score *= factor
                    signals.append(f"{klass} ×{factor}")
                elif klass is None and older and _older_version(row.path, older, query):
                    score *= OLDER_VERSION_FACTOR
                    signals.append(f"older version ×{OLDER_VERSION_FACTOR}")
            row.rank_score = score
            row.signals = signals
        if opts.forwarders and query.kind != "symbol":
            _forwarders_yield(rows, query)
        if opts.twins and query.kind != "symbol" and imports:
            _twins_yield(rows, query, imports)
        if opts.symbols and names:
            _first_window_stands_for_definition(rows)
        if opts.coherence and (query.kind != "symbol" or not COHERENCE_NATURAL_ONLY):
            # Fused scores are ranks, not relevance: rank 10 of a list still scores 0.7 of rank 1. Only
            # evidence above the pool's 10th-best chunk counts, squared so near-floor chunks add
            # little; otherwise a small corpus, where every chunk is a candidate, would rank files by
            # their number of chunks.
            ranked_base = sorted((v / top for v in base.values()), reverse=True)
            floor = ranked_base[min(len(ranked_base), COHERENCE_FLOOR_RANK) - 1] if ranked_base else 0.0
            span = max(1e-9, 1.0 - floor)
            by_file: dict[str, list[Candidate]] = defaultdict(list)
            for row in rows:
                by_file[row.path].append(row)
            for group in by_file.values():
                if len(group) < 2:
                    continue
                group.sort(key=lambda r: -r.rank_score)
                # Base (fused) evidence of the file's other chunks, not their boosts: one definition
                # boost must not lift every chunk of its file.
                others = sorted(
                    (max(0.0, (base.get(r.id, 0.0) / top - floor) / span) ** 2 for r in group[1:]), reverse=True
                )
                gate = gates[group[0].id] if GATE_COHERENCE else 1.0
                lift = COHERENCE_WEIGHT * sum(others[:COHERENCE_CHUNKS]) * gate
                if lift > 0.005:
                    group[0].rank_score += lift
                    group[0].signals.append(f"file coherence +{lift:.2f}")
        ordered = sorted(rows, key=lambda r: -r.rank_score)
        if opts.diversity:
            seen: dict[str, int] = defaultdict(int)
            free = {"question": DIVERSITY_FREE_QUESTION, "topic": DIVERSITY_FREE_TOPIC}.get(query.form, DIVERSITY_FREE)
            for row in ordered:
                n = seen[row.path]
                if n >= free:
                    decay = DIVERSITY_DECAY ** (n - free + 1)
                    row.rank_score *= decay
                    why = f" ({query.form})" if free != DIVERSITY_FREE else ""  # a question's second chunk
                    row.signals.append(f"same file #{n + 1} ×{decay:.2f}{why}")
                seen[row.path] += 1
            ordered.sort(key=lambda r: -r.rank_score)
        return ordered


# ``@overload`` / ``@typing.overload`` / ``@t.overload``: a Python signature with no body.
_PY_OVERLOAD = re.compile(r"^@(?:\w+\.)*overload\b")
_SIGNATURE_LANGUAGES = frozenset({"typescript", "tsx"})
_OVERLOAD_LANGUAGES = _SIGNATURE_LANGUAGES | {"python"}
_COMMENT_START = ("//", "#", "/*", "*")


def is_signature_only(row: Candidate) -> bool:
    """A callable's declaration without a body: a TypeScript overload signature, a Python ``@overload``.

    Such a chunk repeats the implementation's name and parameter words, so for a description of
    what the function does it often matches as well as the implementation, which is what the
    description is about (and where a reader wants to land).
    """
    if row.kind not in CALLABLE_KINDS:
        return False
    lines = [s for s in (line.strip() for line in row.content.splitlines()) if s and not s.startswith(_COMMENT_START)]
    if not lines:
        return False
    if row.language == "python":
        return any(_PY_OVERLOAD.match(line) for line in lines)
    if row.language in _SIGNATURE_LANGUAGES:
        return lines[-1].endswith(";") and not any(line.endswith("{") for line in lines)
    return False


def overload_suspects(rows: Iterable[Candidate]) -> list[Candidate]:
    """The rows ``is_signature_only`` must read the text of: callables sharing a file and symbol with
    another candidate in a language with signatures. Candidates arrive without their text (only the
    final hits' is read), so the search reads just these few first."""
    groups = _callable_groups(row for row in rows if row.language in _OVERLOAD_LANGUAGES)
    return [row for group in groups.values() if len(group) > 1 for row in group if not row.content]


def _callable_groups(rows: Iterable[Candidate]) -> dict[tuple[str, str], list[Candidate]]:
    """Named callables by (file, symbol): the rows an overload fold can merge."""
    groups: dict[tuple[str, str], list[Candidate]] = defaultdict(list)
    for row in rows:
        if row.kind in CALLABLE_KINDS and row.symbol:
            groups[(row.path, row.symbol)].append(row)
    return groups


def fold_overloads(rows: list[Candidate], base: dict[str, float]) -> tuple[list[Candidate], dict[str, float], set[str]]:
    """Overload signatures merged into their implementation's chunk (same file, same symbol).

    The implementation takes the best fused score and evidence of the group and the signatures
    leave the candidates; a signature whose implementation is not among them stays as it is.
    Returns the remaining rows, their fused scores and the ids of implementations that rose.
    """
    groups = _callable_groups(rows)
    stubs = {row.id for group in groups.values() for row in group if is_signature_only(row)}
    if not stubs:
        return rows, base, set()
    base = dict(base)
    dropped: set[str] = set()
    folded: set[str] = set()
    for group in groups.values():
        signatures = [r for r in group if r.id in stubs]
        bodies = [r for r in group if r.id not in stubs]
        if not signatures or not bodies:
            continue
        impl = min(bodies, key=lambda r: r.start_line)  # a long implementation: its first window
        best = max(group, key=lambda r: base.get(r.id, 0.0))
        if base.get(best.id, 0.0) > base.get(impl.id, 0.0):
            base[impl.id] = base.get(best.id, 0.0)
            folded.add(impl.id)
        sems = [r.semantic for r in group if r.semantic is not None]
        lexes = [r.lexical for r in group if r.lexical is not None]
        impl.semantic = max(sems) if sems else None
        impl.lexical = max(lexes) if lexes else None
        dropped.update(r.id for r in signatures)
    return [r for r in rows if r.id not in dropped], base, folded


# A forwarding wrapper (``export function superRefine(fn) { return core._superRefine(fn); }``,
# ``def get(x): return _get(x)``) is a few lines that call a function of the same name, modulo a
# ``_`` / ``$`` prefix or a qualifier; a derived type (``interface ZodError extends $ZodError``) names
# its same-named base in its signature. Their words are the original's words, so they match a
# description as well as the original does, but the behaviour or structure asked about lives in the
# original: when the original is a candidate too, the wrapper ranks below it.
FORWARDER_MAX_LINES = 8
FORWARDER_FACTOR = 0.5
# JS/TS only: in every language it was worth aeson +0.007 but plug -0.022 and serde -0.006 on the
# development set (Elixir's and Rust's same-named delegations are often the answer: BENCHMARKS.md, tsrank).
FORWARDER_LANGUAGES = frozenset({"javascript", "typescript", "tsx"})


@lru_cache(maxsize=_CACHED)
def _bare(name: str) -> str:
    """A name without its qualifier and its ``_`` / ``$`` convention prefix, normalised."""
    return _norm(_last(name).lstrip("_$"))


def forwarder_suspects(rows: Iterable[Candidate]) -> list[Candidate]:
    """Definitions whose bare name another candidate defines too: the rows whose text
    ``_forwarders_yield`` must read (candidates arrive without their text)."""
    rows = list(rows)
    defined: dict[str, int] = defaultdict(int)
    for row in rows:
        if row.symbol and row.kind in DEFINITION_KINDS:
            defined[_bare(row.symbol)] += 1
    return [
        row
        for row in rows
        if row.kind in DEFINITION_KINDS
        and row.language in FORWARDER_LANGUAGES
        and row.symbol
        and not row.content
        and (row.kind not in CALLABLE_KINDS or row.end_line - row.start_line + 1 <= FORWARDER_MAX_LINES)
        and defined[_bare(row.symbol)] > 1
    ]


_CALL = re.compile(r"([A-Za-z_$][\w$]*(?:(?:\.|::|->)[A-Za-z_$][\w$]*)*)\s*\(")
_NAME = re.compile(r"[A-Za-z_$][\w$]*")


def forwards_to(row: Candidate) -> str | None:
    """The bare name a wrapper forwards to or a type derives from (its own bare name), or None.

    A callable of a few lines that calls its own bare name spelt differently (``core._superRefine``
    from ``superRefine``, ``superRefine`` from ``inst.superRefine``; the same spelling called by a
    top-level function is recursion), or a type whose signature (up to its ``{``) names its own bare
    name spelt differently (``interface ZodError<T> extends $ZodError<T> {``).
    """
    if row.kind not in DEFINITION_KINDS or row.language not in FORWARDER_LANGUAGES or not row.symbol or not row.content:
        return None
    lines = [line.strip() for line in row.content.splitlines()]
    lines = [line for line in lines if line and not line.startswith(_COMMENT_START) and not line.startswith("@")]
    if not lines:
        return None
    own = _last(row.symbol)
    bare = _bare(own)
    if not bare:
        return None
    text = "\n".join(lines)
    if row.kind not in CALLABLE_KINDS:
        signature = text.split("{", 1)[0][:300]
        for word in _NAME.findall(signature):
            if word != own and _bare(word) == bare:
                return bare
        return None
    if len(lines) > FORWARDER_MAX_LINES:
        return None
    # The body: what follows the signature's opening brace / arrow / colon (a one-liner is both).
    cuts = [i for i in (text.find("{"), text.find("=>"), text.find(":\n")) if i >= 0]
    body = text[min(cuts) + 1 :] if cuts else text
    top_level = not row.parent and "." not in row.symbol
    for match in _CALL.finditer(body):
        callee = match.group(1)
        if _bare(callee) != bare:
            continue
        if (callee == own and top_level) or callee in (f"this.{own}", f"self.{own}"):
            continue  # recursion
        return bare
    return None


def _files_per_stem(rows: list[Candidate]) -> dict[str, int]:
    """How many candidate files carry each (normalised) file stem: ``schemas`` -> 3 when
    ``classic/schemas.ts``, ``mini/schemas.ts`` and ``core/schemas.ts`` all compete (parallel trees
    of one library, like platform twins): a query word naming that stem names none of them."""
    paths: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        paths[_norm(_stem(row.path))].add(row.path)
    return defaultdict(int, {stem: len(found) for stem, found in paths.items()})


def _asked_dirs(path: str, words: set[str]) -> frozenset[str]:
    """The directories of ``path`` that a query word names (``classic`` in "classic Zod v4 ..."), as
    written or plural: not ``_related``'s word families ("class" is not a name of ``classic/``)."""
    return frozenset(d for d in _directories(path) if d and any(d in (w, w + "s", w + "es") for w in words))


def _forwarders_yield(rows: list[Candidate], query: QueryInfo) -> None:
    """Wrappers and derived types (``forwards_to``) rank below the original when it is a candidate,
    unless the query names a directory of the wrapper's that the original lacks (it asks for that tree)."""
    words = {w for w in query.words if len(w) > 2}
    defined: dict[str, list[Candidate]] = defaultdict(list)
    for row in rows:
        if row.symbol and row.kind in DEFINITION_KINDS:
            defined[_bare(row.symbol)].append(row)
    # Only a name defined twice can have an original to yield to (the row itself is one of them): the
    # rest skip forwards_to's reading of their text.
    derived = {
        row.id: target
        for row in rows
        if row.symbol and len(defined.get(_bare(row.symbol), ())) > 1 and (target := forwards_to(row)) is not None
    }
    for row in rows:
        target = derived.get(row.id)
        if target is None:
            continue
        originals = [r for r in defined[target] if r.id not in derived]
        if not originals or _asked_dirs(row.path, words) - _asked_dirs(originals[0].path, words):
            continue
        row.rank_score *= FORWARDER_FACTOR
        row.signals.append(f"forwards to {_last(originals[0].symbol)} ×{FORWARDER_FACTOR}")


# Parallel trees of one library (zod's ``v4/classic/`` and ``v4/mini/`` over ``v4/core/``) define the
# same names (``record`` / ``_record``, ``ZodObject`` / ``$ZodObject``) with nearly the same words, so
# the embedding cannot tell them apart. The tree the others import is where the definitions come
# from: a twin whose file imports the other twin's directory ranks below it, unless the query names
# the importing tree ("classic Zod v4 string schema"). JS/TS relative imports only: other languages'
# imports name packages that a path cannot be matched against without more structure.
TWIN_FACTOR = 0.6
# ... and a query word naming a file stem that several candidate files share (three ``schemas.ts``)
# is split among them (bench/sembench_rank.py --set TWIN_STEM_SPLIT=0 measures it alone). JS/TS
# files only: in every language it gave commons-lang +0.006 but flask -0.002 and zls -0.007.
TWIN_STEM_SPLIT = True
TWIN_LANGUAGES = frozenset({"javascript", "typescript", "tsx"})
_JS_EXTENSIONS = frozenset({".js", ".ts", ".mjs", ".cjs", ".jsx", ".tsx", ".mts", ".cts"})
_RELATIVE_IMPORT = re.compile(r"""(?:\bfrom|\bimport|\brequire\s*\()\s*\(?\s*["'](\.{1,2}/[^"'\s]*)["']""")


def _twin_groups(rows: Iterable[Candidate]) -> list[list[Candidate]]:
    """Definitions of one bare name (``_bare``) in files of two or more directories."""
    groups: dict[str, list[Candidate]] = defaultdict(list)
    for row in rows:
        if row.symbol and row.kind in DEFINITION_KINDS and row.language in TWIN_LANGUAGES:
            groups[_bare(row.symbol)].append(row)
    return [g for g in groups.values() if len({dirname(r.path) for r in g}) > 1]


def twin_files(rows: Iterable[Candidate]) -> list[str]:
    """The files whose imports ``Reranker.rerank`` needs for the twin rule (``imported_paths``)."""
    return sorted({r.path for group in _twin_groups(rows) for r in group})


def imported_paths(path: str, text: str) -> frozenset[str]:
    """The workspace paths a JS/TS file's relative imports name, without extension
    (``v4/classic/schemas.ts`` importing ``"../core/index.js"`` -> ``v4/core/index``)."""
    here = dirname(path)
    found = set()
    for spec in _RELATIVE_IMPORT.findall(text):
        target = normpath(f"{here}/{spec}" if here else spec)
        if not target.startswith(".."):
            stem, ext = splitext(target)
            found.add(stem if ext in _JS_EXTENSIONS else target)
    return frozenset(found)


def _imports_from(imports: frozenset[str], path: str) -> bool:
    """Whether imports (``imported_paths``) reach ``path``'s file or its directory (``../core/index.js``
    or ``../core`` for anything in ``core/``)."""
    folder = dirname(path)
    stem = splitext(path)[0]
    return any(p in (stem, folder) or (dirname(p) == folder and PurePosixPath(p).name == "index") for p in imports)


def _twins_yield(rows: list[Candidate], query: QueryInfo, imports: Mapping[str, frozenset[str]]) -> None:
    words = {w for w in query.words if len(w) > 2}
    for group in _twin_groups(rows):
        for row in group:
            mine = imports.get(row.path, frozenset())
            origin = next(
                (o for o in group if dirname(o.path) != dirname(row.path) and _imports_from(mine, o.path)), None
            )
            if origin is None or _asked_dirs(row.path, words) - _asked_dirs(origin.path, words):
                continue
            row.rank_score *= TWIN_FACTOR
            row.signals.append(f"twin of {origin.path} ×{TWIN_FACTOR}")


_VERSION_DIR = re.compile(r"^v(\d{1,3})$", re.I)


def _older_version_dirs(rows: list[Candidate]) -> set[str]:
    """Directories that a newer sibling supersedes: ``src/v3/`` when the candidates also come from
    ``src/v4/``. A tree kept for an old major version is a legacy copy of the current one: the
    query is about the current code unless it names the old version."""
    versions: dict[str, set[int]] = defaultdict(set)
    for row in rows:
        parts = row.path.split("/")[:-1]
        for i, part in enumerate(parts):
            match = _VERSION_DIR.match(part)
            if match:
                versions["/".join(parts[:i])].add(int(match.group(1)))
    older: set[str] = set()
    for parent, found in versions.items():
        newest = max(found)
        older.update(f"{parent}/v{n}/" if parent else f"v{n}/" for n in found if n < newest)
    return older


def _older_version(path: str, older: set[str], query: QueryInfo) -> bool:
    lowered = path.lower()
    for prefix in older:
        if lowered.startswith(prefix.lower()):
            version = prefix.rstrip("/").rsplit("/", 1)[-1].lower()
            return version not in query.text.lower().split() and "compat" not in query.asks
    return False


def _first_window_stands_for_definition(rows: list[Candidate]) -> None:
    """A definition cut into windows is found by its first window, the one with its signature.

    Later windows (a long class's fields, a struct's tail) may match the query's text better, but
    the windows of one symbol collapse into one hit, and the hit a developer wants for "Foo" starts
    at ``class Foo``. The first window takes the best score of its group (plus a hair, so it wins).
    """
    groups: dict[tuple[str, str, str], list[Candidate]] = defaultdict(list)
    for row in rows:
        if any(s.startswith("definition") for s in row.signals):
            groups[(row.path, row.symbol, row.kind)].append(row)
    for group in groups.values():
        if len(group) < 2:
            continue
        first = min(group, key=lambda r: r.start_line)
        best = max(r.rank_score for r in group)
        if first.rank_score < best:
            first.rank_score = best + 1e-6
            first.signals.append("first window of the definition")


def _evidence_gates(rows: list[Candidate]) -> dict[str, float]:
    """How close each candidate's own match is to the best one, in [0, 1].

    Fused scores are ranks: in a small corpus the 5th candidate may be unrelated yet score 0.8 of the
    first. Word-level signals of sentences (file and path words, name words, coherence) are scaled
    by this gate, so they reorder real contenders and do not lift an unrelated chunk that merely
    sits in ``strings.js`` for a query about a query string.
    """
    best_sem = max((r.semantic for r in rows if r.semantic is not None), default=None)
    best_lex = max((r.lexical for r in rows if r.lexical is not None), default=None)
    gates: dict[str, float] = {}
    for row in rows:
        gate = 0.0
        sem, lex = row.semantic, row.lexical
        if sem is not None and best_sem is not None:
            gate = max(gate, min(1.0, max(0.0, 1.0 - (best_sem - sem) / GATE_SEMANTIC_MARGIN)))
        elif lex is not None and best_lex:  # the cosine, when there is one, is the better judge
            gate = min(1.0, max(0.0, 1.0 - (1.0 - lex / best_lex) / GATE_LEXICAL_MARGIN))
        if sem is None and lex is None:
            gate = 1.0  # a look-up row: its name matched, which is its evidence
        gates[row.id] = gate
    return gates


FILE_WORD_MIN_CHARS = 4
FILE_WORD_MAX = 8
# Look-up rows are scored by the query's cosine and merged into the dense list (else: unscored extras).
LOOKUP_COSINE = True
# Whether a container header still yields to its best member once the re-ranker has run (it did up
# to session 2 for sentences; the member may have been pushed far down by then, dragging it along).
DEFER_HEADERS_RERANKED = False


def file_lookup_words(query: QueryInfo) -> list[str]:
    """The words of a sentence whose files are looked up by name (lower case, forms with and without -s)."""
    if query.kind == "symbol":
        return []
    words: list[str] = []
    for word in query.words:
        if len(word) < FILE_WORD_MIN_CHARS or word in _DOC_WORDS or not word.isalpha():
            continue
        forms = {word, word + "s", word.removesuffix("s")} if word.endswith("s") else {word, word + "s"}
        words.extend(sorted(forms))
        if len(words) >= FILE_WORD_MAX * 2:
            break
    return list(dict.fromkeys(word.lower().replace("%", "") for word in words))


def file_word_lookup_where(query: QueryInfo) -> str | None:
    """Store filter for files named like a word of a sentence (``Decoder.scala`` for "how Decoder
    parses JSON", ``lib/defaults/index.js`` for "default configuration").

    A large file whose name is the topic often has no single chunk in the dense or BM25 pools: every
    chunk says "decoder", so none stands out. Looked up by name, its chunks become candidates and
    the ranking's cosine and file-name signals decide whether one of them deserves a place.
    ``engine.names.NameTable.in_files_named(..., module_dirs=True)`` is the same filter in memory.
    """
    clauses = []
    for word in file_lookup_words(query):
        w = word.replace("'", "''")
        clauses.append(f"lower(path) LIKE '%/{w}.%'")
        clauses.append(f"lower(path) LIKE '{w}.%'")
        clauses.append(f"lower(path) LIKE '%/{w}/index.%'")
        clauses.append(f"lower(path) LIKE '%/{w}/mod.rs'")
        clauses.append(f"lower(path) LIKE '%/{w}/__init__.py'")
    return " OR ".join(clauses) or None


def symbol_lookup_names(query: QueryInfo) -> list[str]:
    """The queried names the symbol look-up asks for (lower case; at most four, two characters or more)."""
    lows = [name.lower().replace("%", "") for name in query.names[:4]]
    return [low for low in lows if len(low) >= 2]


def symbol_lookup_where(query: QueryInfo) -> tuple[str, str] | None:
    """Store filters for the queried names: (chunks defining them, chunks of files named after them).

    Two filters, each with its own row limit, so the hundreds of chunks of a large ``StringUtils.java``
    cannot crowd the one chunk that defines ``StringUtils`` out of the look-up. The same filters in
    memory: ``engine.names.NameTable.defining`` / ``in_files_named``.
    """
    defines, files = [], []
    for name in symbol_lookup_names(query):
        # "_" is LIKE's any-character: a superset, and the re-ranker compares names exactly.
        low = name.replace("'", "''")
        # Chunk symbols are qualified ("Session.request", "Rack::Utils" nested as "Rack.Utils").
        # ``$ZodType``: a ``$`` prefix is a naming convention (JS, PHP), not part of the name asked for.
        for form in (low, "$" + low):
            defines.append(f"lower(symbol) = '{form}'")
            defines.append(f"lower(symbol) LIKE '%.{form}'")
            defines.append(f"lower(symbol) LIKE '%:{form}'")  # Lua methods: ``Picker:find``
        files.append(f"lower(path) LIKE '%/{low}.%'")
        files.append(f"lower(path) LIKE '{low}.%'")
    if not defines:
        return None
    return " OR ".join(defines), " OR ".join(files)


def symbol_lookup_matches(query: QueryInfo, row: dict[str, Any]) -> tuple[bool, bool]:
    """``symbol_lookup_where``'s two filters applied to one row (unsaved editor buffers are not in the store)."""
    symbol, path = str(row.get("symbol", "")).lower(), str(row.get("path", "")).lower()
    name = path.rsplit("/", 1)[-1]
    defines = files = False
    for queried in query.names[:4]:
        low = queried.lower().replace("%", "")
        if len(low) < 2:
            continue
        defines = defines or any(symbol == form or symbol.endswith("." + form) for form in (low, "$" + low))
        files = files or name.startswith(low + ".")
    return defines, files
