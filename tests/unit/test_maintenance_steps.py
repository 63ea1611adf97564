"""The order and fallbacks of a large index's maintenance steps (the store's and the CLI hand-off's)."""

from __future__ import annotations

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
