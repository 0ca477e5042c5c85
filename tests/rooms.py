"""Helpers for the classroom tests: a throw-away PostgreSQL, and rooms started as an instructor would.

Shared by tests/test_classroom.py and tests/test_classroom_auth.py (two files, so that pytest-xdist's
`--dist loadfile` can run their rooms on two workers at once).
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from benchmarks.classroom_load import TempPostgres
from helpers import config
from helpers.processes import free_port

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 300  # four workers importing MLflow on a busy two-core machine


@dataclass
class Room:
    url: str
    port: int
    proc: subprocess.Popen
    out: list[str]
    lines: queue.Queue  # what the CLI prints after start-up (None once it exits)
    err_path: Path


def postgres_cluster() -> Iterator[TempPostgres]:
    """Body of a module-scoped `postgres` fixture: a cluster, stopped with all its processes."""
    require_postgres()
    cluster = TempPostgres().start()
    yield cluster
    postmaster = psutil.Process(int((cluster.dir / "data" / "postmaster.pid").read_text().split()[0]))
    family = [postmaster, *postmaster.children(recursive=True)]
    cluster.stop()
    _, alive = psutil.wait_procs(family, timeout=30)
    assert not [p.pid for p in alive if _running(p)], "PostgreSQL processes left running"


def require_postgres() -> None:
    """Skip without PostgreSQL, except in CI (`CI` set), where a missing PostgreSQL is a failure."""
    why = TempPostgres.unavailable()
    if why and os.environ.get("CI"):
        pytest.fail(f"PostgreSQL cannot run here: {why}. CI must run the PostgreSQL tests "
                    "(.ci/run installs postgresql).")
    if why:
        pytest.skip(f"PostgreSQL cannot run here: {why}")


def _ignore_sigint() -> None:
    """What `nohup` or `cmd &` in a script do to a child: SIGINT ignored, inherited by Python."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def start_cli_room(args: list[str], home: Path, env: dict[str, str] | None = None,
                   drop: tuple[str, ...] = ()) -> Room:
    """`python -m helpers serve --classroom ARGS` as an instructor starts it, from a parent that
    ignores SIGINT; returns once it prints its last line (the learner lines before it)."""
    port = free_port()
    err_path = home / "stderr.txt"
    env = {**os.environ, **(env or {}), config.HOME_ENV: str(home)}
    for name in (config.TRACKING_URI_ENV, *drop):
        env.pop(name, None)
    with open(err_path, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "helpers", "serve", "--classroom", "--port", str(port), *args],
            stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, text=True, cwd=ROOT,
            env=env, preexec_fn=_ignore_sigint)
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_pump, args=(proc, lines), daemon=True).start()
    out: list[str] = []
    deadline = time.monotonic() + START_TIMEOUT
    while not any("Press Ctrl-C" in line for line in out):
        try:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            line = None
        if line is None:
            proc.kill()
            pytest.fail(f"classroom server did not start; stdout: {out}; stderr: "
                        f"{err_path.read_text()[-2000:]}")
        out.append(line)
    advertised = re.search(r"learners at (http://\S+) \(", "\n".join(out)).group(1)
    return Room(url=advertised, port=port, proc=proc, out=out, lines=lines, err_path=err_path)


def stop_room(room: Room, signum: int) -> list[str]:
    """Send `signum` to the room's command; check it exits 0 leaving no process; its last lines."""
    tree = [room.proc, *psutil.Process(room.proc.pid).children(recursive=True)]
    pids = [p.pid for p in tree]
    room.proc.send_signal(signum)
    assert room.proc.wait(timeout=60) == 0
    _, alive = psutil.wait_procs([p for p in tree[1:] if psutil.pid_exists(p.pid)], timeout=30)
    assert not [p for p in alive if _running(p)], f"left running: {[p.pid for p in alive]} of {pids}"
    rest = []
    while (line := room.lines.get(timeout=30)) is not None:
        rest.append(line)
    return rest


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _pump(proc: subprocess.Popen, lines: queue.Queue) -> None:
    for line in proc.stdout:
        lines.put(line.rstrip("\n"))
    lines.put(None)


