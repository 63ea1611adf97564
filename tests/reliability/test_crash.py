"""kill -9 at random moments and at every commit boundary: the next run always heals the index.

Each case copies a prepared index (or starts from none), runs a real indexing process (the real model,
real LanceDB, small write batches so a small workspace makes many commits), stops it, then runs the
next index in this process and compares with a clean rebuild of the same files.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest
from conftest import SEED, Workers, clean_rebuild, materialize, open_ws, record, recover, snapshot

BATCH = 6  # chunks per write: dozens of commits per run
RANDOM_KILLS_INITIAL = 12
RANDOM_KILLS_REINDEX = 12


class Scene:
    """Two workspaces: ``fresh`` (indexed from nothing) and ``edited`` (version 1 indexed, now version 2)."""

    def __init__(self, base: Path, embedder) -> None:
        self.base = base
        self.embedder = embedder
        self.fresh = base / "fresh"
        materialize(self.fresh, 1)
        self.fresh_ref = clean_rebuild(self.fresh, base / "ref-fresh", embedder)
        self.edited = base / "edited"
        materialize(self.edited, 1)
        self.edited_base = base / "edited-v1-index"
        clean_rebuild(self.edited, self.edited_base, embedder)
        materialize(self.edited, 2)
        self.edited_ref = clean_rebuild(self.edited, base / "ref-edited", embedder)
        assert self.fresh_ref != self.edited_ref
        self.runs = 0

    def index_dir(self, *, prepared: bool) -> Path:
        self.runs += 1
        target = self.base / f"run-{self.runs}"
        if prepared:
            shutil.copytree(self.edited_base, target)
        return target


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory, embedder) -> Scene:
    return Scene(tmp_path_factory.mktemp("crash"), embedder)


def _calibrate(workers: Workers, root: Path, index_dir: Path) -> float:
    run = workers.run(root=str(root), index_dir=str(index_dir), batch=BATCH)
    assert run.outcome == "done", run
    return json.loads(run.messages[-1].split(" ", 1)[1])["seconds"]


@pytest.mark.slow
@pytest.mark.parametrize("phase", ["initial", "reindex"])
def test_kill_9_at_random_points(scene: Scene, workers: Workers, phase: str) -> None:
    prepared = phase == "reindex"
    root = scene.edited if prepared else scene.fresh
    reference = scene.edited_ref if prepared else scene.fresh_ref
    calibration_dir = scene.index_dir(prepared=prepared)
    duration = _calibrate(workers, root, calibration_dir)
    assert recover(root, calibration_dir, scene.embedder)[0] == reference
    rng = random.Random(SEED + prepared)
    kills = RANDOM_KILLS_REINDEX if prepared else RANDOM_KILLS_INITIAL
    killed = 0
    for point in range(kills):
        delay = rng.uniform(0.02, 0.9) * duration
        index_dir = scene.index_dir(prepared=prepared)
        run = workers.run(kill_after=delay, root=str(root), index_dir=str(index_dir), batch=BATCH)
        assert run.outcome in ("killed", "done"), run
        killed += run.outcome == "killed"
        got, how = recover(root, index_dir, scene.embedder)
        record(suite="random-kill", phase=phase, point=point, delay=round(delay, 3), outcome=run.outcome, **how)
        assert got == reference, f"kill at {delay:.3f}s left an index that differs from a clean rebuild"
    record(suite="random-kill-summary", phase=phase, points=kills, killed=killed, run_seconds=round(duration, 2))
    assert killed >= kills // 2  # most delays land inside the run


# (boundary[:N], scene): every commit boundary of engine/faults.py, some at a later hit (mid-run).
FAULTS = [
    ("cache.before", "reindex"),
    ("cache.after", "reindex"),
    ("uses.before", "reindex"),  # new vectors in the cache, the reused ones' use marks not yet logged
    ("uses.fold", "full"),  # index --full logs a use of every vector it takes; the compaction folds them
    ("uses.fold", "child-full"),  # the same inside the maintenance child
    ("chunks.before:2", "reindex"),
    ("chunks.after", "reindex"),
    ("chunks.after:2", "reindex"),  # the last of its chunk commits (a third before the shrinking-file scene)
    ("manifest.before", "reindex"),
    ("manifest.before:2", "reindex"),
    ("manifest.after:2", "reindex"),
    ("touch.before", "reindex"),
    ("touch.after", "reindex"),
    ("optimize.before", "reindex"),
    ("optimize.mid:2", "reindex"),
    ("optimize.after", "reindex"),
    ("chunks.after:2", "initial"),
    ("fts.before", "initial"),
    ("fts.after", "initial"),
    ("remove.before", "full"),
    ("remove.after", "full"),
    ("rebuild.mid", "stale"),
    ("rebuild.carried", "rechunk"),
    ("rebuild.mid", "rechunk"),
    ("repair.mid", "repair"),
    ("evict.before", "evict"),
    ("evict.mid", "evict"),
    ("evict.after:2", "evict"),
    # The save path (update_files): rows upserted through the id index, removed files deleted after.
    ("chunks.before", "save"),
    ("chunks.mid", "save"),
    ("chunks.vanished", "save"),  # a file that shrank: its surplus rows blank, not yet deleted
    ("chunks.vanished", "reindex"),
    ("chunks.after:2", "save"),
    ("manifest.mid", "save"),
    ("manifest.after", "save"),
    ("scalar.before", "initial"),
    ("scalar.after:2", "initial"),
    # Index builds and compaction in the maintenance child (engine/maintenance.py): it dies, and so does its parent.
    ("optimize.after", "child-initial"),
    ("optimize.before", "child"),
    ("optimize.mid:2", "child"),
    ("optimize.after", "child"),
    # index --full over a large index: its full-text and vector indexes built anew in children, then the compaction.
    ("fts.after", "child-full"),
    ("optimize.before", "child-full"),
    ("optimize.after", "child-full"),  # the chunk table compacted, the small tables not yet
]


@pytest.mark.slow
@pytest.mark.parametrize(("fault", "where"), FAULTS, ids=[f"{f}-{w}" for f, w in FAULTS])
def test_crash_at_every_commit_boundary(scene: Scene, workers: Workers, fault: str, where: str) -> None:
    initial = where in ("initial", "child-initial")
    root = scene.fresh if initial else scene.edited
    reference = scene.fresh_ref if initial else scene.edited_ref
    index_dir = scene.index_dir(prepared=not initial)
    kwargs = {"root": str(root), "index_dir": str(index_dir), "batch": BATCH, "fault": fault}
    if where in ("full", "child-full"):
        kwargs["full"] = True
    if where == "save":  # version 2's edits, additions and deletions as saves of every path
        kwargs["update"] = True
    if where.startswith("child"):
        kwargs["child_maintenance"] = True
    if where == "evict":  # re-index with an embedding-cache bound far below what the index holds
        kwargs["cache_vectors"] = 3
    if where == "stale":  # an index of an older format: the writer moves it aside and rebuilds
        (meta,) = index_dir.glob("*/*/meta.json")
        meta.write_text(json.dumps(json.loads(meta.read_text()) | {"schema": 1}))
    if where == "rechunk":  # an index of an older chunker: rebuilt, its embedding cache carried over
        (meta,) = index_dir.glob("*/*/meta.json")
        meta.write_text(json.dumps(json.loads(meta.read_text()) | {"chunker": -1}))
    if where == "repair":  # damage to repair: a manifest entry whose rows are gone
        ws = open_ws(root, index_dir, scene.embedder)
        victim = sorted(ws.store.manifest())[0]
        ws.store._chunks.delete(f"path = '{victim}'")
        assert not ws.check().ok
        kwargs["repair"] = True
    run = workers.run(**kwargs)
    assert run.outcome == "fault", f"{fault} was never reached: {run}"
    if where in ("stale", "rechunk"):
        assert not open_ws(root, index_dir, scene.embedder).check().ok  # a reader sees it is not usable yet
    got, how = recover(root, index_dir, scene.embedder)
    record(suite="fault", fault=fault, scene=where, outcome=run.outcome, **how)
    assert got == reference
    assert snapshot(open_ws(root, index_dir, scene.embedder)) == reference  # and it stays so
