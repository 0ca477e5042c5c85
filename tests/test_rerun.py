"""Every notebook survives the ways learners re-run it: Run All twice in one kernel, then Restart &
Run All, against the same server, with a proxy set that goes nowhere (tests/rerun.py says what is
checked, and which pass has the proxy).

Under nbval (the README's test command) the passes run in nbval's own kernel, as one item after
each notebook's cells (tests/rerun.py's RerunItem, added by tests/conftest.py), and the test here
is deselected for that notebook. Without nbval (`pytest tests`) it runs the three passes itself, in
one nbclient kernel started with the dead proxy and no NO_PROXY.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbclient.util import run_sync

from tests import rerun
from tests.conftest import FIGURES
from tests.rerun import BOOKS, CellFailed


@pytest.mark.parametrize("path", [p for p in BOOKS if p.name[0] == "1"], ids=lambda p: p.stem)
def test_a_deep_dives_first_code_cell_says_it_must_run_first(path: Path) -> None:
    """Skipping it gives a bare NameError further down: its first line says so, and what it does."""
    first = next(c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
    line = first.source.splitlines()[0]
    assert re.fullmatch(r"# Run this cell first: it .{20,}", line), line


def test_the_status_pattern_reads_statuses_only() -> None:
    cell = nbformat.v4.new_code_cell()
    cell.outputs = [nbformat.v4.new_output("stream", text="'k' * 250 -> 200 \n404 Not Found · html\n"
                                                          "at most 1000 metrics, 500 characters\n"
                                                          "http://127.0.0.1:5400 -> 400 INVALID\n"
                                                          "optimized server: 200 {}\n"
                                                          "Status code: 400\n")]
    assert rerun.statuses(cell) == ["200", "404", "400", "200", "400"]


@pytest.mark.parametrize("path", BOOKS, ids=lambda p: p.stem)
def test_run_all_twice_then_restart_and_run_all(path: Path, server) -> None:
    nb = nbformat.read(path, as_version=4)
    expected = rerun.expected_statuses(nb, path.name)
    client = NotebookClient(nb, timeout=rerun.CELL_TIMEOUT, kernel_name="python3", store_widget_state=False,
                            resources={"metadata": {"path": str(rerun.NOTEBOOKS)}})

    def execute(cell: nbformat.NotebookNode, index: int) -> None:
        try:
            client.execute_cell(cell, index)
        except CellExecutionError as exc:
            raise CellFailed(str(exc).strip().splitlines()[-1]) from None

    started = time.monotonic()
    with client.setup_kernel(env=rerun.kernel_env()):
        first = rerun.run_all(execute, nb, expected, path.stem, "Run All")
        # 17's last cell stops its optimized server; the second pass leaves it out, so the server
        # is still running at the restart, and the kernel's atexit stop must end it.
        last = rerun.last_code_cell(nb) if path.stem == rerun.OPTIMIZED else None
        again = rerun.run_all(execute, nb, expected, path.stem, "Run All again, same kernel",
                              stop_before=last)
        left = rerun.optimized_url(nb) if last is not None else None
        run_sync(client.km.restart_kernel)(now=False)  # a graceful restart: atexit handlers run
        run_sync(client.kc.wait_for_ready)(timeout=120)
        if left:
            assert rerun.gone(left), f"{rerun.OPTIMIZED}'s server at {left} still answers after a restart"
        restarted = rerun.run_all(execute, nb, expected, path.stem, "Restart & Run All")
    FIGURES.append(rerun.figure(path.stem, time.monotonic() - started,
                          [("Run All", first), ("again", again), ("after restart", restarted)]))
