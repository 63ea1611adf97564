"""The order and fallbacks of a large index's maintenance steps (the store's and the CLI hand-off's)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest

from engine import maintenance
from engine.maintenance_steps import Step, run_steps

STEPS = [
    Step("fts", rebuild=True),
    Step("ivf", {"partition_rows": 4096}, rebuild=True),
    Step("optimize", {"tables": ["chunks"]}),
    Step("optimize", {"tables": ["files", "embeddings"]}),
]


def _run(failing: set[str]) -> tuple[list[str], list[str]]:
    in_child: list[str] = []
    here: list[str] = []

    def child(step: Step) -> bool:
        name = step.operation + "".join(step.params.get("tables", []))
        in_child.append(name)
        return name not in failing

    run_steps(STEPS, child, lambda step: here.append(step.operation + "".join(step.params["tables"])))
    return in_child, here


def test_every_step_in_a_child_in_order() -> None:
    assert _run(set()) == (["fts", "ivf", "optimizechunks", "optimizefilesembeddings"], [])


def test_a_failed_rebuild_skips_the_other_rebuilds_and_the_compaction_folds_the_rows_in() -> None:
    assert _run({"fts"}) == (["fts", "optimizechunks", "optimizefilesembeddings"], [])


def test_a_compaction_whose_child_failed_runs_here() -> None:
    assert _run({"optimizechunks"}) == (
        ["fts", "ivf", "optimizechunks", "optimizefilesembeddings"],
        ["optimizechunks"],
    )


class _Child:
    """subprocess.Popen's stand-in: records the environment a maintenance child would get, exits 0."""

    envs: ClassVar[list[dict[str, str]]] = []

    def __init__(self, command: list[str], *, env: dict[str, str], **_kwargs: object) -> None:
        self.envs.append(env)

    def wait(self, timeout: float | None = None) -> int:
        return 0


def test_the_child_bounds_lances_shuffle_buffer_unless_the_user_set_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # Lance's IVF shuffle held 128 MiB of vectors before it spilled (its default): the child gets 32 MiB.
    monkeypatch.setattr(maintenance.subprocess, "Popen", _Child)
    monkeypatch.delenv("LANCE_SHUFFLE_BATCH_BYTES", raising=False)
    assert maintenance.in_child(Path("lance"), "ivf", {"partition_rows": 4096})
    assert _Child.envs[-1]["LANCE_SHUFFLE_BATCH_BYTES"] == str(32 << 20)
    assert _Child.envs[-1]["LANCE_IO_THREADS"] == "2"
    monkeypatch.setenv("LANCE_SHUFFLE_BATCH_BYTES", str(8 << 20))  # the user's own setting wins
    assert maintenance.in_child(Path("lance"), "optimize", {"tables": ["chunks"]})
    assert _Child.envs[-1]["LANCE_SHUFFLE_BATCH_BYTES"] == str(8 << 20)
