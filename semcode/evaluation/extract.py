"""Query extraction: docstring / JSDoc first sentences become queries; docstrings are blanked."""

from __future__ import annotations

import ast
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, TypeGuard

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


@dataclass(frozen=True, slots=True)
class Query:
    text: str
    path: str
    start_line: int
    end_line: int
    symbol: str


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


def _accept(text: str | None, body_lines: int, stats: Counter[str]) -> TypeGuard[str]:
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
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and (doc := _docstring(node)) is not None
    ]
    for doc, only in sorted(edits, key=lambda e: (e[0].lineno, e[0].col_offset), reverse=True):
        line_start = starts[doc.lineno - 1]
        end_line, end_col = doc.end_lineno or doc.lineno, doc.end_col_offset or 0  # both set by ast.parse
        s, e = line_start + doc.col_offset, starts[end_line - 1] + end_col
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
                    end = child.end_lineno or child.lineno  # always set by ast.parse
                    body = code_line_count(lines, first - 1, end - 1, "#") if rest else 0
                    text = summary_sentence(ast.get_docstring(child) or "")
                    if _accept(text, body, stats):
                        start = min([child.lineno] + [d.lineno for d in child.decorator_list]) - 1
                        found.append(
                            Query(
                                text,
                                rel,
                                start,
                                end - 1,
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
        if expr is not None and right is not None and right.type in _FUNCTION_VALUES:
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
    return Query(text, rel, (first_decorator or outer).start_point[0], outer.end_point[0], found[2])


def process_js(rel: str, src: str, language: str, stats: Counter[str]) -> tuple[str, list[Query]]:
    """(text with every JSDoc blanked, query candidates). Multi-line blocks keep their newlines only."""
    from engine.chunking.parsing import get_parser

    data = src.encode("utf-8")
    blocks = _jsdoc_blocks(data, get_parser(language).parse(data).root_node)
    lines = src.split("\n")
    found = [q for b in blocks if (q := _jsdoc_candidate(rel, data, lines, b, stats))] if yields_queries(rel) else []
    out, touched = bytearray(data), set[int]()
    for block in sorted(blocks, key=lambda n: n.start_byte, reverse=True):
        newlines = data[block.start_byte : block.end_byte].count(b"\n")
        out[block.start_byte : block.end_byte] = b"\n" * newlines if newlines else b" "
        touched.update(range(block.start_point[0], block.end_point[0] + 1))
    stripped = out.decode("utf-8", "replace").split("\n")
    for i in touched:
        if i < len(stripped) and not stripped[i].strip():
            stripped[i] = ""
    return "\n".join(stripped), found
