"""One set of pins: pyproject.toml, the locks, environment.yml (conda and Binder), the doctor.

pyproject.toml pins the kit's direct dependencies; `locks/lab.txt` and `locks/all.txt` pin every
transitive package with hashes for every platform (`make lock` writes them and environment.yml).
Binder (repo2docker) builds from environment.yml: conda-forge Python, then the pip list. It must
install the same versions the notebooks' saved outputs were made with, install the kit itself,
and bring the widgets' JupyterLab extension without a postBuild step.
"""

from __future__ import annotations

import importlib.metadata as metadata
import importlib.util
import os
import re
from pathlib import Path

import pytest
import yaml
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from helpers import config, doctor

tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml here needs Python 3.11+")

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
ENVIRONMENT = yaml.safe_load((ROOT / "environment.yml").read_text())
REGENERATE = ("run `make lock` (python3 tools/lock.py) and commit locks/ and environment.yml")


def _load_tool(name: str):
    spec = importlib.util.spec_from_file_location(f"kit_tools_{name}", ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


lock_tool = _load_tool("lock")


def _pins(lines: list[str]) -> dict[str, str]:
    found = {}
    for line in lines:
        req = Requirement(line)
        (spec,) = req.specifier
        assert spec.operator == "==", f"{line}: pyproject.toml pins exactly"
        found[canonicalize_name(req.name)] = spec.version
    return found


RUNTIME = _pins(PYPROJECT["dependencies"])
EXTRAS = _pins([p for group in PYPROJECT["optional-dependencies"].values() for p in group])


def _lock_entries(path: Path) -> list[tuple[str, str, Marker | None, list[str]]]:
    """(name, version, marker, direct-from) per pinned block of a uv-compiled lock."""
    entries = []
    text = path.read_text()
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
    for block in blocks:
        req = Requirement(block.split("\\", 1)[0].strip())
        (spec,) = req.specifier
        via = re.findall(r"#[ \t]+(?:via[ \t]+)?(\S.*)$", block, flags=re.M)
        assert "--hash=sha256:" in block, f"{path.name}: {req.name} has no hash"
        entries.append((canonicalize_name(req.name), spec.version, req.marker, via))
    return entries


def _here(entries) -> dict[str, str]:
    """The lock's versions for this interpreter and platform."""
    return {name: ver for name, ver, marker, _ in entries if marker is None or marker.evaluate()}


@pytest.mark.parametrize(("lock", "wanted"), [("all.txt", RUNTIME | EXTRAS), ("lab.txt", RUNTIME)])
def test_lock_matches_pyproject(lock: str, wanted: dict[str, str]) -> None:
    entries = _lock_entries(ROOT / "locks" / lock)
    direct = {name: ver for name, ver, _, via in entries
              if any(v.startswith("mlflow-400-lab (pyproject.toml)") for v in via)}
    assert direct == wanted, f"locks/{lock} is out of date with pyproject.toml: {REGENERATE}"
    assert lock_tool.COMMAND == "make lock"
    assert (ROOT / "locks" / lock).read_text().splitlines()[1].strip() == "#    make lock"


def test_locks_cover_linux_macos_and_windows() -> None:
    """One universal resolution: platform-only packages carry their markers instead of missing."""
    for lock in ("all.txt", "lab.txt"):
        markers = {str(m) for _, _, m, _ in _lock_entries(ROOT / "locks" / lock) if m is not None}
        assert 'sys_platform == "win32"' in markers and 'sys_platform == "darwin"' in markers, lock


def test_lab_lock_agrees_with_the_full_lock_here() -> None:
    lab, full = (_here(_lock_entries(ROOT / "locks" / n)) for n in ("lab.txt", "all.txt"))
    assert {name: full.get(name) for name in lab} == lab, f"the locks disagree: {REGENERATE}"


def test_this_environment_was_installed_from_the_lock() -> None:
    """What `make test` runs with is what the lock says (the bootstrap syncs .venv to it)."""
    wanted = _here(_lock_entries(ROOT / "locks" / "all.txt"))
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in metadata.distributions()}
    off = {name: (ver, installed.get(name)) for name, ver in wanted.items() if installed.get(name) != ver}
    assert off == {}, ("this environment differs from locks/all.txt (lock, installed): run "
                       "`python3 tools/bootstrap.py test` to sync it")


def test_environment_yml_is_the_lock_without_hashes() -> None:
    assert (ROOT / "environment.yml").read_text() == lock_tool.environment_yml(), (
        f"environment.yml differs from locks/all.txt: {REGENERATE}")
    pip = _pip_lines()
    assert _here([(canonicalize_name(Requirement(x).name), str(next(iter(Requirement(x).specifier)).version),
                   Requirement(x).marker, []) for x in pip if x != "-e ."]) == \
        _here(_lock_entries(ROOT / "locks" / "all.txt"))


def _pip_lines() -> list[str]:
    blocks = [d["pip"] for d in ENVIRONMENT["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(blocks) == 1, "environment.yml should have one pip: list"
    return blocks[0]


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
