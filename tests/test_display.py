"""Renderings of an exchange: deterministic text for nbval, escaped HTML for the notebook."""

from __future__ import annotations

import json
import time

from helpers.display import Table, exchange_html, exchange_text
from helpers.wire import send


def _log_metric(run_id: str, **kwargs):
    body = {"run_id": run_id, "key": "<b>k</b>", "value": 1, "timestamp": 1_700_000_000_000}
    return send("/api/2.0/mlflow/runs/log-metric", data=json.dumps(body), **kwargs)


def test_text_form_is_deterministic_and_has_no_timings(fresh_run: dict) -> None:
    first = _log_metric(fresh_run["run_id"])
    time.sleep(1.1)  # the Date header changes; the text must not
    second = _log_metric(fresh_run["run_id"])
    assert exchange_text(first) == exchange_text(second)
    assert f"{first.elapsed_ms}" not in exchange_text(first)  # timings never reach the text
    assert "400 Bad Request" in exchange_text(first)
    assert "Content-Type header is missing" in exchange_text(first)


def test_html_has_a_status_badge_and_escapes_bodies(fresh_run: dict) -> None:
    rendered = exchange_html(_log_metric(fresh_run["run_id"]))
    assert 'class="lab400-status"' in rendered and ">400 Bad Request<" in rendered
    assert "<b>k</b>" not in rendered and "&lt;b&gt;k&lt;/b&gt;" in rendered


def test_success_shows_ok(fresh_run: dict) -> None:
    body = {"run_id": fresh_run["run_id"], "key": "k", "value": 1, "timestamp": 1_700_000_000_000}
    ok = send("/api/2.0/mlflow/runs/log-metric", json=body)
    assert ok.status == 200
    assert "<<< 200 OK" in exchange_text(ok)
    assert "Content-Type: application/json" in exchange_text(ok)


def test_table_text_and_html() -> None:
    table = Table([["400", "a<b"], ["200", None]], ["status", "note"])
    assert repr(table).splitlines() == ["status | note", "-------+-----", "400    | a<b", "200    |"]
    assert "a&lt;b" in table._repr_html_()


def test_the_answer_summary_masks_credentials_the_server_quotes() -> None:
    """A server (or a proxy in front of it) may quote a URL with its password; the summary the lab
    speaks and shows goes through the masking rule, MLflow JSON or plain text alike."""
    from helpers.display import response_summary
    from helpers.lab_access import answer_sentence
    from helpers.wire import Exchange, SentRequest

    quoted = "could not reach postgresql://ana:s3cret-pw@db:5432/room"
    for headers, body in (((("Content-Type", "application/json"),),
                           json.dumps({"error_code": "X", "message": quoted}).encode()),
                          ((("Content-Type", "text/plain"),), quoted.encode())):
        answer = Exchange(SentRequest("POST", "http://127.0.0.1:1/x", (), b""), 503, "Service Unavailable",
                          headers, body, 0.0)
        for shown in (response_summary(answer), answer_sentence(1, answer)):
            assert "could not reach postgresql://" in shown and "s3cret-pw" not in shown, shown
