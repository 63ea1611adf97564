"""A branch switch touching ~1,000 files: how long the index update takes and what it embeds.

    .venv/bin/python bench/bench_branch_switch.py --repo GIT_DIR --a REV_A --b REV_B [--workdir DIR]
        [--legs 2] [--profile FILE]

A clone of ``--repo`` (a bare mirror is fine) is checked out at A and indexed from nothing (both
phases, the real default model): that is the setup, timed but not the figure. Then it switches to B,
back to A, and so on (``--legs``), and after every ``git checkout`` indexes as a fresh process would
(a new ``Workspace``: nothing in memory, only what the index on disk holds):

  phase 1  walk, manifest, chunk the changed files, write their rows (cached vectors where known,
           placeholders otherwise) and the full-text index: the update every search sees at once;
  phase 2  the model embeds the placeholder rows (only texts never embedded before).

Per leg it prints files changed, both phase times, chunks embedded vs served from the cache, and the
load average. ``--workdir`` keeps the clone and the set-up index between runs (the setup embeds the
whole of A once); ``--profile`` writes a cProfile of the legs' phase 1 and prints its top entries.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import platform
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.config import EngineConfig  # noqa: E402
from engine.workspace import Workspace, shared_embedder  # noqa: E402


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def leg(root: Path, config: EngineConfig, embedder: Any, profile: cProfile.Profile | None) -> dict[str, Any]:
    ws = Workspace(root, config, embedder=embedder)
    ws.open()
    started = time.perf_counter()
    if profile is not None:
        profile.enable()
    stats = ws.index(embed=False)
    if profile is not None:
        profile.disable()
    phase1 = time.perf_counter() - started
    cached_phase1 = stats.chunks_cached
    started = time.perf_counter()
    ws.embed_pending(stats=stats)
    phase2 = time.perf_counter() - started
    return {
        "phase1_s": round(phase1, 2),
        "phase2_s": round(phase2, 2),
        "total_s": round(phase1 + phase2, 2),
        "files_indexed": stats.files_indexed,
        "files_deleted": stats.files_deleted,
        "files_unchanged": stats.files_unchanged,
        "chunks_total": stats.chunks_total,
        "chunks_embedded": stats.chunks_embedded,
        "chunks_cached": stats.chunks_cached,
        "chunks_cached_phase1": cached_phase1,
        "cache_vectors": ws.store.count_cached(),
        "check_ok": ws.check().ok,
        "load": round(os.getloadavg()[0], 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", required=True, help="a git repository or bare mirror")
    parser.add_argument("--a", required=True, help="revision A (indexed first)")
    parser.add_argument("--b", required=True, help="revision B")
    parser.add_argument("--workdir", help="keep the clone and the index here (default: a temporary directory)")
    parser.add_argument("--legs", type=int, default=2, help="switches after the setup: A->B, B->A, ...")
    parser.add_argument("--profile", help="write a cProfile of the legs' phase 1 here")
    parser.add_argument("--json-out", help="append the result as one JSON line")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="semcode-bench-switch-") as tmp:
        work = Path(args.workdir) if args.workdir else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        root, index_dir = work / "repo", work / "index"
        if not root.exists():
            git(work, "clone", "-q", "--no-checkout", str(Path(args.repo).resolve()), str(root))
        config = EngineConfig(index_dir=str(index_dir))
        embedder = shared_embedder(config)
        changed = len(git(root, "diff", "--name-only", args.a, args.b).splitlines())
        git(root, "checkout", "-q", "--force", args.a)
        git(root, "clean", "-qfdx")
        print(
            f"machine: {os.cpu_count()} logical cores, {platform.processor() or platform.machine()}; "
            f"files differing between {args.a} and {args.b}: {changed}",
            flush=True,
        )
        setup = leg(root, config, embedder, None)
        print(f"setup (index {args.a}): {json.dumps(setup)}", flush=True)
        profile = cProfile.Profile() if args.profile else None
        legs = []
        for n in range(args.legs):
            target = args.b if n % 2 == 0 else args.a
            git(root, "checkout", "-q", target)
            result = leg(root, config, embedder, profile) | {"to": target}
            legs.append(result)
            print(f"leg {n + 1} (-> {target}): {json.dumps(result)}", flush=True)
        if profile is not None:
            profile.dump_stats(args.profile)
            pstats.Stats(args.profile).sort_stats("cumulative").print_stats(35)
        record = {"repo": args.repo, "a": args.a, "b": args.b, "changed_files": changed, "setup": setup, "legs": legs}
        if args.json_out:
            with open(args.json_out, "a") as out:
                out.write(json.dumps(record) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
