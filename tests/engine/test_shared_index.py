"""Shared index on a real S3-compatible server (moto) on loopback, with the real model and LanceDB."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest
from remote_servers import MotoServer, make_corpus, narrow_model, restore_env, set_env

from engine.config import EngineConfig
from engine.errors import SharedIndexError, SharedIndexMismatchError, SharedIndexNotFoundError
from engine.shared_index import SharedLocation, SharedWorkspace, Snapshot, open_workspace, publish
from engine.workspace import Workspace

pytestmark = pytest.mark.slow
BUCKET = "semcode-team"


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory):
    server = MotoServer(tmp_path_factory.mktemp("moto")).start()
    old = set_env(server.environment())
    server.create_bucket(BUCKET)
    yield server
    restore_env(old)
    server.stop()


@pytest.fixture(scope="module")
def published(s3: MotoServer, embedder, tmp_path_factory: pytest.TempPathFactory):
    """A 100-file workspace indexed in-process and published to s3://semcode-team/main."""
    base = tmp_path_factory.mktemp("published")
    root = base / "ws"
    paths = make_corpus(root, 100)
    ws = Workspace(root, EngineConfig(index_dir=str(base / "index")), embedder=embedder)
    stats = ws.index()
    result = publish(ws.store, f"s3://{BUCKET}/main", root=ws.root)
    return {"root": root, "paths": paths, "stats": stats, "result": result, "uri": f"s3://{BUCKET}/main"}


def _clone(published: dict, tmp_path: Path) -> Path:
    clone = tmp_path / "clone"
    shutil.copytree(published["root"], clone)  # a fresh clone: new mtimes, same contents
    return clone


def test_fresh_clone_embeds_only_its_changes(published: dict, embedder, tmp_path: Path) -> None:
    clone = _clone(published, tmp_path)
    paths = published["paths"]
    changed, deleted = paths[8], paths[19]  # 1% of the files changed, one more deleted, one added
    text = (clone / changed).read_text().replace("def validate_email_address_8", "def check_mailbox_syntax_8")
    (clone / changed).write_text(text + "\n\ndef quarantine_spam_message(message):\n    return message.flag()\n")
    (clone / deleted).unlink()
    (clone / "pkg9").mkdir()
    (clone / "pkg9" / "launcher.py").write_text("def launch_rocket_to_mars(fuel):\n    return fuel * 2\n")
    config = EngineConfig(index_dir=str(tmp_path / "index"), shared_index=published["uri"])
    ws = open_workspace(clone, config, embedder=embedder)
    assert isinstance(ws, SharedWorkspace)
    stats = ws.index()
    assert stats.files_seen == 100 and stats.files_indexed == 2 and stats.files_unchanged == 98
    # Only new chunks are embedded: the changed file's untouched class comes from the snapshot's vectors.
    assert 2 <= stats.chunks_embedded <= 4
    assert stats.chunks_embedded < published["stats"].chunks_embedded / 20

    hit = ws.search("launch a rocket to mars", limit=1)[0]
    assert hit.path == "pkg9/launcher.py"
    hits = ws.search("quarantine spam message", limit=3)
    assert hits[0].path == changed and hits[0].symbol == "quarantine_spam_message"
    everywhere = ws.search("validate_email_address_8", limit=20) + ws.symbols("validate_email_address_8")
    assert all(h.symbol != "validate_email_address_8" for h in everywhere)  # its old row is hidden
    assert all(h.path != deleted for h in ws.search("schedule a cron job", limit=50))
    unchanged = ws.search("resize a thumbnail image", limit=5)
    assert unchanged and all(h.path in paths for h in unchanged)  # served by the snapshot
    status = ws.status()
    assert status["sharedSnapshot"] == published["result"].info.id and status["overlayFiles"] == 2
    assert status["files"] == 100

    # Another process (a new workspace object) searches with the saved comparison, without indexing.
    again = SharedWorkspace(clone, config, embedder=embedder)
    assert again.has_state
    assert again.search("launch a rocket to mars", limit=1)[0].path == "pkg9/launcher.py"
    # Reverting the file to the snapshot's content drops it from the overlay again.
    (clone / changed).write_text((published["root"] / changed).read_text())
    stats = again.update_files([changed])
    assert again.store.count_files() == 1 and stats.chunks_embedded == 0
    assert any(h.symbol == "validate_email_address_8" for h in again.search("validate_email_address_8", limit=5))


def test_an_overlay_save_takes_what_its_debounce_prepared(published: dict, embedder, tmp_path: Path) -> None:
    """A shared workspace's save is prepared during its debounce like a local folder's (``prepare_update``),
    and its re-index takes that preparation instead of chunking the file again."""
    clone = _clone(published, tmp_path)
    config = EngineConfig(index_dir=str(tmp_path / "index"), shared_index=published["uri"])
    ws = open_workspace(clone, config, embedder=embedder)
    assert isinstance(ws, SharedWorkspace)
    ws.index()
    changed = published["paths"][3]
    (clone / changed).write_text((clone / changed).read_text() + "\n\ndef zq_overlay_saved():\n    return 7\n")
    ws.prepare_update([changed])
    ws.save_ahead.wait([changed])
    assert changed in ws.save_ahead._kept  # prepared
    stats = ws.update_files([changed])
    assert changed not in ws.save_ahead._kept  # taken by the re-index, not left behind
    assert stats.files_indexed == 1 and stats.chunks_embedded == 0  # embedded ahead
    assert ws.search("zq_overlay_saved", limit=3)[0].symbol == "zq_overlay_saved"


def test_snapshot_of_another_model_is_refused(published: dict, tmp_path: Path) -> None:
    from engine.models import load_embedder

    other = load_embedder(EngineConfig(model_path=str(narrow_model(tmp_path / "narrow.gguf")), threads=1))
    clone = _clone(published, tmp_path)
    config = EngineConfig(index_dir=str(tmp_path / "index"), shared_index=published["uri"])
    ws = SharedWorkspace(clone, config, embedder=other)
    with pytest.raises(SharedIndexMismatchError) as info:
        ws.index()
    message = str(info.value)
    assert "all-MiniLM-L6-v2" in message and "dimension 384" in message and "dimension 192" in message
    assert "vectors of two models cannot be compared" in message
    assert not (tmp_path / "index").exists()  # nothing was written for a snapshot it cannot use
    other.close()


def test_nothing_published_is_a_clear_error(s3: MotoServer, embedder, tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    config = EngineConfig(index_dir=str(tmp_path / "index"), shared_index=f"s3://{BUCKET}/never-published")
    with pytest.raises(SharedIndexNotFoundError, match="--publish"):
        SharedWorkspace(tmp_path / "ws", config, embedder=embedder).index()


def test_concurrent_publish_and_read_never_shows_half_a_snapshot(s3: MotoServer, embedder, tmp_path: Path) -> None:
    root = tmp_path / "ws"
    make_corpus(root, 20)
    ws = Workspace(root, EngineConfig(index_dir=str(tmp_path / "index")), embedder=embedder)
    uri = f"s3://{BUCKET}/concurrent"
    ws.index()
    first = publish(ws.store, uri, root=root, keep=2)
    location = SharedLocation(uri)
    stop = threading.Event()
    seen: dict[str, int] = {}
    problems: list[str] = []
    gone = [0]

    def reader() -> None:
        while not stop.is_set():
            info = location.latest()
            try:
                snapshot = Snapshot(location, info)
                files, chunks = len(snapshot.manifest), snapshot.count_chunks()
            except SharedIndexError:
                gone[0] += 1  # removed by retention after we read the pointer: reopen, never half-read
                continue
            if (files, chunks) != (info.files, info.chunks):
                problems.append(f"{info.id}: {files} files, {chunks} chunks; pointer: {info.files}, {info.chunks}")
            seen[info.id] = files

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        for n in range(3):
            (root / f"extra_{n}.py").write_text(f"def extra_function_{n}(x):\n    return x + {n}\n")
            ws.index()
            publish(ws.store, uri, root=root, keep=2)
            time.sleep(0.3)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert not problems
    assert len(seen) >= 2 and set(seen.values()) <= {20, 21, 22, 23}
    assert location.latest().files == 23
    ids = location.snapshot_ids()
    assert len(ids) == 2 and first.info.id not in ids  # retention: the newest two are kept
    assert ids[-1] == location.latest().id


def test_reindex_follows_a_newer_snapshot(s3: MotoServer, embedder, tmp_path: Path) -> None:
    root = tmp_path / "ws"
    make_corpus(root, 10)
    publisher = Workspace(root, EngineConfig(index_dir=str(tmp_path / "index")), embedder=embedder)
    publisher.index()
    uri = f"s3://{BUCKET}/follow"
    publish(publisher.store, uri, root=root)
    clone = tmp_path / "clone"
    shutil.copytree(root, clone)
    reader = SharedWorkspace(
        clone, EngineConfig(index_dir=str(tmp_path / "clone-index"), shared_index=uri), embedder=embedder
    )
    assert reader.index().chunks_embedded == 0
    # The team merges a new module; CI publishes; the clone pulls it: served by the new snapshot.
    for folder in (root, clone):
        (folder / "billing.py").write_text("def compute_vat_for_invoice(total):\n    return total * 0.2\n")
    publisher.index()
    second = publish(publisher.store, uri, root=root)
    stats = reader.index()
    assert reader.snapshot.info.id == second.info.id
    assert stats.chunks_embedded == 0 and reader.store.count_files() == 0
    # billing.py exists only in the new snapshot: finding it proves the clone follows it.
    assert "billing.py" in [h.path for h in reader.search("compute VAT for an invoice total", limit=3)]


def test_snapshot_is_copied_once_and_searchable_offline(
    embedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = MotoServer(tmp_path).start()
    try:
        for key, value in server.environment().items():
            monkeypatch.setenv(key, value)
        server.create_bucket("offline-bucket")
        root = tmp_path / "ws"
        make_corpus(root, 10)
        publisher = Workspace(root, EngineConfig(index_dir=str(tmp_path / "index")), embedder=embedder)
        publisher.index()
        published = publish(publisher.store, "s3://offline-bucket/repo", root=root)
        config = EngineConfig(index_dir=str(tmp_path / "clone-index"), shared_index="s3://offline-bucket/repo")
        reader = SharedWorkspace(root, config, embedder=embedder)
        reader.index()
        copies = list((reader.mirror_root).glob(f"*/snapshots/{published.info.id}/snapshot.json"))
        assert len(copies) == 1
    finally:
        server.stop()
    offline = SharedWorkspace(root, config, embedder=embedder)  # a new process, storage unreachable
    hit = offline.search("compress a log archive", limit=1)[0]
    assert "compress_log_archive" in hit.path
    assert offline.snapshot.info.id == published.info.id
    assert offline.index().files_indexed == 0  # the newer-snapshot check fails quietly offline
