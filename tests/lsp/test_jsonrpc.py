"""The language server's JSON-RPC edges, over raw stdio: what a client library would never send.

No workspace folder is given, so no model loads: these tests take a second or two each.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.timeout(60)


class RawClient:
    """``python -m lsp_server`` with bytes in and parsed messages out; stderr kept for the log checks."""

    def __init__(self, tmp_path: Path) -> None:
        self.stderr_path = tmp_path / "server-stderr.log"
        self._stderr = open(self.stderr_path, "wb")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lsp_server", "--log-level", "info"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.messages: list[dict[str, Any]] = []
        self._lock = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        out = self.proc.stdout
        assert out is not None
        while True:
            length = None
            while True:
                line = out.readline()
                if not line:
                    return
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
                if line in (b"\r\n", b"\n"):
                    break
            body = json.loads(out.read(length or 0))
            with self._lock:
                self.messages.append(body)
                self._lock.notify_all()

    def send_raw(self, body: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def send(self, message: dict[str, Any]) -> None:
        self.send_raw(json.dumps({"jsonrpc": "2.0", **message}).encode())

    def reply(self, msg_id: Any, timeout: float = 15) -> dict[str, Any]:
        """The response with ``id`` (``None``: the first error response without an id)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                for message in self.messages:
                    if "method" not in message and message.get("id") == msg_id:
                        self.messages.remove(message)
                        return message
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no reply to id {msg_id!r}; got {self.messages}")
                self._lock.wait(left)

    def initialize(self) -> None:
        self.send({"id": 0, "method": "initialize", "params": {"capabilities": {}, "processId": None}})
        assert "result" in self.reply(0)
        self.send({"method": "initialized", "params": {}})

    def close(self) -> str:
        """Shut down and exit; returns the server's stderr."""
        try:
            self.send({"id": 999, "method": "shutdown"})
            self.reply(999)
            self.send({"method": "exit"})
            self.proc.wait(10)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self._stderr.close()
        return self.stderr_path.read_text(errors="replace")


@pytest.fixture
def raw(tmp_path: Path):
    client = RawClient(tmp_path)
    client.initialize()
    yield client
    if client.proc.poll() is None:
        client.proc.kill()


def test_unknown_request_without_params_gets_method_not_found(raw: RawClient) -> None:
    raw.send({"id": 1, "method": "semcode/noSuchThing"})
    assert raw.reply(1)["error"]["code"] == -32601
    raw.send({"id": 2, "method": "semcode/noSuchThing", "params": {}})
    assert raw.reply(2)["error"]["code"] == -32601
    raw.close()


def test_malformed_json_gets_a_parse_error_and_the_server_keeps_serving(raw: RawClient) -> None:
    raw.send_raw(b'{"jsonrpc": "2.0", "id": 5, "method": ')
    error = raw.reply(None)
    assert error["error"]["code"] == -32700 and error["id"] is None
    raw.send_raw(b"[1, 2, 3]")  # JSON, but not a JSON-RPC message
    assert raw.reply(None)["error"]["code"] == -32600
    raw.send({"id": 6, "method": "semcode/status"})
    assert raw.reply(6)["result"]["workspaceFolders"] == []
    raw.close()


def test_invalid_params_of_a_standard_request_get_an_error_reply(raw: RawClient) -> None:
    raw.send({"id": 7, "method": "textDocument/documentSymbol", "params": {"textDocument": 42}})
    assert raw.reply(7)["error"]["code"] == -32602
    raw.send({"id": 8, "method": "semcode/status", "params": None})
    assert "result" in raw.reply(8)
    raw.close()


def test_expected_rejections_log_one_line_and_no_traceback(raw: RawClient) -> None:
    raw.send({"id": 10, "method": "workspace/semanticSearch", "params": {"query": ""}})
    assert raw.reply(10)["error"]["code"] == -32602
    raw.send({"id": 11, "method": "workspace/semanticSearch", "params": {"query": "retry"}})
    assert raw.reply(11)["error"]["code"] == -32603  # no folder: a server error, with a message
    raw.send({"id": 12, "method": "workspace/executeCommand", "params": {"command": "semcode.findSimilar"}})
    assert raw.reply(12)["error"]["code"] == -32602
    raw.send({"id": 13, "method": "no/such/method"})
    assert raw.reply(13)["error"]["code"] == -32601
    raw.send_raw(b"{not json")
    assert raw.reply(None)["error"]["code"] == -32700
    log = raw.close()
    assert "Traceback" not in log, log
    for request_id in ("10", "11", "12"):
        assert len([line for line in log.splitlines() if f"request {request_id} rejected" in line]) == 1, log
