"""`python -m helpers check`: real inputs in, predictions held against the live server.

Ground truth: the session's MLflow server (what it answers), the real curl binary (what a curl
command sends), http.client (what raw HTTP looks like on the wire), and Chromium (a HAR file it
records through Playwright). Nothing expected here is copied from the code under test.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from helpers.__main__ import main
from helpers.errors import KitError
from helpers.preflight_pipeline import Finding, preflight
from helpers.request_check import check, check_request, retarget
from helpers.request_fixes import apply_one, literal_body
from helpers.request_input import HttpRequest, InputError, parse_curl, parse_raw_http, read_input
from helpers.store_checks import quote_hyphenated
from helpers.wire import SentRequest, send, to_curl
from tests.check_inputs import EXPORTS
from tests.preflight_cases import CASES

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
CURL = shutil.which("curl")


def _fill(template: str, base: str, run: dict[str, str]) -> str:
    return template.format(base=base, run_id=run["run_id"], experiment_id=run["experiment_id"])


def _live(req: HttpRequest, server_url: str):
    """Send `req` exactly (no header added) to the session server; its answer."""
    target = retarget(req, server_url)
    return send(target.url, method=target.method, data=target.body, base_url=server_url,
                headers={**{k: None for k in ("Accept", "Accept-Encoding", "User-Agent",
                                              "Connection")}, **target.header_dict()})


# ------------------------------------------------------------------ curl, as exporters write it


@pytest.mark.skipif(CURL is None, reason="no curl binary to compare with")
def test_exported_commands_are_read_as_the_real_curl_sends_them(echo, fresh_run) -> None:
    for name, template in EXPORTS.items():
        command = _fill(template, echo.url, fresh_run)
        before = len(echo.received)
        subprocess.run(["bash", "-c", command.replace("curl ", "curl -o /dev/null ", 1)],
                       check=True, capture_output=True, timeout=20)
        sent = echo.received[before]
        (parsed,) = parse_curl(command)
        assert parsed.method == sent.method, name
        assert urlsplit(parsed.url).path == sent.path, name
        assert parsed.body == sent.body, name
        ours = {k.lower(): v for k, v in parsed.header_dict().items()}
        theirs = {k.lower(): v for k, v in sent.headers.items()
                  if k.lower() not in ("host", "user-agent", "content-length")}
        if "user-agent" in ours:
            assert ours.pop("user-agent") == sent.headers["User-Agent"], name
        assert ours == theirs, name


def test_exported_commands_predict_what_the_live_server_answers(server_url, fresh_run) -> None:
    seen = {}
    for name, template in EXPORTS.items():
        run = {**fresh_run, "run_id": _new_run(server_url, fresh_run)}
        (req,) = parse_curl(_fill(template, server_url, run))
        report = check_request(req, server=server_url)
        live = _live(req, server_url)
        seen[name] = (report.predicted_status, live.status)
        assert report.predicted_status == live.status, (name, report.to_text(), live.text)
        if report.verdict.expected_message is not None:
            assert report.verdict.expected_message == live.message, name
        for corrected in report.corrected:  # every corrected request works on the real server
            answer = _live(corrected, server_url)
            assert answer.status == 200, (name, answer.text)
    # the broken ones are broken, and get a corrected request
    assert seen["article"][1] == 400 and seen["python-dict"][1] == 400, seen


def _new_run(server_url: str, run: dict[str, str]) -> str:
    answer = send("/api/2.0/mlflow/runs/create", json={"experiment_id": run["experiment_id"]},
                  base_url=server_url)
    return answer.json["run"]["info"]["run_id"]


def test_fixes_offer_a_corrected_request_only_when_mechanical(server_url, fresh_run) -> None:
    reports = {name: check(_fill(t, server_url, fresh_run))[0] for name, t in EXPORTS.items()}
    assert reports["article"].corrected and "Content-Type" in reports["article"].applied[0]
    assert reports["python-dict"].corrected
    firefox = reports["firefox"]  # a timestamp in seconds: stored as 1970 unless fixed
    assert firefox.fails and firefox.corrected
    assert b"1700000000000" in firefox.corrected[0].body
    assert reports["insomnia"].corrected  # run_uuid renamed
    assert b'"run_id"' in reports["insomnia"].corrected[0].body
    # A param already logged with another value: the user decides, no corrected request.
    run = _new_run(server_url, fresh_run)
    body = json.dumps({"run_id": run, "key": "lr", "value": "0.1"})
    send("/api/2.0/mlflow/runs/log-parameter", data=body, base_url=server_url,
         headers={"Content-Type": "application/json"})
    clash = check(f"curl -X POST {server_url}/api/2.0/mlflow/runs/log-parameter -H "
                  f"'Content-Type: application/json' -d '{body.replace('0.1', '0.2')}'",
                  server=server_url)[0]
    assert clash.predicted_status == 400 and clash.decide and not clash.corrected
    assert clash.to_dict()["corrected"] is None


# ------------------------------------------------------------------- the kit's own case tables


def test_to_curl_then_check_predicts_what_preflight_predicts_on_the_original(fresh_run) -> None:
    base = "http://127.0.0.1:5000"
    values = {**fresh_run, "unique": "check-case"}
    differences = []
    for case in CASES:
        path, headers, body = case.render(values)
        data = body.encode("utf-8") if isinstance(body, str) else (body or b"")
        command = to_curl(SentRequest(case.method, base + path, tuple(headers.items()), data))
        (req,) = parse_curl(command)
        got = check_request(req).verdict
        want = preflight(case.method, base + path, headers, body)
        if (got.predicted_status, got.expected_message, [f.id for f in got.findings]) != \
                (want.predicted_status, want.expected_message, [f.id for f in want.findings]):
            differences.append(case.name)
    assert not differences, differences


def test_every_corrected_case_gets_2xx_from_the_live_server(server_url, fresh_run) -> None:
    corrected = failures = 0
    for case in CASES:
        offline = check_request(_case_request(case, server_url, {**fresh_run, "unique": "x"}))
        if not offline.corrected:
            continue  # found offline; each corrected one is then built for a run of its own
        run = {**fresh_run, "run_id": _new_run(server_url, fresh_run), "unique": os.urandom(4).hex()}
        report = check_request(_case_request(case, server_url, run), server=server_url)
        for req in report.corrected:
            corrected += 1
            answer = _live(req, server_url)
            if answer.status != 200:
                failures += 1
                print(case.name, answer.status, answer.text[:200])
    assert corrected >= 10 and failures == 0


def _case_request(case, base: str, values: dict[str, str]) -> HttpRequest:
    path, headers, body = case.render(values)
    data = body.encode("utf-8") if isinstance(body, str) else (body or b"")
    return HttpRequest(case.method, base + path, tuple(headers.items()), data)


# --------------------------------------------------------------------------------- raw HTTP


def test_raw_http_as_http_client_sends_it(server_url, fresh_run) -> None:
    captured: list[bytes] = []
    listener = socket.create_server(("127.0.0.1", 0))

    def accept() -> None:
        conn, _ = listener.accept()
        data = b""
        while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < 60:
            data += conn.recv(65536)
        captured.append(data)
        conn.sendall(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
        conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    body = json.dumps({"run_id": fresh_run["run_id"], "key": "loss", "value": 0.5})
    port = listener.getsockname()[1]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", "/api/2.0/mlflow/runs/log-metric", body=body,
                 headers={"Content-Type": "application/json"})
    conn.getresponse().read()
    conn.close()
    thread.join(5)
    listener.close()
    req = parse_raw_http(captured[0])
    assert (req.method, urlsplit(req.url).path, req.body) == \
        ("POST", "/api/2.0/mlflow/runs/log-metric", body.encode())
    report = check_request(req, server=server_url)
    live = _live(req, server_url)
    assert report.predicted_status == live.status == 400
    assert report.verdict.expected_message == live.message
    assert report.corrected and _live(report.corrected[0], server_url).status == 200
    # pasted from a log: LF line ends, a Content-Length that does not match the paste
    pasted = captured[0].replace(b"\r\n", b"\n").decode() + "\n"
    assert read_input(pasted)[0].body == body.encode()


# -------------------------------------------------------------------------- HAR from Chromium


def test_har_recorded_by_chromium(server_url, fresh_run, tmp_path) -> None:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: CI installs the Debian package chromium.")
        pytest.skip(f"no Chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    har = tmp_path / "session.har"
    run = fresh_run["run_id"]
    calls = [
        ("log-metric", {"run_id": run, "key": "loss", "value": 0.5, "timestamp": 1700000000000}, True),
        ("log-metric", {"run_id": run, "key": "loss", "value": 0.5}, True),
        ("log-metric", {"run_id": run, "key": "loss", "value": 0.5, "timestamp": 1}, False),
        ("set-tag", {"run_id": run, "key": "t", "value": "v"}, True),
    ]
    script = """async (calls) => { const out = [];
      for (const [path, body, json] of calls) {
        const r = await fetch('/api/2.0/mlflow/runs/' + path, {method: 'POST', body: JSON.stringify(body),
          headers: json ? {'Content-Type': 'application/json'} : {}});
        out.push(r.status); }
      return out; }"""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(record_har_path=str(har))
        page = context.new_page()
        page.goto(server_url + "/health")
        statuses = page.evaluate(script, calls)
        context.close()
        browser.close()
    document = json.loads(har.read_text())
    reports = check(har.read_text())
    assert len(reports) == len(calls)  # /health is not an MLflow API request
    recorded = [e["response"]["status"] for e in document["log"]["entries"]
                if "/api/" in e["request"]["url"]]
    assert recorded == statuses
    for report, status in zip(reports, recorded):
        assert report.predicted_status in (status, None), report.to_text()
        assert report.verdict.valid == (status == 200), report.to_text()
    assert "4 MLflow requests" in reports.to_text()
    assert reports[2].corrected  # text/plain -> application/json, seconds... a fix is offered


# ------------------------------------------------------------------------------------- CLI


def test_cli_exit_status_json_and_masking(tmp_path, capsys, fresh_run) -> None:
    base = "http://127.0.0.1:5000"
    good = _fill(EXPORTS["mlflow-docs"], base, fresh_run)
    assert main(["check", good]) == 0
    capsys.readouterr()
    secret = _fill(EXPORTS["postman"], base + "/x/..", fresh_run)
    secret = secret.replace("--location '", "--location '").replace(
        "log-metric'", "log-metric?token=tok-123456'").replace(
        '"key": "loss"', '"key": "loss", "password": "hunter22"')
    assert main(["check", secret, "--format", "json"]) == 1
    out = capsys.readouterr().out
    (obj,) = json.loads(out)
    for key in ("method", "url", "predicted_status", "error_code", "message", "cause", "fix",
                "check", "findings", "corrected"):
        assert key in obj
    for leaked in ("dapi0123456789abcdef", "tok-123456", "hunter22"):
        assert leaked not in out
    assert {"id", "severity", "message"} <= set(obj["findings"][0])
    # a parse error points at the token, exit 2
    bad = "curl -X POST 'http://h/api/2.0/mlflow/runs/create' --bogus"
    assert main(["check", bad]) == 2
    err = capsys.readouterr().err
    assert f"column {bad.index('--bogus') + 1})" in err
    assert err.splitlines()[-1].index("^") == err.splitlines()[-2].index("--bogus")
    # flags
    assert main(["check", "--url", base + "/api/2.0/mlflow/runs/log-metric", "--data",
                 json.dumps({"run_id": fresh_run["run_id"], "key": "k", "value": 1,
                             "timestamp": 1700000000000})]) == 1  # no Content-Type
    assert "content-type" in capsys.readouterr().out.lower()
    # a file (Chromium's cookie masked), and a body from @file
    (tmp_path / "body.json").write_text(json.dumps({"experiment_id": "0"}))
    (tmp_path / "cmd.sh").write_text(_fill(EXPORTS["chromium"], base, fresh_run))
    assert main(["check", str(tmp_path / "cmd.sh")]) == 0
    assert "s3cr3t" not in capsys.readouterr().out
    (req,) = parse_curl(f"curl {base}/api/2.0/mlflow/runs/create -H 'Content-Type: "
                        "application/json' -d @body.json", cwd=tmp_path)
    assert req.body == b'{"experiment_id": "0"}'


def test_cli_runs_as_a_command_with_stdin_and_replays_on_the_kit_server(server_url, fresh_run) -> None:
    command = _fill(EXPORTS["article"], server_url, fresh_run)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "helpers", "check", "-", "--replay",
                           "--format", "json"], input=command, capture_output=True, text=True,
                          env=env, timeout=60, cwd=ROOT)
    assert done.returncode == 1, done.stderr
    (obj,) = json.loads(done.stdout)
    assert [a["status"] for a in obj["replay"]] == [400, 200]
    assert obj["predicted_status"] == 400 and obj["corrected"].startswith("curl ")


def test_replay_refuses_any_other_server() -> None:
    with pytest.raises(KitError, match="only to the kit's own local server"):
        check("curl -X POST http://10.1.2.3:5000/api/2.0/mlflow/runs/create -d x",
              replay_url="http://10.1.2.3:5000")


# ------------------------------------------------------------------------------ reader units


def test_reader_edge_cases() -> None:
    (r,) = parse_curl("curl -sSL -XPOST localhost:5000/api/2.0/mlflow/runs/create "
                      "--json '{\"experiment_id\":\"0\"}' -u me:pw")
    assert (r.method, r.url, r.header("Content-Type")) == \
        ("POST", "http://localhost:5000/api/2.0/mlflow/runs/create", "application/json")
    assert r.header("Authorization") == "Basic " + base64.b64encode(b"me:pw").decode()
    (r,) = parse_curl("curl http://h/api/x -G -d max_results=5 -H 'X-Empty;' -H 'Accept:'")
    assert (r.method, r.url, r.header("X-Empty"), r.header("Accept")) == \
        ("GET", "http://h/api/x?max_results=5", "", None)
    (r,) = parse_curl("curl http://h/api/x ^\n  -H \"Content-Type: application/json\" ^\n  -d \"{}\"")
    assert r.body == b"{}"
    (r,) = parse_curl("curl http://h/api/x --data-binary $'\\xc3\\xa9\\u00e9'")
    assert r.body == "éé".encode()
    with pytest.raises(InputError, match="column 21"):
        parse_curl("curl http://h/api/x -H")
    with pytest.raises(InputError, match="expected a curl command"):
        parse_curl("wget http://h/")
    with pytest.raises(InputError, match="HAR"):
        read_input('{"log": {}}')


def _finding(id_: str, fix: str = "") -> Finding:
    return Finding("error", "x", "m", fix, id_)


def test_fixers_for_search_requests_and_literals() -> None:
    req = HttpRequest("POST", "http://h/api/2.0/mlflow/runs/search",
                      (("Content-Type", "application/json"),),
                      b'{"filter": "metrics.val-loss < 1 and params.lr = \'a-b\'"}')
    fixed, _ = apply_one(req, [_finding("search-filter-hyphen")])
    assert json.loads(fixed[0].body)["filter"] == "metrics.`val-loss` < 1 and params.lr = 'a-b'"
    assert quote_hyphenated("metrics.`val-loss` < 1") == "metrics.`val-loss` < 1"
    fixed, _ = apply_one(req, [_finding("search-max-results", "Send max_results (at most 1000).")])
    assert json.loads(fixed[0].body)["max_results"] == 1000
    get = HttpRequest("GET", "http://h/api/2.0/mlflow/experiments/search?filter=x")
    fixed, _ = apply_one(get, [_finding("search-max-results", "e.g. max_results=100")])
    assert fixed[0].url.endswith("max_results=100")
    assert literal_body("{run_id: 'a', ok: true, n: null, 'v': -1.5,}") == \
        {"run_id": "a", "ok": True, "n": None, "v": -1.5}
    assert literal_body("{'a': __import__('os')}") is None


def test_a_batch_over_the_limit_is_split_and_each_part_is_accepted(server_url, fresh_run) -> None:
    metrics = [{"key": f"m{i}", "value": i, "timestamp": 1700000000000, "step": 0}
               for i in range(1001)]
    params = [{"key": f"p{i}", "value": "1"} for i in range(120)]
    body = json.dumps({"run_id": fresh_run["run_id"], "metrics": metrics, "params": params})
    report = check_request(HttpRequest("POST", server_url + "/api/2.0/mlflow/runs/log-batch",
                                       (("Content-Type", "application/json"),), body.encode()))
    assert report.predicted_status == 400 and len(report.corrected) >= 2
    assert report.curl().count("curl ") == len(report.corrected)
    assert [_live(r, server_url).status for r in report.corrected] == [200] * len(report.corrected)


def test_request_lab_imports_a_pasted_curl_command(server_url, fresh_run) -> None:
    from helpers.widgets import RequestLab

    lab = RequestLab(base_url=server_url)
    command = _fill(EXPORTS["python-dict"], server_url, {**fresh_run, "run_id": lab.ctx.run_id})
    lab.import_text.value = command
    lab.import_button.click()
    assert "Loaded" in lab.import_note.value
    assert (lab.endpoint.value, lab.content_type.value, lab.body_style.value) == \
        ("log-metric", "application/json", "single quotes")
    assert lab.field("timestamp").value.value == "1700000000000"
    assert lab.request_parts().body == parse_curl(command)[0].body  # the same bytes as pasted
    first = lab.send()
    assert first is not None and first.status == check(command)[0].predicted_status == 400
    lab.body_style.value = "valid JSON"  # toggle one part of the learner's own request
    assert lab.send().status == 200
    lab.import_text.value = "curl http://h/api/2.0/mlflow/runs/search -d '{}'"
    lab.import_button.click()
    assert "no controls for /api/2.0/mlflow/runs/search" in lab.import_note.value


def test_the_readme_example_is_real_output(capsys) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Check your own request", 1)[1].split("```text\n", 1)[1].split("\n```", 1)[0]
    command_line, shown = block.split("\n", 1)
    argv = __import__("shlex").split(command_line.removeprefix("$ "))
    assert argv[:3] == ["python", "-m", "helpers"]
    assert main(argv[3:]) == 1
    assert capsys.readouterr().out.rstrip() == shown


def test_secrets_are_masked_in_every_output() -> None:
    command = ("curl -X POST 'http://127.0.0.1:5000/api/2.0/mlflow/runs/log-metric?api_token=qs-secret-1' "
               "-u alice:pw-secret-2 -b 'session=cookie-secret-3' -H 'X-Auth-Token: hdr-secret-4' "
               "-d '{\"run_id\": \"0123456789abcdef0123456789abcdef\", \"key\": \"k\", \"value\": 1, "
               "\"timestamp\": 1700000000000, \"password\": \"body-secret-5\"}'")
    reports = check(command)
    assert reports[0].corrected  # the corrected request repeats every part of the original
    shown = reports.to_text() + reports.to_json() + (reports[0].requests_code() or "")
    for n in range(1, 6):
        assert f"secret-{n}" not in shown, n


def test_search_fixes_on_real_findings_get_200_from_the_live_server(server_url, fresh_run) -> None:
    api = server_url + "/api/2.0/mlflow"
    commands = [
        f"curl {api}/experiments/search -H 'Content-Type: application/json' -d '{{}}'",
        f"curl {api}/runs/search -H 'Content-Type: application/json' -d '{{\"experiment_ids\": "
        f"[\"{fresh_run['experiment_id']}\"], \"filter\": \"metrics.val-loss < 1\", "
        "\"max_results\": 10}'",
    ]
    for command in commands:
        (report,) = check(command)
        (req,) = parse_curl(command)
        assert report.predicted_status == _live(req, server_url).status == 400, report.to_text()
        assert report.corrected, report.to_text()
        assert [_live(r, server_url).status for r in report.corrected] == [200]


def test_a_har_from_the_kits_recorder_and_the_server_flag(server_url, fresh_run, capsys) -> None:
    from helpers.har import to_har

    good = {"run_id": fresh_run["run_id"], "key": "k", "value": 1, "timestamp": 1700000000000}
    sent = [send("/api/2.0/mlflow/runs/log-metric", json=good, base_url=server_url),
            send("/api/2.0/mlflow/runs/log-metric", data=json.dumps(good), base_url=server_url)]
    reports = check(json.dumps(to_har(sent)), server=server_url)
    assert [r.predicted_status for r in reports] == [ex.status for ex in sent] == [200, 400]
    missing = {**good, "run_id": "0" * 32}
    command = (f"curl {server_url}/api/2.0/mlflow/runs/log-metric -H 'Content-Type: "
               f"application/json' -d '{json.dumps(missing)}'")
    assert main(["check", command, "--server", server_url, "--format", "json"]) == 1
    (obj,) = json.loads(capsys.readouterr().out)
    assert obj["predicted_status"] == 404 and obj["corrected"] is None


def test_a_progress_bar_on_a_terminal_only_after_a_second(monkeypatch, capsys) -> None:
    from helpers import request_check

    clock = iter(range(10_000))
    monkeypatch.setattr(request_check.time, "perf_counter", lambda: next(clock) * 0.5)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    many = [HttpRequest("GET", f"http://127.0.0.1:5000/api/2.0/mlflow/runs/get?run_id={i:032x}")
            for i in range(120)]
    check(many, progress=True)
    err = capsys.readouterr().err
    assert "checking [" in err and "120/120" in err and err.endswith("\n")
    assert "50/120" not in err  # the first half second shows nothing
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    check(many, progress=True)
    assert capsys.readouterr().err == ""


def test_a_named_host_is_predicted_as_a_server_that_allows_it(server_url, fresh_run) -> None:
    """A request to a server by name: MLflow's defaults refuse that Host (403, live), a server
    reachable by name allows it, and the rest of the prediction is what such a server answers
    (live: the same bytes to the loopback address)."""
    body = json.dumps({"run_id": fresh_run["run_id"], "key": "k", "value": 1,
                       "timestamp": 1700000000000})
    path = "/api/2.0/mlflow/runs/log-metric"
    report = check(f"curl -X POST 'http://mlflow.example.com{path}' -d '{body}'")[0]
    assert "server-config" in [f.id for f in report.verdict.findings]
    assert "403" in report.to_text()
    named = send(path, data=body, base_url=server_url,
                 headers={"Host": "mlflow.example.com", "Content-Type": None})
    assert named.status == 403
    local = send(path, data=body, base_url=server_url, headers={
        "Content-Type": "application/x-www-form-urlencoded"})  # what curl -d sends
    assert (report.predicted_status, report.verdict.expected_message) == (local.status,
                                                                         local.message)


def test_ctrl_c_in_a_terminal_stops_a_long_check_with_one_sentence(tmp_path) -> None:
    """The README's command in a pseudo-terminal, on a HAR large enough to still be running:
    Ctrl-C ends it with status 130 and one plain sentence, no traceback, nothing left running."""
    import pty
    import select
    import time

    entry = {"request": {"method": "POST", "url": "http://127.0.0.1:5000/api/2.0/mlflow/runs/"
                         "log-metric", "headers": [], "postData": {"mimeType": "application/json",
                                                                   "text": "{}"}},
             "response": {"status": 400}}
    har = tmp_path / "big.har"
    har.write_text(json.dumps({"log": {"version": "1.2", "entries": [entry] * 60_000}}))
    pid, fd = pty.fork()
    if pid == 0:  # the child: the README's command, as a learner types it
        os.chdir(ROOT)
        os.execv(sys.executable, [sys.executable, "-m", "helpers", "check", str(har)])
    out, sent, started = b"", False, time.monotonic()
    while time.monotonic() - started < 60:
        if select.select([fd], [], [], 0.1)[0]:
            try:
                data = os.read(fd, 65536)
            except OSError:
                break
            if not data:
                break
            out += data
        if not sent and b"checking [" in out:  # the progress bar: the work is under way
            os.write(fd, b"\x03")
            sent = True
    _, status = os.waitpid(pid, 0)
    text = out.decode(errors="replace")
    assert sent, text[-500:]
    assert os.waitstatus_to_exitcode(status) == 130
    assert "Stopped (Ctrl-C) before the report was printed; nothing was sent anywhere." in text
    assert "Traceback" not in text
