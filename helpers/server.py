"""Start, reuse and stop the kit's local MLflow tracking server.

The server always runs in its own process (never inside the learner's kernel), binds 127.0.0.1,
keeps its SQLite store and artifacts in the kit's data directory, and is recorded in a state file
so that every notebook, the CLI and the test suite find and reuse the same one.

This module decides which server to use and when to start one; the parts it builds on:
helpers/server_launch.py (the command and the readiness wait), helpers/server_state.py (the state
file and locks) and helpers/processes.py (ports, process identity, stopping a process tree).
`launch_command` and `health_version` are part of this module's face too (notebooks use them).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from helpers import config, redact
from helpers.errors import ServerError
from helpers.processes import (
    LOCALHOST,
    free_port,
    is_kit_process,
    kill_tree,
    new_group_kwargs,
    paused,
    port_in_use,
)
from helpers.server_launch import (
    health_version,
    installed_mlflow,
    launch_command,
    shadowing_note,
    wait_until_ready,
)
from helpers.server_state import (
    alive_record,
    forget_state,
    hold_running_lock,
    launch_lock,
    oserror_reason,
    running_record,
    write_running_record,
    write_state,
)

#: The port the kit's local server takes when it is free (README, "The local server"); when it
#: is taken the kit picks a free one. Away from MLflow's 5000 and macOS's AirPlay on 5000/7000.
DEFAULT_PORT = 5400


@dataclass
class ServerHandle:
    """A running MLflow server. `stop()` only ever stops a server this handle started."""

    url: str
    source: str  # "started", "reused" or "MLFLOW_TRACKING_URI"
    pid: int | None = None
    mlflow_version: str | None = None
    log_path: Path | None = None
    startup_seconds: float | None = field(default=None, compare=False)
    _proc: subprocess.Popen | None = field(default=None, repr=False, compare=False)

    @property
    def owned(self) -> bool:
        return self.source == "started"

    state_file: Path | None = field(default=None, repr=False, compare=False)

    def stop(self) -> None:
        """End the server's whole process tree, if this handle started it (idempotent)."""
        if not self.owned or self.pid is None:
            return
        if self._proc is not None and self._proc.poll() is not None:
            return  # already stopped and reaped
        kill_tree(self.pid)
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=5)  # reap our child so no zombie is left
        if self.state_file is not None:
            forget_state(self.state_file, self.pid)

    def __repr__(self) -> str:
        return (f"ServerHandle(url={redact.mask_url(self.url)!r}, source={self.source!r}, "
                f"pid={self.pid!r}, mlflow_version={self.mlflow_version!r})")

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __str__(self) -> str:
        where = "" if self.source != "MLFLOW_TRACKING_URI" else " (from MLFLOW_TRACKING_URI)"
        return (f"MLflow {self.mlflow_version or '?'} tracking server at "
                f"{redact.mask_url(self.url)}{where}")


def start_server(
    *,
    port: int | None = None,
    timeout: float = 90.0,
    launcher: str = "auto",
    progress: Callable[[str], None] | None = None,
) -> ServerHandle:
    """Return a handle on a running server: the configured one, the kit's own, or a new one.

    Order: `MLFLOW_TRACKING_URI` (an http(s) URL) wins and is never stopped by the kit; then a kit
    server recorded in the state file that still answers `/health`; else a new server on
    127.0.0.1 (port 5400 when free, else a free port, unless `port` is given). `launcher` is
    "fast", "cli" or "auto" (fast on the pinned MLflow version, the `mlflow server` CLI otherwise).
    """
    say = progress or _print_progress
    check_port(port)
    external = config.external_tracking_uri()
    if external:
        version_seen = health_version(external, wait=5.0)
        origin, back = config.tracking_origin()
        if version_seen is None:
            raise ServerError(
                f"{origin} is {redact.mask_url(external)}, but no MLflow server answers "
                f"there{config.userinfo_note(external)}: "
                f"start that server (`python -m helpers doctor --room` says what is in the way), "
                f"or {back} to let the kit start its own."
            )
        return ServerHandle(url=external, source=origin, mlflow_version=version_seen)
    for note in (config.ignored_tracking_uri_note(), config.bypass_proxy_for_loopback()):
        if note:
            say(note)
    running = find_kit_server()
    if running:
        return _checked_port(running, port)
    # Two kernels doing "Run All" at once must not start two servers: launch under a file lock
    # and look again once we hold it. A server that is alive but silent (paused with SIGSTOP,
    # overloaded, its state file lost) still holds the running lock: never launch a second one.
    with launch_lock():
        running = find_kit_server()
        if running:
            return _checked_port(running, port)
        _refuse_if_alive()
        return _launch(port=port, timeout=timeout, launcher=launcher, say=say)


def check_port(port: int | None) -> None:
    """Refuse a port outside 1-65535 in one sentence."""
    if port is not None and not (isinstance(port, int) and 1 <= port <= 65535):
        raise ServerError(f"Port {port} is not a TCP port: give a number from 1 to 65535, or "
                          "leave the port out and the kit picks one.")


def find_kit_server() -> ServerHandle | None:
    """The kit server recorded in the state file, if it is our process and it answers."""
    state = config.read_state()
    if not state:
        return None
    pid, url = state["pid"], state["url"]
    if not is_kit_process(state):
        forget_state(config.state_file(), pid)  # stale: the server was killed or rebooted
        return None
    if paused(pid):  # Ctrl-Z or SIGSTOP: it cannot answer, so do not wait 10 s to find that out
        return None
    answered = health_version(url, wait=10.0)
    if answered is None:  # alive but busy (a loaded laptop): be patient
        return None
    return ServerHandle(
        url=url,
        source="reused",
        pid=pid,
        mlflow_version=answered,  # what /version answers, not what was recorded or installed
        log_path=Path(state["log"]) if isinstance(state.get("log"), str) else None,
    )


def stop_kit_server() -> str:
    """Stop the kit server recorded in the state file; say what happened in one sentence.

    Only a process whose pid, create time and command line all match the record is signalled
    (never the caller's own process group); a state file that is missing or damaged falls back
    to the record the running server holds in its running lock.
    """
    path = config.state_file()
    state = config.read_state() or running_record()
    if not state:
        if path.exists():
            forget_state(path, None)
            return (f"The state file {path} is damaged and no kit server holds the data folder; "
                    "cleared it, nothing to stop.")
        return "No kit server is recorded as running; nothing to stop."
    pid = state["pid"]
    if is_kit_process(state):
        kill_tree(pid)
        said = f"Stopped the kit server at {state['url']} (pid {pid})."
    else:
        said = "The recorded kit server was no longer running; cleared its state file."
    problem = forget_state(path, pid)
    if problem:
        said += f" Could not remove {path} ({problem}); the kit ignores it from now on."
    return said


def status() -> str:
    """One sentence on which server the kit would use now."""
    external = config.external_tracking_uri()
    if external:
        seen = health_version(external, wait=2.0)
        answer = (f"answers (MLflow {seen})" if seen
                  else "does not answer" + config.userinfo_note(external))
        return f"{config.tracking_origin()[0]} is {redact.mask_url(external)} and it {answer}."
    note = config.ignored_tracking_uri_note()
    prefix = f"{note}\n" if note else ""
    handle = find_kit_server()
    if handle:
        note = shadowing_note(handle.mlflow_version)
        return (f"{prefix}Kit server running: MLflow {handle.mlflow_version} at {handle.url} "
                f"(pid {handle.pid}), data in {config.data_dir()}." + (f"\n{note}" if note else ""))
    silent = alive_record()
    if silent:
        return (f"{prefix}A kit server is running (pid {silent['pid']}, {silent['url']}) but does "
                "not answer: it may be paused or overloaded. Wait, or stop it with "
                "`python -m helpers stop`.")
    return (f"{prefix}No kit server is running. Start one with: python -m helpers serve "
            f"(data: {config.data_dir()}).")


def start_private_server(home: Path, *, optimize: bool = False, timeout: float = 180.0,
                         progress: Callable[[str], None] | None = None) -> ServerHandle:
    """A throw-away MLflow server with its own data folder `home`, not recorded in the kit's
    state (the kit's own server is never touched); stop it with `.stop()` or a `with` block.

    `optimize=True` runs it with PYTHONOPTIMIZE=1, to show what such a server accepts
    (notebooks/17_optimized_server.ipynb); the kit's own servers always run without it.
    """
    return _launch(port=None, timeout=timeout, launcher="fast", say=progress or (lambda _: None),
                   home=home, optimize=optimize, record=False)


def _launch(*, port: int | None, timeout: float, launcher: str, say: Callable[[str], None],
            home: Path | None = None, optimize: bool = False, record: bool = True) -> ServerHandle:
    mlflow_version = installed_mlflow()
    if mlflow_version is None:
        raise ServerError("MLflow is not installed in this Python environment: run `make lab`, "
                          "or `pip install -e .` in the kit's folder.")
    if launcher == "auto":
        launcher = "fast" if mlflow_version == config.PINNED_MLFLOW else "cli"
    if port is not None and port_in_use(port):
        raise ServerError(f"Port {port} on {LOCALHOST} is already in use by another program: "
                          "choose another port, or leave the port out and the kit picks a free one.")
    home = home or config.data_dir()
    try:
        home.mkdir(parents=True, exist_ok=True)
        (home / "artifacts").mkdir(exist_ok=True)
    except OSError as exc:
        raise ServerError(f"The kit's data directory {home} cannot be created ({oserror_reason(exc)}): "
                          f"set {config.HOME_ENV} to a writable folder.") from None
    # 5400 is the kit's own server's port; a private (throw-away) server takes any free one.
    preferred = DEFAULT_PORT if record else None
    chosen = port or (preferred if preferred and not port_in_use(preferred) else free_port())
    try:
        return _spawn(chosen, home=home, timeout=timeout, launcher=launcher, say=say,
                      mlflow_version=mlflow_version, optimize=optimize, record=record)
    except _PortRace:
        if port is not None:
            raise ServerError(f"Port {port} on {LOCALHOST} was taken by another program while "
                              "the server started: choose another port.") from None
        return _spawn(free_port(), home=home, timeout=timeout, launcher=launcher, say=say,
                      mlflow_version=mlflow_version, optimize=optimize, record=record)


class _PortRace(Exception):
    """Someone else bound the port between our check and the server's bind."""


def _spawn(port: int, *, home: Path, timeout: float, launcher: str, say: Callable[[str], None],
           mlflow_version: str, optimize: bool, record: bool) -> ServerHandle:
    url = f"http://{LOCALHOST}:{port}"
    cmd, env = launch_command(port, launcher=launcher, home=home, optimize=optimize)
    log_path = home / "server.log"
    running = hold_running_lock(home)  # passed to the server, which holds it while it lives
    say(f"Starting MLflow {mlflow_version} at {url} (data in {home}) ...")
    started = time.monotonic()
    try:
        with config.open_private(log_path) as log:
            proc = subprocess.Popen(
                cmd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                pass_fds=(running.fileno(),) if running else (), **new_group_kwargs(),
            )
    except OSError as exc:
        if running:
            running.close()
        raise ServerError(f"Could not start the MLflow server ({oserror_reason(exc)}): check the kit's "
                          f"data folder {home} (free space, permissions).") from None
    try:
        try:
            mlflow_version = wait_until_ready(proc, url, started + timeout, log_path, say,
                                              port=port) or mlflow_version  # the one that answers
        except ServerError:
            if proc.poll() is not None and port_in_use(port):
                raise _PortRace() from None
            raise
        identity = psutil.Process(proc.pid)
        state = {"pid": proc.pid, "create_time": identity.create_time(),
                 "cmdline": identity.cmdline(), "url": url, "port": port,
                 "mlflow_version": mlflow_version, "launcher": launcher, "log": str(log_path),
                 "started_at": time.time(), "data_dir": str(home)}
        if running:
            write_running_record(running, state)
        if record:
            write_state(state)
    except BaseException as exc:  # timeout, crash, full disk or Ctrl-C: leave no process behind
        kill_tree(proc.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        if isinstance(exc, OSError):
            raise ServerError(f"The MLflow server started but its record could not be written in "
                              f"{home} ({oserror_reason(exc)}); it was stopped. Free some space or set "
                              f"{config.HOME_ENV} to a writable folder.") from None
        raise
    finally:
        if running:
            running.close()  # the server's inherited copy keeps the lock
    elapsed = time.monotonic() - started
    say(f"MLflow {mlflow_version} server ready at {url} after {elapsed:.1f} s.")
    note = shadowing_note(mlflow_version)
    if note:
        say(note)
    return ServerHandle(url=url, source="started", pid=proc.pid, mlflow_version=mlflow_version,
                        log_path=log_path, startup_seconds=elapsed, _proc=proc,
                        state_file=config.state_file() if record else None)


def _refuse_if_alive() -> None:
    """Raise when a kit server for this data folder is alive but silent (see server_state.RUNNING_LOCK)."""
    record = alive_record()
    if record:
        raise ServerError(f"A kit server is already running (pid {record['pid']}, "
                          f"{record['url']}) but does not answer: it may be paused or overloaded. "
                          "Wait and try again, or stop it with `python -m helpers stop`.")


def _checked_port(handle: ServerHandle, port: int | None) -> ServerHandle:
    """A reused server on another port than the one asked for is said, not silently ignored."""
    if port is not None and f":{port}" != handle.url[handle.url.rfind(":"):]:
        raise ServerError(f"A kit server is already running at {handle.url}, not on port {port}: "
                          "use it (leave --port out), or stop it first with "
                          "`python -m helpers stop`.")
    return handle


def _print_progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
