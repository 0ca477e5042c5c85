"""Worked solution for 12_silent_success: log loss = 0.25 at step 3, stored as meant."""

import time


def repaired_body(run_id: str) -> dict:
    """The colleague's body with its three silent traps removed.

    - "stpe" was a typo: the server drops unknown fields, so the step was stored as 0;
    - time.time() is a float in seconds: protobuf cannot read it as an int64 and leaves it at 0;
    - the timestamp must be integer milliseconds.
    """
    return {
        "run_id": run_id,
        "key": "loss",
        "step": 3,
        "value": 0.25,
        "timestamp": int(time.time() * 1000),
    }
