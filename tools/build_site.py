"""Build the kit's website from the committed notebooks: `make site` → _build/site/index.html.

Usage: python3 tools/build_site.py [--out DIR]

Stages the sources Sphinx reads into a work folder next to the output (site/ as the Sphinx
project, the numbered notebooks, the version record, every repository file these link to, the
README for its verdict table, and a field-guide page cut from the notebook that generates the
guide), then runs Sphinx with warnings as errors.
No notebook is executed and nothing is downloaded: the theme and its assets ship in the wheels.
Run with a Python that lacks the site packages, it re-runs itself with .venv's Python, first
installing the kit's `site` extra there if .venv lacks them (tools/bootstrap.py, the same
first-use install as `make lab`).
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "_build" / "site"
SITE_MODULES = ("sphinx", "myst_nb", "sphinx_book_theme")
HEADING = re.compile(r"^(#{1,6}) ", re.MULTILINE)
FIELD_GUIDE = re.compile(r"^(#{2,6}) .*field guide", re.IGNORECASE | re.MULTILINE)
SKIP = shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__", "*.pyc")
LINK = re.compile(r"\]\(\s*<?([^)\s>]+)")
HTML_LINK = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")


def _level(cell: dict) -> int | None:
    """The level of the markdown cell's first heading, if it starts with one."""
    if cell["cell_type"] != "markdown":
        return None
    found = HEADING.match("".join(cell["source"]))
    return len(found.group(1)) if found else None


def field_guide_page(notebooks: list[Path]) -> dict:
    """A notebook of the cells under the 'field guide' heading, with their committed outputs."""
    for path in notebooks:
        nb = json.loads(path.read_text(encoding="utf-8"))
        for start, cell in enumerate(nb["cells"]):
            found = FIELD_GUIDE.match("".join(cell["source"])) if cell["cell_type"] == "markdown" else None
            if not found:
                continue
            level = len(found.group(1))
            end = next((i for i in range(start + 1, len(nb["cells"]))
                        if (_level(nb["cells"][i]) or 99) <= level), len(nb["cells"]))
            title = "".join(nb["cells"][0]["source"]).splitlines()[0].lstrip("# ").strip()
            intro = ("# Field guide\n\n"
                     f"Generated live in [{title}](notebooks/{path.name}): one row per kind of answer "
                     "that notebook met, with its cause and fix. This page repeats that section, "
                     "with its committed outputs.\n")
            page = copy.deepcopy(nb)
            first = {"cell_type": "markdown", "id": "field-guide-intro", "metadata": {}, "source": intro}
            page["cells"] = [first, *copy.deepcopy(nb["cells"][start:end])]
            return page
    raise SystemExit("No notebook has a '## … field guide' heading: the site's field-guide page "
                     "is cut from it.")


def local_links(path: Path) -> list[Path]:
    """Repository files a page links to or shows: Markdown links and images, HTML src/href."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".ipynb":
        text = "\n".join("".join(c["source"]) for c in json.loads(text)["cells"]
                         if c["cell_type"] == "markdown")
    found = []
    for target in LINK.findall(text) + HTML_LINK.findall(text):
        target = target.split("#")[0].split("?")[0]
        if not target or re.match(r"^[a-z][a-z0-9+.-]*:|^/", target, re.IGNORECASE):
            continue  # an anchor on the same page, another site, or an absolute path
        resolved = (path.parent / target).resolve()
        if ROOT in resolved.parents and resolved.is_file():
            found.append(resolved)
    return found


def copy_linked_files(pages: list[Path], work: Path) -> None:
    """Copy into the site every repository file its pages link to, at the same relative path.

    Other files (solutions, JSON records, images) become downloads or images; a linked Markdown
    file becomes a page of its own, outside the navigation (an "orphan" to Sphinx).
    """
    todo, seen = list(pages), set(pages)
    while todo:
        for target in local_links(todo.pop()):
            dest = work / target.relative_to(ROOT)
            if target in seen or dest.exists():
                continue
            seen.add(target)
            dest.parent.mkdir(parents=True, exist_ok=True)
            if target.suffix == ".md":
                dest.write_text("---\norphan: true\n---\n" + target.read_text(encoding="utf-8"),
                                encoding="utf-8")
                todo.append(target)
            else:
                shutil.copy2(target, dest)
                if target.suffix == ".ipynb":
                    todo.append(target)


def stage(work: Path) -> Path:
    """Lay out the Sphinx source folder in `work` (recreated) and return it."""
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(ROOT / "site", work, ignore=SKIP)
    lessons = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
    (work / "notebooks").mkdir()
    for path in lessons:
        shutil.copy2(path, work / "notebooks" / path.name)
    (work / "versions").mkdir()
    shutil.copy2(ROOT / "versions" / "README.md", work / "versions" / "README.md")
    # The README too: the landing page shows its verdict table, links included.
    copy_linked_files([*lessons, ROOT / "versions" / "README.md", ROOT / "README.md"], work)
    (work / "_includes").mkdir()
    shutil.copy2(ROOT / "README.md", work / "_includes" / "README.md")
    (work / "field_guide.ipynb").write_text(json.dumps(field_guide_page(lessons), indent=1),
                                            encoding="utf-8")
    return work


def build(out: Path) -> int:
    work = out.parent / f"{out.name}-src"
    src = stage(work)
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-q", "-E",
           "-d", str(work / ".doctrees"), str(src), str(out)]
    code = subprocess.call(cmd, cwd=ROOT)
    if code == 0:
        print(f"Site built: {out / 'index.html'}\n"
              f"Preview: python3 -m http.server --bind 127.0.0.1 -d {out}  (then http://127.0.0.1:8000)")
    return code


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default _build/site)")
    args = parser.parse_args(argv)
    if not all(importlib.util.find_spec(m) for m in SITE_MODULES):
        sys.path.insert(0, str(ROOT / "tools"))
        import bootstrap

        check = [str(bootstrap.PYTHON), "-c", f"import {', '.join(SITE_MODULES)}"]
        has_them = bootstrap.PYTHON.exists() and subprocess.call(check, stderr=subprocess.DEVNULL) == 0
        if not has_them:  # a fresh clone: the same first-use install as `make lab`
            bootstrap.ensure_env("site")
        os.execv(str(bootstrap.PYTHON), [str(bootstrap.PYTHON), __file__, *argv])
    return build(args.out.resolve())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
