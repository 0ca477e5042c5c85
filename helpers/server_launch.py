"""How to launch one MLflow server process and know when it is ready.

The argv and environment (`launch_command`) and the readiness wait are shared by the kit's own
server (helpers/server.py), classroom mode, the benchmarks and the tests, so every server is
started the same way.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import requests

from helpers import config
from helpers.errors import ServerError
from helpers.processes import LOCALHOST, listens

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
# Taken out of the server's environment: each could put another MLflow (or another package of the
# kit's pins) ahead of the installed one, and the server would answer for a version no check of
# the kit sees. The server imports only the installed packages (MLflow, uvicorn), never `helpers`.
SHADOWING_ENV = ("PYTHONPATH", "PYTHONHOME", "PYTHONUSERBASE", "PYTHONSTARTUP")


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
    for name in SHADOWING_ENV:
        env.pop(name, None)
    env["PYTHONSAFEPATH"] = "1"  # Python >= 3.11: `-m` does not put the current folder first
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


def shadowing_note(answered: str | None) -> str:
    """One sentence when the server answers another MLflow version than the one installed here
    (something on its path shadows the installed package), else ""."""
    installed = installed_mlflow()
    if not answered or answered in (installed, "unknown"):
        return ""
    return (f"Note: the server answers MLflow {answered} on /version, but MLflow {installed} is "
            "installed here: another MLflow shadows it on the server's path. The kit reports the "
            "version that answers.")


def installed_mlflow() -> str | None:
    """The MLflow version installed here (what a launched server runs), or None."""
    try:
        return version("mlflow")
    except PackageNotFoundError:
        return None


def wait_until_ready(proc: subprocess.Popen, url: str, deadline: float, log_path: Path,
                      say: Callable[[str], None], *, port: int | None = None) -> str:
    """Poll /health, then warm the store (a fresh SQLite file is migrated on first use); the
    version the server reported.

    With `port`, an answer counts only once `proc` itself listens there: when another program
    took the port first, `proc` is left to exit on its own (its bind fails after its database
    set-up is done), never killed halfway through creating its tables."""
    next_note = time.monotonic() + 5
    while True:
        if proc.poll() is not None:
            raise ServerError(f"The MLflow server exited during startup (code {proc.returncode}). "
                              f"Last lines of {log_path}:\n{_tail(log_path)}")
        version = health_version(url, wait=0)
        if version is not None and (port is None or listens(proc.pid, port)):
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
    return version


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
            from helpers.wire import tracking_auth  # a --basic-auth room answers /version 401

            ver = http.get(f"{url}/version", timeout=max(wait, 1.0), headers=tracking_auth(url))
            return ver.text.strip() if ver.status_code == 200 else "unknown"
    except (requests.RequestException, ValueError):
        return None


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
