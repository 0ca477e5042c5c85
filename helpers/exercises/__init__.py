"""Self-checks for the notebooks' exercises: specific feedback, never just "wrong".

One module per notebook (`start_here`, `content_type`, ...); this one holds what they share.

Each check takes what the learner filled in, refuses politely while `...` placeholders remain,
sends the request through the same `send()` the notebooks use, and says what the answer means.
The worked solutions in `notebooks/solutions/` are run through these checks by the test suite.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from helpers.wire import Exchange


@dataclass
class Feedback:
    """The verdict of a self-check: passed or not, and what to do next."""

    passed: bool
    lines: list[str] = field(default_factory=list)
    exchange: Exchange | None = None

    def __str__(self) -> str:
        mark = "✓ Well done:" if self.passed else "✗ Not yet:"
        return "\n".join([f"{mark} {self.lines[0]}", *self.lines[1:]]) if self.lines else mark

    __repr__ = __str__


def has_placeholder(value: Any) -> bool:
    """True while a `...` placeholder is left anywhere in `value`."""
    if value is Ellipsis:
        return True
    if isinstance(value, Mapping):
        return any(has_placeholder(k) or has_placeholder(v) for k, v in value.items())
    if isinstance(value, (list, tuple, set)):
        return any(has_placeholder(v) for v in value)
    return False


def placeholders_left() -> Feedback:
    return Feedback(False, ["replace every `...` placeholder, then run this cell again."])


def batch_body_refusal(body: Any, name: str, keys: str) -> Feedback | None:
    """Why a learner's log-batch `body` (without run_id) cannot be checked yet, or None.

    `name` is the notebook's variable, `keys` what the dict should hold (for the message)."""
    if has_placeholder(body):
        return placeholders_left()
    if not isinstance(body, Mapping):
        return Feedback(False, [f"`{name}` is a {type(body).__name__}; make it a dict with {keys}."])
    if "run_id" in body:
        return Feedback(False, ["leave run_id out: the check adds the id of a fresh run of its "
                                "own, so you can try as often as you like."])
    return None


def loss_differences(metrics: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """How the stored metric `loss` differs from "0.25 at step 1, logged now" (15's and 16's exercises).

    `metrics`: the run's metrics by key, as read back from the server."""
    loss = metrics.get("loss")
    if loss is None:
        return ["no metric 'loss'"]
    out = []
    if loss.get("value") != 0.25 or int(loss.get("step", 0)) != 1:
        out.append(f"loss = {loss.get('value')} at step {loss.get('step', 0)}")
    age_days = (time.time() * 1000 - int(loss.get("timestamp", 0))) / 86_400_000
    if abs(age_days) > 1:
        year = time.gmtime(int(loss.get("timestamp", 0)) / 1000).tm_year
        out.append(f"loss is dated {year}, not today (timestamps are milliseconds)")
    return out
