"""Running an evaluation: copy, index, search with each system, score (temporary directories only)."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from engine.config import EngineConfig

from .bm25 import BM25Windows
from .corpus import build_corpus, sample_queries
from .extract import Query
from .metrics import TOP_K, Location, SystemResult, _result, _timed
from .report import MIN_QUERIES, TooFewQueries, _round, format_table

Log = Callable[[str], None]


def run_semcode(
    corpus_dir: Path, config: EngineConfig, queries: list[Query], log: Log
) -> tuple[list[SystemResult], dict[str, Any]]:
    """Index the copy into the temporary index named by ``config.index_dir``, then search hybrid and dense."""
    from engine.workspace import Workspace

    workspace = Workspace(corpus_dir, config)
    t0 = time.perf_counter()
    info = workspace.embedder.info
    workspace.open()  # load the model and open the store now, so the index time is indexing only
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


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(root: Path, config: EngineConfig, *, max_queries: int = 200, seed: int = 0, json_output: bool = False) -> int:
    """``semcode eval``. Exit 0 with a report; 1 when the repository has too few usable queries (no
    measurement was made, so a script reading ``--json`` must not mistake the run for a result)."""
    if config.index_dir:
        _stderr("[eval] note: --index-dir is ignored; eval always indexes into a temporary directory")
    try:
        report = evaluate(root, config, max_queries=max_queries or 0, seed=seed or 0, log=_stderr)
    except TooFewQueries as exc:
        if json_output:
            print(json.dumps({"error": str(exc), **exc.report}, indent=2))
        _stderr(f"semcode eval: {exc}")
        return 1
    print(json.dumps(report, indent=2) if json_output else format_table(report))
    return 0
