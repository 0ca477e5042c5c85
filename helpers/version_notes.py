"""What older MLflow versions answered: the record made by `versions/run_matrix.py`.

Notebooks cannot run six MLflow versions live, so where they mention versions they show this
record, labelled as such. The renderers are shared with the script that writes the record.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parents[1] / "versions" / "results.json"


def load(path: Path = RESULTS) -> dict[str, Any]:
    """The recorded matrix (cases, versions, answers)."""
    return json.loads(path.read_text())


def history(case_id: str, report: dict[str, Any] | None = None) -> str:
    """One case across versions, e.g. "`200` in 2.8.1, `400 INVALID_PARAMETER_VALUE` in 2.9.2–3.17.2"."""
    report = report or load()
    ok = [v for v in report["versions"] if "results" in v]
    values = [cell(v["results"].get(case_id)) for v in ok]
    return spans(values, [v["version"] for v in ok])


def table(*case_ids: str, server_row: bool = False) -> None:
    """Print the recorded answers as a table: one row per MLflow version, one column per case."""
    from helpers.display import table_text

    report = load()
    ok = [v for v in report["versions"] if "results" in v]
    print(f"recorded by versions/run_matrix.py on {report['generated'][:10]} (a record, not live):")
    for case in report["cases"]:
        if case["id"] in case_ids:
            print(f"  {case['id']}: {case['title']}")
    rows = [[v["version"], *(_detailed(v["results"].get(c)) for c in case_ids),
             *([v.get("server", "?")] if server_row else [])] for v in ok]
    print(table_text(rows, ["MLflow", *case_ids, *(["HTTP server"] if server_row else [])]))


def _detailed(record: dict[str, Any] | None) -> str:
    """`cell()`, naming the field when MLflow reported a missing one."""
    message = (record or {}).get("message") or ""
    prefix = "Missing value for required parameter '"
    if message.startswith(prefix):
        return f"{record['status']} missing '{message[len(prefix):].split(chr(39))[0]}'"
    return cell(record)


def show(*case_ids: str) -> None:
    """Print each case's title and its answers across the recorded versions (for notebooks)."""
    report = load()
    titles = {c["id"]: c["title"] for c in report["cases"]}
    print(f"recorded by versions/run_matrix.py on {report['generated'][:10]}:")
    for case_id in case_ids:
        print(f"- {titles[case_id]}: {history(case_id, report)}")


def cell(record: dict[str, Any] | None) -> str:
    """Render one result as a table cell, e.g. ``400 INVALID_PARAMETER_VALUE`` or ``405 (html)``."""
    if record is None:
        return "–"
    status = record.get("status")
    if status is None:
        return "no answer"
    if record.get("error_code"):
        return f"{status} {record['error_code']}"
    media = record.get("content_type") or ""
    if status == 200 and media == "application/json":
        return f"200 (no {record['missing_key']})" if record.get("missing_key") else "200"
    kind = {"text/html": "html", "text/plain": "text", "application/json": "json"}.get(media,
                                                                                      media)
    return f"{status} ({kind or 'no body'})"


def spans(values: list[str], versions: list[str]) -> str:
    """Describe a row as runs of equal cells: `A` in 2.8.1–2.9.2, `B` in 2.22.1–3.17.2."""
    parts: list[str] = []
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[i]:
            j += 1
        where = versions[i] if i == j else f"{versions[i]}–{versions[j]}"
        parts.append(f"`{values[i]}` in {where}")
        i = j + 1
    return ", ".join(parts)
