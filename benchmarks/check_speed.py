#!/usr/bin/env python3
"""Speed of `python -m helpers check`: one request against `import mlflow`, and a large HAR.

- one request: wall time of `python -m helpers check '<curl command>'` (offline) next to
  `python -c "import mlflow"`, alternating, median of --runs each (goal: <= 1.3x);
- a HAR of --entries entries (default 10,000; log-metric, log-batch, set-tag, runs/create and
  UI GETs, valid and broken, every body different): the time `check()` takes after start-up
  (imports done), in-process, and the whole command's wall time (goal: <= 5 s after start-up).

    PYTHONPATH=$PWD .venv/bin/python benchmarks/check_speed.py [--runs 5] [--entries 10000]

Figures are printed, never asserted: the machine may be shared, so its load is printed too.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BASE = "http://127.0.0.1:5000"
API = BASE + "/api/2.0/mlflow"
RUN = "0123456789abcdef0123456789abcdef"
CURL = (f"curl -X POST {API}/runs/log-metric -d '{{\"run_id\": \"{RUN}\", \"key\": \"loss\", "
        "\"value\": 0.5, \"timestamp\": 1700000000}'")


def timed(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one command: CPU time is steadier on a shared machine."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MLFLOW_DISABLE_TELEMETRY": "true"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def har(entries: int) -> dict:
    """A devtools-like HAR: MLflow API calls of many kinds, a tenth of them broken, plus UI GETs."""
    out = []
    for i in range(entries):
        kind = i % 10
        headers = [{"name": "Content-Type", "value": "application/json"},
                   {"name": "Origin", "value": BASE}, {"name": "Accept", "value": "*/*"}]
        method, url, body = "POST", f"{API}/runs/log-metric", {
            "run_id": RUN, "key": f"m{i % 50}", "value": i / 7, "timestamp": 1700000000000 + i,
            "step": i}
        if kind == 1:
            url, body = f"{API}/runs/log-batch", {"run_id": RUN, "metrics": [
                {"key": f"b{j}", "value": j, "timestamp": 1700000000000 + i, "step": i}
                for j in range(5)], "params": [{"key": f"p{i}", "value": str(i)}]}
        elif kind == 2:
            url, body = f"{API}/runs/set-tag", {"run_id": RUN, "key": f"t{i}", "value": "v"}
        elif kind == 3:
            method, url, body = "GET", f"{BASE}/ajax-api/2.0/mlflow/runs/get?run_id={RUN}&i={i}", None
        elif kind == 4:
            url, body = f"{API}/runs/create", {"experiment_id": "0", "run_name": f"r{i}"}
        elif kind == 5:  # broken: no Content-Type (fetch with a string body sends text/plain)
            headers[0]["value"] = "text/plain;charset=UTF-8"
        elif kind == 6:  # broken: seconds
            body["timestamp"] = 1700000000 + i
        request = {"method": method, "url": url, "httpVersion": "HTTP/1.1", "headers": headers,
                   "queryString": [], "cookies": [], "headersSize": -1, "bodySize": 0}
        if body is not None:
            request["postData"] = {"mimeType": headers[0]["value"], "text": json.dumps(body)}
        out.append({"startedDateTime": "2026-12-03T10:00:00.000Z", "time": 3, "request": request,
                    "response": {"status": 200, "statusText": "OK", "httpVersion": "HTTP/1.1",
                                 "headers": [], "cookies": [], "content": {"size": 0,
                                 "mimeType": "application/json"}, "redirectURL": "",
                                 "headersSize": -1, "bodySize": 0},
                    "cache": {}, "timings": {"send": 0, "wait": 3, "receive": 0}})
    return {"log": {"version": "1.2", "creator": {"name": "check_speed", "version": "1"},
                    "entries": out}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--entries", type=int, default=10_000)
    args = parser.parse_args()
    py = sys.executable
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {os.cpu_count()} CPUs, load average {load:.1f}")

    base, ours = [], []
    timed([py, "-c", "import mlflow"])  # warm the file cache once for both
    for _ in range(args.runs):
        base.append(timed([py, "-c", "import mlflow"]))
        ours.append(timed([py, "-m", "helpers", "check", CURL]))
    b, o = (statistics.median(t[0] for t in base), statistics.median(t[1] for t in base)), \
        (statistics.median(t[0] for t in ours), statistics.median(t[1] for t in ours))

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.har"
        path.write_text(json.dumps(har(args.entries)))
        import helpers.preflight_pipeline  # noqa: F401
        from helpers.request_check import check  # start-up: the imports check() needs

        check(CURL)  # and the server model, built once per process
        text = path.read_text()
        start, cpu = time.perf_counter(), time.process_time()
        reports = check(text)
        after_startup = (time.perf_counter() - start, time.process_time() - cpu)
        command = timed([py, "-m", "helpers", "check", str(path)])
    failing = sum(r.fails for r in reports)

    print()
    print("| what | wall | CPU | goal |")
    print("|---|---|---|---|")
    print(f"| `python -c \"import mlflow\"` (median of {args.runs}) | {b[0]:.2f} s | {b[1]:.2f} s | – |")
    print(f"| `python -m helpers check '<curl>'`, offline (median of {args.runs}) | {o[0]:.2f} s "
          f"({o[0] / b[0]:.2f}x) | {o[1]:.2f} s ({o[1] / b[1]:.2f}x) | <= 1.3x |")
    print(f"| {args.entries:,}-entry HAR: `check()` after start-up ({len(reports):,} MLflow "
          f"requests, {failing:,} flagged) | {after_startup[0]:.2f} s | {after_startup[1]:.2f} s "
          "| <= 5 s |")
    print(f"| {args.entries:,}-entry HAR: the whole command, start-up included | {command[0]:.2f} s "
          f"| {command[1]:.2f} s | – |")

if __name__ == "__main__":
    main()
