"""Lines of hosting logic in each front end at a git revision (issue 14's "before/after" figure).

Hosting logic: holding or driving a folder's indexing — state, progress, background threads, lock
probes and retry loops, cancellation, the ``partial`` flag and the status record. Counted as whole
functions (their lines, docstrings included), classified by hand below; protocol work (argument
parsing, paging, printing, LSP/MCP shapes, work-done progress messages) is not counted.

    python bench/hosting_lines.py            # before (ac8cb97^) and now (HEAD)
    python bench/hosting_lines.py REV ...
"""

from __future__ import annotations

import ast
import subprocess
import sys

BEFORE = "ac8cb97^"  # the commit before engine/host.py
HOSTING: dict[str, dict[str, tuple[str, ...]]] = {
    # Before: each front end had its own state machine, lock loop and status.
    BEFORE: {
        "lsp_server/server.py": (
            "Folder",
            "SemcodeServer.workspace_of",
            "SemcodeServer.ready_folders",
            "SemcodeServer.in_index_thread",
        ),
        "lsp_server/features/indexing.py": ("index_folder",),
        "lsp_server/features/search.py": ("searchable_folders", "status_report"),
        "semcode/mcp_server.py": (
            "McpEngine.__init__",
            "McpEngine.start",
            "McpEngine.stop",
            "McpEngine.wait_stopped",
            "McpEngine._background",
            "McpEngine._fail",
            "McpEngine._index_until_done",
            "McpEngine._index_whole",
            "McpEngine._on_progress",
            "McpEngine.wait_ready",
            "McpEngine.locked_by_other",
            "McpEngine.partial_note",
            "McpEngine.reindex",
            "_probe_lock",
            "do_status",
        ),
        "semcode/cli.py": ("_workspace", "run_index", "cmd_status"),
    },
    # Now: the same duties, as calls into engine/host.py's IndexHost.
    "HEAD": {
        "lsp_server/server.py": (
            "SemcodeServer.add_folder",
            "SemcodeServer.remove_folder",
            "SemcodeServer.open_folders",
        ),
        "lsp_server/features/indexing.py": ("index_folder", "reindex", "progress_cancel"),
        "lsp_server/features/search.py": ("searchable_folders", "_overall_state", "status_report"),
        "semcode/mcp_server.py": ("do_reindex", "_index_scope", "_partial_note", "_wait_open", "do_status"),
        "semcode/cli.py": ("_host", "run_index", "cmd_status"),
    },
}
FRONT_ENDS = {"lsp_server": "language server", "semcode/mcp": "MCP server", "semcode/cli": "CLI"}


def _functions(source: str) -> dict[str, int]:
    """Qualified name -> line count of every function and class (methods as ``Class.name``)."""
    found: dict[str, int] = {}

    def walk(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = prefix + child.name
                found[name] = (child.end_lineno or child.lineno) - child.lineno + 1
                if isinstance(child, ast.ClassDef):
                    walk(child, name + ".")

    walk(ast.parse(source), "")
    return found


def _show(rev: str, path: str) -> str:
    return subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True, text=True, check=True).stdout


def measure(rev: str, classification: dict[str, tuple[str, ...]]) -> dict[str, int]:
    totals = dict.fromkeys(FRONT_ENDS.values(), 0)
    for path, names in classification.items():
        lines = _functions(_show(rev, path))
        missing = [n for n in names if n not in lines]
        if missing:
            raise SystemExit(f"{rev}:{path} has no {', '.join(missing)}: update the classification")
        front = next(label for prefix, label in FRONT_ENDS.items() if path.startswith(prefix))
        totals[front] += sum(lines[n] for n in names)
    return totals


def main(argv: list[str]) -> int:
    revs = argv or [BEFORE, "HEAD"]
    host = {rev: len(_show(rev, "engine/host.py").splitlines()) if rev != BEFORE else 0 for rev in revs}
    print("| front end | " + " | ".join(revs) + " |")
    print("|---|" + "---|" * len(revs))
    results = {rev: measure(rev, HOSTING[rev if rev in HOSTING else "HEAD"]) for rev in revs}
    for front in FRONT_ENDS.values():
        print(f"| {front} | " + " | ".join(str(results[rev][front]) for rev in revs) + " |")
    print("| engine/host.py (whole file) | " + " | ".join(str(host[rev]) for rev in revs) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
