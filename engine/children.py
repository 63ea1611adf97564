"""The environment of a child process that runs a module of this package (``python -m engine.<name>``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

PACKAGE_ROOT = str(Path(__file__).resolve().parents[1])  # the directory holding this `engine` package


def package_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of ``base`` (this process's environment by default) where this package imports first, as
    it does here, whatever the child's working directory and however semcode was installed."""
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = os.pathsep.join([PACKAGE_ROOT, *filter(None, [env.get("PYTHONPATH")])])
    return env
