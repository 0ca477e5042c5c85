"""Self-check for 16_openapi: one log-batch body, judged three ways.

Meant: metric `loss` = 0.25 at step 1, logged now; parameter `optimizer` = `adam`. The check asks
the OpenAPI document (a JSON-Schema validator, as a program in any language would), then preflight,
then the live server on a fresh run of its own, and reads the run back: a body passes only when
all three accept it and the run holds what was meant.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from helpers import openapi, runs
from helpers.exercises import Feedback, batch_body_refusal, loss_differences
from helpers.preflight_pipeline import preflight
from helpers.wire import send

LOG_BATCH = "/api/2.0/mlflow/runs/log-batch"
MEANT = "loss = 0.25 at step 1 (logged now), param optimizer = adam"
_DAY_MS = 24 * 3600 * 1000


def check_three_ways(body: Mapping[str, Any]) -> Feedback:
    """16: `body` is a log-batch body without run_id that all three judges accept."""
    refused = batch_body_refusal(body, "body", '"metrics" and "params"')
    if refused:
        return refused
    run_id = runs.new_run("16-exercise").run_id
    full = {"run_id": run_id, **body}
    lines: list[str] = []
    schema_errors = openapi.check_body(openapi.load(), "POST", LOG_BATCH, full)
    lines.append("document: " + ("valid" if not schema_errors else "invalid"))
    lines += [f"  {e}" for e in schema_errors]
    raw = json.dumps(full).encode()
    verdict = preflight("POST", LOG_BATCH, {"Content-Type": "application/json"}, raw)
    problems = [f for f in verdict.findings if f.severity in ("error", "warning")]
    lines.append(f"preflight: predicts {verdict.predicted_status}"
                 + (f", {len(problems)} finding(s)" if problems else ", no findings"))
    lines += [f"  {f.severity}: {f.message}" for f in problems]
    exchange = send(LOG_BATCH, json=full)
    lines.append(f"server: {exchange.status} {exchange.reason}"
                 + (f" {exchange.error_code}: {exchange.message}" if exchange.error_code else ""))
    wrong = _stored_differences(run_id) if exchange.status == 200 else []
    lines += [f"  stored: {w}" for w in wrong]
    passed = not schema_errors and not problems and exchange.status == 200 and not wrong
    head = (f"the document, preflight and the server all accept it, and the run holds {MEANT}."
            if passed else f"not all three agree yet (meant: {MEANT}).")
    return Feedback(passed, [head, *lines], exchange)


def _stored_differences(run_id: str) -> list[str]:
    data = runs.get_run(run_id).get("data", {})
    params = {p["key"]: p.get("value", "") for p in data.get("params", [])}
    metrics = {m["key"]: m for m in data.get("metrics", [])}
    out = loss_differences(metrics)
    if params.get("optimizer") != "adam":
        out.append(f"optimizer = {params.get('optimizer')!r}, not 'adam'"
                   if "optimizer" in params else "no param 'optimizer'")
    return out


__all__ = ["check_three_ways"]
