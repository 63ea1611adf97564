"""engine/lazy_imports.py: LanceDB imported without its REST client still works, and the client loads on demand."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys
from engine.lazy_imports import defer_rest_client
defer_rest_client()
defer_rest_client()  # idempotent
import lancedb
assert "lance_namespace_urllib3_client.api" not in sys.modules, "the REST API modules were imported"
db = lancedb.connect(sys.argv[1])
table = db.create_table("t", data=[{"id": "a", "text": "parse the request headers", "vector": [1.0, 0.0]},
                                   {"id": "b", "text": "format a date", "vector": [0.0, 1.0]}])
table.create_fts_index("text")
assert [r["id"] for r in table.search("headers", query_type="fts").limit(1).to_list()] == ["a"]
assert [r["id"] for r in table.search([0.0, 1.0]).limit(1).to_list()] == ["b"]
assert "lance_namespace_urllib3_client.api" not in sys.modules
import lance_namespace_urllib3_client as client
assert client.ApiClient.__name__ == "ApiClient"  # asked for: the package's own __init__ runs now
from lance_namespace_urllib3_client import Configuration
assert "lance_namespace_urllib3_client.api" in sys.modules
print("ok")
"""


def test_lancedb_works_with_the_rest_client_deferred_and_the_client_loads_when_asked(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "db")], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "ok"


DEFERRED_BUILDS = """
import sys
import pydantic
from engine.lazy_imports import import_lancedb
lancedb = import_lancedb()
assert import_lancedb() is lancedb  # idempotent
assert "defer_build" not in pydantic.BaseModel.model_config, "pydantic's default config was left changed"
from lance_namespace_urllib3_client.models.json_arrow_field import JsonArrowField
assert JsonArrowField.model_config.get("defer_build") is True, "LanceDB's models were built at import"
class Later(pydantic.BaseModel):  # defined after the import: built as pydantic builds it
    x: int
assert Later.__pydantic_complete__ and Later.model_config.get("defer_build") is None
assert Later(x="3").x == 3
from lance_namespace_urllib3_client.models.describe_table_request import DescribeTableRequest
assert DescribeTableRequest.model_validate({"id": ["a", "b"]}).id == ["a", "b"]  # built on first use
try:
    DescribeTableRequest.model_validate({"id": 3})
except pydantic.ValidationError:
    pass
else:
    raise AssertionError("a lazily built model did not validate")
db = lancedb.connect(sys.argv[1])
table = db.create_table("t", data=[{"id": "a", "text": "parse the request headers", "vector": [1.0, 0.0]},
                                   {"id": "b", "text": "format a date", "vector": [0.0, 1.0]}])
table.create_fts_index("text")
assert [r["id"] for r in table.search("headers", query_type="fts").limit(1).to_list()] == ["a"]
assert [r["id"] for r in table.search([0.0, 1.0]).where("id = 'b'").limit(1).to_list()] == ["b"]
print("ok")
"""


def test_lancedb_models_are_built_on_first_use_and_pydantic_defaults_come_back(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", DEFERRED_BUILDS, str(tmp_path / "db")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "ok"
