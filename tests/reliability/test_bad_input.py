"""A corpus of hostile files: no crash, no hang, nothing outside the workspace read, no secret indexed.

The index of the corpus must equal a clean rebuild of the same files, before and after an edit of
the repeated long line that used to wedge every later run.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import pytest
from conftest import record, snapshot

from engine.config import EngineConfig
from engine.files import secret_reason
from engine.workspace import Workspace

MAX_SIZE = 200_000
HANG_TIMEOUT = 240.0
OUTSIDE_MARKER = "outside_marker_quokka"

SECRETS = {
    "keys/server.py": "KEY = '''\n-----BEGIN RSA PRIVATE KEY-----\nMIIEabc\n-----END RSA PRIVATE KEY-----\n'''\n",
    "keys/ec.txt": "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----\n",
    "conf/registry.yml": 'npmAuthToken: "NpmToken.abcdef123456"\n',
    "cloud/aws.py": "ACCESS_KEY_ID = 'AKIAIOSFODNN7EXAMPLE'\n",
    "ci/gh.js": "const token = 'ghp_" + "b" * 36 + "';\nconst pat = 'github_pat_" + "c" * 30 + "';\n",
    "chat/slack.py": "HOOK = 'xoxp-123456789012-abcdefghij'\n",
    ".yarnrc.yml": "npmRegistryServer: https://registry.example\n",
    "kubeconfig.yaml": "apiVersion: v1\nkind: Config\n",
    "ops/prod.kubeconfig.yml": "apiVersion: v1\n",
    ".kube/config.yaml": "apiVersion: v1\n",
    ".aws/credentials.toml": "[default]\n",
    "deploy_key.txt": "ssh material\n",
    "env/lib/site.py": "def in_a_venv():\n    pass\n",
    "env/pyvenv.cfg": "home = /usr/bin\n",
    "venv311/pkg/mod.py": "def also_in_a_venv():\n    pass\n",
    "venv311/pyvenv.cfg": "home = /usr/bin\n",
}
SECRET_NAMES = set(SECRETS) - {"env/pyvenv.cfg", "venv311/pyvenv.cfg"}


def build_corpus(tmp_path: Path) -> tuple[Path, list[str], list[Path]]:
    """The workspace, notes on cases not built here (with why), and FIFOs to unblock on a hang."""
    root = tmp_path / "corpus"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    notes: list[str] = []
    fifos: list[Path] = []
    (outside / "secret.py").write_text(f"def {OUTSIDE_MARKER}():\n    return 1\n")
    (outside / "sub").mkdir()
    (outside / "sub" / "deep.py").write_text(f"def {OUTSIDE_MARKER}_dir():\n    return 2\n")
    files = {
        "good/alpha.py": "def alpha_ok():\n    return 'fine'\n",
        "good/beta.js": "function betaOk() { return 1; }\n",
        "good/gamma.md": "# Gamma\n\nA perfectly normal document.\n",
        "empty.py": "",
        "long_line.js": "const words = [" + ",".join(f"'w{i}x{i * 7 % 13}'" for i in range(600)) + "];\n",
        "repeated.js": "0," * 60000 + "\n",
        "nul_late.txt": "a line\n" * 1200 + "after the first 8 KiB \0 a NUL byte\n",
        **SECRETS,
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / "binary.py").write_bytes(b"\x7fELF\0\0\0" + bytes(range(256)) * 8)
    (root / "invalid_utf8.py").write_bytes(b"def bad():\n    return '\xff\xfe\xfd'\n")
    with open(os.path.join(os.fsencode(root), b"bad\xffname.py"), "wb") as handle:
        handle.write(b"def bad_name():\n    return 0\n")
    (root / "huge.py").write_text("x = 1\n" * (MAX_SIZE // 6 + 10))
    deep = root
    for depth in range(40):
        deep = deep / f"d{depth}"
    deep.mkdir(parents=True)
    (deep / "bottom.py").write_text("def at_the_bottom():\n    return 40\n")
    (root / "loop.py").symlink_to(root / "loop.py")
    (root / "loopdir").symlink_to(root, target_is_directory=True)
    (root / "out_file.py").symlink_to(outside / "secret.py")
    (root / "out_dir").symlink_to(outside / "sub", target_is_directory=True)
    (root / "passwd.txt").symlink_to("/etc/passwd")
    if hasattr(os, "mkfifo"):
        for fifo in (root / "fifo.py", root / "good" / ".gitignore", outside / "pipe.py"):
            os.mkfifo(fifo)
            fifos.append(fifo)
        (root / "out_fifo.py").symlink_to(outside / "pipe.py")  # opened by mistake, it would block
    else:  # pragma: no cover
        notes.append("fifo: no mkfifo on this platform")
    sock_path = root / "sock.py"
    if len(os.fsencode(sock_path)) < 100 and hasattr(socket, "AF_UNIX"):
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(sock_path))
        server.close()
    else:  # pragma: no cover
        notes.append("socket: path too long for AF_UNIX here")
    perm = root / "no_permission.py"
    perm.write_text("def unreadable():\n    return 1\n")
    perm.chmod(0)
    if os.geteuid() == 0 if hasattr(os, "geteuid") else False:
        notes.append("permission-denied: running as root, which reads a mode-000 file anyway")
    late = root / "zz_late"
    late.mkdir()
    (late / "deleted_mid_index.py").write_text("def deleted_while_indexing():\n    return 1\n")
    return root, notes, fifos


def index_with_timeout(ws: Workspace, fifos: list[Path], **kwargs) -> object:
    result: dict[str, object] = {}

    def run() -> None:
        try:
            result["stats"] = ws.index(**kwargs)
        except BaseException as exc:  # noqa: BLE001 - a crash is the failure being tested
            result["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(HANG_TIMEOUT)
    if thread.is_alive():
        for fifo in fifos:  # unblock a reader stuck in open() so the session can end
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass
        pytest.fail(f"indexing hung for {HANG_TIMEOUT}s")
    if "error" in result:
        raise AssertionError(f"indexing crashed: {result['error']!r}") from result["error"]  # type: ignore[arg-type]
    return result["stats"]


def assert_clean(ws: Workspace, tmp_path: Path, name: str) -> None:
    report = ws.check(ws.root)
    assert report.ok, report.to_dict()
    rows = ws.store.rows("true", columns=["path", "content"], limit=10**6)
    assert not [r["path"] for r in rows if OUTSIDE_MARKER in r["content"] or "root:x:0:0" in r["content"]]
    assert not [r["path"] for r in rows if secret_reason(r["content"])]
    assert not SECRET_NAMES & set(ws.store.manifest())
    rebuilt = Workspace(
        ws.root, EngineConfig(index_dir=str(tmp_path / name), max_file_size=MAX_SIZE), embedder=ws.embedder
    )
    rebuilt.index()
    assert snapshot(rebuilt) == snapshot(ws)


@pytest.mark.slow
def test_bad_input_corpus(tmp_path: Path, embedder) -> None:
    root, notes, fifos = build_corpus(tmp_path)
    ws = Workspace(root, EngineConfig(index_dir=str(tmp_path / "index"), max_file_size=MAX_SIZE), embedder=embedder)
    victim = root / "zz_late" / "deleted_mid_index.py"

    def progress(p) -> None:
        if p.done_files >= 10 and victim.exists():
            victim.unlink()

    stats = index_with_timeout(ws, fifos, progress=progress)
    assert not victim.exists()
    manifest = set(ws.store.manifest())
    assert {"good/alpha.py", "good/beta.js", "good/gamma.md", "empty.py", "long_line.js", "repeated.js"} <= manifest
    assert "d0/" + "/".join(f"d{i}" for i in range(1, 40)) + "/bottom.py" in manifest
    for never in ("binary.py", "invalid_utf8.py", "huge.py", "loop.py", "out_file.py", "passwd.txt", "fifo.py"):
        assert never not in manifest
    assert not [p for p in manifest if p.startswith(("out_dir/", "loopdir/", "zz_late/"))]
    reasons = {p: r for p, r in stats.skipped}  # type: ignore[attr-defined]
    assert reasons["bad\\xffname.py"] == "file name is not valid UTF-8"
    assert reasons["binary.py"] == "binary file" and reasons["invalid_utf8.py"].startswith("not valid UTF-8")
    assert reasons["out_file.py"].startswith("symlink to a path outside")
    assert_clean(ws, tmp_path, "rebuild-1")
    # The long repeated line, edited: every later run still works (it used to fail forever).
    (root / "repeated.js").write_text("0," * 60000 + "1\n")
    index_with_timeout(ws, fifos)
    (root / "good" / "alpha.py").write_text("def alpha_ok():\n    return 'edited'\n")
    index_with_timeout(ws, fifos)
    assert_clean(ws, tmp_path, "rebuild-2")
    record(suite="bad-input", cases=len(list(root.rglob("*"))), skipped=len(stats.skipped), notes=notes)  # type: ignore[attr-defined]
