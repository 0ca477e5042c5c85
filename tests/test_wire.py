"""`send()` records exactly what crossed the wire; `to_curl()` sends the same bytes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.errors import ServerUnreachable
from helpers.processes import free_port
from helpers.wire import send
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


def _run_curl(command: str) -> None:
    # Through bash's stdin, as a pasted command: a long command is no single argument then.
    done = subprocess.run(["bash"], input=command.encode(), capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode(errors="replace")


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
@pytest.mark.parametrize("body", [
    b'{"a": "nul\x00here"}',  # a NUL byte: no shell argument can hold it
    b"@/etc/hostname",  # a leading @: curl would upload that file instead
    json.dumps({"v": "x" * 200_000}).encode(),  # > 128 KiB: "Argument list too long" inline
    b"100% \\x41 %s $(echo no) `id` 'q' \"d\"\n\r\n",  # printf and shell metacharacters
    "caf\u00e9 \u2713".encode(),
    b"\xff\xfe\x00\x01" * 1000,
], ids=["nul", "leading-at", "large", "metachars", "utf8", "binary"])
def test_curl_reproduces_any_body_byte_for_byte(echo: RecordingServer, body: bytes) -> None:
    exchange = send(f"{echo.url}/api/x", headers={"Content-Type": "application/json"}, data=body)
    assert echo.received[-1].body == body
    _run_curl(exchange.to_curl())
    by_curl = echo.received[-1]
    assert len(echo.received) == 2
    assert by_curl.body == body
    assert by_curl.headers.get("Content-Type") == "application/json"


def test_curl_inline_stays_readable_for_ordinary_json(echo: RecordingServer) -> None:
    exchange = send(f"{echo.url}/api/x", json={"a": 1})
    assert exchange.to_curl().endswith("""--data-binary '{"a": 1}'""")


SECRET_CASES = [
    ("X-Auth-Token", "tok-aaa111"), ("Private-Token", "tok-bbb222"),
    ("X-Databricks-Token", "dapi-ccc333"), ("Authorization", "Bearer tok-ddd444"),
    ("Cookie", "session=tok-eee555"), ("X-API-Key", "tok-fff666"),
]


def test_token_like_headers_query_and_body_fields_are_masked(echo: RecordingServer) -> None:
    body = json.dumps({"run_id": "r1", "key": "k", "password": "pw-ggg777",
                       "nested": {"client_secret": "cs-hhh888"}, "page_token": "keep-me"})
    exchange = send(f"{echo.url}/api?apikey=ak-iii999&client_secret=cs-jjj000&x=1",
                    headers={**dict(SECRET_CASES), "Content-Type": "application/json"},
                    data=body)
    received = echo.received[-1]
    assert received.body == body.encode()  # the bytes sent are never masked
    assert received.headers["X-Auth-Token"] == "tok-aaa111"
    secrets = [v.split()[-1].split("=")[-1] for _, v in SECRET_CASES] + [
        "pw-ggg777", "cs-hhh888", "ak-iii999", "cs-jjj000"]
    renderings = {"curl": exchange.to_curl(), "text": exchange.to_text(),
                  "html": exchange._repr_html_(), "repr": repr(exchange.request)}
    for name, shown in renderings.items():
        leaked = [s for s in secrets if s in shown]
        assert not leaked, f"{name} shows {leaked}:\n{shown}"
    assert '"password": "****"' in exchange.to_text()
    assert "keep-me" in exchange.to_text()  # MLflow's page_token is no secret
    assert "x=1" in exchange.to_curl()


def test_url_credentials_are_masked_and_not_put_in_host(echo: RecordingServer) -> None:
    url = echo.url.replace("http://", "http://alice:Secret99@") + "/api"
    exchange = send(url, method="GET")
    assert echo.received[-1].headers["Host"] == echo.url.split("//")[1]  # what went out
    assert exchange.request.header("Host") == echo.url.split("//")[1]  # what is recorded
    for shown in (exchange.to_curl(), exchange.to_text(), exchange._repr_html_(),
                  repr(exchange.request), repr(exchange)):
        assert "Secret99" not in shown


def test_wire_does_not_import_display() -> None:
    code = ("import sys, helpers.wire; "
            "assert 'helpers.display' not in sys.modules, 'wire imported display'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    source = (Path(__file__).resolve().parents[1] / "helpers" / "wire.py").read_text()
    assert "from helpers.display" not in source and "import display" not in source


def test_loopback_bypasses_a_configured_proxy(echo: RecordingServer,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # A proxy that answers nothing: with it in the environment, loopback must still work.
    dead = f"http://127.0.0.1:{free_port()}"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, dead)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    exchange = send(f"{echo.url}/api", json={"a": 1})
    assert exchange.status == 200 and echo.received[-1].path == "/api"


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
