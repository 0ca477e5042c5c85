"""The worked solutions of notebooks 03 and 12 pass their self-checks; wrong answers do not.

The self-checks send real requests to the session server, so a solution passes only while the
live server still behaves as the notebook teaches.
"""

from __future__ import annotations

import time

import pytest

from helpers.exercises.invalid_parameters import (
    ANSWERS,
    MYSTERIES,
    check_predictions,
    first_check,
    send_mystery,
)
from helpers.exercises.silent_success import check_logged_as_meant
from tests.solutions import load_solution

# ---------------------------------------------------------------- 03


def test_03_placeholders_are_refused(server, fresh_run) -> None:
    feedback = check_predictions({name: ... for name in MYSTERIES}, fresh_run["run_id"])
    assert not feedback.passed
    assert "placeholder" in str(feedback)


def test_03_worked_solution_passes(server, fresh_run) -> None:
    predictions = load_solution("03_invalid_run_id").PREDICTIONS
    feedback = check_predictions(predictions, fresh_run["run_id"])
    assert feedback.passed, str(feedback)
    assert f"all {len(MYSTERIES)} predictions match" in str(feedback)


def test_03_solution_matches_each_live_answer(server, fresh_run) -> None:
    """Independently of check_predictions: send each mystery and read its answer."""
    predictions = load_solution("03_invalid_run_id").PREDICTIONS
    live = {name: send_mystery(name, fresh_run["run_id"]) for name in MYSTERIES}
    assert {name: first_check(answer) for name, answer in live.items()} == predictions
    assert live["A"].message == "Bad Request. Content-Type header is missing."
    assert live["C"].status == 400 and "for parameter 'name'" in (live["C"].message or "")
    assert live["D"].status == 200


def test_03_a_wrong_prediction_names_the_live_answer(server, fresh_run) -> None:
    predictions = dict(load_solution("03_invalid_run_id").PREDICTIONS, C="404")
    feedback = check_predictions(predictions, fresh_run["run_id"])
    assert not feedback.passed
    text = str(feedback)
    assert "3 of 4" in text
    assert "C ✗ you said '404'" in text
    assert "for parameter 'name'" in text  # the server's own message, quoted


def test_03_unknown_answer_and_missing_prediction_are_explained(server, fresh_run) -> None:
    predictions = dict(load_solution("03_invalid_run_id").PREDICTIONS, A="typo")
    assert "not among them" in str(check_predictions(predictions, fresh_run["run_id"]))
    predictions.pop("A")
    assert "A is missing" in str(check_predictions(predictions, fresh_run["run_id"]))
    assert set(load_solution("03_invalid_run_id").PREDICTIONS.values()) <= set(ANSWERS)


# ---------------------------------------------------------------- 05


def test_12_placeholders_are_refused(server, fresh_run) -> None:
    body = {"run_id": fresh_run["run_id"], "key": "loss", ...: 3, "value": 0.25, "timestamp": ...}
    feedback = check_logged_as_meant(body)
    assert not feedback.passed
    assert "placeholder" in str(feedback)


def test_12_worked_solution_passes(server, fresh_run) -> None:
    body = load_solution("12_silent_success").repaired_body(fresh_run["run_id"])
    feedback = check_logged_as_meant(body)
    assert feedback.passed, str(feedback)
    assert feedback.exchange is not None and feedback.exchange.status == 200


def test_12_the_colleagues_body_is_caught_by_reading_back(server, fresh_run) -> None:
    body = {"run_id": fresh_run["run_id"], "key": "loss", "stpe": 3, "value": 0.25,
            "timestamp": time.time()}
    feedback = check_logged_as_meant(body)
    assert not feedback.passed
    assert feedback.exchange is not None and feedback.exchange.status == 200
    text = str(feedback)
    assert "timestamp=0, step=0" in text
    assert "'stpe'" in text


@pytest.mark.parametrize("change, expected", [
    ({"timestamp": None}, "seconds, not milliseconds"),
    ({"step": 1.5}, "fractional step"),
    ({"value": float("nan")}, "NaN and Infinity are not JSON"),
    ({"key": "losss"}, "the metric is called 'loss'"),
])
def test_12_each_trap_gets_its_own_explanation(server, fresh_run, change, expected) -> None:
    body = load_solution("12_silent_success").repaired_body(fresh_run["run_id"])
    if change.get("timestamp", 0) is None:
        change = {"timestamp": int(time.time())}
    body.update(change)
    feedback = check_logged_as_meant(body)
    assert not feedback.passed
    assert expected in str(feedback), str(feedback)
