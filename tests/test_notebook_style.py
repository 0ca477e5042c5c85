"""House style of every notebook (the time formula is the one docs/instructor.md states): the parts
a learner relies on are there, and the stated time agrees with the formula
(prose words + visible output words) / 150 + 0.5 min per code cell + 3 min per exercise."""

from __future__ import annotations

import html
import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
BOOKS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
CORE = [p for p in BOOKS if p.name[0] == "0"]
LINK = re.compile(r"\[[^\]]+\]\((https?://[^)\s]+|[0-9][0-9]_[a-z0-9_]+\.ipynb)\)")


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def output_words(output: nbformat.NotebookNode) -> int:
    """Words a reader sees in one output: rendered HTML's text where there is HTML (as JupyterLab
    shows it), else the plain text; a widget's view has no stored words."""
    data = output.get("data", {})
    if output.output_type == "stream":
        text = output.text
    elif "text/html" in data:
        text = html.unescape(re.sub(r"<[^>]+>", " ", re.sub(r"<(style|script).*?</\1>", "",
                                                           data["text/html"], flags=re.S)))
    elif "application/vnd.jupyter.widget-view+json" in data:
        text = ""
    else:
        text = data.get("text/plain", "") or "\n".join(output.get("traceback", []))
    return len(text.split())


def cell_minutes(cell: nbformat.NotebookNode) -> float:
    if cell.cell_type == "markdown":
        exercise = 3 if re.search(r"^#+ (Exercise|Challenges)", cell.source, re.M) else 0
        return len(cell.source.split()) / 150 + exercise
    if cell.cell_type == "code":
        return 0.5 + sum(output_words(o) for o in cell.get("outputs", [])) / 150
    return 0.0


def formula_minutes(nb: nbformat.NotebookNode) -> float:
    return sum(cell_minutes(c) for c in nb.cells)


def stated_minutes(nb: nbformat.NotebookNode) -> int:
    found = re.search(r"About (\d+) minutes", nb.cells[0].source)
    assert found, "the first cell states 'About N minutes'"
    return int(found.group(1))


def _markdown(nb: nbformat.NotebookNode) -> str:
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


def test_the_layout_is_the_agreed_one() -> None:
    assert [p.name[:2] for p in CORE] == ["00", "01", "02", "03", "04", "05"]
    assert all(p.name[0] == "1" for p in BOOKS if p not in CORE)


@pytest.mark.parametrize("path", BOOKS, ids=lambda p: p.stem)
def test_house_style(path: Path) -> None:
    nb = _read(path)
    first, text = nb.cells[0].source, _markdown(nb)
    assert len(nb.cells) <= 40, f"{len(nb.cells)} cells"
    assert first.lstrip().startswith(("# ", "**Optional deep dive**"))
    assert "**Learning objectives**" in first and re.search(r"\n- ", first)
    prereq = first.split("**Prerequisites**", 1)[1]
    assert "| Concept | Importance | Notes |" in prereq
    assert re.search(r"\| (Necessary|Helpful) \|", prereq) and LINK.search(prereq)
    assert "## Summary" in text
    resources = text.split("## Resources and references", 1)
    assert len(resources) == 2, "a Resources and references section"
    assert "https://mlflow.org/docs/latest/api_reference/rest-api.html" in resources[1]
    assert "**Next:**" in resources[1]
    assert len(LINK.findall(text)) >= 4
    assert "<details><summary>Worked solution" not in text, "solutions live in notebooks/solutions/"


@pytest.mark.parametrize("path", BOOKS, ids=lambda p: p.stem)
def test_stated_time_is_the_formula_rounded(path: Path) -> None:
    """"About N minutes" is the formula above, rounded (0.1 of slack for re-execution noise)."""
    nb = _read(path)
    assert abs(stated_minutes(nb) - formula_minutes(nb)) <= 0.6, round(formula_minutes(nb), 1)


@pytest.mark.parametrize("path", [p for p in BOOKS if p not in CORE], ids=lambda p: p.stem)
def test_deep_dives_say_so_first(path: Path) -> None:
    assert _read(path).cells[0].source.startswith("**Optional deep dive**")


def test_the_core_path_fits_in_an_hour() -> None:
    total = sum(formula_minutes(_read(p)) for p in CORE)
    assert total <= 60, f"core path: {total:.1f} minutes by the formula"


def test_the_first_live_400_comes_in_the_first_five_minutes() -> None:
    minutes = 0.0
    for cell in _read(CORE[0]).cells:
        minutes += cell_minutes(cell)
        shown = " ".join(o.get("text", "") + o.get("data", {}).get("text/plain", "")
                         for o in cell.get("outputs", []))
        if re.search(r"\b400\b", shown):
            break
    else:
        pytest.fail("the first notebook shows no live 400")
    assert minutes <= 5, f"the first live 400 comes after {minutes:.1f} minutes"


@pytest.mark.parametrize("path", BOOKS, ids=lambda p: p.stem)
def test_every_exercise_has_placeholders_and_a_solution_file(path: Path) -> None:
    nb = _read(path)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert any(re.search(r"(?<![\w.])\.\.\.(?![\w.])", src) for src in code), "an exercise with `...`"
    assert (NOTEBOOKS / "solutions" / f"{path.stem}.py").exists()


@pytest.mark.parametrize("path", BOOKS, ids=lambda p: p.stem)
def test_links_to_other_notebooks_resolve(path: Path) -> None:
    for target in re.findall(r"\]\(([0-9][0-9]_[a-z0-9_]+\.ipynb)\)", _markdown(_read(path))):
        assert (NOTEBOOKS / target).exists(), target


@pytest.mark.parametrize("path", [p for p in CORE if p.stem in
                                  ("01_missing_content_type", "02_malformed_json", "03_invalid_run_id")],
                         ids=lambda p: p.stem)
def test_as_written_cells_carry_the_articles_code(path: Path) -> None:
    """Each example notebook sends the article's calls with its header spelling, keys and values."""
    code = "\n".join(c.source for c in _read(path).cells if c.cell_type == "code")
    assert "headers = {'Content-type': 'application/json'}" in code or path.stem.startswith("01")
    assert '"key": "some_metric"' in code and '"value": 0.99' in code
    assert "requests.post(url, data=json.dumps(" in code
    if path.stem.startswith("02"):
        assert "'{run_uuid:\"your_run_uuid\",\"key\":\"some_metric\",\"value\":0.99}'" in code
    if path.stem.startswith("03"):
        assert '"run_uuid": "this_is_not_a_real_uuid"' in code


@pytest.mark.parametrize("path", CORE, ids=lambda p: p.stem)
def test_the_first_code_cell_says_in_one_line_that_it_runs_first(path: Path) -> None:
    """Skipping it gives a bare NameError further down: its first line says so, and what it does."""
    first = next(c for c in _read(path).cells if c.cell_type == "code").source.splitlines()
    assert first[0].startswith("# Run this cell first: it "), first[0]
    assert len(first) > 1 and not first[1].startswith("#"), "one line, not a paragraph"


@pytest.mark.parametrize("stem", ["00_start_here", "03_invalid_run_id", "05_verdicts"])
def test_the_checks_diagram_is_shown_with_a_caption(stem: str) -> None:
    text = _markdown(_read(NOTEBOOKS / f"{stem}.ipynb"))
    image = "![The order of MLflow's checks](images/server_checks.svg)"
    assert image in text and (NOTEBOOKS / "images" / "server_checks.svg").exists()
    caption = text.split(image, 1)[1].strip().splitlines()[0]
    assert caption.startswith("*") and caption.endswith("*"), "a one-line caption under the picture"
