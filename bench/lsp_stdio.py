"""LSP base-protocol framing (``Content-Length`` headers) for the benchmarks' stdio clients."""

from __future__ import annotations

import json
from typing import IO, Any


def read_message(stream: IO[bytes]) -> dict[str, Any] | None:
    """The next JSON-RPC message on ``stream``, or None once the server has closed it."""
    length = 0
    while True:
        line = stream.readline()
        if not line:
            return None
        if line in (b"\r\n", b"\n"):
            break
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    message: dict[str, Any] = json.loads(stream.read(length))
    return message


def write_message(stream: IO[bytes], message: dict[str, Any]) -> None:
    """Send one JSON-RPC message (the caller serialises concurrent writers)."""
    body = json.dumps(message).encode()
    stream.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    stream.flush()
