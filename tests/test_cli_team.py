"""`semcode index --publish`, `--shared-index` and `--embeddings-url` as a user runs them."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path


def semcode(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "semcode", *args], capture_output=True, text=True, timeout=300)


def test_publish_then_search_a_clone_on_the_snapshot(workspace_copy: Path, tmp_path: Path, default_model_path: Path):
    shared = tmp_path / "team-share"  # a shared folder: the same code path as s3:// minus the network
    done = semcode("index", str(workspace_copy), "--index-dir", str(tmp_path / "ci"), "--publish", str(shared))
    assert done.returncode == 0, done.stderr
    assert "published snapshot" in done.stderr
    pointer = json.loads((shared / "latest.json").read_text())
    assert pointer["files"] == 6 and pointer["dimension"] == 384

    clone = tmp_path / "clone"
    shutil.copytree(workspace_copy, clone)
    (clone / "python" / "rocket.py").write_text("def launch_rocket_to_mars(fuel):\n    return fuel * 2\n")
    common = ["--index-dir", str(tmp_path / "dev"), "--shared-index", str(shared)]
    indexed = semcode("index", str(clone), "--json", *common)
    assert indexed.returncode == 0, indexed.stderr
    summary = json.loads(indexed.stdout)
    assert summary["files_indexed"] == 1 and summary["chunks_embedded"] == 1
    for query, path in (("launch a rocket", "python/rocket.py"), ("retry with backoff", "python/http_retry.py")):
        found = semcode("search", query, "--path", str(clone), "-k", "1", "--json", *common)
        assert found.returncode == 0, found.stderr
        assert json.loads(found.stdout)[0]["path"] == path

    both = semcode("index", str(clone), "--publish", str(shared), *common)
    assert both.returncode == 1 and "drop --shared-index" in both.stderr


def test_embedding_server_down_is_one_line(workspace_copy: Path, tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    done = semcode(
        "index", str(workspace_copy), "--index-dir", str(tmp_path / "i"), "--embeddings-url", f"http://127.0.0.1:{port}"
    )
    assert done.returncode == 1
    assert done.stderr.strip().startswith("semcode: error: cannot reach the embedding server")
    assert "Traceback" not in done.stderr and not done.stdout
