"""Worked solution of 02_malformed_json's exercise (tests feed it to the self-check).

The article's body `{run_id: "...", key: "accuracy", value: 0.95}` repaired by hand: every key in
double quotes, and the `timestamp` the handler requires, in milliseconds.
"""

import json
import time


def fixed_body(run_id: str) -> str:
    """The article's body, repaired by hand."""
    return ('{"run_id": "' + run_id + '", "key": "accuracy", "value": 0.95, '
            '"timestamp": ' + str(int(time.time() * 1000)) + "}")


def fixed_body_with_json_dumps(run_id: str) -> str:
    """The same body, written by json.dumps: the way that cannot produce malformed JSON."""
    return json.dumps({"run_id": run_id, "key": "accuracy", "value": 0.95,
                       "timestamp": int(time.time() * 1000)})
