"""A small training script that logs to MLflow through its REST API.

    MLFLOW_TRACKING_URI=http://127.0.0.1:5000 python example_program.py

It creates an experiment and a run, logs a parameter and a loss per epoch, and finishes the run.
Every call checks the answer (`raise_for_status`), so the program exits with status 0 only when the
server accepted everything. example_program.py has a planted bug that the server accepts without a
word; test_mlflow_requests.py catches it. example_program_fixed.py is the same program, fixed.
"""

import os
import sys
import time
import uuid

import requests


def call(api: str, endpoint: str, body: dict) -> dict:
    response = requests.post(f"{api}/{endpoint}", json=body, timeout=30)
    response.raise_for_status()
    return response.json()


def main() -> int:
    tracking_uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    if not tracking_uri.startswith(("http://", "https://")):
        print("Set MLFLOW_TRACKING_URI to your MLflow server, e.g. http://127.0.0.1:5000",
              file=sys.stderr)
        return 2
    api = tracking_uri.rstrip("/") + "/api/2.0/mlflow"

    name = f"400lab/example/train-{uuid.uuid4().hex[:8]}"
    experiment_id = call(api, "experiments/create", {"name": name})["experiment_id"]
    run = call(api, "runs/create", {"experiment_id": experiment_id,
                                    "start_time": int(time.time() * 1000)})
    run_id = run["run"]["info"]["run_id"]
    call(api, "runs/log-parameter", {"run_id": run_id, "key": "learning_rate", "value": "0.01"})

    for epoch, loss in enumerate([0.9, 0.5, 0.3], start=1):
        call(api, "runs/log-metric", {
            "run_id": run_id,
            "key": "loss",
            "value": loss,
            "timestamp": int(time.time()),
            "step": epoch,
        })

    call(api, "runs/update", {"run_id": run_id, "status": "FINISHED",
                              "end_time": int(time.time() * 1000)})
    print(f"logged 3 epochs to run {run_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
