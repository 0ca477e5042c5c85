"""Every notebook survives the ways learners re-run it: Run All twice in one kernel, then Restart &
Run All, against the same server, with a proxy set that goes nowhere.

Ground truth is the committed outputs (strict nbval checks them on a fresh server): a re-run must
raise no error, and every HTTP status a cell shows must be the status it shows in the committed
output. The kernel gets HTTP_PROXY/HTTPS_PROXY pointing at a dead loopback port and no NO_PROXY, as
on a machine behind a corporate proxy: plain `requests` in a notebook must still reach the local
server (the kit's start_server() adds the loopback names to NO_PROXY). The kernels reuse the session's
server (tests/conftest.py exports its data directory, which start_server() finds).
"""

from __future__ import annotations

import configparser
import os
import re
import time
from http import HTTPStatus
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from helpers.processes import free_port

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
BOOKS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
_PHRASES = "|".join(sorted((re.escape(s.phrase) for s in HTTPStatus), key=len, reverse=True))
#: An HTTP status as the notebooks print one: before its reason phrase ("404 Not Found"), or after
#: an arrow ("-> 200"). Other three-digit numbers (limits such as 250) are not statuses.
STATUS = re.compile(rf"(?<![\w.])([1-5]\d\d)(?=\s+(?:{_PHRASES})\b)|->\s*([1-5]\d\d)\b")


def _sanitizers() -> list[tuple[re.Pattern[str], str]]:
    """notebooks/sanitize.cfg, the rules strict nbval applies (ports, ids, timestamps...)."""
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(NOTEBOOKS / "sanitize.cfg")
    return [(re.compile(cfg[s]["regex"]), cfg[s]["replace"]) for s in cfg.sections()]


SANITIZE = _sanitizers()


def statuses(cell: nbformat.NotebookNode) -> list[str]:
    """The HTTP statuses one code cell's outputs show, in order, after nbval's sanitizing."""
    text = []
    for out in cell.get("outputs", []):
        text.append(out.get("text", "") if out.output_type == "stream"
                    else out.get("data", {}).get("text/plain", ""))
    joined = "\n".join(text)
    for pattern, replace in SANITIZE:
        joined = pattern.sub(replace, joined)
    return [a or b for a, b in STATUS.findall(joined)]


def kernel_env() -> dict[str, str]:
    """This process's environment with a dead proxy and no NO_PROXY."""
    dead = f"http://127.0.0.1:{free_port()}"
    env = {k: v for k, v in os.environ.items() if k.lower() != "no_proxy"}
    env.update(HTTP_PROXY=dead, HTTPS_PROXY=dead, http_proxy=dead, https_proxy=dead)
    return env


def _run_all(client: NotebookClient, nb: nbformat.NotebookNode, expected: list[list[str]],
             name: str, how: str) -> None:
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        try:
            client.execute_cell(cell, index)
        except CellExecutionError as exc:
            pytest.fail(f"{name}, {how}: cell {index} raised {str(exc).strip().splitlines()[-1]}")
        got = statuses(cell)
        assert got == expected[index], (f"{name}, {how}: cell {index} shows statuses {got}, "
                                        f"the committed output {expected[index]}")


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
                                                          "http://127.0.0.1:5400 -> 400 INVALID\n")]
    assert statuses(cell) == ["200", "404", "400"]


@pytest.mark.parametrize("path", BOOKS, ids=lambda p: p.stem)
def test_run_all_twice_then_restart_and_run_all(path: Path, server) -> None:
    nb = nbformat.read(path, as_version=4)
    expected = [statuses(c) if c.cell_type == "code" else [] for c in nb.cells]
    assert any(expected), f"{path.name} shows no status at all: the test would check nothing"
    client = NotebookClient(nb, timeout=300, kernel_name="python3", store_widget_state=False,
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    started = time.monotonic()
    with client.setup_kernel(env=kernel_env()):
        _run_all(client, nb, expected, path.stem, "Run All")
        _run_all(client, nb, expected, path.stem, "Run All again, same kernel")
        client.km.restart_kernel(now=False)
        client.kc.wait_for_ready(timeout=120)
        _run_all(client, nb, expected, path.stem, "Restart & Run All")
    print(f"{path.stem}: three passes in {time.monotonic() - started:.1f} s")
