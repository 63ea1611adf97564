"""Chunking and symbols: real snippets of every supported language, splitting rules, robustness."""

from __future__ import annotations

import math
import random
import time
from pathlib import Path

import pytest

from engine.chunking import chunk_file, document_symbols, language_for_file, language_for_path, split_identifier
from engine.chunking.chunker import HeaderFields, build_header
from engine.chunking.languages import CONTAINER_KINDS, SPECS
from engine.chunking.parsing import valid_node_types
from engine.records import Chunk, Symbol

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "chunking"


def _fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def _flat(symbols: list[Symbol], parent: str = "") -> list[tuple[str, str, str, int, int]]:
    out: list[tuple[str, str, str, int, int]] = []
    for sym in symbols:
        out.append((sym.name, sym.kind, parent, sym.start_line, sym.end_line))
        out.extend(_flat(sym.children, sym.name))
    return out


def _rows(chunks: list[Chunk]) -> list[tuple[int, int, str, str, str]]:
    return [(c.start_line, c.end_line, c.symbol, c.kind, c.parent) for c in chunks]


def _count(text: str) -> int:
    """A deterministic stand-in tokenizer: 4 chars a token plus 2 special tokens, like [CLS]/[SEP]."""
    return math.ceil(len(text) / 4) + 2


# --- languages ---


def test_every_configured_node_type_exists_in_its_grammar() -> None:
    for language, spec in SPECS.items():
        wanted = (*spec.symbols, *spec.attached, *spec.wrappers)
        assert valid_node_types(language, wanted) == wanted, language


@pytest.mark.parametrize(
    ("path", "language"),
    [
        ("a/b.py", "python"),
        ("x.mjs", "javascript"),
        ("x.cjs", "javascript"),
        ("x.jsx", "javascript"),
        ("x.mts", "typescript"),
        ("x.cts", "typescript"),
        ("x.tsx", "tsx"),
        ("x.go", "go"),
        ("x.rs", "rust"),
        ("X.java", "java"),
        ("x.h", "c"),
        ("x.hpp", "cpp"),
        ("x.cs", "csharp"),
        ("Rakefile", "ruby"),
        ("x.php", "php"),
        ("x.kts", "kotlin"),
        ("x.swift", "swift"),
        ("x.lua", "lua"),
        ("x.sh", "bash"),
        ("x.R", "r"),
        ("x.scala", "scala"),
        ("x.jl", "julia"),
        ("notes.txt", None),
        ("Makefile.unknown", None),
    ],
)
def test_language_for_path(path: str, language: str | None) -> None:
    assert language_for_path(path) == language


def test_cpp_header_detection() -> None:
    assert language_for_file("x.h", "namespace geo {\nclass A {};\n}\n") == "cpp"
    assert language_for_file("x.h", "struct point { int x; };\nint add(int a, int b);\n") == "c"
    chunks = chunk_file("geo.h", "namespace geo {\nclass A {\n  int x;\n};\n}\n", max_tokens=256)
    assert (chunks[0].language, chunks[0].symbol, chunks[0].kind) == ("cpp", "geo", "namespace")


# --- symbols ---

EXPECTED_SYMBOLS: dict[str, list[tuple[str, str, str, int, int]]] = {
    "sample.py": [
        ("MAX_RETRIES", "constant", "", 5, 5),  # module assignments are symbols (one-liners no chunks)
        ("top_level", "function", "", 9, 10),
        ("Point", "class", "", 13, 25),
        ("norm", "method", "Point", 19, 21),
        ("Inner", "class", "Point", 23, 25),
        ("deep", "method", "Inner", 24, 25),
        ("fetch", "function", "", 28, 32),
        ("inner", "function", "fetch", 29, 30),
    ],
    "sample.js": [
        ("add", "function", "", 3, 5),
        ("mul", "function", "", 7, 7),
        ("handler", "function", "", 9, 11),
        ("Shape", "class", "", 13, 23),
        ("constructor", "method", "Shape", 14, 16),
        ("area", "method", "Shape", 18, 20),
        ("create", "method", "Shape", 22, 22),
        ("exported", "function", "", 25, 27),
        ("obj.method", "function", "", 29, 31),
        ("gen", "function", "", 33, 35),
    ],
    "sample.ts": [
        ("Shape", "interface", "", 0, 2),
        ("area", "method", "Shape", 1, 1),
        ("Id", "type", "", 4, 4),
        ("Color", "enum", "", 6, 9),
        ("Geo", "namespace", "", 11, 13),
        ("Circle", "class", "", 15, 22),
        ("area", "method", "Circle", 19, 21),
        ("helper", "function", "", 24, 26),
        ("typed", "function", "", 28, 30),
        ("Base", "class", "", 32, 34),
        ("run", "method", "Base", 33, 33),
    ],
    "sample.tsx": [
        ("Button", "function", "", 2, 4),
        ("Card", "function", "", 6, 8),
    ],
    "sample.go": [
        ("Server", "struct", "", 5, 7),
        ("Handler", "interface", "", 9, 11),
        ("(*Server).Start", "method", "", 14, 16),
        ("(Server).Addr", "method", "", 18, 20),
        ("main", "function", "", 22, 24),
        ("ID", "type", "", 26, 26),
    ],
    "sample.rs": [
        ("Point", "struct", "", 4, 6),
        ("Shape", "enum", "", 8, 10),
        ("Area", "trait", "", 12, 14),
        ("area", "method", "Area", 13, 13),
        ("impl Point", "impl", "", 16, 20),
        ("new", "method", "impl Point", 17, 19),
        ("impl fmt::Display for Point", "impl", "", 22, 26),
        ("fmt", "method", "impl fmt::Display for Point", 23, 25),
        ("inner", "module", "", 28, 30),
        ("helper", "function", "inner", 29, 29),
        ("main", "function", "", 32, 34),
        ("square", "macro", "", 36, 40),
        ("Alias", "type", "", 42, 42),
    ],
    "Sample.java": [
        ("Sample", "class", "", 5, 21),
        ("Sample", "constructor", "Sample", 9, 11),
        ("toString", "method", "Sample", 13, 16),
        ("Listener", "interface", "Sample", 18, 20),
        ("onEvent", "method", "Listener", 19, 19),
        ("Level", "enum", "", 23, 26),
        ("Pair", "class", "", 28, 28),
    ],
    "sample.c": [
        ("point", "struct", "", 2, 4),
        ("other_t", "struct", "", 6, 8),
        ("color", "enum", "", 10, 10),
        ("add", "function", "", 13, 15),
        ("make_ptr", "function", "", 17, 19),
        ("main", "function", "", 21, 24),
    ],
    "sample.cpp": [
        ("geo", "namespace", "", 2, 16),
        ("Shape", "class", "geo", 4, 10),
        ("draw", "method", "Shape", 7, 9),
        ("Point", "struct", "geo", 12, 14),
        ("geo::Shape::perimeter", "method", "", 18, 20),
        ("identity", "function", "", 22, 25),
        ("main", "function", "", 27, 29),
    ],
    "Sample.cs": [
        ("Demo", "namespace", "", 2, 27),
        ("Widget", "class", "Demo", 4, 15),
        ("Widget", "constructor", "Widget", 9, 9),
        ("Draw", "method", "Widget", 11, 14),
        ("IThing", "interface", "Demo", 17, 20),
        ("Do", "method", "IThing", 19, 19),
        ("Vec", "struct", "Demo", 22, 22),
        ("Mode", "enum", "Demo", 24, 24),
        ("Person", "class", "Demo", 26, 26),
    ],
    "sample.rb": [
        ("Tools", "module", "", 2, 13),
        ("Helper", "class", "Tools", 4, 12),
        ("initialize", "method", "Helper", 5, 7),
        ("self.build", "method", "Helper", 9, 11),
        ("top_level", "function", "", 15, 17),
    ],
    "sample.php": [
        ("Greeter", "interface", "", 4, 7),
        ("greet", "method", "Greeter", 6, 6),
        ("Loud", "trait", "", 9, 12),
        ("shout", "method", "Loud", 11, 11),
        ("Hello", "class", "", 14, 23),
        ("greet", "method", "Hello", 19, 22),
        ("helper", "function", "", 25, 28),
        ("Suit", "enum", "", 30, 33),
    ],
    "sample.kt": [
        ("Point", "class", "", 4, 4),
        ("Shape", "interface", "", 6, 8),
        ("area", "method", "Shape", 7, 7),
        ("Registry", "object", "", 10, 12),
        ("register", "method", "Registry", 11, 11),
        ("Circle", "class", "", 14, 22),
        ("area", "method", "Circle", 15, 17),
        ("Companion", "object", "Circle", 19, 21),
        ("unit", "method", "Companion", 20, 20),
        ("main", "function", "", 24, 26),
        ("Color", "enum", "", 28, 28),
    ],
    "sample.swift": [
        ("Shape", "interface", "", 2, 4),
        ("area", "method", "Shape", 3, 3),
        ("Point", "struct", "", 6, 8),
        ("Circle", "class", "", 10, 20),
        ("init", "constructor", "Circle", 13, 15),
        ("area", "method", "Circle", 17, 19),
        ("Circle", "extension", "", 22, 26),
        ("describe", "method", "Circle", 23, 25),
        ("Color", "enum", "", 28, 30),
        ("main", "function", "", 32, 34),
    ],
    "sample.lua": [
        ("add", "function", "", 3, 5),
        ("M.greet", "function", "", 7, 9),
        ("M:method", "function", "", 11, 13),
        ("M.handler", "function", "", 15, 17),
    ],
    "sample.sh": [
        ("usage", "function", "", 4, 6),
        ("main", "function", "", 8, 10),
    ],
}


@pytest.mark.parametrize("fixture", sorted(EXPECTED_SYMBOLS))
def test_document_symbols(fixture: str) -> None:
    language = language_for_path(fixture)
    assert language is not None
    assert _flat(document_symbols(language, _fixture(fixture))) == EXPECTED_SYMBOLS[fixture]


EXTRA_LANGUAGES: dict[str, tuple[str, list[tuple[str, str, str, int, int]]]] = {
    "scala": (
        "object Main {\n  def run(x: Int): Int = {\n    x\n  }\n}\ntrait T {\n  def g(): Unit\n}\n",
        [
            ("Main", "object", "", 0, 4),
            ("run", "method", "Main", 1, 3),
            ("T", "trait", "", 5, 7),
            ("g", "method", "T", 6, 6),
        ],
    ),
    "julia": (
        "function add(a, b)\n    a + b\nend\nstruct Point\n    x::Int\nend\n",
        [("add", "function", "", 0, 2), ("Point", "struct", "", 3, 5)],
    ),
    "r": ("add <- function(a, b) {\n  a + b\n}\n", [("add", "function", "", 0, 2)]),
    "haskell": (
        "module Main where\n\ndata Shape = Circle Double\n\narea :: Shape -> Double\narea (Circle r) = r\n",
        [("Shape", "type", "", 2, 2), ("area", "function", "", 5, 5)],
    ),
    "ocaml": (
        "let add a b = a + b\n\nmodule M = struct\n  let f x = x\nend\n",
        [("add", "function", "", 0, 0), ("M", "module", "", 2, 4), ("f", "function", "M", 3, 3)],
    ),
    "elixir": (
        "defmodule Foo.Bar do\n  def run(x) do\n    x\n  end\n  defp helper(y), do: y\nend\n",
        [
            ("Foo.Bar", "module", "", 0, 5),
            ("run", "function", "Foo.Bar", 1, 3),
            ("helper", "function", "Foo.Bar", 4, 4),
        ],
    ),
    "zig": (
        "pub fn main() void {\n    return;\n}\n"
        "const P = struct {\n    pub fn init() P {\n        return .{};\n    }\n};\n",
        [("main", "function", "", 0, 2), ("P", "struct", "", 3, 7), ("init", "method", "P", 4, 6)],
    ),
    "dart": (
        "class A extends B {\n  void run() {\n    print(x);\n  }\n}\nenum E { a, b }\n",
        [("A", "class", "", 0, 4), ("E", "enum", "", 5, 5)],
    ),
}


@pytest.mark.parametrize("language", sorted(EXTRA_LANGUAGES))
def test_document_symbols_extra_languages(language: str) -> None:
    text, expected = EXTRA_LANGUAGES[language]
    assert _flat(document_symbols(language, text)) == expected


def test_selection_range_is_the_name() -> None:
    text = _fixture("sample.py")
    top_level = document_symbols("python", text)[1]  # [0] is MAX_RETRIES
    assert (top_level.selection_line, top_level.selection_col, top_level.selection_end_col) == (9, 4, 13)
    line = text.split("\n")[top_level.selection_line]
    assert line[top_level.selection_col : top_level.selection_end_col] == "top_level"
    go = {s.name: s for s in document_symbols("go", _fixture("sample.go"))}
    start = go["(*Server).Start"]
    assert _fixture("sample.go").split("\n")[start.selection_line][start.selection_col : start.selection_end_col] == (
        "Start"
    )


def test_selection_columns_count_characters_not_bytes() -> None:
    text = 'x = "é"; y = "ü"\ndef café_au_lait():\n    pass\n'
    _x, y, sym = document_symbols("python", text)
    line = text.split("\n")[sym.selection_line]
    assert line[sym.selection_col : sym.selection_end_col] == "café_au_lait"
    assert text.split("\n")[0][y.selection_col : y.selection_end_col] == "y"


def test_document_symbols_unknown_language_and_garbage() -> None:
    assert document_symbols("cobol", "IDENTIFICATION DIVISION.") == []
    assert isinstance(document_symbols("python", "def (:\n\x00\x01 class"), list)


# --- chunks of the fixtures ---


def test_python_chunks_with_decorators_comments_and_blocks() -> None:
    chunks = chunk_file("pkg/sample.py", _fixture("sample.py"), max_tokens=512)
    assert _rows(chunks) == [
        (0, 5, "", "block", ""),
        (8, 10, "top_level", "function", ""),  # starts at the comment directly above
        (13, 25, "Point", "class", ""),  # starts at @dataclass; header with elided members
        (19, 21, "Point.norm", "method", "Point"),
        (23, 25, "Point.Inner", "class", "Point"),  # one member: kept whole
        (28, 32, "fetch", "function", ""),
        (35, 37, "", "block", ""),
    ]
    assert chunks[1].content.startswith("# Helper comment directly above.\ndef top_level")
    assert chunks[2].content.startswith("@dataclass\nclass Point:")
    assert "    def norm(self) -> float:\n        ..." in chunks[2].content
    assert all(c.language == "python" and c.path == "pkg/sample.py" for c in chunks)


PYTHON_GLOBALS = '''from werkzeug.local import LocalProxy

_no_app_msg = """\\
Working outside of application context.\\
"""
# The application context's globals.
g: _AppCtxGlobals = LocalProxy(  # type: ignore[assignment]
    _cv_app, "g", unbound_message=_no_app_msg
)
session = LocalProxy(
    _cv_app, "session"
)
MAX_SIZE = 3
TIMEOUT = 5
logger = make_logger()
a, b = (
    1, 2
)
obj.attr = (
    3
)


def helper():
    local = (
        1
    )
    return local
'''


def test_python_multiline_module_assignments_are_named_chunks() -> None:
    """flask's ``g`` / ``session`` must be chunks named after them (issue #12), not anonymous blocks."""
    chunks = chunk_file("src/flask/globals.py", PYTHON_GLOBALS, max_tokens=512)
    assert _rows(chunks) == [
        (2, 4, "_no_app_msg", "variable", ""),
        (5, 8, "g", "variable", ""),  # annotated; starts at the comment directly above
        (9, 11, "session", "variable", ""),
        # one-line assignments and tuple / attribute targets stay in the gap block, as before
        (12, 20, "", "block", ""),
        (23, 27, "helper", "function", ""),  # its local assignment is no symbol
    ]
    assert chunks[1].content.startswith("# The application context's globals.\ng: _AppCtxGlobals")
    assert "variable g" in chunks[1].header
    names = [(s.name, s.kind) for s in document_symbols("python", PYTHON_GLOBALS)]
    assert names == [
        ("_no_app_msg", "variable"),
        ("g", "variable"),
        ("session", "variable"),
        ("MAX_SIZE", "constant"),
        ("TIMEOUT", "constant"),
        ("logger", "variable"),
        ("helper", "function"),
    ]


def test_python_file_of_one_line_constants_is_chunked_as_before() -> None:
    text = "\n".join(f"NAME_{i} = {i}" for i in range(5)) + "\n"
    assert _rows(chunk_file("consts.py", text, max_tokens=512)) == [(0, 4, "", "block", "")]


def test_typescript_decorator_and_export_belong_to_the_symbol() -> None:
    chunks = {c.symbol: c for c in chunk_file("src/sample.ts", _fixture("sample.ts"), max_tokens=512)}
    assert chunks["Circle"].start_line == 15
    assert chunks["Circle"].content.startswith('@Component({ selector: "x" })\nexport class Circle')
    assert chunks["helper"].content.startswith("export const helper = async")
    assert chunks["helper"].kind == "function"


def test_go_methods_have_the_receiver_as_parent_and_tiny_gaps_are_not_chunks() -> None:
    chunks = chunk_file("cmd/main.go", _fixture("sample.go"), max_tokens=512)
    assert _rows(chunks) == [
        # "package main" + import: too small to be a result, and never merged into Server's chunk
        (4, 7, "Server", "struct", ""),
        (9, 11, "Handler", "interface", ""),
        (13, 16, "Server.Start", "method", "Server"),
        (18, 20, "Server.Addr", "method", "Server"),
        (22, 24, "main", "function", ""),
        (26, 26, "ID", "type", ""),
    ]


def test_rust_impl_methods_have_the_type_as_parent() -> None:
    methods = "\n".join(
        f"    /// Method {i}.\n    pub fn method_{i}(&self) -> i32 {{\n        let x = {i};\n        x * 2\n    }}\n"
        for i in range(8)
    )
    text = f"struct Foo;\n\nimpl std::fmt::Debug for Foo {{\n{methods}}}\n"
    chunks = chunk_file("src/lib.rs", text, max_tokens=60, count_tokens=_count)
    method_chunks = [c for c in chunks if c.kind == "method"]
    assert [c.symbol for c in method_chunks] == [f"Foo.method_{i}" for i in range(8)]
    assert {c.parent for c in method_chunks} == {"Foo"}
    assert method_chunks[0].content.startswith("    /// Method 0.\n    pub fn method_0")
    assert all(_count(c.embed_text) <= 60 for c in chunks)


@pytest.mark.parametrize("fixture", sorted(EXPECTED_SYMBOLS))
def test_every_fixture_chunks_cleanly(fixture: str) -> None:
    text = _fixture(fixture)
    chunks = chunk_file(f"src/{fixture}", text, max_tokens=512)
    assert chunks
    lines = text.split("\n")
    for chunk in chunks:
        assert 0 <= chunk.start_line <= chunk.end_line < len(lines)
        source = lines[chunk.start_line : chunk.end_line + 1]
        if chunk.kind in CONTAINER_KINDS and chunk.content != "\n".join(source):
            # a split container's header: its own lines, each member body elided to "..."
            assert all(line in source or line.strip() == "..." for line in chunk.content.split("\n"))
        else:
            assert chunk.content == "\n".join(source)
        assert chunk.header.startswith(f"# path: src/{fixture}")
    assert [c.start_line for c in chunks] == sorted(c.start_line for c in chunks)
    # Every non-blank line is in some chunk, but for tiny gaps between symbols (< 3 non-blank lines).
    covered = {row for c in chunks for row in range(c.start_line, c.end_line + 1)}
    missing = [row for row, line in enumerate(lines) if line.strip() and row not in covered]
    runs: list[list[int]] = []
    for row in missing:
        if runs and all(not lines[r].strip() for r in range(runs[-1][-1] + 1, row)):
            runs[-1].append(row)
        else:
            runs.append([row])
    assert all(len(run) < 3 for run in runs), runs


# --- splitting ---


def _big_class(methods: int = 10) -> str:
    body = "\n".join(
        f"    @staticmethod\n    def method_{i}(value):\n"
        + "".join(f"        value = value * {j} + {i}\n" for j in range(6))
        + "        return value\n"
        for i in range(methods)
    )
    return f'class Big(Base):\n    """A big class."""\n\n    limit = 10\n    name: str = "big"\n\n{body}'


def test_big_class_becomes_header_plus_methods() -> None:
    text = _big_class()
    chunks = chunk_file("big.py", text, max_tokens=400, count_tokens=_count)
    header, *methods = chunks
    assert (header.symbol, header.kind, header.parent) == ("Big", "class", "")
    assert header.start_line == 0 and header.end_line == len(text.rstrip("\n").split("\n")) - 1
    assert "limit = 10" in header.content and 'name: str = "big"' in header.content
    assert "@staticmethod\n    def method_3(value):\n        ..." in header.content
    assert "value * 2" not in header.content  # bodies elided
    assert [(c.symbol, c.kind, c.parent) for c in methods] == [(f"Big.method_{i}", "method", "Big") for i in range(10)]
    assert all(c.content.startswith("    @staticmethod\n") for c in methods)  # decorator included
    assert all(_count(c.embed_text) <= 400 for c in chunks)


def test_small_class_is_split_so_hits_name_the_method() -> None:
    chunks = chunk_file("big.py", _big_class(2), max_tokens=1000, count_tokens=_count)
    assert _rows(chunks) == [
        (0, 24, "Big", "class", ""),
        (6, 14, "Big.method_0", "method", "Big"),
        (16, 24, "Big.method_1", "method", "Big"),
    ]


def test_small_class_stays_whole_when_splitting_is_off() -> None:
    chunks = chunk_file("big.py", _big_class(2), max_tokens=1000, count_tokens=_count, split_containers=False)
    assert _rows(chunks) == [(0, 24, "Big", "class", "")]


def test_long_function_is_split_under_the_limit() -> None:
    body = "".join(f"    total += compute_value(item_{i}, factor={i})\n" for i in range(200))
    text = f"def accumulate(items):\n    total = 0\n{body}    return total\n"
    chunks = chunk_file("calc.py", text, max_tokens=64, count_tokens=_count)
    assert len(chunks) > 10
    assert {(c.symbol, c.kind, c.parent) for c in chunks} == {("accumulate", "function", "")}
    assert all(_count(c.embed_text) <= 64 for c in chunks)
    covered = {row for c in chunks for row in range(c.start_line, c.end_line + 1)}
    assert covered == set(range(203))
    assert [c.start_line for c in chunks] == sorted(c.start_line for c in chunks)


def test_fallback_estimate_also_respects_the_limit() -> None:
    body = "".join(f"    total += compute_value(item_{i}, factor={i})\n" for i in range(200))
    chunks = chunk_file("calc.py", f"def accumulate(items):\n{body}", max_tokens=100)
    assert all(math.ceil(len(c.embed_text) / 3.2) <= 100 for c in chunks)


def test_top_level_code_becomes_overlapping_windows() -> None:
    text = "".join(f"SETTING_{i} = {i}\n" for i in range(100))
    chunks = chunk_file("settings.py", text, max_tokens=10_000, window_lines=40, overlap_lines=8)
    assert _rows(chunks) == [(0, 39, "", "block", ""), (32, 71, "", "block", ""), (64, 99, "", "block", "")]


def test_whitespace_only_windows_are_skipped() -> None:
    text = "x = 1\ny = 2\nz = 3\n" + "\n" * 200 + "a = 1\nb = 2\nc = 3\n"
    chunks = chunk_file("spaced.py", text, max_tokens=10_000)
    assert [(c.start_line, c.end_line) for c in chunks] == [(0, 2), (203, 205)]
    assert chunk_file("empty.py", "\n\n   \n", max_tokens=100) == []


def test_unknown_extension_gives_text_windows() -> None:
    text = "".join(f"line {i} of some notes\n" for i in range(90))
    chunks = chunk_file("docs/notes.unknownext", text, max_tokens=10_000)
    assert [(c.start_line, c.end_line, c.language, c.kind, c.symbol) for c in chunks] == [
        (0, 39, "text", "block", ""),
        (32, 71, "text", "block", ""),
        (64, 89, "text", "block", ""),
    ]


@pytest.mark.parametrize("path", ["junk.py", "junk.js", "junk.rs", "junk.c", "junk.go", "junk.rb", "junk.txt"])
def test_garbage_does_not_raise(path: str) -> None:
    rng = random.Random(7)
    text = bytes(rng.randrange(256) for _ in range(20_000)).decode("latin-1")
    chunks = chunk_file(path, text, max_tokens=128, count_tokens=_count)
    assert chunks and all(_count(c.embed_text) <= 128 for c in chunks)
    text = "def f(:\n  class {{{{ fn ( \x00\x01\x02 }}}}\n" * 50 + "\ud800 lone surrogate"
    assert isinstance(chunk_file(path, text, max_tokens=128), list)


def test_minified_single_line_respects_the_cap() -> None:
    statement = "function f{0}(a,b){{return a*{0}+b}}var v{0}=f{0}(1,2);"
    text = "".join(statement.format(i) for i in range(6000))[:200_000]
    assert "\n" not in text and len(text) == 200_000
    start = time.perf_counter()
    chunks = chunk_file("dist/app.min.js", text, max_tokens=256, count_tokens=_count)
    assert time.perf_counter() - start < 2.0
    assert all(_count(c.embed_text) <= 256 for c in chunks)
    assert all(c.start_line == c.end_line == 0 for c in chunks)
    assert sum(len(c.content) for c in chunks) >= len(text)  # nothing lost
    estimated = chunk_file("dist/app.min.js", text, max_tokens=256)
    assert all(math.ceil(len(c.embed_text) / 3.2) <= 256 for c in estimated)


def test_crlf_and_deterministic() -> None:
    text = _fixture("sample.py").replace("\n", "\r\n")
    first = chunk_file("pkg/sample.py", text, max_tokens=512)
    assert _rows(first) == _rows(chunk_file("pkg/sample.py", _fixture("sample.py"), max_tokens=512))
    assert not any("\r" in c.content for c in first)
    assert first == chunk_file("pkg/sample.py", text, max_tokens=512)


# --- header and identifiers ---


def test_header_has_path_symbol_and_words() -> None:
    header = build_header(HeaderFields("requests/sessions.py", "python", "Session.getISOWeekYear", "method", "Session"))
    assert header == "# path: requests/sessions.py | method Session.getISOWeekYear | session get iso week year"
    block = build_header(HeaderFields("src/http_client.py", "python", "", "block", ""))
    assert block == "# path: src/http_client.py | http client"
    chunks = chunk_file("pkg/sample.py", _fixture("sample.py"), max_tokens=512)
    assert chunks[1].header == "# path: pkg/sample.py | function top_level | top level"
    assert all(len(c.header.split()) < 30 for c in chunks)


@pytest.mark.parametrize(
    ("identifier", "words"),
    [
        ("getISOWeekYear", ["get", "iso", "week", "year"]),
        ("parse_URL_v2", ["parse", "url", "v2"]),
        ("XMLHttpRequest", ["xml", "http", "request"]),
        ("HTTP2Server", ["http2", "server"]),
        ("snake_case_name", ["snake", "case", "name"]),
        ("__init__", ["init"]),
        ("kebab-case.value", ["kebab", "case", "value"]),
        ("Session.request", ["session", "request"]),
        ("base64Encode", ["base64", "encode"]),
        ("ALL_CAPS", ["all", "caps"]),
        ("café_au_lait", ["café", "au", "lait"]),
        ("", []),
    ],
)
def test_split_identifier(identifier: str, words: list[str]) -> None:
    assert split_identifier(identifier) == words


def test_chunking_is_fast() -> None:
    texts = [(f"src/{p.name}", p.read_text(encoding="utf-8")) for p in sorted(FIXTURES.iterdir())] * 20
    start = time.perf_counter()
    for path, text in texts:
        chunk_file(path, text, max_tokens=256)
    assert time.perf_counter() - start < 2.0


def test_missing_grammar_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from engine.chunking import parsing
    from engine.errors import DependencyMissingError

    monkeypatch.setitem(sys.modules, "tree_sitter_language_pack", None)
    monkeypatch.setattr(parsing, "_local", type(parsing._local)())
    with pytest.raises(DependencyMissingError, match="pip install tree-sitter-language-pack"):
        chunk_file("a.py", "def f():\n    pass\n", max_tokens=256)


def test_haskell_instances_are_symbols_and_signatures_stick_to_their_equations() -> None:
    text = (
        "module Json where\n\n"
        "class ToJSON a where\n    toJSON :: a -> Value\n\n"
        "-- | Render a pair.\n"
        "toPair :: (a -> Value) -> (a, a) -> Value\n"
        "toPair f (x, y) = Array [f x, f y]\n\n"
        "instance ToJSON Bool where\n"
        "    toJSON True = Bool True\n"
        "    toJSON False = Bool False\n\n"
        "value = toPair toJSON (True, False)\n"
    )
    chunks = chunk_file("src/Json.hs", text, max_tokens=200)
    by_kind = {(c.kind, c.symbol.split(".")[-1]) for c in chunks}
    assert ("impl", "ToJSON") in by_kind and ("interface", "ToJSON") in by_kind
    pair = next(c for c in chunks if c.symbol == "toPair")
    assert pair.content.startswith("-- | Render a pair.\ntoPair ::")
    assert any(c.symbol == "value" and c.kind == "function" for c in chunks)
    assert not [c for c in chunks if c.kind == "block" and "instance" in c.content]


# A schema type built by a factory, the way zod writes its classes: before chunker v7 the binding had
# no symbol, so each ``inst.x = ...`` line was a one-line root chunk and nothing was named ``ZodThing``.
FACTORY_TS = """import * as core from "./core.js";

export const ZodThing = core.$constructor("ZodThing", (inst, def) => {
  core.$ZodType.init(inst, def);
  inst.parse = (data, params) => parse.parse(inst, data, params);
  inst.safeParse = (data, params) => parse.safeParse(inst, data, params);
  inst.refine = (check, params) => inst.check(refine(check, params));
  inst.check = (...checks) => {
    const merged = [...(def.checks ?? [])];
    for (const check of checks) {
      merged.push(typeof check === "function" ? { _zod: { check, def: { check: "custom" } } } : check);
    }
    return inst.clone({ ...def, checks: merged });
  };
});

export const LIMIT = 10;
"""


def test_a_js_module_binding_is_a_chunk_and_its_one_line_functions_stay_in_it() -> None:
    rows = _rows(chunk_file("src/thing.ts", FACTORY_TS, max_tokens=512))
    assert rows == [
        (2, 14, "ZodThing", "variable", ""),
        (7, 13, "ZodThing.inst.check", "function", "ZodThing"),
    ], rows  # the one-line ``LIMIT`` stays out, like a Python one-line constant
    symbols = {c.symbol: c for c in chunk_file("src/thing.ts", FACTORY_TS, max_tokens=512)}
    binding = symbols["ZodThing"].content
    assert "inst.refine = (check, params)" in binding and "inst.check = (...checks) => {\n    ..." in binding


def test_js_bindings_of_functions_and_destructuring_are_not_module_bindings() -> None:
    text = "export const f = (a) => {\n  return a + 1;\n};\n\n"
    text += "const { a, b } = require('x');\nconst c = {\n  k: 1,\n};\n\n"
    text += "const d = wrap({\n  run: (x) => x + 1,\n});\n"
    rows = _rows(chunk_file("src/f.js", text, max_tokens=512))
    assert (0, 2, "f", "function", "") in rows, rows
    assert (9, 11, "d", "variable", "") in rows, rows  # a binding that holds functions
    assert not any(r[2] in ("a", "b", "c") for r in rows), rows  # destructuring; plain data stays a block
