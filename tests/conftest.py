"""One MLflow server per test process, shared with nbval's notebook kernels.

Fixtures do not run for nbval cells, so the server is started in `pytest_sessionstart` in a
throw-away data directory, and `MLFLOW_400_LAB_HOME` is exported: every kernel nbval starts
inherits it and `start_server()` there reuses this server through the kit's state file.

With pytest-xdist (`-n 2 --dist loadfile`, docs/development.md's test command) each worker is its own session
with its own server and data directory; the controller, which runs no test, starts none.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest

from helpers import config, runs
from helpers.processes import free_port
from helpers.server import ServerHandle, start_server
from tests import rerun
from tests.loopback import RecordingServer, start_recording_server

_session: dict = {}

# Importing mlflow (catalog, preflight, the client in notebook 15) may start its usage telemetry,
# which reaches for the internet; tests and CI are offline by design.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def pytest_sessionstart(session: pytest.Session) -> None:
    if session.config.pluginmanager.has_plugin("dsession"):  # the xdist controller
        return
    # The pytest runs this session starts itself (the copyable integration test, from
    # tests/test_integration_pattern.py and notebook 15's kernel) load no plugin they do not name:
    # autoloading this environment's test tools (schemathesis, hypothesis, ...) costs each of them
    # about 3.5 s of start-up, and a learner's project would not have them. Set here, in a test
    # process, not at import: the xdist controller's workers must still load their plugins.
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    home = tempfile.mkdtemp(prefix="mlflow-400-lab-test-")
    config.use_reproducible_env(home)
    _session["home"] = home
    # The first worker's server takes the kit's port 5400 (when free) and holds it for the whole
    # run, so the servers tests start take free ports without racing for it; the other workers'
    # take any free port, never racing the first for 5400 (notebook outputs show PORT).
    first = os.environ.get("PYTEST_XDIST_WORKER", "gw0") == "gw0"
    _session["server"] = start_server(port=None if first else free_port())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if hasattr(session.config, "workeroutput"):  # an xdist worker: hand the figures over
        session.config.workeroutput["figures"] = list(FIGURES)
    handle: ServerHandle | None = _session.pop("server", None)
    if handle is not None:
        handle.stop()
    shutil.rmtree(_session.pop("home", ""), ignore_errors=True)


# The longest files (seconds of wall time each, measured with `--durations`), handed out first:
# pytest-xdist gives each free worker the next file in collection order, and a long file
# collected last would run alone at the end while the other worker sits idle. Under nbval a
# notebook is a file too, its re-runs included (tests/rerun.py); test_rerun.py is long only
# without nbval.
LONGEST_FIRST = (
    "test_rerun.py", "15_catch_it_before_the_server.ipynb", "test_hub.py", "test_lab_command.py",
    "test_classroom_auth.py", "test_classroom.py", "17_optimized_server.ipynb", "test_openapi_fuzz.py",
    "10_types_and_names.ipynb", "test_browser.py", "test_site.py", "test_server_safety.py",
    "12_silent_success.ipynb", "11_limits_params_ids.ipynb", "13_500_for_400.ipynb", "04_request_lab.ipynb",
    "16_openapi.ipynb", "test_doctor.py", "test_server.py", "test_integration_pattern.py",
    "test_bootstrap.py",
)


def pytest_configure(config: pytest.Config) -> None:
    # pytest-xdist's default --loadscope-reorder hands out the files with the most tests first,
    # which puts the long files with few tests (the hub, the rooms, the fuzzer, the browser) last:
    # keep the collection order, LONGEST_FIRST's.
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: order kept inside
    rerun.move_onto_nbval(config, items)  # the notebooks' re-runs in nbval's kernels (tests/rerun.py)


@pytest.fixture(scope="session")
def server() -> ServerHandle:
    """The session's MLflow server."""
    return _session["server"]


@pytest.fixture(scope="session")
def server_url(server: ServerHandle) -> str:
    """Base URL of the session's server, e.g. http://127.0.0.1:PORT."""
    return server.url


@pytest.fixture
def echo() -> Iterator[RecordingServer]:
    """A loopback server that records the raw requests it gets (tests/loopback.py)."""
    record, httpd = start_recording_server()
    yield record
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def fresh_run(server_url: str) -> dict[str, str]:
    """A new experiment with one run: {"experiment_id": ..., "run_id": ...}."""
    run = runs.new_run("test", base_url=server_url)
    return {"experiment_id": run.experiment_id, "run_id": run.run_id}


#: Figures tests measure (e.g. tests/test_model_agreement.py's agreement counts), repeated in
#: the terminal summary so they are seen without -s.
FIGURES: list[str] = []


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: object, error: object) -> None:
    """The xdist controller collects each worker's figures for its summary."""
    FIGURES.extend(getattr(node, "workeroutput", {}).get("figures", []))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("measured figures")
        for line in FIGURES:
            terminalreporter.write_line(line)
