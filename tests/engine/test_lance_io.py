"""engine/lance_io.py: a server's commits write no version hint and put LanceDB's temporary directories on
a tmpfs; children get the user's TMPDIR back; readers that use the hint still see the latest version.

Real LanceDB, each setting in a process of its own (LanceDB reads the variables once per process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.lance_io import SHM, _is_tmpfs, child_environment

ROOT = Path(__file__).resolve().parents[2]


def run(code: str, *args: str, env: dict[str, str] | None = None) -> object:
    """``code`` in a fresh interpreter (this tree first on the path); its last stdout line, as JSON."""
    full = dict(os.environ if env is None else env)
    full["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env=full, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


WRITE = """
import json, sys
prepare = sys.argv[2] == "prepare"
if prepare:
    from engine.lance_io import prepare_interactive_writes
    scratch = prepare_interactive_writes()
else:
    scratch = None
import os
before = set(os.listdir(scratch)) if scratch else set()
import lancedb, pyarrow as pa
db = lancedb.connect(sys.argv[1])
rows = pa.table({"id": pa.array([str(i) for i in range(int(sys.argv[3]))])})
if "t" in db.table_names():
    t = db.open_table("t")
else:
    t = db.create_table("t", rows)
for i in range(3):
    t.merge_insert("id").when_matched_update_all().when_not_matched_insert_all().execute(
        pa.table({"id": pa.array([f"new-{sys.argv[3]}-{i}"])}))
if len(sys.argv) > 4:  # drop every older version, as a compaction's cleanup does
    from datetime import timedelta
    import warnings
    warnings.simplefilter("ignore")
    t.optimize(cleanup_older_than=timedelta(0), delete_unverified=True)
hint = os.path.join(sys.argv[1], "t.lance", "_versions", "latest_version_hint.json")
print(json.dumps({"version": t.version, "hint": open(hint).read() if os.path.exists(hint) else None,
                  "tmpdir": os.environ.get("TMPDIR"), "scratch": scratch,
                  "left": sorted(set(os.listdir(scratch)) - before) if scratch else None}))
"""

READ = """
import json, sys, lancedb
t = lancedb.connect(sys.argv[1]).open_table("t")
print(json.dumps([t.version, t.count_rows()]))
"""


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TMPDIR", "LANCE_USE_VERSION_HINT")}
    env.pop("SEMCODE_ORIGINAL_TMPDIR", None)
    return env


def test_a_prepared_process_commits_without_the_hint_and_a_hinted_reader_sees_its_latest_version(
    tmp_path: Path,
) -> None:
    db = str(tmp_path / "db")
    plain = run(WRITE, db, "plain", "10", env=clean_env())
    assert plain["hint"] is not None  # LanceDB's default: every commit rewrites the hint
    assert json.loads(plain["hint"])["version"] == plain["version"]
    prepared = run(WRITE, db, "prepare", "20", env=clean_env())
    assert prepared["version"] == plain["version"] + 3
    assert json.loads(prepared["hint"])["version"] == plain["version"]  # left as it was: stale now
    # A reader with the hint on (another semcode, older) probes past the stale hint.
    assert run(READ, db, env=clean_env()) == [prepared["version"], 10 + 6]
    # Even once the hinted version is gone (a compaction's cleanup of old versions).
    cleaned = run(WRITE, db, "prepare", "30", "cleanup", env=clean_env())
    assert len(list((tmp_path / "db" / "t.lance" / "_versions").glob("*.manifest"))) == 1
    assert run(READ, db, env=clean_env()) == [cleaned["version"], 10 + 9]


@pytest.mark.skipif(not sys.platform.startswith("linux") or not _is_tmpfs(SHM), reason="needs a tmpfs /dev/shm")
def test_temporary_directories_go_to_a_private_tmpfs_directory_unless_the_user_set_tmpdir(tmp_path: Path) -> None:
    prepared = run(WRITE, str(tmp_path / "a"), "prepare", "5", env=clean_env())
    scratch = Path(prepared["scratch"])
    assert prepared["tmpdir"] == str(scratch) and scratch.parent == SHM
    info = scratch.stat()
    assert info.st_uid == os.getuid() and info.st_mode & 0o777 == 0o700
    assert prepared["left"] == []  # merge_insert's directories were made there and removed (the directory is
    # this user's, shared with their other servers: only what this process added counts)
    # A user's own TMPDIR (and version-hint setting) win.
    own = clean_env() | {"TMPDIR": str(tmp_path), "LANCE_USE_VERSION_HINT": "1"}
    kept = run(WRITE, str(tmp_path / "b"), "prepare", "5", env=own)
    assert kept["scratch"] is None and kept["tmpdir"] == str(tmp_path) and kept["hint"] is not None


def test_a_child_gets_the_users_tmpdir_back() -> None:
    # The server's scratch TMPDIR never reaches the maintenance child (its vector index build spills
    # every vector there); the user's own value, or none, does.
    unset = child_environment({"TMPDIR": "/dev/shm/semcode-1", "SEMCODE_ORIGINAL_TMPDIR": "", "A": "1"})
    assert unset == {"A": "1"}
    assert child_environment({"TMPDIR": "/dev/shm/x", "SEMCODE_ORIGINAL_TMPDIR": "/big/tmp"}) == {"TMPDIR": "/big/tmp"}
    assert child_environment({"TMPDIR": "/mine"}) == {"TMPDIR": "/mine"}  # never redirected: left alone


def test_the_maintenance_child_is_started_with_the_users_tmpdir(monkeypatch: pytest.MonkeyPatch) -> None:
    from engine import maintenance

    monkeypatch.setenv("TMPDIR", "/dev/shm/semcode-test")
    monkeypatch.setenv("SEMCODE_ORIGINAL_TMPDIR", "")
    seen: dict[str, dict[str, str]] = {}

    class FakeChild:  # the child's start only: what environment it was given
        def __init__(self, command: list[str], env: dict[str, str], **_: object) -> None:
            seen["env"] = env

        def wait(self, timeout: float | None = None) -> int:
            return 0

    monkeypatch.setattr(maintenance.subprocess, "Popen", FakeChild)
    assert maintenance.in_child(Path("/nonexistent"), "optimize", {})
    assert "TMPDIR" not in seen["env"] and "SEMCODE_ORIGINAL_TMPDIR" not in seen["env"]
