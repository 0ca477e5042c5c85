"""Re-execute notebooks top to bottom against a fresh local server and save their outputs.

Usage: python tools/run_notebooks.py [NOTEBOOK ...]   (default: every notebooks/*.ipynb)

This is how committed outputs are produced: a clean data directory, one kernel per notebook,
cells run in order. `make test` then checks them with strict nbval. When notebook 04 is among them
and Chromium is installed, the browser test then refreshes the lab's screenshot that 04 shows
(notebooks/images/request_lab.png).
"""

from __future__ import annotations

import os
import shutil
import subprocess
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
    if any(p.name == "04_request_lab.ipynb" for p in books):
        refresh_lab_screenshot()
    return 0


def refresh_lab_screenshot() -> None:
    """Run the browser test (its own server) with the flag that saves notebooks/images/request_lab.png."""
    if not Path("/usr/bin/chromium").exists():
        print("no Chromium: notebooks/images/request_lab.png left as it is")
        return
    env = {**os.environ, "MLFLOW_400_LAB_REFRESH_SCREENSHOT": "1"}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "tests/test_browser.py"], cwd=ROOT, env=env)
    print("lab screenshot:", "refreshed" if done.returncode == 0 else "NOT refreshed (browser test failed)")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
