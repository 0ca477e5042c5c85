"""MLflow 400 Lab helpers: a local MLflow server, recorded HTTP exchanges and their explanations.

This is the kit's public face: notebooks import from `helpers` (and `helpers.exercises`) only.
Importing the package is cheap and needs only the standard library (so `python -m helpers doctor`
can report a missing package instead of crashing on it); the public names load on first use.
In a notebook it also makes the kit's own errors show as one plain sentence, not a traceback, and
it puts this machine and the room's server into NO_PROXY (config.bypass_proxy).
docs/architecture.md maps the modules behind these names.
"""

from __future__ import annotations

import importlib
from typing import Any

from helpers.config import PINNED_MLFLOW, bypass_proxy
from helpers.errors import KitError, install_notebook_handler

# Public name -> the module that defines it (imported on first use).
_LAZY = {
    "start_server": "helpers.server",
    "ServerHandle": "helpers.server",
    "free_port": "helpers.processes",
    "send": "helpers.wire",
    "Exchange": "helpers.wire",
    "preflight": "helpers.preflight_pipeline",
    "Verdict": "helpers.preflight_pipeline",
    "explain": "helpers.diagnose",
    "field_guide": "helpers.diagnose",
    "Recorder": "helpers.recorder",
    "RequestLab": "helpers.widgets",
    "OMIT": "helpers.request_parts",
    "Table": "helpers.display",
    "new_run": "helpers.runs",
    "new_experiment": "helpers.runs",
    "get_run": "helpers.runs",
    "metric_history": "helpers.runs",
    "now_ms": "helpers.runs",
    "check": "helpers.request_check",
    "mask_text": "helpers.redact",
}

# Submodules notebooks use as namespaces (`runs.new_run(...)`, `source.show(...)`).
_SUBMODULES = ("doctor", "openapi", "runs", "server", "source", "verdicts", "version_notes")

__all__ = [
    "OMIT", "PINNED_MLFLOW", "Exchange", "KitError", "Recorder", "RequestLab", "ServerHandle", "Table",
    "Verdict",
    "check", "doctor", "explain", "field_guide", "free_port", "get_run", "mask_text", "metric_history",
    "new_experiment", "new_run", "now_ms", "openapi", "preflight", "runs", "send", "server", "source",
    "start_server", "verdicts", "version_notes",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"helpers.{name}")
    raise AttributeError(f"module 'helpers' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


install_notebook_handler()
# Every notebook's first cell imports helpers: from here on, in whatever JupyterLab, VS Code or
# script, the article's plain `requests` calls reach this machine and the room's server directly
# even where HTTP(S)_PROXY is set (helpers/config.py bypass_proxy).
bypass_proxy()
