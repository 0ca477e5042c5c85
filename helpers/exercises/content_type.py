"""Self-check for 01_missing_content_type: fix the article's request without json=."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from helpers.exercises import Feedback, has_placeholder, placeholders_left
from helpers.wire import send

LOG_METRIC = "/api/2.0/mlflow/runs/log-metric"


def check_content_type_fix(headers: Mapping[str, str], body: Mapping[str, Any]) -> Feedback:
    """01_missing_content_type: make `requests.post(url, data=json.dumps(body), headers=...)` pass."""
    if has_placeholder(headers) or has_placeholder(body):
        return placeholders_left()
    answer = send(LOG_METRIC, headers=dict(headers), data=json.dumps(dict(body)))
    if answer.status == 200:
        return Feedback(True, [f"200 OK with Content-Type: {answer.request.header('Content-Type')}"
                               " — and the body was sent with data=, exactly as you wrote it."],
                        answer)
    hint = {
        "Bad Request. Content-Type header is missing.":
            "no Content-Type header went out: add one to `headers`.",
    }.get(answer.message or "")
    if hint is None and (answer.message or "").startswith("Bad Request. Content-Type must be"):
        hint = ("the server compares the media type before any ';' with 'application/json', "
                "exactly and case-sensitively.")
    if hint is None and "Missing value for required parameter" in (answer.message or ""):
        hint = "the header is right now; the body misses a required field (timestamp?)."
    return Feedback(False, [f"{answer.status} {answer.reason}: {answer.message}",
                            hint or "read the message above: it names the check that fired."],
                    answer)
