"""The exercise of 17_optimized_server, checked against a live optimized server and the kit's."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import runs, server
from helpers.exercises.optimized_server import check_step_prediction
from tests.solutions import load_solution


@pytest.fixture(scope="module")
def optimized_url() -> Iterator[str]:
    home = Path(tempfile.mkdtemp(prefix="mlflow-400-lab-optimized-test-"))
    handle = server.start_private_server(home, optimize=True)
    try:
        yield handle.url
    finally:
        handle.stop()
        shutil.rmtree(home, ignore_errors=True)


def _setup(server_url: str, optimized_url: str) -> tuple[dict[str, str], dict[str, str]]:
    bases = {"kit": server_url, "optimized": optimized_url}
    return bases, {name: runs.new_run("17-test", base_url=url).run_id for name, url in bases.items()}


def test_17_solution_matches_both_live_servers(server_url: str, optimized_url: str) -> None:
    bases, run_ids = _setup(server_url, optimized_url)
    feedback = check_step_prediction(load_solution("17_optimized_server").EXPECTED, bases, run_ids)
    assert feedback.count("✓") == 2, feedback
    assert "✗" not in feedback


def test_17_wrong_prediction_and_placeholders(server_url: str, optimized_url: str) -> None:
    bases, run_ids = _setup(server_url, optimized_url)
    wrong = check_step_prediction({"kit": 400, "optimized": 400}, bases, run_ids)
    assert "kit server: you expected 400, it answered 400 ✓" in wrong
    assert "optimized server: you expected 400, it answered 200 ✗" in wrong
    assert "Replace each ..." in check_step_prediction({"kit": ..., "optimized": 400}, bases, run_ids)
