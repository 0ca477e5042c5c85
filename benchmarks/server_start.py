"""How fast does the kit's server answer /health, against `mlflow server` and the import floor?

Usage:
    python benchmarks/server_start.py [--runs 5]      # medians, alternating the three contenders
    python benchmarks/server_start.py --cycles 30     # start/stop cycles, counting stray processes

Each contender starts on a fresh data directory (a new SQLite store every time). The floor is
`python -c "import mlflow.server.fastapi_app"`: no server can answer before its app is imported.
Goal: `start_server()` within 1.5x the floor. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers import config  # noqa: E402
from helpers.processes import free_port, kill_tree  # noqa: E402
from helpers.server import start_server  # noqa: E402


def time_kit_start(home: Path) -> tuple[float, list[psutil.Process]]:
    os.environ[config.HOME_ENV] = str(home)
    started = time.perf_counter()
    handle = start_server(progress=lambda _: None)
    elapsed = time.perf_counter() - started
    root = psutil.Process(handle.pid)
    tree = [root, *root.children(recursive=True)]
    handle.stop()
    return elapsed, tree


def time_default_cli(home: Path) -> tuple[float, list[psutil.Process]]:
    """The plain `mlflow server` a learner would type (4 workers, job runner on)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_SERVER_ENABLE_JOB")}
    cmd = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
           "--backend-store-uri", f"sqlite:///{home / 'mlflow.db'}",
           "--artifacts-destination", str(home / "artifacts")]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            try:
                if requests.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if proc.poll() is not None or time.perf_counter() - started > 120:
                raise RuntimeError("mlflow server did not come up")
            time.sleep(0.05)
        requests.get(f"{url}/api/2.0/mlflow/experiments/search", params={"max_results": 1},
                     timeout=30)  # the same warm-up start_server() includes
        elapsed = time.perf_counter() - started
        root = psutil.Process(proc.pid)
        tree = [root, *root.children(recursive=True)]
    finally:
        kill_tree(proc.pid)
        proc.wait(timeout=10)
    return elapsed, tree


def time_import_floor(_: Path) -> tuple[float, list[psutil.Process]]:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import mlflow.server.fastapi_app"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started, []


def strays(tree: list[psutil.Process]) -> list[psutil.Process]:
    _, alive = psutil.wait_procs(tree, timeout=5)
    return [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]


def compare(runs: int) -> None:
    contenders = {"start_server()": time_kit_start, "mlflow server (default)": time_default_cli,
                  "import floor": time_import_floor}
    times: dict[str, list[float]] = {name: [] for name in contenders}
    processes: dict[str, int] = {}
    for i in range(runs):
        for name, fn in contenders.items():  # alternate, so drift hits every contender alike
            home = Path(tempfile.mkdtemp(prefix="lab-bench-"))
            try:
                elapsed, tree = fn(home)
                times[name].append(elapsed)
                processes[name] = len(tree)
                left = strays(tree)
                if left:
                    print(f"  warning: {len(left)} stray process(es) after {name}")
            finally:
                shutil.rmtree(home, ignore_errors=True)
        print(f"run {i + 1}/{runs}: " + ", ".join(f"{n} {t[-1]:.2f} s" for n, t in times.items()))
    floor = statistics.median(times["import floor"])
    print(f"\nmedian time to a ready server over {runs} alternating runs "
          f"({os.cpu_count()} cores, MLflow {config.PINNED_MLFLOW}):")
    for name, values in times.items():
        median = statistics.median(values)
        procs = f", {processes.get(name, 0)} processes" if processes.get(name) else ""
        print(f"  {name:26} {median:6.2f} s   {median / floor:5.2f}x floor{procs}")
    kit, cli = statistics.median(times["start_server()"]), statistics.median(times["mlflow server (default)"])
    print(f"  start_server() is {cli / kit:.2f}x faster than the default `mlflow server`;"
          f" goal <= 1.50x floor: {'met' if kit / floor <= 1.5 else 'NOT met'}")


def cycles(count: int) -> None:
    home = Path(tempfile.mkdtemp(prefix="lab-cycles-"))
    total_strays, durations = 0, []
    try:
        for i in range(count):
            elapsed, tree = time_kit_start(home)
            durations.append(elapsed)
            left = strays(tree)
            orphans = [p for p in psutil.process_iter(["cmdline"])
                       if str(home) in " ".join(p.info["cmdline"] or [])]
            total_strays += len(left) + len(orphans)
            print(f"cycle {i + 1:2}/{count}: ready in {elapsed:.2f} s, {len(tree)} process(es), "
                  f"{len(left) + len(orphans)} left after stop")
    finally:
        shutil.rmtree(home, ignore_errors=True)
    print(f"\n{count} start/stop cycles: {total_strays} stray process(es); median start "
          f"{statistics.median(durations):.2f} s (reused data dir after the first)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cycles", type=int, default=0, help="start/stop cycles instead")
    args = parser.parse_args()
    os.environ.pop(config.TRACKING_URI_ENV, None)
    if args.cycles:
        cycles(args.cycles)
    else:
        compare(args.runs)


if __name__ == "__main__":
    main()
