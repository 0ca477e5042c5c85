"""Self-check for the exercise of 17_optimized_server: predict each server's status for one request."""

from __future__ import annotations

import requests

#: The exercise's request: a log-metric whose `step` is text, where a whole number belongs.
STEP_BODY = {"key": "epoch", "value": 1.0, "timestamp": 1_700_000_000_000, "step": "ten"}


def check_step_prediction(expected: dict[str, object], bases: dict[str, str],
                          runs: dict[str, str]) -> str:
    """Send STEP_BODY to each server (`bases`: name -> URL, `runs`: name -> run id) and compare
    each live status with the learner's `expected` one. Returns the feedback, one line each."""
    if any(value is ... for value in expected.values()):
        return "Replace each ... with the status you expect, then run this cell again."
    lines = []
    for name, base in bases.items():
        got = requests.post(f"{base}/api/2.0/mlflow/runs/log-metric", timeout=30,
                            json={"run_id": runs[name], **STEP_BODY}).status_code
        verdict = "✓" if got == expected.get(name) else "✗ (which of the checks in section 1 are asserts?)"
        lines.append(f"{name} server: you expected {expected.get(name)}, it answered {got} {verdict}")
    return "\n".join(lines)
