"""The walk's combined-regex gitignore matcher decides exactly as pathspec does, pattern by pattern."""

from __future__ import annotations

import itertools
from pathlib import Path

import pathspec
import pytest

from engine.config import DEFAULT_EXCLUDES, EngineConfig
from engine.files import _OneRegex, _spec, walk

PATTERN_SETS = [
    list(DEFAULT_EXCLUDES),
    ["/docs/", "a/**/b", "*.py[cod]", "\\#x", "foo/*", "**/bar", "x?y", "deep/dir/", "  ", "# comment"],
    ["build", "/rooted.txt", "*.min.*", "sub/*.js", "**/gen/**", "logs/"],
    ["*.js", "!keep.js"],  # a negation: pathspec's own matching is kept
]
NAMES = ["build", "docs", "a", "b", "q", "foo", "bar", "gen", "logs", "deep", "dir", "sub", "x.pyc", "x.py"]
NAMES += ["rooted.txt", "keep.js", "app.min.js", "y.js", "#x", "xzy", ".git", "node_modules", ".env", "id_rsa.pub"]
NAMES += ["credentials.json", "pkg.egg-info", "config.json", ".docker", "v_pb2.py", "README.md"]


def paths() -> list[str]:
    out = []
    for depth in (1, 2, 3):
        for parts in itertools.product(NAMES[:14] if depth > 1 else NAMES, repeat=depth):
            out.append("/".join(parts))
    out += [p + "/" for p in out[:4000]]
    out += [f"x/{name}" for name in NAMES] + [f"x/.docker/{name}" for name in NAMES] + ["./docs/x", "/docs/y"]
    return out


@pytest.mark.parametrize("lines", PATTERN_SETS, ids=["defaults", "globs", "anchored", "negation"])
def test_same_decision_as_pathspec_for_every_path(lines: list[str]) -> None:
    reference = pathspec.GitIgnoreSpec.from_lines(lines)
    fast = _spec(lines)
    assert isinstance(fast, _OneRegex) == (not any(line.startswith("!") for line in lines))
    wrong = [p for p in paths() if fast.match_file(p) != reference.match_file(p)]
    assert wrong == []
    assert any(reference.match_file(p) for p in paths()) and not all(reference.match_file(p) for p in paths())


def test_walk_honours_nested_gitignore_and_defaults(tmp_path: Path) -> None:
    for rel in ["src/app.py", "src/gen/out.py", "src/keep.py", "build/x.py", "lib/app.min.js", "lib/ok.js", ".env"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x = 1\n")
    (tmp_path / "src/.gitignore").write_text("gen/\n*.py\n!keep.py\n")
    (tmp_path / ".gitignore").write_text("# nothing but a comment\n")
    found = sorted(f.path for f in walk(tmp_path, EngineConfig()))
    assert found == ["lib/ok.js", "src/keep.py"]
