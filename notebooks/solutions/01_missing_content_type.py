"""Worked solution for the exercise of 01_missing_content_type."""

import time

HEADERS = {"Content-Type": "application/json"}


def body(run_id: str) -> dict:
    return {"run_id": run_id, "key": "accuracy", "value": 0.97,
            "timestamp": int(time.time() * 1000), "step": 3}
