"""The doctor catches each failure it claims to, each caused for real (never a mock of the doctor).

Every failing case builds the real cause: a Python environment that lacks a package or the
widgets extension, a kernel spec that shadows the kit's, the extension disabled with JupyterLab's
own command, a closed port, a data folder under a regular file. Each asserts Jupyter's, the OS's
or the server's own view of the cause first (the ground truth), then the doctor's line.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from helpers import config, doctor
from helpers.processes import free_port

ROOT = Path(__file__).resolve().parents[1]
MANAGER = "@jupyter-widgets/jupyterlab-manager"


def _doctor(*args: str, python: str = sys.executable, env: dict[str, str] | None = None,
            ) -> subprocess.CompletedProcess:
    return subprocess.run([python, "-m", "helpers", "doctor", *args], cwd=ROOT, env=env or dict(os.environ),
                          capture_output=True, text=True, timeout=300)


def _env(**changes: str | None) -> dict[str, str]:
    env = dict(os.environ)
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def _line(out: str, check: str) -> str:
    found = [line for line in out.splitlines() if line[2:].startswith(f"{check}:")]
    assert len(found) == 1, out
    return found[0]


# -- everything in order -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def doctor_here(server_url: str) -> subprocess.CompletedProcess:
    """`python -m helpers doctor` here, with the session's server: one run, read by two tests."""
    return _doctor()


def test_a_shadowing_mlflow_on_pythonpath_is_named(tmp_path: Path) -> None:
    """Issue 22 (3): the metadata says 3.17.2, `import mlflow` gets another copy first."""
    fake = tmp_path / "elsewhere"
    (fake / "mlflow").mkdir(parents=True)
    (fake / "mlflow" / "__init__.py").write_text('__version__ = "2.8.1"\n')
    env = _env(PYTHONPATH=os.pathsep.join([str(fake), os.environ.get("PYTHONPATH", str(ROOT))]))
    seen = subprocess.run([sys.executable, "-c", "import mlflow; print(mlflow.__version__)"],
                          env=env, capture_output=True, text=True, timeout=60).stdout.strip()
    assert seen == "2.8.1"  # the ground truth: Python imports the other copy
    done = _doctor("--check", "packages", env=env)
    line = _line(done.stdout, "packages")
    assert done.returncode == 1 and line.startswith("✗"), done.stdout
    assert f"import` finds another copy first ({fake / 'mlflow'}" in line


def test_all_checks_pass_here_and_print_the_same_lines_every_time(
        server_url: str, doctor_here: subprocess.CompletedProcess) -> None:
    first = doctor_here
    second = _doctor()
    assert first.returncode == 0, first.stdout + first.stderr
    lines = first.stdout.splitlines()
    assert [line[:2] for line in lines] == ["✓ "] * len(doctor.CHECKS)
    assert [line[2:].split(":")[0] for line in lines] == list(doctor.CHECKS)
    assert second.stdout == first.stdout  # deterministic: the notebook's saved output holds
    port = server_url.rsplit(":", 1)[1]
    assert port not in first.stdout and str(config.data_dir()) not in first.stdout
    printed: list[str] = []
    assert doctor.run(printed.append) is True  # what 00_start_here.ipynb calls (there brief=True)
    assert printed == lines


def test_inside_a_kernel_it_prints_the_same_lines(doctor_here: subprocess.CompletedProcess) -> None:
    """00_start_here.ipynb calls `doctor.run(brief=True)` in its kernel (the kernel check then looks at the
    kernel itself): a real kernel, started by nbclient as nbval does."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "from helpers import doctor\nprint('all passed:', doctor.run())")])
    NotebookClient(nb, timeout=300, kernel_name="python3").execute()
    text = "".join(o.get("text", "") for o in nb.cells[0].outputs)
    assert text.splitlines() == doctor_here.stdout.splitlines() + ["all passed: True"]


# -- missing packages and a JupyterLab without the widgets extension -----------------------------


@pytest.fixture(scope="module")
def env_without_mlflow(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtual environment that sees every installed package except MLflow.

    Its site-packages points (one .pth line) at a folder of links to the kit environment's
    packages, MLflow's left out. Its own prefix has no share/jupyter, so the JupyterLab it
    would run has no extensions: exactly a JupyterLab installed without ipywidgets' extension.
    """
    base = tmp_path_factory.mktemp("no-mlflow")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(base / "venv")], check=True,
                   timeout=120)
    farm = base / "packages"
    farm.mkdir()
    kit_site = Path(sysconfig.get_path("purelib"))
    for entry in kit_site.iterdir():
        if entry.name.lower().startswith("mlflow") and not entry.name.startswith("mlflow_400_lab"):
            continue
        (farm / entry.name).symlink_to(entry)
    python = base / "venv" / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "kit-without-mlflow.pth").write_text(f"import site; site.addsitedir({str(farm)!r})\n")
    return python


def test_missing_package_is_named(env_without_mlflow: Path, tmp_path: Path) -> None:
    truth = subprocess.run([str(env_without_mlflow), "-c", "import mlflow"], capture_output=True,
                           text=True)
    assert "No module named 'mlflow'" in truth.stderr
    done = _doctor("--check", "packages", "--check", "server", python=str(env_without_mlflow),
                   env=_env(**{config.HOME_ENV: str(tmp_path / "home"), config.TRACKING_URI_ENV: None}))
    assert done.returncode == 1
    packages = _line(done.stdout, "packages")
    if (ROOT / ".venv").is_dir():  # another Python than the kit's: the line names the right one
        assert packages.startswith(f"✗ packages: this is {env_without_mlflow}, not the kit's "
                                   "environment, so the kit's packages are not here (mlflow is "
                                   "not installed) — fix: run `.venv/bin/python -m helpers doctor` "
                                   "in the kit's folder"), packages
    else:
        assert packages.startswith("✗ packages: mlflow is not installed — fix: ")
        assert "run `make lab`" in packages
    assert _line(done.stdout, "server").startswith(
        "✗ server: the local MLflow server did not start: MLflow is not installed in this Python "
        "environment")


def test_jupyterlab_without_the_widgets_extension(env_without_mlflow: Path, tmp_path: Path) -> None:
    env = _env(JUPYTER_DATA_DIR=str(tmp_path / "data"), JUPYTER_PATH=None,
               JUPYTER_CONFIG_DIR=str(tmp_path / "config"))
    truth = subprocess.run([str(env_without_mlflow), "-m", "jupyterlab.labextensions", "list"],
                           capture_output=True, text=True, env=env, timeout=120)
    assert "JupyterLab v4" in truth.stdout + truth.stderr  # that JupyterLab runs ...
    if MANAGER in truth.stdout + truth.stderr:
        pytest.skip("a system-wide widgets extension is installed on this machine")
    done = _doctor("--check", "widgets", python=str(env_without_mlflow), env=env)
    assert done.returncode == 1
    assert _line(done.stdout, "widgets").startswith(
        f"✗ widgets: the JupyterLab in this Python environment has no ipywidgets extension ({MANAGER}): "
        "widgets will not display — fix: ")


def test_widgets_extension_disabled_with_jupyterlabs_own_command(tmp_path: Path) -> None:
    prefix_config = Path(sys.prefix) / "etc" / "jupyter" / "labconfig" / "page_config.json"
    before = prefix_config.read_bytes() if prefix_config.exists() else None
    env = _env(JUPYTER_CONFIG_DIR=str(tmp_path / "config"))
    labextension = [sys.executable, "-m", "jupyterlab.labextensions"]
    subprocess.run([*labextension, "disable", "--level=user", MANAGER], env=env, check=True,
                   capture_output=True, timeout=120)
    try:
        truth = subprocess.run([*labextension, "list"], env=env, capture_output=True, text=True,
                               timeout=120)
        listed = [line for line in (truth.stdout + truth.stderr).splitlines() if MANAGER in line]
        assert listed and "disabled" in listed[0]
        done = _doctor("--check", "widgets", env=env)
        assert done.returncode == 1
        assert _line(done.stdout, "widgets").startswith(
            f"✗ widgets: {MANAGER} is disabled in the JupyterLab in this Python environment")
    finally:  # only the temporary user config was touched, never the environment's
        assert (prefix_config.read_bytes() if prefix_config.exists() else None) == before


# -- the notebooks' kernel -----------------------------------------------------------------------


def test_kernel_spec_that_shadows_the_kits_own(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "bare")], check=True,
                   timeout=120)
    bare = tmp_path / "bare" / "bin" / "python"
    spec = tmp_path / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(bare), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3", "language": "python"}))
    env = _env(JUPYTER_PATH=str(tmp_path / "jupyter"))
    truth = subprocess.run([sys.executable, "-m", "jupyter_client.kernelspecapp", "list", "--json"],
                           env=env, capture_output=True, text=True, timeout=120)
    assert json.loads(truth.stdout)["kernelspecs"]["python3"]["resource_dir"] == str(spec)
    lookup = "import importlib.metadata as m; m.version('mlflow-400-lab')"
    assert subprocess.run([str(bare), "-c", lookup], cwd=tmp_path, capture_output=True).returncode != 0
    done = _doctor("--check", "kernel", env=env)
    assert done.returncode == 1
    line = _line(done.stdout, "kernel")
    assert line.startswith(f"✗ kernel: the notebooks' python3 kernel runs {bare}, where the kit is "
                           f"not installed (kernel spec in {spec})")
    assert "jupyter kernelspec remove python3" in line


# -- the server ----------------------------------------------------------------------------------


def test_unreachable_shared_server(tmp_path: Path) -> None:
    port = free_port()
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0  # nothing listens there
    url = f"http://127.0.0.1:{port}"
    done = _doctor("--check", "server", env=_env(**{config.TRACKING_URI_ENV: url}))
    assert done.returncode == 1
    assert done.stdout.strip() == (
        f"✗ server: MLFLOW_TRACKING_URI is {url}, but no server answers there — fix: `python -m "
        "helpers doctor --room` says what is in the way; or `unset MLFLOW_TRACKING_URI` to use the "
        "kit's own local server")


def test_reachable_shared_server_with_its_version(server_url: str) -> None:
    assert requests.get(f"{server_url}/version", timeout=30).text == config.PINNED_MLFLOW
    done = _doctor("--check", "server", env=_env(**{config.TRACKING_URI_ENV: server_url}))
    assert done.returncode == 0
    assert done.stdout.strip() == (f"✓ server: the shared server at {server_url} answers, MLflow "
                                   f"{config.PINNED_MLFLOW} as pinned")


def test_shared_server_that_refuses_the_address(server_url: str) -> None:
    url = server_url.replace("127.0.0.1", "127.1")  # the same server, a Host MLflow does not allow
    truth = requests.get(f"{url}/api/2.0/mlflow/experiments/search", timeout=30)
    assert truth.status_code == 403 and truth.text.startswith("Invalid Host header")
    done = _doctor("--check", "server", env=_env(**{config.TRACKING_URI_ENV: url}))
    assert done.returncode == 1
    assert "(not in its --allowed-hosts) — fix: use the address the instructor gave" in done.stdout


# -- data folder and disk ------------------------------------------------------------------------


def test_data_dir_under_a_regular_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file, not a folder")
    home = blocker / "sub"
    with pytest.raises(NotADirectoryError):
        home.mkdir(parents=True)
    done = _doctor("--check", "data-dir", env=_env(**{config.HOME_ENV: str(home)}))
    assert done.returncode == 1
    assert done.stdout.strip() == (
        f"✗ data-dir: cannot write in {home} (Not a directory) — fix: set MLFLOW_400_LAB_HOME to a "
        "folder you can write, e.g. `export MLFLOW_400_LAB_HOME=$HOME/mlflow-400-lab-data`")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root ignores permission bits (the regular-file case covers root)")
def test_read_only_data_dir(tmp_path: Path) -> None:
    home = tmp_path / "read-only"
    home.mkdir()
    home.chmod(0o500)
    try:
        done = _doctor("--check", "data-dir", env=_env(**{config.HOME_ENV: str(home)}))
        assert done.returncode == 1
        assert "✗ data-dir: cannot write in" in done.stdout and "(Permission denied)" in done.stdout
    finally:
        home.chmod(0o700)


def test_not_enough_free_disk(tmp_path: Path) -> None:
    free_gb = shutil.disk_usage(tmp_path).free / 1e9
    wanted = free_gb * 10 + 1
    done = _doctor("--check", "disk", "--min-free-gb", str(wanted),
                   env=_env(**{config.HOME_ENV: str(tmp_path)}))
    assert done.returncode == 1
    assert done.stdout.startswith(f"✗ disk: only {free_gb:.1f} GB free where the kit keeps its data")


def test_brief_keeps_a_pass_to_one_line_and_a_failure_in_full(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """`doctor.run(brief=True)` (00_start_here.ipynb): one line naming the checks, or the failed lines."""
    monkeypatch.setenv(config.HOME_ENV, str(tmp_path))
    wanted = shutil.disk_usage(tmp_path).free / 1e9 * 10 + 1
    full: list[str] = []
    assert doctor.run(full.append, checks=["data-dir", "disk"]) is True
    brief: list[str] = []
    assert doctor.run(brief.append, checks=["data-dir", "disk"], brief=True) is True
    assert len(full) == 2 and brief == ["✓ all 2 checks passed: data-dir, disk"]
    failed: list[str] = []
    assert doctor.run(failed.append, checks=["data-dir", "disk"], min_free_gb=wanted, brief=True) is False
    assert len(failed) == 1 and failed[0].startswith("✗ disk: only ")


# -- other Pythons (needs `python -m helpers` to start without third-party packages) ---------------


def _pyenv_python(version: str) -> str | None:
    roots = [Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"]
    for root in roots:
        for candidate in sorted(glob.glob(str(root / f"{version}.*" / "bin" / f"python{version}"))):
            return candidate
    return shutil.which(f"python{version}")


@pytest.fixture
def bare_python(request: pytest.FixtureRequest) -> Iterator[str]:
    python = _pyenv_python(request.param)
    if python is None:
        pytest.skip(f"no Python {request.param} on this machine")
    probe = subprocess.run([python, "-c", "import helpers.config"], cwd=ROOT, capture_output=True,
                           text=True)
    if probe.returncode != 0:
        pytest.skip("helpers/__init__.py imports requests/psutil eagerly, so `python -m helpers` "
                    "cannot start in a Python without them: " + probe.stderr.strip().splitlines()[-1])
    yield python


@pytest.mark.parametrize("bare_python", ["3.9"], indirect=True)
def test_python_too_old(bare_python: str) -> None:
    done = _doctor("--check", "python", python=bare_python)
    assert done.returncode == 1
    assert done.stdout.startswith("✗ python: this is Python 3.9.")
    assert "the kit needs 3.10 or newer" in done.stdout


@pytest.mark.parametrize("bare_python", ["3.10"], indirect=True)
def test_python_310_reads_the_pins_without_tomllib(bare_python: str) -> None:
    import tomllib

    pinned = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    done = _doctor("--check", "python", "--check", "packages", python=bare_python)
    assert _line(done.stdout, "python") == "✓ python: 3.10 or newer, as the kit needs"
    packages = _line(done.stdout, "packages")
    assert packages.startswith("✗ packages: ")
    for pin in pinned:
        assert pin.split("==")[0] in packages


# -- proxies and -O (issue 10) -------------------------------------------------------------------


def test_a_proxy_is_named_and_bypassed_for_the_local_server(server_url: str) -> None:
    dead = f"http://user:Pw-123456@127.0.0.1:{free_port()}"
    env = _env(HTTP_PROXY=dead, HTTPS_PROXY=dead, http_proxy=dead, https_proxy=dead,
               NO_PROXY=None, no_proxy=None)
    import time

    started = time.monotonic()
    done = _doctor("--check", "server", env=env)
    took = time.monotonic() - started
    line = _line(done.stdout, "server")
    assert done.returncode == 0, done.stdout + done.stderr
    assert line.startswith("✓ server: a local MLflow") and "HTTP_PROXY=http://****@127.0.0.1" in line
    assert "requests to 127.0.0.1 go direct" in line and "Pw-123456" not in done.stdout + done.stderr
    assert took < 60, f"the doctor took {took:.0f} s"


def test_an_optimized_python_is_a_warning(server_url: str) -> None:
    done = _doctor("--check", "python", env=_env(PYTHONOPTIMIZE="1"))
    assert done.returncode == 1
    line = _line(done.stdout, "python")
    assert line.startswith("✗ python: this Python runs optimized (PYTHONOPTIMIZE=1)")
    assert "unset PYTHONOPTIMIZE" in line
