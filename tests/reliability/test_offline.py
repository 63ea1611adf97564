"""Index and search with no network at all: inside a fresh network namespace (``unshare -rn``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import materialize, record

REPO = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).resolve().parent / "driver.py"


def _netns_prefix() -> list[str] | None:
    if not sys.platform.startswith("linux") or shutil.which("unshare") is None:
        return None
    for prefix in (["unshare", "-rn"], ["unshare", "-n"]):
        try:
            if subprocess.run([*prefix, "true"], capture_output=True, timeout=30).returncode == 0:
                return prefix
        except (OSError, subprocess.TimeoutExpired):
            continue
    return None


@pytest.mark.slow
def test_index_and_search_offline(tmp_path: Path, default_model_path: Path) -> None:
    prefix = _netns_prefix()
    if prefix is None:
        pytest.skip("this machine allows no network namespace (unshare -rn / unshare -n failed)")
    env = dict(os.environ, PYTHONPATH=str(REPO), HF_HUB_OFFLINE="0")
    probe = subprocess.run(
        [*prefix, sys.executable, "-c", "import socket; socket.create_connection(('1.1.1.1', 53), timeout=3)"],
        capture_output=True,
        timeout=60,
    )
    assert probe.returncode != 0, "the namespace still has a network"
    root = tmp_path / "ws"
    materialize(root, 1)
    result = subprocess.run(
        [*prefix, sys.executable, str(DRIVER), str(root), str(tmp_path / "index"), "--search", "refund payment"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    done = json.loads(result.stdout.strip().splitlines()[-1].removeprefix("DONE "))
    assert done["files_indexed"] > 0 and done["hits"]
    record(suite="offline", namespace=" ".join(prefix), files=done["files_indexed"], hits=len(done["hits"]))
