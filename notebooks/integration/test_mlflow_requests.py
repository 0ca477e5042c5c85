"""Fail the build when your program sends MLflow a request the server would refuse or misread.

Copy this file into your project's tests/ folder. It runs your program against a local MLflow
server through a recording proxy (`helpers.Recorder`, from the MLflow 400 Lab kit) and
checks every request the program made with `helpers.preflight`, in its state-aware mode (it
looks up, read-only, whether the run or experiment exists and which params are logged):

- an `error` finding means the server refuses the request (400, or 500 for some inputs);
- a `warning` means the server accepts it but does not store what you meant (a timestamp in
  seconds, a misspelled field it drops, a value the parser gives up on, ...);
- a live answer of 400 or more counts too.

Any of them fails the test, with preflight's explanation and fix. Intended exceptions go in
ALLOWED below.

Settings (environment variables, or edit the constants):
    MLFLOW_PROGRAM          the command that runs your code, e.g. "python train.py --epochs 1"
                            (default: example_program.py next to this file); a leading
                            "python" means the interpreter running pytest
    MLFLOW_PROGRAM_TIMEOUT  seconds the program may take (default 300)
    MLFLOW_TRACKING_URI     an http(s) MLflow server to test against; unset, the kit starts (or
                            reuses) its own local server and stops it afterwards if it started it

Needs pytest and the kit installed in the environment (`pip install -e <path to the kit>`).
Run: pytest tests/test_mlflow_requests.py
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

#: Problems that are fine for your program. An entry allows every problem whose description
#: contains it; descriptions look like
#:   "POST /api/2.0/mlflow/runs/log-metric warning: timestamp=... looks like seconds ..."
#:   "GET /api/2.0/mlflow/experiments/get-by-name -> 404 Not Found RESOURCE_DOES_NOT_EXIST: ..."
ALLOWED: list[str] = [
    # mlflow.set_experiment() and MlflowClient.get_experiment_by_name() ask for the experiment
    # by name first; a 404 there means "not created yet", and the client then creates it.
    "GET /api/2.0/mlflow/experiments/get-by-name -> 404 Not Found RESOURCE_DOES_NOT_EXIST",
]


def program_command() -> list[str]:
    """The command that runs the program under test."""
    given = os.environ.get("MLFLOW_PROGRAM", "").strip()
    if not given:
        return [sys.executable, str(HERE / "example_program.py")]
    words = shlex.split(given)
    if words[0] in ("python", "python3"):
        words[0] = sys.executable
    return words


@pytest.fixture(scope="session")
def mlflow_server_url() -> Iterator[str]:
    """An MLflow server: MLFLOW_TRACKING_URI if it names one, else the kit's local server."""
    try:
        from helpers import start_server
    except ImportError:
        pytest.fail("This test needs the MLflow 400 Lab kit (the `helpers` package): "
                    "pip install -e <path to the kit>, then run it again.", pytrace=False)
    handle = start_server()
    yield handle.url
    handle.stop()  # only stops a server this fixture started


def test_every_mlflow_request_is_valid(mlflow_server_url: str) -> None:
    from helpers import Recorder

    command = program_command()
    timeout = float(os.environ.get("MLFLOW_PROGRAM_TIMEOUT", "300"))
    with Recorder(upstream=mlflow_server_url) as recorder:
        env = {**os.environ, "MLFLOW_TRACKING_URI": recorder.url}
        try:
            result = subprocess.run(command, env=env, capture_output=True, text=True,
                                    timeout=timeout)
        except FileNotFoundError:
            pytest.fail(f"Could not start {command[0]!r}: set MLFLOW_PROGRAM to a command that "
                        "runs your program.", pytrace=False)
        except subprocess.TimeoutExpired:
            pytest.fail(f"The program ran longer than {timeout:g} s; raise "
                        "MLFLOW_PROGRAM_TIMEOUT or give it less work.", pytrace=False)

    report = recorder.report(allow=ALLOWED, only_problems=True)
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-15:])
        pytest.fail(f"The program exited with status {result.returncode}:\n{tail}\n\n{report}",
                    pytrace=False)
    if not recorder.records:
        pytest.fail("The program sent no request through the recorder: make it read the server "
                    "address from MLFLOW_TRACKING_URI (MLflow's client does).", pytrace=False)
    if recorder.problems(allow=ALLOWED):
        pytest.fail(f"{report}\nFix them, or add an entry to ALLOWED in {Path(__file__).name} "
                    "if one is intended.", pytrace=False)
