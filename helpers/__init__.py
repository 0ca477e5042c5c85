"""MLflow 400 Lab helpers: a local MLflow server, recorded HTTP exchanges and their explanations.

Importing the package is cheap (no MLflow import); in a notebook it also makes the kit's own
errors show as one plain sentence instead of a traceback.
"""

from helpers.config import PINNED_MLFLOW
from helpers.errors import KitError, install_notebook_handler
from helpers.server import ServerHandle, start_server
from helpers.wire import Exchange, send

__all__ = ["PINNED_MLFLOW", "Exchange", "KitError", "ServerHandle", "send", "start_server"]

install_notebook_handler()
