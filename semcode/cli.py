"""The ``semcode`` command: index, search, status, check, doctor, eval, serve, mcp.

Expected failures (a bad model, a missing folder, a locked index) print one line and exit 1;
only bugs show a traceback. Progress and logs go to stderr, results to stdout.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.config import EngineConfig
from engine.errors import SemcodeError

if TYPE_CHECKING:  # imported where used: `semcode --version` stays quick
    from collections.abc import Callable

    from rich.console import Console

    from engine.host import IndexHost
    from engine.records import IndexProgress, IndexStats


def package_version() -> str:
    try:
        return version("semcode")
    except PackageNotFoundError:  # running from a source tree
        return "0.0.0+source"


def _config(args: argparse.Namespace) -> EngineConfig:
    settings: dict[str, Any] = {}
    for name in ("model", "model_format", "threads", "max_file_size", "index_dir", "embeddings_url", "shared_index"):
        value = getattr(args, name, None)
        if value is not None:
            settings[name] = value
    if getattr(args, "exclude", None):
        settings["exclude"] = args.exclude
    if getattr(args, "include", None):
        settings["include"] = args.include
    if getattr(args, "no_hybrid", False):
        settings["hybrid"] = False
    config = EngineConfig.from_dict(settings)
    if getattr(args, "publish", None) and not config.embeddings_url and config.effective_model_format() == "auto":
        # A snapshot is searched by clones on any CPU (whose auto format may differ): the file as it is.
        config = EngineConfig.from_dict({**settings, "model_format": "as-is"})
    return config


def _root(args: argparse.Namespace) -> Path:
    root = Path(getattr(args, "path", None) or ".")
    if not root.is_dir():
        raise SemcodeError(f"not a folder: {root}")
    return root


def _host(args: argparse.Namespace) -> IndexHost:
    """The folder's workspace in an ``IndexHost``: the CLI follows the same lock and state rules as the servers."""
    from engine.host import IndexHost
    from engine.shared_index import open_workspace  # a plain Workspace unless --shared-index

    return IndexHost(open_workspace(_root(args), _config(args)))


def _stderr_console() -> Console:
    from rich.console import Console

    return Console(stderr=True)


def run_index(
    host: IndexHost,
    *,
    full: bool = False,
    quiet: bool = False,
    queries: bool = True,
    hand_off: Callable[[IndexStats], None] | None = None,
) -> IndexStats:
    """Index with a rich progress bar on stderr; Ctrl-C cancels cleanly (finished files are kept).

    A lock held by another process fails at once, before the model loads. ``queries=False``: no search
    follows in this process (``semcode index``), so the model's query worker does not stay up meanwhile.
    ``hand_off``: report the run there if its final maintenance is handed to a fresh process
    (``Workspace.hand_off``; this process is replaced right after it).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = _stderr_console()
    with Progress(
        TextColumn("[bold]indexing"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("files"),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=console,
        disable=quiet or not console.is_terminal,
        transient=True,
    ) as bar:
        task = bar.add_task("", total=None)

        def progress(p: IndexProgress) -> None:
            bar.update(task, completed=p.done_files, total=p.total_files, description=p.current[-50:])

        from engine.workspace import Workspace

        ws = host.workspace
        if hand_off is not None and isinstance(ws, Workspace):

            def report(stats: IndexStats) -> None:
                bar.stop()  # the terminal as the bar found it: nothing of this process runs after the report
                hand_off(stats)

            ws.hand_off = report
        return host.index(full=full, progress=progress, queries=queries)


def cmd_index(args: argparse.Namespace) -> int:
    host = _host(args)
    ws = host.workspace

    def report(stats: IndexStats) -> None:
        _report_index(args, ws, stats)

    # With --publish the published index must be the compacted one: the maintenance stays here.
    stats = run_index(host, full=args.full, quiet=args.json, queries=False, hand_off=None if args.publish else report)
    host.seal()  # the next server start skips its check of every chunk row (a handed-off run seals in its chain)
    if args.publish:
        from engine.shared_index import publish

        if ws.config.shared_index:
            raise SemcodeError("--publish needs the workspace's own full index: drop --shared-index")
        published = publish(ws.store, args.publish, root=ws.root, keep=args.keep)
        print(f"published {published.info.describe()} to {published.uri}", file=sys.stderr)
    report(stats)
    return 0


def _report_index(args: argparse.Namespace, ws: Any, stats: IndexStats) -> None:
    """``semcode index``'s summary on stdout (JSON with --json); skipped files on stderr."""
    from engine.results import stats_record

    summary = {"root": str(ws.root), **stats_record(stats), "index_path": str(ws.index_path)}
    if ws.rebuilt_reason:
        summary["rebuilt"] = ws.rebuilt_reason
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    if ws.rebuilt_reason:
        print(f"note: the index was rebuilt because {ws.rebuilt_reason}")
    print(
        f"indexed {ws.root}: {stats.files_indexed} files updated, {stats.files_unchanged} unchanged, "
        f"{stats.files_deleted} removed, {stats.files_skipped} skipped; {stats.chunks_total} chunks "
        f"({stats.chunks_embedded} embedded, {stats.chunks_cached} from cache) in {stats.seconds:.1f}s"
    )
    for path, reason in stats.skipped[:20]:
        print(f"  skipped {path}: {reason}", file=sys.stderr)


def cmd_search(args: argparse.Namespace) -> int:
    from engine.results import hit_record
    from engine.search import SearchFilters

    host = _host(args)
    ws = host.open()
    if ws.count_files() == 0 and not getattr(ws, "has_state", False):
        run_index(host, quiet=args.json)
    filters = SearchFilters(path=args.glob, language=args.language, kind=args.kind, min_score=args.min_score)
    hits = ws.search(args.query, limit=args.k, filters=filters)
    if args.json:
        print(json.dumps([hit_record(h, ws.root) for h in hits], indent=2))
        return 0
    if not hits:
        print("no results")
        return 0
    for rank, hit in enumerate(hits, 1):
        name = f" {hit.kind} {hit.symbol}" if hit.symbol else ""
        print(f"{rank:2}. {hit.path}:{hit.start_line + 1}-{hit.end_line + 1}{name}  score {hit.score:.3f}")
        if not args.no_preview:
            for line in hit.preview.splitlines()[:4]:
                print(f"      {line}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """The same status record the servers give; a bad model is reported (state error), not raised."""
    host = _host(args)
    try:
        host.open()
    except SemcodeError:
        pass  # in the status: state "error" and last_error
    status = host.status()
    if args.metrics:  # this process's own counters (an index run, a search) in Prometheus text
        from engine.metrics import metrics

        print(metrics().prometheus_text(), end="")
        return 1 if status["state"] == "error" else 0
    if args.json:
        print(json.dumps(status, indent=2))
    else:
        for key, value in status.items():
            print(f"{key:>24}: {value}")
    return 1 if status["state"] == "error" else 0


def cmd_check(args: argparse.Namespace) -> int:
    report = _host(args).workspace.check(repair=args.repair)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(f"checked {report.rows_checked} rows: {'OK' if report.ok else 'damaged'}")
        for label, items in (
            ("bad vectors", report.bad_vectors),
            ("orphan files", report.orphan_paths),
            ("manifest mismatches", report.count_mismatch),
            ("bad cached vectors", report.bad_cached_vectors),
        ):
            if items:
                print(f"  {label}: {len(items)} ({', '.join(items[:5])})")
        if report.repaired:
            print("repaired: damaged files were dropped; run `semcode index` to embed them again")
    return 0 if report.ok or report.repaired else 1


def cmd_doctor(args: argparse.Namespace) -> int:
    from semcode.doctor import run_checks

    checks = run_checks(_config(args))
    if args.json:
        print(json.dumps({"version": package_version(), "checks": [c.to_dict() for c in checks]}, indent=2))
    else:
        for check in checks:
            mark = "OK  " if check.ok else "FAIL"
            print(f"[{mark}] {check.name}: {check.detail}")
            if not check.ok and check.fix:
                print(f"       fix: {check.fix}")
    return 0 if all(c.ok for c in checks) else 1


def _serve_metrics(port: int | None) -> None:
    if port is not None:
        from engine.metrics import metrics

        metrics().serve(port)  # loopback only; /metrics in Prometheus text


def cmd_serve(args: argparse.Namespace) -> int:
    from lsp_server.__main__ import serve

    _serve_metrics(args.metrics_port)
    return serve(log_file=args.log_file, log_level=(args.log_level or "info").lower())


def cmd_mcp(args: argparse.Namespace) -> int:
    from semcode.mcp_server import main as mcp_main

    _serve_metrics(args.metrics_port)
    return mcp_main(_root(args), _config(args), index_on_start=not args.no_index)


def cmd_eval(args: argparse.Namespace) -> int:
    from semcode.evaluation import run

    return run(_root(args), _config(args), max_queries=args.max_queries, seed=args.seed, json_output=args.json)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="semcode", description="Semantic code search, offline.")
    parser.add_argument("--version", action="version", version=f"semcode {package_version()}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more (to stderr)")
    sub = parser.add_subparsers(dest="command", required=True)

    def engine_options(p: argparse.ArgumentParser, *, path: bool = True, json_output: bool = True) -> None:
        if path:
            p.add_argument("path", nargs="?", default=".", help="workspace folder (default: .)")
        p.add_argument("--model", help="GGUF embedding model (default: bundled all-MiniLM-L6-v2)")
        p.add_argument(
            "--model-format",
            help="auto (default: a BF16 copy where the CPU has AVX512_BF16), as-is or bf16 ($SEMCODE_MODEL_FORMAT)",
        )
        p.add_argument("--threads", type=int, help="llama.cpp threads (default: physical cores)")
        p.add_argument("--max-file-size", type=int, help="skip files larger than this many bytes")
        p.add_argument("--exclude", action="append", help="gitignore-style pattern to skip (repeatable)")
        p.add_argument("--include", action="append", help="index only matching files (repeatable)")
        p.add_argument("--index-dir", help="where the index lives (default: user cache dir)")
        p.add_argument("--embeddings-url", help="OpenAI-compatible embedding server (key: $SEMCODE_EMBEDDINGS_API_KEY)")
        p.add_argument("--shared-index", help="search this published snapshot (s3://, gs://, az://, folder)")
        if json_output:
            p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("index", help="index a folder (incremental)")
    engine_options(p)
    p.add_argument("--full", action="store_true", help="drop the index and rebuild it")
    p.add_argument("--publish", metavar="URI", help="then publish the index as a shared snapshot at URI")
    p.add_argument("--keep", type=int, default=5, help="snapshots kept at the --publish URI (default 5)")
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("search", help="search an indexed folder")
    p.add_argument("query")
    engine_options(p, path=False)
    p.add_argument("--path", default=".", help="workspace folder (default: .)")
    p.add_argument("-k", type=int, default=10, help="number of results (default 10)")
    p.add_argument("--glob", help="only paths matching this glob, e.g. 'src/**/*.py'")
    p.add_argument("--language", help="only this language, e.g. python")
    p.add_argument("--kind", help="only this symbol kind, e.g. function, method, class")
    p.add_argument("--min-score", type=float, help="minimum semantic score (cosine)")
    p.add_argument("--no-hybrid", action="store_true", help="vector search only (no BM25 fusion)")
    p.add_argument("--no-preview", action="store_true", help="print locations only")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("status", help="show the index of a folder")
    engine_options(p)
    p.add_argument("--metrics", action="store_true", help="print the metrics in Prometheus text format")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("check", help="check the index's integrity (and repair it)")
    engine_options(p)
    p.add_argument("--repair", action="store_true", help="drop damaged rows so the next index rebuilds them")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("doctor", help="check model, store, memory and grammars")
    engine_options(p, path=False)
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("eval", help="measure search quality on your own repository (MRR@10 vs BM25)")
    engine_options(p)
    p.add_argument("--max-queries", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("serve", help="run the language server on stdio")
    p.add_argument("--stdio", action="store_true", help="accepted for compatibility; stdio is the default")
    p.add_argument("--log-file", help="also log to this file")
    p.add_argument("--log-level", type=str.lower, choices=("debug", "info", "warning", "error"), help="default info")
    p.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on 127.0.0.1:PORT/metrics")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("mcp", help="run the MCP server on stdio")
    engine_options(p, json_output=False)
    p.add_argument("--no-hybrid", action="store_true", help="vector search only (no BM25 fusion)")
    p.add_argument("--no-index", action="store_true", help="do not index on start")
    p.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on 127.0.0.1:PORT/metrics")
    p.set_defaults(func=cmd_mcp)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.WARNING - 10 * args.verbose
    logging.basicConfig(
        level=max(level, logging.DEBUG), stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        code: int = args.func(args)
        return code
    except SemcodeError as exc:
        print(f"semcode: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("semcode: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
