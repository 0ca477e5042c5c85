"""Self-check for 13_500_for_400: decide which failed requests a client should retry.

The rule is the notebook's (the kit's advice, not MLflow's): retry only a failure that is
transient (no answer, 429, 502-504) and only a request that is safe to repeat.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from helpers.exercises import Feedback, has_placeholder, placeholders_left

#: (what happened, whether retrying is right, why)
SITUATIONS: dict[str, tuple[str, bool, str]] = {
    "A": ("log-metric with a list as value -> 500 HTML page", False,
          "the same bytes crash the same way every time: fix the request"),
    "B": ("log-metric with explicit timestamp and step -> no answer (connection refused)", True,
          "transient, and MLflow keeps an identical point only once"),
    "C": ("runs/create -> no answer (timeout)", False,
          "not safe to repeat: every call creates another run"),
    "D": ("log-metric with explicit timestamp and step -> 503 from a proxy", True,
          "a proxy's 503 is transient, and the request is safe to repeat"),
    "E": ("log-metric without timestamp -> 400 INVALID_PARAMETER_VALUE", False,
          "a 400 names a mistake in the request: retrying sends the same mistake"),
}


def check_retry_decisions(decisions: Mapping[str, Any]) -> Feedback:
    if has_placeholder(decisions):
        return placeholders_left()
    lines, right = [], 0
    for name, (what, retry, why) in SITUATIONS.items():
        said = decisions.get(name)
        if said is retry:
            right += 1
            lines.append(f"{name}: ✓ {'retry' if retry else 'do not retry'} — {why}")
        else:
            lines.append(f"{name} ({what}): you said {said!r}; {'retry' if retry else 'do not retry'}: {why}")
    head = "every decision right." if right == len(SITUATIONS) else f"{right} of {len(SITUATIONS)} right."
    return Feedback(right == len(SITUATIONS), [head, *lines])
