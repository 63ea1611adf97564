"""Split a source file into chunks: one per function / method / small class, line windows elsewhere.

Rules (see ``chunk_file``): a symbol that fits the token budget is one chunk; a container (class,
struct, impl, namespace, ...) that does not fit becomes a *header chunk* (its own lines with member
bodies elided) plus the chunks of its members; any other symbol that does not fit is cut into line
windows. Code outside symbols becomes line windows. Every chunk, header line included, respects
``max_tokens``; a single line longer than that is cut by characters (minified files).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath

from engine.chunking.identifiers import split_identifier
from engine.chunking.languages import CONTAINER_KINDS, SPECS, VARIABLE_KINDS, language_for_file
from engine.chunking.symbols import SymbolNode, extract_symbols
from engine.errors import DependencyMissingError
from engine.records import Chunk

# Bump when chunk boundaries, headers or contents change: indexes built by another version are rebuilt.
# 6: multi-line Python module assignments are named chunks; 7: so are JS/TS top-level bindings
# (``export const X = factory(...)``), and the functions assigned inside them are their members.
CHUNKER_VERSION = 7
MIN_GAP_LINES = 3  # smaller gaps between symbols are not chunks of their own (see _Chunker.run)
logger = logging.getLogger(__name__)

CHARS_PER_TOKEN = 3.2  # fallback estimate when no tokenizer is given (code averages ~3-4 chars/token)
MAX_HEADER_WORDS = 12
# Minified / generated files (average line this long) have no line structure a symbol chunk could
# use; parsing a 200 KB line costs more than it gives, so they go straight to windows.
MINIFIED_AVG_LINE_CHARS = 500


@dataclass(frozen=True, slots=True)
class HeaderFields:
    """What ``build_header`` may use. ``signature`` is the symbol's first line (for experiments)."""

    path: str
    language: str
    symbol: str
    kind: str
    parent: str
    signature: str = ""


def build_header(fields: HeaderFields) -> str:
    """The context line embedded before a chunk's content.

    ``# path: requests/sessions.py | method Session.request | session request``: the path, what the
    chunk is, and the identifier split into plain words because the default model (all-MiniLM-L6-v2)
    was trained on natural language, not ``camelCase``. Blocks outside symbols get the file name's
    words instead. Kept short (well under 40 tokens) so it does not drown the code.
    """
    parts = [f"# path: {fields.path}"]
    if fields.symbol:
        parts.append(f"{fields.kind} {fields.symbol}".strip())
        source = fields.symbol
    else:
        source = PurePosixPath(fields.path).stem
    words = split_identifier(source)[:MAX_HEADER_WORDS]
    if words:
        parts.append(" ".join(words))
    return " | ".join(parts)


def _estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


class _Chunker:
    def __init__(
        self,
        path: str,
        language: str,
        text: str,
        max_tokens: int,
        count_tokens: Callable[[str], int] | None,
        window_lines: int,
        overlap_lines: int,
        split_containers: bool = True,
    ) -> None:
        self.split_containers = split_containers
        self.path = path
        self.language = language
        # Split on "\n" only, like tree-sitter rows; a stray "\r" of CRLF files is not content.
        self.lines = [line.removesuffix("\r") for line in text.split("\n")]
        self.max_tokens = max(8, max_tokens)
        self.exact = count_tokens is not None
        self.count: Callable[[str], int] = count_tokens or _estimate_tokens
        # Special tokens ([CLS], [SEP]) are counted once per text, not once per line.
        self.special = count_tokens("") if count_tokens is not None else 0
        self.window_lines = max(1, window_lines)
        self.overlap_lines = max(0, overlap_lines)
        self.chunks: list[Chunk] = []
        self._line_costs: dict[str, int] = {}

    # --- token accounting ---

    def _line_cost(self, line: str) -> int:
        cost = self._line_costs.get(line)
        if cost is None:
            cost = max(0, self.count(line) - self.special) if self.exact else _estimate_tokens(line + "\n")
            self._line_costs[line] = cost
        return cost

    def _surely_under(self, text: str, limit: int) -> bool:
        """Whether ``text`` is certainly at most ``limit`` tokens without tokenizing it.

        ASCII only: a token covers at least one ASCII character (WordPiece, byte-level BPE,
        SentencePiece), to which the special tokens and at most one added word-start marker come; no
        normalizer expands an ASCII character (NFKC may expand other characters). Short texts (every
        header, small functions) then skip the tokenizer, a fifth of the chunker's time on Django.
        """
        return self.exact and len(text) + self.special + 2 <= limit and text.isascii()

    def _fits(self, header: str, content: str) -> bool:
        if not self.exact and len(header) + len(content) > self.max_tokens * CHARS_PER_TOKEN:
            return False
        text = f"{header}\n{content}" if header else content
        return self._surely_under(text, self.max_tokens) or self.count(text) <= self.max_tokens

    def _header(self, symbol: str, kind: str, parent: str, first_row: int) -> str:
        signature = self.lines[first_row].strip() if first_row < len(self.lines) else ""
        fields = HeaderFields(self.path, self.language, symbol, kind, parent, signature[:120])
        header = build_header(fields)
        # A header eating half the budget (tiny max_tokens) is worth less than the code it displaces.
        if not self._surely_under(header, self.max_tokens // 2) and self.count(header) > self.max_tokens // 2:
            return ""
        return header

    # --- emitting ---

    def _emit(self, start: int, end: int, content: str, symbol: str, kind: str, parent: str, header: str) -> None:
        self.chunks.append(Chunk(self.path, self.language, start, end, content, symbol, kind, parent, header))

    def _rows_text(self, start: int, end: int) -> str:
        return "\n".join(self.lines[start : end + 1])

    def windows(self, segments: list[tuple[int, str]], symbol: str, kind: str, parent: str) -> None:
        """Cut ``(row, text)`` segments into windows under the line and token limits, with overlap."""
        if not segments:
            return
        header = self._header(symbol, kind, parent, segments[0][0])
        header_cost = self.count(f"{header}\n") if header else self.special
        budget = max(1, self.max_tokens - header_cost)
        costs = [self._line_cost(text) for _, text in segments]
        n = len(segments)
        i = 0
        while i < n:
            j, total = i, 0
            while j < n and j - i < self.window_lines and total + costs[j] <= budget:
                total += costs[j]
                j += 1
            if self.exact:  # per-line sums are an estimate: confirm, shrinking if needed
                while j > i and not self._fits(header, "\n".join(t for _, t in segments[i:j])):
                    j -= 1
            if j == i:  # one line alone is over the budget: cut it by characters
                row, text = segments[i]
                self._split_line(row, text, symbol, kind, parent, header)
                i += 1
                continue
            window = segments[i:j]
            while window and not window[0][1].strip():
                window = window[1:]
            while window and not window[-1][1].strip():
                window = window[:-1]
            if window:
                content = "\n".join(t for _, t in window)
                self._emit(window[0][0], window[-1][0], content, symbol, kind, parent, header)
            if j >= n:
                break
            # Overlap at most a quarter of the window (the default 8 of 40), so token-limited windows
            # of a few long lines do not multiply.
            i = max(j - min(self.overlap_lines, (j - i) // 4), i + 1)

    def _split_line(self, row: int, text: str, symbol: str, kind: str, parent: str, header: str) -> None:
        header_cost = self.count(f"{header}\n") if header else self.special
        budget = max(1, self.max_tokens - header_cost)
        total = max(1, self.count(text) - self.special)
        size = max(1, int(len(text) / total * budget * 0.9))
        pos = 0
        while pos < len(text):
            piece = text[pos : pos + size]
            while len(piece) > 1 and not self._fits(header, piece):
                piece = piece[: max(1, int(len(piece) * 0.8))]
            if piece.strip():
                self._emit(row, row, piece, symbol, kind, parent, header)
            pos += len(piece)

    def symbol(self, sym: SymbolNode, parent: str, start: int | None = None) -> None:
        start = sym.attached_start if start is None else start
        end = sym.end_line
        parent = sym.qualifier if sym.qualifier is not None else parent
        name = f"{parent}.{sym.name}" if parent else sym.name
        content = self._rows_text(start, end)
        header = self._header(name, sym.kind, parent, sym.start_line)
        # A module binding that holds functions (a JS ``const X = factory((inst) => { inst.a = ... })``)
        # is split like a class: its multi-line functions are chunks, its one-liners stay with it.
        splits = sym.kind in CONTAINER_KINDS or (sym.kind in VARIABLE_KINDS and bool(sym.children))
        members = self._split_members(sym) if splits else []
        # A container is split even when it fits, so a hit names the method rather than the class;
        # but not a container whose only member is a few lines (it is that member plus a line or two).
        worth_splitting = len(members) >= 2 or any(m.end_line - m.start_line + 1 >= 5 for m in members)
        if self._fits(header, content) and not (worth_splitting and self.split_containers):
            self._emit(start, end, content, name, sym.kind, parent, header)
            return
        if members:
            self._container(sym, start, name, parent, members)
            # Members are named after the scope: ``impl Display for Point`` holds ``Point.fmt``.
            scope = f"{parent}.{sym.scope}" if parent else sym.scope
            for member in members:
                self.symbol(member, scope)
            return
        self.windows([(row, self.lines[row]) for row in range(start, end + 1)], name, sym.kind, parent)

    def _split_members(self, sym: SymbolNode) -> list[SymbolNode]:
        """Members that get chunks of their own: multi-line, with a body, on their own lines.

        One-liners and bodiless declarations (``int x;``, interface signatures) stay in the header
        chunk: alone they would be chunks too small to mean anything.
        """
        members: list[SymbolNode] = []
        # A binding has no body node: its value starts on its first line.
        floor = sym.start_line + 1 if sym.kind in VARIABLE_KINDS else sym.sig_end + 1
        for child in sym.children:
            own_lines = child.attached_start >= floor and child.end_line <= sym.end_line
            if own_lines and child.has_body and child.end_line > child.start_line:
                members.append(child)
                floor = child.end_line + 1
        return members

    def _container(self, sym: SymbolNode, start: int, name: str, parent: str, members: list[SymbolNode]) -> None:
        """The container's own lines with each member's body replaced by an indented ``...``."""
        segments: list[tuple[int, str]] = []
        elided = {m.sig_end + 1: m for m in members if m.end_line > m.sig_end}
        row = start
        while row <= sym.end_line:
            member = elided.get(row)
            if member is None:
                segments.append((row, self.lines[row]))
                row += 1
                continue
            first_body = self.lines[row]
            indent = first_body[: len(first_body) - len(first_body.lstrip())]
            if not first_body.strip() or first_body.strip() in ("}", "end"):
                signature = self.lines[member.start_line]
                indent = signature[: len(signature) - len(signature.lstrip())] + "    "
            segments.append((row, f"{indent}..."))
            row = member.end_line + 1
        content = "\n".join(text for _, text in segments)
        header = self._header(name, sym.kind, parent, sym.start_line)
        if self._fits(header, content):
            self._emit(start, sym.end_line, content, name, sym.kind, parent, header)
        else:
            self.windows(segments, name, sym.kind, parent)

    def gap(self, start: int, end: int) -> None:
        self.windows([(row, self.lines[row]) for row in range(start, end + 1)], "", "block", "")

    def run(self, roots: list[SymbolNode]) -> None:
        """Chunk top-level symbols and the gaps between them.

        Gap policy: a gap becomes windows. Gaps of punctuation only (``}``, ``end``) go, and so do
        gaps of fewer than ``MIN_GAP_LINES`` non-blank lines in a file that has symbols (a lone
        import, a file-header comment, ``package main``): as chunks they embed poorly and surfaced
        as top hits. A gap is never merged into the symbol below it: a symbol's chunk starts at the
        symbol, so a hit lands on it and names it.
        """
        cursor = 0
        # A one-line module assignment (``logger = ...``, ``T = TypeVar("T")``, a run of constants) is
        # no chunk of its own: hundreds of one-line chunks would embed poorly and crowd the results, so
        # its lines stay in the gap as before. A multi-line one (flask's ``g: ... = LocalProxy(...)``)
        # is a chunk named after it, so symbol look-ups and the definition boost find it.
        roots = [sym for sym in roots if sym.kind not in VARIABLE_KINDS or sym.end_line > sym.start_line]
        self.has_symbols = bool(roots)
        for index, sym in enumerate(roots):
            # A symbol sharing a line with its neighbour (minified code) has no lines of its own to
            # be a chunk: its rows are chunked as plain windows with the rest of the gap.
            shares_start = index > 0 and roots[index - 1].end_line >= sym.start_line
            shares_end = index + 1 < len(roots) and roots[index + 1].start_line <= sym.end_line
            if shares_start or shares_end or sym.start_line < cursor:
                continue
            self._gap_between(cursor, max(cursor, sym.attached_start) - 1)
            self.symbol(sym, "")
            cursor = sym.end_line + 1
        self._gap_between(cursor, len(self.lines) - 1)

    def _gap_between(self, start: int, end: int) -> None:
        while start <= end and not self.lines[start].strip():
            start += 1
        while end >= start and not self.lines[end].strip():
            end -= 1
        if start > end:
            return
        rows = [self.lines[row] for row in range(start, end + 1) if self.lines[row].strip()]
        if not any(ch.isalnum() for line in rows for ch in line):
            return  # punctuation only: "}", "end"
        if len(rows) < MIN_GAP_LINES and self.has_symbols:
            return  # a lone import, header comment or "package main": never a result anyone wants
        self.gap(start, end)


def chunk_file(
    path: str,
    text: str,
    *,
    max_tokens: int,
    count_tokens: Callable[[str], int] | None = None,
    window_lines: int = 40,
    overlap_lines: int = 8,
    split_containers: bool = True,
) -> list[Chunk]:
    """Chunks of ``text`` (the content of workspace-relative POSIX ``path``), ordered by start line.

    Never raises on bad input: unknown languages and parser failures fall back to line windows.
    ``count_tokens`` should count what the model sees (special tokens included); without it, tokens
    are estimated as characters / 3.2.
    """
    if not text.strip():
        return []
    language = language_for_file(path, text)
    roots: list[SymbolNode] = []
    if language in SPECS and len(text) / (text.count("\n") + 1) < MINIFIED_AVG_LINE_CHARS:
        try:
            roots = extract_symbols(language, text)
        except DependencyMissingError:
            raise  # an installation problem, not a problem of this file: say how to fix it
        except Exception:  # a grammar crash on odd input must not stop indexing: use windows
            logger.warning("parsing %s as %s failed; chunking it by lines", path, language, exc_info=True)
            roots = []
    chunker = _Chunker(
        path, language or "text", text, max_tokens, count_tokens, window_lines, overlap_lines, split_containers
    )
    chunker.run(roots)
    return sorted(chunker.chunks, key=lambda chunk: chunk.start_line)
