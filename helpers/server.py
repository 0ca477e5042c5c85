"""Start, reuse and stop the kit's local MLflow tracking server.

The server always runs in its own process (never inside the learner's kernel), binds 127.0.0.1,
keeps its SQLite store and artifacts in the kit's data directory, and is recorded in a state file
so that every notebook, the CLI and the test suite find and reuse the same one.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import psutil
import requests

from helpers import config, redact
from helpers.errors import ServerError

LOCALHOST = "127.0.0.1"
#: The port the kit's local server takes when it is free (README, "The local server"); when it
#: is taken the kit picks a free one. Away from MLflow's 5000 and macOS's AirPlay on 5000/7000.
DEFAULT_PORT = 5400
#: Held (flock) by the running server process itself for its whole life: a server that is
#: paused, overloaded or has lost its state file still holds it, so no second one is launched
#: on the same SQLite file. The file also names the server, in case server.json is lost.
RUNNING_LOCK = "server.running"

# The environment `mlflow server` hands its uvicorn workers (mlflow/server/__init__.py::_run_server
# and mlflow/cli/__init__.py::server in MLflow 3.17.2). Launching uvicorn on the FastAPI app with
# this environment skips the CLI's second interpreter and its job runner: about 2x faster to
# /health. The names are MLflow internals, so the fast path is used only on the pinned version and
# tests/test_server.py::test_fast_launch_env_names_match_mlflow fails loudly when they change.
FAST_APP = "mlflow.server.fastapi_app:app"
ENV_BACKEND = "_MLFLOW_SERVER_FILE_STORE"
ENV_REGISTRY = "_MLFLOW_SERVER_REGISTRY_STORE"
ENV_ARTIFACT_ROOT = "_MLFLOW_SERVER_ARTIFACT_ROOT"
ENV_ARTIFACT_DEST = "_MLFLOW_SERVER_ARTIFACT_DESTINATION"
ENV_SERVE_ARTIFACTS = "_MLFLOW_SERVER_SERVE_ARTIFACTS"
ENV_SGI_NAME = "_MLFLOW_SGI_NAME"
ENV_IN_JOB_EXECUTOR = "_MLFLOW_IN_JOB_EXECUTOR"
ENV_BOOT_ID = "_MLFLOW_SERVER_BOOT_ID"

# Public settings, set for both launchers: no background job runner (7 extra processes), no
# workspaces, no usage telemetry (workshops are often offline).
PUBLIC_ENV = {
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    "MLFLOW_ENABLE_WORKSPACES": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
}


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
            _forget_state(self.state_file, self.pid)

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
        if version_seen is None:
            raise ServerError(
                f"MLFLOW_TRACKING_URI is {redact.mask_url(external)}, but no MLflow server "
                "answers there: start that server, or unset MLFLOW_TRACKING_URI to let the kit "
                "start its own."
            )
        return ServerHandle(url=external, source="MLFLOW_TRACKING_URI", mlflow_version=version_seen)
    note = config.ignored_tracking_uri_note()
    if note:
        say(note)
    running = find_kit_server()
    if running:
        return _checked_port(running, port)
    # Two kernels doing "Run All" at once must not start two servers: launch under a file lock
    # and look again once we hold it. A server that is alive but silent (paused with SIGSTOP,
    # overloaded, its state file lost) still holds the running lock: never launch a second one.
    with _launch_lock():
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
        _forget_state(config.state_file(), pid)  # stale: the server was killed or rebooted
        return None
    if _paused(pid):  # Ctrl-Z or SIGSTOP: it cannot answer, so do not wait 10 s to find that out
        return None
    if health_version(url, wait=10.0) is None:  # alive but busy (a loaded laptop): be patient
        return None
    return ServerHandle(
        url=url,
        source="reused",
        pid=pid,
        mlflow_version=state.get("mlflow_version"),
        log_path=Path(state["log"]) if isinstance(state.get("log"), str) else None,
    )


def stop_kit_server() -> str:
    """Stop the kit server recorded in the state file; say what happened in one sentence.

    Only a process whose pid, create time and command line all match the record is signalled
    (never the caller's own process group); a state file that is missing or damaged falls back
    to the record the running server holds in its running lock.
    """
    path = config.state_file()
    state = config.read_state() or _running_record()
    if not state:
        if path.exists():
            _forget_state(path, None)
            return (f"The state file {path} is damaged and no kit server holds the data folder; "
                    "cleared it, nothing to stop.")
        return "No kit server is recorded as running; nothing to stop."
    pid = state["pid"]
    if is_kit_process(state):
        kill_tree(pid)
        said = f"Stopped the kit server at {state['url']} (pid {pid})."
    else:
        said = "The recorded kit server was no longer running; cleared its state file."
    problem = _forget_state(path, pid)
    if problem:
        said += f" Could not remove {path} ({problem}); the kit ignores it from now on."
    return said


def status() -> str:
    """One sentence on which server the kit would use now."""
    external = config.external_tracking_uri()
    if external:
        seen = health_version(external, wait=2.0)
        answer = f"answers (MLflow {seen})" if seen else "does not answer"
        return f"MLFLOW_TRACKING_URI is {redact.mask_url(external)} and it {answer}."
    note = config.ignored_tracking_uri_note()
    prefix = f"{note}\n" if note else ""
    handle = find_kit_server()
    if handle:
        return (f"{prefix}Kit server running: {handle.url} (pid {handle.pid}), data in "
                f"{config.data_dir()}.")
    silent = _alive_record()
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


def launch_command(
    port: int,
    *,
    host: str = LOCALHOST,
    launcher: str = "fast",
    backend_store_uri: str | None = None,
    workers: int | None = 1,
    extra_args: list[str] | None = None,
    home: Path | None = None,
    optimize: bool = False,
) -> tuple[list[str], dict[str, str]]:
    """The argv and environment that start an MLflow server on host:port (one worker default).

    Exposed so the benchmark and classroom mode start servers exactly as `start_server` does.
    `workers=None` (CLI only) leaves MLflow's own default. The CLI gets the backend URI through
    MLFLOW_BACKEND_STORE_URI, not argv: it may hold a password, and `ps` shows argv to everyone.
    PYTHONOPTIMIZE is removed: MLflow validates requests with `assert` statements, and an
    optimized server would answer 200 where every lesson expects a 400 (`optimize=True` keeps
    it on, for the one notebook that shows exactly that).
    """
    home = home or config.data_dir()
    backend = backend_store_uri or "sqlite:///" + (home / "mlflow.db").as_posix()
    artifacts = (home / "artifacts").as_posix()
    env = {**os.environ, **PUBLIC_ENV}
    env.pop("PYTHONOPTIMIZE", None)
    if optimize:
        env["PYTHONOPTIMIZE"] = "1"
    if launcher == "fast":
        env.update({
            ENV_BACKEND: backend,
            ENV_REGISTRY: backend,
            ENV_ARTIFACT_ROOT: "mlflow-artifacts:/",
            ENV_ARTIFACT_DEST: artifacts,
            ENV_SERVE_ARTIFACTS: "true",
            ENV_SGI_NAME: "uvicorn",
            ENV_IN_JOB_EXECUTOR: "false",
            ENV_BOOT_ID: uuid.uuid4().hex,
        })
        cmd = [sys.executable, "-m", "uvicorn", "--host", host, "--port", str(port),
               "--workers", str(workers or 1), "--no-access-log", *(extra_args or []), FAST_APP]
    else:
        env["MLFLOW_BACKEND_STORE_URI"] = backend  # read by `mlflow server`'s --backend-store-uri
        cmd = [sys.executable, "-m", "mlflow", "server", "--host", host, "--port", str(port),
               *(["--workers", str(workers)] if workers else []),
               "--artifacts-destination", artifacts, *(extra_args or [])]
    return cmd, env


def free_port(host: str = LOCALHOST) -> int:
    """A TCP port that is free on `host` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_in_use(port: int, host: str = LOCALHOST) -> bool:
    """True when something already listens on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def installed_mlflow() -> str | None:
    try:
        return version("mlflow")
    except PackageNotFoundError:
        return None


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
        raise ServerError(f"The kit's data directory {home} cannot be created ({_why(exc)}): "
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
    running = _hold_running_lock(home)  # passed to the server, which holds it while it lives
    say(f"Starting MLflow {mlflow_version} at {url} (data in {home}) ...")
    started = time.monotonic()
    try:
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                cmd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                pass_fds=(running.fileno(),) if running else (), **new_group_kwargs(),
            )
    except OSError as exc:
        if running:
            running.close()
        raise ServerError(f"Could not start the MLflow server ({_why(exc)}): check the kit's "
                          f"data folder {home} (free space, permissions).") from None
    try:
        try:
            wait_until_ready(proc, url, started + timeout, log_path, say, port=port)
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
            _write_running_record(running, state)
        if record:
            _write_state(state)
    except BaseException as exc:  # timeout, crash, full disk or Ctrl-C: leave no process behind
        kill_tree(proc.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        if isinstance(exc, OSError):
            raise ServerError(f"The MLflow server started but its record could not be written in "
                              f"{home} ({_why(exc)}); it was stopped. Free some space or set "
                              f"{config.HOME_ENV} to a writable folder.") from None
        raise
    finally:
        if running:
            running.close()  # the server's inherited copy keeps the lock
    elapsed = time.monotonic() - started
    say(f"MLflow server ready at {url} after {elapsed:.1f} s.")
    return ServerHandle(url=url, source="started", pid=proc.pid, mlflow_version=mlflow_version,
                        log_path=log_path, startup_seconds=elapsed, _proc=proc,
                        state_file=config.state_file() if record else None)


def wait_until_ready(proc: subprocess.Popen, url: str, deadline: float, log_path: Path,
                      say: Callable[[str], None], *, port: int | None = None) -> None:
    """Poll /health, then warm the store (a fresh SQLite file is migrated on first use).

    With `port`, an answer counts only once `proc` itself listens there: when another program
    took the port first, `proc` is left to exit on its own (its bind fails after its database
    set-up is done), never killed halfway through creating its tables."""
    next_note = time.monotonic() + 5
    while True:
        if proc.poll() is not None:
            raise ServerError(f"The MLflow server exited during startup (code {proc.returncode}). "
                              f"Last lines of {log_path}:\n{_tail(log_path)}")
        if health_version(url, wait=0) is not None and (port is None or _listens(proc.pid, port)):
            break
        now = time.monotonic()
        if now > deadline:
            raise ServerError(f"The MLflow server did not answer {url}/health in time; it was "
                              f"stopped. Last lines of {log_path}:\n{_tail(log_path)}")
        if now > next_note:
            say(f"  still waiting for {url}/health ...")
            next_note = now + 5
        time.sleep(0.1)
    try:
        with requests.Session() as http:
            http.trust_env = not config.is_loopback(url)  # no proxy for this machine
            http.get(f"{url}/api/2.0/mlflow/experiments/search", params={"max_results": 1},
                     timeout=max(5.0, deadline - time.monotonic()))
    except requests.RequestException:
        pass  # the first real request will show any problem with a clear message


def health_version(url: str | None, *, wait: float) -> str | None:
    """The server's MLflow version if `url` answers /health, else None."""
    if not url:
        return None
    try:
        with requests.Session() as http:
            # HTTP(S)_PROXY must never see a request to this machine: a corporate proxy would
            # answer for (or instead of) the learner's own server.
            http.trust_env = not config.is_loopback(url)
            health = http.get(f"{url}/health", timeout=max(wait, 1.0))
            if health.status_code != 200:
                return None
            ver = http.get(f"{url}/version", timeout=max(wait, 1.0))
            return ver.text.strip() if ver.status_code == 200 else "unknown"
    except (requests.RequestException, ValueError):
        return None


@contextlib.contextmanager
def _launch_lock(wait: float = 180.0) -> Iterator[None]:
    """An exclusive lock on `<data dir>/server.lock` (POSIX); elsewhere, no lock."""
    try:
        import fcntl
    except ImportError:  # Windows: two simultaneous first starts are rare enough there
        yield
        return
    home = config.data_dir()
    try:
        home.mkdir(parents=True, exist_ok=True)
        handle = open(home / "server.lock", "a")
    except OSError as exc:
        raise ServerError(f"The kit's data directory {home} is not writable ({_why(exc)}): "
                          f"set {config.HOME_ENV} to a writable folder.") from None
    deadline = time.monotonic() + wait
    with handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ServerError("Another process has been starting the kit server for too "
                                      "long; run `python -m helpers status`.") from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _hold_running_lock(home: Path):
    """Open and lock `<home>/server.running` for the server about to start (POSIX only)."""
    try:
        import fcntl
    except ImportError:
        return None
    try:
        handle = open(home / RUNNING_LOCK, "a+")
    except OSError as exc:
        raise ServerError(f"The kit's data directory {home} is not writable ({_why(exc)}): "
                          f"set {config.HOME_ENV} to a writable folder.") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise ServerError(f"A kit server is already running with its data in {home} but does "
                          "not answer (paused or overloaded?): wait, or stop it with "
                          "`python -m helpers stop`.") from None
    return handle


def _write_running_record(handle, state: dict) -> None:
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps(state))
    handle.flush()


def _running_record(home: Path | None = None) -> dict | None:
    """The record a live server holds in its running lock, if the lock is held and readable."""
    try:
        import fcntl
    except ImportError:
        return None
    path = (home or config.data_dir()) / RUNNING_LOCK
    try:
        with open(path) as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:  # held: a server that we started is alive
                record = json.loads(handle.read() or "null")
                return record if config.valid_state(record) else None
            fcntl.flock(handle, fcntl.LOCK_UN)
            return None
    except (OSError, ValueError):
        return None


def _alive_record() -> dict | None:
    """The recorded (or running-lock) server when its process is ours and alive, answering or not."""
    for record in (config.read_state(), _running_record()):
        if record and is_kit_process(record):
            return record
    return None


def _paused(pid: int) -> bool:
    """True when the process is stopped (Ctrl-Z, SIGSTOP, a debugger): alive, and silent."""
    try:
        return psutil.Process(pid).status() in (psutil.STATUS_STOPPED, psutil.STATUS_TRACING_STOP)
    except psutil.Error:
        return False


def _refuse_if_alive() -> None:
    """Raise when a kit server for this data folder is alive but silent (see RUNNING_LOCK)."""
    record = _alive_record()
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


def _write_state(state: dict) -> None:
    """Write the state file atomically: a reader sees the old record or the new one, never half."""
    path = config.state_file()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w") as out:
            out.write(json.dumps(state, indent=2))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _forget_state(path: Path, pid: int | None) -> str | None:
    """Remove the state file if it still names `pid` (or is damaged); the reason if it cannot."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        return _why(exc)
    try:
        recorded = json.loads(text)
    except ValueError:
        recorded = None
    if pid is not None and isinstance(recorded, dict) and recorded.get("pid") not in (pid, None):
        return None  # another server's record now: not ours to remove
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        return _why(exc)
    return None


def is_kit_process(record: dict) -> bool:
    """True only when the recorded pid is alive with the recorded create time and command line.

    A pid alone proves nothing (recycled after a reboot, or a hand-edited file naming pid 1 or
    the learner's shell): all three must match before the kit signals anything.
    """
    pid, created, cmdline = record.get("pid"), record.get("create_time"), record.get("cmdline")
    if not (isinstance(pid, int) and pid > 1 and isinstance(created, (int, float))
            and isinstance(cmdline, list) and cmdline):
        return False
    if pid in (os.getpid(), os.getppid()):
        return False
    try:
        proc = psutil.Process(pid)
        if abs(proc.create_time() - created) > 0.5 or proc.cmdline() != cmdline:
            return False
        return proc.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def _listens(pid: int, port: int) -> bool:
    """True when `pid` or one of its children listens on `port` (True when we may not look)."""
    try:
        root = psutil.Process(pid)
        for proc in (root, *root.children(recursive=True)):
            for conn in proc.net_connections(kind="inet"):
                if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port:
                    return True
    except psutil.AccessDenied:
        return True
    except psutil.NoSuchProcess:
        return False
    return False


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def kill_tree(pid: int, grace: float = 5.0) -> None:
    """Terminate a process and all its descendants; kill what is left after `grace` seconds."""
    try:
        root = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    if hasattr(os, "killpg"):
        # The whole group only when the process leads its own group (as the kit starts its
        # servers) and it is not ours: never the caller's shell or terminal.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            group = os.getpgid(pid)
            if group == pid and group != os.getpgrp():
                os.killpg(group, signal.SIGTERM)
    for proc in procs:
        if proc.pid == os.getpid():
            continue
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            proc.resume()  # a paused (SIGSTOPped) server cannot act on SIGTERM
            proc.terminate()
    _, alive = psutil.wait_procs(procs, timeout=grace)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            proc.kill()
    psutil.wait_procs(alive, timeout=grace)


def new_group_kwargs() -> dict:
    if sys.platform == "win32":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _print_progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
