"""``python -m lsp_server`` / ``semcode serve``: the language server on stdio. Logs never go to stdout."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from typing import TYPE_CHECKING

from .options import LOG_LEVELS

if TYPE_CHECKING:
    from .server import SemcodeServer

EXIT_GRACE_SECONDS = 2.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="semcode serve", description="semcode language server (stdio)")
    parser.add_argument("--stdio", action="store_true", help="accepted for compatibility; stdio is the default")
    parser.add_argument("--log-file", help="also write logs to this file")
    parser.add_argument("--log-level", default="info", choices=sorted(LOG_LEVELS))
    args = parser.parse_args(argv)
    return serve(log_file=args.log_file, log_level=args.log_level)


def serve(*, log_file: str | None = None, log_level: str = "info") -> int:
    """Serve LSP on stdin/stdout until ``exit`` or a closed stdin."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    logging.basicConfig(
        level=LOG_LEVELS[log_level],
        handlers=handlers,
        force=True,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if log_level != "debug":
        logging.getLogger("pygls").setLevel(logging.WARNING)  # it logs every message at INFO
    from engine.lance_io import prepare_interactive_writes

    prepare_interactive_writes()  # before LanceDB runs anything: saves commit without waiting on the disk
    from .app import create_server

    server = create_server()
    try:
        server.start_io()
    finally:
        stop(server)
    return 0


def stop(server: SemcodeServer) -> None:
    """Leave promptly after ``exit`` or a closed stdin, even in the middle of indexing.

    Each folder's index is sealed when no write runs (the next start then reads less), then its index
    thread is told to cancel and given a moment to finish its current write.
    Exiting then without waiting is safe: each LanceDB write is one atomic commit, so an interrupted
    batch is simply not there, and the manifest makes the next start index those files again.
    """
    hosts = list(server.folders.values())
    for host in hosts:
        host.seal()  # the next start skips its check of every chunk row (engine/seal.py)
        host.close()
    deadline = time.monotonic() + EXIT_GRACE_SECONDS
    for host in hosts:
        host.join(max(0.0, deadline - time.monotonic()))
    logging.shutdown()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
