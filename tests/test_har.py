"""The recorder's HAR 1.2 export: required fields present, readable by a real HAR library,
secrets masked, bodies and statuses as they crossed the wire."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from helpers import har
from helpers.recorder import Recorder

# HAR 1.2 (softwareishard.com/blog/har-12-spec): the fields each object must have.
REQUIRED = {
    "log": {"version", "creator", "entries"},
    "creator": {"name", "version"},
    "entry": {"startedDateTime", "time", "request", "response", "cache", "timings"},
    "request": {"method", "url", "httpVersion", "cookies", "headers", "queryString",
                "headersSize", "bodySize"},
    "response": {"status", "statusText", "httpVersion", "cookies", "headers", "content",
                 "redirectURL", "headersSize", "bodySize"},
    "content": {"size", "mimeType"},
    "timings": {"send", "wait", "receive"},
    "postData": {"mimeType", "text"},
}


def _record_session(server_url: str, run_id: str) -> Recorder:
    with Recorder(upstream=server_url) as recorder:
        url = recorder.url + "/api/2.0/mlflow"
        requests.post(f"{url}/runs/log-metric", timeout=30,
                      json={"run_id": run_id, "key": "acc", "value": 0.9, "timestamp": 1})
        requests.post(f"{url}/runs/log-metric", data=b'{"run_id": "' + run_id.encode() + b'"}',
                      timeout=30)  # no Content-Type: 400
        requests.get(f"{url}/runs/get", params={"run_id": run_id, "token": "s3cret"},
                     headers={"Authorization": "Bearer s3cret"}, timeout=30)
        requests.post(f"{url}/runs/set-tag", data=b"\xff\xfe not utf-8",
                      headers={"Content-Type": "application/json"}, timeout=30)
    return recorder


def test_export_has_every_required_har_field_and_opens_in_haralyzer(
        server_url: str, fresh_run: dict, tmp_path: Path) -> None:
    before = datetime.now(timezone.utc)
    recorder = _record_session(server_url, fresh_run["run_id"])
    after = datetime.now(timezone.utc)
    path = recorder.save_har(tmp_path / "session.har")
    text = path.read_text(encoding="utf-8")
    log = json.loads(text)["log"]

    assert REQUIRED["log"] <= set(log) and log["version"] == "1.2"
    assert REQUIRED["creator"] <= set(log["creator"])
    assert len(log["entries"]) == 4
    for entry in log["entries"]:
        assert REQUIRED["entry"] <= set(entry)
        assert REQUIRED["request"] <= set(entry["request"])
        assert REQUIRED["response"] <= set(entry["response"])
        assert REQUIRED["content"] <= set(entry["response"]["content"])
        assert REQUIRED["timings"] <= set(entry["timings"])
        datetime.fromisoformat(entry["startedDateTime"])  # ISO 8601
        if "postData" in entry["request"]:
            assert REQUIRED["postData"] <= set(entry["request"]["postData"])

    # A HAR consumer library reads it back: the same requests, statuses and bodies.
    from haralyzer import HarParser

    parsed = HarParser(json.loads(text))
    entries = [e for page in [parsed] for e in page.har_data["entries"]]
    assert [e["request"]["method"] for e in entries] == ["POST", "POST", "GET", "POST"]
    assert [e["response"]["status"] for e in entries] == [200, 400, 200, 400]
    assert parsed.creator["name"] == "MLflow 400 Lab"

    first, no_type, with_secret, binary = log["entries"]
    assert json.loads(first["request"]["postData"]["text"])["key"] == "acc"
    assert first["request"]["postData"]["mimeType"] == "application/json"
    assert no_type["request"]["postData"]["mimeType"] == ""
    assert json.loads(no_type["response"]["content"]["text"])["message"] == \
        "Bad Request. Content-Type header is missing."
    # Secrets never reach the file: header and query values are masked.
    assert "s3cret" not in text
    headers = {h["name"].lower(): h["value"] for h in with_secret["request"]["headers"]}
    assert headers["authorization"] == "****"
    assert {"name": "token", "value": "****"} in with_secret["request"]["queryString"]
    # Bytes that are not UTF-8 are kept, in base64.
    assert base64.b64decode(binary["request"]["postData"]["text"]) == b"\xff\xfe not utf-8"
    # Each entry starts when its exchange did (not at the export), in the order they were sent.
    starts = [datetime.fromisoformat(e["startedDateTime"]) for e in log["entries"]]
    assert starts == sorted(starts) and before <= starts[0] and starts[-1] <= after
    assert not any("comment" in e for e in log["entries"])


def test_known_start_times_are_used(server_url: str) -> None:
    with Recorder(upstream=server_url) as recorder:
        requests.get(recorder.url + "/health", timeout=30)
    when = datetime.fromisoformat("2026-01-02T03:04:05.678+00:00")
    doc = har.to_har(recorder.exchanges, started=[when])
    entry = doc["log"]["entries"][0]
    assert entry["startedDateTime"] == "2026-01-02T03:04:05.678+00:00"
    assert "comment" not in entry
    assert entry["response"]["status"] == 200


@pytest.mark.browser
def test_chromium_replays_the_export(server_url: str, fresh_run: dict, tmp_path: Path) -> None:
    """A real HAR consumer: Playwright's Chromium serves requests from the file (route_from_har).
    The run is deleted after recording, so the live server and the file now disagree: the page
    must show the recorded answer."""
    from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, _require_browser

    _require_browser()
    from playwright.sync_api import sync_playwright

    run_id = fresh_run["run_id"]
    get_url = f"{server_url}/api/2.0/mlflow/runs/get?run_id={run_id}"
    with Recorder(upstream=server_url) as recorder:
        requests.get(recorder.url + f"/api/2.0/mlflow/runs/get?run_id={run_id}", timeout=30)
    path = recorder.save_har(tmp_path / "replay.har")
    requests.post(f"{server_url}/api/2.0/mlflow/runs/delete", json={"run_id": run_id}, timeout=30)
    live = requests.get(get_url, timeout=30).json()["run"]["info"]["lifecycle_stage"]
    assert live == "deleted"

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            context.route_from_har(str(path), not_found="abort")
            page = context.new_page()
            response = page.goto(get_url)
            assert response is not None and response.status == 200
            replayed = json.loads(page.inner_text("body"))
        finally:
            browser.close()
    assert replayed["run"]["info"]["run_id"] == run_id
    assert replayed["run"]["info"]["lifecycle_stage"] == "active"  # from the file, not the server


def test_bodies_and_redirect_target_are_masked(server_url: str, tmp_path: Path) -> None:
    """Issue 22 (1): a users/create body, a nested password, a form body, a response body and a
    redirect's Location reach the HAR file masked, as in curl, text and HTML."""
    from helpers.wire import Exchange, SentRequest

    with Recorder(upstream=server_url) as recorder:
        url = recorder.url + "/api/2.0/mlflow"
        requests.post(f"{url}/users/create", timeout=30,
                      json={"username": "ana", "password": "PWSECRET4"})
        requests.post(f"{url}/runs/log-param", timeout=30,
                      json={"run_id": "r", "key": "k", "value": "v",
                            "extra": {"auth": {"password": "NESTSECRET5"}},
                            "password_list": ["LISTSECRET6", "LISTSECRET7"]})
        requests.post(f"{url}/runs/log-param", data="user=ana&password=FORMSECRET8", timeout=30,
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    redirect = Exchange(
        SentRequest("GET", server_url + "/signin", (), b""), 302, "Found",
        (("Location", "http://ana:RE/DIR#SECRET9@127.0.0.1:5000/home?sig=SASSECRET10&jwt=JWT11"),
         ("Content-Type", "application/json")),
        b'{"token": "RESPSECRET12", "user": {"password": "RESPSECRET13"}}', 1.0)
    path = har.save([*recorder.exchanges, redirect], tmp_path / "secrets.har")
    text = path.read_text(encoding="utf-8")
    for secret in ("PWSECRET4", "NESTSECRET5", "LISTSECRET6", "LISTSECRET7", "FORMSECRET8", "RE/DIR",
                   "SECRET9", "SASSECRET10", "JWT11", "RESPSECRET12", "RESPSECRET13"):
        assert secret not in text, secret
    entries = json.loads(text)["log"]["entries"]
    assert json.loads(entries[0]["request"]["postData"]["text"]) == {
        "username": "ana", "password": "****"}  # everything else exactly as sent
    assert entries[2]["request"]["postData"]["text"] == "user=ana&password=****"
    assert entries[3]["response"]["redirectURL"] == (
        "http://****@127.0.0.1:5000/home?sig=****&jwt=****")


def test_every_entry_replays_from_the_har_alone(server_url: str, fresh_run: dict,
                                                 tmp_path: Path) -> None:
    """Record a 200, a 400 with and one without Content-Type and a 404 through the recorder,
    export, then send each entry again with `requests`, reading only the HAR file: the live
    server answers each with the recorded status and message."""
    run_id = fresh_run["run_id"]
    upstream = urlsplit(server_url).netloc
    with Recorder(upstream=server_url) as recorder:
        url = recorder.url + "/api/2.0/mlflow"
        requests.post(f"{url}/runs/log-parameter", json={"run_id": run_id, "key": "k", "value": "v"},
                      timeout=30)  # 200
        requests.post(f"{url}/runs/log-metric", json={"run_id": run_id, "key": "m", "value": 1},
                      timeout=30)  # 400: no timestamp
        requests.post(f"{url}/runs/log-metric", data=json.dumps(
            {"run_id": run_id, "key": "m", "value": 1, "timestamp": 1}), timeout=30)  # 400: no CT
        requests.get(f"{url}/runs/get", params={"run_id": "0" * 32}, timeout=30)  # 404
    path = recorder.save_har(tmp_path / "replay.har")

    entries = json.loads(path.read_text(encoding="utf-8"))["log"]["entries"]  # the file alone
    assert [e["response"]["status"] for e in entries] == [200, 400, 400, 404], \
        [e["response"]["content"]["text"][:200] for e in entries]
    replayed = []
    with requests.Session() as session:
        session.trust_env = False  # loopback: never through a proxy
        for entry in entries:
            sent = entry["request"]
            headers = {h["name"]: h["value"] for h in sent["headers"]
                       if h["name"].lower() != "content-length"}  # requests counts the body
            # The Host the server saw, not the recorder's: replayable as it stands.
            assert headers["Host"] == upstream
            body = sent.get("postData", {}).get("text", "").encode() or None
            prepared = requests.Request(sent["method"], sent["url"], headers=headers,
                                        data=body).prepare()  # adds no header of its own
            answer = session.send(prepared, timeout=30, allow_redirects=False)
            replayed.append((answer.status_code, answer.json().get("message")))
    recorded = [(e["response"]["status"], json.loads(e["response"]["content"]["text"] or "{}")
                 .get("message")) for e in entries]
    assert replayed == recorded
    no_type = entries[2]["request"]
    assert not any(h["name"].lower() == "content-type" for h in no_type["headers"])
    assert recorded[2][1] == "Bad Request. Content-Type header is missing."
    assert "no Content-Type header was sent" in no_type["postData"]["comment"]
    assert "postData" not in entries[3]["request"]
