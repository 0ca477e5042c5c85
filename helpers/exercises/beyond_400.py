"""Self-check for 14_beyond_400: repair three requests that fail without a 400."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from helpers import runs
from helpers.diagnose import explain
from helpers.exercises import Feedback, has_placeholder, placeholders_left
from helpers.wire import Exchange, send

API = "/api/2.0/mlflow"


def check_beyond_400(run_id: str, *, read_method: Any, history_path: Any,
                     script_headers: Any) -> Feedback:
    """14_beyond_400: read a run (was a 405), fetch a history (was a 404), log a metric (was a 403).

    Each repaired request is sent for real; a failure is explained with `explain()`.
    """
    if any(has_placeholder(v) for v in (run_id, read_method, history_path, script_headers)):
        return placeholders_left()
    if not isinstance(read_method, str) or not isinstance(history_path, str):
        return Feedback(False, ["read_method and history_path are strings, e.g. \"PUT\" and "
                                "\"/api/2.0/mlflow/...\"."])
    if not isinstance(script_headers, Mapping):
        return Feedback(False, ["script_headers is a dict of header names to values."])
    metric = {"run_id": run_id, "key": "loss", "value": 0.5, "timestamp": runs.now_ms(), "step": 0}
    tries: list[tuple[str, Exchange]] = [
        ("1. read the run", send(f"{API}/runs/get", method=read_method.upper(),
                                 params={"run_id": run_id})),
        ("2. fetch the loss history", send(history_path, method="GET",
                                           params={"run_id": run_id, "metric_key": "loss"})),
        ("3. log the metric", send(f"{API}/runs/log-metric", headers=dict(script_headers),
                                   data=json.dumps(metric))),
    ]
    lines, failed = [], None
    for label, answer in tries:
        if answer.status == 200:
            lines.append(f"✓ {label}: {answer.status} {answer.reason}")
            continue
        diagnosis = explain(answer)
        lines.append(f"✗ {label}: {answer.status} {answer.reason} ({diagnosis.family}) — "
                     f"{diagnosis.fix}")
        failed = failed or answer
    if failed is not None:
        return Feedback(False, ["not every request gets 200 yet:", *lines], failed)
    if "origin" in {k.lower() for k in script_headers}:
        return Feedback(False, ["all three got 200, but script_headers still has an Origin: "
                                "a script has no origin, drop the header.", *lines], tries[2][1])
    return Feedback(True, ["all three requests get 200 OK:", *lines], tries[2][1])
