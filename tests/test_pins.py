"""One set of pins: pyproject.toml, environment.yml (conda and Binder), the kit's constant, the doctor.

Binder (repo2docker) builds from environment.yml: conda-forge Python, then the pip list. It must
install the same versions the notebooks' saved outputs were made with, install the kit itself,
and bring the widgets' JupyterLab extension without a postBuild step.
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import re
from pathlib import Path

import pytest
import yaml

from helpers import config, doctor

tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml here needs Python 3.11+")

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
ENVIRONMENT = yaml.safe_load((ROOT / "environment.yml").read_text())


def _pins(lines: list[str]) -> dict[str, str]:
    found = {}
    for line in lines:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)", line.strip())
        if match:
            found[match.group(1).lower()] = match.group(2)
    return found


def _pip_lines() -> list[str]:
    blocks = [d["pip"] for d in ENVIRONMENT["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(blocks) == 1, "environment.yml should have one pip: list"
    return blocks[0]


RUNTIME = _pins(PYPROJECT["dependencies"])
EXTRAS = _pins([p for group in PYPROJECT["optional-dependencies"].values() for p in group])


def test_every_runtime_pin_is_in_environment_yml() -> None:
    assert RUNTIME, "pyproject.toml has no exact pins"
    env = _pins(_pip_lines())
    assert {name: env.get(name) for name in RUNTIME} == RUNTIME


def test_every_pip_pin_in_environment_yml_matches_pyproject() -> None:
    env = _pins(_pip_lines())
    assert env and {name: (RUNTIME | EXTRAS).get(name) for name in env} == env
    unpinned = [line for line in _pip_lines() if "==" not in line and line.strip() != "-e ."]
    assert unpinned == []


def test_environment_yml_installs_the_kit_and_a_supported_python() -> None:
    # `-e .` makes the helpers importable in Binder's kernel; repo2docker sees the local path and
    # copies the repository before installing (CondaBuildPack._should_preassemble_env).
    assert "-e ." in [line.strip() for line in _pip_lines()]
    assert ENVIRONMENT["channels"] == ["conda-forge"]
    pythons = [d for d in ENVIRONMENT["dependencies"] if isinstance(d, str) and d.startswith("python")]
    assert len(pythons) == 1
    version = tuple(int(x) for x in re.fullmatch(r"python=(\d+)\.(\d+)", pythons[0]).groups())
    assert version >= doctor.requires_python()


def test_widgets_extension_comes_from_a_pinned_pip_package() -> None:
    """So Binder needs no postBuild: ipywidgets brings jupyterlab_widgets, which ships the
    prebuilt extension into <prefix>/share/jupyter/labextensions."""
    requires = metadata.requires("ipywidgets") or []
    assert any(r.lower().replace("-", "_").startswith("jupyterlab_widgets") for r in requires)
    files = [str(f) for f in metadata.files("jupyterlab_widgets") or []]
    assert any(f.endswith("share/jupyter/labextensions/@jupyter-widgets/jupyterlab-manager/package.json")
               for f in files)
    post_build = ROOT / "postBuild"
    if post_build.exists():  # repo2docker runs it only when it is executable
        assert os.access(post_build, os.X_OK) and post_build.read_text().startswith("#!")


def test_kit_constant_and_doctor_agree_with_pyproject() -> None:
    assert config.PINNED_MLFLOW == RUNTIME["mlflow"]
    assert {k.lower(): v for k, v in doctor.pins().items()} == RUNTIME
    assert doctor.requires_python() == tuple(
        int(x) for x in re.fullmatch(r">=(\d+)\.(\d+)", PYPROJECT["requires-python"]).groups())


def test_doctors_python_310_reader_matches_tomllib() -> None:
    """Python 3.10 has no tomllib: the doctor's small reader must give the same answers."""
    text = (ROOT / "pyproject.toml").read_text()
    assert doctor._read_simple_toml(text, "dependencies") == PYPROJECT["dependencies"]
    assert doctor._read_simple_toml(text, "requires-python") == PYPROJECT["requires-python"]
