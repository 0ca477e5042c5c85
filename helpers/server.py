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

from helpers import config
from helpers.errors import KitError

LOCALHOST = "127.0.0.1"

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


class ServerError(KitError):
    """A server problem, told in one plain sentence (plus log lines where they help)."""


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

    def stop(self) -> None:
        """End the server's whole process tree, if this handle started it."""
        if not self.owned or self.pid is None:
            return
        kill_tree(self.pid)
        if self._proc is not None:
            self._proc.wait(timeout=5)  # reap our child so no zombie is left
        state = config.read_state()
        if state and state.get("pid") == self.pid:
            config.state_file().unlink(missing_ok=True)

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __str__(self) -> str:
        where = "" if self.source != "MLFLOW_TRACKING_URI" else " (from MLFLOW_TRACKING_URI)"
        return f"MLflow {self.mlflow_version or '?'} tracking server at {self.url}{where}"


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
    127.0.0.1 (a free port unless `port` is given). `launcher` is "fast", "cli" or "auto" (fast on
    the pinned MLflow version, the `mlflow server` CLI otherwise).
    """
    say = progress or _print_progress
    external = config.external_tracking_uri()
    if external:
        version_seen = _health_version(external, wait=5.0)
        if version_seen is None:
            raise ServerError(
                f"MLFLOW_TRACKING_URI is {external}, but no MLflow server answers there: start "
                "that server, or unset MLFLOW_TRACKING_URI to let the kit start its own."
            )
        return ServerHandle(url=external, source="MLFLOW_TRACKING_URI", mlflow_version=version_seen)

    running = find_kit_server()
    if running:
        return running
    # Two kernels doing "Run All" at once must not start two servers: launch under a file lock
    # and look again once we hold it.
    with _launch_lock():
        return find_kit_server() or _launch(port=port, timeout=timeout, launcher=launcher, say=say)


def find_kit_server() -> ServerHandle | None:
    """The kit server recorded in the state file, if its process is alive and it answers."""
    state = config.read_state()
    if not state:
        return None
    pid, url = state.get("pid"), state.get("url")
    if not (isinstance(pid, int) and _is_our_process(pid, state.get("create_time"))):
        config.state_file().unlink(missing_ok=True)  # stale: the server was killed or rebooted
        return None
    if _health_version(url, wait=10.0) is None:  # alive but busy (a loaded laptop): be patient
        return None
    return ServerHandle(
        url=url,
        source="reused",
        pid=pid,
        mlflow_version=state.get("mlflow_version"),
        log_path=Path(state["log"]) if state.get("log") else None,
    )


def stop_kit_server() -> str:
    """Stop the kit server recorded in the state file; say what happened in one sentence."""
    state = config.read_state()
    if not state:
        return "No kit server is recorded as running; nothing to stop."
    pid = state.get("pid")
    config.state_file().unlink(missing_ok=True)
    if isinstance(pid, int) and _is_our_process(pid, state.get("create_time")):
        kill_tree(pid)
        return f"Stopped the kit server at {state.get('url')} (pid {pid})."
    return "The recorded kit server was no longer running; cleared its state file."


def status() -> str:
    """One sentence on which server the kit would use now."""
    external = config.external_tracking_uri()
    if external:
        seen = _health_version(external, wait=2.0)
        answer = f"answers (MLflow {seen})" if seen else "does not answer"
        return f"MLFLOW_TRACKING_URI is {external} and it {answer}."
    handle = find_kit_server()
    if handle:
        return f"Kit server running: {handle.url} (pid {handle.pid}), data in {config.data_dir()}."
    return f"No kit server is running. Start one with: python -m helpers serve (data: {config.data_dir()})."


def launch_command(
    port: int,
    *,
    host: str = LOCALHOST,
    launcher: str = "fast",
    backend_store_uri: str | None = None,
    workers: int | None = 1,
    extra_args: list[str] | None = None,
) -> tuple[list[str], dict[str, str]]:
    """The argv and environment that start an MLflow server on host:port (one worker default).

    Exposed so the benchmark and classroom mode start servers exactly as `start_server` does.
    `workers=None` (CLI only) leaves MLflow's own default. The CLI gets the backend URI through
    MLFLOW_BACKEND_STORE_URI, not argv: it may hold a password, and `ps` shows argv to everyone.
    """
    home = config.data_dir()
    backend = backend_store_uri or "sqlite:///" + (home / "mlflow.db").as_posix()
    artifacts = (home / "artifacts").as_posix()
    env = {**os.environ, **PUBLIC_ENV}
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


def _launch(*, port: int | None, timeout: float, launcher: str, say: Callable[[str], None]) -> ServerHandle:
    mlflow_version = installed_mlflow()
    if mlflow_version is None:
        raise ServerError("MLflow is not installed in this Python environment: run `make lab`, "
                          "or `pip install -e .` in the kit's folder.")
    if launcher == "auto":
        launcher = "fast" if mlflow_version == config.PINNED_MLFLOW else "cli"
    if port is not None and port_in_use(port):
        raise ServerError(f"Port {port} on {LOCALHOST} is already in use by another program: "
                          "choose another port, or leave the port out and the kit picks a free one.")
    home = config.data_dir()
    try:
        home.mkdir(parents=True, exist_ok=True)
        (home / "artifacts").mkdir(exist_ok=True)
    except OSError as exc:
        raise ServerError(f"The kit's data directory {home} cannot be created ({exc.strerror}): "
                          f"set {config.HOME_ENV} to a writable folder.") from None
    port = port or free_port()
    url = f"http://{LOCALHOST}:{port}"
    cmd, env = launch_command(port, launcher=launcher)
    log_path = home / "server.log"
    say(f"Starting MLflow {mlflow_version} at {url} (data in {home}) ...")
    started = time.monotonic()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            **new_group_kwargs(),
        )
    try:
        wait_until_ready(proc, url, started + timeout, log_path, say)
    except BaseException:  # timeout, crash or Ctrl-C: leave no half-started process behind
        kill_tree(proc.pid)
        raise
    elapsed = time.monotonic() - started
    create_time = psutil.Process(proc.pid).create_time()
    _write_state({"pid": proc.pid, "create_time": create_time, "url": url, "port": port,
                  "mlflow_version": mlflow_version, "launcher": launcher, "log": str(log_path),
                  "started_at": time.time()})
    say(f"MLflow server ready at {url} after {elapsed:.1f} s.")
    return ServerHandle(url=url, source="started", pid=proc.pid, mlflow_version=mlflow_version,
                        log_path=log_path, startup_seconds=elapsed, _proc=proc)


def wait_until_ready(proc: subprocess.Popen, url: str, deadline: float, log_path: Path,
                      say: Callable[[str], None]) -> None:
    """Poll /health, then warm the store (a fresh SQLite file is migrated on first use)."""
    next_note = time.monotonic() + 5
    while True:
        if proc.poll() is not None:
            raise ServerError(f"The MLflow server exited during startup (code {proc.returncode}). "
                              f"Last lines of {log_path}:\n{_tail(log_path)}")
        if _health_version(url, wait=0) is not None:
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
        requests.get(f"{url}/api/2.0/mlflow/experiments/search", params={"max_results": 1},
                     timeout=max(5.0, deadline - time.monotonic()))
    except requests.RequestException:
        pass  # the first real request will show any problem with a clear message


def _health_version(url: str | None, *, wait: float) -> str | None:
    """The server's MLflow version if `url` answers /health, else None."""
    if not url:
        return None
    try:
        health = requests.get(f"{url}/health", timeout=max(wait, 1.0))
        if health.status_code != 200:
            return None
        ver = requests.get(f"{url}/version", timeout=max(wait, 1.0))
        return ver.text.strip() if ver.status_code == 200 else "unknown"
    except requests.RequestException:
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
        handle = open(home / "server.lock", "w")
    except OSError as exc:
        raise ServerError(f"The kit's data directory {home} is not writable ({exc.strerror}): "
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


def _write_state(state: dict) -> None:
    path = config.state_file()
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(path)


def _is_our_process(pid: int, create_time: float | None) -> bool:
    """True when `pid` is alive and is the process we recorded (not a recycled pid)."""
    try:
        proc = psutil.Process(pid)
        if create_time is not None and abs(proc.create_time() - create_time) > 1.0:
            return False
        return proc.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def kill_tree(pid: int, grace: float = 5.0) -> None:
    """Terminate a process and all its descendants; kill what is left after `grace` seconds."""
    try:
        root = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    procs = [root, *root.children(recursive=True)]
    if hasattr(os, "killpg"):
        try:
            os.killpg(os.getpgid(pid), signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
    for proc in procs:
        try:
            proc.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=grace)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
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
