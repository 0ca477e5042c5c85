"""The case matrix: each case is one HTTP request sent byte-for-byte to a live MLflow server.

Bodies are templates: ``{run_id}`` and ``{experiment_id}`` are replaced by the ids of the run and
experiment that the runner creates on each server before sending the cases.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

LOG_METRIC = "/api/2.0/mlflow/runs/log-metric"
JSON = {"Content-Type": "application/json"}
TIMESTAMP = 1_700_000_000_000
NONEXISTENT_RUN_ID = "0123456789abcdef0123456789abcdef"
ARTICLE_INVALID_RUN_ID = "invalid_run_id"


@dataclass(frozen=True)
class Case:
    """One request of the matrix."""

    id: str
    title: str
    description: str
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    metric_key: str | None = None  # live run's metric read back around a 200
    expect_key: str | None = None  # a 200 whose JSON lacks this key is flagged in the table

    def render_path(self, ids: dict[str, str]) -> str:
        """Return the path with the live run and experiment ids filled in."""
        return _fill(self.path, ids)

    def render_body(self, ids: dict[str, str]) -> bytes | None:
        """Return the exact body bytes, with the live run and experiment ids filled in."""
        return None if self.body is None else _fill(self.body, ids).encode("utf-8")

    def describe(self) -> dict[str, Any]:
        """Return a JSON-able description of the request (body as a template)."""
        return {
            "method": self.method,
            "path": self.path,
            "headers": dict(self.headers),
            "body_template": self.body,
            "metric_key": self.metric_key,
            "expect_key": self.expect_key,
        }


def _fill(template: str, ids: dict[str, str]) -> str:
    """Replace ``{run_id}`` and ``{experiment_id}`` (and nothing else) in a template."""
    for name, value in ids.items():
        template = template.replace("{" + name + "}", value)
    return template


def _metric(key: str = "accuracy", value: Any = 0.95, *, run_id: str = "{run_id}",
            timestamp: bool = True, step: int | None = 0) -> dict[str, Any]:
    """Build a log-metric payload (as a dict, to be serialised by the case)."""
    payload: dict[str, Any] = {"run_id": run_id, "key": key, "value": value}
    if timestamp:
        payload["timestamp"] = TIMESTAMP
    if step is not None:
        payload["step"] = step
    return payload


def _good(step: int) -> str:
    """The complete, valid log-metric body; each case gets its own step so that MLflow does not
    merge its metric row with an identical one logged by an earlier case."""
    return json.dumps(_metric(step=step))



CASES: list[Case] = [
    Case("c01", "example 1: no Content-Type",
         "The article's example 1: requests.post(url, data=json.dumps(payload)) with run_id, key, "
         "value, timestamp and step, and no Content-Type header at all.",
         "POST", LOG_METRIC, {}, _good(0)),
    Case("c02", "example 1 + application/json",
         "As c01 (step 2) with Content-Type: application/json (the fix).",
         "POST", LOG_METRIC, JSON, _good(2)),
    Case("c03", "article's 'correct' request: run_uuid, no timestamp",
         'The article\'s "correct" request {"run_uuid": ..., "key": ..., "value": 0.99} with '
         "Content-Type: application/json and no timestamp.",
         "POST", LOG_METRIC, JSON,
         json.dumps({"run_uuid": "{run_id}", "key": "accuracy", "value": 0.99})),
    Case("c04", "Content-Type: text/plain",
         "Valid JSON body (as c02) sent as text/plain.",
         "POST", LOG_METRIC, {"Content-Type": "text/plain"}, _good(4)),
    Case("c05", "Content-Type: x-www-form-urlencoded",
         "Valid JSON body (as c02) sent as application/x-www-form-urlencoded (curl -d's default).",
         "POST", LOG_METRIC, {"Content-Type": "application/x-www-form-urlencoded"}, _good(5)),
    Case("c06", "Content-Type: application/json; charset=utf-8",
         "Valid JSON body (as c02) with a charset parameter on the media type.",
         "POST", LOG_METRIC, {"Content-Type": "application/json; charset=utf-8"}, _good(6)),
    Case("c07", "malformed JSON: unquoted keys",
         "JSON header, body with unquoted keys (a Python/JS object literal, not JSON).",
         "POST", LOG_METRIC, JSON,
         "{run_id: \"{run_id}\", key: \"accuracy\", value: 0.95, timestamp: "
         f"{TIMESTAMP}, step: 0}}"),
    Case("c08", "malformed JSON: trailing comma",
         "JSON header, otherwise valid body with a trailing comma before the closing brace.",
         "POST", LOG_METRIC, JSON, _good(8)[:-1] + ",}"),
    Case("c09", "empty body",
         "JSON header and an empty body (Content-Length: 0).",
         "POST", LOG_METRIC, JSON, ""),
    Case("c10", "double-encoded JSON",
         "JSON header, body is a JSON string that contains the JSON (json.dumps(json.dumps(p))).",
         "POST", LOG_METRIC, JSON, json.dumps(_good(10))),
    Case("c11", "nonexistent run id, with timestamp",
         f"JSON header, complete payload, well-formed but nonexistent run id {NONEXISTENT_RUN_ID}.",
         "POST", LOG_METRIC, JSON, json.dumps(_metric(run_id=NONEXISTENT_RUN_ID, step=11))),
    Case("c12", "example 3 as written: invalid run id, no timestamp",
         f'The article\'s example 3: JSON header, run_id "{ARTICLE_INVALID_RUN_ID}", key, value, '
         "and no timestamp (nor step).",
         "POST", LOG_METRIC, JSON,
         json.dumps(_metric(run_id=ARTICLE_INVALID_RUN_ID, timestamp=False, step=None))),
    Case("c13", 'value "abc"',
         'JSON header, live run, value is the string "abc".',
         "POST", LOG_METRIC, JSON, json.dumps(_metric("value_abc", "abc", step=13)), "value_abc"),
    Case("c14", 'value "0.5" (numeric string)',
         'JSON header, live run, value is the string "0.5".',
         "POST", LOG_METRIC, JSON, json.dumps(_metric("value_str", "0.5", step=14)), "value_str"),
    Case("c15", "value null",
         "JSON header, live run, value is null.",
         "POST", LOG_METRIC, JSON, json.dumps(_metric("value_null", None, step=15)), "value_null"),
    Case("c16", "value [1] (a list)",
         "JSON header, live run, value is the list [1].",
         "POST", LOG_METRIC, JSON, json.dumps(_metric("value_list", [1], step=16)), "value_list"),
    Case("c17", "GET on log-metric",
         "GET /api/2.0/mlflow/runs/log-metric with no body (the endpoint is POST-only).",
         "GET", LOG_METRIC),
    Case("c18", "wrong path: runs/log-metrics",
         "POST to /api/2.0/mlflow/runs/log-metrics (plural, no such endpoint), valid JSON body.",
         "POST", "/api/2.0/mlflow/runs/log-metrics", JSON, _good(18)),
    Case("c19", "foreign Host header",
         "GET /api/2.0/mlflow/experiments/search?max_results=1 with Host: evil.example.com "
         "(DNS-rebinding shape; the TCP connection still goes to 127.0.0.1).",
         "GET", "/api/2.0/mlflow/experiments/search?max_results=1", {"Host": "evil.example.com"}),
    Case("c20", "cross-site Origin on POST",
         "Valid log-metric request (as c02) plus Origin: https://evil.example.com.",
         "POST", LOG_METRIC, {**JSON, "Origin": "https://evil.example.com"}, _good(20)),
    Case("c21", "runs/create with int experiment_id",
         "POST /api/2.0/mlflow/runs/create with experiment_id as a JSON number, not a string.",
         "POST", "/api/2.0/mlflow/runs/create", JSON,
         '{"experiment_id": {experiment_id}, "start_time": ' + str(TIMESTAMP) + "}"),
    Case("c22", "re-log a param with a different value",
         'POST runs/log-parameter key "lr" value "0.02" after the runner logged "lr" = "0.01".',
         "POST", "/api/2.0/mlflow/runs/log-parameter", JSON,
         json.dumps({"run_id": "{run_id}", "key": "lr", "value": "0.02"})),
    Case("c23", "metrics/get-history without max_results",
         "GET /api/2.0/mlflow/metrics/get-history?run_id=...&metric_key=accuracy with no "
         'max_results, after c02 logged "accuracy" on the live run; the answer should list it.',
         "GET", "/api/2.0/mlflow/metrics/get-history?run_id={run_id}&metric_key=accuracy",
         expect_key="metrics"),
]

# Every POST to log-metric reads back the live run's "accuracy" history around a 200 unless it
# names its own key, so a 200 that stored something unexpected (or nothing) shows up.
CASES = [replace(c, metric_key="accuracy")
         if c.method == "POST" and c.path == LOG_METRIC and c.metric_key is None else c
         for c in CASES]
