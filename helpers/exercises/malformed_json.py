"""Self-check for 02_malformed_json: repair the article's body string so the server accepts it."""

from __future__ import annotations

import json
from typing import Any

from helpers import runs
from helpers.diagnose import explain
from helpers.exercises import Feedback, has_placeholder, placeholders_left
from helpers.wire import send

LOG_METRIC = "/api/2.0/mlflow/runs/log-metric"
ARTICLE_HEADERS = {"Content-type": "application/json"}  # the article's spelling


def check_body_text(text: Any, run_id: str) -> Feedback:
    """02_malformed_json: `text` is a str body logging some_metric = 0.99 to `run_id`.

    It is sent exactly as the article sends its body (`data=text` with the JSON Content-Type), after
    the same `json.loads` test a careful client runs first; the metric is then read back.
    """
    if has_placeholder(text) or has_placeholder(run_id):
        return placeholders_left()
    if not isinstance(text, str):
        return Feedback(False, [f"`fixed` is a {type(text).__name__}; this exercise is about the "
                                "body as text, so make it a str (json.dumps(...) returns one)."])
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        around = text[max(0, exc.pos - 12):exc.pos + 12]
        return Feedback(False, [
            f"json.loads refuses it: {exc.msg} (line {exc.lineno}, column {exc.colno}), near "
            f"{around!r}.",
            "The server would read it as nothing and report 'run_id' missing. JSON wants double "
            "quotes around every key and string, and no trailing comma."])
    if not isinstance(body, dict):
        return Feedback(False, [f"it is valid JSON, but a {type(body).__name__}, not an object "
                                "{...}: log-metric needs an object with named fields."])
    if run_id not in (body.get("run_id"), body.get("run_uuid")):
        return Feedback(False, ["the text is valid JSON; now make its run_uuid (or run_id) the "
                                f"notebook's run id ({run_id})."])
    answer = send(LOG_METRIC, headers=ARTICLE_HEADERS, data=text)
    diagnosis = explain(answer)
    if answer.status != 200:
        return Feedback(False, [f"valid JSON, but the server answered {answer.status} "
                                f"{answer.reason}: {answer.message}", diagnosis.fix], answer)
    if diagnosis.severity == "warning":
        return Feedback(False, [f"accepted, but: {diagnosis.cause}", diagnosis.fix], answer)
    stored = [p["value"] for p in runs.metric_history(run_id, "some_metric")]
    if 0.99 not in stored:
        return Feedback(False, ["accepted, but the run has no some_metric = 0.99 (stored: "
                                f"{stored}); keep the article's key and value."], answer)
    return Feedback(True, ["json.loads accepts your text, the server answered 200, and "
                           "some_metric = 0.99 is stored (read back from metrics/get-history)."],
                    answer)
