"""Worked solution for the exercise of 05_verdicts: the one field the article's request lacks."""

import time


def data(run_id: str) -> dict:
    return {"run_uuid": run_id, "key": "some_metric", "value": 0.99,
            "timestamp": int(time.time() * 1000)}
