"""``semcode eval``: measure search quality on your own repository, the way the outside benchmark does.

Method (the same as ``bench/codesearch_bench.py``, reimplemented here):

1. Queries: the first sentence of the docstring of every Python function/method (``ast``) and of the
   ``/** */`` JSDoc directly above a JS/TS function (tree-sitter), when that sentence has >= 4 words
   and the body >= 3 code lines, outside tests/docs/examples. The target is the function's lines
   (decorators and ``export`` included). A query occurring twice is dropped in every copy, and so is
   one whose text is still somewhere in the stripped code. A seeded sample is kept.
2. An index copy: the repository's code files, with every docstring and JSDoc blanked (line numbers
   unchanged), indexed with the user's settings into a temporary index. Nothing is written into the
   workspace or its real index; every temporary directory is removed at the end.
3. Systems on the same queries: semcode hybrid, semcode dense only, and a BM25 baseline over 30-line
   windows. A result is a HIT when it is in the target file, overlaps the target by at least half of
   the shorter of the two spans, and spans at most max(4 * target, 40) lines. Top 10 only.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import random
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from engine.config import EngineConfig
from engine.errors import SemcodeError

MIN_QUERIES = 5
TOP_K = 10
BM25_K1, BM25_B, BM25_WINDOW, BM25_STRIDE = 1.2, 0.75, 30, 15
JS_LANGUAGES = frozenset({"javascript", "typescript", "tsx"})
# Files here stay in the index copy (as distractors) but never yield queries.
NO_QUERY_DIRS = frozenset(
    {
        "test",
        "tests",
        "testing",
        "__tests__",
        "spec",
        "specs",
        "doc",
        "docs",
        "example",
        "examples",
        "benchmark",
        "benchmarks",
        "fixtures",
        "__fixtures__",
        "__mocks__",
    }
)

Log = Callable[[str], None]
Location = tuple[str, int, int]  # (workspace-relative path, first line, last line), 0-based inclusive


@dataclass(frozen=True, slots=True)
class Query:
    text: str
    path: str
    start_line: int
    end_line: int
    symbol: str


@dataclass(slots=True)
class Corpus:
    """The stripped copy: which files it holds, and the query candidates found while stripping."""

    files: list[str] = field(default_factory=list)
    lines: int = 0
    candidates: list[Query] = field(default_factory=list)
    stats: Counter[str] = field(default_factory=Counter)


@dataclass(slots=True)
class SystemResult:
    name: str
    label: str
    mrr10: float
    recall1: float
    recall5: float
    recall10: float
    file_recall10: float
    mean_ms: float
    p95_ms: float
    index_s: float | None
    ranks: list[int | None]


class TooFewQueries(SemcodeError):
    """The repository has too few usable documented functions to measure anything."""

    def __init__(self, report: dict[str, Any]) -> None:
        super().__init__(_too_few_message(report))
        self.report = report


# ---------------------------------------------------------------------------------------------- text rules
_ABBREVIATIONS = frozenset(
    [
        "e.g.",
        "i.e.",
        "etc.",
        "vs.",
        "cf.",
        "approx.",
        "resp.",
        "no.",
        "nos.",
        "dr.",
        "mr.",
        "mrs.",
        "ms.",
        "st.",
        "fig.",
        "eq.",
        "ex.",
        "al.",
        "incl.",
        "esp.",
        "viz.",
        "inc.",
        "ltd.",
        "jr.",
        "sr.",
        "v.",
        "vol.",
        "ca.",
    ]
)
_SECTION = re.compile(
    r"^(args|arguments|parameters|params|returns?|raises|yields?|examples?|notes?|attributes|"
    r"see also|warnings?|todo|usage|keyword arguments|kwargs|other parameters)\s*:?\s*$",
    re.I,
)
_RULER = re.compile(r"[-=~^*]{3,}")
_NOT_PROSE = (":", "..", ">>>", "@", "|", "```", "-", "*", "#")
_FIELD_PREFIXES = (":param", ":return", ":raise", ":type", ":rtype", ">>>", ".. ", "@", "```")
_MARKUP: list[tuple[str, Any]] = [
    (r"\{@(?:link|linkcode|linkplain)\s+([^}\s|]+)(?:[\s|]+([^}]*))?\}", lambda m: (m.group(2) or m.group(1)).strip()),
    (r"\{@\w+\s*([^}]*)\}", r"\1"),
    (r":(?:[\w-]+:)+`([^`]+)`", lambda m: _role_text(m.group(1))),  # :func:`x`, :meth:`~a.b`
    (r"``([^`]+)``", r"\1"),
    (r"`([^`<]+?)\s*<[^>`]+>`_{1,2}", r"\1"),  # `text <url>`_
    (r"`([^`]+)`_{0,2}", r"\1"),
    (r"!?\[([^\]]+)\]\([^)]*\)", r"\1"),  # [text](url)
    (r"\[([^\]]+)\]\[[^\]]*\]", r"\1"),  # [text][ref]
    (r"\*\*(?!\s)([^*]+?)(?<!\s)\*\*", r"\1"),
    (r"(?<![\w*])\*(?!\s)([^*]+?)(?<!\s)\*(?![\w*])", r"\1"),
    (r"</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]*)?/?>", ""),  # <code>, <br/>
]


def _role_text(inner: str) -> str:
    inner = inner.strip()
    titled = re.fullmatch(r"(.*?)\s*<[^>]*>", inner, re.S)
    if titled and titled.group(1):
        return titled.group(1)
    inner = inner.lstrip("!")
    return inner[1:].split(".")[-1] if inner.startswith("~") else inner


def strip_markup(text: str) -> str:
    """reST / Markdown / JSDoc inline markup removed, the words kept, whitespace collapsed."""
    for pattern, repl in _MARKUP:
        text = re.sub(pattern, repl, text)
    return re.sub(r"\s*::$", ":", re.sub(r"\s+", " ", text).strip())


def first_sentence(text: str) -> str:
    for match in re.finditer(r"[.!?](?=\s|$)", text):
        word = text[: match.end()].rsplit(" ", 1)[-1]
        if word.lower() in _ABBREVIATIONS or re.fullmatch(r"[A-Z]\.", word) or word.endswith(".."):
            continue
        return text[: match.end()].strip()
    return text.strip()


def summary_sentence(doc: str) -> str | None:
    """First sentence of a docstring's summary paragraph; None when it does not start with prose."""
    lines = [ln.strip() for ln in re.split(r"\n\s*\n", doc.strip(), maxsplit=1)[0].split("\n")]
    if not lines[0] or lines[0].startswith(_NOT_PROSE) or _SECTION.match(lines[0]):
        return None
    kept = []
    for i, line in enumerate(lines):
        following = lines[i + 1] if i + 1 < len(lines) else ""
        if (
            _RULER.fullmatch(line)
            or _RULER.fullmatch(following)
            or _SECTION.match(line)
            or line.startswith(_FIELD_PREFIXES)
        ):
            break
        kept.append(line)
    text = strip_markup(" ".join(kept))
    return first_sentence(text) if text else None


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def query_key(text: str) -> str:
    return normalise(text).rstrip(" .:;!?")


def code_line_count(lines: list[str], first: int, last: int, comment: str) -> int:
    """Lines in first..last holding code: an identifier character outside a line comment."""
    count = 0
    for line in lines[max(first, 0) : last + 1]:
        s = line.strip()
        if not s or s.startswith(comment) or (comment == "//" and s.startswith(("/*", "*"))):
            continue
        count += bool(re.search(r"[A-Za-z0-9_$]", s))
    return count


def yields_queries(rel: str) -> bool:
    """False for tests, docs, examples and benchmarks: they stay in the index but give no queries."""
    *dirs, name = rel.lower().split("/")
    if any(d in NO_QUERY_DIRS for d in dirs):
        return False
    return not (
        name.startswith("test_")
        or name == "conftest.py"
        or re.search(r"(_test\.py|\.(test|spec)\.[cm]?[jt]sx?)$", name)
    )


def _accept(text: str | None, body_lines: int, stats: Counter[str]) -> bool:
    if body_lines < 3:
        stats["drop_short_body"] += 1
        return False
    if not text or len(text.split()) < 4:
        stats["drop_short_summary"] += 1
        return False
    return True


# ---------------------------------------------------------------------------------------------- Python
def _docstring(node: ast.AST) -> ast.Expr | None:
    body = getattr(node, "body", None)
    if (
        body
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        return body[0]
    return None


def _blank_python(src: str, tree: ast.Module, *, blank_lines: bool) -> str:
    """Every module/class/function docstring removed; the line count is unchanged.

    ``blank_lines``: a docstring on lines of its own becomes empty lines (``pass`` when it was the only
    statement); otherwise, and always when it shares a line with code, it becomes ``""``.
    """
    data = src.encode("utf-8")
    starts = [0] + [m.end() for m in re.finditer(rb"\n", data)]
    edits = [
        (doc, len(node.body) == 1)
        for node in ast.walk(tree)  # type: ignore[attr-defined]
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and (doc := _docstring(node)) is not None
    ]
    for doc, only in sorted(edits, key=lambda e: (e[0].lineno, e[0].col_offset), reverse=True):
        line_start = starts[doc.lineno - 1]
        s, e = line_start + doc.col_offset, starts[doc.end_lineno - 1] + doc.end_col_offset  # type: ignore[operator]
        line_end = data.find(b"\n", e)
        line_end = len(data) if line_end == -1 else line_end
        prefix, suffix, newlines = data[line_start:s], data[e:line_end], data[s:e].count(b"\n")
        tail = suffix.strip()
        if blank_lines and not prefix.strip() and (not tail or tail.startswith(b"#")):
            kept = b" " + tail if only and tail else tail  # a trailing comment stays on the line
            repl = prefix + b"pass" + kept if only else (prefix + tail if tail else b"")
            data = data[:line_start] + repl + b"\n" * newlines + data[line_end:]
        else:
            data = data[:s] + b'""' + suffix + b"\n" * newlines + data[line_end:]
    return data.decode("utf-8")


def strip_python(src: str, tree: ast.Module) -> str | None:
    """The source with its docstrings blanked, still parseable, same line count; None if impossible."""
    for blank_lines in (True, False):
        try:
            out = _blank_python(src, tree, blank_lines=blank_lines)
            ast.parse(out)
        except (SyntaxError, ValueError):
            continue
        if out.count("\n") == src.count("\n"):
            return out
    return None


def python_candidates(rel: str, src: str, tree: ast.Module, stats: Counter[str]) -> list[Query]:
    lines = src.split("\n")
    found: list[Query] = []

    def visit(node: ast.AST, qual: list[str]) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if _docstring(child) is not None:
                    stats["functions_with_doc"] += 1
                    rest = child.body[1:]
                    first = (
                        min([rest[0].lineno] + [d.lineno for d in getattr(rest[0], "decorator_list", [])])
                        if rest
                        else 0
                    )
                    body = code_line_count(lines, first - 1, child.end_lineno - 1, "#") if rest else 0  # type: ignore[operator]
                    text = summary_sentence(ast.get_docstring(child) or "")
                    if _accept(text, body, stats):
                        start = min([child.lineno] + [d.lineno for d in child.decorator_list]) - 1
                        found.append(
                            Query(
                                text,
                                rel,
                                start,
                                child.end_lineno - 1,  # type: ignore[arg-type, operator]
                                ".".join([*qual, child.name]),
                            )
                        )
                visit(child, [*qual, child.name, "<locals>"])
            else:
                visit(child, [*qual, child.name] if isinstance(child, ast.ClassDef) else qual)

    visit(tree, [])
    return found


def process_python(rel: str, src: str, stats: Counter[str]) -> tuple[str, list[Query]]:
    """(stripped text, query candidates); an unparseable file is kept as it is, without queries."""
    try:
        tree = ast.parse(src)
    except (SyntaxError, ValueError):
        stats["unparseable_files"] += 1
        return src, []
    stripped = strip_python(src, tree)
    if stripped is None:
        stats["strip_failed_files"] += 1
        return src, []
    return stripped, python_candidates(rel, src, tree, stats) if yields_queries(rel) else []


# ---------------------------------------------------------------------------------------------- JS / TS
_FUNCTION_VALUES = frozenset({"function_expression", "function", "arrow_function", "generator_function"})


def _text(node: Any) -> str:
    return node.text.decode("utf-8", "replace") if node is not None and node.text is not None else ""


def _documented_function(node: Any) -> tuple[Any, Any, str] | None:
    """(outer node, function node, name) when a JSDoc before ``node`` documents a function."""
    kind = node.type
    if kind == "export_statement":
        for child in node.named_children:
            if child.type not in ("comment", "decorator") and (found := _documented_function(child)):
                return node, found[1], found[2]
        return None
    if kind in ("function_declaration", "generator_function_declaration", "method_definition"):
        return (node, node, _text(node.child_by_field_name("name"))) if node.child_by_field_name("body") else None
    if kind in ("lexical_declaration", "variable_declaration"):
        declarators = [c for c in node.named_children if c.type == "variable_declarator"]
        value = declarators[0].child_by_field_name("value") if len(declarators) == 1 else None
        if value is not None and value.type in _FUNCTION_VALUES:
            return node, value, _text(declarators[0].child_by_field_name("name"))
        return None
    if kind == "expression_statement":
        expr = node.named_children[0] if node.named_children else None
        right = expr.child_by_field_name("right") if expr is not None and expr.type == "assignment_expression" else None
        if right is not None and right.type in _FUNCTION_VALUES:
            return node, right, _text(expr.child_by_field_name("left"))
        return None
    if kind in ("pair", "public_field_definition", "field_definition"):
        value = node.child_by_field_name("value")
        if value is not None and value.type in _FUNCTION_VALUES:
            key = (
                node.child_by_field_name("key")
                or node.child_by_field_name("name")
                or node.child_by_field_name("property")
            )
            return node, value, _text(key)
    return None


def jsdoc_description(comment: str) -> str:
    """The description of a ``/** */`` block, or its @description/@desc/@summary when that is empty."""
    description: list[str] = []
    tags: dict[str, list[str]] = {}
    current = None
    for line in comment[3:].removesuffix("*/").split("\n"):
        line = re.sub(r"^\s*\*(?!\*) ?", "", line)
        tag = re.match(r"\s*@(\w+)\s*(.*)", line)
        if tag:
            current = tag.group(1).lower()
            tags.setdefault(current, []).append(tag.group(2))
        elif current is None:
            description.append(line)
        else:
            tags[current][-1] += "\n" + line
    text = "\n".join(description).strip()
    for name in ("description", "desc", "summary"):
        if text:
            break
        text = tags[name][0].strip() if tags.get(name) else ""
    return text


def _jsdoc_blocks(data: bytes, root: Any) -> list[Any]:
    blocks, stack = [], [root]
    while stack:
        node = stack.pop()
        if node.type == "comment":
            if data.startswith(b"/**", node.start_byte) and not data.startswith(b"/**/", node.start_byte):
                blocks.append(node)
        elif node.child_count:
            stack.extend(reversed(node.children))
    return blocks


def _jsdoc_candidate(rel: str, data: bytes, lines: list[str], block: Any, stats: Counter[str]) -> Query | None:
    target, first_decorator = block.next_named_sibling, None
    while target is not None and target.type == "decorator":
        first_decorator = first_decorator or target
        target = target.next_named_sibling
    if target is None:
        return None
    gap = data[block.end_byte : (first_decorator or target).start_byte]
    if gap.strip() or gap.count(b"\n") > 3:
        return None
    found = _documented_function(target)
    body = found[1].child_by_field_name("body") if found else None
    if found is None or body is None:
        return None
    stats["functions_with_doc"] += 1
    text = summary_sentence(jsdoc_description(_text(block)))
    if not _accept(text, code_line_count(lines, body.start_point[0] + 1, body.end_point[0], "//"), stats):
        return None
    outer = found[0]
    return Query(text, rel, (first_decorator or outer).start_point[0], outer.end_point[0], found[2])  # type: ignore[arg-type]


def process_js(rel: str, src: str, language: str, stats: Counter[str]) -> tuple[str, list[Query]]:
    """(text with every JSDoc blanked, query candidates). Multi-line blocks keep their newlines only."""
    from engine.chunking.parsing import get_parser

    data = src.encode("utf-8")
    blocks = _jsdoc_blocks(data, get_parser(language).parse(data).root_node)
    lines = src.split("\n")
    found = [q for b in blocks if (q := _jsdoc_candidate(rel, data, lines, b, stats))] if yields_queries(rel) else []
    out, touched = bytearray(data), set()
    for block in sorted(blocks, key=lambda n: n.start_byte, reverse=True):
        newlines = data[block.start_byte : block.end_byte].count(b"\n")
        out[block.start_byte : block.end_byte] = b"\n" * newlines if newlines else b" "
        touched.update(range(block.start_point[0], block.end_point[0] + 1))
    stripped = out.decode("utf-8", "replace").split("\n")
    for i in touched:
        if i < len(stripped) and not stripped[i].strip():
            stripped[i] = ""
    return "\n".join(stripped), found


# ---------------------------------------------------------------------------------------------- corpus
def build_corpus(root: Path, config: EngineConfig, out_dir: Path) -> Corpus:
    """Copy the code files the user's settings index into ``out_dir``, docstrings blanked."""
    from engine.chunking import language_for_file
    from engine.files import read_source, walk

    corpus = Corpus()
    texts: list[str] = []
    sources = list(walk(root, config))
    paths = {source.path for source in sources}
    for source in sources:
        if _duplicate_or_generated(root, source.path, paths):
            continue
        try:
            src = read_source(source, config.max_file_size).replace("\r\n", "\n").replace("\r", "\n")
        except (SemcodeError, OSError):
            continue
        language = language_for_file(source.path, src)
        if language is None or (language in JS_LANGUAGES and _looks_minified(src)):
            continue  # README, config and other text files: like the bench, code only
        if language == "python":
            text, found = process_python(source.path, src, corpus.stats)
        elif language in JS_LANGUAGES:
            text, found = process_js(source.path, src, language, corpus.stats)
        else:
            text, found = src, []
        target = out_dir / source.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        corpus.files.append(source.path)
        corpus.lines += text.count("\n") + (not text.endswith("\n") and bool(text))
        corpus.candidates.extend(found)
        texts.append(text)
    corpus.candidates = filter_candidates(corpus.candidates, texts, corpus.stats)
    return corpus


def _duplicate_or_generated(root: Path, rel: str, paths: set[str]) -> bool:
    """Type declarations, ``x.cjs``/``x.mjs`` twins of ``x.js``, and files with a source map (built output)."""
    if re.search(r"\.d\.[cm]?ts$", rel) or (root / f"{rel}.map").exists():
        return True
    return bool(re.search(r"\.[cm]js$", rel)) and re.sub(r"\.[cm]js$", ".js", rel) in paths


def _looks_minified(text: str) -> bool:
    return len(text) > 4000 and len(text) / (text.count("\n") + 1) > 300


def filter_candidates(candidates: list[Query], texts: Iterable[str], stats: Counter[str]) -> list[Query]:
    """Drop every copy of a repeated query, then queries whose text is still in the stripped code."""
    counts = Counter(query_key(q.text) for q in candidates)
    unique = [q for q in candidates if counts[query_key(q.text)] == 1]
    stats["drop_duplicate_query"] += len(candidates) - len(unique)
    haystack = normalise("\n".join(texts))
    kept = [q for q in unique if query_key(q.text) not in haystack]
    stats["drop_verbatim_in_code"] += len(unique) - len(kept)
    return kept


def sample_queries(candidates: list[Query], max_queries: int, seed: int) -> list[Query]:
    ordered = sorted(candidates, key=lambda q: (q.path, q.start_line, q.end_line))
    if max_queries and len(ordered) > max_queries:
        picked = sorted(random.Random(seed).sample(range(len(ordered)), max_queries))
        ordered = [ordered[i] for i in picked]
    return ordered


# ---------------------------------------------------------------------------------------------- scoring
def is_hit(result: Location, query: Query) -> bool:
    path, start, end = result
    if path != query.path:
        return False
    overlap = min(end, query.end_line) - max(start, query.start_line) + 1
    target_span, result_span = query.end_line - query.start_line + 1, end - start + 1
    return overlap > 0 and overlap >= 0.5 * min(target_span, result_span) and result_span <= max(4 * target_span, 40)


def first_hit_rank(results: list[Location], query: Query, k: int = TOP_K) -> int | None:
    return next((i + 1 for i, r in enumerate(results[:k]) if is_hit(r, query)), None)


def score(queries: list[Query], ranked: list[list[Location]], k: int = TOP_K) -> dict[str, Any]:
    """MRR@k, Recall@1/5/k and file-level Recall@k; ``ranks`` is each query's first hit rank (None: miss)."""
    ranks = [first_hit_rank(results, q, k) for q, results in zip(queries, ranked, strict=True)]
    n = max(len(queries), 1)

    def recall(cut: int) -> float:
        return sum(1 for r in ranks if r is not None and r <= cut) / n

    file_hits = sum(any(r[0] == q.path for r in results[:k]) for q, results in zip(queries, ranked, strict=True))
    return {
        "mrr10": sum(1.0 / r for r in ranks if r) / n,
        "recall1": recall(1),
        "recall5": recall(5),
        "recall10": recall(k),
        "file_recall10": file_hits / n,
        "ranks": ranks,
    }


# ---------------------------------------------------------------------------------------------- BM25 baseline
_WORD = re.compile(r"[A-Za-z0-9]+")
_CAMEL_PART = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def tokenize(text: str) -> list[str]:
    """snake_case and camelCase split, lower-cased, 1-character tokens dropped."""
    return [p.lower() for w in _WORD.findall(text) for p in _CAMEL_PART.findall(w) if len(p) >= 2]


class BM25Windows:
    """Okapi BM25 over sliding windows of every file; idf = ln(1 + (N - df + 0.5) / (df + 0.5)).

    Each distinct query term counts once; ties go to the earlier (path, line)."""

    def __init__(
        self,
        files: dict[str, str],
        *,
        window: int = BM25_WINDOW,
        stride: int = BM25_STRIDE,
        k1: float = BM25_K1,
        b: float = BM25_B,
    ) -> None:
        self.k1 = k1
        self.chunks: list[Location] = []
        self.postings: dict[str, list[tuple[int, int]]] = {}
        lengths: list[int] = []
        for path in sorted(files):
            lines = files[path].split("\n")
            if lines and lines[-1] == "":
                lines.pop()
            start = 0
            while start < len(lines):
                end = min(start + window, len(lines))
                tokens = tokenize("\n".join(lines[start:end]))
                if tokens:
                    self._add((path, start, end - 1), tokens, lengths)
                if end >= len(lines):
                    break
                start += stride
        avg = sum(lengths) / len(lengths) if lengths else 1.0
        self.norm = [k1 * (1.0 - b + b * n / avg) for n in lengths]
        total = len(self.chunks)
        self.idf = {t: math.log(1.0 + (total - len(p) + 0.5) / (len(p) + 0.5)) for t, p in self.postings.items()}

    def _add(self, location: Location, tokens: list[str], lengths: list[int]) -> None:
        chunk_id = len(self.chunks)
        self.chunks.append(location)
        lengths.append(len(tokens))
        for term, count in Counter(tokens).items():
            self.postings.setdefault(term, []).append((chunk_id, count))

    def search(self, query: str, limit: int = TOP_K) -> list[Location]:
        scores: dict[int, float] = {}
        for term in sorted(set(tokenize(query))):
            idf = self.idf.get(term, 0.0)
            for chunk_id, tf in self.postings.get(term, ()):
                scores[chunk_id] = scores.get(chunk_id, 0.0) + idf * tf * (self.k1 + 1) / (tf + self.norm[chunk_id])
        best = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
        return [self.chunks[chunk_id] for chunk_id, _ in best]


# ---------------------------------------------------------------------------------------------- running
def _timed(queries: list[Query], search: Callable[[str], list[Location]]) -> tuple[list[list[Location]], list[float]]:
    ranked, millis = [], []
    for query in queries:
        t0 = time.perf_counter()
        ranked.append(search(query.text))
        millis.append((time.perf_counter() - t0) * 1000)
    return ranked, millis


def _result(
    name: str,
    label: str,
    queries: list[Query],
    ranked: list[list[Location]],
    millis: list[float],
    index_s: float | None,
) -> SystemResult:
    sc = score(queries, ranked)
    ordered = sorted(millis)
    p95 = ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)] if ordered else 0.0
    return SystemResult(
        name,
        label,
        sc["mrr10"],
        sc["recall1"],
        sc["recall5"],
        sc["recall10"],
        sc["file_recall10"],
        sum(millis) / max(len(millis), 1),
        p95,
        index_s,
        sc["ranks"],
    )


def run_semcode(
    corpus_dir: Path, config: EngineConfig, queries: list[Query], log: Log
) -> tuple[list[SystemResult], dict[str, Any]]:
    """Index the copy into the temporary index named by ``config.index_dir``, then search hybrid and dense."""
    from engine.workspace import Workspace

    workspace = Workspace(corpus_dir, config)
    t0 = time.perf_counter()
    info = workspace.embedder.info
    workspace.store  # noqa: B018 - open (import) the store now, so the index time is indexing only
    load_s = time.perf_counter() - t0
    log(f"[eval] model {info.name} and store ready in {load_s:.1f}s; indexing the copy")
    t0 = time.perf_counter()
    stats = workspace.index(_progress_printer(log))
    index_s = time.perf_counter() - t0
    log(f"[eval] indexed {stats.files_indexed} files, {stats.chunks_total} chunks in {index_s:.1f}s")
    workspace.search("warm up the query path", limit=TOP_K)
    results = []
    for hybrid, name, label in ((True, "hybrid", "semcode (hybrid)"), (False, "dense", "semcode dense only")):
        log(f"[eval] searching: {label}")

        def search(text: str, hybrid: bool = hybrid) -> list[Location]:
            return [(h.path, h.start_line, h.end_line) for h in workspace.search(text, limit=TOP_K, hybrid=hybrid)]

        ranked, millis = _timed(queries, search)
        results.append(_result(name, label, queries, ranked, millis, index_s))
    meta = {
        "model": info.name,
        "model_path": info.path,
        "load_s": round(load_s, 3),
        "chunks": stats.chunks_total,
        "files_indexed": stats.files_indexed,
    }
    return results, meta


def run_bm25(corpus_dir: Path, files: list[str], queries: list[Query]) -> SystemResult:
    t0 = time.perf_counter()
    index = BM25Windows({rel: (corpus_dir / rel).read_text(encoding="utf-8") for rel in files})
    build_s = time.perf_counter() - t0
    ranked, millis = _timed(queries, index.search)
    return _result("bm25", "BM25 30-line windows", queries, ranked, millis, build_s)


def _progress_printer(log: Log) -> Callable[[Any], None]:
    last = [-1]

    def progress(p: Any) -> None:
        total = getattr(p, "total_files", 0) or 0
        step = int(10 * p.done_files / total) if total else 0
        if step > last[0]:
            last[0] = step
            log(f"[eval]   {p.done_files}/{total} files")

    return progress


def evaluate(
    root: Path, config: EngineConfig, *, max_queries: int = 200, seed: int = 0, log: Log = lambda _msg: None
) -> dict[str, Any]:
    """The whole evaluation in temporary directories; returns the JSON-ready report.

    Raises TooFewQueries (extraction statistics in ``.report``) before the model is loaded when fewer
    than MIN_QUERIES queries survive the filters."""
    root = root.resolve()
    with tempfile.TemporaryDirectory(prefix="semcode-eval-") as tmp:
        corpus_dir, index_dir = Path(tmp) / "corpus", Path(tmp) / "index"
        corpus_dir.mkdir()
        log(f"[eval] copying {root} with docstrings blanked")
        corpus = build_corpus(root, config, corpus_dir)
        queries = sample_queries(corpus.candidates, max_queries, seed)
        report: dict[str, Any] = {
            "root": str(root),
            "files": len(corpus.files),
            "lines": corpus.lines,
            "candidates": len(corpus.candidates),
            "queries": len(queries),
            "seed": seed,
            "max_queries": max_queries,
            "extraction": dict(sorted(corpus.stats.items())),
        }
        log(f"[eval] {len(corpus.files)} files, {len(corpus.candidates)} candidate queries, {len(queries)} used")
        if len(queries) < MIN_QUERIES:
            raise TooFewQueries(report)
        systems, meta = run_semcode(corpus_dir, replace(config, index_dir=str(index_dir)), queries, log)
        log("[eval] searching: BM25 30-line windows")
        systems.append(run_bm25(corpus_dir, corpus.files, queries))
    report.update(meta)
    report["systems"] = [{k: _round(v) for k, v in asdict(s).items() if k != "ranks"} for s in systems]
    report["per_query"] = [
        {
            "query": q.text,
            "path": q.path,
            "start_line": q.start_line,
            "end_line": q.end_line,
            "symbol": q.symbol,
            "rank": {s.name: s.ranks[i] for s in systems},
        }
        for i, q in enumerate(queries)
    ]
    return report


def _round(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) else value


def _too_few_message(report: dict[str, Any]) -> str:
    ex = report["extraction"]
    return (
        f"only {report['queries']} usable quer{'y' if report['queries'] == 1 else 'ies'} in {report['root']} "
        f"(need {MIN_QUERIES}): eval turns docstrings / JSDoc of Python, JavaScript and TypeScript functions "
        f"into queries. Found {ex.get('functions_with_doc', 0)} documented functions in "
        f"{report['files']} code files; dropped: {ex.get('drop_short_body', 0)} with a body under 3 lines, "
        f"{ex.get('drop_short_summary', 0)} with a first sentence under 4 words, "
        f"{ex.get('drop_duplicate_query', 0)} duplicates, {ex.get('drop_verbatim_in_code', 0)} found verbatim "
        f"in the code (tests/, docs/ and examples/ give no queries)"
    )


# ---------------------------------------------------------------------------------------------- output
def format_table(report: dict[str, Any]) -> str:
    head = (
        f"semcode eval {report['root']}: {report['files']} files, {report['lines']} lines, "
        f"{report['queries']} queries (of {report['candidates']}, seed {report['seed']}); "
        f"model {report.get('model', '?')}"
    )
    cols = f"{'system':<22}{'MRR@10':>8}{'R@1':>7}{'R@5':>7}{'R@10':>7}{'queries':>9}{'index s':>9}{'ms/query':>10}"
    rows = [head, cols, "-" * len(cols)]
    for s in report["systems"]:
        index_s = "-" if s["index_s"] is None else f"{s['index_s']:.2f}"
        rows.append(
            f"{s['label']:<22}{s['mrr10']:>8.3f}{s['recall1']:>7.3f}{s['recall5']:>7.3f}{s['recall10']:>7.3f}"
            f"{report['queries']:>9}{index_s:>9}{s['mean_ms']:>10.1f}"
        )
    rows.append(
        "Queries are docstring first sentences; the index copy has every docstring blanked. "
        "BM25 'index s' is its in-process build time."
    )
    return "\n".join(rows)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(args: argparse.Namespace, config: EngineConfig) -> int:
    """``semcode eval``. Exit 0 with a report; 1 when the repository has too few usable queries (no
    measurement was made, so a script reading ``--json`` must not mistake the run for a result)."""
    root = Path(getattr(args, "path", None) or ".")
    if not root.is_dir():
        raise SemcodeError(f"not a folder: {root}")
    if getattr(args, "index_dir", None):
        _stderr("[eval] note: --index-dir is ignored; eval always indexes into a temporary directory")
    try:
        report = evaluate(
            root,
            config,
            max_queries=getattr(args, "max_queries", 200) or 0,
            seed=getattr(args, "seed", 0) or 0,
            log=_stderr,
        )
    except TooFewQueries as exc:
        if args.json:
            print(json.dumps({"error": str(exc), **exc.report}, indent=2))
        _stderr(f"semcode eval: {exc}")
        return 1
    print(json.dumps(report, indent=2) if args.json else format_table(report))
    return 0


if __name__ == "__main__":  # pragma: no cover - `semcode eval` is the entry point
    from semcode.cli import main as cli_main

    sys.exit(cli_main(["eval", *sys.argv[1:]]))
