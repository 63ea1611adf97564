"""initialize / initialized, settings, workspace folders, shutdown."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from lsprotocol import types

from ..convert import to_plain, uri_to_path
from ..options import LOG_LEVELS, merge_settings, parse_options
from ..server import SemcodeServer
from .indexing import index_all_folders, index_folder, register_file_watcher

log = logging.getLogger(__name__)


def _workspace_roots(params: types.InitializeParams) -> list[Path]:
    uris = [f.uri for f in params.workspace_folders or []]
    if not uris and params.root_uri:
        uris = [params.root_uri]
    roots = []
    for uri in uris:
        try:
            roots.append(uri_to_path(uri).resolve())
        except ValueError:
            log.warning("ignoring non-file workspace folder %s", uri)
    if not roots and params.root_path:
        roots.append(Path(params.root_path).resolve())
    return roots


async def fetch_client_settings(ls: SemcodeServer) -> Any:
    workspace = ls.client_capabilities.workspace
    if not (workspace and workspace.configuration):
        return None
    try:
        result = await asyncio.wait_for(
            ls.workspace_configuration_async(
                types.ConfigurationParams(items=[types.ConfigurationItem(section="semcode")])
            ),
            timeout=5,
        )
    except Exception as exc:  # noqa: BLE001 - settings are optional
        log.warning("workspace/configuration failed: %s", exc)
        return None
    return to_plain(result[0]) if result else None


def apply_settings(ls: SemcodeServer, raw: Any) -> bool:
    """Apply settings; report invalid ones. True when the engine config changed (needs a reindex)."""
    options, errors = parse_options(raw)
    for error in errors:
        ls.show_error(f"invalid setting: {error}")
    logging.getLogger().setLevel(LOG_LEVELS[options.log_level])
    changed = options.engine != ls.options.engine
    ls.options = options
    return changed


def initialize(ls: SemcodeServer, params: types.InitializeParams) -> None:
    ls.init_settings = to_plain(params.initialization_options)
    apply_settings(ls, ls.init_settings)
    for root in _workspace_roots(params):
        if root.is_dir():
            ls.add_folder(root)
        else:
            log.warning("workspace folder %s does not exist", root)


async def initialized(ls: SemcodeServer, params: types.InitializedParams) -> None:
    client_settings = await fetch_client_settings(ls)
    if client_settings is not None and apply_settings(ls, merge_settings(ls.init_settings, client_settings)):
        for root in list(ls.folders):
            ls.add_folder(root)  # nothing started yet: re-created with the client's settings
    ls.spawn(register_file_watcher(ls))
    if not ls.folders:
        ls.log_to_client("no workspace folder: nothing to index")
    index_all_folders(ls)


async def did_change_configuration(ls: SemcodeServer, params: types.DidChangeConfigurationParams) -> None:
    settings = await fetch_client_settings(ls)
    if settings is None:
        pushed = to_plain(params.settings)
        settings = pushed.get("semcode", pushed) if isinstance(pushed, dict) else None
    if apply_settings(ls, merge_settings(ls.init_settings, settings)):
        ls.log_to_client("settings changed: re-indexing with the new settings")
        for root in list(ls.folders):
            ls.add_folder(root)  # the old host is cancelled; the new one has the new engine config
        index_all_folders(ls)


def did_change_workspace_folders(ls: SemcodeServer, params: types.DidChangeWorkspaceFoldersParams) -> None:
    for removed in params.event.removed:
        try:
            ls.remove_folder(uri_to_path(removed.uri).resolve())
        except ValueError:
            continue
    for added in params.event.added:
        try:
            root = uri_to_path(added.uri).resolve()
        except ValueError:
            continue
        if root.is_dir() and root not in ls.folders:
            ls.spawn(index_folder(ls, ls.add_folder(root)))


def shutdown(ls: SemcodeServer, params: None) -> None:
    for host in ls.folders.values():
        host.close()
    for task in ls.save_tasks.values():
        task.cancel()
