"""Worked solution for the exercise of 01_missing_content_type.

Keep `data=json.dumps(body)`: the header's value must be exactly `application/json` (its name may be
spelled `Content-type`, as the article does), and the body needs the required `timestamp` in ms.
"""

import time

HEADERS = {"Content-type": "application/json"}


def body(run_id: str) -> dict:
    return {"run_uuid": run_id, "key": "some_metric", "value": 0.97,
            "timestamp": int(time.time() * 1000), "step": 3}
