"""The early walk of a server's start in a child process, so that it runs on another core (issue 11).

A language server restarted on an unchanged 13.6K-file workspace does three things before it can say
"ready": it imports LanceDB, reads the index's manifest, and walks and stats every file. All three are
Python bound to one core by the GIL, so a walk on a thread only took turns with the import (0.5 s of
walking took 1.2-2.1 s beside it). Here the walk (``engine.files.walk``, the same function and rules)
runs in ``python -m engine.walk_child``, started by ``Workspace.prewalk``, while this process imports
and reads the index.

Protocol: the request is one JSON object on stdin (``root``, ``include``, ``exclude``,
``max_file_size``); the answer is one pickle on stdout: ``{"files": [(path, abspath, size, mtime_ns)],
"skipped": [(path, reason)], "root": real root, "logs": [(level, message)]}`` (the walk's own log lines,
logged again by the parent). Pickle is safe here: both ends are this package. Anything else (no answer,
a non-zero exit) makes the parent walk on its thread instead: the same files, only later.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

from .children import package_env
from .config import EngineConfig
from .files import SourceFile, walk_entries

log = logging.getLogger(__name__)


def walk_in_child(root: Path, config: EngineConfig) -> tuple[list[SourceFile], list[tuple[str, str]]]:
    """``list(walk(root, config, skipped))`` and the skips, computed in a child process.

    Raises (OSError, subprocess errors, ValueError ...) when the child cannot give an answer.
    """
    request = {
        "root": str(root),
        "include": list(config.include),
        "exclude": list(config.exclude),
        "max_file_size": config.max_file_size,
    }
    env = package_env()
    done = subprocess.run(
        [sys.executable, "-m", "engine.walk_child"],
        input=json.dumps(request).encode(),
        capture_output=True,
        env=env,
        cwd=os.path.abspath(os.sep),  # never the workspace: nothing is written there
        check=False,  # no timeout: a walk that hangs (a dead network mount) would hang on a thread too
    )
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
        raise RuntimeError(f"the walk child exited with {done.returncode}: {tail[0]}")
    answer: dict[str, Any] = pickle.loads(done.stdout)  # our own child's answer
    files_log = logging.getLogger("engine.files")
    for level, message in answer["logs"]:
        files_log.log(level, "%s", message)
    real_root = Path(answer["root"])
    files = [SourceFile(rel, real, size, mtime_ns, real_root) for rel, real, size, mtime_ns in answer["files"]]
    return files, [(rel, reason) for rel, reason in answer["skipped"]]


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[tuple[int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.levelno, record.getMessage()))


def main() -> int:
    request = json.loads(sys.stdin.buffer.read())
    config = EngineConfig(
        include=tuple(request["include"]),
        exclude=tuple(request["exclude"]),
        max_file_size=int(request["max_file_size"]),
    )
    collect = _Collect()
    files_log = logging.getLogger("engine.files")
    files_log.addHandler(collect)
    files_log.setLevel(logging.INFO)
    files_log.propagate = False
    skipped: list[tuple[str, str]] = []
    root_real = os.path.realpath(request["root"])  # as ``walk`` resolves it
    answer = {
        "files": list(walk_entries(Path(root_real), config, skipped)),
        "skipped": skipped,
        "root": root_real,
        "logs": collect.lines,
    }
    sys.stdout.buffer.write(pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL))
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
