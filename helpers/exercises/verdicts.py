"""Self-check for 05_verdicts: make the article's "correct" request succeed with one added field."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from helpers import runs
from helpers.exercises import Feedback, has_placeholder, placeholders_left
from helpers.verdicts import ARTICLE_HEADERS, Planned, article_body, send_planned


def check_one_change(data: Mapping[str, Any], run_id: str) -> Feedback:
    """05_verdicts: the article's `data_correct` plus exactly one field, sent exactly as it sends it."""
    from helpers.model_table import SECONDS_THRESHOLD  # imports MLflow: only when checking

    if has_placeholder(data):
        return placeholders_left()
    if not isinstance(data, Mapping):
        return Feedback(False, [f"`data` is a {type(data).__name__}; keep it a dict, as the article does."])
    original = article_body(run_id)
    changed = [k for k in original if data.get(k) != original[k]]
    if changed:
        return Feedback(False, [f"keep the article's fields as they are; you changed {', '.join(changed)}."])
    added = [k for k in data if k not in original]
    if len(added) != 1:
        return Feedback(False, [f"add exactly one field (you added {len(added)}: {added})."])
    answer = send_planned(Planned("exercise", dict(ARTICLE_HEADERS), json.dumps(dict(data)), False))
    if answer.status != 200:
        return Feedback(False, [f"{answer.status} {answer.reason}: {answer.message}",
                                "read the message: it names what the server is missing."], answer)
    points = [p for p in runs.metric_history(run_id, "some_metric")
              if int(p["timestamp"]) == data.get("timestamp")]
    if not points:
        return Feedback(False, ["200 OK, but no point of some_metric carries the timestamp you sent: "
                                "send an integer number of milliseconds."], answer)
    if int(points[0]["timestamp"]) < SECONDS_THRESHOLD:
        return Feedback(False, ["200 OK, but the stored timestamp is in 1970: MLflow reads it as "
                                "milliseconds; multiply seconds by 1000."], answer)
    return Feedback(True, [f"200 OK with the article's header, call and fields plus {added[0]!r}; "
                           "the point is stored (read back from metrics/get-history)."], answer)
