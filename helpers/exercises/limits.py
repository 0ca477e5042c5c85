"""Self-check for 11_limits_params_ids: send 2 500 metric points in as few log-batch requests as allowed."""

from __future__ import annotations

from typing import Any

from helpers import runs
from helpers.exercises import Feedback, has_placeholder, placeholders_left
from helpers.wire import send

LOG_BATCH = "/api/2.0/mlflow/runs/log-batch"


def check_batches(points: list[dict[str, Any]], size: Any, run_id: str) -> Feedback:
    """Send `points` in chunks of `size`; all must be stored, with the fewest requests the server allows."""
    if has_placeholder(size):
        return placeholders_left()
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        return Feedback(False, [f"`size` must be a positive integer, not {size!r}."])
    from mlflow.utils.validation import MAX_METRICS_PER_BATCH  # the server's own limit, not a copy

    for start in range(0, len(points), size):
        answer = send(LOG_BATCH, json={"run_id": run_id, "metrics": points[start:start + size]})
        if answer.status != 200:
            return Feedback(False, [f"the request for points {start}.. got {answer.status}: "
                                    f"{answer.message}", "read the limit in the message."], answer)
    keys = {p["key"] for p in points}
    stored = sum(len(runs.metric_history(run_id, key)) for key in keys)
    if stored < len(points):
        return Feedback(False, [f"only {stored} of {len(points)} points are stored."])
    requests_made = -(-len(points) // size)
    if size < MAX_METRICS_PER_BATCH:
        return Feedback(False, [f"all {len(points)} points stored in {requests_made} requests; the "
                                "server allows bigger batches — fewer requests are possible."])
    return Feedback(True, [f"all {len(points)} points stored in {requests_made} requests of at most "
                           f"{MAX_METRICS_PER_BATCH} metrics (read back from metrics/get-history)."])
