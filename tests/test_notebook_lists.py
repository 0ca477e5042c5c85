"""Every list of lessons names the notebooks that exist, and only those.

The README, notebook 05's list of deep dives and the instructor's guide each list the lessons; a
sentence that calls a notebook "the last deep dive" must be about the last one. A notebook added,
renamed or removed without updating these fails here. Reads files only: no server, no kernel.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
STEMS = {p.stem for p in BOOKS}
NUMBERS = {p.name[:2] for p in BOOKS}
DEEP_DIVES = [p for p in BOOKS if p.name[0] != "0"]

#: A notebook's name as the lists write it: `00_start_here`, notebooks/00_start_here.ipynb.
NAME = re.compile(r"(?<![\w/-])(?:notebooks/)?(\d\d_[a-z][a-z0-9_]*?)(?:\.ipynb)?(?![\w-])")
#: A range of lessons in prose: "notebooks 01–07", "deep dives 10 to 17", "00 to 05".
RANGE = re.compile(r"\b(?:notebooks?|lessons?|deep dives?|[Cc]ore path:?)\s+(\d\d)\s*(?:–|-|to)\s*(\d\d)\b")
LAST = re.compile(r"\b(?:the )?(?:last|final) (?:deep dive|lesson|notebook)\b", re.I)

#: The documents that list every lesson.
LISTS = {
    "README.md": ROOT / "README.md",
    "docs/instructor.md": ROOT / "docs" / "instructor.md",
}


def _markdown(path: Path) -> str:
    if path.suffix != ".ipynb":
        return path.read_text(encoding="utf-8")
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


def unknown_names(text: str) -> list[str]:
    """Notebook names and range ends in `text` that no notebook file has."""
    named = [m for m in NAME.findall(text) if m not in STEMS]
    ends = [n for pair in RANGE.findall(text) for n in pair if n not in NUMBERS]
    return named + [f"a range ending in {n}" for n in ends]


def test_the_patterns_find_names_ranges_and_last_claims() -> None:
    """The checks below can fail: they see a stale name, a stale range and a stale "last"."""
    assert unknown_names("see `06_beyond_400` and notebooks/00_start_here.ipynb") == ["06_beyond_400"]
    assert unknown_names("notebooks 01–07") == ["a range ending in 07"]
    assert unknown_names("core path: 00 to 05; `10_types_and_names`") == []
    assert LAST.search("**Next:** this is the last deep dive.")


@pytest.mark.parametrize("name", LISTS)
def test_each_list_names_every_notebook(name: str) -> None:
    text = LISTS[name].read_text(encoding="utf-8")
    missing = sorted(stem for stem in STEMS if stem not in text)
    assert not missing, f"{name} does not list {missing}"


def test_the_readme_links_every_lesson_on_its_first_screen() -> None:
    first_screen = (ROOT / "README.md").read_text(encoding="utf-8").split("\n## ", 1)[0]
    linked = set(re.findall(r"\]\(notebooks/(\d\d_[a-z0-9_]+)\.ipynb\)", first_screen))
    assert linked == STEMS


def test_notebook_05_lists_every_deep_dive() -> None:
    text = _markdown(ROOT / "notebooks" / "05_verdicts.ipynb")
    missing = [p.stem for p in DEEP_DIVES if f"]({p.name})" not in text]
    assert not missing, f"05's list of deep dives lacks {missing}"


DOCUMENTS = [*BOOKS, ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.name)
def test_no_name_or_range_of_a_missing_notebook(path: Path) -> None:
    assert not unknown_names(_markdown(path))


@pytest.mark.parametrize("path", BOOKS, ids=lambda p: p.stem)
def test_only_the_last_deep_dive_calls_itself_the_last(path: Path) -> None:
    if LAST.search(_markdown(path)):
        assert path == DEEP_DIVES[-1], f"{path.name} says it is the last; {DEEP_DIVES[-1].name} is"


def test_the_test_command_is_written_where_contributors_look() -> None:
    """`make test` runs tools/bootstrap.py's TEST_ARGS; docs/development.md shows that command."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bootstrap", ROOT / "tools" / "bootstrap.py")
    bootstrap = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bootstrap)
    command = "python " + " ".join(bootstrap.TEST_ARGS)
    assert command in (ROOT / "docs" / "development.md").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make test" in readme and "(docs/development.md)" in readme


def test_the_instructor_guide_states_each_notebooks_own_minutes() -> None:
    """The guide's tables give each notebook the minutes its first cell states (the formula's)."""
    rows = re.findall(r"^\| `(\d\d_\w+)` \|.*?\| (\d+) min \|", LISTS["docs/instructor.md"]
                      .read_text(encoding="utf-8"), flags=re.M)
    assert len(rows) == len(STEMS), rows
    for stem, minutes in rows:
        first = json.loads((ROOT / "notebooks" / f"{stem}.ipynb").read_text(encoding="utf-8"))
        said = re.search(r"About (\d+) minutes", "".join(first["cells"][0]["source"]))
        assert said and int(minutes) == int(said.group(1)), (stem, minutes)


def test_the_readme_states_the_core_paths_sum() -> None:
    """"about N minutes" in the README is the sum of what the core notebooks state."""
    total = 0
    for path in sorted((ROOT / "notebooks").glob("0[0-5]_*.ipynb")):
        first = json.loads(path.read_text(encoding="utf-8"))["cells"][0]
        total += int(re.search(r"About (\d+) minutes", "".join(first["source"])).group(1))
    said = re.findall(r"[Cc]ore path, (?:in order, )?about (\d+) minutes",
                      LISTS["README.md"].read_text(encoding="utf-8"))
    assert said and all(int(n) == total for n in said), (said, total)
