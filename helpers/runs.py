"""Create the experiments and runs a lesson needs, and read back what the server stored.

Names carry the learner's name and a random suffix, so re-running a notebook, or forty learners
sharing one classroom server, never collide with RESOURCE_ALREADY_EXISTS.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from helpers import config
from helpers.errors import KitError
from helpers.wire import Exchange, send

API = "/api/2.0/mlflow"


@dataclass(frozen=True)
class Run:
    experiment_id: str
    run_id: str


def unique_name(topic: str) -> str:
    """An experiment name unique to this learner and this call, e.g. `400lab/ana/intro-1a2b3c4d`."""
    return f"400lab/{config.learner_name()}/{topic}-{uuid.uuid4().hex[:8]}"


def now_ms() -> int:
    """The current time in milliseconds since the epoch: the unit MLflow's timestamps use."""
    return int(time.time() * 1000)


def new_experiment(topic: str, *, base_url: str | None = None) -> str:
    """Create a fresh experiment and return its id."""
    answer = send(f"{API}/experiments/create", json={"name": unique_name(topic)},
                  base_url=base_url)
    return _ok(answer, "create an experiment")["experiment_id"]


def new_run(topic: str, *, base_url: str | None = None) -> Run:
    """Create a fresh experiment with one run in it."""
    experiment_id = new_experiment(topic, base_url=base_url)
    answer = send(f"{API}/runs/create", base_url=base_url,
                  json={"experiment_id": experiment_id, "start_time": now_ms()})
    return Run(experiment_id, _ok(answer, "create a run")["run"]["info"]["run_id"])


def get_run(run_id: str, *, base_url: str | None = None) -> dict[str, Any]:
    """The run as the server stores it (`runs/get`)."""
    answer = send(f"{API}/runs/get", method="GET", params={"run_id": run_id}, base_url=base_url)
    return _ok(answer, "read the run back")["run"]


def metric_history(run_id: str, key: str, *, base_url: str | None = None) -> list[dict[str, Any]]:
    """Every stored value of one metric, in the server's order (`metrics/get-history`)."""
    # Without max_results, MLflow 3.1-3.5 answer 200 with no metrics at all (versions/README.md,
    # case c23): always ask for a page large enough.
    answer = send(f"{API}/metrics/get-history", method="GET", base_url=base_url,
                  params={"run_id": run_id, "metric_key": key, "max_results": 25000})
    return _ok(answer, "read the metric history")["metrics"] if answer.json else []


def _ok(answer: Exchange, doing: str) -> dict[str, Any]:
    if answer.status != 200:
        raise KitError(f"Could not {doing}: the server answered {answer.status} "
                       f"{answer.error_code or ''} {answer.message or ''}".rstrip())
    return answer.json or {}
