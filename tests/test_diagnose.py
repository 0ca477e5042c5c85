"""`explain()` against live answers: one real exchange per family, from the session's server.

Ground truth is what the server answered (status, error code, message) and, for a 200 with a
trap, what it stored (read back with runs/get or metrics/get-history): each case asserts that
first, then that `explain` names the family. Answers that are not MLflow's (a proxy's 502, a
400 text page, a redirect) come from a tiny stdlib server on 127.0.0.1.
"""

from __future__ import annotations

import ast
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from helpers import diagnose, runs
from helpers.diagnose import Diagnosis, explain, field_guide, verdict_of
from helpers.model_table import STORE
from helpers.preflight_advice import describe_json_error
from helpers.wire import Exchange, send

API = "/api/2.0/mlflow"
JSON = {"Content-Type": "application/json"}


@dataclass
class Ctx:
    url: str
    run_id: str
    experiment_id: str
    proxy: str

    def post(self, path: str, **kw: Any) -> Exchange:
        return send(f"{self.url}{API}/{path}", **kw)

    def metric(self, body: dict[str, Any] | None = None, **kw: Any) -> Exchange:
        if body is not None:
            kw["json"] = body
        return self.post("runs/log-metric", **kw)

    def history(self, key: str) -> list[dict[str, Any]]:
        return runs.metric_history(self.run_id, key, base_url=self.url)

    def run(self, run_id: str | None = None) -> dict[str, Any]:
        return runs.get_run(run_id or self.run_id, base_url=self.url)


def _now() -> int:
    return runs.now_ms()


# Each case: the family, the request, the status the server must answer, and (optionally) a
# check of what the server stored or said, so the family is tied to observed behaviour.
@dataclass
class Case:
    family: str
    request: Callable[[Ctx], Exchange]
    status: int
    truth: Callable[[Ctx, Exchange], bool] | None = None
    id: str = ""


def _overwrite(c: Ctx) -> Exchange:
    c.post("runs/log-parameter", json={"run_id": c.run_id, "key": "lr", "value": "0.1"})
    return c.post("runs/log-parameter", json={"run_id": c.run_id, "key": "lr", "value": "0.2"})


def _deleted_run(c: Ctx) -> Exchange:
    c.post("runs/delete", json={"run_id": c.run_id})
    return c.metric({"run_id": c.run_id, "key": "m", "value": 1, "timestamp": _now()})


def _only(c: Ctx, key: str) -> dict[str, Any]:
    (point,) = c.history(key)
    return point


CASES = [
    Case("forbidden-host", lambda c: c.metric({}, headers={"Host": "evil.example.com"}), 403,
         lambda c, x: x.body_kind == "text" and "Host" in (x.message or "")),
    Case("forbidden-origin",
         lambda c: c.metric({}, headers={"Origin": "https://evil.example.com"}), 403,
         lambda c, x: x.body_kind == "text" and "origin" in (x.message or "").lower()),
    Case("method-not-allowed", lambda c: c.metric(method="GET"), 405,
         lambda c, x: x.body_kind == "html" and "POST" in (x.header("Allow") or "")),
    Case("route-not-found", lambda c: c.post("runs/log-metrics", json={}), 404,
         lambda c, x: x.body_kind == "html" and x.error_code is None),
    Case("run-not-found",
         lambda c: c.metric({"run_id": "0" * 32, "key": "m", "value": 1, "timestamp": _now()}),
         404, lambda c, x: x.error_code == "RESOURCE_DOES_NOT_EXIST"),
    Case("resource-not-found",
         lambda c: c.post("experiments/get", method="GET", params={"experiment_id": "987654"}),
         404, lambda c, x: x.error_code == "RESOURCE_DOES_NOT_EXIST"
         and not (x.message or "").startswith("Run")),
    Case("content-type-missing", lambda c: c.metric(data=json.dumps({"run_id": c.run_id})), 400,
         lambda c, x: (x.message or "").endswith("Content-Type header is missing.")),
    Case("content-type-wrong",
         lambda c: c.metric(data="{}", headers={"Content-Type": "text/plain"}), 400,
         lambda c, x: "Content-Type must be one of" in (x.message or "")),
    Case("conflicting-alias",
         lambda c: c.metric({"run_id": c.run_id, "runId": c.run_id, "key": "m", "value": 1,
                             "timestamp": _now()}), 400,
         lambda c, x: "specifies both" in (x.message or "")),
    Case("malformed-json",  # the article's example 2: unquoted keys
         lambda c: c.metric(headers=JSON,
                            data=f'{{run_id: "{c.run_id}", key: "accuracy", value: 0.95}}'),
         400,
         lambda c, x: "required parameter 'run_id'" in (x.message or ""), "unquoted-keys"),
    Case("malformed-json", lambda c: c.metric(headers=JSON, data=""), 400,
         lambda c, x: "required parameter 'run_id'" in (x.message or ""), "empty-body"),
    Case("malformed-json",
         lambda c: c.metric(headers=JSON, data=str({"run_id": c.run_id, "key": "m"})), 400,
         lambda c, x: "required parameter 'run_id'" in (x.message or ""), "python-str-dict"),
    Case("malformed-json",  # runs/create has no required field: the empty run hits the database
         lambda c: c.post("runs/create", headers=JSON, data="{experiment_id: 0}"), 400,
         lambda c, x: x.error_code == "BAD_REQUEST", "runs-create"),
    Case("malformed-json",  # log-batch crashes on the empty request
         lambda c: c.post("runs/log-batch", headers=JSON, data="{run_id: 0}"), 500,
         lambda c, x: x.body_kind == "html", "log-batch"),
    Case("missing-field", lambda c: c.metric({"run_id": c.run_id, "key": "m", "value": 1}), 400,
         lambda c, x: "required parameter 'timestamp'" in (x.message or "")),
    Case("missing-field",
         lambda c: c.metric({"runId": c.run_id, "key": "m", "value": 1, "timestamp": _now()}),
         400, lambda c, x: "required parameter 'run_id'" in (x.message or ""), "camel-case"),
    Case("bad-type",
         lambda c: c.metric({"run_id": c.run_id, "key": "m", "value": "abc",
                             "timestamp": _now()}), 400,
         lambda c, x: "Value was of type 'str'" in (x.message or "")),
    Case("bad-type", lambda c: c.post("runs/create", json={"experiment_id": 0}), 400,
         lambda c, x: "'experiment_id'" in (x.message or ""), "int-experiment-id"),
    Case("out-of-range",
         lambda c: c.post("runs/search", json={"experiment_ids": [c.experiment_id],
                                               "max_results": 999999}), 400,
         lambda c, x: "Value was of type 'int'" in (x.message or "")),
    Case("partial-parse",  # timestamp first and fractional: key and value never parsed
         lambda c: c.metric({"run_id": c.run_id, "timestamp": 1700000000.5, "key": "m",
                             "value": 3}), 400,
         lambda c, x: (x.message or "").startswith('Invalid value "" for parameter')),
    Case("invalid-name",
         lambda c: c.metric({"run_id": c.run_id, "key": "a/../b", "value": 1,
                             "timestamp": _now()}), 400,
         lambda c, x: "Names may" in (x.message or "")),
    Case("too-long",
         lambda c: c.metric({"run_id": c.run_id, "key": "k" * 300, "value": 1,
                             "timestamp": _now()}), 400,
         lambda c, x: "exceeds the maximum length" in (x.message or "")),
    Case("batch-limit",
         lambda c: c.post("runs/log-batch", json={
             "run_id": c.run_id, "params": [{"key": f"p{i}", "value": "1"} for i in range(101)]}),
         400, lambda c, x: "at most 100 params" in (x.message or "")),
    Case("not-active", _deleted_run, 400,
         lambda c, x: "must be in the 'active' state" in (x.message or "")),
    Case("param-overwrite", _overwrite, 400,
         lambda c, x: (x.message or "").startswith("Changing param values is not allowed")),
    Case("already-exists", lambda c: c.post("experiments/create", json={"name": "Default"}), 400,
         lambda c, x: x.error_code == "RESOURCE_ALREADY_EXISTS"),
    Case("search-filter",  # the search store's own filter parser refuses it
         lambda c: c.post("runs/search", json={"experiment_ids": [c.experiment_id],
                                               "filter": "metrics.m >>> 1"}), 400,
         lambda c, x: x.body_kind == "mlflow-json"),
    Case("mlflow-error",  # a real MLflow 400 no specific rule covers
         lambda c: send(f"{c.url}/api/3.0/mlflow/label-schemas/create",
                        json={"experiment_id": c.experiment_id, "name": "x"}), 400,
         lambda c, x: x.body_kind == "mlflow-json"),
    Case("server-error",
         lambda c: c.metric({"run_id": c.run_id, "key": "m", "value": [1], "timestamp": _now()}),
         500, lambda c, x: x.body_kind == "html"),
    Case("server-error", lambda c: c.metric([1, 2]), 500,
         lambda c, x: x.body_kind == "html", "array-body"),
    Case("gateway-error", lambda c: send(f"{c.proxy}/bad-gateway", json={}), 502,
         lambda c, x: x.body_kind == "text"),
    Case("not-mlflow", lambda c: send(f"{c.proxy}/plain-400", json={}), 400,
         lambda c, x: x.error_code is None),
    Case("unrecognised", lambda c: send(f"{c.proxy}/moved", json={}), 301),
    Case("mlflow-unavailable",  # MLflow's own 503 (a full disk), not a proxy's
         lambda c: send(f"{c.proxy}/unavailable", json={}), 503,
         lambda c, x: x.error_code == "TEMPORARILY_UNAVAILABLE"),
    Case("model-disagrees",  # an MLflow-shaped answer the model does not predict
         lambda c: send(f"{c.proxy}/api/2.0/mlflow/runs/log-metric", json={}), 404,
         lambda c, x: x.body_kind == "mlflow-json"),
    Case("ok-but-trap-nan",
         lambda c: c.metric(headers=JSON, data=f'{{"run_id": "{c.run_id}", "key": "nan", '
                            f'"value": NaN, "timestamp": {_now()}}}'), 200,
         lambda c, x: _only(c, "nan")["value"] == 0 and _only(c, "nan")["timestamp"] == 0),
    Case("ok-but-trap-seconds-timestamp",
         lambda c: c.metric({"run_id": c.run_id, "key": "sec", "value": 1,
                             "timestamp": time.time()}), 200,
         lambda c, x: _only(c, "sec")["timestamp"] == 0, "float-seconds"),
    Case("ok-but-trap-seconds-timestamp",
         lambda c: c.metric({"run_id": c.run_id, "key": "sec", "value": 1,
                             "timestamp": 1700000000}), 200,
         lambda c, x: _only(c, "sec")["timestamp"] == 1700000000, "int-seconds"),
    Case("ok-but-trap-fractional-timestamp",
         lambda c: c.metric({"run_id": c.run_id, "key": "ms", "value": 1,
                             "timestamp": time.time() * 1000}), 200,
         lambda c, x: _only(c, "ms")["timestamp"] == 0),
    Case("ok-but-trap-fractional-step",
         lambda c: c.metric({"run_id": c.run_id, "key": "fs", "value": 1, "timestamp": _now(),
                             "step": 1.5}), 200,
         lambda c, x: _only(c, "fs")["step"] == 0),
    Case("ok-but-trap-parse-stopped",
         lambda c: c.post("runs/create", json={"experiment_id": c.experiment_id, "tags": "oops",
                                               "run_name": "after"}), 200,
         lambda c, x: c.run(x.json["run"]["info"]["run_id"])["info"]["run_name"] != "after"),
    Case("ok-but-unknown-enum",
         lambda c: c.post("runs/update", json={"run_id": c.run_id, "status": "DONE"}), 200,
         lambda c, x: c.run()["info"]["status"] == "RUNNING"),
    Case("ok-but-unknown-field",
         lambda c: c.metric({"run_id": c.run_id, "key": "typo", "value": 1, "timestamp": _now(),
                             "stpe": 3}), 200,
         lambda c, x: _only(c, "typo")["step"] == 0),
    Case("ok-but-bool-as-number",
         lambda c: c.metric({"run_id": c.run_id, "key": "flag", "value": True,
                             "timestamp": _now()}), 200,
         lambda c, x: _only(c, "flag")["value"] == 1.0),
    Case("ok-but-padded-key",
         lambda c: c.metric({"run_id": c.run_id, "key": "acc ", "value": 1,
                             "timestamp": _now()}), 200,
         lambda c, x: [m["key"] for m in c.run()["data"]["metrics"]] == ["acc "]),
    Case("ok-but-param-without-value",
         lambda c: c.post("runs/log-parameter", json={"run_id": c.run_id, "key": "lr"}), 200,
         lambda c, x: c.run()["data"]["params"] == [{"key": "lr", "value": ""}]),
    Case("server-error",  # log-batch takes len() of a JSON null body
         lambda c: c.post("runs/log-batch", headers=JSON, data="null"), 500,
         lambda c, x: x.body_kind == "html", "log-batch-null"),
    Case("ok-but-trap-truncated",
         lambda c: c.post("runs/log-parameter", json={"run_id": c.run_id, "key": "long",
                                                      "value": "x" * 7000}), 200,
         lambda c, x: len(c.run()["data"]["params"][0]["value"]) == 6000),
    Case("ok-but-double-encoded",
         lambda c: c.metric(headers=JSON, data=json.dumps(json.dumps(
             {"run_id": c.run_id, "key": "dbl", "value": 2.5, "timestamp": _now()}))), 200,
         lambda c, x: _only(c, "dbl")["value"] == 2.5),
    Case("ok-but-deprecated-run-uuid",
         lambda c: c.metric({"run_uuid": c.run_id, "key": "uu", "value": 1, "timestamp": _now()}),
         200, lambda c, x: _only(c, "uu")["value"] == 1),
    Case("ok-but-coerced-string",
         lambda c: c.metric({"run_id": c.run_id, "key": "s", "value": "0.5", "timestamp": _now()}),
         200, lambda c, x: _only(c, "s")["value"] == 0.5),
    # Issue 11: preflight and explain used to disagree on these three.
    Case("ok-but-trap-seconds-timestamp",
         lambda c: c.post("runs/log-batch", json={"run_id": c.run_id, "metrics": [
             {"key": "bsec", "value": 1, "timestamp": 1700000000}]}), 200,
         lambda c, x: _only(c, "bsec")["timestamp"] == 1700000000, "log-batch"),
    Case("ok-but-trap-truncated",
         lambda c: c.post("runs/log-batch", json={"run_id": c.run_id, "params": [
             {"key": "long", "value": "x" * 7000}]}), 200,
         lambda c, x: len(c.run()["data"]["params"][0]["value"]) == 6000, "log-batch"),
    Case("ok-but-trap-infinity",
         lambda c: c.metric({"run_id": c.run_id, "key": "inf", "value": "Infinity",
                             "timestamp": _now()}), 200,
         lambda c, x: _only(c, "inf")["value"] == 1.7976931348623157e308, "infinity"),
    Case("ok",
         lambda c: c.metric({"run_id": c.run_id, "key": "good", "value": 0.9, "timestamp": _now(),
                             "step": 1}), 200,
         lambda c, x: _only(c, "good")["step"] == 1 and _only(c, "good")["timestamp"] > 10**12),
]


class _Stub(BaseHTTPRequestHandler):
    """Answers the way things in front of MLflow do: a proxy's 502, a plain 400, a redirect."""

    ANSWERS = {"/bad-gateway": (502, "text/plain", b"502 Bad Gateway: upstream unavailable"),
               "/plain-400": (400, "text/plain", b"Bad Request"),
               "/moved": (301, "text/plain", b""),
               # the exact shape MLflow's catch_mlflow_exception gives a full SQLite disk
               "/unavailable": (503, "application/json",
                                b'{"error_code": "TEMPORARILY_UNAVAILABLE", "message": '
                                b'"(sqlite3.OperationalError) database or disk is full"}'),
               "/api/2.0/mlflow/runs/log-metric": (
                   404, "application/json",
                   b'{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "gone"}')}

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, ctype, body = self.ANSWERS.get(self.path, (404, "text/plain", b"no"))
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        if status == 301:
            self.send_header("Location", "/elsewhere")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def proxy_url() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def ctx(server_url: str, fresh_run: dict[str, str], proxy_url: str) -> Ctx:
    return Ctx(server_url, fresh_run["run_id"], fresh_run["experiment_id"], proxy_url)


@pytest.mark.parametrize("case", CASES, ids=[c.family + (f"[{c.id}]" if c.id else "")
                                             for c in CASES])
def test_explain_names_the_family_of_a_live_answer(case: Case, ctx: Ctx) -> None:
    answer = case.request(ctx)
    assert answer.status == case.status, answer.to_text()
    if case.truth is not None:
        assert case.truth(ctx, answer), f"the server did not behave as this case expects:\n{answer}"
    diagnosis = explain(answer)
    assert diagnosis.family == case.family, f"{answer}\n{diagnosis}"
    if case.family.startswith("ok-but-"):  # a warning, said before sending as well
        assert diagnosis.severity in ("warning", "info")
        assert case.family.removeprefix("ok-but-") in {f.id for f in verdict_of(answer.request).findings}
    assert diagnosis.status == answer.status and diagnosis.body_kind == answer.body_kind
    assert diagnosis.cause and diagnosis.check and diagnosis.fix


def test_every_answer_side_family_has_a_live_case() -> None:
    # The families explain names from the answer alone: its literal returns, the state rules' ids.
    tree = ast.parse(Path(diagnose.__file__).read_text(encoding="utf-8"))
    literal = {n.value.elts[0].value for n in ast.walk(tree) if isinstance(n, ast.Return)
               and isinstance(n.value, ast.Tuple) and isinstance(n.value.elts[0], ast.Constant)}
    state = {rule.id for store in STORE.values() for rule in store.state}
    assert len(literal) >= 12 and literal | state <= {c.family for c in CASES}


def test_malformed_json_cause_names_what_is_wrong_with_the_body(ctx: Ctx) -> None:
    bodies = {'{run_id: "x"}': "unquoted key",
              '{"run_id": "x",}': "trailing comma",
              "{'run_id': 'x'}": "str(dict)",
              '{"run_id": "x", "ke': "cut off",
              "": "empty"}
    for body, words in bodies.items():
        answer = ctx.metric(headers=JSON, data=body)
        assert "required parameter 'run_id'" in (answer.message or "")
        assert words in explain(answer).cause, (body, explain(answer).cause)


def test_the_fix_for_a_405_names_the_method_the_server_allows(ctx: Ctx) -> None:
    answer = ctx.metric(method="PUT", json={})
    assert answer.status == 405
    assert explain(answer).fix == "Send the request as POST."


def test_route_not_found_suggests_the_nearest_real_path(ctx: Ctx) -> None:
    answer = ctx.post("runs/log-metric/", json={})
    assert answer.status == 404 and answer.body_kind == "html"
    assert "Did you mean /api/2.0/mlflow/runs/log-metric?" in explain(answer).fix


def test_text_is_deterministic_and_html_escapes(ctx: Ctx) -> None:
    answer = ctx.metric({"run_id": ctx.run_id, "key": "<b>", "value": 1, "timestamp": _now()})
    assert answer.status == 400
    first, second = explain(answer), explain(answer)
    assert str(first) == str(second) and first == second
    assert str(first).splitlines()[0] == "✗ invalid-name — 400 Bad Request · INVALID_PARAMETER_VALUE"
    assert '"<b>"' in first.cause and '"<b>"' not in first._repr_html_()
    assert "&quot;&lt;b&gt;&quot;" in first._repr_html_()


def test_describe_json_error_agrees_with_json_loads() -> None:
    assert describe_json_error(b'{"a": 1}') is None
    assert describe_json_error(b"") == "the body is empty"
    assert "unquoted key" in (describe_json_error(b"{a: 1}") or "")
    assert describe_json_error(b'{"a": NaN}') is None  # Python's json (which Flask uses) accepts it


def test_diagnosis_is_frozen() -> None:
    d = Diagnosis("ok", "ok", "c", "k", "f")
    with pytest.raises(AttributeError):
        d.family = "x"  # type: ignore[misc]


def test_field_guide_keeps_one_row_per_family_in_order(ctx: Ctx) -> None:
    answers = [ctx.metric(data="{}"),
               ctx.metric(headers=JSON, data="{run_id: 1}"),
               ctx.metric(headers=JSON, data="{run_id: 2}"),
               ctx.metric(method="GET")]
    guide = field_guide(answers)
    assert [row[3] for row in guide.rows] == ["content-type-missing", "malformed-json",
                                              "method-not-allowed"]
    assert guide.rows[2][:3] == [405, "html", "—"]
    assert len(field_guide(answers, one_per_family=False).rows) == 4
    assert "content-type-missing" in repr(guide)
