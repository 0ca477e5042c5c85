"""Self-check for 03_invalid_run_id: predict which of the server's checks answers first.

The server runs its checks in a fixed order (Content-Type, JSON parse, the handler's schema in
field order, the store's name rules, the run lookup) and reports only the first failure. Each
mystery request below trips several checks at once; the learner predicts which one answers, and
the self-check sends the requests and compares with what the live server really said.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from helpers.exercises import Feedback, has_placeholder, placeholders_left
from helpers.runs import now_ms
from helpers.wire import Exchange, send

LOG_METRIC = "/api/2.0/mlflow/runs/log-metric"
JSON = {"Content-Type": "application/json"}

#: The answers a prediction may name: the check's subject as the server's message names it.
ANSWERS = ("Content-Type", "run_id", "key", "value", "timestamp", "name", "404", "200")


@dataclass(frozen=True)
class Mystery:
    """One request: headers and a body template ({run_id} and {timestamp} are filled in)."""

    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    why: str = ""  # what decides the answer, told after a wrong prediction

    def render(self, run_id: str, timestamp: int) -> str:
        return self.body.replace("{run_id}", run_id).replace("{timestamp}", str(timestamp))

    def describe(self) -> str:
        header = self.headers.get("Content-Type")
        shown = f"Content-Type: {header}" if header else "Content-Type: (not sent)"
        return f"{shown}\n{self.body}"


MYSTERIES: dict[str, Mystery] = {
    "A": Mystery({}, '{"run_id": "this_is_not_a_real_uuid", "key": "accuracy", "value": 0.95, '
                     '"timestamp": {timestamp}}',
                 "the Content-Type check runs before the body is even read."),
    "B": Mystery(JSON, '{"run_id": "{run_id}", "key": "accuracy", "value": 0.95, '
                       '"timestamp": {timestamp},}',
                 "the trailing comma makes the body unparseable; the parse is silent, the body "
                 "becomes {}, and the first required field of the schema is reported missing."),
    "C": Mystery(JSON, '{"run_id": "this_is_not_a_real_uuid", "key": "val/acc%", "value": 0.95, '
                       '"timestamp": {timestamp}}',
                 "the store validates the metric (name characters, timestamp, length) before it "
                 "looks the run up, so the '%' in the key is reported, not the missing run."),
    "D": Mystery(JSON, '{"run_uuid": "{run_id}", "key": "accuracy", "value": "0.95", '
                       '"timestamp": "{timestamp}"}',
                 "run_uuid is still accepted as the old name of run_id, and numeric strings are "
                 "converted by protobuf's JSON parser."),
}


def first_check(answer: Exchange) -> str:
    """Which check answered, as one of `ANSWERS`, read from the live answer itself."""
    if answer.status == 200:
        return "200"
    if answer.status == 404 and answer.error_code == "RESOURCE_DOES_NOT_EXIST":
        return "404"
    message = answer.message or ""
    if message.startswith("Bad Request. Content-Type"):
        return "Content-Type"
    named = re.search(r"parameter '([^']+)'", message)
    if named:
        return named.group(1)
    return f"{answer.status} (something else)"


def send_mystery(name: str, run_id: str, timestamp: int | None = None) -> Exchange:
    """Send mystery `name` with a real run id and a millisecond timestamp."""
    mystery = MYSTERIES[name]
    return send(LOG_METRIC, headers=mystery.headers,
                data=mystery.render(run_id, timestamp or now_ms()))


def check_predictions(predictions: Mapping[str, str], run_id: str) -> Feedback:
    """03_invalid_run_id: predict, for each mystery request, the check that answers first."""
    if has_placeholder(predictions):
        return placeholders_left()
    missing = [name for name in MYSTERIES if name not in predictions]
    if missing:
        return Feedback(False, [f"give a prediction for every request: {', '.join(missing)} "
                                "is missing."])
    odd = {name: p for name, p in predictions.items() if p not in ANSWERS}
    if odd:
        return Feedback(False, [f"use one of {', '.join(ANSWERS)}; "
                                + ", ".join(f"{n} = {p!r}" for n, p in odd.items())
                                + " is not among them."])
    timestamp = now_ms()
    lines, right = [], 0
    for name, mystery in MYSTERIES.items():
        answer = send_mystery(name, run_id, timestamp)
        live = first_check(answer)
        said = f"{answer.status} {answer.message or answer.text.strip()}"
        if predictions[name] == live:
            right += 1
            lines.append(f"  {name} ✓ {live}")
        else:
            lines.append(f"  {name} ✗ you said {predictions[name]!r}; the server answered "
                         f"{said}\n      → {live}: {mystery.why}")
    total = len(MYSTERIES)
    if right == total:
        return Feedback(True, [f"all {total} predictions match the live server.", *lines])
    return Feedback(False, [f"{right} of {total} predictions match the live server.", *lines])
