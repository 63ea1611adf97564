"""pyproject.toml declares what the code imports, and the tested environment satisfies those bounds.

A plain `pip install semcode` gets only the declared dependencies: a module imported by semcode but
installed here only as someone else's dependency (pydantic through mcp, filelock through lancedb's
tools) would break on the next resolver change. And a bound the tests do not run against (mcp>=1.10
while the code needs 2.x) is a bound nobody checked.
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import re
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

tomllib = pytest.importorskip("tomllib", reason="Python 3.11+ (tomllib)")

REPO = Path(__file__).resolve().parents[2]
OWN = {"engine", "lsp_server", "semcode"}
PACKAGES = ("engine", "lsp_server", "semcode")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> dict[str, str]:
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    return {_norm(re.split(r"[\s<>=!~;\[]", d, maxsplit=1)[0]): d for d in deps}


def _imported_modules() -> dict[str, str]:
    """Top-level third-party modules imported anywhere in the shipped packages -> one file that does."""
    found: dict[str, str] = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in OWN and top not in sys.stdlib_module_names:
                        found.setdefault(top, str(path.relative_to(REPO)))
    return found


def test_every_imported_module_is_a_declared_dependency():
    declared = _declared()
    owners = md.packages_distributions()
    missing = []
    for module, where in sorted(_imported_modules().items()):
        dists = {_norm(d) for d in owners.get(module, [])}
        if not dists & set(declared):
            missing.append(f"{module} (imported in {where}; installed by {sorted(dists) or 'nothing'})")
    assert missing == [], "imported but not in pyproject.toml's dependencies: " + "; ".join(missing)


def test_the_installed_versions_satisfy_the_declared_bounds():
    unsatisfied = []
    for spec in sorted(_declared().values()):
        req = Requirement(spec)
        try:
            version = md.version(req.name)
        except md.PackageNotFoundError:
            unsatisfied.append(f"{spec}: not installed")
            continue
        if not req.specifier.contains(version, prereleases=True):
            unsatisfied.append(f"{spec}: {version} installed")
    assert unsatisfied == []


def test_bounds_that_the_code_relies_on():
    declared = _declared()
    # semcode/mcp_server.py builds on mcp.server.mcpserver.MCPServer, which exists only in MCP SDK 2.x
    mcp = Requirement(declared["mcp"]).specifier
    assert not mcp.contains("1.30.0") and mcp.contains("2.3.0") and not mcp.contains("3.0.0")
    # 1.x of the language pack downloads grammars at run time (fails offline)
    assert not Requirement(declared["tree-sitter-language-pack"]).specifier.contains("1.0.0")
    assert not Requirement(declared["pygls"]).specifier.contains("3.0.0")
    from mcp.server.mcpserver import MCPServer  # noqa: F401  - the import the bound is for
