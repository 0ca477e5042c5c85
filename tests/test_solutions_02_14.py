"""The worked solutions of notebooks 02 and 14 pass their self-checks; wrong answers do not.

Every check sends real requests to the session's server, so "passed" means the server accepted the
repaired requests (and, for 02, that the metric was read back).
"""

from __future__ import annotations

import json

from helpers.exercises.beyond_400 import check_beyond_400
from helpers.exercises.malformed_json import check_body_text
from tests.solutions import load_solution as _load

# ---- 02_malformed_json


def test_02_solution_passes(fresh_run: dict[str, str]) -> None:
    solution = _load("02_malformed_json")
    feedback = check_body_text(solution.fixed_body(fresh_run["run_id"]), fresh_run["run_id"])
    assert feedback.passed, feedback
    assert feedback.exchange is not None and feedback.exchange.status == 200


def test_02_json_dumps_variant_passes(fresh_run: dict[str, str]) -> None:
    solution = _load("02_malformed_json")
    text = solution.fixed_body_with_json_dumps(fresh_run["run_id"])
    assert check_body_text(text, fresh_run["run_id"]).passed


def test_02_placeholder_is_refused_without_sending(fresh_run: dict[str, str]) -> None:
    feedback = check_body_text(..., fresh_run["run_id"])
    assert not feedback.passed and feedback.exchange is None
    assert "placeholder" in str(feedback)


def test_02_the_articles_body_is_refused_with_the_json_error(fresh_run: dict[str, str]) -> None:
    article = '{run_uuid:"your_run_uuid","key":"some_metric","value":0.99}'.replace(
        "your_run_uuid", fresh_run["run_id"])
    feedback = check_body_text(article, fresh_run["run_id"])
    assert not feedback.passed
    assert "Expecting property name enclosed in double quotes" in str(feedback)


def test_02_valid_json_without_timestamp_gets_the_servers_400(fresh_run: dict[str, str]) -> None:
    text = json.dumps({"run_id": fresh_run["run_id"], "key": "accuracy", "value": 0.95})
    feedback = check_body_text(text, fresh_run["run_id"])
    assert not feedback.passed
    assert feedback.exchange is not None and feedback.exchange.status == 400
    assert "'timestamp'" in str(feedback)


def test_02_a_seconds_timestamp_is_not_a_pass(fresh_run: dict[str, str]) -> None:
    text = json.dumps({"run_id": fresh_run["run_id"], "key": "accuracy", "value": 0.95,
                       "timestamp": 1700000000})
    feedback = check_body_text(text, fresh_run["run_id"])
    assert feedback.exchange is not None and feedback.exchange.status == 200
    assert not feedback.passed and "seconds" in str(feedback)


def test_02_a_dict_is_not_text(fresh_run: dict[str, str]) -> None:
    feedback = check_body_text({"run_id": fresh_run["run_id"]}, fresh_run["run_id"])
    assert not feedback.passed and feedback.exchange is None


# ---- 14_beyond_400


def test_14_solution_passes(fresh_run: dict[str, str]) -> None:
    solution = _load("14_beyond_400")
    feedback = check_beyond_400(fresh_run["run_id"], read_method=solution.READ_METHOD,
                                history_path=solution.HISTORY_PATH,
                                script_headers=solution.SCRIPT_HEADERS)
    assert feedback.passed, feedback
    assert str(feedback).count(": 200 OK") == 3


def test_14_placeholders_are_refused(fresh_run: dict[str, str]) -> None:
    feedback = check_beyond_400(fresh_run["run_id"], read_method=..., history_path=...,
                                script_headers=...)
    assert not feedback.passed and "placeholder" in str(feedback)


def test_14_the_broken_requests_get_their_real_answers(fresh_run: dict[str, str]) -> None:
    feedback = check_beyond_400(
        fresh_run["run_id"], read_method="POST", history_path="/api/2.0/mlflow/metric/get-history",
        script_headers={"Content-Type": "application/json", "Origin": "https://ui.example.com"})
    text = str(feedback)
    assert not feedback.passed
    assert "405 Method Not Allowed (method-not-allowed)" in text
    assert "404 Not Found (route-not-found)" in text
    assert "403 Forbidden (forbidden-origin)" in text


def test_14_a_localhost_origin_passes_the_server_but_not_the_check(
        fresh_run: dict[str, str]) -> None:
    feedback = check_beyond_400(
        fresh_run["run_id"], read_method="GET", history_path="/api/2.0/mlflow/metrics/get-history",
        script_headers={"Content-Type": "application/json", "Origin": "http://localhost:3000"})
    assert str(feedback).count(": 200 OK") == 3  # the server allows loopback origins
    assert not feedback.passed and "Origin" in str(feedback)
