"""Where the kit keeps its data and which MLflow server it talks to.

One place decides these so that the server launcher, the wire helper and the CLI never disagree.
"""

from __future__ import annotations

import getpass
import json
import os
import re
from pathlib import Path
from typing import Any

#: The MLflow version every notebook's committed output was produced with.
PINNED_MLFLOW = "3.17.2"

HOME_ENV = "MLFLOW_400_LAB_HOME"
LEARNER_ENV = "MLFLOW_400_LAB_LEARNER"
TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"


def data_dir() -> Path:
    """The kit's data directory: `$MLFLOW_400_LAB_HOME`, else `~/.mlflow-400-lab`.

    Kept out of the learner's working folder so a notebook directory never fills with `mlruns/`.
    """
    override = os.environ.get(HOME_ENV)
    return Path(override).expanduser() if override else Path.home() / ".mlflow-400-lab"


def state_file() -> Path:
    """The JSON file that records the running kit server (pid, url, version)."""
    return data_dir() / "server.json"


def read_state() -> dict[str, Any] | None:
    """The recorded kit server, or None when there is none or the file is unreadable."""
    try:
        return json.loads(state_file().read_text())
    except (OSError, ValueError):
        return None


def external_tracking_uri() -> str | None:
    """`MLFLOW_TRACKING_URI` when it names an http(s) server; other schemes are not servers."""
    uri = os.environ.get(TRACKING_URI_ENV, "").strip()
    return uri.rstrip("/") if uri.lower().startswith(("http://", "https://")) else None


def base_url() -> str | None:
    """The server the kit should talk to: `MLFLOW_TRACKING_URI` (http) first, else the kit's own."""
    external = external_tracking_uri()
    if external:
        return external
    state = read_state()
    return state.get("url") if state else None


def use_reproducible_env(home: str) -> None:
    """Settings under which notebook outputs are both produced (tools/run_notebooks.py) and
    checked (tests/conftest.py): if the two differed, strict nbval would see it."""
    os.environ[HOME_ENV] = home  # a throw-away data dir
    os.environ.pop(TRACKING_URI_ENV, None)  # always the kit's own local server
    os.environ[LEARNER_ENV] = "learner"  # experiment names in outputs carry it
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # offline by design


def learner_name() -> str:
    """A short, URL-safe name for this learner: `$MLFLOW_400_LAB_LEARNER`, else the OS user."""
    raw = os.environ.get(LEARNER_ENV) or _os_user()
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", raw).strip("-")[:40] or "learner"


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in some containers
        return "learner"
