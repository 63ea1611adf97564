"""A small git repository with two branches, for the branch-switch tests (engine and LSP)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

FIXTURE = Path(__file__).parent / "fixtures" / "workspace"

FEATURE_A = '''"""Feature A: invoices."""


def total_with_tax(amount: float, rate: float) -> float:
    """The amount with its sales tax added."""
    return round(amount * (1 + rate), 2)


def invoice_number(year: int, serial: int) -> str:
    """An invoice number like 2026-000042."""
    return f"{year}-{serial:06d}"


def overdue_days(due: int, today: int) -> int:
    """Days an invoice is past its due date (0 when not due yet)."""
    return max(0, today - due)
'''

FEATURE_B = '''"""Feature B: shipping."""


def parcel_volume(width: float, height: float, depth: float) -> float:
    """Volume of a parcel in cubic centimetres."""
    return width * height * depth


def shipping_zone(country: str) -> str:
    """The shipping zone of a two-letter country code."""
    return "domestic" if country == "DE" else "international"


def tracking_url(carrier: str, code: str) -> str:
    """Where a parcel can be tracked."""
    return f"https://{carrier}.example/track/{code}"
'''


def git(repo: Path, *args: str) -> str:
    # GIT_DIR and the like (set by `git bisect run`, hooks) would point these commands at another repository
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env |= {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    command = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false", *args]
    return subprocess.run(command, cwd=repo, env=env, check=True, capture_output=True, text=True).stdout


def make_repo(root: Path, *, extra_b_files: int = 0) -> Path:
    """A git repository at ``root``, on branch ``a``; ``b`` shares its base and differs in several files.

    B adds shipping.py (and ``extra_b_files`` small modules under ``pkg/``), changes strings.js and
    deletes matrix.go; A adds invoices.py and changes checksum.py.
    """
    shutil.copytree(FIXTURE, root)
    git(root, "init", "-q", "-b", "a")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    git(root, "branch", "b")
    (root / "python" / "invoices.py").write_text(FEATURE_A)
    checksum = root / "python" / "checksum.py"
    checksum.write_text(
        checksum.read_text() + '\n\ndef is_hex_digest(text):\n    return all(c in "0123456789abcdef" for c in text)\n'
    )
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "feature a")
    git(root, "checkout", "-q", "b")
    (root / "python" / "shipping.py").write_text(FEATURE_B)
    strings = root / "web" / "strings.js"
    strings.write_text(strings.read_text() + "\nfunction shout(text) {\n  return text.toUpperCase() + '!';\n}\n")
    for i in range(extra_b_files):
        module = root / "pkg" / f"unit_{i:03d}.py"
        module.parent.mkdir(exist_ok=True)
        module.write_text(
            f'def convert_unit_{i}(value):\n    """Scale a reading by {i + 2}."""\n    return value * {i + 2}\n'
        )
    git(root, "rm", "-q", "go/matrix.go")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "feature b")
    git(root, "checkout", "-q", "a")
    return root


def checkout(repo: Path, branch: str) -> list[str]:
    """Switch branches; returns the paths that differ between the two (what a file watcher reports)."""
    before = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "checkout", "-q", branch)
    return git(repo, "diff", "--name-only", before, "HEAD").splitlines()
