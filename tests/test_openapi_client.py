"""A client generated from the committed OpenAPI document, by a tool nobody here wrote
(openapi-python-client, pinned in pyproject.toml's test extra), talks to the live server with
typed answers, and shows where the article's mistake (log-metric without `timestamp`) is caught.

One generation per suite (a module fixture, ~3 s); the figures print with every run.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import subprocess
import sys
import time
from collections.abc import Iterator
from types import ModuleType

import pytest
import requests

from helpers import openapi
from tests.conftest import FIGURES

PACKAGE = "mlflow_generated_client"


@pytest.fixture(scope="module")
def client_package(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The generated package, imported from a tmp dir (and forgotten again afterwards)."""
    try:
        import openapi_python_client  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("openapi-python-client is not installed: `make test` installs it from "
                        "locks/all.txt (the test extra).")
        pytest.skip("openapi-python-client is not installed (pip install -e '.[test]').")
    where = tmp_path_factory.mktemp("generated")
    config = where / "config.yaml"
    config.write_text("post_hooks: []\n", encoding="utf-8")  # no ruff run on the output
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "openapi_python_client", "generate",
         "--path", str(openapi.default_output()), "--meta", "none", "--config", str(config),
         "--output-path", str(where / PACKAGE)],
        capture_output=True, text=True, timeout=300, cwd=where)
    generated = time.monotonic() - started
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "Warning" not in done.stdout + done.stderr, done.stdout + done.stderr
    sys.path.insert(0, str(where))
    try:
        package = importlib.import_module(PACKAGE)
        started = time.monotonic()
        modules = [importlib.import_module(info.name) for info in
                   pkgutil.walk_packages(package.__path__, PACKAGE + ".")]
        imported = time.monotonic() - started
        operations = [m for m in modules if ".api." in m.__name__ and hasattr(m, "sync_detailed")]
        line = (f"openapi-python-client: {len(modules)} modules, all imported "
                f"({imported:.1f} s), {len(operations)} operations; generation {generated:.1f} s")
        FIGURES.append(line)
        print(line)
        assert len(operations) == openapi.operation_count(openapi.load())
        yield package
    finally:
        sys.path.remove(str(where))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def test_generated_client_round_trip_with_typed_answers(client_package: ModuleType,
                                                        server_url: str) -> None:
    from mlflow_generated_client import Client
    from mlflow_generated_client.api.mlflow_service import (
        create_experiment,
        create_run,
        get_run,
        log_metric,
        log_param,
    )
    from mlflow_generated_client.models import (
        CreateExperimentBody,
        CreateRunBody,
        Error,
        LogMetricBody,
        LogParamBody,
        MlflowCreateRunResponse,
        MlflowGetRunResponse,
        MlflowRunInfo,
    )

    client = Client(base_url=server_url, raise_on_unexpected_status=True)
    name = f"generated-client-{time.time_ns()}"
    experiment = create_experiment.sync(client=client, body=CreateExperimentBody(name=name))
    created = create_run.sync(client=client, body=CreateRunBody(
        experiment_id=experiment.experiment_id, start_time=1_700_000_000_000))
    assert isinstance(created, MlflowCreateRunResponse)
    run_id = created.run.info.run_id  # typed all the way down: no dict lookups
    assert isinstance(created.run.info, MlflowRunInfo) and run_id

    ok = log_metric.sync_detailed(client=client, body=LogMetricBody(
        run_id=run_id, key="accuracy", value=0.91, timestamp=1_700_000_000_123, step=2))
    assert ok.status_code == 200, ok.content
    ok = log_param.sync_detailed(client=client, body=LogParamBody(
        run_id=run_id, key="lr", value="0.01"))
    assert ok.status_code == 200, ok.content

    read = get_run.sync(client=client, run_id=run_id)
    assert isinstance(read, MlflowGetRunResponse)
    # The typed answer says what the live server stored (read back with plain requests too).
    live = requests.get(f"{server_url}/api/2.0/mlflow/runs/get", params={"run_id": run_id},
                        timeout=30).json()["run"]
    (metric,) = read.run.data.metrics
    assert (metric.key, metric.value, metric.timestamp, metric.step) == (
        "accuracy", 0.91, 1_700_000_000_123, 2)
    assert isinstance(metric.timestamp, int)
    assert metric.to_dict() == live["data"]["metrics"][0]
    (param,) = read.run.data.params
    assert (param.key, param.value) == ("lr", "0.01")
    assert read.run.info.experiment_id == experiment.experiment_id
    assert read.run.info.status.value == live["info"]["status"] == "RUNNING"

    # The deprecated `run_uuid` the handler falls back to: the client sends it, the server takes it.
    ok = log_param.sync_detailed(client=client, body=LogParamBody(
        run_uuid=run_id, key="via_run_uuid", value="1"))
    assert ok.status_code == 200, ok.content

    # The article's mistake, log-metric without a timestamp: the generated model refuses to
    # build the body (timestamp is a required argument), before anything is sent ...
    with pytest.raises(TypeError, match="timestamp"):
        LogMetricBody(run_id=run_id, key="accuracy", value=0.91)
    # ... and the same body sent anyway (through the client's own HTTP session) gets the
    # server's 400, which the client parses into its typed Error: the live server's words.
    body = {"run_id": run_id, "key": "accuracy", "value": 0.91}
    answer = client.get_httpx_client().post("/api/2.0/mlflow/runs/log-metric", json=body)
    assert answer.status_code == 400
    error = Error.from_dict(answer.json())
    truth = requests.post(f"{server_url}/api/2.0/mlflow/runs/log-metric", json=body,
                          timeout=30).json()
    assert (error.error_code.value, error.message) == (truth["error_code"], truth["message"])
    assert error.error_code.value == "INVALID_PARAMETER_VALUE" and "timestamp" in error.message
