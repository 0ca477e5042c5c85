"""Self-check for 15_catch_it_before_the_server: clean up a colleague's log-batch request.

The colleague meant: loss = 0.25 at step 1 (logged now), parameter learning_rate = 0.01, tag
team = vision. Their request gets `200 OK` and stores something else. The check sends the
learner's version through a `Recorder` to a fresh run of its own (so it can be tried again and
again: a parameter, once logged, cannot change), then asks preflight and the stored run.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from helpers import runs
from helpers.exercises import Feedback, batch_body_refusal, loss_differences
from helpers.recorder import Recorder
from helpers.wire import send

LOG_BATCH = "/api/2.0/mlflow/runs/log-batch"
MEANT = "loss = 0.25 at step 1 (logged now), param learning_rate = 0.01, tag team = vision"


def colleague_batch() -> dict[str, Any]:
    """The colleague's request body (without run_id): the server answers 200 to it."""
    return {
        "metrics": [{"key": "loss", "value": 0.25, "timestamp": int(time.time()), "step": 1}],
        "params": [{"key": "learning_rate", "value": 0.01}],
        "tags": [{"key": "team", "val": "vision"}],
    }


def check_batch(fixed: Mapping[str, Any]) -> Feedback:
    """15: `fixed` is a log-batch body without run_id that stores exactly what was meant."""
    refused = batch_body_refusal(fixed, "fixed", '"metrics", "params" and "tags"')
    if refused:
        return refused
    run_id = runs.new_run("15-exercise").run_id
    with Recorder() as recorder:
        send(LOG_BATCH, json={"run_id": run_id, **fixed}, base_url=recorder.url)
    (record,) = recorder.records
    lines = []
    for problem in record.problems():
        if problem.kind == "status":
            lines.append(f"the server answered {problem.text}")
        else:
            lines.append(f"preflight {problem.kind}: {problem.text}")
            if problem.fix:
                lines.append(f"  fix: {problem.fix}")
    wrong = _stored_differences(run_id) if record.status == 200 else []
    if lines or wrong:
        found = sum(p.kind != "status" for p in record.problems())
        head = (f"preflight finds {found} problem(s); the server answered {record.status} "
                f"{record.exchange.reason}." if lines
                else "preflight finds nothing, but the stored run is not what was meant.")
        if wrong:
            lines += ["what the server stored:", *(f"  {w}" for w in wrong)]
        return Feedback(False, [head, *lines, f"Meant: {MEANT}."], record.exchange)
    return Feedback(True, ["preflight finds nothing, the server answered 200, and the run "
                           f"holds exactly what was meant: {MEANT}."], record.exchange)


def _stored_differences(run_id: str) -> list[str]:
    """What the run holds that differs from what the colleague meant (read back live)."""
    data = runs.get_run(run_id).get("data", {})
    params = {p["key"]: p.get("value", "") for p in data.get("params", [])}
    tags = {t["key"]: t.get("value", "") for t in data.get("tags", [])
            if not t["key"].startswith("mlflow.")}
    metrics = {m["key"]: m for m in data.get("metrics", [])}
    out = loss_differences(metrics)
    if params.get("learning_rate") != "0.01":
        out.append(f"learning_rate = {params['learning_rate']!r}" if "learning_rate" in params
                   else "no param 'learning_rate'")
    if tags.get("team") != "vision":
        out.append(f"team = {tags['team']!r}" if "team" in tags else "no tag 'team'")
    extra = sorted(set(params) - {"learning_rate"}) + sorted(set(tags) - {"team"})
    if extra:
        out.append(f"also stored: {', '.join(extra)}")
    return out
