"""The worked solutions of notebooks 00 and 01 pass their self-checks; wrong answers do not."""

from __future__ import annotations

import json
import time

from helpers.exercises import has_placeholder
from helpers.exercises.content_type import check_content_type_fix
from helpers.exercises.start_here import check_first_metric
from helpers.runs import metric_history
from tests.solutions import load_solution


def test_placeholders_are_found_anywhere() -> None:
    assert has_placeholder({"a": [1, {"b": ...}]})
    assert not has_placeholder({"a": [1, {"b": None}]})


def test_start_here_solution_passes(fresh_run: dict) -> None:
    feedback = check_first_metric(load_solution("00_start_here").body(fresh_run["run_id"]))
    assert feedback.passed, str(feedback)
    stored = metric_history(fresh_run["run_id"], "accuracy")
    assert [(m["value"], int(m["step"])) for m in stored] == [(0.9, 1)]


def test_start_here_catches_seconds_and_wrong_step(fresh_run: dict) -> None:
    run_id = fresh_run["run_id"]
    seconds = check_first_metric({"run_id": run_id, "key": "accuracy", "value": 0.9,
                                  "timestamp": int(time.time()), "step": 1})
    assert not seconds.passed and "milliseconds" in str(seconds)
    missing = check_first_metric({"run_id": run_id, "key": "accuracy", "value": 0.9, "step": 1})
    assert not missing.passed and "timestamp" in str(missing)


def test_content_type_solution_passes(fresh_run: dict) -> None:
    solution = load_solution("01_missing_content_type")
    feedback = check_content_type_fix(solution.HEADERS, solution.body(fresh_run["run_id"]))
    assert feedback.passed, str(feedback)
    assert feedback.exchange.request.header("Content-Type") == "application/json"
    assert json.loads(feedback.exchange.request.body)["step"] == 3


def test_content_type_check_explains_wrong_answers(fresh_run: dict) -> None:
    body = load_solution("01_missing_content_type").body(fresh_run["run_id"])
    upper = check_content_type_fix({"Content-Type": "Application/JSON"}, body)
    assert not upper.passed and "case-sensitively" in str(upper)
    none = check_content_type_fix({}, body)
    assert not none.passed and "no Content-Type header went out" in str(none)
