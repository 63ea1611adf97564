"""Attach the tail of the semcode server log to a failing Serena test (no solidlsp import here)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> object:
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    logs: list[Path] = getattr(getattr(item, "module", None), "SERVER_LOGS", [])
    if logs and logs[-1].exists():
        lines = logs[-1].read_text(errors="replace").splitlines()
        report.sections.append((f"semcode server log ({logs[-1]}), last 40 lines", "\n".join(lines[-40:])))
