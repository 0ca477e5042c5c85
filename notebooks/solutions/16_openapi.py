"""Worked solution for the exercise of 16_openapi."""

import time


def body() -> dict:
    """A log-batch body (without run_id) that the document, preflight and the server accept.

    Timestamps are milliseconds; here sent as a decimal string, which the document allows for
    64-bit integers (a program whose JSON numbers are doubles can send them exactly this way).
    """
    return {
        "metrics": [{"key": "loss", "value": 0.25, "timestamp": str(int(time.time() * 1000)),
                     "step": 1}],
        "params": [{"key": "optimizer", "value": "adam"}],
    }
