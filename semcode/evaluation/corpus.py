"""The index copy: the code files of a workspace with their docstrings blanked, and query candidates."""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from engine.config import EngineConfig
from engine.errors import SemcodeError

from .extract import JS_LANGUAGES, Query, normalise, process_js, process_python, query_key


@dataclass(slots=True)
class Corpus:
    """The stripped copy: which files it holds, and the query candidates found while stripping."""

    files: list[str] = field(default_factory=list)
    lines: int = 0
    candidates: list[Query] = field(default_factory=list)
    stats: Counter[str] = field(default_factory=Counter)


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
