"""A stand-in for `semcode serve` used only while developing the plugin.

It speaks the same protocol (docs/protocol.md) with naive word-overlap "search" over the
workspace's files, one chunk per top-level function. Run the specs against it with
SEMCODE_SERVER="$PWD/.venv/bin/python $PWD/clients/neovim/tests/mock_server.py" (absolute
paths, from the repository root) when the real server is unavailable; the real
server is what CI uses. Needs pygls 2. Its word-overlap ranking is not semantic, so a ranking
assertion of the e2e spec can fail against it.
"""

from __future__ import annotations

import asyncio
import fnmatch
import os
import re
import sys
from pathlib import Path

from lsprotocol import types as t
from pygls.lsp.server import LanguageServer

FUNC = re.compile(r"^\s*(?:async\s+)?(?:def|function|local function)\s+([\w.]+)|^function\s+([\w.:]+)")
EXTS = {".py": "python", ".lua": "lua", ".js": "javascript"}

server = LanguageServer("semcode-mock", "0.0.1")
STATE = {"state": "starting", "chunks": [], "files": 0, "root": None}
TASKS: set[asyncio.Future] = set()


def words(text: str) -> set[str]:
    parts = re.findall(r"[A-Za-z]+", re.sub(r"([a-z])([A-Z])", r"\1 \2", text))
    return {w.lower() for w in parts if len(w) > 2}


def index(root: Path) -> None:
    chunks, files = [], 0
    ignored = []
    ign = root / ".semcodeignore"
    if ign.exists():
        ignored = [ln.strip() for ln in ign.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        excluded = any(fnmatch.fnmatch(path.name, pat) for pat in STATE.get("exclude", []))
        if path.suffix not in EXTS or excluded or any(rel.startswith(i) for i in ignored):
            continue
        files += 1
        lines = path.read_text().splitlines()
        starts = [i for i, ln in enumerate(lines) if FUNC.match(ln)]
        for n, start in enumerate(starts):
            end = (starts[n + 1] - 1) if n + 1 < len(starts) else len(lines) - 1
            body = "\n".join(lines[start : end + 1])
            m = FUNC.match(lines[start])
            chunks.append(
                {
                    "uri": path.as_uri(),
                    "start": start,
                    "end": end,
                    "text": body,
                    "symbol": m.group(1) or m.group(2),
                    "language": EXTS[path.suffix],
                }
            )
    STATE.update(chunks=chunks, files=files)


def status() -> dict:
    return {
        "state": STATE["state"],
        "files": STATE["files"],
        "chunks": len(STATE["chunks"]),
        "model": "mock",
        "dimension": 0,
        "indexPath": "/dev/null",
        "workspaceFolders": [STATE["root"]] if STATE["root"] else [],
        "lastError": None,
    }


def rank(query_words: set[str], exclude=None) -> list[tuple[float, dict]]:
    scored = []
    for c in STATE["chunks"]:
        if exclude and exclude(c):
            continue
        overlap = len(query_words & words(c["text"]))
        if overlap:
            scored.append((overlap / (len(query_words) or 1), c))
    scored.sort(key=lambda x: -x[0])
    return scored


def rng(c: dict) -> dict:
    return {"start": {"line": c["start"], "character": 0}, "end": {"line": c["end"], "character": 0}}


async def run_index(token: str) -> None:
    STATE["state"] = "indexing"
    try:
        await server.work_done_progress.create_async(token)
    except Exception:
        pass
    server.work_done_progress.begin(token, t.WorkDoneProgressBegin(title="Indexing workspace", percentage=0))
    await asyncio.sleep(0.2)
    server.work_done_progress.report(token, t.WorkDoneProgressReport(percentage=50, message="1/2 files"))
    index(Path(STATE["root"]))
    await asyncio.sleep(0.2)
    server.work_done_progress.end(token, t.WorkDoneProgressEnd(message="done"))
    STATE["state"] = "ready"


@server.feature(t.INITIALIZED)
async def initialized(ls: LanguageServer, params) -> None:
    folders = ls.workspace.folders
    STATE["root"] = next(iter(folders.values())).uri if folders else ls.workspace.root_uri
    STATE["root"] = STATE["root"] and STATE["root"].removeprefix("file://")
    TASKS.add(asyncio.ensure_future(configure_and_index(ls)))


async def configure_and_index(ls: LanguageServer) -> None:
    items = [t.ConfigurationItem(section="semcode")]
    settings = (await ls.workspace_configuration_async(t.ConfigurationParams(items=items)))[0] or {}
    STATE["exclude"] = list(settings.get("exclude") or [])
    await run_index("semcode-index-1")


@server.feature("workspace/semanticSearch")
def semantic_search(ls: LanguageServer, params):
    query = getattr(params, "query", None)
    if not isinstance(query, str) or not query.strip():
        raise ValueError("query must be a non-empty string")
    limit = getattr(params, "limit", 10) or 10
    filters = getattr(params, "filters", None)
    lang = getattr(filters, "language", None) if filters else None
    out = []
    for score, c in [x for x in rank(words(query)) if not lang or x[1]["language"] == lang][:limit]:
        out.append(
            {
                "uri": c["uri"],
                "range": rng(c),
                "score": round(score, 3),
                "symbol": c["symbol"],
                "kind": "function",
                "language": c["language"],
                "preview": c["text"][:200],
                "why": "mock overlap",
            }
        )
    return out


@server.feature("semcode/status")
def semcode_status(ls: LanguageServer, params):
    return status()


@server.command("semcode.status")
def cmd_status(ls: LanguageServer, *args):
    return status()


@server.command("semcode.reindex")
async def cmd_reindex(ls: LanguageServer, *args):
    await run_index("semcode-index-2")
    return {"files": STATE["files"], "chunks": len(STATE["chunks"])}


def chunk_at(uri: str, line: int):
    for c in STATE["chunks"]:
        if c["uri"] == uri and c["start"] <= line <= c["end"]:
            return c
    return None


@server.command("semcode.findSimilar")
def cmd_find_similar(ls: LanguageServer, uri, range_, *rest):
    line = range_["start"]["line"] if isinstance(range_, dict) else range_.start.line
    c = chunk_at(uri, line)
    text = c["text"] if c else ls.workspace.get_text_document(uri).lines[line]
    same = (lambda o: o is c) if c else None
    return [{"uri": o["uri"], "range": rng(o)} for _, o in rank(words(text), same)[:10]]


@server.feature(t.TEXT_DOCUMENT_CODE_ACTION)
def code_action(ls: LanguageServer, params: t.CodeActionParams):
    args = [
        params.text_document.uri,
        {
            "start": {"line": params.range.start.line, "character": params.range.start.character},
            "end": {"line": params.range.end.line, "character": params.range.end.character},
        },
    ]
    return [
        t.CodeAction(
            title="Find similar code",
            kind="refactor.semcode.findSimilar",
            command=t.Command(title="Find similar code", command="semcode.findSimilar", arguments=args),
        )
    ]


if __name__ == "__main__":
    if "--version" in sys.argv:
        print("semcode-mock 0.0.1")
        sys.exit(0)
    if "doctor" in sys.argv:
        import json

        print(json.dumps({"checks": [{"name": "model", "ok": True, "detail": "mock model", "fix": None}]}))
        sys.exit(0)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    server.start_io()
