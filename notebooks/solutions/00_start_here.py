"""Worked solution for the exercise of 00_start_here (run through its self-check by the tests)."""

import time


def body(run_id: str) -> dict:
    return {"run_id": run_id, "key": "accuracy", "value": 0.9,
            "timestamp": int(time.time() * 1000), "step": 1}
