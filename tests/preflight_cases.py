"""Requests for the preflight agreement test: valid and broken, exactly as bytes on the wire.

No expected answers here on purpose: the live server is the ground truth, and
tests/test_preflight_agreement.py compares `preflight()` with it. Placeholders ({run_id},
{experiment_id}, {unique}) are filled in per case with a fresh run and a unique name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

API = "/api/2.0/mlflow"
LOG_METRIC = f"{API}/runs/log-metric"
LOG_PARAM = f"{API}/runs/log-parameter"
SET_TAG = f"{API}/runs/set-tag"
LOG_BATCH = f"{API}/runs/log-batch"
CREATE_RUN = f"{API}/runs/create"
UPDATE_RUN = f"{API}/runs/update"
CREATE_EXPERIMENT = f"{API}/experiments/create"

JSON = {"Content-Type": "application/json"}
TS = 1700000000000  # a millisecond timestamp (2023-11-14)
PLACEHOLDERS = ("run_id", "experiment_id", "unique")


@dataclass(frozen=True)
class Case:
    """One request: method, path, headers and body exactly as `requests` would send them."""

    name: str
    method: str
    path: str
    headers: Mapping[str, str] | None
    body: bytes | str | None
    #: When set, the str body is sent encoded with this codec (after filling placeholders).
    encoding: str = ""

    @property
    def needs(self) -> tuple[str, ...]:
        """The placeholders this case uses ({run_id}, {experiment_id}, {unique})."""
        text = self.path + _text(self.body) + json.dumps(dict(self.headers or {}))
        return tuple(p for p in PLACEHOLDERS if "{" + p + "}" in text)

    def render(self, values: Mapping[str, str]) -> tuple[str, dict[str, str], bytes | str | None]:
        """Path, headers and body with the placeholders filled in."""

        def fill(text: str) -> str:
            return re.sub(r"\{(run_id|experiment_id|unique)\}", lambda m: values[m.group(1)],
                          text)

        body: bytes | str | None = self.body
        if isinstance(body, str):
            body = fill(body)
            if self.encoding:
                body = body.encode(self.encoding)
        headers = {k: fill(v) for k, v in (self.headers or {}).items()}
        return fill(self.path), headers, body


def _text(body: bytes | str | None) -> str:
    if isinstance(body, bytes):
        return body.decode("latin-1")
    return body or ""


def j(payload: Any, **options: Any) -> str:
    """JSON text the way json.dumps writes it (NaN included, as Python does)."""
    return json.dumps(payload, **options)


def metric(**overrides: Any) -> dict[str, Any]:
    base = {"run_id": "{run_id}", "key": "loss", "value": 0.5, "timestamp": TS, "step": 1}
    return {k: v for k, v in {**base, **overrides}.items() if v is not ...}


def post(name: str, path: str, payload: Any, headers: Mapping[str, str] | None = None,
         encoding: str = "") -> Case:
    """A POST with a JSON body and Content-Type: application/json unless headers say else."""
    body = payload if isinstance(payload, (bytes, str)) else j(payload)
    return Case(name, "POST", path, JSON if headers is None else headers, body, encoding)


def _batch_metric(i: int, **overrides: Any) -> dict[str, Any]:
    return {"key": f"m{i}", "value": float(i), "timestamp": TS, "step": i, **overrides}


CASES: list[Case] = [
    # --- runs/log-metric: the three examples from the article first
    post("log-metric: valid", LOG_METRIC, metric()),
    post("log-metric: no Content-Type (data= without headers)", LOG_METRIC, metric(), {}),
    post("log-metric: timestamp missing", LOG_METRIC, metric(timestamp=...)),
    post("log-metric: value is a word", LOG_METRIC, metric(value="high")),
    post("log-metric: Content-Type text/plain", LOG_METRIC, metric(),
         {"Content-Type": "text/plain"}),
    post("log-metric: Content-Type in capitals", LOG_METRIC, metric(),
         {"Content-Type": "Application/JSON"}),
    post("log-metric: Content-Type with charset", LOG_METRIC, metric(),
         {"Content-Type": "application/json; charset=utf-8"}),
    post("log-metric: space before ;charset", LOG_METRIC, metric(),
         {"Content-Type": "application/json ; charset=utf-8"}),
    post("log-metric: trailing space in Content-Type", LOG_METRIC, metric(),
         {"Content-Type": "application/json "}),
    post("log-metric: form-urlencoded Content-Type", LOG_METRIC, metric(),
         {"Content-Type": "application/x-www-form-urlencoded"}),
    post("log-metric: empty Content-Type", LOG_METRIC, metric(), {"Content-Type": ""}),
    post("log-metric: +json vendor type", LOG_METRIC, metric(),
         {"Content-Type": "application/vnd.api+json"}),
    post("log-metric: lower-case header name", LOG_METRIC, metric(),
         {"content-type": "application/json"}),
    post("log-metric: Python repr, not JSON", LOG_METRIC,
         str({"run_id": "{run_id}", "key": "loss", "value": 0.5, "timestamp": TS})),
    post("log-metric: empty body", LOG_METRIC, ""),
    post("log-metric: double-encoded JSON", LOG_METRIC, j(j(metric()))),
    post("log-metric: JSON array body", LOG_METRIC, [metric()]),
    post("log-metric: JSON number body", LOG_METRIC, "5"),
    post("log-metric: JSON null body", LOG_METRIC, "null"),
    post("log-metric: value as numeric string", LOG_METRIC, metric(value="0.5")),
    post("log-metric: value true", LOG_METRIC, metric(value=True)),
    post("log-metric: value is a list", LOG_METRIC, metric(value=[0.5])),
    post("log-metric: value is an object", LOG_METRIC, metric(value={"v": 0.5})),
    post("log-metric: value null", LOG_METRIC, metric(value=None)),
    post("log-metric: bare NaN literal", LOG_METRIC, metric(value=float("nan"))),
    post("log-metric: bare Infinity literal", LOG_METRIC, metric(value=float("inf"))),
    post("log-metric: \"NaN\" string", LOG_METRIC, metric(value="NaN")),
    post("log-metric: \"Infinity\" string", LOG_METRIC, metric(value="Infinity")),
    post("log-metric: timestamp as digit string", LOG_METRIC, metric(timestamp=str(TS))),
    post("log-metric: timestamp is a word", LOG_METRIC, metric(timestamp="now")),
    post("log-metric: fractional timestamp", LOG_METRIC, metric(timestamp=TS + 0.5)),
    post("log-metric: whole float timestamp", LOG_METRIC, metric(timestamp=float(TS))),
    post("log-metric: timestamp in seconds", LOG_METRIC, metric(timestamp=TS // 1000)),
    post("log-metric: negative timestamp", LOG_METRIC, metric(timestamp=-1)),
    post("log-metric: timestamp null", LOG_METRIC, metric(timestamp=None)),
    post("log-metric: timestamp 0", LOG_METRIC, metric(timestamp=0)),
    post("log-metric: timestamp beyond int64", LOG_METRIC, metric(timestamp=10**20)),
    post("log-metric: fractional step", LOG_METRIC, metric(step=1.5)),
    post("log-metric: step null", LOG_METRIC, metric(step=None)),
    post("log-metric: run_uuid instead of run_id", LOG_METRIC,
         metric(run_id=..., run_uuid="{run_id}")),
    post("log-metric: camelCase runId", LOG_METRIC, metric(run_id=..., runId="{run_id}")),
    post("log-metric: run_id and runId both", LOG_METRIC, metric(runId="{run_id}")),
    post("log-metric: empty run_id next to run_uuid", LOG_METRIC,
         metric(run_id="", run_uuid="{run_id}")),
    post("log-metric: run_id is a number", LOG_METRIC, metric(run_id=123)),
    post("log-metric: key is a number", LOG_METRIC, metric(key=5)),
    post("log-metric: key with '*'", LOG_METRIC, metric(key="a*b")),
    post("log-metric: key with '..'", LOG_METRIC, metric(key="../loss")),
    post("log-metric: key of 251 characters", LOG_METRIC, metric(key="k" * 251)),
    post("log-metric: key with ':' '/' ' '", LOG_METRIC, metric(key="val/loss: epoch 1")),
    post("log-metric: empty key", LOG_METRIC, metric(key="")),
    post("log-metric: model_id is a number", LOG_METRIC, metric(model_id=5)),
    post("log-metric: typo 'stpe'", LOG_METRIC, metric(step=..., stpe=3)),
    post("log-metric: Latin-1 bytes", LOG_METRIC, j(metric(key="été"), ensure_ascii=False),
         encoding="latin-1"),
    post("log-metric: UTF-16 body", LOG_METRIC, j(metric()), encoding="utf-16"),
    post("log-metric: UTF-8 with BOM", LOG_METRIC, j(metric()), encoding="utf-8-sig"),
    post("log-metric: wrong path log-metrics", f"{API}/runs/log-metrics", metric()),
    post("log-metric: trailing slash", LOG_METRIC + "/", metric()),
    post("log-metric: double slash", f"{API}//runs/log-metric", metric()),
    post("log-metric: /ajax-api prefix", "/ajax-api/2.0/mlflow/runs/log-metric", metric()),
    post("log-metric: /api/3.0 prefix", "/api/3.0/mlflow/runs/log-metric", metric()),
    post("log-metric: foreign Origin", LOG_METRIC, metric(),
         {**JSON, "Origin": "http://evil.example"}),
    post("log-metric: localhost Origin", LOG_METRIC, metric(),
         {**JSON, "Origin": "http://localhost:3000"}),
    Case("log-metric: GET instead of POST", "GET", LOG_METRIC, JSON, j(metric())),
    Case("log-metric: PUT instead of POST", "PUT", LOG_METRIC, JSON, j(metric())),
    # --- runs/log-parameter
    post("log-param: valid", LOG_PARAM, {"run_id": "{run_id}", "key": "lr", "value": "0.01"}),
    post("log-param: old path log-param", f"{API}/runs/log-param",
         {"run_id": "{run_id}", "key": "lr", "value": "0.01"}),
    post("log-param: value is a number", LOG_PARAM, {"run_id": "{run_id}", "key": "lr",
                                                     "value": 0.01}),
    post("log-param: value true", LOG_PARAM, {"run_id": "{run_id}", "key": "lr", "value": True}),
    post("log-param: value missing", LOG_PARAM, {"run_id": "{run_id}", "key": "lr"}),
    post("log-param: value of 6001 characters", LOG_PARAM,
         {"run_id": "{run_id}", "key": "lr", "value": "x" * 6001}),
    post("log-param: key of 251 characters", LOG_PARAM,
         {"run_id": "{run_id}", "key": "p" * 251, "value": "1"}),
    post("log-param: key missing", LOG_PARAM, {"run_id": "{run_id}", "value": "1"}),
    post("log-param: key with '*'", LOG_PARAM, {"run_id": "{run_id}", "key": "a*b", "value": "1"}),
    post("log-param: run_uuid instead of run_id", LOG_PARAM,
         {"run_uuid": "{run_id}", "key": "lr", "value": "0.01"}),
    # --- runs/set-tag
    post("set-tag: valid", SET_TAG, {"run_id": "{run_id}", "key": "team", "value": "ml"}),
    post("set-tag: value is an object", SET_TAG,
         {"run_id": "{run_id}", "key": "team", "value": {"name": "ml"}}),
    post("set-tag: key null", SET_TAG, {"run_id": "{run_id}", "key": None, "value": "ml"}),
    post("set-tag: key with '*'", SET_TAG, {"run_id": "{run_id}", "key": "a*b", "value": "ml"}),
    post("set-tag: key of 251 characters", SET_TAG,
         {"run_id": "{run_id}", "key": "t" * 251, "value": "ml"}),
    post("set-tag: value of 8001 characters", SET_TAG,
         {"run_id": "{run_id}", "key": "notes", "value": "x" * 8001}),
    post("set-tag: value missing", SET_TAG, {"run_id": "{run_id}", "key": "team"}),
    post("set-tag: run name tag", SET_TAG,
         {"run_id": "{run_id}", "key": "mlflow.runName", "value": "renamed"}),
    # --- runs/log-batch
    post("log-batch: valid", LOG_BATCH, {
        "run_id": "{run_id}", "metrics": [_batch_metric(0), _batch_metric(1)],
        "params": [{"key": "lr", "value": "0.01"}], "tags": [{"key": "team", "value": "ml"}]}),
    post("log-batch: run_id only", LOG_BATCH, {"run_id": "{run_id}"}),
    post("log-batch: empty object", LOG_BATCH, {}),
    post("log-batch: invalid JSON", LOG_BATCH, "{run_id: {run_id}}"),
    post("log-batch: JSON null body", LOG_BATCH, "null"),
    post("log-batch: empty body", LOG_BATCH, ""),
    post("log-batch: no Content-Type", LOG_BATCH, {"run_id": "{run_id}"}, {}),
    post("log-batch: double-encoded JSON", LOG_BATCH, j(j({"run_id": "{run_id}"}))),
    post("log-batch: metrics is an object", LOG_BATCH,
         {"run_id": "{run_id}", "metrics": _batch_metric(0)}),
    post("log-batch: metric without timestamp", LOG_BATCH,
         {"run_id": "{run_id}", "metrics": [{"key": "m", "value": 1.0}]}),
    post("log-batch: second metric without key", LOG_BATCH,
         {"run_id": "{run_id}", "metrics": [_batch_metric(0), {"value": 1, "timestamp": TS}]}),
    post("log-batch: metric value is a word", LOG_BATCH,
         {"run_id": "{run_id}", "metrics": [_batch_metric(0, value="high"), _batch_metric(1)],
          "params": [{"key": "lr", "value": "0.01"}]}),
    post("log-batch: metric value 0 and timestamp 0", LOG_BATCH,
         {"run_id": "{run_id}", "metrics": [_batch_metric(0, value=0, timestamp=0)]}),
    post("log-batch: metric with negative timestamp", LOG_BATCH,
         {"run_id": "{run_id}", "metrics": [_batch_metric(0, timestamp=-5)]}),
    post("log-batch: metric key with '*'", LOG_BATCH,
         {"run_id": "{run_id}", "metrics": [_batch_metric(0, key="a*b")]}),
    post("log-batch: metric item is a number", LOG_BATCH, {"run_id": "{run_id}", "metrics": [1]}),
    post("log-batch: param value is a number", LOG_BATCH,
         {"run_id": "{run_id}", "params": [{"key": "lr", "value": 0.01}]}),
    post("log-batch: duplicate param keys", LOG_BATCH,
         {"run_id": "{run_id}", "params": [{"key": "lr", "value": "1"}] * 2}),
    post("log-batch: tag without key", LOG_BATCH,
         {"run_id": "{run_id}", "tags": [{"value": "ml"}]}),
    post("log-batch: 101 params", LOG_BATCH, {
        "run_id": "{run_id}", "params": [{"key": f"p{i}", "value": "1"} for i in range(101)]}),
    post("log-batch: 1001 metrics", LOG_BATCH,
         {"run_id": "{run_id}", "metrics": [_batch_metric(i) for i in range(1001)]}),
    post("log-batch: 960 metrics + 50 params", LOG_BATCH, {
        "run_id": "{run_id}", "metrics": [_batch_metric(i) for i in range(960)],
        "params": [{"key": f"p{i}", "value": "1"} for i in range(50)]}),
    post("log-batch: run_id with spaces", LOG_BATCH,
         {"run_id": "not a run id!", "metrics": [_batch_metric(0)]}),
    post("log-batch: run_uuid instead of run_id", LOG_BATCH,
         {"run_uuid": "{run_id}", "metrics": [_batch_metric(0)]}),
    post("log-batch: metric in seconds", LOG_BATCH,
         {"run_id": "{run_id}", "metrics": [_batch_metric(0, timestamp=TS // 1000)]}),
    # --- runs/create
    post("runs/create: valid", CREATE_RUN,
         {"experiment_id": "{experiment_id}", "start_time": TS, "run_name": "r1"}),
    post("runs/create: experiment_id as a number", CREATE_RUN, {"experiment_id": 1}),
    post("runs/create: experiment_id is a word", CREATE_RUN, {"experiment_id": "my-experiment"}),
    post("runs/create: empty object", CREATE_RUN, {}),
    post("runs/create: start_time is a word", CREATE_RUN,
         {"experiment_id": "{experiment_id}", "start_time": "now"}),
    post("runs/create: start_time as digit string", CREATE_RUN,
         {"experiment_id": "{experiment_id}", "start_time": str(TS)}),
    post("runs/create: fractional start_time", CREATE_RUN,
         {"experiment_id": "{experiment_id}", "start_time": TS + 0.5}),
    post("runs/create: camelCase fields", CREATE_RUN,
         {"experimentId": "{experiment_id}", "startTime": TS}),
    post("runs/create: run_name vs mlflow.runName tag", CREATE_RUN, {
        "experiment_id": "{experiment_id}", "run_name": "a",
        "tags": [{"key": "mlflow.runName", "value": "b"}]}),
    post("runs/create: tags as an object", CREATE_RUN,
         {"experiment_id": "{experiment_id}", "tags": {"team": "ml"}}),
    post("runs/create: JSON array body", CREATE_RUN, []),
    post("runs/create: array naming a field", CREATE_RUN, ["experiment_id"]),
    post("runs/create: run_name is a number", CREATE_RUN,
         {"experiment_id": "{experiment_id}", "run_name": 7}),
    # --- runs/update
    post("runs/update: valid", UPDATE_RUN,
         {"run_id": "{run_id}", "status": "FINISHED", "end_time": TS}),
    post("runs/update: unknown status", UPDATE_RUN, {"run_id": "{run_id}", "status": "DONE"}),
    post("runs/update: status as a number", UPDATE_RUN, {"run_id": "{run_id}", "status": 3}),
    post("runs/update: end_time is a word", UPDATE_RUN,
         {"run_id": "{run_id}", "end_time": "later"}),
    post("runs/update: fractional end_time before status", UPDATE_RUN,
         {"run_id": "{run_id}", "end_time": TS + 0.5, "status": "KILLED"}),
    post("runs/update: run_id missing", UPDATE_RUN, {"status": "FAILED"}),
    post("runs/update: run_uuid instead of run_id", UPDATE_RUN,
         {"run_uuid": "{run_id}", "status": "FAILED"}),
    post("runs/update: run_name is a number", UPDATE_RUN, {"run_id": "{run_id}", "run_name": 7}),
    # --- experiments/create
    post("experiments/create: valid", CREATE_EXPERIMENT, {"name": "preflight-{unique}"}),
    post("experiments/create: name missing", CREATE_EXPERIMENT, {}),
    post("experiments/create: empty name", CREATE_EXPERIMENT, {"name": ""}),
    post("experiments/create: name is a number", CREATE_EXPERIMENT, {"name": 5}),
    post("experiments/create: name of 501 characters", CREATE_EXPERIMENT,
         {"name": "{unique}" + "x" * 501}),
    post("experiments/create: tags as an object", CREATE_EXPERIMENT,
         {"name": "preflight-{unique}", "tags": {"team": "ml"}}),
    post("experiments/create: tag key with '*'", CREATE_EXPERIMENT,
         {"name": "preflight-{unique}", "tags": [{"key": "a*b", "value": "v"}]}),
    post("experiments/create: tag without key", CREATE_EXPERIMENT,
         {"name": "preflight-{unique}", "tags": [{"value": "v"}]}),
    post("experiments/create: tag value of 20001 characters", CREATE_EXPERIMENT,
         {"name": "preflight-{unique}", "tags": [{"key": "k", "value": "v" * 20001}]}),
    post("experiments/create: artifact_location is a number", CREATE_EXPERIMENT,
         {"name": "preflight-{unique}", "artifact_location": 5}),
    post("experiments/create: artifact_location runs:/ URI", CREATE_EXPERIMENT,
         {"name": "preflight-{unique}", "artifact_location": "runs:/abc/model"}),
    post("experiments/create: artifact_location with fragment", CREATE_EXPERIMENT,
         {"name": "preflight-{unique}", "artifact_location": "file:///tmp/a#frag"}),
    post("experiments/create: no Content-Type", CREATE_EXPERIMENT,
         {"name": "preflight-{unique}"}, {}),
    # Found by the recorder: half a dataset is refused by the Metric entity, not the schema.
    post("log-metric: dataset_name without dataset_digest", LOG_METRIC,
         metric(dataset_name="eval")),
    post("log-batch: metric with dataset_digest only", LOG_BATCH,
         {"run_id": "{run_id}", "metrics": [_batch_metric(0, dataset_digest="abc")]}),
    # MLflow's own client sends both spellings with the same value.
    post("log-metric: run_id and run_uuid both, as MlflowClient sends", LOG_METRIC,
         metric(run_uuid="{run_id}")),
]

# The findings of issue 11, each verified live before it was added here.
CASES += [
    post("log-metric: body nested 2,000 levels deep", LOG_METRIC,
         '{"a":' * 2000 + "1" + "}" * 2000),
    post("log-metric: array nested 2,000 levels deep", LOG_METRIC, "[" * 2000 + "]" * 2000),
    post("log-metric: unknown field nested 1,000 levels deep", LOG_METRIC,
         j(metric())[:-1] + ', "x": ' + "[" * 999 + "]" * 999 + "}"),
    post("log-metric: unknown field nested 900 levels deep", LOG_METRIC,
         j(metric())[:-1] + ', "x": ' + "[" * 899 + "]" * 899 + "}"),
    post("log-metric: path spelled log%2Dmetric", f"{API}/runs/log%2Dmetric", metric()),
    post("log-metric: value is the string Infinity", LOG_METRIC, metric(value="Infinity")),
    post("log-batch: metric timestamp in seconds", LOG_BATCH,
         {"run_id": "{run_id}", "metrics": [_batch_metric(0, timestamp=1700000000)]}),
    post("log-batch: param value of 7000 characters", LOG_BATCH,
         {"run_id": "{run_id}", "params": [{"key": "long", "value": "x" * 7000}]}),
    post("log-batch: 1,001 metrics", LOG_BATCH,
         {"run_id": "{run_id}", "metrics": [_batch_metric(i) for i in range(1001)]}),
    post("runs/delete: run_uuid only", f"{API}/runs/delete", {"run_uuid": "{run_id}"}),
    post("experiments/restore: an active experiment", f"{API}/experiments/restore",
         {"experiment_id": "{experiment_id}"}),
    post("mpu/create: artifact path escaping with ..%2F", "/api/2.0/mlflow-artifacts/mpu/create/"
         "..%2Fetc", {"path": "x", "num_parts": 2}),
    post("mpu/create: path missing", "/api/2.0/mlflow-artifacts/mpu/create/a/b.txt", {}),
    post("log-parameter: same key twice in one batch", LOG_BATCH,
         {"run_id": "{run_id}", "params": [{"key": "a", "value": "1"},
                                           {"key": "a", "value": "2"}]}),
]
