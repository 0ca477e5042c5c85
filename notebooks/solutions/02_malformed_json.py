"""Worked solution of 02_malformed_json's exercise (tests feed it to the self-check).

The article's string `{run_uuid:"...","key":"some_metric","value":0.99}` repaired by hand: the key
`run_uuid` in double quotes, and the `timestamp` the handler requires, in milliseconds.
"""

import json
import time


def fixed_body(run_id: str) -> str:
    """The article's string, repaired by hand."""
    return ('{"run_uuid":"' + run_id + '","key":"some_metric","value":0.99,"timestamp":'
            + str(int(time.time() * 1000)) + "}")


def fixed_body_with_json_dumps(run_id: str) -> str:
    """The same body, written by json.dumps: the way that cannot produce malformed JSON."""
    return json.dumps({"run_uuid": run_id, "key": "some_metric", "value": 0.99,
                       "timestamp": int(time.time() * 1000)})
