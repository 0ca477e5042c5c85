"""Worked solutions of 05, 10, 11 and 13 pass their self-checks against the live server; wrong ones do not."""

from __future__ import annotations

import time

import requests

from helpers.exercises.limits import check_batches
from helpers.exercises.retries import check_retry_decisions
from helpers.exercises.types_names import CASES, check_type_predictions
from helpers.exercises.verdicts import check_verdicts
from helpers.runs import metric_history
from tests.solutions import load_solution


def test_05_solution_matches_the_rule_on_live_answers(fresh_run: dict) -> None:
    feedback = check_verdicts(load_solution("05_verdicts").PREDICTIONS, fresh_run["run_id"])
    assert feedback.passed, str(feedback)
    assert str(feedback).splitlines()[0].endswith("all 3 verdicts match the rule on live answers.")


def test_05_the_claims_get_these_answers_from_the_server(server_url: str, fresh_run: dict) -> None:
    """Ground truth from the server itself, with plain requests: what each claim's request gets."""
    url = f"{server_url}/api/2.0/mlflow/runs/log-metric"
    point = {"run_id": fresh_run["run_id"], "key": "loss", "value": 0.5, "timestamp": int(time.time() * 1000)}
    a = requests.post(url, json={**point, "step": -1}, timeout=30)
    b = requests.post(url, json={**point, "key": "loss?"}, timeout=30)
    c = requests.post(url, data=str(point), headers={"Content-Type": "application/json"}, timeout=30)
    assert a.status_code == 200
    assert b.status_code == 400 and "loss?" in b.json()["message"]
    assert c.status_code == 400 and "'run_id'" in c.json()["message"] and "JSON" not in c.json()["message"]
    assert sorted(p["step"] for p in metric_history(fresh_run["run_id"], "loss")) == [-1]


def test_05_refuses_placeholders_and_odd_labels_and_says_why(fresh_run: dict) -> None:
    run_id = fresh_run["run_id"]
    assert "placeholder" in str(check_verdicts({"A": ..., "B": ..., "C": ...}, run_id))
    assert "C is missing" in str(check_verdicts({"A": "confirmed", "B": "confirmed"}, run_id))
    assert "'holds' is not among them" in str(check_verdicts({"A": "holds", "B": "confirmed",
                                                                "C": "confirmed"}, run_id))
    wrong = check_verdicts({"A": "confirmed", "B": "Confirmed ", "C": "confirmed"}, run_id)
    assert not wrong.passed
    assert str(wrong).splitlines()[0].endswith("1 of 3 verdicts match the rule on live answers.")
    assert "→ right status, other cause: 400, but MLflow never says JSON" in str(wrong)


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
