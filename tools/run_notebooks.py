"""Re-execute notebooks top to bottom against a fresh local server and save their outputs.

Usage: python tools/run_notebooks.py [NOTEBOOK ...]   (default: every notebooks/*.ipynb)

This is how committed outputs are produced: a clean data directory, one kernel per notebook,
cells run in order. `make test` then checks them with strict nbval.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str]) -> int:
    books = [Path(a).resolve() for a in argv] or sorted((ROOT / "notebooks").glob("*.ipynb"))
    home = tempfile.mkdtemp(prefix="mlflow-400-lab-run-")
    from helpers.config import use_reproducible_env
    from helpers.server import start_server

    use_reproducible_env(home)

    server = start_server()
    try:
        for path in books:
            started = time.monotonic()
            nb = nbformat.read(path, as_version=4)
            client = NotebookClient(nb, timeout=600, kernel_name="python3", store_widget_state=False,
                                    resources={"metadata": {"path": str(path.parent)}})
            client.execute()
            for cell in nb.cells:
                cell.metadata.pop("execution", None)
            nbformat.write(nb, path)
            print(f"{path.relative_to(ROOT)}: {time.monotonic() - started:.1f} s")
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
