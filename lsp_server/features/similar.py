""" "Find similar code": the code action, its command, and (opt-in) textDocument/references."""

from __future__ import annotations

import logging
from typing import Any

from lsprotocol import types

from engine.errors import ConfigError, SemcodeError
from engine.search import REFERENCES_MIN_SCORE

from ..convert import hit_to_location, parse_range, selection_lines, uri_to_path
from ..server import SemcodeServer, request_error

log = logging.getLogger(__name__)
FIND_SIMILAR = "semcode.findSimilar"
CODE_ACTION_KIND = "refactor.semcode.findSimilar"
SIMILAR_LIMIT = 20


async def find_similar(
    ls: SemcodeServer,
    uri: str,
    rng: types.Range,
    *,
    limit: int = SIMILAR_LIMIT,
    text: str | None = None,
    min_score: float | None = None,
) -> list[types.Location]:
    path = uri_to_path(uri)
    host = ls.folder_for(path)
    if host is None:
        raise ConfigError(f"{path} is not in a workspace folder")
    if not host.is_open:
        raise SemcodeError("the workspace is still loading; try again in a moment")
    start, end = selection_lines(rng)
    code = None
    if text is not None and rng.start != rng.end:
        lines = text.splitlines()
        code = "\n".join(lines[start : end + 1])
    hits = await ls.in_thread(
        host.workspace.find_similar, str(path), start, end, limit=limit, code=code, min_score=min_score
    )
    return [hit_to_location(hit, host.root) for hit in hits]


CODE_ACTION_OPTIONS = types.CodeActionOptions(code_action_kinds=[CODE_ACTION_KIND], resolve_provider=False)


def code_action(ls: SemcodeServer, params: types.CodeActionParams) -> list[types.CodeAction]:
    only = params.context.only
    if only and not any(CODE_ACTION_KIND.startswith(kind) for kind in only):
        return []
    try:
        if ls.folder_for(uri_to_path(params.text_document.uri)) is None:
            return []  # nothing outside the workspace folders is offered (or read)
    except ValueError:
        return []
    title = "Find similar code"
    arguments = [params.text_document.uri, params.range]
    return [
        types.CodeAction(
            title=title,
            kind=CODE_ACTION_KIND,
            command=types.Command(title=title, command=FIND_SIMILAR, arguments=arguments),
        )
    ]


async def find_similar_command(ls: SemcodeServer, *args: Any) -> list[types.Location]:
    try:
        if len(args) == 1 and isinstance(args[0], (list, tuple)):
            args = tuple(args[0])  # some clients wrap the arguments once more
        if len(args) < 2 or not isinstance(args[0], str):
            raise ConfigError(f"{FIND_SIMILAR} takes [uri, range], got {list(args)!r}")
        rng = parse_range(args[1])
        return await find_similar(ls, args[0], rng, text=ls.open_text(args[0]))
    except (SemcodeError, ValueError) as exc:
        raise request_error(exc) from exc


async def references(ls: SemcodeServer, params: types.ReferenceParams) -> list[types.Location]:
    if not ls.options.references_similar_code:
        return []
    position = params.position
    try:
        return await find_similar(
            ls, params.text_document.uri, types.Range(position, position), min_score=REFERENCES_MIN_SCORE
        )
    except (SemcodeError, ValueError) as exc:
        log.info("references: %s", exc)
        return []
