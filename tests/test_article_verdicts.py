"""The article's six requests go out byte for byte as written; the verdicts come from live answers.

Ground truth is the session's real MLflow server. The expected verdicts below are what the issue
measured on MLflow 3.17.2 by hand; the README's headline table must equal a fresh live run.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import requests

from helpers import verdicts
from helpers.runs import metric_history

ROOT = Path(__file__).resolve().parents[1]
ARTICLE = Path("/work/shared/reference/article-mlflow-400.md")


@pytest.fixture(scope="module")
def live(server) -> list[verdicts.Verdict]:
    from helpers import runs

    return verdicts.collect(runs.new_run("test-verdicts").run_id, int(time.time() * 1000))


def test_the_six_requests_are_the_articles_bytes() -> None:
    six = verdicts.article_requests("RUN")
    assert list(six) == ["1a", "1b", "2a", "2b", "3a", "3b"]
    assert six["1a"].headers == {}
    assert all(six[k].headers == {"Content-type": "application/json"} for k in ["1b", "2a", "2b", "3a", "3b"])
    assert six["1b"].data == '{"run_uuid": "RUN", "key": "some_metric", "value": 0.99}'
    assert six["2a"].data == '{run_uuid:"RUN","key":"some_metric","value":0.99}'
    assert json.loads(six["3a"].data)["run_uuid"] == "this_is_not_a_real_uuid"
    assert all(p.as_written for p in six.values())


def test_the_article_text_has_these_strings() -> None:
    """Guards the constants against the article itself when the reference copy is present."""
    if not ARTICLE.exists():
        pytest.skip("the article's reference copy is not on this machine")
    text = ARTICLE.read_text()
    for piece in [verdicts.ARTICLE_MALFORMED, "headers = {'Content-type': 'application/json'}",
                  '"run_uuid": "this_is_not_a_real_uuid"', "requests.post(url, data=json.dumps(data))",
                  "/api/2.0/mlflow/runs/log-metric", '"key": "some_metric"', '"value": 0.99']:
        assert piece in text, piece


def test_send_puts_the_same_bytes_on_the_wire_as_requests_post(server, fresh_run) -> None:
    planned = verdicts.article_requests(fresh_run["run_id"])["1b"]
    exchange = verdicts.send_planned(planned)
    plain = requests.Request("POST", exchange.request.url, data=planned.data,
                             headers=planned.headers).prepare()
    assert exchange.request.body == plain.body.encode()
    assert exchange.request.header("Content-type") == "application/json"


def test_every_article_request_gets_400_on_this_server(server, fresh_run) -> None:
    answers = {k: verdicts.send_planned(p) for k, p in verdicts.article_requests(fresh_run["run_id"]).items()}
    assert {k: a.status for k, a in answers.items()} == dict.fromkeys(answers, 400)
    assert answers["1a"].message == "Bad Request. Content-Type header is missing."
    assert "'run_id'" in answers["2a"].message
    for label in ["1b", "2b", "3a", "3b"]:
        assert "'timestamp'" in answers[label].message
    assert metric_history(fresh_run["run_id"], "some_metric") == []  # nothing stored


def test_verdicts_match_the_measurements(live) -> None:
    got = {v.claim.number: v.verdict for v in live}
    assert got == {1: "holds", 2: "wrong", 3: "holds", 4: "holds", 5: "holds", 6: "wrong",
                   7: "holds for another reason", 8: "wrong", 9: "wrong", 10: "wrong", 11: "holds"}
    by_number = {v.claim.number: v for v in live}
    assert by_number[8].exchanges[0].status == 404
    assert [x.status for x in by_number[3].exchanges] == [200, 200]  # Content-type == Content-Type


def test_the_rule_can_say_each_verdict() -> None:
    """The kit's rule on made-up answers: status first, then the reason."""
    from helpers.wire import Exchange, SentRequest

    def answer(status: int, message: str) -> Exchange:
        body = json.dumps({"error_code": "X", "message": message}).encode()
        return Exchange(SentRequest("POST", "http://127.0.0.1:1/x", (), b""), status, "",
                        (("Content-Type", "application/json"),), body, 0.0)

    claim = verdicts.CLAIMS[0]  # no header -> 400 about Content-Type
    assert verdicts.judge(claim, {"1a": answer(400, "Content-Type header is missing")}).verdict == "holds"
    assert verdicts.judge(claim, {"1a": answer(400, "timestamp")}).verdict == "holds for another reason"
    assert verdicts.judge(claim, {"1a": answer(200, "")}).verdict == "wrong"


def test_readme_headline_table_is_the_live_table(live) -> None:
    readme = (ROOT / "README.md").read_text()
    assert verdicts.readme_block(live) in readme, (
        "README's verdict table differs from a live run: refresh it with "
        "`python -m helpers.verdicts --write README.md`")
