"""Self-check for 05_verdicts: predict the kit's verdict on three new claims, then see it live.

Three claims in the article's style, each tested by one complete `log-metric` request (timestamp
included, so that check is not what answers). The learner predicts the verdict; the check sends
the requests and judges each claim with the same rule as the table (`judge` in
helpers/verdicts.py): the status first, then whether MLflow's message names the claim's cause.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from helpers.exercises import Feedback, has_placeholder, placeholders_left
from helpers.runs import now_ms
from helpers.verdicts import (
    CONFIRMED,
    NOT_CONFIRMED,
    OTHER_CAUSE,
    Claim,
    Planned,
    Verdict,
    judge,
    send_planned,
)

#: The verdicts a prediction may name, as the kit's rule writes them.
VERDICTS = (CONFIRMED, OTHER_CAUSE, NOT_CONFIRMED)
JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class ClaimToJudge:
    """A claim, the request that tests it, and the word MLflow's message must hold for its cause."""

    says: str
    body: Callable[[str, int], str]  # the body text for a run id and a timestamp in ms
    expected_status: int
    cause_word: str  # the claim's cause, as MLflow's message would name it
    why: str  # told after a wrong prediction


def _point(run_id: str, timestamp: int, **changes: object) -> dict:
    return {"run_id": run_id, "key": "loss", "value": 0.5, "timestamp": timestamp, **changes}


CLAIMS_TO_JUDGE: dict[str, ClaimToJudge] = {
    "A": ClaimToJudge('"step": -1 gets 400: steps count from 0',
                      lambda r, t: json.dumps(_point(r, t, step=-1)), 400, "step",
                      "the server stores a negative step: 200, not the 400 the claim expects."),
    "B": ClaimToJudge('the metric name "loss?" gets 400 because of the name',
                      lambda r, t: json.dumps(_point(r, t, key="loss?")), 400, "loss?",
                      "400, and MLflow's message names the value 'loss?' and the name rule."),
    "C": ClaimToJudge("str(data), with Python's quotes, gets 400: it is not JSON",
                      lambda r, t: str(_point(r, t)), 400, "json",
                      "400, but MLflow never says JSON: the body is read as empty and the first "
                      "required field, run_id, is reported missing (as in example 2)."),
}


def judge_claims(run_id: str, timestamp: int | None = None) -> dict[str, Verdict]:
    """Send each claim's request live and judge it with the table's rule."""
    sent = timestamp or now_ms()
    answers = {letter: send_planned(Planned(letter, dict(JSON), c.body(run_id, sent), False))
               for letter, c in CLAIMS_TO_JUDGE.items()}
    return {letter: judge(Claim(number, c.says, (letter,), c.expected_status, _names(letter, c.cause_word)),
                          answers)
            for number, (letter, c) in enumerate(CLAIMS_TO_JUDGE.items(), 1)}


def _names(letter: str, word: str) -> Callable[[Mapping], bool]:
    """The claim's reason test: MLflow's message for request `letter` holds `word` (any case)."""
    return lambda answers: word in (answers[letter].message or "").lower()


def check_verdicts(predictions: Mapping[str, str], run_id: str) -> Feedback:
    """05_verdicts: predict, for each claim, the verdict the kit's rule gives on MLflow's answer."""
    if has_placeholder(predictions):
        return placeholders_left()
    missing = [letter for letter in CLAIMS_TO_JUDGE if letter not in predictions]
    if missing:
        return Feedback(False, [f"give a verdict for every claim: {', '.join(missing)} is missing."])
    said = {k: str(v).strip().lower() for k, v in predictions.items()}
    odd = [f"{k} = {predictions[k]!r}" for k, v in said.items() if v not in VERDICTS]
    if odd:
        return Feedback(False, [f"use one of {', '.join(repr(v) for v in VERDICTS)}; "
                                f"{', '.join(odd)} is not among them."])
    lines, right = [], 0
    for letter, verdict in judge_claims(run_id).items():
        if said[letter] == verdict.verdict:
            right += 1
            lines.append(f"  {letter} ✓ {verdict.verdict}: MLflow answered {verdict.answered}")
        else:
            lines.append(f"  {letter} ✗ you said {said[letter]!r}; MLflow answered {verdict.answered}\n"
                         f"      → {verdict.verdict}: {CLAIMS_TO_JUDGE[letter].why}")
    total = len(CLAIMS_TO_JUDGE)
    first = f"all {total} verdicts match the rule on live answers." if right == total else (
        f"{right} of {total} verdicts match the rule on live answers.")
    return Feedback(right == total, [first, *lines])
