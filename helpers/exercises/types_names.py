"""Self-check for 10_types_and_names: predict the status of six log-metric requests, then see them live."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from helpers.exercises import Feedback, has_placeholder, placeholders_left
from helpers.runs import now_ms
from helpers.wire import send

LOG_METRIC = "/api/2.0/mlflow/runs/log-metric"

#: Each case changes one field of a complete, valid log-metric body.
CASES: dict[str, tuple[str, Any]] = {
    "A": ("value", "-0.5"),
    "B": ("value", "1,5"),
    "C": ("value", False),
    "D": ("key", "loss/val"),
    "E": ("key", "loss?"),
    "F": ("key", "k" * 251),
}


def describe() -> str:
    """The cases, one line each (what the notebook prints before the learner predicts)."""
    return "\n".join(f"{name}: {field} = {value!r}" if len(repr(value)) < 40 else
                     f"{name}: {field} = 'k' * {len(value)}" for name, (field, value) in CASES.items())


def check_type_predictions(predictions: Mapping[str, Any], run_id: str) -> Feedback:
    """Send every case live and compare its status with the prediction (200 or 400)."""
    if has_placeholder(predictions):
        return placeholders_left()
    missing = sorted(set(CASES) - set(predictions))
    if missing:
        return Feedback(False, [f"predict a status for {', '.join(missing)} too."])
    lines, right = [], 0
    for name, (field, value) in CASES.items():
        body = {"run_id": run_id, "key": f"case_{name}", "value": 0.5, "timestamp": now_ms(),
                field: value}
        answer = send(LOG_METRIC, json=body)
        said = predictions[name]
        if said == answer.status:
            right += 1
            lines.append(f"{name}: {answer.status} ✓")
        else:
            lines.append(f"{name}: you said {said!r}, the server answered {answer.status} "
                         f"{answer.message or answer.reason}")
    head = "all six predicted." if right == len(CASES) else f"{right} of {len(CASES)} right."
    return Feedback(right == len(CASES), [head, *lines])
