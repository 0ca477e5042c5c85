"""Self-check for 12_silent_success: a 200 is not proof, the stored point is.

The learner repairs a body that the server accepts with 200 but stores wrongly. The check sends
it, reads the metric history back before and after, and judges the point that was really stored
against what was meant: loss = 0.25 at step 3, timestamped now in milliseconds.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from typing import Any

import requests

from helpers import runs
from helpers.exercises import Feedback, has_placeholder, placeholders_left
from helpers.wire import send

LOG_METRIC = "/api/2.0/mlflow/runs/log-metric"

#: What the learner means to store.
INTENDED = {"key": "loss", "value": 0.25, "step": 3}
#: How far from "now" a stored timestamp may be and still count as now (ms).
NOW_TOLERANCE_MS = 10 * 60 * 1000


def known_fields() -> set[str]:
    """Every field name log-metric's protobuf message accepts (proto and JSON spelling)."""
    from mlflow.protos.service_pb2 import LogMetric  # protos only, never mlflow.server

    return {n for f in LogMetric.DESCRIPTOR.fields for n in (f.name, f.json_name)}


def _points(run_id: str, key: str) -> Counter:
    return Counter((p["value"] if isinstance(p["value"], str) else float(p["value"]),
                    int(p["timestamp"]), int(p["step"]))
                   for p in runs.metric_history(run_id, key))


def check_logged_as_meant(body: Mapping[str, Any]) -> Feedback:
    """12_silent_success: store loss = 0.25 at step 3, now, exactly as meant."""
    if has_placeholder(body):
        return placeholders_left()
    if not isinstance(body, Mapping):
        return Feedback(False, ["`body` must be a dict of the request's fields."])
    run_id = body.get("run_id") or body.get("run_uuid")
    if not isinstance(run_id, str) or not run_id:
        return Feedback(False, ["put your run's id in the body as run_id."])
    key = body.get("key")
    if key != INTENDED["key"]:
        return Feedback(False, [f"the metric is called {INTENDED['key']!r}; the body says "
                                f"key = {key!r}."])
    before = _points(run_id, key)
    try:
        answer = send(LOG_METRIC, json=dict(body))
    except (requests.exceptions.InvalidJSONError, TypeError, ValueError) as exc:
        return Feedback(False, [f"requests could not turn the body into JSON ({exc}); NaN and "
                                "Infinity are not JSON, and neither are Python objects such as "
                                "sets or datetimes."])
    if answer.status != 200:
        return Feedback(False, [f"the server answered {answer.status} {answer.reason}: "
                                f"{answer.message or answer.text.strip()}"], answer)
    new = list((_points(run_id, key) - before).elements())
    if not new:
        return Feedback(False, ["200 OK, but nothing new was stored: an identical point "
                                "(same value, timestamp and step) was already there. Use a "
                                "fresh timestamp and run the cell again."], answer)
    value, timestamp, step = new[0]
    stored = f"stored value={value}, timestamp={timestamp}, step={step}"
    problems = _problems(body, value, timestamp, step)
    unknown = sorted(set(body) - known_fields())
    if unknown:
        problems.append(f"the server ignored {', '.join(map(repr, unknown))}: fields it does "
                        "not know are dropped without a word. Spell them as the API does.")
    if problems:
        return Feedback(False, [f"200 OK, but read back: {stored}.", *problems], answer)
    return Feedback(True, [f"read back from metrics/get-history: {stored} — loss = 0.25 at "
                           "step 3, timestamped now in milliseconds."], answer)


def _problems(body: Mapping[str, Any], value: Any, timestamp: int, step: int) -> list[str]:
    """Why the stored point differs from the intended one, one sentence per difference."""
    from helpers.model_table import SECONDS_THRESHOLD  # imports MLflow: only when checking

    problems = []
    sent_value, sent_step = body.get("value"), body.get("step")
    if value != INTENDED["value"]:
        why = ""
        if isinstance(sent_value, float) and not math.isfinite(sent_value):
            why = (" json= wrote it as a bare NaN/Infinity, protobuf refused it, and the field "
                   "(and every field after it) was left at 0.")
        elif sent_value == INTENDED["value"]:
            why = (" The body said 0.25, but protobuf stopped at a field before it that it could "
                   "not read, and every field from there on was left at 0.")
        problems.append(f"value is {value}, not {INTENDED['value']}.{why}")
    sent_ts = body.get("timestamp")
    if timestamp == 0 and isinstance(sent_ts, int) and not isinstance(sent_ts, bool) and sent_ts:
        problems.append(f"timestamp is 0 although the body said {sent_ts}: protobuf stopped at "
                        "a field before it that it could not read.")
    elif timestamp == 0:
        problems.append("timestamp is 0 (1 January 1970): the server could not read it as an "
                        "integer — a float such as time.time() — and left it at 0. Send "
                        "int(time.time() * 1000).")
    elif timestamp < SECONDS_THRESHOLD:
        problems.append(f"timestamp {timestamp} is seconds, not milliseconds: multiply by 1000.")
    elif abs(timestamp - runs.now_ms()) > NOW_TOLERANCE_MS:
        problems.append(f"timestamp {timestamp} is not now: use int(time.time() * 1000).")
    if step != INTENDED["step"]:
        if "step" not in body:
            why = " — no field called 'step' reached the server (a typo is dropped silently)"
        elif isinstance(sent_step, float) and not sent_step.is_integer():
            why = " — a fractional step cannot be read as an integer and is left at 0"
        elif sent_step == INTENDED["step"]:
            why = (" although the body said 3: protobuf stopped at a field before it that it "
                   "could not read")
        else:
            why = ""
        problems.append(f"step is {step}, not {INTENDED['step']}{why}.")
    return problems
