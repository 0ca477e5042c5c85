"""The copyable integration test (notebooks/integration/test_mlflow_requests.py), run as a learner
would: in its own pytest process, on the example program with its planted bug, then fixed."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import runs

ROOT = Path(__file__).resolve().parents[1]
INTEGRATION = ROOT / "notebooks" / "integration"
TEST_FILE = INTEGRATION / "test_mlflow_requests.py"


def _pytest(*args: str, program: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}  # the session's server via HOME
    env.pop("MLFLOW_PROGRAM", None)
    if program is not None:
        env["MLFLOW_PROGRAM"] = program
    return subprocess.run([sys.executable, "-m", "pytest", "-q", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def _run_program(name: str, server_url: str) -> str:
    """Run an example program on its own; return the run id it logged to."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": server_url}
    done = subprocess.run([sys.executable, str(INTEGRATION / name)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return re.fullmatch(r"logged 3 epochs to run ([0-9a-f]{32})", done.stdout.strip()).group(1)


def test_the_planted_bug_is_silent_and_the_fix_is_real(server_url: str) -> None:
    # Both programs exit 0 (every answer was 200); only the stored timestamps tell them apart.
    buggy = runs.metric_history(_run_program("example_program.py", server_url), "loss",
                                base_url=server_url)
    fixed = runs.metric_history(_run_program("example_program_fixed.py", server_url), "loss",
                                base_url=server_url)
    now_ms = time.time() * 1000
    assert len(buggy) == len(fixed) == 3
    assert all(int(m["timestamp"]) < 365 * 24 * 3600 * 1000 for m in buggy)  # within 1970
    assert all(abs(int(m["timestamp"]) - now_ms) < 600_000 for m in fixed)


def test_fails_on_the_buggy_program_with_preflights_explanation() -> None:
    result = _pytest(str(TEST_FILE))
    # Only the failure report: with CI set, pytest repeats the whole message in its summary.
    out = result.stdout.split("short test summary info")[0]
    assert result.returncode == 1, result.stdout + result.stderr
    assert re.search(r"^1 failed in ", result.stdout, re.M), result.stdout
    assert "7 MLflow requests recorded; 3 would be refused or misread." in out
    assert len(re.findall(r"^\[\d\] POST /api/2\.0/mlflow/runs/log-metric -> 200 OK", out,
                          re.M)) == 3
    assert out.count("looks like seconds") == 3
    # The recorder preflights in state-aware mode: the run exists, so it predicts the 200.
    assert len(re.findall(r"^\[\d\] POST \S+/runs/log-metric -> 200 OK · preflight 200$", out,
                          re.M)) == 3, out
    assert "fix: Send int(time.time() * 1000)." in out
    assert "add an entry to ALLOWED" in out


def test_passes_on_the_fixed_program() -> None:
    result = _pytest(str(TEST_FILE),
                     program=f"python {INTEGRATION / 'example_program_fixed.py'}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^1 passed in ", result.stdout, re.M), result.stdout


@pytest.mark.parametrize(("program", "expected"), [
    ("python -c pass", "The program sent no request through the recorder"),
    ("python -c 'import sys; sys.exit(3)'", "The program exited with status 3"),
])
def test_explains_programs_that_do_not_get_that_far(program: str, expected: str) -> None:
    result = _pytest(str(TEST_FILE), program=program)
    assert result.returncode == 1
    assert expected in result.stdout, result.stdout


def test_the_default_allow_list_covers_mlflows_own_lookup_404() -> None:
    # MlflowClient.get_experiment_by_name answers None on the server's 404: a normal client flow.
    program = ("import uuid; from mlflow import MlflowClient; c = MlflowClient(); "
               "name = '400lab/test/allow-' + uuid.uuid4().hex[:8]; "
               "assert c.get_experiment_by_name(name) is None; c.create_experiment(name)")
    result = _pytest(str(TEST_FILE), program=f"python -c {shlex.quote(program)}")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_main_run_does_not_collect_the_template() -> None:
    main = _pytest("-p", "nbval", "--collect-only", "--nbval", "notebooks")
    assert "test_mlflow_requests" not in main.stdout
    assert "01_missing_content_type.ipynb" in main.stdout  # the notebooks themselves still are
    named = _pytest("--collect-only", str(TEST_FILE))
    assert "test_mlflow_requests.py::test_every_mlflow_request_is_valid" in named.stdout
