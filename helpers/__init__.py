"""MLflow 400 Lab helpers: a local MLflow server, recorded HTTP exchanges and their explanations.

Importing the package is cheap and needs only the standard library (so `python -m helpers doctor`
can report a missing package instead of crashing on it); the public names load on first use.
In a notebook it also makes the kit's own errors show as one plain sentence, not a traceback.
"""

from __future__ import annotations

import importlib
from typing import Any

from helpers.config import PINNED_MLFLOW
from helpers.errors import KitError, install_notebook_handler

_LAZY = {
    "start_server": "helpers.server",
    "ServerHandle": "helpers.server",
    "send": "helpers.wire",
    "Exchange": "helpers.wire",
}

__all__ = ["PINNED_MLFLOW", "Exchange", "KitError", "ServerHandle", "send", "start_server"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'helpers' has no attribute {name!r}")


install_notebook_handler()
