"""Worked solutions of 05, 10, 11 and 13 pass their self-checks against the live server; wrong ones do not."""

from __future__ import annotations

import time

from helpers.exercises.limits import check_batches
from helpers.exercises.retries import check_retry_decisions
from helpers.exercises.types_names import CASES, check_type_predictions
from helpers.exercises.verdicts import check_one_change
from helpers.runs import metric_history
from tests.solutions import load_solution


def test_05_solution_passes_and_is_stored(fresh_run: dict) -> None:
    data = load_solution("05_verdicts").data(fresh_run["run_id"])
    feedback = check_one_change(data, fresh_run["run_id"])
    assert feedback.passed, str(feedback)
    assert feedback.exchange.request.header("Content-type") == "application/json"
    assert [p["value"] for p in metric_history(fresh_run["run_id"], "some_metric")] == [0.99]


def test_05_refuses_placeholders_changes_and_seconds(fresh_run: dict) -> None:
    run_id = fresh_run["run_id"]
    base = {"run_uuid": run_id, "key": "some_metric", "value": 0.99}
    assert "placeholder" in str(check_one_change({**base, ...: ...}, run_id))
    assert "you changed value" in str(check_one_change({**base, "value": 1, "timestamp": 1}, run_id))
    assert "exactly one" in str(check_one_change({**base, "timestamp": 1, "step": 1}, run_id))
    wrong = check_one_change({**base, "step": 1}, run_id)  # a field, but not the missing one
    assert not wrong.passed and wrong.exchange.status == 400 and "'timestamp'" in str(wrong)
    seconds = check_one_change({**base, "timestamp": int(time.time())}, run_id)
    assert not seconds.passed and "1970" in str(seconds)


def test_10_solution_matches_the_live_server(fresh_run: dict) -> None:
    predictions = load_solution("10_types_and_names").PREDICTIONS
    feedback = check_type_predictions(predictions, fresh_run["run_id"])
    assert feedback.passed, str(feedback)
    flipped = {k: (400 if v == 200 else 200) for k, v in predictions.items()}
    wrong = check_type_predictions(flipped, fresh_run["run_id"])
    assert not wrong.passed and str(wrong).splitlines()[0].endswith(f"0 of {len(CASES)} right.")


def test_11_solution_stores_every_point_in_three_requests(fresh_run: dict) -> None:
    points = [{"key": "loss", "value": 0.5, "timestamp": int(time.time() * 1000), "step": i}
              for i in range(2500)]
    feedback = check_batches(points, load_solution("11_limits_params_ids").SIZE, fresh_run["run_id"])
    assert feedback.passed, str(feedback)
    assert "in 3 requests" in str(feedback)
    assert len(metric_history(fresh_run["run_id"], "loss")) == 2500


def test_11_too_big_and_too_small(fresh_run: dict) -> None:
    points = [{"key": "l", "value": 0.5, "timestamp": int(time.time() * 1000), "step": i}
              for i in range(1001)]
    too_big = check_batches(points, 1001, fresh_run["run_id"])
    assert not too_big.passed and too_big.exchange.status == 400
    small = check_batches(points[:20], 10, fresh_run["run_id"])
    assert not small.passed and "bigger batches" in str(small)


def test_13_solution_and_a_wrong_decision() -> None:
    decisions = load_solution("13_500_for_400").DECISIONS
    assert check_retry_decisions(decisions).passed
    wrong = check_retry_decisions({**decisions, "A": True})
    assert not wrong.passed
    assert "A (log-metric with a list as value -> 500 HTML page): you said True" in str(wrong)
