"""Self-check for 04_request_lab: the two challenges, judged from `lab.history` and the server.

Challenge 1: make the server answer 404. Challenge 2: get a 200 that stores the wrong timestamp.
The check reads what the lab recorded for each Send and, for challenge 2, reads the stored
data back from the server: a 200 alone proves nothing about what was stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from helpers import request_parts as rp
from helpers import runs
from helpers.errors import KitError
from helpers.exercises import Feedback, has_placeholder, placeholders_left

if TYPE_CHECKING:
    from helpers.widgets import Attempt, RequestLab

#: A timestamp further than this from the moment of sending is "wrong" (one day, in ms).
TOLERANCE_MS = 24 * 3600 * 1000


def send_with_fields(lab: RequestLab, fields: Mapping[str, Any]) -> str:
    """Set field values (Python values; `request_parts.OMIT` unticks a field), press Send.

    The code route to a challenge: the same controls a click would change.
    """
    if has_placeholder(fields):
        return str(placeholders_left())
    for name, value in fields.items():
        row = lab.field(name)
        if value is rp.OMIT:
            row.include.value = False
        else:
            row.value.value = rp.value_text(value)
            row.include.value = True
    lab.send_button.click()
    return lab.answer_text().splitlines()[0] if lab.last_exchange else lab.answer_text()


def check_challenges(lab: RequestLab) -> Feedback:
    """Both challenges, from the attempts in `lab.history` (Clear history empties it; Reset keeps it)."""
    lines = []
    found_404 = next((a for a in lab.history if a.status == 404), None)
    if found_404 is not None:
        lines.append(f"challenge 1 (a 404): solved by attempt #{found_404.number}, "
                     f"{found_404.error_code or 'no error_code'}: {found_404.message or ''}")
    else:
        lines.append("challenge 1 (a 404): not yet.")
    wrong = next(((a, why) for a in lab.history if (why := stored_wrong_timestamp(a))), None)
    if wrong is not None:
        lines.append(f"challenge 2 (a 200 storing a wrong timestamp): solved by attempt "
                     f"#{wrong[0].number}: {wrong[1]}")
    else:
        lines.append("challenge 2 (a 200 storing a wrong timestamp): not yet (a stored timestamp "
                     "a day or more from the moment of sending).")
    solved = (found_404 is not None) + (wrong is not None)
    lines.insert(0, "both challenges solved." if solved == 2 else
                 f"{solved} of 2 challenges solved (history since it was last cleared).")
    return Feedback(solved == 2, lines, lab.last_exchange)


def stored_wrong_timestamp(attempt: Attempt) -> str | None:
    """Why this attempt stored a wrong timestamp (read back from the server), or None."""
    if attempt.status != 200 or attempt.exchange is None:
        return None
    payload = attempt.payload
    base_url = attempt.exchange.request.url.split("/api/", 1)[0]
    try:
        if attempt.endpoint == "runs/create":
            info = ((attempt.exchange.json or {}).get("run") or {}).get("info") or {}
            stored = int(info.get("start_time", attempt.sent_at_ms))
            if _far(stored, attempt.sent_at_ms):
                return f"the new run's start_time is stored as {stored}."
            return None
        run_id = payload.get("run_id") or payload.get("run_uuid") or attempt.run_id
        for key, value in _metric_points(attempt.endpoint, payload, attempt.sent_at_ms):
            for point in runs.metric_history(str(run_id), str(key), base_url=base_url):
                if point.get("value") == value and _far(int(point.get("timestamp", 0)),
                                                        attempt.sent_at_ms):
                    return (f"metric {key!r} = {value} is stored with timestamp "
                            f"{int(point.get('timestamp', 0))}, not the time it was sent.")
    except (KitError, TypeError, ValueError):
        return None
    return None


def _metric_points(endpoint: str, payload: Mapping[str, Any],
                   sent_at_ms: int) -> Iterable[tuple[Any, Any]]:
    """(key, value) of each metric point the request sent with a timestamp far from now."""
    if endpoint == "log-metric":
        candidates = [payload]
    elif endpoint == "log-batch" and isinstance(payload.get("metrics"), list):
        candidates = [m for m in payload["metrics"] if isinstance(m, Mapping)]
    else:
        candidates = []
    for point in candidates:
        sent = point.get("timestamp")
        if isinstance(sent, (int, float)) and not isinstance(sent, bool) and \
                isinstance(point.get("value"), (int, float)) and _far(int(sent), sent_at_ms):
            yield point.get("key"), float(point["value"])


def _far(timestamp: int, sent_at_ms: int) -> bool:
    return abs(timestamp - sent_at_ms) > TOLERANCE_MS
