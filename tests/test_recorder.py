"""The recording proxy, live: it records what clients really sent, changes nothing on the way,
attaches preflight's verdict, and leaves no thread or port behind."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests

from helpers import runs
from helpers.errors import RecorderError
from helpers.recorder import Recorder
from helpers.wire import send

LOG_METRIC = "/api/2.0/mlflow/runs/log-metric"
JSON = {"Content-Type": "application/json"}


def _metric(run_id: str, **extra: object) -> dict:
    return {"run_id": run_id, "key": "accuracy", "value": 0.5,
            "timestamp": runs.now_ms(), "step": 1, **extra}


def test_records_exactly_what_the_client_sent(server_url: str, fresh_run: dict) -> None:
    body = json.dumps(_metric(fresh_run["run_id"])).encode()
    with Recorder(upstream=server_url) as recorder:
        response = requests.post(recorder.url + LOG_METRIC, data=body,
                                 headers={**JSON, "X-Trace": "abc"})
        proxy_address = f"127.0.0.1:{recorder.port}"
    (record,) = recorder.records
    sent = response.request  # what requests itself says it put on the wire
    expected = (("Host", proxy_address), *sent.headers.items())
    assert record.exchange.request.headers == expected
    assert record.exchange.request.body == body == sent.body
    assert record.exchange.request.method == "POST"
    assert record.exchange.request.url == server_url + LOG_METRIC
    assert (response.status_code, record.status) == (200, 200)


def test_answers_pass_through_unchanged(server_url: str, fresh_run: dict) -> None:
    cases = [
        ("POST", LOG_METRIC, {}, json.dumps(_metric(fresh_run["run_id"]))),  # 400 JSON error
        ("POST", "/api/2.0/mlflow/runs/log-metrik", JSON, "{}"),  # 404 HTML page
        ("GET", LOG_METRIC, {}, None),  # 405 HTML page
        ("POST", LOG_METRIC, JSON, json.dumps({"run_id": "no-such-run", "key": "k",
                                               "value": 1, "timestamp": runs.now_ms()})),  # 404
    ]
    with Recorder(upstream=server_url) as recorder:
        for method, path, headers, body in cases:
            direct = send(path, method=method, headers=headers, data=body, base_url=server_url)
            proxied = send(path, method=method, headers=headers, data=body,
                           base_url=recorder.url)
            assert (proxied.status, proxied.reason) == (direct.status, direct.reason), path
            assert proxied.body == direct.body, path
            assert proxied.content_type == direct.content_type, path
    assert [r.status for r in recorder.records] == [400, 404, 405, 404]
    assert [r.exchange.body for r in recorder.records][0].startswith(b'{"error_code"')


def test_a_chosen_host_header_reaches_the_server(server_url: str) -> None:
    # The proxy rewrites only its own address; MLflow's DNS-rebinding check must still fire.
    with Recorder(upstream=server_url) as recorder:
        proxied = send("/api/2.0/mlflow/experiments/search", method="GET",
                       headers={"Host": "evil.example"}, base_url=recorder.url)
    direct = send("/api/2.0/mlflow/experiments/search", method="GET",
                  headers={"Host": "evil.example"}, base_url=server_url)
    assert proxied.status == direct.status == 403
    assert proxied.body == direct.body
    assert recorder.records[0].verdict.predicted_status == 403


def test_preflight_verdicts_are_attached(server_url: str, fresh_run: dict) -> None:
    run_id = fresh_run["run_id"]
    with Recorder(upstream=server_url) as recorder:
        base = recorder.url + LOG_METRIC
        requests.post(base, data=json.dumps(_metric(run_id)))  # no Content-Type
        requests.post(base, json=_metric(run_id, timestamp=int(time.time())))  # seconds
        requests.post(base, json=_metric(run_id))  # clean
    missing, seconds, clean = recorder.records
    assert (missing.status, missing.verdict.predicted_status) == (400, 400)
    assert [p.kind for p in missing.problems()] == ["error", "status"]
    assert "Content-Type" in missing.problems()[0].text
    assert (seconds.status, seconds.verdict.predicted_status) == (200, 200)
    assert [p.kind for p in seconds.problems()] == ["warning"]
    assert "looks like seconds" in seconds.problems()[0].text
    assert (clean.status, clean.verdict.predicted_status, clean.problems()) == (200, 200, [])
    assert recorder.problems() == [missing, seconds]
    assert len(recorder.findings()) == 3
    # The server really stored the "seconds" value as milliseconds: early 1970.
    stored = sorted(int(m["timestamp"]) for m in runs.metric_history(run_id, "accuracy"))
    assert stored[0] < 10**10 < stored[1]

    report = recorder.report()
    assert report.splitlines()[0] == "3 MLflow requests recorded; 2 would be refused or misread."
    assert "[1] POST /api/2.0/mlflow/runs/log-metric -> 400 Bad Request" in report
    assert "fix: Send int(time.time() * 1000)." in report
    assert report == recorder.report()  # deterministic
    allowed = recorder.problems(allow=["looks like seconds"])
    assert allowed == [missing]
    assert "(allowed)" in recorder.report(allow=["looks like seconds"])


def test_mlflow_client_calls_are_recorded(server_url: str, fresh_run: dict,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")  # nothing leaves this machine
    from mlflow import MlflowClient

    run_id = fresh_run["run_id"]
    with Recorder(upstream=server_url) as recorder:
        client = MlflowClient(tracking_uri=recorder.url)
        client.log_metric(run_id, "accuracy", 0.99)
        client.log_param(run_id, "optimizer", "adam")
        client.set_tag(run_id, "team", "vision")
    posts = [r for r in recorder.records if r.method == "POST"]
    assert [r.path for r in posts] == ["/api/2.0/mlflow/runs/log-metric",
                                       "/api/2.0/mlflow/runs/log-parameter",
                                       "/api/2.0/mlflow/runs/set-tag"]
    assert all(r.status == 200 and r.verdict.predicted_status == 200 for r in posts)
    first = posts[0].exchange.request
    assert first.header("User-Agent").startswith("mlflow-python-client/")
    assert json.loads(first.body)["run_id"] == run_id
    data = runs.get_run(run_id, base_url=server_url)["data"]  # forwarded for real
    assert {"key": "optimizer", "value": "adam"} in data["params"]
    assert {"key": "team", "value": "vision"} in data["tags"]


def test_other_processes_and_chunked_bodies(server_url: str, fresh_run: dict) -> None:
    body = json.dumps(_metric(fresh_run["run_id"], key="loss"))
    other = json.dumps(_metric(fresh_run["run_id"], key="loss", value=0.25))
    script = ("import sys, urllib.request\n"
              "req = urllib.request.Request(sys.argv[1], data=sys.argv[2].encode(), "
              "headers={'Content-Type': 'application/json'})\n"
              "print(urllib.request.urlopen(req).status)\n")
    with Recorder(upstream=server_url) as recorder:
        out = subprocess.run([sys.executable, "-c", script, recorder.url + LOG_METRIC, body],
                             capture_output=True, text=True, timeout=60)
        chunked = requests.post(recorder.url + LOG_METRIC, headers=JSON,
                                data=iter([other[:20].encode(), other[20:].encode()]))
    assert out.stdout.strip() == "200", out.stderr
    assert chunked.status_code == 200
    by_urllib, by_chunks = recorder.records
    assert by_urllib.exchange.request.header("User-Agent").startswith("Python-urllib/")
    assert by_chunks.exchange.request.header("Transfer-Encoding") == "chunked"
    assert by_urllib.exchange.request.body == body.encode()
    assert by_chunks.exchange.request.body == other.encode()
    stored = sorted(m["value"] for m in runs.metric_history(fresh_run["run_id"], "loss"))
    assert stored == [0.25, 0.5]


def test_patch_env_points_clients_at_the_proxy_and_restores(
        server_url: str, fresh_run: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server_url)
    with Recorder(patch_env=True) as recorder:
        assert recorder.upstream == server_url  # read before the variable was changed
        assert os.environ["MLFLOW_TRACKING_URI"] == recorder.url
        answer = send(LOG_METRIC, json=_metric(fresh_run["run_id"]))  # no base_url given
    assert os.environ["MLFLOW_TRACKING_URI"] == server_url
    assert answer.status == 200 and len(recorder.records) == 1

    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    with Recorder(upstream=server_url, patch_env=True):
        assert "MLFLOW_TRACKING_URI" in os.environ
    assert "MLFLOW_TRACKING_URI" not in os.environ


def test_stops_cleanly_with_no_thread_left(server_url: str) -> None:
    before = set(threading.enumerate())
    with pytest.raises(ZeroDivisionError), Recorder(upstream=server_url) as recorder:
        port = recorder.port
        requests.get(recorder.url + "/health", timeout=10)
        1 / 0  # noqa: B018 - an exception inside the block must still stop the proxy
    assert not recorder.running
    assert set(threading.enumerate()) == before
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
    recorder.stop()  # idempotent


def test_unreachable_upstream_is_a_clear_502() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    with Recorder(upstream=dead) as recorder:
        response = requests.post(recorder.url + LOG_METRIC, json={}, timeout=30)
    assert response.status_code == 502
    assert "could not reach the MLflow server" in response.text
    assert recorder.records[0].problems()[-1].kind == "status"


def test_no_server_known_is_one_sentence(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_400_LAB_HOME", str(tmp_path))
    with pytest.raises(RecorderError, match="python -m helpers serve"):
        Recorder()


def test_a_preflight_failure_never_breaks_the_program(server_url: str, fresh_run: dict,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import helpers.recorder as recorder_module

    def broken(*args: object, **kwargs: object) -> None:
        raise ValueError("simulated preflight bug")

    monkeypatch.setattr(recorder_module, "preflight", broken)
    with Recorder(upstream=server_url) as recorder:
        response = requests.post(recorder.url + LOG_METRIC, json=_metric(fresh_run["run_id"]))
    assert response.status_code == 200  # forwarded and answered as usual
    (record,) = recorder.records
    assert record.verdict is None
    assert [p.text for p in record.problems()] == [
        "preflight could not read this request: ValueError: simulated preflight bug"]
    assert "preflight failed" in recorder.report()


def _raw_request(port: int, head: bytes, body: bytes) -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", port), timeout=10)
    conn.sendall(head + body)
    return conn


def _metric_count(server_url: str, run_id: str, key: str) -> int:
    answer = requests.get(f"{server_url}/api/2.0/mlflow/metrics/get-history",
                          params={"run_id": run_id, "metric_key": key}, timeout=10)
    return len(answer.json().get("metrics", []))


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_request_cut_short_is_never_forwarded(server_url: str, fresh_run: dict,
                                                framing: str) -> None:
    run_id = fresh_run["run_id"]
    body = json.dumps({"run_id": run_id, "key": "partial", "value": 1,
                       "timestamp": runs.now_ms()}).encode()
    # Ground truth: sent straight to MLflow, a body cut short stores nothing.
    host = server_url.split("//")[1]
    if framing == "content-length":
        head = (f"POST {LOG_METRIC} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body) + 500}\r\n\r\n").encode()
        sent = body
    else:
        head = (f"POST {LOG_METRIC} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                "Transfer-Encoding: chunked\r\n\r\n").encode()
        sent = f"{len(body):x}\r\n".encode() + body + b"\r\n"  # no final 0-size chunk
    direct = _raw_request(int(host.split(":")[1]), head, sent)
    direct.close()
    time.sleep(1)
    assert _metric_count(server_url, run_id, "partial") == 0
    with Recorder(upstream=server_url) as recorder:
        cut = _raw_request(recorder.port, head, sent)
        time.sleep(0.5)
        cut.close()  # the client hangs up before its body is complete
        time.sleep(1)
    assert recorder.records == []
    assert _metric_count(server_url, run_id, "partial") == 0


def test_leaving_the_block_is_quick_even_with_a_stalled_client(server_url: str) -> None:
    with Recorder(upstream=server_url) as recorder:
        head = (f"POST {LOG_METRIC} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n").encode()
        stalled = _raw_request(recorder.port, head, b'{"run_id": ')  # then says nothing more
        idle = socket.create_connection(("127.0.0.1", recorder.port), timeout=10)  # nothing
        time.sleep(0.3)
        started = time.monotonic()
    took = time.monotonic() - started
    stalled.close()
    idle.close()
    assert took < 2.0, f"leaving `with Recorder()` took {took:.1f} s"
    assert recorder.records == []


def test_recorded_secrets_are_masked_in_every_rendering(server_url: str) -> None:
    with Recorder(upstream=server_url) as recorder:
        requests.post(recorder.url.replace("http://", "http://alice:Secret77@") + LOG_METRIC
                      + "?apikey=ak-123456", json={"password": "pw-123456"},
                      headers={"X-Auth-Token": "tok-123456"}, timeout=10)
    exchange = recorder.exchanges[0]
    assert exchange.request.header("X-Auth-Token") == "tok-123456"  # recorded as sent
    shown = (exchange.to_curl() + exchange.to_text() + exchange._repr_html_()
             + repr(exchange.request) + recorder.report() + repr(recorder))
    for secret in ("Secret77", "ak-123456", "pw-123456", "tok-123456"):
        assert secret not in shown, secret
