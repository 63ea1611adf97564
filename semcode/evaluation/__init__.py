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

from .bm25 import BM25Windows, tokenize
from .corpus import Corpus, build_corpus, filter_candidates, sample_queries
from .extract import Query, jsdoc_description, process_js, process_python, strip_python, summary_sentence
from .metrics import TOP_K, Location, SystemResult, first_hit_rank, is_hit, score
from .report import MIN_QUERIES, TooFewQueries, format_table
from .runner import evaluate, run, run_bm25, run_semcode

__all__ = [
    "MIN_QUERIES",
    "TOP_K",
    "BM25Windows",
    "Corpus",
    "Location",
    "Query",
    "SystemResult",
    "TooFewQueries",
    "build_corpus",
    "evaluate",
    "filter_candidates",
    "first_hit_rank",
    "format_table",
    "is_hit",
    "jsdoc_description",
    "process_js",
    "process_python",
    "run",
    "run_bm25",
    "run_semcode",
    "sample_queries",
    "score",
    "strip_python",
    "summary_sentence",
    "tokenize",
]
