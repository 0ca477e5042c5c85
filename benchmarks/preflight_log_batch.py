"""How long preflight takes on a large log-batch, next to the floor: what the server itself must
do with the same body before it can answer (json.loads, then protobuf's ParseDict).

    .venv/bin/python benchmarks/preflight_log_batch.py [N ...]

Prints, per batch size, the best and median of 3 runs of each, on this machine.
"""

from __future__ import annotations

import json
import statistics
import sys
import time

from mlflow.protos.service_pb2 import LogBatch
from mlflow.utils.proto_json_utils import parse_dict

from helpers.preflight_pipeline import preflight

JSON = {"Content-Type": "application/json"}


def _times(fn, runs: int = 3) -> tuple[float, float]:
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return min(out), statistics.median(out)


def main(sizes: list[int]) -> None:
    preflight("POST", "/api/2.0/mlflow/runs/log-batch", JSON, "{}")  # build the model once
    for n in sizes:
        body = json.dumps({"run_id": "r", "metrics": [
            {"key": f"m{i}", "value": float(i), "timestamp": 1700000000000, "step": i}
            for i in range(n)]})
        floor = _times(lambda b=body: parse_dict(json.loads(b), LogBatch()))
        ours = _times(lambda b=body: preflight("POST", "/api/2.0/mlflow/runs/log-batch", JSON, b))
        print(f"{n:>8,} metrics: preflight best {ours[0]:.2f} s (median {ours[1]:.2f}); "
              f"json.loads+ParseDict best {floor[0]:.2f} s (median {floor[1]:.2f})")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1_000, 200_000])
