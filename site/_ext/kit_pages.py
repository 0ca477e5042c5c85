"""What the site adds to the committed sources as Sphinx reads them (no file is changed).

- The lesson list on the landing page, derived from the notebooks' file names: the core path
  (`notebooks/0*.ipynb`) then the optional deep dives (`notebooks/1*.ipynb`), each in name order.
- A header under each lesson's title: its time, its place in the path, how to run it. The time
  is the notebook's own "About N minutes"; a notebook without one gets the house-style estimate
  (words/150 + 0.5 min per code cell), labelled as such.
- On the landing page, the Request Lab's picture (`notebooks/images/request_lab.png`) when the
  kit has it, linked to the lesson that shows it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path, PurePosixPath

from sphinx.application import Sphinx

ABOUT = re.compile(r"\bAbout (\d+) minutes\b")
TITLE = re.compile(r"^# .*$", re.MULTILINE)
LESSONS_MARKER = "<!-- lessons: kit_pages.py puts the core path, then the deep dives, here -->"
LAB_MARKER = "<!-- lab picture: kit_pages.py shows notebooks/images/request_lab.png here -->"
LAB_PICTURE = "notebooks/images/request_lab.png"
SECTIONS = (("Core path", "0"), ("Optional deep dives", "1"))


def lessons(app: Sphinx) -> list[str]:
    """Lesson docnames in site order: the core path, then the deep dives."""
    found = sorted(d for d in app.env.found_docs
                   if d.startswith("notebooks/") and app.env.doc2path(d).suffix == ".ipynb")
    return [d for _, prefix in SECTIONS for d in found if PurePosixPath(d).name.startswith(prefix)]


def lesson_toctrees(docnames: list[str]) -> str:
    blocks = []
    for caption, prefix in SECTIONS:
        entries = [d for d in docnames if PurePosixPath(d).name.startswith(prefix)]
        if entries:  # an empty toctree is a Sphinx warning; a kit may have no deep dives yet
            blocks.append(f"```{{toctree}}\n:caption: {caption}\n:maxdepth: 1\n\n"
                          + "\n".join(entries) + "\n```\n")
    return "\n".join(blocks)


def lab_figure(app: Sphinx, order: list[str]) -> str:
    """The Request Lab's picture, linked to the lesson that shows it; nothing if there is none."""
    picture = Path(app.srcdir, LAB_PICTURE)
    if not picture.is_file():
        return ""
    shown_in = [d for d in order
                if "images/request_lab.png" in app.env.doc2path(d).read_text(encoding="utf-8")]
    lesson = f" Try it in {{doc}}`/{shown_in[0]}`." if shown_in else ""
    return (f"```{{figure}} {LAB_PICTURE}\n:alt: The Request Lab in JupyterLab\n:width: 100%\n\n"
            f"The Request Lab: build one request with clicks and watch the live answer.{lesson}\n```\n")


def lesson_minutes(nb: dict) -> tuple[int, bool]:
    """(minutes, stated): the notebook's "About N minutes", else words/150 + 0.5 min per code cell."""
    markdown = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]
    for text in markdown:
        found = ABOUT.search(text)
        if found:
            return int(found.group(1)), True
    words = sum(len(text.split()) for text in markdown)
    code_cells = sum(c["cell_type"] == "code" for c in nb["cells"])
    return max(1, round(words / 150 + 0.5 * code_cells)), False


def header(docname: str, nb: dict, lessons: list[str], binder_url: str) -> str:
    """The MyST block shown under a lesson's title."""
    name = PurePosixPath(docname).name
    path = f"notebooks/{name}.ipynb"
    minutes, stated = lesson_minutes(nb)
    time = f"**About {minutes} minutes**" + ("" if stated else " (estimated from its length)")
    core = [d for d in lessons if PurePosixPath(d).name.startswith("0")]
    place = (f"core path, lesson {core.index(docname) + 1} of {len(core)}" if docname in core
             else "optional deep dive")
    run = f"Run it yourself: `make lab` in the kit's folder, then open `{path}` in JupyterLab"
    if binder_url:
        run += f", or [open it on Binder]({binder_url}{path})"
    return ("\n\n:::{container} lesson-meta\n"
            f"{time} · {place} · prerequisites below\n\n"
            f"{run}.\n"
            ":::\n\n")


def add_to_source(app: Sphinx, docname: str, source: list[str]) -> None:
    order = lessons(app)
    if docname == app.config.root_doc:
        if LESSONS_MARKER not in source[0]:
            raise ValueError(f"{docname}: the marker {LESSONS_MARKER!r} is missing")
        source[0] = (source[0].replace(LESSONS_MARKER, lesson_toctrees(order))
                     .replace(LAB_MARKER, lab_figure(app, order)))
        return
    if docname not in order:
        return
    nb = json.loads(source[0])
    first = nb["cells"][0]
    text = "".join(first["source"])
    title = TITLE.search(text) if first["cell_type"] == "markdown" else None
    block = header(docname, nb, order, app.config.site_binder_url)
    if title:
        text = text[:title.end()] + block + text[title.end():]
        first["source"] = text
    else:
        nb["cells"].insert(0, {"cell_type": "markdown", "id": "lesson-meta", "metadata": {},
                               "source": block})
    source[0] = json.dumps(nb)


def setup(app: Sphinx) -> dict:
    app.add_config_value("site_binder_url", "", "env")
    app.connect("source-read", add_to_source)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
