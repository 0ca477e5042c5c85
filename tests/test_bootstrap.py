"""The bootstrap installs from a lock, with uv or (fallback) with pip, on a tiny stand-in project.

The kit's own locks are large (a full install is what benchmarks/setup_time.py measures); here a
copy of tools/bootstrap.py runs in a temporary project whose lock holds one small package, with
the hashes copied from the kit's own locks/all.txt. Package files come from the package index
(or the installers' caches), as they do for a learner.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "iniconfig"


def _bootstrap_module():
    spec = importlib.util.spec_from_file_location("kit_bootstrap", ROOT / "tools" / "bootstrap.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _locked_block(name: str) -> tuple[str, str]:
    """(version, the lock's whole block) for one package of locks/all.txt."""
    text = (ROOT / "locks" / "all.txt").read_text()
    found = re.search(rf"^{name}==(\S+) \\\n(?:    --hash=\S+(?: \\)?\n)+", text, flags=re.M)
    assert found, f"{name} is not in locks/all.txt"
    return found.group(1), found.group(0)


def _project(tmp_path: Path, pin: str | None = None) -> Path:
    version, block = _locked_block(PACKAGE)
    project = tmp_path / "kit"
    (project / "tools").mkdir(parents=True)
    (project / "locks").mkdir()
    (project / "tinykit").mkdir()
    shutil.copy(ROOT / "tools" / "bootstrap.py", project / "tools" / "bootstrap.py")
    (project / "tinykit" / "__init__.py").write_text("VALUE = 42\n")
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"\n'
        f'[project]\nname = "tinykit"\nversion = "0.1"\ndependencies = ["{PACKAGE}=={pin or version}"]\n'
        '[tool.setuptools]\npackages = ["tinykit"]\n')
    for lock in ("lab.txt", "all.txt"):
        (project / "locks" / lock).write_text(f"# a lock for the test\n{block}")
    return project


def _ensure(project: Path, **env: str) -> subprocess.CompletedProcess:
    code = "import sys; sys.path.insert(0, 'tools'); import bootstrap; bootstrap.ensure_env('')"
    return subprocess.run([sys.executable, "-c", code], cwd=project, capture_output=True, text=True,
                          timeout=600, env={**os.environ, **env})


def _venv_python(project: Path) -> Path:
    return project / ".venv" / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _installed(project: Path) -> str:
    done = subprocess.run([str(_venv_python(project)), "-c",
                           f"import importlib.metadata as m, tinykit; print(m.version('{PACKAGE}'), "
                           "tinykit.VALUE, tinykit.__file__)"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_pip_fallback_refuses_a_wrong_hash_then_installs_the_same_lock(tmp_path: Path) -> None:
    """One project, one .venv made with pip (its creation is most of the time): a lock whose
    hash is wrong is refused, the true lock installs, and a second run installs nothing."""
    project = _project(tmp_path)
    lock = project / "locks" / "lab.txt"
    true_lock = lock.read_text()
    lock.write_text(re.sub(r"sha256:[0-9a-f]{64}", "sha256:" + "0" * 64, true_lock))
    refused = _ensure(project, MLFLOW_400_LAB_NO_UV="1")
    assert refused.returncode != 0
    assert "THESE PACKAGES DO NOT MATCH THE HASHES" in refused.stdout + refused.stderr
    assert "Installing from locks/lab.txt failed" in refused.stderr

    lock.write_text(true_lock)
    cache = tmp_path / "user-cache"
    done = _ensure(project, MLFLOW_400_LAB_NO_UV="1", XDG_CACHE_HOME=str(cache))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Installing locks/lab.txt with pip" in done.stdout
    assert not (cache / "mlflow-400-lab").exists()  # uv was never fetched
    version, _ = _locked_block(PACKAGE)
    # the locked version, and the kit itself editable (its file is the project's, not a copy)
    assert _installed(project) == f"{version} 42 {project / 'tinykit' / '__init__.py'}"
    again = _ensure(project, MLFLOW_400_LAB_NO_UV="1")
    assert again.returncode == 0 and "Installing" not in again.stdout  # the stamp says done
    # Issue 22: a file deleted inside site-packages: the stamp is not believed alone
    module = subprocess.run([str(_venv_python(project)), "-c", f"import {PACKAGE}; "
                             f"print({PACKAGE}.__file__)"], capture_output=True, text=True,
                            timeout=60, check=True).stdout.strip()
    Path(module).unlink()
    broken = _ensure(project, MLFLOW_400_LAB_NO_UV="1")
    assert broken.returncode != 0 and "Traceback" not in broken.stderr
    assert f"is damaged: {PACKAGE}'s file {PACKAGE}/__init__.py is missing. Delete the .venv " \
        "folder" in broken.stderr, broken.stderr


def test_uv_installs_the_lock_and_names_make_lock_when_pyproject_moved(tmp_path: Path) -> None:
    bootstrap = _bootstrap_module()
    if bootstrap.find_uv(install=False) is None and shutil.which("uv") is None:
        pytest.skip("no uv here (the bootstrap fetches one on first use; this test does not)")
    uv_dir = Path(bootstrap.find_uv(install=False) or shutil.which("uv")).parent
    project = _project(tmp_path)
    env = {"PATH": f"{uv_dir}{os.pathsep}{os.environ['PATH']}"}
    done = _ensure(project, **env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Installing locks/lab.txt with uv" in done.stdout
    version, _ = _locked_block(PACKAGE)
    assert _installed(project).startswith(f"{version} 42 ")
    # pyproject.toml now wants another version than the lock holds: the install stops and says
    # which command brings the lock up to date
    stale = _project(tmp_path / "stale", pin="1.0.0")
    failed = _ensure(stale, **env)
    assert failed.returncode != 0
    assert failed.stderr.strip().endswith("If pyproject.toml changed since the lock was made, run "
                                          "`make lock`.")


def test_uv_is_fetched_once_per_machine_into_the_user_cache(tmp_path: Path) -> None:
    """The first run on a machine: no uv anywhere, so pip fetches it into the user's cache folder;
    a second clone of the kit finds it there and fetches nothing."""
    base = getattr(sys, "_base_executable", sys.executable)  # the Python that made this venv
    if subprocess.run([base, "-m", "pip", "--version"], capture_output=True).returncode != 0:
        pytest.skip(f"{base} has no pip to fetch uv with")
    bootstrap = _bootstrap_module()
    no_uv_path = os.pathsep.join(d for d in os.environ["PATH"].split(os.pathsep)
                                 if d and not (Path(d) / "uv").exists())
    env = {**os.environ, "PATH": no_uv_path, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    code = ("import sys; sys.path.insert(0, 'tools'); import bootstrap; "
            "print('uv:', bootstrap.find_uv(install=True))")
    expected = tmp_path / "cache" / "mlflow-400-lab" / f"uv-{bootstrap.UV_VERSION}" / "bin" / "uv"
    for clone in ("first", "second"):
        project = _project(tmp_path / clone)
        done = subprocess.run([base, "-c", code], cwd=project, env=env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        fetched = f"Fetching uv {bootstrap.UV_VERSION} into {expected.parent.parent}" in done.stdout
        assert fetched == (clone == "first"), done.stdout
        assert done.stdout.strip().endswith(f"uv: {expected}"), done.stdout
        assert not (project / ".venv").exists()  # the system Python's pip did it; no venv needed
    assert subprocess.run([str(expected), "--version"], capture_output=True, text=True,
                          ).stdout.startswith(f"uv {bootstrap.UV_VERSION}")
