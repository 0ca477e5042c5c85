"""Self-checks for the notebooks' exercises: specific feedback, never just "wrong".

One module per notebook (`start_here`, `content_type`, ...); this one holds what they share.

Each check takes what the learner filled in, refuses politely while `...` placeholders remain,
sends the request through the same `send()` the notebooks use, and says what the answer means.
The worked solutions in `notebooks/solutions/` are run through these checks by the test suite.
"""

from __future__ import annotations

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
