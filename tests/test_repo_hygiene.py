"""Repository-wide checks: lint, and notebooks committed clean (run in order, no errors, no paths)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
MACHINE_PATHS = re.compile(r"(/root/|/home/[^/\s]+/|/tmp/|/private/var/|C:\\\\Users\\\\)")
IGNORE_MARKER = re.compile(r"#\s*NBVAL_(IGNORE_OUTPUT|SKIP)")
SHOWS_STATUS = re.compile(r"\b(status|status_code|error_code|message|reason)\b")


def test_ruff_is_clean() -> None:
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    result = subprocess.run([ruff, "check", str(ROOT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _output_text(output: dict) -> str:
    if "text" in output:
        return "".join(output["text"])
    data = output.get("data", {})
    return "\n".join("".join(data.get(m, "")) for m in ("text/plain", "text/html"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_clean(path: Path) -> None:
    nb = json.loads(path.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    counts = [c.get("execution_count") for c in code]
    assert counts == list(range(1, len(code) + 1)), "restart the kernel and run all, in order"
    for number, cell in enumerate(code, 1):
        source = "".join(cell["source"])
        assert not (IGNORE_MARKER.search(source) and SHOWS_STATUS.search(source)), (
            f"cell {number}: an nbval ignore marker on a cell that shows a status or message")
        for output in cell.get("outputs", []):
            assert output["output_type"] != "error", f"cell {number} stored an error"
            found = MACHINE_PATHS.search(_output_text(output))
            assert not found, f"cell {number} shows a machine-specific path {found.group(0)}"


def test_every_notebook_has_the_house_sections() -> None:
    for path in NOTEBOOKS:
        text = "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"]
                         if c["cell_type"] == "markdown")
        assert "**Learning objectives**" in text, path.name  # see test_notebook_style.py
        assert "Prerequisites" in text, path.name
        assert "## Summary" in text, path.name
        if not path.name.startswith("00_"):
            assert "## Exercise" in text or "## Challenges" in text, path.name


def test_one_seconds_threshold() -> None:
    """"Looks like seconds" is decided in one place (helpers/model_table.py::SECONDS_THRESHOLD):
    no other module writes its own bound for milliseconds."""
    bound = re.compile(r"\b(1e1[0-3]|10\s*\*\*\s*1[0-3]|1_?000_?000_?000_?000)\b")
    found = [f"{p.relative_to(ROOT)}:{n}" for p in sorted((ROOT / "helpers").rglob("*.py"))
             if p.name != "model_table.py"
             for n, line in enumerate(p.read_text().splitlines(), 1) if bound.search(line)]
    assert found == []
