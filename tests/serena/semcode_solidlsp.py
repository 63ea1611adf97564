"""semcode as an external language server for Serena's ``solidlsp`` (PyPI ``serena-agent``).

This module is what a Serena user copies into their own package (see docs/serena.md): a
``SolidLanguageServer`` subclass that launches ``semcode serve`` over stdio, plus a registration
function usable directly or as a ``solidlsp.language_server_registration`` entry point.

Settings reach the server as ``initializationOptions``, taken from Serena's per-server settings
(``ls_specific_settings: {semcode: {initializationOptions: {...}}}``); the same object answers the
server's ``workspace/configuration`` request for the ``semcode`` section. The launch command is
``ls_specific_settings.semcode.command`` (a list), else ``$SEMCODE_SERVER_CMD``, else ``semcode serve``.
"""

from __future__ import annotations

import logging
import os
import shlex
import threading
import time
from typing import Any

from solidlsp.ls import SolidLanguageServer
from solidlsp.ls_config import ExternalLanguageServerId, FilenameMatcher, LanguageServerConfig, LanguageServerRegistry
from solidlsp.lsp_protocol_handler.server import ProcessLaunchInfo
from solidlsp.settings import SolidLSPSettings

log = logging.getLogger(__name__)

KEY = "semcode"
# The languages semcode chunks with tree-sitter (a subset is enough for a matcher; extend as needed).
EXTENSIONS = (
    ".py",
    ".pyi",
    ".ts",
    ".tsx",
    ".js",
    ".jsx",
    ".mjs",
    ".cjs",
    ".go",
    ".rs",
    ".java",
    ".c",
    ".h",
    ".cc",
    ".cpp",
    ".hpp",
    ".cs",
    ".rb",
    ".php",
    ".kt",
    ".swift",
    ".scala",
    ".lua",
    ".sh",
    ".md",
)
LANGUAGE_IDS = {
    ".py": "python",
    ".pyi": "python",
    ".ts": "typescript",
    ".tsx": "typescriptreact",
    ".js": "javascript",
    ".jsx": "javascriptreact",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
    ".c": "c",
    ".h": "c",
    ".cc": "cpp",
    ".cpp": "cpp",
    ".hpp": "cpp",
    ".cs": "csharp",
    ".rb": "ruby",
    ".php": "php",
    ".kt": "kotlin",
    ".swift": "swift",
    ".scala": "scala",
    ".lua": "lua",
    ".sh": "shellscript",
    ".md": "markdown",
}
INDEXING_TITLE = "Indexing workspace"


class SemcodeLanguageServer(SolidLanguageServer):
    """Semantic code search (``semcode serve``) driven by solidlsp."""

    def __init__(self, config: LanguageServerConfig, repository_root_path: str, solidlsp_settings: SolidLSPSettings):
        # custom settings are read before the base constructor runs (it creates the process interface)
        custom = solidlsp_settings.get_ls_specific_settings(config.ls_id)
        command = custom.get("command") or shlex.split(os.environ.get("SEMCODE_SERVER_CMD", "semcode serve"))
        env = {k: str(v) for k, v in (custom.get("env") or {}).items()}
        super().__init__(
            config,
            repository_root_path,
            ProcessLaunchInfo(cmd=list(command), cwd=repository_root_path, env=env),
            "python",
            solidlsp_settings,
        )
        self.indexing_done = threading.Event()
        self.progress_log: list[tuple[str, dict[str, Any]]] = []  # (token, value) of every $/progress
        self.messages: list[dict[str, Any]] = []  # window/showMessage params
        self.log_messages: list[dict[str, Any]] = []  # window/logMessage params
        self.configuration_requests: list[Any] = []
        self._indexing_tokens: set[str] = set()
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ solidlsp hooks
    def _get_language_id_for_file(self, relative_file_path: str) -> str:
        return LANGUAGE_IDS.get(os.path.splitext(relative_file_path)[1].lower(), "plaintext")

    def is_ignored_dirname(self, dirname: str) -> bool:
        return super().is_ignored_dirname(dirname) or dirname in ("node_modules", "__pycache__", "venv")

    def _get_wait_time_for_cross_file_referencing(self) -> float:
        return 0  # semcode answers from its index; wait for indexing instead (wait_until_indexed)

    @property
    def settings(self) -> dict[str, Any]:
        """The semcode settings: Serena's ``initializationOptions`` for this server."""
        return dict(self.custom_settings.get("initializationOptions", {}) or {})

    def _create_base_initialize_params(self) -> dict:
        return {
            "locale": "en",
            "capabilities": {
                "workspace": {
                    "configuration": True,
                    "workspaceFolders": True,
                    "didChangeConfiguration": {"dynamicRegistration": True},
                    "didChangeWatchedFiles": {"dynamicRegistration": True, "relativePatternSupport": True},
                    "symbol": {"dynamicRegistration": True, "symbolKind": {"valueSet": list(range(1, 27))}},
                    "executeCommand": {"dynamicRegistration": True},
                },
                "textDocument": {
                    "synchronization": {"dynamicRegistration": True, "didSave": True},
                    "references": {"dynamicRegistration": True},
                    "documentSymbol": {
                        "dynamicRegistration": True,
                        "symbolKind": {"valueSet": list(range(1, 27))},
                        "hierarchicalDocumentSymbolSupport": True,
                    },
                    "codeAction": {"dynamicRegistration": True},
                },
                "window": {"workDoneProgress": True, "showMessage": {}},
                "general": {"positionEncodings": ["utf-16"]},
            },
            # the defaults, overridden by ls_specific_settings.semcode.initializationOptions (merged by solidlsp)
            "initializationOptions": {},
        }

    def _start_server(self) -> None:
        def on_progress(params: dict[str, Any]) -> None:
            token, value = str(params.get("token")), params.get("value") or {}
            with self._lock:
                self.progress_log.append((token, value))
                if value.get("kind") == "begin" and str(value.get("title", "")).startswith(INDEXING_TITLE):
                    self._indexing_tokens.add(token)
                elif value.get("kind") == "end" and token in self._indexing_tokens:
                    self._indexing_tokens.discard(token)
                    if not self._indexing_tokens:
                        self.indexing_done.set()

        def on_configuration(params: dict[str, Any]) -> list[Any]:
            self.configuration_requests.append(params)
            return [self.settings if item.get("section") == KEY else None for item in params.get("items", [])]

        self.server.on_request("window/workDoneProgress/create", lambda params: None)
        self.server.on_request("client/registerCapability", lambda params: None)
        self.server.on_request("client/unregisterCapability", lambda params: None)
        self.server.on_request("workspace/configuration", on_configuration)
        self.server.on_request("window/showMessageRequest", lambda params: None)
        self.server.on_notification("$/progress", on_progress)
        self.server.on_notification("window/showMessage", self.messages.append)
        self.server.on_notification("window/logMessage", self.log_messages.append)
        self.server.on_notification("textDocument/publishDiagnostics", lambda params: None)

        log.info("starting semcode: %s", self._get_process_launch_info().cmd)
        self.server.start()
        response = self.server.send.initialize(self._create_initialize_params())
        capabilities = response["capabilities"]
        assert capabilities.get("documentSymbolProvider"), capabilities
        assert capabilities.get("workspaceSymbolProvider"), capabilities
        assert capabilities.get("referencesProvider"), capabilities
        self.server.notify.initialized({})

    # ------------------------------------------------------------------ semcode extras
    def status(self) -> dict[str, Any]:
        """``semcode/status``."""
        return self.server.send_request("semcode/status", {})

    def semantic_search(self, query: str, limit: int = 10, filters: dict[str, Any] | None = None) -> list[dict]:
        """``workspace/semanticSearch``: results best first."""
        params: dict[str, Any] = {"query": query, "limit": limit}
        if filters:
            params["filters"] = filters
        return self.server.send_request("workspace/semanticSearch", params)

    def find_similar(self, uri: str, range_: dict[str, Any]) -> list[dict]:
        """The ``semcode.findSimilar`` command: Location[] of code similar to the selection."""
        return self.server.send_request(
            "workspace/executeCommand", {"command": "semcode.findSimilar", "arguments": [uri, range_]}
        )

    def wait_until_indexed(self, timeout: float = 120.0) -> dict[str, Any]:
        """Wait for the indexing progress to end, then for ``semcode/status`` to say ready; return the status."""
        deadline = time.monotonic() + timeout
        self.indexing_done.wait(timeout)
        while True:
            status = self.status()
            if status["state"] in ("ready", "error") or time.monotonic() > deadline:
                return status
            time.sleep(0.2)


def semcode_ls_id(priority: int = 0) -> ExternalLanguageServerId:
    """Priority 0: never auto-detected by Serena, used only when a project lists ``semcode``."""
    return ExternalLanguageServerId(
        KEY, FilenameMatcher(*EXTENSIONS, case_sensitive=False), SemcodeLanguageServer, priority
    )


def register() -> None:
    """Register ``semcode`` with solidlsp (idempotent). Also usable as an entry point of the group
    ``solidlsp.language_server_registration``."""
    LanguageServerRegistry.get_instance().register(semcode_ls_id(), allow_override=True)
