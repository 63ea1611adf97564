"""Code-aware re-ranking: query understanding (pure logic) and each signal on a real index.

The index tests use the real default model and a real LanceDB; each compares the ranking with the
signal off and on (``Searcher.search(..., ranking=...)``) so the test fails if the signal stops
changing anything.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import EngineConfig
from engine.ranking import RankingOptions, analyse_query, path_class, symbol_lookup_where
from engine.workspace import Workspace

# --------------------------------------------------------------------------- query understanding


@pytest.mark.parametrize(
    ("query", "kind", "names"),
    [
        ("Depends", "symbol", ("Depends",)),
        ("HTTPException", "symbol", ("HTTPException",)),
        ("Rack::Response", "symbol", ("Response",)),
        ("render_template", "symbol", ("render_template",)),
        ("how does dependency injection work", "natural", ()),
        ("APIRouter include routes", "mixed", ("APIRouter",)),
        ("how the Gin Engine embeds RouterGroup", "mixed", ("Gin", "Engine", "RouterGroup")),
        ("Transaction block and database session management", "mixed", ("Transaction",)),
        ("Request type and HTTP request representation", "mixed", ("Request",)),
        ("Add the specified number of days to the given date.", "natural", ()),
        ("Returns a simple Observable that delivers a notification", "natural", ()),
    ],
)
def test_query_kinds(query: str, kind: str, names: tuple[str, ...]) -> None:
    info = analyse_query(query)
    assert info.kind == kind
    assert info.names == names


@pytest.mark.parametrize(
    ("query", "form"),
    [
        ("how are routes registered", "question"),
        ("update and delete statement builders", "topic"),
        ("Op and SqlExpressionBuilder for composing WHERE conditions", "topic"),
        ("Returns the number of days between the given dates", "prose"),
        ("Simply print unformatted text.", "prose"),
        ("Session", "prose"),
    ],
)
def test_query_forms(query: str, form: str) -> None:
    assert analyse_query(query).form == form
    assert analyse_query(query, forms=False).form == "prose"


def test_prose_keeps_its_capitals_as_plain_words() -> None:
    # A docstring sentence mentions types on its way; a heading or question names what it is about.
    assert analyse_query("Emits the values of an Observable after a delay").names == ()
    assert analyse_query("how an Observable emits values after a delay").names == ("Observable",)


def test_qualified_name_keeps_its_qualifier() -> None:
    info = analyse_query("Rack::Response")
    assert info.qualifiers == ("Rack",)


def test_query_asking_for_tests_or_docs_is_heard() -> None:
    assert "test" in analyse_query("tests for the redirect handling").asks
    assert "docs" in analyse_query("docs about configuration").asks
    assert not analyse_query("redirect handling").asks


@pytest.mark.parametrize(
    ("path", "language", "klass"),
    [
        ("tests/test_app.py", "python", "test"),
        ("src/app_test.go", "go", "test"),
        ("lib/core/Axios.test.js", "javascript", "test"),
        ("src/test/java/org/FooTest.java", "java", "test"),
        ("examples/basic.py", "python", "example"),
        ("README.md", "text", "docs"),
        ("docs/guide.rst", "text", "docs"),
        ("vendor/lib/x.php", "php", "vendor"),
        ("types/index.d.ts", "typescript", "stub"),
        ("src/compat.py", "python", "compat"),
        ("src/win/fs.c", "c", "platform"),
        ("src/unix/fs.c", "c", None),
        ("src/flask/app.py", "python", None),
        ("lib/rack/request.rb", "ruby", None),
    ],
)
def test_path_classes(path: str, language: str, klass: str | None) -> None:
    assert path_class(path, language) == klass


def test_lookup_filter_is_safe_sql() -> None:
    wheres = symbol_lookup_where(analyse_query("O'Brien"))
    assert wheres is not None and all("''" in w for w in wheres)
    assert symbol_lookup_where(analyse_query("how does it work")) is None


def test_options_helpers() -> None:
    assert not RankingOptions.off().active
    assert RankingOptions.only("penalties").penalties and not RankingOptions.only("penalties").symbols
    assert not RankingOptions().without("coherence").coherence


# --------------------------------------------------------------------------- signals on a real index

SESSION = '''"""HTTP sessions."""


class Session:
    """A session keeps cookies and connection pools across requests."""

    def __init__(self, base_url):
        self.base_url = base_url
        self.cookies = {}
        self.adapters = {}

    def request(self, method, url, **kwargs):
        """Send a request with the session's cookies and return the response."""
        prepared = self.prepare(method, url, kwargs)
        response = self.send(prepared)
        self.cookies.update(response.cookies)
        return response

    def prepare(self, method, url, kwargs):
        headers = dict(kwargs.get("headers") or {})
        return {"method": method, "url": self.base_url + url, "headers": headers}

    def send(self, prepared):
        adapter = self.adapters.get(prepared["url"].split(":")[0])
        return adapter.send(prepared)
'''

SESSION_USER = '''from .session import Session


def open_session(base_url):
    """Create a Session for the base URL and attach the default adapters."""
    session = Session(base_url)
    session.adapters["https"] = object()
    return session


def close_session(session: Session):
    session.adapters.clear()
    session.cookies.clear()
'''

RETRY = '''def next_wait(attempt, base=0.5, cap=30.0):
    """Seconds to sleep before attempt number ``attempt``: doubles every time, never above ``cap``."""
    delay = base * (2 ** attempt)
    if delay > cap:
        delay = cap
    jitter = delay * 0.1
    return delay - jitter
'''

RETRY_TEST = '''from pkg.waits import next_wait


def test_exponential_backoff_delay_before_retrying():
    """Exponential backoff delay before retrying grows and is capped."""
    assert next_wait(0) < next_wait(1)
    assert next_wait(50) <= 30.0
'''

RETRY_DOC = """# Retrying

Failed requests are retried with an exponential backoff delay before retrying, capped at thirty
seconds. The delay before retrying a failed request doubles with every attempt.
"""

PARSER_HELPERS = """def tokenize_line(line):
    return line.split()


def strip_comment(line):
    return line.split("#")[0]


def is_blank(line):
    return not line.strip()
"""

PARSER_MAIN = '''def parse_config_file(path):
    """Read an INI-style configuration file into a dict of sections."""
    sections = {}
    current = None
    with open(path) as handle:
        for raw in handle:
            line = raw.split("#")[0].strip()
            if not line:
                continue
            if line.startswith("[") and line.endswith("]"):
                current = sections.setdefault(line[1:-1], {})
                continue
            key, _, value = line.partition("=")
            if current is None:
                raise ValueError("option outside a section: " + key)
            current[key.strip()] = value.strip()
    return sections
'''


@pytest.fixture(scope="module")
def ranked(tmp_path_factory: pytest.TempPathFactory, embedder) -> Workspace:
    root = tmp_path_factory.mktemp("ranking-ws")
    files = {
        "pkg/session.py": SESSION,
        "pkg/session_user.py": SESSION_USER,
        "pkg/waits.py": RETRY,
        "tests/test_retry.py": RETRY_TEST,
        "docs/retrying.md": RETRY_DOC,
        "pkg/parser_helpers.py": PARSER_HELPERS,
        "pkg/config.py": PARSER_MAIN,
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    index = tmp_path_factory.mktemp("ranking-idx")
    ws = Workspace(root, EngineConfig(index_dir=str(index)), embedder=embedder)
    ws.index()
    return ws


def test_symbol_query_returns_the_definition_first(ranked: Workspace) -> None:
    hits = ranked.search("Session", limit=5)
    assert hits[0].symbol == "Session" and hits[0].kind == "class", [(h.symbol, h.kind) for h in hits]
    assert "definition" in hits[0].why
    # Without the signal, the old rule lets the members go first.
    plain = ranked.searcher.search("Session", limit=5, ranking=RankingOptions.off())
    assert (plain[0].symbol, plain[0].kind) != ("Session", "class")


def test_implementation_ranks_above_its_test_and_its_doc(ranked: Workspace) -> None:
    query = "exponential backoff delay before retrying"
    hits = ranked.search(query, limit=5)
    paths = [h.path for h in hits]
    assert paths[0] == "pkg/waits.py", paths
    plain = [h.path for h in ranked.searcher.search(query, limit=5, ranking=RankingOptions.off())]
    assert plain[0] != "pkg/waits.py", plain  # the test and the doc repeat the words more closely


def test_penalty_is_lifted_when_the_query_asks_for_tests(ranked: Workspace) -> None:
    hits = ranked.search("test of exponential backoff delay before retrying", limit=5)
    assert hits[0].path == "tests/test_retry.py", [h.path for h in hits]


def test_penalties_alone_change_the_order(ranked: Workspace) -> None:
    query = "exponential backoff delay before retrying"
    only = [h.path for h in ranked.searcher.search(query, limit=5, ranking=RankingOptions.only("penalties"))]
    off = [h.path for h in ranked.searcher.search(query, limit=5, ranking=RankingOptions.off())]
    assert only.index("pkg/waits.py") < off.index("pkg/waits.py")


def test_size_signal_lets_the_large_function_beat_tiny_helpers(ranked: Workspace) -> None:
    query = "parse configuration lines"
    on = [h.symbol for h in ranked.searcher.search(query, limit=5, ranking=RankingOptions.only("size"))]
    assert on[0] == "parse_config_file", on


def test_file_coherence_lifts_a_file_with_several_strong_chunks(ranked: Workspace) -> None:
    query = "session cookies requests adapters"
    off = ranked.searcher.search(query, limit=10, ranking=RankingOptions.off())
    on = ranked.searcher.search(query, limit=10, ranking=RankingOptions.only("coherence"))
    best_off = next(i for i, h in enumerate(off) if h.path == "pkg/session.py")
    best_on = next(i for i, h in enumerate(on) if h.path == "pkg/session.py")
    assert best_on <= best_off
    assert best_on == 0, [(h.path, h.symbol) for h in on]
    assert "file coherence" in on[0].why


def test_diversity_spreads_results_over_files(ranked: Workspace) -> None:
    query = "session request cookies"
    on = ranked.searcher.search(query, limit=4, ranking=RankingOptions.only("diversity"))
    off = ranked.searcher.search(query, limit=4, ranking=RankingOptions.off())
    assert len({h.path for h in on}) >= len({h.path for h in off})
    assert len({h.path for h in on}) >= 2


def test_exact_file_name_beats_a_prefix_match(tmp_path: Path, embedder) -> None:
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws/Router.swift").write_text(
        "final class Router {\n    var routes: [String: Handler] = [:]\n"
        "    func register(_ path: String, _ h: Handler) {\n"
        "        routes[path] = h\n    }\n}\n"
    )
    (tmp_path / "ws/RouterDelegate.swift").write_text(
        "protocol RouterDelegate {\n    func router(_ router: Router, didRegister path: String)\n"
        "    func router(_ router: Router, willRoute path: String)\n}\n"
        "extension RouterDelegate {\n    func routerLog(_ router: Router) {\n        print(router)\n    }\n}\n"
    )
    ws = Workspace(tmp_path / "ws", EngineConfig(index_dir=str(tmp_path / "idx")), embedder=embedder)
    ws.index()
    hits = ws.search("Router", limit=3)
    assert hits[0].path == "Router.swift", [(h.path, h.symbol) for h in hits]


# --------------------------------------------------------------------------- session 3 signals

_FIELDS = "\n".join(f"\tsetting{i:03d} string // option {i} of the router's configuration" for i in range(90))
GO_ENGINE = (
    "package web\n\n"
    "// Engine is the framework's instance: it holds the router, the middleware and the settings.\n"
    "type Engine struct {\n" + _FIELDS + "\n}\n\n"
    "func (engine *Engine) Run(addr string) error {\n\treturn serve(addr, engine)\n}\n\n"
    "func (engine *Engine) Use(middleware ...Handler) {\n"
    "\tengine.handlers = append(engine.handlers, middleware...)\n}\n"
)
GO_VALIDATOR = (
    "package web\n\n"
    "type defaultValidator struct {\n\tvalidate any\n}\n\n"
    "// Engine returns the validator engine that checks request structs.\n"
    "func (v *defaultValidator) Engine() any {\n\treturn v.validate\n}\n"
)


def _indexed(factory: pytest.TempPathFactory, name: str, files: dict[str, str], embedder) -> Workspace:
    """A workspace of these files (relative path -> text), indexed with the real model into its own dir."""
    root = factory.mktemp(name)
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    ws = Workspace(root, EngineConfig(index_dir=str(factory.mktemp(f"{name}-idx"))), embedder=embedder)
    ws.index()
    return ws


@pytest.fixture(scope="module")
def go_ws(tmp_path_factory: pytest.TempPathFactory, embedder) -> Workspace:
    return _indexed(tmp_path_factory, "ranking-go", {"gin.go": GO_ENGINE, "validator.go": GO_VALIDATOR}, embedder)


def test_a_type_query_finds_the_type_not_a_method_of_that_name(go_ws: Workspace) -> None:
    hits = go_ws.search("Engine", limit=5)
    top = hits[0]
    assert (top.path, top.symbol, top.kind) == ("gin.go", "Engine", "struct"), [(h.path, h.symbol) for h in hits]


def test_a_split_definition_is_found_by_its_first_window(go_ws: Workspace) -> None:
    windows = [h for h in go_ws.searcher.symbols("Engine", limit=20) if h.kind == "struct"]
    assert len(windows) >= 2, "the fixture's struct must be cut into windows"
    hits = go_ws.search("Engine", limit=5)
    assert hits[0].start_line == min(w.start_line for w in windows), hits[0]


def test_file_word_lookup_finds_a_file_named_like_a_sentence_word(ranked: Workspace) -> None:
    from engine.ranking import analyse_query
    from engine.search import SearchFilters

    info = analyse_query("how the waits are computed between attempts")
    rows = ranked.searcher._lookup(info, SearchFilters(), RankingOptions())
    assert {r.candidate.path for r in rows} == {"pkg/waits.py"}
    assert ranked.searcher._lookup(info, SearchFilters(), RankingOptions().without("file_words")) == []


def test_lookup_rows_get_the_same_cosine_as_the_dense_search(ranked: Workspace) -> None:
    from engine.ranking import analyse_query
    from engine.search import SearchFilters, _merge_lookup

    query = "how the waits are computed between attempts"
    vector = ranked.embedder.embed_query(query)
    dense = ranked.searcher._dense(vector, 40, SearchFilters())
    lookup = ranked.searcher._lookup(analyse_query(query), SearchFilters(), RankingOptions())
    expected = {r.id: r.semantic for r in dense}
    # Pretend the dense pool missed the looked-up rows: the merge must score them by the same cosine.
    missing = [r for r in dense if r.id not in {x.candidate.id for x in lookup}]
    merged, unscored = _merge_lookup(missing, lookup, vector, SearchFilters())
    assert not unscored
    got = {r.id: r.semantic for r in merged}
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-4)
    assert [r.id for r in merged] == sorted(got, key=lambda k: -got[k])


def test_lua_method_names_split_on_the_colon() -> None:
    from engine.ranking import analyse_query

    info = analyse_query("how Picker:get_selection returns the highlighted entry")
    assert info.names == ("get_selection",) and info.qualifiers == ("Picker",)


# --------------------------------------------------------------------------- session 4: query forms

AREA_FILES = {
    "pkg/retry.py": '''"""Retry timing."""


def retry_delay(attempt, base=0.5):
    """Seconds to wait before the next retry attempt: exponential backoff, doubling each time."""
    return base * (2 ** attempt)


def retry_jitter(delay, spread=0.1):
    """Random jitter added to a retry delay so that clients do not retry in lockstep."""
    import random
    return delay + random.uniform(-spread, spread) * delay


def retry_cap(delay, cap=30.0):
    """The longest delay between two retry attempts."""
    return min(delay, cap)
''',
    "pkg/policy.py": '''class RetryPolicy:
    """Decides whether a failed request is attempted again and how many attempts are left."""

    def __init__(self, attempts=3):
        self.attempts = attempts

    def should_retry(self, error, attempt):
        return attempt < self.attempts and getattr(error, "transient", False)
''',
    "pkg/table.py": '''class Table:
    """A database table: its name, its columns and its constraints."""

    def __init__(self, name):
        self.name = name
        self.columns = []
        self.constraints = []

    def add_column(self, column):
        self.columns.append(column)
        return column

    def unique(self, *columns):
        self.constraints.append(("unique", columns))
''',
    "pkg/column.py": '''class Column:
    """One column of a table: a name, an SQL type, and whether it may be null."""

    def __init__(self, name, sql_type, nullable=False):
        self.name = name
        self.sql_type = sql_type
        self.nullable = nullable

    def ddl(self):
        """The column's definition in a CREATE TABLE statement."""
        null = "" if self.nullable else " NOT NULL"
        return f"{self.name} {self.sql_type}{null}"
''',
    "pkg/middleware.py": '''def retry(handler, attempts=3):
    """Retry middleware: calls the handler again when it fails, with a backoff delay between tries."""
    def wrapped(request):
        for attempt in range(attempts):
            try:
                return handler(request)
            except IOError:
                if attempt == attempts - 1:
                    raise
    return wrapped


def log_requests(handler):
    """Middleware that logs every request."""
    def wrapped(request):
        print(request)
        return handler(request)
    return wrapped
''',
    "pkg/retry_middleware.py": '''class RetryMiddleware:
    """Wraps the next handler of the stack."""

    def __init__(self, next_handler, decider):
        self.next_handler = next_handler
        self.decider = decider

    def __call__(self, request, attempt=0):
        try:
            return self.next_handler(request)
        except IOError as error:
            if not self.decider(attempt, error):
                raise
            return self(request, attempt + 1)
''',
}


@pytest.fixture(scope="module")
def areas(tmp_path_factory: pytest.TempPathFactory, embedder) -> Workspace:
    return _indexed(tmp_path_factory, "ranking-areas", AREA_FILES, embedder)


def test_a_topic_phrase_gets_the_next_file_before_a_second_chunk_of_the_first(areas: Workspace) -> None:
    query = "retry attempts and backoff delays"
    on = [h.path for h in areas.searcher.search(query, limit=4)]
    prose = [h.path for h in areas.searcher.search(query, limit=4, ranking=RankingOptions().without("forms"))]
    assert on[0] == prose[0] == "pkg/retry.py"
    assert prose[1] == "pkg/retry.py", prose  # read as prose, two functions of one file may both be wanted
    assert on[1] != "pkg/retry.py", on


def test_a_capitalised_name_in_a_question_finds_its_definition(areas: Workspace) -> None:
    query = "how Table defines columns and constraints"
    hits = areas.searcher.search(query, limit=4)
    assert (hits[0].path, hits[0].symbol, hits[0].kind) == ("pkg/table.py", "Table", "class"), hits[0]
    assert "definition" in hits[0].why
    prose = areas.searcher.search(query, limit=4, ranking=RankingOptions().without("forms"))
    assert (prose[0].symbol, prose[0].kind) != ("Table", "class"), prose[0]


def _boost(hit, label: str) -> float:
    for signal in hit.signals:
        if signal.startswith(label + " +"):
            return float(signal.split("+")[1])
    return 0.0


def test_a_file_named_by_two_query_words_beats_one_named_by_one(areas: Workspace) -> None:
    hits = areas.search("retry middleware and backoff logic", limit=5)
    by_path = {h.path: h for h in reversed(hits)}
    joined, single = by_path["pkg/retry_middleware.py"], by_path["pkg/middleware.py"]
    assert hits[0].path == "pkg/retry_middleware.py", [h.path for h in hits]
    assert _boost(joined, "file name") > _boost(single, "file name") > 0, (joined.signals, single.signals)


V3_ERRORS = '''class ValidationError(Exception):
    """Raised when a value does not match its schema: lists every issue found while parsing."""

    def __init__(self, issues):
        super().__init__(f"{len(issues)} validation issues")
        self.issues = issues

    def format(self):
        return "\\n".join(f"{issue.path}: {issue.message}" for issue in self.issues)
'''
V4_ERRORS = V3_ERRORS.replace("lists every issue found while parsing", "carries the issues found while parsing")


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory, embedder) -> Workspace:
    files = {"lib/v3/errors.py": V3_ERRORS, "lib/v4/errors.py": V4_ERRORS}
    return _indexed(tmp_path_factory, "ranking-versions", files, embedder)


def test_an_older_version_tree_yields_to_the_current_one(versions: Workspace) -> None:
    query = "validation error that lists every issue found while parsing"
    plain = versions.searcher.search(query, limit=4, ranking=RankingOptions().without("penalties"))
    assert plain[0].path == "lib/v3/errors.py", [h.path for h in plain]  # its text matches a little better
    hits = versions.search(query, limit=4)
    assert hits[0].path == "lib/v4/errors.py", [(h.path, h.signals) for h in hits]
    older = next(h for h in hits if h.path == "lib/v3/errors.py")
    assert any(s.startswith("older version") for s in older.signals)
    # Naming the old version asks for it.
    asked = versions.search("v3 " + query, limit=4)
    assert asked[0].path == "lib/v3/errors.py", [h.path for h in asked]


EXCEPTION_FILES = {
    "net/exceptions/transfer.py": '''class TransferError(IOError):
    """Base class of the errors raised while a request is on the wire."""


class ConnectError(TransferError):
    """The connection could not be opened."""
''',
    "net/exceptions/protocol.py": '''class ProtocolError(Exception):
    """The server answered something that is not valid HTTP."""
''',
    "net/stats.py": '''def transfer_error_summary(stats):
    """Summarise the transfer errors of a run: how many requests failed, and with which errors."""
    failed = [s for s in stats if s.error]
    return {"failed": len(failed), "errors": sorted({type(s.error).__name__ for s in failed})}
''',
}


@pytest.fixture(scope="module")
def exceptions(tmp_path_factory: pytest.TempPathFactory, embedder) -> Workspace:
    return _indexed(tmp_path_factory, "ranking-exceptions", EXCEPTION_FILES, embedder)


def test_a_heading_weighs_the_directory_it_names_more_than_prose_does(exceptions: Workspace) -> None:
    query = "exception hierarchy for transfer errors"
    heading = exceptions.searcher.search(query, limit=3)
    prose = exceptions.searcher.search(query, limit=3, ranking=RankingOptions().without("forms"))
    assert heading[0].path == prose[0].path == "net/exceptions/transfer.py"
    assert _boost(heading[0], "path") > _boost(prose[0], "path") > 0, (heading[0].signals, prose[0].signals)


SUBJECT_FILES = {
    "ui/finders.py": '''class StaticFinder:
    """Yields the given results one at a time."""

    def __init__(self, results):
        self.results = list(results)

    def __iter__(self):
        yield from self.results
''',
    "ui/prompt.py": '''class Picker:
    """Shows a prompt and a results buffer; the finder's entries are fed into the results buffer."""

    def __init__(self, finder, sorter):
        self.finder = finder
        self.sorter = sorter
        self.results_buffer = []

    def refresh(self):
        """Feed every entry of the finder into the results buffer, best first."""
        entries = sorted(self.finder, key=self.sorter)
        self.results_buffer[:] = entries
''',
}


@pytest.fixture(scope="module")
def subject_ws(tmp_path_factory: pytest.TempPathFactory, embedder) -> Workspace:
    return _indexed(tmp_path_factory, "ranking-subject", SUBJECT_FILES, embedder)


def test_a_question_is_answered_by_the_file_named_like_its_subject(subject_ws: Workspace) -> None:
    query = "how finders feed entries into a picker results buffer"
    hits = subject_ws.searcher.search(query, limit=3)
    assert hits[0].path == "ui/finders.py", [(h.path, h.signals) for h in hits]
    assert any(s.startswith("subject's file") for s in hits[0].signals)
    # Read as prose, the chunk that describes the feeding in the most words wins.
    prose = subject_ws.searcher.search(query, limit=3, ranking=RankingOptions().without("forms"))
    assert prose[0].path == "ui/prompt.py", [h.path for h in prose]


# --------------------------------------------------------------------------- session 4: overloads

TS_THROTTLE = """import { Source, Scheduler } from './source';

// throttleWindow(source, 100)
export function throttleWindow<T>(source: Source<T>, windowMilliseconds: number): Source<T>;

// throttleWindow(source, 100, animationFrames)
export function throttleWindow<T>(source: Source<T>, windowMilliseconds: number, scheduler: Scheduler): Source<T>;


export function throttleWindow<T>(...args: any[]): Source<T> {
  const [a, b, c] = args;
  return operate(a, (x: any, y: any) => {
    let z = false;
    x.subscribe(wrap(y, (v: any) => {
      if (!z) {
        z = true;
        y.next(v);
        (c ?? defaultQueue).later(() => (z = false), b);
      }
    }));
  });
}
"""

PY_LOAD = """import typing as t


@t.overload
def load_settings(config_path: str, environment_name: str) -> Settings:
    ...


@t.overload
def load_settings(config_path: str, environment_name: None = None) -> Settings:
    ...


def load_settings(a, b=None):
    x = _read(a)
    if b is not None:
        x = {**x, **x.get(b, {})}
    y = Settings()
    for k, v in x.items():
        setattr(y, k, v)
    return y
"""


@pytest.mark.parametrize(
    ("language", "content", "signature"),
    [
        ("typescript", "export function f(a: number): string;", True),
        ("typescript", "export function f(\n  a: { [K in any]: never }\n): Observable<never>;", True),
        ("typescript", "export function f(a: number): string {\n  return String(a);\n}", False),
        ("python", "@t.overload\ndef f(a: int) -> int:\n    ...", True),
        ("python", "@typing.overload\ndef f(a: int) -> int: ...", True),
        ("python", "@functools.cache\ndef f(a):\n    return a", False),
        ("go", "func f(a int) int;", False),
    ],
)
def test_signature_only_chunks(language: str, content: str, signature: bool) -> None:
    from engine.ranking import is_signature_only
    from engine.records import Candidate

    row = Candidate("id", "x", language, "f", "function", "", 0, content.count("\n"), content)
    assert is_signature_only(row) is signature


@pytest.fixture(scope="module")
def overload_ws(tmp_path_factory: pytest.TempPathFactory, embedder) -> Workspace:
    files = {"throttle.ts": TS_THROTTLE, "settings.py": PY_LOAD}
    return _indexed(tmp_path_factory, "ranking-overloads", files, embedder)


@pytest.mark.parametrize(
    ("query", "path", "implementation_line"),
    [
        ("Throttle a source to one value per window of milliseconds.", "throttle.ts", 9),
        ("Load the settings from the config file, overlaid with one environment's section.", "settings.py", 13),
    ],
)
def test_overload_signatures_fold_into_the_implementation(
    overload_ws: Workspace, query: str, path: str, implementation_line: int
) -> None:
    """Docstring-style query: the hit is the implementation, not one of its bodiless overloads."""
    unfolded = overload_ws.searcher.search(query, limit=10, ranking=RankingOptions().without("overloads"))
    first = next(h for h in unfolded if h.path == path)
    assert first.start_line < implementation_line, "the fixture's signatures must outrank the body unfolded"
    folded = overload_ws.searcher.search(query, limit=10)
    mine = [h for h in folded if h.path == path]
    assert mine[0].start_line == implementation_line, [(h.start_line, h.signals) for h in mine]
    assert all(h.start_line >= implementation_line for h in mine), "no signature is listed beside it"
    assert any("overload" in s for s in mine[0].signals), mine[0].signals


# --------------------------------------------------------------------------- forwarders (tsrank)

# A public wrapper that only forwards to the implementation in core/, and a type that extends its
# same-named core type (zod's classic/ over core/): the description matches both.
FWD_PUBLIC = """import * as core from "../core/api.js";
import { $Issue, $ValidationError } from "../core/base.js";

/** Add a custom refinement that may report validation issues on the schema. */
export function superRefine(refinement) {
  return core._superRefine(refinement);
}

/** A validation error holding the issues found while parsing, with formatting helpers. */
export interface ValidationError extends $ValidationError {
  format(): string;
  flatten(): Record<string, string[]>;
}
"""
FWD_CORE_API = """import { $Issue } from "./base.js";

/** Add a custom refinement that may report validation issues on the schema. */
export function _superRefine(refinement) {
  const check = { kind: "custom", run: undefined };
  check.run = (payload) => {
    payload.addIssue = (issue) => payload.issues.push({ code: "custom", input: payload.value, ...issue });
    return refinement(payload.value, payload);
  };
  return check;
}
"""
FWD_CORE_ERRORS = """/** One validation issue: where it was found and what went wrong. */
export interface $Issue {
  code: string;
  path: (string | number)[];
  message: string;
}

/** The error thrown by parse. */
export interface $ValidationError extends Error {
  issues: $Issue[];
  name: string;
}
"""


@pytest.fixture(scope="module")
def forwarding(tmp_path_factory: pytest.TempPathFactory, embedder) -> Workspace:
    files = {"public/schemas.ts": FWD_PUBLIC, "core/api.ts": FWD_CORE_API, "core/base.ts": FWD_CORE_ERRORS}
    return _indexed(tmp_path_factory, "ranking-forwarders", files, embedder)


@pytest.mark.parametrize(
    ("query", "original", "wrapper"),
    [
        ("superRefine custom refinement that reports validation issues", "core/api.ts", "superRefine"),
        ("ValidationError issues found while parsing", "core/base.ts", "ValidationError"),
    ],
)
def test_a_wrapper_or_derived_type_yields_to_its_original(
    forwarding: Workspace, query: str, original: str, wrapper: str
) -> None:
    plain = forwarding.searcher.search(query, limit=5, ranking=RankingOptions().without("forwarders"))
    assert (plain[0].path, plain[0].symbol) == ("public/schemas.ts", wrapper), [(h.path, h.symbol) for h in plain]
    hits = forwarding.searcher.search(query, limit=5)
    assert hits[0].path == original, [(h.path, h.symbol, h.signals) for h in hits]
    moved = next(h for h in hits if h.symbol == wrapper)
    assert any(s.startswith("forwards to") for s in moved.signals), moved.signals


def test_a_query_naming_the_wrappers_tree_keeps_it_first(forwarding: Workspace) -> None:
    hits = forwarding.searcher.search("public superRefine custom refinement that reports validation issues", limit=5)
    assert (hits[0].path, hits[0].symbol) == ("public/schemas.ts", "superRefine"), [(h.path, h.signals) for h in hits]


# Parallel trees (zod's classic/ over core/): the same builder twice, nearly the same words; the
# classic file imports core, so core's definition is the original.
TWIN_CORE_API = """import * as schemas from "./schemas.js";
import * as util from "./util.js";

/** Build a record schema of keys and values. */
export function _record(Class, keyType, valueType, params) {
  return new Class({
    type: "record",
    keyType,
    valueType,
    ...util.normalizeParams(params),
  });
}
"""
TWIN_CLASSIC = """import * as core from "../core/index.js";
import * as util from "../core/util.js";
import { ZodType } from "./base.js";

/** Build a record schema of keys and values. */
export function record(keyType, valueType, params) {
  return new ZodRecord({
    type: "record",
    keyType,
    valueType,
    ...util.normalizeParams(params),
  });
}
"""


@pytest.fixture(scope="module")
def twins(tmp_path_factory: pytest.TempPathFactory, embedder) -> Workspace:
    files = {
        "lib/core/api.ts": TWIN_CORE_API,
        "lib/core/index.ts": 'export * from "./api.js";\nexport * from "./schemas.js";\nexport * from "./util.js";\n',
        "lib/classic/schemas.ts": TWIN_CLASSIC,
    }
    return _indexed(tmp_path_factory, "ranking-twins", files, embedder)


def test_a_twin_in_a_tree_that_imports_the_other_yields_to_it(twins: Workspace) -> None:
    query = "record schema builder of keys and values"
    plain = twins.searcher.search(query, limit=5, ranking=RankingOptions().without("twins"))
    assert plain[0].path == "lib/classic/schemas.ts", [(h.path, h.symbol) for h in plain]
    hits = twins.searcher.search(query, limit=5)
    assert (hits[0].path, hits[0].symbol) == ("lib/core/api.ts", "_record"), [(h.path, h.signals) for h in hits]
    moved = next(h for h in hits if h.symbol == "record")
    assert any(s.startswith("twin of lib/core/api.ts") for s in moved.signals), moved.signals
    # A query naming the importing tree asks for it.
    asked = twins.searcher.search("classic " + query, limit=5)
    assert asked[0].path == "lib/classic/schemas.ts", [(h.path, h.signals) for h in asked]


def test_imported_paths_resolve_relative_js_imports() -> None:
    from engine.ranking import imported_paths

    text = 'import * as core from "../core/index.js";\nimport { x } from "./util";\nconst y = require("lodash");\n'
    assert imported_paths("src/v4/classic/schemas.ts", text) == {"src/v4/core/index", "src/v4/classic/util"}


@pytest.mark.parametrize(
    ("symbol", "kind", "content", "target"),
    [
        ("superRefine", "function", "function superRefine(fn) {\n  return core._superRefine(fn);\n}", "superrefine"),
        ("inst.refine", "function", "inst.refine = (check) => inst.check(refine(check));", "refine"),
        ("ZodError", "interface", "interface ZodError<T> extends $ZodError<T> {\n  format(): string;\n}", "zoderror"),
        ("walk", "function", "function walk(node) {\n  return node.children.map((c) => walk(c));\n}", None),
        ("get", "method", "get(key) {\n  return this.get(key);\n}", None),
        ("parse", "function", "function parse(x) {\n  return tokenize(x).map(toNode);\n}", None),
    ],
)
def test_forwards_to(symbol: str, kind: str, content: str, target: str | None) -> None:
    from engine.ranking import forwards_to
    from engine.records import Candidate

    row = Candidate("id", "a.ts", "typescript", symbol, kind, "", 0, content.count("\n"), content)
    assert forwards_to(row) == target


def test_imports_read_through_the_name_table_equal_the_filters(twins: Workspace) -> None:
    """The twin rule reads a file's first chunks by row id (name table) instead of a filtered scan: both
    ways must give the same texts, on a table built by a scan and on one a save patched."""
    searcher, store = twins.searcher, twins.store
    paths = ["lib/core/api.ts", "lib/core/index.ts", "lib/classic/schemas.ts", "lib/not/there.ts"]
    table = store._names.build_now()
    assert table is not None
    by_rows = searcher._leading_texts(table, paths)
    assert by_rows == searcher._leading_texts(None, paths)
    assert set(by_rows) == set(paths[:3])
    saved = twins.root / "lib/classic/schemas.ts"
    original = saved.read_text()
    try:
        saved.write_text('import { extra } from "../extra/thing.js";\n' + original)
        twins.update_files(["lib/classic/schemas.ts"])
        patched = store.name_table()
        assert patched is not None and patched is not table
        again = searcher._leading_texts(patched, paths)
        assert again == searcher._leading_texts(None, paths)
        assert "../extra/thing.js" in again["lib/classic/schemas.ts"][0][1]
    finally:
        saved.write_text(original)
        twins.update_files(["lib/classic/schemas.ts"])
