"""The `semcode` command as a user runs it: real model, real index, stdout/stderr and exit codes."""

from __future__ import annotations

import fcntl
import json
import subprocess
import sys
from pathlib import Path


def semcode(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "semcode", *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )


def test_index_search_status_and_check(workspace_copy: Path, tmp_path: Path, default_model_path: Path) -> None:
    index_dir = str(tmp_path / "index")
    done = semcode("index", str(workspace_copy), "--json", "--index-dir", index_dir)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["files_indexed"], summary["files_skipped"]) == (6, 0)
    assert summary["chunks_embedded"] == summary["chunks_total"] > 0
    assert list(Path(index_dir).glob("*/*/lance/semcode-consistent.json"))  # sealed: a start reads no chunk row

    found = semcode(
        "search",
        "retry an HTTP request with exponential backoff",
        "--path",
        str(workspace_copy),
        "--index-dir",
        index_dir,
        "-k",
        "2",
        "--json",
    )
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)
    assert hits[0]["path"] == "python/http_retry.py"
    assert hits[0]["name_path"] == "RetryingClient/request_with_backoff" and hits[0]["start_line"] == 10

    text = semcode(
        "search",
        "slugify a title",
        "--path",
        str(workspace_copy),
        "--index-dir",
        index_dir,
        "--language",
        "javascript",
        "-k",
        "1",
        "--no-preview",
    )
    assert text.stdout.startswith(" 1. web/strings.js:1-7 function slugify")

    status = json.loads(semcode("status", str(workspace_copy), "--json", "--index-dir", index_dir).stdout)
    assert (status["files"], status["dimension"], status["state"]) == (6, 384, "ready")
    check = semcode("check", str(workspace_copy), "--index-dir", index_dir)
    assert check.returncode == 0 and check.stdout.startswith("checked ")


def test_expected_failures_are_one_line_and_exit_1(tmp_path: Path) -> None:
    missing_model = semcode("search", "x", "--path", str(tmp_path), "--model", str(tmp_path / "nope.gguf"))
    assert missing_model.returncode == 1
    assert missing_model.stderr.count("\n") == 1 and missing_model.stderr.startswith("semcode: error: ")
    assert "nope.gguf" in missing_model.stderr and "Traceback" not in missing_model.stderr

    not_gguf = tmp_path / "model.gguf"
    not_gguf.write_text("this is not a model\n")
    bad = semcode("index", str(tmp_path), "--model", str(not_gguf))
    assert bad.returncode == 1 and "not a GGUF file" in bad.stderr and "Traceback" not in bad.stderr

    bad_setting = semcode("index", str(tmp_path), "--threads", "-2")
    assert bad_setting.returncode == 1 and "threads must be >= 0" in bad_setting.stderr

    no_folder = semcode("index", str(tmp_path / "missing"))
    assert no_folder.returncode == 1 and "not a folder" in no_folder.stderr


def test_doctor_reports_each_part(default_model_path: Path) -> None:
    done = semcode("doctor", "--json")
    report = json.loads(done.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    assert done.returncode == 0, [c for c in report["checks"] if not c["ok"]]
    for name in ("model", "store", "memory", "grammars", "module llama_cpp", "module lancedb"):
        assert checks[name]["ok"], checks[name]
    assert "dim 384" in checks["model"]["detail"]


def test_a_locked_index_is_reported_before_the_model_loads(tmp_path: Path) -> None:
    """Another process holds the write lock: `semcode index` says so at once, from the model's file
    header alone (its index folder), without loading the model."""
    from engine.config import EngineConfig
    from engine.workspace import Workspace

    (tmp_path / "a.py").write_text("def f():\n    return 1\n")
    index_dir = tmp_path / "index"
    lock_dir = Workspace(tmp_path, EngineConfig(index_dir=str(index_dir))).index_path
    lock_dir.mkdir(parents=True)
    with open(lock_dir / "write.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        done = semcode("-v", "index", str(tmp_path), "--index-dir", str(index_dir))
    assert done.returncode == 1 and done.stderr.startswith("semcode: error: another semcode process is writing")
    assert "Traceback" not in done.stderr and "loaded " not in done.stderr


def test_status_with_a_bad_model_reports_the_error(tmp_path: Path) -> None:
    done = semcode("status", str(tmp_path), "--json", "--model", str(tmp_path / "nope.gguf"))
    status = json.loads(done.stdout)
    assert done.returncode == 1 and status["state"] == "error" and "nope.gguf" in status["last_error"]
    assert "Traceback" not in done.stderr
