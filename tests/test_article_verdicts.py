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
    yes, other, no = "confirmed", "right status, other cause", "not confirmed"
    assert got == {1: yes, 2: no, 3: yes, 4: yes, 5: other, 6: no, 7: other, 8: no, 9: no,
                   10: no, 11: yes, 12: no, 13: yes}
    by_number = {v.claim.number: v for v in live}
    assert by_number[8].exchanges[0].status == 404
    assert [x.status for x in by_number[3].exchanges] == [200, 200]  # Content-type == Content-Type
    # Row 5: MLflow names a missing run_id, exactly as for an empty body, not a parse error.
    assert by_number[5].reason == "run_id missing: the body is read as empty"
    assert {by_number[n].reason for n in (2, 6, 9, 10)} == {"timestamp missing"}
    assert by_number[8].reason == "no such run"


def test_the_summary_counts_one_cause_once(live) -> None:
    assert verdicts.summary(live) == (
        "13 claims: 5 confirmed; 2 right status, other cause; 6 not confirmed, with 3 causes "
        "behind them: timestamp missing (rows 2, 6, 9, 10); no such run (row 8); no such file in MLflow "
        "3.17.2 (row 12).")


def test_the_articles_source_pointers_are_checked_in_the_installed_mlflow() -> None:
    """The article recommends two files; the installed MLflow is the authority on both."""
    from helpers.source import mlflow_file

    missing = verdicts.judge_source_file(12, "mlflow/tracking/request_header_provider.py")
    assert not mlflow_file("tracking/request_header_provider.py").exists()
    assert missing.verdict == "not confirmed"
    assert "request_header/" in missing.answered and mlflow_file("tracking/request_header").is_dir()
    present = verdicts.judge_source_file(13, "mlflow/store/tracking/rest_store.py")
    assert present.verdict == "confirmed" and mlflow_file("store/tracking/rest_store.py").is_file()


def test_the_rule_can_say_each_verdict() -> None:
    """The kit's rule on made-up answers: status first, then the reason."""
    from helpers.wire import Exchange, SentRequest

    def answer(status: int, message: str) -> Exchange:
        body = json.dumps({"error_code": "X", "message": message}).encode()
        return Exchange(SentRequest("POST", "http://127.0.0.1:1/x", (), b""), status, "",
                        (("Content-Type", "application/json"),), body, 0.0)

    claim = verdicts.CLAIMS[0]  # no header -> 400 about Content-Type
    assert verdicts.judge(claim, {"1a": answer(400, "Content-Type header is missing")}).verdict == "confirmed"
    assert verdicts.judge(claim, {"1a": answer(400, "timestamp")}).verdict == "right status, other cause"
    assert verdicts.judge(claim, {"1a": answer(200, "")}).verdict == "not confirmed"
    row5 = verdicts.CLAIMS[4]  # a syntax error -> 400 "will break the parsing"
    parse = answer(400, "Malformed JSON: could not parse the body")
    assert verdicts.judge(row5, {"2a": parse, "{}": answer(400, "x")}).verdict == "confirmed"


def test_readme_headline_table_is_the_live_table(live) -> None:
    readme = (ROOT / "README.md").read_text()
    assert verdicts.readme_block(live) in readme, (
        "README's verdict table differs from a live run: refresh it with "
        "`python -m helpers.verdicts --write README.md`")
