"""``python -m lsp_server`` / ``semcode serve``: the language server on stdio. Logs never go to stdout."""

from __future__ import annotations

import argparse
import logging
import sys

from .options import LOG_LEVELS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="semcode serve", description="semcode language server (stdio)")
    parser.add_argument("--stdio", action="store_true", help="accepted for compatibility; stdio is the default")
    parser.add_argument("--log-file", help="also write logs to this file")
    parser.add_argument("--log-level", default="info", choices=sorted(LOG_LEVELS))
    args = parser.parse_args(argv)

    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if args.log_file:
        handlers.append(logging.FileHandler(args.log_file, encoding="utf-8"))
    logging.basicConfig(level=LOG_LEVELS[args.log_level], handlers=handlers, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from .server import create_server

    create_server().start_io()
    return 0


if __name__ == "__main__":
    sys.exit(main())
