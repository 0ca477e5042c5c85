"""`python -m helpers lab --fresh` (`make lab FRESH=1`): the lessons with their outputs cleared.

For predict-then-run teaching: the committed notebooks show every answer, so the lab opens copies
in the kit's data folder instead, with outputs and execution counts removed; the committed
notebooks stay intact. A copy a learner already worked in is kept (delete the folder to start
over). `integration/` and `images/` come along (notebooks 04 and 15 use them); `solutions/` does
not, so the answers stay out of sight until the instructor points at notebooks/solutions/.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from helpers import config

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
FOLDER = "fresh-notebooks"  # in the data folder
ALONG = ("images", "integration")  # folders the notebooks read or show


def prepare(source: Path = NOTEBOOKS, dest: Path | None = None) -> tuple[Path, str]:
    """Copy every lesson into `dest` (default: <data dir>/fresh-notebooks) with its outputs
    cleared, keeping copies already there; returns the folder and one sentence saying what
    happened."""
    import nbformat

    target = dest or config.data_dir() / FOLDER
    target.mkdir(parents=True, exist_ok=True)
    made, kept = 0, 0
    for notebook in sorted(source.glob("*.ipynb")):
        copy = target / notebook.name
        if copy.exists():
            kept += 1
            continue
        nb = nbformat.read(notebook, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        nb.metadata.pop("widgets", None)  # saved widget state is an output too
        nbformat.write(nb, copy)
        made += 1
    for name in ALONG:
        if (source / name).is_dir() and not (target / name).exists():
            shutil.copytree(source / name, target / name,
                            ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    note = (f"Lessons without their outputs in {target} ({made} copied"
            + (f", {kept} kept from before: delete the folder to start over" if kept else "")
            + "); notebooks/ is unchanged.")
    return target, note
