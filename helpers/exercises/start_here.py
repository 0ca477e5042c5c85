"""Self-check for 00_start_here: the first metric, logged by hand."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from helpers import runs
from helpers.exercises import Feedback, has_placeholder, placeholders_left
from helpers.wire import send

LOG_METRIC = "/api/2.0/mlflow/runs/log-metric"


def check_first_metric(body: Mapping[str, Any]) -> Feedback:
    """00_start_here: log `accuracy` = 0.9 at step 1 with a millisecond timestamp."""
    from helpers.model_table import SECONDS_THRESHOLD  # imports MLflow: only when checking

    if has_placeholder(body):
        return placeholders_left()
    answer = send(LOG_METRIC, json=dict(body))
    if answer.status != 200:
        return Feedback(False, [f"the server answered {answer.status} {answer.reason}: "
                                f"{answer.message}"], answer)
    history = runs.metric_history(body.get("run_id") or body.get("run_uuid", ""), "accuracy")
    stored = [(m["value"], int(m.get("step", 0))) for m in history]
    if (0.9, 1) not in stored:
        return Feedback(False, [f"the request was accepted, but the stored accuracy points are "
                                f"{stored}; log value 0.9 at step 1."], answer)
    timestamps = [int(m["timestamp"]) for m in history]
    if any(t < SECONDS_THRESHOLD for t in timestamps):
        return Feedback(False, ["stored, but the timestamp looks like seconds: MLflow expects "
                                "milliseconds since the epoch (int(time.time() * 1000))."], answer)
    return Feedback(True, ["the server stored accuracy = 0.9 at step 1 (read back from "
                           "metrics/get-history)."], answer)
