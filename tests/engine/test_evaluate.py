"""``semcode eval``: query extraction, docstring stripping, scoring, BM25, and one real end-to-end run."""

from __future__ import annotations

import ast
import json
import math
import os
import tempfile
from collections import Counter
from pathlib import Path

import pytest

from engine.config import EngineConfig
from semcode import evaluation as ev
from semcode.evaluation import BM25Windows, Query, is_hit, score, summary_sentence, tokenize

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "eval_repo"

# (path, first line, last line, query): 0-based, decorators and `export` included.
EXPECTED_QUERIES = [
    ("shop/files.py", 6, 15, "Call a function again after a failure, waiting twice as long before each new attempt."),
    ("shop/files.py", 18, 24, "Compute the SHA-256 digest of a file without reading all of it into memory at once."),
    ("shop/files.py", 27, 35, "Count the weekdays between two calendar dates, leaving out Saturdays and Sundays."),
    ("shop/pricing.py", 7, 17, "Reduce a price by a percentage discount and round to whole cents."),
    ("shop/pricing.py", 20, 27, "Convert an amount of money into another currency using a table of exchange rates."),
    ("shop/stock.py", 23, 29, "Add incoming units of a product to the stock count after a delivery arrives."),
    ("shop/stock.py", 31, 37, "Hold units for a pending customer order so they cannot be sold twice."),
    ("shop/stock.py", 39, 45, "Split a product code into its category prefix and serial number."),
    ("shop/stock.py", 47, 53, "List the products whose free quantity has fallen below a threshold."),
    ("shop/text.py", 6, 10, "Turn a page title into a lowercase identifier that is safe to use in a URL."),
    ("shop/text.py", 13, 24, "Break a long paragraph into lines that are no wider than the given column width."),
    ("shop/text.py", 34, 39, "Hide most characters of an email address before showing it on screen."),
    ("web/cart.ts", 9, 15, "Sum the prices of everything in a shopping cart, including the sales tax."),
    ("web/cart.ts", 23, 27, "Take an item out of the cart by its identifier and report whether it was there."),
    ("web/format.js", 9, 17, 'Format a number of bytes as a short human readable size such as "1.5 MB".'),
    ("web/format.js", 24, 30, "Delay calling a function until the user has stopped typing for a while."),
]


def _q(path: str = "a.py", start: int = 10, end: int = 19) -> Query:
    return Query("q", path, start, end, "f")


# ------------------------------------------------------------------------------------------ extraction
def test_fixture_queries_targets_and_drop_reasons(tmp_path: Path):
    corpus = ev.build_corpus(FIXTURE, EngineConfig(), tmp_path)
    got = [(q.path, q.start_line, q.end_line, q.text) for q in ev.sample_queries(corpus.candidates, 0, 0)]
    assert got == EXPECTED_QUERIES
    # tax_for, is_leap_year, clamp: body < 3 lines; price_label: "Helper."; strip_html/stripTags: the same
    # sentence twice; unique_in_order: its sentence is repeated in a comment of shop/files.py.
    assert corpus.stats["drop_short_body"] == 3
    assert corpus.stats["drop_short_summary"] == 1
    assert corpus.stats["drop_duplicate_query"] == 2
    assert corpus.stats["drop_verbatim_in_code"] == 1
    # Code only (no README), tests/ kept as a distractor without queries.
    assert corpus.files == [
        "shop/files.py",
        "shop/pricing.py",
        "shop/stock.py",
        "shop/text.py",
        "tests/helpers.py",
        "web/cart.ts",
        "web/format.js",
    ]
    assert not any(q.path.startswith("tests/") for q in corpus.candidates)


def test_copy_keeps_line_numbers_and_blanks_every_doc(tmp_path: Path):
    ev.build_corpus(FIXTURE, EngineConfig(), tmp_path)
    for rel in (
        "shop/files.py",
        "shop/pricing.py",
        "shop/stock.py",
        "shop/text.py",
        "tests/helpers.py",
        "web/cart.ts",
        "web/format.js",
    ):
        original = (FIXTURE / rel).read_text().split("\n")
        copy = (tmp_path / rel).read_text().split("\n")
        assert len(copy) == len(original), rel
        for before, after in zip(original, copy, strict=True):  # every line is kept or blanked, never moved
            assert after in (before, "") or "/** @type" in before, (rel, before, after)
        text = "\n".join(copy)
        assert '"""' not in text and "/**" not in text and "@param" not in text, rel
        if rel.endswith(".py"):
            ast.parse(text)
    assert "# Note for readers" in (tmp_path / "shop/files.py").read_text()  # ordinary comments stay
    assert "const limit =   (clamp(5, 0, 10));" in (tmp_path / "web/format.js").read_text()  # inline JSDoc -> " "


def test_copy_skips_declarations_twins_and_built_files(tmp_path: Path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("a.js", "a.cjs", "b.js", "b.js.map", "c.d.ts", "d.mjs", "notes.md"):
        (src / name).write_text("export const x = 1;\n")
    corpus = ev.build_corpus(src, EngineConfig(), tmp_path / "copy")
    assert corpus.files == ["a.js", "d.mjs"]


def test_python_stripping_edge_cases():
    src = (
        '"""Module doc."""\nimport os\n\n\nclass A:\n    """Class doc."""\n\n    def only(self):\n'
        '        """Only a docstring."""\n\n    def inline(self): """one-liner"""; return 1\n\n'
        '    @staticmethod\n    async def multi(x):\n        """Multi\n        line.\n        """  # keep me\n'
        "        y = x\n        return y\n"
    )
    out = ev.strip_python(src, ast.parse(src))
    assert out is not None
    assert out.count("\n") == src.count("\n")
    ast.parse(out)
    lines = out.split("\n")
    assert lines[0] == "" and lines[8] == "        pass"  # alone in its body -> pass
    assert lines[10] == '    def inline(self): ""; return 1'
    assert lines[14] == "        # keep me" and lines[15] == lines[16] == ""
    assert lines[17:19] == ["        y = x", "        return y"]
    assert not any(word in out for word in ("doc", "one-liner", "Multi"))


def test_summary_sentence_rules():
    assert (
        summary_sentence("Send a :class:`~requests.Request` via ``session``.\n\nMore.") == "Send a Request via session."
    )
    assert summary_sentence("Return the value, e.g. 3. More text.") == "Return the value, e.g. 3."
    assert (
        summary_sentence("Parse the *whole* [file](http://x) now\nand return it.\n\nArgs:\n  x")
        == "Parse the whole file now and return it."
    )
    assert summary_sentence("Compute things\n\n:param x: y") == "Compute things"
    assert summary_sentence(":param x: foo") is None
    assert summary_sentence("Returns:\n    int") is None
    assert (
        ev.jsdoc_description("/**\n * Creates a {@link Foo} object.\n * @param {string} a\n */")
        == "Creates a {@link Foo} object."
    )
    assert (
        summary_sentence(ev.jsdoc_description("/**\n * @name add\n * @summary Add some days to a date.\n */"))
        == "Add some days to a date."
    )


def test_filters_duplicates_and_verbatim_leaks():
    cands = [
        Query("Open the door.", "a.py", 0, 5, "a"),
        Query("open the  door", "b.py", 0, 5, "b"),
        Query("Close the window.", "c.py", 0, 5, "c"),
        Query("Lock the gate now.", "d.py", 0, 5, "d"),
    ]
    stats: Counter[str] = Counter()
    kept = ev.filter_candidates(cands, ["x = 1  # lock the GATE now\n"], stats)
    assert [q.symbol for q in kept] == ["c"]
    assert stats == {"drop_duplicate_query": 2, "drop_verbatim_in_code": 1}


def test_sampling_is_seeded_and_sorted():
    cands = [Query(f"query {i}", f"f{i % 7}.py", i, i + 3, str(i)) for i in range(50)]
    first = ev.sample_queries(cands, 10, seed=3)
    assert first == ev.sample_queries(list(reversed(cands)), 10, seed=3)
    assert first != ev.sample_queries(cands, 10, seed=4)
    assert first == sorted(first, key=lambda q: (q.path, q.start_line))
    assert len(ev.sample_queries(cands, 0, seed=3)) == 50


# ------------------------------------------------------------------------------------------ scoring
@pytest.mark.parametrize(
    ("result", "hit"),
    [
        (("a.py", 10, 19), True),  # exact
        (("a.py", 0, 29), True),  # a 30-line window around a 10-line target
        (("a.py", 0, 49), False),  # 50 lines > max(4 * 10, 40)
        (("a.py", 15, 17), True),  # small result inside the target
        (("b.py", 10, 19), False),  # other file
        (("a.py", 18, 40), False),  # overlap 2 < 0.5 * min(10, 23)
        (("a.py", 15, 30), True),  # overlap 5 >= 0.5 * min(10, 16)
        (("a.py", 20, 25), False),  # adjacent, no overlap
    ],
)
def test_hit_rules(result, hit):
    assert is_hit(result, _q()) is hit


def test_score_mrr_and_recall():
    queries = [_q(), _q(), _q(), _q("b.py")]
    miss, hit = ("a.py", 100, 110), ("a.py", 10, 19)
    ranked = [[hit], [miss, miss, hit], [miss] * 10 + [hit], [miss]]  # ranks 1, 3, beyond 10, none
    sc = score(queries, ranked)
    assert sc["ranks"] == [1, 3, None, None]
    assert sc["mrr10"] == pytest.approx((1 + 1 / 3) / 4)
    assert (sc["recall1"], sc["recall5"], sc["recall10"]) == (0.25, 0.5, 0.5)
    assert sc["file_recall10"] == 0.75  # the b.py query never saw its file


# ------------------------------------------------------------------------------------------ BM25
def test_tokenizer_splits_snake_and_camel():
    assert tokenize("getHTTPResponse_code x2 parseURL") == ["get", "http", "response", "code", "parse", "url"]


def test_bm25_windows_and_ranking():
    long_file = "\n".join(f"line_{i} = {i}" for i in range(40)) + "\nparse_config_file = 1\n"
    files = {
        "a.py": "def parse_config(path):\n    return read(path)\n",
        "b.py": long_file,
        "c.py": "def render_page(html):\n    return html\n",
    }
    index = BM25Windows(files)
    assert index.chunks == [("a.py", 0, 1), ("b.py", 0, 29), ("b.py", 15, 40), ("c.py", 0, 1)]  # 30 lines, stride 15
    assert index.search("render the page") == [("c.py", 0, 1)]
    assert index.search("parse config")[:2] == [("a.py", 0, 1), ("b.py", 15, 40)]
    assert index.idf["parse"] == pytest.approx(math.log(1 + (4 - 2 + 0.5) / (2 + 0.5)))
    assert index.search("nothing matches zzz") == []


# ------------------------------------------------------------------------------------------ too few queries
def test_too_few_queries_stops_before_the_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    (tmp_path / "m.py").write_text(
        'def f(x):\n    """Add one to a number and return it."""\n    y = x\n    y += 1\n    return y\n'
    )
    monkeypatch.setattr(ev, "run_semcode", lambda *a, **k: pytest.fail("the model must not be loaded"))
    from semcode.cli import main

    assert main(["eval", str(tmp_path), "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["queries"] == 1 and "need 5" in out["error"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.py"]


# ------------------------------------------------------------------------------------------ end to end
@pytest.mark.slow
def test_end_to_end_on_the_fixture_is_deterministic(
    default_model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The real model, twice: same numbers; hybrid at least as good as BM25; nothing left behind."""
    cache = Path(os.environ["SEMCODE_CACHE_DIR"])
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    before = {p: p.read_bytes() for p in FIXTURE.rglob("*") if p.is_file()}
    indexes_before = set((cache / "indexes").glob("*")) if (cache / "indexes").exists() else set()

    # One llama.cpp thread: the same numbers, and no spin-waiting when the test machine is busy.
    runs = [ev.evaluate(FIXTURE, EngineConfig(threads=1), max_queries=200, seed=0) for _ in range(2)]

    def stable(report: dict) -> tuple:
        systems = [{k: v for k, v in s.items() if k not in ("mean_ms", "p95_ms", "index_s")} for s in report["systems"]]
        return systems, report["per_query"]

    assert stable(runs[0]) == stable(runs[1])
    by_name = {s["name"]: s for s in runs[0]["systems"]}
    assert list(by_name) == ["hybrid", "dense", "bm25"]
    assert runs[0]["queries"] == len(EXPECTED_QUERIES) and runs[0]["chunks"] > 0
    # The model beats BM25 outright; hybrid must stay within one query's worth of it. (On this tiny
    # fixture, function-level targets, the file-diversity signal tuned on semble's file-level benchmark
    # costs hybrid ~0.03 MRR: see BENCHMARKS.md "ranking" and the docstring sweep.)
    assert by_name["dense"]["mrr10"] >= by_name["bm25"]["mrr10"]
    assert by_name["hybrid"]["mrr10"] >= by_name["bm25"]["mrr10"] - 1.0 / len(EXPECTED_QUERIES)
    assert by_name["hybrid"]["recall10"] >= 0.8  # 16 functions with distinct purposes
    table = ev.format_table(runs[0])
    assert "semcode (hybrid)" in table and "BM25 30-line windows" in table
    # No temp dir, no index in the cache, no change in the workspace.
    assert list(tmp_path.iterdir()) == []
    assert (set((cache / "indexes").glob("*")) if (cache / "indexes").exists() else set()) == indexes_before
    assert {p: p.read_bytes() for p in FIXTURE.rglob("*") if p.is_file()} == before
