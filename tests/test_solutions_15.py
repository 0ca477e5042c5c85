"""The worked solution of notebook 15 passes its self-check; the colleague's request and
half-fixed versions do not, and the feedback names what the live server really stored."""

from __future__ import annotations

import time

from helpers.exercises.catch_it import check_batch, colleague_batch
from tests.solutions import load_solution


def test_solution_passes(server_url: str) -> None:
    feedback = check_batch(load_solution("15_catch_it_before_the_server").fixed_batch())
    assert feedback.passed, str(feedback)
    assert feedback.exchange.status == 200


def test_colleagues_request_is_accepted_but_stores_something_else(server_url: str) -> None:
    feedback = check_batch(colleague_batch())
    text = str(feedback)
    assert not feedback.passed
    assert feedback.exchange.status == 200  # the server took it without a word
    assert "looks like seconds" in text and "Did you mean 'value'?" in text
    # read back from the live run: the three silent traps really happened
    assert "loss is dated 1970" in text
    assert "learning_rate = ''" in text
    assert "no tag 'team'" in text


def test_half_fixed_and_refused_versions_are_explained(server_url: str) -> None:
    good = load_solution("15_catch_it_before_the_server").fixed_batch()
    good["tag"] = good.pop("tags")  # a misspelled list name
    typo = check_batch(good)
    assert not typo.passed and "Did you mean 'tags'?" in str(typo)
    assert "no tag 'team'" in str(typo)

    refused = check_batch({"metrics": [{"name": "loss", "value": 0.25,
                                        "timestamp": int(time.time() * 1000)}]})
    assert not refused.passed and refused.exchange.status == 400
    assert "the server answered 400 Bad Request" in str(refused)
    assert "metrics[0].key" in str(refused)


def test_placeholders_and_run_id_are_refused_politely() -> None:
    assert "placeholder" in str(check_batch({"metrics": ..., "params": [], "tags": []}))
    assert "leave run_id out" in str(check_batch({"run_id": "x", "metrics": []}))
