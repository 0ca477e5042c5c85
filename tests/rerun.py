"""Every notebook survives the ways learners re-run it: Run All twice in one kernel, then Restart &
Run All, against the same server, with a proxy set that goes nowhere.

Ground truth is the committed outputs: a re-run must raise no error, and every HTTP status a cell
shows must be the status it shows in the committed output. The kernels reuse the session's server
(tests/conftest.py exports its data directory, which start_server() finds).

Under nbval (the README's test command) the passes run in nbval's own kernel, one pytest item per
notebook after its last cell (`notebooks/NN_x.ipynb::Run All again, Restart & Run All`):

1. Run All: nbval's strict pass, in a fresh kernel, every output equal to the committed one;
2. Run All again, in the same kernel: statuses equal to the committed ones;
3. Restart & Run All: a graceful restart (atexit handlers run), and the new kernel gets
   HTTP_PROXY/HTTPS_PROXY pointing at a dead loopback port and no NO_PROXY, as on a machine behind a
   corporate proxy: plain `requests` in a notebook must still reach the local server (the kit puts
   the loopback names into NO_PROXY when `helpers` is imported). Statuses as in pass 2.

The proxy is set for pass 3 only, the one that starts a kernel the way a learner behind a proxy
does; passes 1 and 2 keep the environment the committed outputs were made in. Without nbval
(`pytest tests`), tests/test_rerun.py runs the same three passes in a kernel of its own, all three
with the dead proxy.
"""

from __future__ import annotations

import configparser
import os
import re
import time
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path
from queue import Empty

import nbformat
import pytest
from nbval.plugin import IPyNbFile

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
BOOKS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
_PHRASES = "|".join(sorted((re.escape(s.phrase) for s in HTTPStatus), key=len, reverse=True))
#: An HTTP status as the notebooks print one: before its reason phrase ("404 Not Found"), after an
#: arrow ("-> 200"), before the JSON body it came with ("server: 400 {"), or after the article's
#: own label ("Status code: 400"). Other three-digit
#: numbers (limits such as 250) are not statuses.
STATUS = re.compile(rf"(?<![\w.])([1-5]\d\d)(?=\s+(?:{_PHRASES})\b)|->\s*([1-5]\d\d)\b"
                    r"|(?<=: )([1-5]\d\d)(?= \{)|(?<=Status code: )([1-5]\d\d)\b")
OPTIMIZED = "17_optimized_server"
#: The seconds one cell may take in a re-run (nbclient's timeout in tests/test_rerun.py too).
CELL_TIMEOUT = 300


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
    return ["".join(found) for found in STATUS.findall(joined)]


def expected_statuses(nb: nbformat.NotebookNode, name: str) -> list[list[str]]:
    """The committed statuses of every cell; a notebook that shows none would check nothing."""
    expected = [statuses(c) if c.cell_type == "code" else [] for c in nb.cells]
    assert any(expected), f"{name} shows no status at all: the test would check nothing"
    return expected


def kernel_env() -> dict[str, str]:
    """This process's environment with a dead proxy and no NO_PROXY."""
    dead = "http://127.0.0.1:9"  # the discard port: nothing of the kit ever listens there
    env = {k: v for k, v in os.environ.items() if k.lower() != "no_proxy"}
    env.update(HTTP_PROXY=dead, HTTPS_PROXY=dead, http_proxy=dead, https_proxy=dead)
    return env


def run_all(execute: Callable[[nbformat.NotebookNode, int], None], nb: nbformat.NotebookNode,
            expected: list[list[str]], name: str, how: str, *, stop_before: int | None = None) -> float:
    """Run the code cells with `execute` (which fills the cell's outputs and raises
    CellFailed); fail on an error or a status other than the committed one. Returns seconds."""
    started = time.monotonic()
    for index, cell in enumerate(nb.cells[:stop_before]):
        if cell.cell_type != "code":
            continue
        try:
            execute(cell, index)
        except CellFailed as exc:
            pytest.fail(f"{name}, {how}: cell {index} raised {exc}")
        got = statuses(cell)
        assert got == expected[index], (f"{name}, {how}: cell {index} shows statuses {got}, "
                                        f"the committed output {expected[index]}")
    return time.monotonic() - started


class CellFailed(Exception):
    """A cell raised; the message is its last traceback line."""


def last_code_cell(nb: nbformat.NotebookNode) -> int:
    return max(i for i, c in enumerate(nb.cells) if c.cell_type == "code")


def optimized_url(nb: nbformat.NotebookNode) -> str:
    """The optimized server's URL, as 17's first code cell printed it in this pass."""
    first = next(c for c in nb.cells if c.cell_type == "code")
    text = "".join(o.get("text", "") for o in first.outputs)
    return re.search(r"optimized server: *(http://\S+)", text).group(1)


def gone(url: str, wait: float = 15.0) -> bool:
    """True once nothing answers at `url` (the kernel's atexit stop has run)."""
    import requests

    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            requests.get(f"{url}/health", timeout=2, proxies={"http": "", "https": ""})
        except requests.ConnectionError:
            return True
        time.sleep(0.5)
    return False


def figure(stem: str, total: float, passes: list[tuple[str, float]]) -> str:
    """The timing line tests/conftest.py's summary prints for one notebook."""
    return (f"re-run {stem}: {total:.1f} s in all ("
            + ", ".join(f"{how} {seconds:.1f} s" for how, seconds in passes) + ")")


# --- the passes on nbval's kernel -------------------------------------------------------------

AGAIN = "Run All again, same kernel"
RESTARTED = "Restart & Run All, dead proxy"


def execute_on(kernel: object) -> Callable[[nbformat.NotebookNode, int], None]:
    """Run one cell in nbval's kernel (its RunningKernel) and keep the cell's outputs, read from
    iopub the way nbval's own cells read them (IPyNbCell.runtest)."""

    def execute(cell: nbformat.NotebookNode, index: int) -> None:
        msg_id = kernel.execute_cell_input(cell.source, allow_stdin=False)
        try:
            kernel.await_reply(msg_id, timeout=CELL_TIMEOUT)
        except Empty:
            kernel.interrupt()
            raise CellFailed(f"no answer within {CELL_TIMEOUT} s") from None
        outputs, error = [], None
        while True:  # the reply came: its outputs are on iopub, up to the idle status
            msg = kernel.get_message("iopub", timeout=CELL_TIMEOUT)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "status" and content["execution_state"] == "idle":
                break
            if kind == "stream":
                outputs.append(nbformat.v4.new_output("stream", name=content["name"],
                                                      text=content["text"]))
            elif kind in ("display_data", "execute_result"):
                outputs.append(nbformat.v4.new_output("display_data", data=content["data"]))
            elif kind == "error":
                error = f"{content['ename']}: {content['evalue']}"
        cell.outputs = outputs
        if error:
            raise CellFailed(error)

    return execute


def restart(kernel: object, env: dict[str, str]) -> None:
    """Restart nbval's kernel gracefully (atexit handlers run) with `env`, and wait until its
    iopub channel delivers (as nbval waits for a kernel it starts)."""
    kernel.km.restart_kernel(now=False, env=env)
    kernel.kc.wait_for_ready(timeout=120)
    for _ in range(30):
        msg_id = kernel.kc.kernel_info()
        kernel.await_reply(msg_id, timeout=10)
        try:
            kernel.await_idle(msg_id, 1)
            return
        except Empty:
            continue
    raise RuntimeError("the restarted kernel's iopub channel never answered")


#: What the restarted kernel's environment holds, read without binding a name in the notebook's.
_PROXY_PROBE = "print(*map(__import__('os').environ.get, ('HTTP_PROXY', 'NO_PROXY', 'no_proxy')))"


def _printed(cell: nbformat.NotebookNode) -> str:
    """What a cell printed."""
    return "".join(o.get("text", "") for o in cell.outputs).strip()


class RerunItem(pytest.Item):
    """Passes 2 and 3 in the kernel nbval ran the notebook in (pass 1), after its last cell."""

    NAME = "Run All again, Restart & Run All"

    def runtest(self) -> None:
        from tests.conftest import FIGURES

        nbfile = self.parent
        kernel = nbfile.kernel
        if kernel is None or not kernel.is_alive() or nbfile.timed_out:
            pytest.fail(f"{self.path.stem}: nbval's kernel is gone (a cell above timed out or "
                        "killed it), so there is nothing to run again")
        nb = nbformat.read(self.path, as_version=4)
        expected = expected_statuses(nb, self.path.name)
        execute = execute_on(kernel)
        started = time.monotonic()
        # 17's last cell stops its optimized server; the second pass leaves it out, so the server
        # is still running at the restart, and the kernel's atexit stop must end it.
        try:
            last = last_code_cell(nb) if self.path.stem == OPTIMIZED else None
            again = run_all(execute, nb, expected, self.path.stem, AGAIN, stop_before=last)
            left = optimized_url(nb) if last is not None else None
            env = kernel_env()
            restart(kernel, env)
            probe = nbformat.v4.new_code_cell(_PROXY_PROBE)  # before any cell puts loopback in NO_PROXY
            execute(probe, -1)
            assert _printed(probe) == f"{env['HTTP_PROXY']} None None", (
                f"the restarted kernel did not get the dead proxy: {_printed(probe)}")
            if left:
                assert gone(left), f"{OPTIMIZED}'s server at {left} still answers after a restart"
            restarted = run_all(execute, nb, expected, self.path.stem, RESTARTED)
        except BaseException:
            if self.path.stem == OPTIMIZED:  # a graceful restart runs 17's atexit stop of its server,
                restart(kernel, kernel_env())  # which nbval's teardown (a kill) would not
            raise
        FIGURES.append(figure(self.path.stem, time.monotonic() - started,
                              [("again", again), ("after restart", restarted)]))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException]) -> str:
        """A failed check in one line (what, which pass, which cell), not pytest's own frames."""
        if excinfo.errisinstance(AssertionError):
            return str(excinfo.value).split("\nassert ")[0]
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, None, str]:
        return self.path, None, f"{self.path.name}::{self.name}"


def add_rerun_items(items: list[pytest.Item]) -> set[Path]:
    """Put a RerunItem after each numbered notebook's last nbval cell; the notebooks it covers."""
    last: dict[Path, int] = {}
    for index, item in enumerate(items):
        if isinstance(item.parent, IPyNbFile) and Path(item.parent.path) in BOOKS:
            last[Path(item.parent.path)] = index
    for index in sorted(last.values(), reverse=True):
        nbfile = items[index].parent
        items.insert(index + 1, RerunItem.from_parent(nbfile, name=RerunItem.NAME))
    return set(last)


#: tests/test_rerun.py's own three passes, for a run without nbval.
OWN_TEST = "test_run_all_twice_then_restart_and_run_all"


def move_onto_nbval(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Re-run each notebook nbval collected in nbval's kernel, and deselect tests/test_rerun.py's
    own run of it: one strict pass and one kernel start fewer per notebook, and each notebook's
    re-runs go to whichever worker runs its cells (`--dist loadfile`: one .ipynb, one unit)."""
    covered = add_rerun_items(items)
    dropped = [i for i in items if getattr(i, "originalname", "") == OWN_TEST
               and i.callspec.params["path"] in covered]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        gone_ids = {id(i) for i in dropped}
        items[:] = [i for i in items if id(i) not in gone_ids]
