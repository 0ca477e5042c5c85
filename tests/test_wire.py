"""`send()` records exactly what crossed the wire; `to_curl()` sends the same bytes."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from helpers.server import free_port
from helpers.wire import ServerUnreachable, send
from tests.loopback import RecordingServer


def test_body_bytes_are_preserved_exactly(echo: RecordingServer) -> None:
    raw = b'{"key": "caf\xc3\xa9", "value": 1}\x00\xff'
    exchange = send(f"{echo.url}/api", headers={"Content-Type": "application/json"}, data=raw)
    assert echo.received[-1].body == raw
    assert exchange.request.body == raw
    assert exchange.request.header("content-type") == "application/json"


def test_missing_content_type_stays_missing(echo: RecordingServer) -> None:
    exchange = send(f"{echo.url}/api", data=json.dumps({"a": 1}))
    assert "Content-Type" not in echo.received[-1].headers
    assert exchange.request.header("Content-Type") is None
    assert "Content-Type: (not sent)" in exchange.to_text()


def test_json_argument_sets_the_header_like_requests(echo: RecordingServer) -> None:
    exchange = send(f"{echo.url}/api", json={"a": 1})
    assert echo.received[-1].headers["Content-Type"] == "application/json"
    assert json.loads(exchange.request.body) == {"a": 1}


def test_header_given_as_none_is_not_sent(echo: RecordingServer) -> None:
    send(f"{echo.url}/api", json={"a": 1}, headers={"Content-Type": None})
    assert "Content-Type" not in echo.received[-1].headers


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
@pytest.mark.parametrize("headers, body", [
    ({}, json.dumps({"run_id": "r", "value": 0.5})),
    ({"Content-Type": "application/json; charset=utf-8"}, '{"a": "it\'s"}'),
    ({"Content-Type": "text/plain"}, b"\x00\x01binary\xff"),
])
def test_curl_command_sends_the_same_request(echo: RecordingServer, headers, body) -> None:
    exchange = send(f"{echo.url}/api/x?y=1", headers=headers, data=body)
    by_send = echo.received[-1]
    subprocess.run(["bash", "-c", exchange.to_curl()], check=True, capture_output=True, timeout=20)
    by_curl = echo.received[-1]
    assert by_curl is not by_send
    assert (by_curl.method, by_curl.path, by_curl.body) == (by_send.method, by_send.path, by_send.body)
    assert by_curl.headers.get("Content-Type") == by_send.headers.get("Content-Type")


def test_secrets_are_masked_everywhere(echo: RecordingServer) -> None:
    exchange = send(f"{echo.url}/api?token=tok-123&x=1",
                    headers={"Authorization": "Bearer s3cr3t-value", "X-API-Key": "k-999"},
                    json={"a": 1})
    assert echo.received[-1].headers["Authorization"] == "Bearer s3cr3t-value"  # really sent
    for shown in (exchange.to_curl(), exchange.to_text(), exchange._repr_html_(), repr(exchange)):
        assert "s3cr3t" not in shown and "k-999" not in shown and "tok-123" not in shown


def test_html_error_page_is_recognised(echo: RecordingServer) -> None:
    exchange = send(f"{echo.url}/html", method="GET")
    assert (exchange.status, exchange.body_kind, exchange.error_code) == (404, "html", None)
    assert "HTML page" in exchange.to_text()


def test_empty_and_plain_text_responses(echo: RecordingServer) -> None:
    empty = send(f"{echo.url}/empty", method="GET")
    assert (empty.status, empty.body_kind, empty.message) == (204, "empty", None)
    proxy = send(f"{echo.url}/proxy", method="GET")
    assert (proxy.status, proxy.body_kind) == (502, "text")
    assert proxy.message == "Bad Gateway: upstream closed the connection"


def test_refused_connection_is_one_plain_sentence() -> None:
    url = f"http://127.0.0.1:{free_port()}/api/2.0/mlflow/runs/log-metric"
    with pytest.raises(ServerUnreachable) as caught:
        send(url, json={})
    message = str(caught.value)
    assert url in message and "python -m helpers serve" in message and "\n" not in message


@pytest.mark.parametrize("bad", ["htp://127.0.0.1:5000/x", "http://"])
def test_mistyped_url_is_one_plain_sentence(bad: str) -> None:
    with pytest.raises(ServerUnreachable) as caught:
        send(bad, json={})
    assert "\n" not in str(caught.value) and "http" in str(caught.value)


def test_mlflow_json_error_is_parsed(server_url: str, fresh_run: dict) -> None:
    exchange = send("/api/2.0/mlflow/runs/log-metric",
                    data=json.dumps({"run_id": fresh_run["run_id"], "key": "k", "value": 1,
                                     "timestamp": 1}))
    assert exchange.request.url.startswith(server_url)
    assert exchange.status == 400
    assert exchange.error_code == "INVALID_PARAMETER_VALUE"
    assert exchange.message == "Bad Request. Content-Type header is missing."
    assert exchange.body_kind == "mlflow-json"
