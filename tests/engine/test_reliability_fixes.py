"""One test per robustness bug of issue 10: each failed on the code before the fix.

Real model, real LanceDB on disk. The crash-torture suite (kill -9, fault points, bad-input corpus,
concurrent writers) lives in tests/reliability/.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from engine.config import EngineConfig
from engine.errors import IndexLockedError, SourceFileError
from engine.files import read_workspace_text, source_file, walk
from engine.records import Chunk
from engine.store import ChunkStore, FileRecord
from engine.workspace import Workspace

REPO = Path(__file__).resolve().parents[2]


def make_ws(tmp_path: Path, embedder, files: dict[str, str]) -> Workspace:
    root = tmp_path / "ws"
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return Workspace(root, EngineConfig(index_dir=str(tmp_path / "index")), embedder=embedder)


def contents(ws: Workspace, path: str) -> str:
    rows = ws.store.rows(f"path = '{path}'", columns=["content", "start_line"])
    return "\n".join(r["content"] for r in sorted(rows, key=lambda r: r["start_line"]))


class Crash(Exception):
    """Stands for the process dying at that point (the subprocess tests use a real os._exit)."""


def crash_before_manifest(store: ChunkStore, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_args, **_kwargs):
        raise Crash

    monkeypatch.setattr(store, "_put_manifest", boom)


A = "def alpha_version():\n    return 'the first version of this file'\n"
B = "def beta_version():\n    return 'a second, different version'\n"


def test_crash_between_chunk_and_manifest_commits_is_detected_and_healed(
    tmp_path: Path, embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = make_ws(tmp_path, embedder, {"a.py": A, "keep.py": "def keep():\n    return 1\n"})
    ws.index()
    a = ws.root / "a.py"
    before = a.stat()
    a.write_text(B)
    with monkeypatch.context() as m:
        crash_before_manifest(ws.store, m)
        with pytest.raises(Crash):
            ws.index()
    assert "beta_version" in contents(ws, "a.py")  # the rows are B, the manifest still says A
    report = ws.check()
    assert not report.ok and report.stale_rows == ["a.py"]
    # The file goes back to A with A's size and mtime: only the rows' file_hash shows they are stale.
    a.write_text(A)
    os.utime(a, ns=(before.st_atime_ns, before.st_mtime_ns))
    stats = ws.index()
    assert stats.files_indexed == 1
    assert "alpha_version" in contents(ws, "a.py") and "beta_version" not in contents(ws, "a.py")
    assert ws.check().ok


def test_rows_of_a_file_never_in_the_manifest_are_dropped(
    tmp_path: Path, embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = make_ws(tmp_path, embedder, {"keep.py": "def keep():\n    return 1\n"})
    ws.index()
    (ws.root / "new.py").write_text(B)
    with monkeypatch.context() as m:
        crash_before_manifest(ws.store, m)
        with pytest.raises(Crash):
            ws.index()
    (ws.root / "new.py").unlink()
    ws.index()
    assert ws.store.rows("path = 'new.py'") == []
    assert ws.check(repair=False).ok


def test_check_repair_fixes_every_kind_of_mismatch(tmp_path: Path, embedder, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = make_ws(tmp_path, embedder, {"a.py": A, "b.py": "def b():\n    return 2\n", "c.py": "x = 3\n"})
    ws.index()
    (ws.root / "a.py").write_text(B)
    with monkeypatch.context() as m:
        crash_before_manifest(ws.store, m)
        with pytest.raises(Crash):
            ws.index()
    ws.store._chunks.delete("path = 'b.py'")  # manifest entry without rows
    report = ws.check()
    assert report.stale_rows == ["a.py"] and report.count_mismatch == ["b.py"]
    repaired = ws.check(repair=True)
    assert repaired.repaired and ws.check().ok
    ws.index()
    assert ws.check().ok and "beta_version" in contents(ws, "a.py") and contents(ws, "b.py")


def test_fault_injection_exits_like_kill_9_at_a_named_boundary(tmp_path: Path, default_model_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "a.py").write_text(A)
    env = dict(os.environ, SEMCODE_FAULT_AT="manifest.before", PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "semcode.cli", "index", str(root), "--index-dir", str(tmp_path / "index")]
    result = subprocess.run(cmd, env=env, capture_output=True, timeout=300, cwd=REPO)
    assert result.returncode == 137, result.stderr.decode()[-2000:]
    env.pop("SEMCODE_FAULT_AT")
    subprocess.run(cmd, env=env, capture_output=True, timeout=300, cwd=REPO, check=True)
    check = subprocess.run([*cmd[:3], "check", *cmd[4:]], env=env, capture_output=True, timeout=300, cwd=REPO)
    assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()


def test_undecodable_file_names_are_skipped_and_the_rest_indexes(tmp_path: Path, embedder) -> None:
    ws = make_ws(tmp_path, embedder, {"good.py": "def good():\n    return 1\n"})
    bad = os.path.join(os.fsencode(ws.root), b"bad\xffname.py")
    with open(bad, "wb") as handle:
        handle.write(b"def bad_name():\n    return 2\n")
    os.mkdir(os.path.join(os.fsencode(ws.root), b"dir\xfe"))
    with open(os.path.join(os.fsencode(ws.root), b"dir\xfe", b"inner.py"), "wb") as handle:
        handle.write(b"x = 1\n")
    stats = ws.index()
    assert set(ws.store.manifest()) == {"good.py"}
    assert ("bad\\xffname.py", "file name is not valid UTF-8") in stats.skipped
    assert ws.check().ok


def outside_tree(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret_outside.py").write_text("def outside_marker_zebra():\n    return 'never indexed'\n")
    return outside


def test_nothing_outside_the_workspace_is_read(tmp_path: Path, embedder) -> None:
    outside = outside_tree(tmp_path)
    ws = make_ws(tmp_path, embedder, {"inside.py": "def inside():\n    return 1\n"})
    (ws.root / "leak.py").symlink_to(outside / "secret_outside.py")
    (ws.root / "passwd.txt").symlink_to("/etc/passwd")
    (ws.root / "linkdir").symlink_to(outside, target_is_directory=True)
    (ws.root / "loop.py").symlink_to(ws.root / "loop.py")
    (ws.root / "inner_link.py").symlink_to(ws.root / "inside.py")  # inside: allowed
    ws.index()
    assert set(ws.store.manifest()) == {"inside.py", "inner_link.py"}
    ws.update_files(["leak.py", "linkdir/secret_outside.py", "passwd.txt", "loop.py"])
    assert set(ws.store.manifest()) == {"inside.py", "inner_link.py"}
    assert not ws.store.rows("content LIKE '%outside_marker_zebra%' OR content LIKE '%root:%'")
    for rel in ("leak.py", "linkdir/secret_outside.py", "passwd.txt", "loop.py", "../outside/secret_outside.py"):
        assert source_file(ws.root, rel, ws.config) is None
        with pytest.raises(SourceFileError):
            read_workspace_text(ws.root, rel, 1_000_000)
    with pytest.raises(SourceFileError, match="outside the workspace"):
        read_workspace_text(ws.root, "/etc/passwd", 1_000_000)
    assert "def inside" in read_workspace_text(ws.root, "inner_link.py", 1_000_000)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifos_are_never_opened_for_reading(tmp_path: Path, embedder) -> None:
    ws = make_ws(tmp_path, embedder, {"ok.py": "def ok():\n    return 1\n", "sub/x.py": "y = 2\n"})
    fifos = [ws.root / "fifo.py", ws.root / "sub" / ".gitignore", ws.root / ".semcodeignore"]
    for fifo in fifos:
        os.mkfifo(fifo)
    done = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            ws.index()
            ws.update_files(["fifo.py"])
            with pytest.raises(SourceFileError, match="not a regular file"):
                read_workspace_text(ws.root, "fifo.py", 1000)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    finished = done.wait(120)
    if not finished:  # unblock a reader stuck in open() so the test process can end
        for fifo in fifos:
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass
    assert finished, "indexing blocked on a FIFO"
    assert not errors, errors
    assert set(ws.store.manifest()) == {"ok.py", "sub/x.py"}


def test_a_repeated_long_line_edited_does_not_wedge_the_index(tmp_path: Path, embedder) -> None:
    ws = make_ws(tmp_path, embedder, {"data.js": "0," * 60000 + "\n", "ok.py": "def ok():\n    return 1\n"})
    ws.index()
    (ws.root / "data.js").write_text("0," * 60000 + "1\n")
    ws.index()
    (ws.root / "ok.py").write_text("def ok():\n    return 2\n")
    ws.index()
    report = ws.check()
    assert report.ok and not report.duplicate_ids
    ids = [r["id"] for r in ws.store.rows("true", columns=["id"], limit=100_000)]
    assert len(ids) == len(set(ids)) > 2


def test_check_reports_duplicate_ids(tmp_path: Path) -> None:
    store = ChunkStore(tmp_path / "idx", dimension=4, fingerprint="m")
    vector = np.ones((1, 4), dtype=np.float32) / 2
    store.replace_files([FileRecord("a.py", 1, 1, "h", 1)], [Chunk("a.py", "python", 0, 0, "x")], vector, ["x"])
    rows = store._chunks.to_arrow()
    store._chunks.add(rows)  # the same id twice: what the old id scheme produced
    store._files.update(where="path = 'a.py'", values={"chunk_count": 2})
    report = store.check()
    assert report.duplicate_ids and not report.ok
    assert store.check(repair=True).repaired and store.check().ok


def test_index_paths_are_bound_to_workspace_and_model(tmp_path: Path) -> None:
    config = EngineConfig(index_dir=str(tmp_path / "shared"))
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    assert config.index_path(one, "model-a") != config.index_path(two, "model-a")  # two folders, one indexDir
    assert config.index_path(one, "model-a") != config.index_path(one, "model-b")
    assert config.index_path(one, "model-a").parent == config.index_path(one)
    assert config.index_path(one, "model-a").is_relative_to(tmp_path / "shared")


def test_a_reader_of_another_model_never_wipes_an_index(tmp_path: Path) -> None:
    path = tmp_path / "idx"
    first = ChunkStore(path, dimension=4, fingerprint="model-a", model_name="a")
    vector = np.ones((1, 4), dtype=np.float32) / 2
    first.replace_files([FileRecord("a.py", 1, 1, "h", 1)], [Chunk("a.py", "python", 0, 0, "x")], vector, ["x"])
    holder = ChunkStore(path, dimension=4, fingerprint="model-a", model_name="a")
    with holder.writer():  # stands for another process writing the index
        other = ChunkStore(path, dimension=8, fingerprint="model-b", model_name="b")
        assert other.count_chunks() == 0 and other.manifest() == {} and other.vector_search(np.ones(8), limit=3) == []
        assert not other.check().ok and other.check().version_note
        with pytest.raises(IndexLockedError), other.writer():
            pass
        assert first.count_chunks() == 1 and holder.count_chunks() == 1
    assert ChunkStore(path, dimension=4, fingerprint="model-a").count_chunks() == 1


def test_the_write_lock_is_portable_and_reentrant(tmp_path: Path) -> None:
    # The store imports without fcntl (as on Windows, where engine.models guards its own use) and locks.
    code = textwrap.dedent(
        f"""
        import sys
        sys.modules["fcntl"] = None
        from pathlib import Path
        import engine.store
        s = engine.store.ChunkStore(Path({str(tmp_path / "nofcntl")!r}), dimension=4, fingerprint="m")
        with s.writer():
            with s.writer():
                print("locked")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    assert result.returncode == 0 and "locked" in result.stdout, result.stderr[-2000:]
    store = ChunkStore(tmp_path / "idx", dimension=4, fingerprint="m")
    with store.writer(), store.writer():  # re-entrant inside one process
        assert not store.is_locked_by_other()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from engine.store import ChunkStore;"
            f"s = ChunkStore(Path({str(tmp_path / 'idx')!r}), dimension=4, fingerprint='m');"
            "cm = s.writer(); cm.__enter__(); print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert store.is_locked_by_other()
        with pytest.raises(IndexLockedError), store.writer():
            pass
    finally:
        holder.kill()
        holder.wait()
    assert not store.is_locked_by_other()
    with store.writer(wait=True):
        pass


SECRET_FILES = {
    "keys/server.py": "KEY = '''\n-----BEGIN RSA PRIVATE KEY-----\nMIIEabc\n-----END RSA PRIVATE KEY-----\n'''\n",
    "keys/openssh.txt": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n",
    "conf/yarn.yml": 'npmAuthToken: "NpmToken.abcdef123456"\n',
    "aws.py": "ACCESS = 'AKIAIOSFODNN7EXAMPLE'\n",
    "gh.js": "const token = 'ghp_" + "a" * 36 + "';\n",
    "slack.py": "SLACK = 'xoxb-123456789012-abcdefghij'\n",
    ".yarnrc.yml": "npmRegistryServer: x\n",
    "kubeconfig.yaml": "apiVersion: v1\n",
    ".kube/config.yaml": "apiVersion: v1\n",
    ".aws/config.toml": "[default]\n",
    ".docker/config.json.md": "not matched: another name\n",
    "deploy_key.txt": "key\n",
    "env/lib/site.py": "def in_a_venv():\n    pass\n",
    "env/pyvenv.cfg": "home = /usr/bin\n",
    "venv311/pkg/mod.py": "def also_in_a_venv():\n    pass\n",
    "venv311/pyvenv.cfg": "home = /usr/bin\n",
}


def test_secrets_are_never_indexed(tmp_path: Path, embedder, caplog: pytest.LogCaptureFixture) -> None:
    ws = make_ws(tmp_path, embedder, {"ok.py": "def ok():\n    return 1\n", **SECRET_FILES})
    with caplog.at_level(logging.INFO, logger="engine"):
        stats = ws.index()
    assert set(ws.store.manifest()) == {"ok.py", ".docker/config.json.md"}
    reasons = dict(stats.skipped)
    assert reasons["keys/server.py"] == "holds a private key block"
    assert reasons["conf/yarn.yml"] == "holds an npm auth token"
    assert reasons["aws.py"] == "holds an AWS access key id"
    assert reasons["gh.js"] == "holds a GitHub token"
    assert reasons["slack.py"] == "holds a Slack token"
    assert reasons["env"] == reasons["venv311"] == "a virtualenv (holds pyvenv.cfg)"
    assert "AKIAIOSFODNN7EXAMPLE" not in caplog.text and "xoxb-1234" not in caplog.text
    ws.update_files(list(SECRET_FILES))
    assert set(ws.store.manifest()) == {"ok.py", ".docker/config.json.md"}
    walked = {f.path for f in walk(ws.root, ws.config)}  # names alone: content is judged when read
    assert walked == {".docker/config.json.md", "ok.py", "aws.py", "gh.js", "slack.py"} | {
        "conf/yarn.yml",
        "keys/openssh.txt",
        "keys/server.py",
    }
