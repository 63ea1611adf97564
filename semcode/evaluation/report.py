"""The report: too-few-queries message and the table ``semcode eval`` prints."""

from __future__ import annotations

from typing import Any

from engine.errors import SemcodeError

MIN_QUERIES = 5


class TooFewQueries(SemcodeError):
    """The repository has too few usable documented functions to measure anything."""

    def __init__(self, report: dict[str, Any]) -> None:
        super().__init__(_too_few_message(report))
        self.report = report


def _round(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) else value


def _too_few_message(report: dict[str, Any]) -> str:
    ex = report["extraction"]
    return (
        f"only {report['queries']} usable quer{'y' if report['queries'] == 1 else 'ies'} in {report['root']} "
        f"(need {MIN_QUERIES}): eval turns docstrings / JSDoc of Python, JavaScript and TypeScript functions "
        f"into queries. Found {ex.get('functions_with_doc', 0)} documented functions in "
        f"{report['files']} code files; dropped: {ex.get('drop_short_body', 0)} with a body under 3 lines, "
        f"{ex.get('drop_short_summary', 0)} with a first sentence under 4 words, "
        f"{ex.get('drop_duplicate_query', 0)} duplicates, {ex.get('drop_verbatim_in_code', 0)} found verbatim "
        f"in the code (tests/, docs/ and examples/ give no queries)"
    )


# ---------------------------------------------------------------------------------------------- output
def format_table(report: dict[str, Any]) -> str:
    head = (
        f"semcode eval {report['root']}: {report['files']} files, {report['lines']} lines, "
        f"{report['queries']} queries (of {report['candidates']}, seed {report['seed']}); "
        f"model {report.get('model', '?')}"
    )
    cols = f"{'system':<22}{'MRR@10':>8}{'R@1':>7}{'R@5':>7}{'R@10':>7}{'queries':>9}{'index s':>9}{'ms/query':>10}"
    rows = [head, cols, "-" * len(cols)]
    for s in report["systems"]:
        index_s = "-" if s["index_s"] is None else f"{s['index_s']:.2f}"
        rows.append(
            f"{s['label']:<22}{s['mrr10']:>8.3f}{s['recall1']:>7.3f}{s['recall5']:>7.3f}{s['recall10']:>7.3f}"
            f"{report['queries']:>9}{index_s:>9}{s['mean_ms']:>10.1f}"
        )
    rows.append(
        "Queries are docstring first sentences; the index copy has every docstring blanked. "
        "BM25 'index s' is its in-process build time."
    )
    return "\n".join(rows)
