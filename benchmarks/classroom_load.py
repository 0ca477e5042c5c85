#!/usr/bin/env python3
"""A room of learners against one classroom server: throughput, latency, errors, nothing lost.

Each simulated learner (a thread) runs the notebooks' request sequence (`LESSON`: the article's
three failures and their fixes, a duplicate experiment, a param overwrite, a nonexistent run)
against one server started exactly as `python -m helpers serve --classroom` starts it (MLflow's
default workers, loopback only), then everything is read back and compared with what was sent.

    python benchmarks/classroom_load.py                      # SQLite, then PostgreSQL if present
    python benchmarks/classroom_load.py --backend postgresql --learners 40
    python benchmarks/classroom_load.py --url http://127.0.0.1:5000   # an already running server

Prints requests/s, p50/p95/p99 latency, answers that differ from the intended ones (by status),
and stored-versus-sent counts. Goal: no unintended answer, nothing lost, p95 <= 300 ms.
`TempPostgres` (a throw-away cluster) and `run_lesson` are also used by tests/test_classroom.py.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

API = "/api/2.0/mlflow"
NONEXISTENT_RUN_ID = "0123456789abcdef0123456789abcdef"
MAX_LEARNERS = 200


@dataclass(frozen=True)
class Step:
    """One request of the lesson: what a learner sends and the answer the notebooks show."""

    label: str
    method: str
    path: str
    expect: int
    build: Callable[[dict[str, Any]], dict[str, Any]]  # ctx -> send() keyword arguments
    keep: Callable[[dict[str, Any], Any], None] | None = None  # store ids from the answer


def _metric(ctx: dict[str, Any], step: int, run_id: str | None = None) -> dict[str, Any]:
    return {"run_id": run_id or ctx["run_id"], "key": "loss", "value": 1.0 / (step + 2),
            "timestamp": int(time.time() * 1000), "step": step}


#: The notebooks' request set, in lesson order. Expected statuses are MLflow 3.17.2's live answers
#: (tests/test_classroom.py checks them on SQLite and PostgreSQL).
LESSON: tuple[Step, ...] = (
    Step("create experiment", "POST", "experiments/create", 200,
         lambda c: {"json": {"name": c["name"]}},
         lambda c, j: c.update(experiment_id=j["experiment_id"])),
    Step("duplicate experiment (RESOURCE_ALREADY_EXISTS)", "POST", "experiments/create", 400,
         lambda c: {"json": {"name": c["name"]}}),
    Step("create run", "POST", "runs/create", 200,
         lambda c: {"json": {"experiment_id": c["experiment_id"],
                             "start_time": int(time.time() * 1000)}},
         lambda c, j: c.update(run_id=j["run"]["info"]["run_id"])),
    Step("example 1: no Content-Type", "POST", "runs/log-metric", 400,
         lambda c: {"data": json.dumps(_metric(c, 0))}),
    Step("example 1 fixed: json=", "POST", "runs/log-metric", 200,
         lambda c: {"json": _metric(c, 0)}),
    Step("example 2: malformed JSON", "POST", "runs/log-metric", 400,
         lambda c: {"data": "{run_id: \"" + c["run_id"] + '", key: "loss", value: 0.5}',
                    "headers": {"Content-Type": "application/json"}}),
    Step("example 2 fixed", "POST", "runs/log-metric", 200,
         lambda c: {"json": _metric(c, 1)}),
    Step("example 3 as written: invalid run id, no timestamp", "POST", "runs/log-metric", 400,
         lambda c: {"json": {"run_id": "invalid_run_id", "key": "loss", "value": 0.9}}),
    Step("well-formed but nonexistent run id", "POST", "runs/log-metric", 404,
         lambda c: {"json": _metric(c, 2, NONEXISTENT_RUN_ID)}),
    Step("example 3 fixed", "POST", "runs/log-metric", 200,
         lambda c: {"json": _metric(c, 2)}),
    Step("log a param", "POST", "runs/log-parameter", 200,
         lambda c: {"json": {"run_id": c["run_id"], "key": "lr", "value": "0.01"}}),
    Step("overwrite the param", "POST", "runs/log-parameter", 400,
         lambda c: {"json": {"run_id": c["run_id"], "key": "lr", "value": "0.02"}}),
    Step("read the run back", "GET", "runs/get", 200,
         lambda c: {"params": {"run_id": c["run_id"]}}),
    Step("read the metric history", "GET", "metrics/get-history", 200,
         lambda c: {"params": {"run_id": c["run_id"], "metric_key": "loss"}}),
)


@dataclass
class Answer:
    """One request's outcome (the `Exchange`, or the reason there was none)."""

    step: Step
    status: int | None  # None: no answer (refused, timed out)
    ms: float
    exchange: Any = None
    error: str = ""

    @property
    def intended(self) -> bool:
        return self.status == self.step.expect


@dataclass
class LearnerResult:
    learner: str
    answers: list[Answer] = field(default_factory=list)
    ctx: dict[str, Any] = field(default_factory=dict)


def run_lesson(base_url: str, name: str, *, deadline: float | None = None,
               think_s: float = 0.0) -> LearnerResult:
    """Send `LESSON` in order as one learner whose experiment is called `name`.

    `think_s` is the mean pause before each request, the first included (uniform in 0..2x: a
    learner reading a cell; learners do not all press Run in the same millisecond). Stops early
    when a step's answer lacks an id the next steps need, or at `deadline` (time.monotonic()).
    """
    from helpers.errors import ServerUnreachable
    from helpers.wire import send

    result = LearnerResult(learner=name, ctx={"name": name})
    ctx = result.ctx
    pause = random.Random(name)
    for step in LESSON:
        if think_s:
            time.sleep(pause.uniform(0, 2 * think_s))
        if deadline is not None and time.monotonic() > deadline:
            break
        try:
            kwargs = step.build(ctx)
        except KeyError:  # an earlier step failed to give the id this one needs
            break
        started = time.perf_counter()
        try:
            exchange = send(f"{API}/{step.path}", method=step.method, base_url=base_url,
                            timeout=60, **kwargs)
        except ServerUnreachable as exc:
            result.answers.append(Answer(step, None, (time.perf_counter() - started) * 1000,
                                         error=str(exc)))
            continue
        result.answers.append(Answer(step, exchange.status, exchange.elapsed_ms, exchange))
        if step.keep and exchange.status == 200 and isinstance(exchange.json, dict):
            step.keep(ctx, exchange.json)
    return result


def read_back(base_url: str, result: LearnerResult) -> dict[str, int]:
    """What the server stored for this learner: experiments, runs, metric points, params."""
    from helpers.wire import send

    ctx = result.ctx
    stored = {"experiments": 0, "runs": 0, "metric points": 0, "params": 0}
    found = send(f"{API}/experiments/get-by-name", method="GET", base_url=base_url,
                 params={"experiment_name": ctx["name"]}, timeout=60)
    stored["experiments"] = int(found.status == 200)
    if "run_id" in ctx:
        run = send(f"{API}/runs/get", method="GET", base_url=base_url,
                   params={"run_id": ctx["run_id"]}, timeout=60)
        if run.status == 200:
            stored["runs"] = 1
            params = (run.json or {}).get("run", {}).get("data", {}).get("params", [])
            stored["params"] = sum(1 for p in params if p == {"key": "lr", "value": "0.01"})
        history = send(f"{API}/metrics/get-history", method="GET", base_url=base_url,
                       params={"run_id": ctx["run_id"], "metric_key": "loss"}, timeout=60)
        steps = sorted(m["step"] for m in (history.json or {}).get("metrics", []))
        stored["metric points"] = len(steps)
    return stored


def sent_ok(result: LearnerResult) -> dict[str, int]:
    """What the server accepted (200) and so must have stored."""
    ok = Counter(a.step.label for a in result.answers if a.status == 200)
    return {"experiments": ok["create experiment"], "runs": ok["create run"],
            "metric points": sum(ok[label] for label in ("example 1 fixed: json=",
                                                         "example 2 fixed", "example 3 fixed")),
            "params": ok["log a param"]}


def load(base_url: str, learners: int, *, deadline_s: float, tag: str, think_s: float = 0.0,
         server_pid: int | None = None) -> dict[str, Any]:
    """Run `learners` threads at once through `LESSON`, then read back; return the figures.

    With `server_pid`, also the CPU seconds the server's process tree and this client used
    while loading (both share this machine's cores; in a room the clients are the laptops).
    """
    learners = max(1, min(learners, MAX_LEARNERS))
    results: list[LearnerResult] = []
    lock = threading.Lock()
    gate = threading.Barrier(learners + 1)
    deadline = [0.0]

    def learner(i: int) -> None:
        name = f"400lab/bench-{tag}-{i:03d}/lesson-{uuid.uuid4().hex[:8]}"
        gate.wait()
        outcome = run_lesson(base_url, name, deadline=deadline[0], think_s=think_s)
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=learner, args=(i,), daemon=True) for i in range(learners)]
    for thread in threads:
        thread.start()
    deadline[0] = time.monotonic() + deadline_s
    server_cpu, client_cpu = _server_cpu(server_pid), time.process_time()
    started = time.perf_counter()
    gate.wait()
    for thread in threads:
        thread.join(timeout=max(0.0, deadline[0] - time.monotonic()) + 60)
    wall = time.perf_counter() - started
    server_cpu, client_cpu = _server_cpu(server_pid) - server_cpu, time.process_time() - client_cpu
    answers = [a for r in results for a in r.answers]
    sent = Counter()
    stored = Counter()
    for r in results:
        sent.update(sent_ok(r))
        stored.update(read_back(base_url, r))
    latencies = sorted(a.ms for a in answers if a.status is not None)
    return {
        "learners": learners,
        "finished": len(results),
        "requests": len(answers),
        "planned": learners * len(LESSON),
        "wall_s": wall,
        "rps": len(answers) / wall if wall else 0.0,
        "p50": _pct(latencies, 50), "p95": _pct(latencies, 95), "p99": _pct(latencies, 99),
        "max": latencies[-1] if latencies else float("nan"),
        "intended_4xx": Counter(a.status for a in answers if a.intended and a.status != 200),
        "unintended": Counter(str(a.status) if a.status else "no answer"
                              for a in answers if not a.intended),
        "unintended_examples": [_example(a) for a in answers if not a.intended][:5],
        "sent": dict(sent), "stored": dict(stored),
        "think_s": think_s, "server_cpu_s": server_cpu if server_pid else None,
        "client_cpu_s": client_cpu, "cores": os.cpu_count(),
    }


def _server_cpu(pid: int | None) -> float:
    """CPU seconds (user + system) used so far by a process and its children."""
    if pid is None:
        return 0.0
    import psutil

    total = 0.0
    root = psutil.Process(pid)
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def _example(answer: Answer) -> str:
    said = answer.exchange.text if answer.exchange is not None else answer.error
    return f"{answer.step.label}: {answer.status} {said[:160]}"


def _pct(values: list[float], q: int) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def report(title: str, fig: dict[str, Any]) -> str:
    lost = {k: fig["sent"].get(k, 0) - fig["stored"].get(k, 0) for k in fig["sent"]}
    lines = [
        f"== {title}",
        f"learners {fig['learners']} (finished {fig['finished']}), requests {fig['requests']} of "
        f"{fig['planned']} planned, {fig['wall_s']:.1f} s wall, "
        + (f"mean think time {fig['think_s']:g} s" if fig["think_s"] else "no think time (burst)"),
        f"throughput {fig['rps']:.0f} requests/s",
        f"latency ms: p50 {fig['p50']:.0f}  p95 {fig['p95']:.0f}  p99 {fig['p99']:.0f}  "
        f"max {fig['max']:.0f}",
        "intended 4xx by status: " + _counts(fig["intended_4xx"]),
        "unintended answers by status: " + (_counts(fig["unintended"]) or "none"),
        *[f"  e.g. {line}" for line in fig["unintended_examples"]],
        "stored / sent (accepted): " + ", ".join(
            f"{k} {fig['stored'].get(k, 0)}/{v}" for k, v in fig["sent"].items()),
        "lost: " + (", ".join(f"{k} {v}" for k, v in lost.items() if v) or "nothing"),
        f"goal p95 <= 300 ms: {'met' if fig['p95'] <= 300 else 'NOT met'}",
    ]
    if fig.get("server_cpu_s") is not None:
        lines.append(f"CPU while loading: server {fig['server_cpu_s']:.1f} s, client "
                     f"{fig['client_cpu_s']:.1f} s, of {fig['cores']} cores x {fig['wall_s']:.1f} s")
    return "\n".join(lines)


def _counts(counter: Counter) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(counter.items(), key=lambda kv: str(kv[0])))


# -- a throw-away PostgreSQL cluster --------------------------------------------------------------


class TempPostgres:
    """A private PostgreSQL cluster on 127.0.0.1 in a temporary folder, removed by `stop()`.

    Uses the machine's `initdb`/`pg_ctl` (Debian: /usr/lib/postgresql/<v>/bin). PostgreSQL refuses
    to run as root, so as root the cluster runs as the `postgres` user (via runuser). Trust
    authentication on loopback only: it exists for tests and rehearsals, never for a room.
    """

    def __init__(self) -> None:
        self.bindir = _pg_bindir()
        self.port: int | None = None
        self.dir: Path | None = None

    @staticmethod
    def unavailable() -> str | None:
        """Why a cluster cannot start here (None when it can)."""
        if _pg_bindir() is None:
            return "PostgreSQL's initdb/pg_ctl are not installed (Debian: apt-get install postgresql)"
        if os.name != "posix":
            return "the throw-away cluster is written for Linux/macOS"
        if os.geteuid() == 0 and (shutil.which("runuser") is None or not _user_exists("postgres")):
            return "running as root without a `postgres` user and runuser to start PostgreSQL as"
        try:
            import psycopg2  # noqa: F401
        except ImportError:
            return "psycopg2 is not installed (pip install psycopg2-binary)"
        return None

    def start(self) -> TempPostgres:
        from helpers.processes import free_port

        self.dir = Path(tempfile.mkdtemp(prefix="mlflow-400-lab-pg-"))
        self.dir.chmod(0o700)
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self.port = free_port()
        data = self.dir / "data"
        self._run([str(self.bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                   "-E", "UTF8", "--no-instructions"])
        self._run([str(self.bindir / "pg_ctl"), "-D", str(data), "-l", str(self.dir / "server.log"),
                   "-w", "-t", "60", "-o", f"-h 127.0.0.1 -p {self.port} -k {self.dir}", "start"])
        # PostgreSQL's own defaults otherwise (fsync on, 100 connections): what a room's server has.
        return self

    def create_database(self, name: str) -> str:
        """Create a database and return its SQLAlchemy URI (psycopg2 driver)."""
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres")
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        """Stop the cluster (fast shutdown, waits) and delete its folder."""
        if self.dir is None:
            return
        data = self.dir / "data"
        if (data / "postmaster.pid").exists():
            self._run([str(self.bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                      check=False)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None

    def _run(self, cmd: list[str], check: bool = True) -> None:
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                              stdin=subprocess.DEVNULL, cwd=self.dir)
        if check and done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[:6])} failed ({done.returncode}): "
                               f"{(done.stderr or done.stdout).strip()[-800:]}")


def _pg_bindir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found and (Path(found).resolve().parent / "initdb").exists():
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
                      key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    return versions[-1].parent if versions else None


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


@contextmanager
def classroom_server(backend_store_uri: str, *, workers: int | None = None) -> Iterator[Any]:
    """A classroom-mode server on 127.0.0.1 (a free port), stopped on exit; yields its handle."""
    from helpers import classroom
    from helpers.processes import free_port

    room = classroom.build(backend_store_uri=backend_store_uri, host="127.0.0.1",
                           port=free_port(), workers=workers)
    handle = classroom.start(room, progress=lambda _: None)
    try:
        yield handle
    finally:
        handle.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--learners", type=int, default=40, help=f"1..{MAX_LEARNERS} (default 40)")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--workers", type=int, default=None,
                        help="server workers (default: MLflow's default, as classroom mode)")
    parser.add_argument("--deadline", type=float, default=300.0,
                        help="stop sending after this many seconds (default 300)")
    parser.add_argument("--url", default=None, help="load this running server instead")
    parser.add_argument("--think", type=float, default=0.0,
                        help="mean seconds a learner pauses before each request (default 0: burst)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="load the same server this many times (the first round meets cold workers)")
    args = parser.parse_args(argv)
    home = tempfile.mkdtemp(prefix="mlflow-400-lab-bench-")
    os.environ["MLFLOW_400_LAB_HOME"] = home  # servers started here keep their files there
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
                 "MLFLOW_TRACKING_TOKEN"):
        os.environ.pop(name, None)
    tag = uuid.uuid4().hex[:6]
    workers = f"{args.workers} workers" if args.workers else "MLflow's default workers"
    failed = False
    try:
        if args.url:
            fig = load(args.url.rstrip("/"), args.learners, deadline_s=args.deadline, tag=tag,
                       think_s=args.think)
            print(report(f"{args.url}, {args.learners} learners", fig))
            return 0
        backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
        for backend in backends:
            pg = None
            try:
                if backend == "postgresql":
                    why = TempPostgres.unavailable()
                    if why:
                        print(f"== PostgreSQL skipped: {why}")
                        continue
                    pg = TempPostgres().start()
                    uri = pg.create_database("classroom_bench")
                else:
                    uri = "sqlite:///" + (Path(home) / "classroom-bench.db").as_posix()
                with classroom_server(uri, workers=args.workers) as handle:
                    for round_no in range(1, max(1, args.rounds) + 1):
                        fig = load(handle.url, args.learners, deadline_s=args.deadline,
                                   tag=f"{tag}{round_no}", think_s=args.think, server_pid=handle.pid)
                        print(report(f"{backend}, {workers}, {args.learners} learners, round "
                                     f"{round_no}", fig), flush=True)
                        lost = any(fig["sent"].get(k, 0) != fig["stored"].get(k, 0)
                                   for k in fig["sent"])
                        failed |= bool(fig["unintended"]) or lost
            finally:
                if pg is not None:
                    pg.stop()
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main())
