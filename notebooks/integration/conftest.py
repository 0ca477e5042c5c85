"""Keep the copyable integration test out of the kit's own test run.

test_mlflow_requests.py is a template for learners' projects. The kit checks it through
tests/test_integration_pattern.py (in a subprocess, on the example programs), so the main run
(`pytest ... tests notebooks`) must not collect it. It runs when named on the command line:

    pytest notebooks/integration/test_mlflow_requests.py     (or: pytest notebooks/integration)
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if collection_path.parent.resolve() != HERE or not collection_path.name.startswith("test_"):
        return None
    named = {Path(arg.split("::")[0]).resolve() for arg in config.args}
    return True if not ({collection_path.resolve(), HERE} & named) else None
