"""Create `.venv` on first use, install the kit from its lock, then run a kit command.

Usage: python3 tools/bootstrap.py lab | test [pytest args...]
Standard library only, so it runs on a bare Python 3.10+ (Linux, macOS or Windows).

Installs come from the committed locks (`locks/lab.txt` for the lab, `locks/all.txt` with the test
tools), which pin every transitive package with its hashes, for every platform (`make lock` writes
them). uv installs them in seconds; the first run on a machine fetches uv from the package index
with pip into the user's cache folder (`~/.cache/mlflow-400-lab/uv-VERSION`), or uses a uv already
on PATH. Without uv (or with MLFLOW_400_LAB_NO_UV=1), pip installs the same lock, hashes checked,
only slower.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import venv
from pathlib import Path

if __name__ == "__main__":
    # First thing: Ctrl-C back. A parent may have left SIGINT ignored (`nohup`, a script's
    # `cmd &`), Python keeps an inherited ignore, and so would the install's processes and, through
    # exec, the lab itself: a Ctrl-C during the install or start-up would be lost. A Python
    # handler is reset to the default by exec, so the lab starts with Ctrl-C working too.
    signal.signal(signal.SIGINT, signal.default_int_handler)

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".kit-installed"
LOCKS = ROOT / "locks"
LOCK_LAB = LOCKS / "lab.txt"  # the runtime pins: what a learner's `make lab` needs
LOCK_ALL = LOCKS / "all.txt"  # plus every extra (test tools, classroom): `make test`, CI, conda
UV_VERSION = "0.13.9"  # the uv the bootstrap fetches
UV_MIN = (0, 5)  # an older uv on PATH is not used
NO_UV_ENV = "MLFLOW_400_LAB_NO_UV"  # set to 1 to install with pip (the fallback) even if uv is there
LOCK_COMMAND = "make lock"
# Part of the install stamp: a change in how the kit installs (here: the test install compiles
# bytecode) reinstalls an existing .venv once.
INSTALL_FORMAT = "2:compiled-for-tests"

# The test command (docs/development.md): strict nbval (not --nbval-lax) with the sanitize file,
# spread over two worker processes (pytest-xdist), each with its own MLflow server; --dist loadfile
# keeps every notebook (and every test file's fixtures) whole on one worker.
TEST_ARGS = ["-m", "pytest", "-n", "2", "--dist", "loadfile", "--nbval", "--nbval-current-env",
             "--nbval-sanitize-with", "notebooks/sanitize.cfg", "tests", "notebooks"]


def ensure_env(extras: str) -> None:
    """Make `.venv` match the lock for `extras` ("" = the lab, "test" = everything); fast if it does."""
    if sys.version_info < (3, 10):  # noqa: UP036 - this file runs before any install
        sys.exit(f"The kit needs Python 3.10 or newer; this is {sys.version.split()[0]}.")
    lock = LOCK_ALL if extras else LOCK_LAB
    kind = "all" if extras else "lab"
    digest = _digest(lock)
    done = set(STAMP.read_text().split()) if STAMP.exists() and PYTHON.exists() else set()
    if f"{digest}:{kind}" in done or (kind == "lab" and _all_stamp() in done):
        missing = damaged()  # the stamp says installed; the files must say so too
        if missing:
            sys.exit(f"{VENV} is damaged: {missing} is missing. Delete the .venv folder and run "
                     "the command again (it reinstalls from the lock in seconds with uv).")
        return  # the "all" install includes the lab's packages
    uv = None if os.environ.get(NO_UV_ENV) else find_uv(install=True)
    rel = lock.relative_to(ROOT).as_posix()
    if uv is not None:
        print(f"Installing {rel} with uv (first run only; seconds) ...", flush=True)
        _install_with_uv(uv, lock, extras)
    else:
        print(f"Installing {rel} with pip (first run only; a few minutes) ...", flush=True)
        _install_with_pip(lock)
    STAMP.write_text(f"{digest}:{kind}")


# Run by the .venv's Python: every file each installed distribution lists in its RECORD exists
# (compiled .pyc files aside). Only stats, no imports: ~0.3 s of CPU for the kit's ~30,000 files.
_PROBE = """
import importlib.metadata as m, os, sys
for d in m.distributions():
    for f in d.files or ():
        if f.suffix != ".pyc" and "__pycache__" not in f.parts and not os.path.exists(f.locate()):
            print(f"{d.metadata['Name']}'s file {f}")
            sys.exit(1)
"""


def damaged() -> str | None:
    """What is missing from `.venv` (a file an installed package lists, or its Python), or None."""
    try:
        done = subprocess.run([str(PYTHON), "-I", "-c", _PROBE], capture_output=True, text=True,
                              timeout=300)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"its Python ({exc.__class__.__name__})"
    if done.returncode == 0:
        return None
    return done.stdout.strip() or f"something its Python needs ({done.stderr.strip()[-200:]})"


def tools_dir() -> Path:
    """Where the fetched uv lives: the user's cache folder, one folder per uv version, so every
    clone of the kit on this machine (a workshop laptop often has several) fetches it once.
    XDG_CACHE_HOME, else ~/.cache; %LOCALAPPDATA% on Windows; ~/Library/Caches on macOS."""
    if os.name == "nt" and os.environ.get("LOCALAPPDATA"):
        base = Path(os.environ["LOCALAPPDATA"])
    elif sys.platform == "darwin" and not os.environ.get("XDG_CACHE_HOME"):
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "mlflow-400-lab" / f"uv-{UV_VERSION}"


def find_uv(install: bool = False) -> str | None:
    """A uv to install with: the kit's own (in the user cache), one on PATH, or (install=True)
    fetch it."""
    tools = tools_dir()
    for candidate in (tools / "bin" / "uv", tools / "Scripts" / "uv.exe", tools / "bin" / "uv.exe",
                      shutil.which("uv")):
        if candidate and Path(candidate).is_file() and _uv_version(str(candidate)) >= UV_MIN:
            return str(candidate)
    if not install:
        return None
    # pip --target puts uv (one binary, in a wheel for each platform) into the user cache, outside
    # every environment; pip comes from this Python, else from a new .venv's own pip.
    pythons = [sys.executable] if _has_pip(sys.executable) else []
    if not pythons:
        if not PYTHON.exists():
            _create_venv_with_pip()
        if _has_pip(str(PYTHON)):
            pythons = [str(PYTHON)]
    for python in pythons:
        print(f"Fetching uv {UV_VERSION} into {tools} (once per machine) ...", flush=True)
        done = subprocess.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                               "--no-warn-script-location", "--upgrade", "--target", str(tools),
                               f"uv=={UV_VERSION}"], env={**os.environ, "PIP_ROOT_USER_ACTION": "ignore"})
        if done.returncode == 0:
            return find_uv(install=False)
    print("Could not get uv; installing with pip instead (slower).", flush=True)
    return None


def _install_with_uv(uv: str, lock: Path, extras: str) -> None:
    if not PYTHON.exists():
        print(f"Creating {VENV} ...", flush=True)
        subprocess.run([uv, "venv", "--quiet", "--clear", "--python", sys.executable, str(VENV)],
                       check=True)
    target = ["--python", str(PYTHON)]
    # sync: exactly the lock (hashes required), nothing stale left from an older lock.
    # The test install (`make test`, CI) also writes the .pyc files (--compile-bytecode, as pip
    # does by default): where PYTHONDONTWRITEBYTECODE is set, as on CI images, Python would
    # otherwise compile MLflow's sources on every import, and each of the suite's servers, kernels
    # and commands would start 2-3x slower (the suite: 401 s -> 247 s measured). The lab's install
    # does not: compiling all of it costs ~9 s before JupyterLab's URL, while a learner's Python
    # writes the .pyc of what it imports on first use.
    compiled = ["--compile-bytecode"] if extras else []
    _run([uv, "pip", "sync", "--quiet", "--require-hashes", *compiled, *target, str(lock)], lock)
    # the kit itself, editable; its dependencies are checked against the lock, never moved off it
    spec = f".[{extras}]" if extras else "."
    _run([uv, "pip", "install", "--quiet", *target, "-c", str(lock), "-e", spec], lock)


def _create_venv_with_pip() -> None:
    print(f"Creating {VENV} ...", flush=True)
    try:
        venv.create(VENV, with_pip=True, clear=True)
    except (OSError, subprocess.CalledProcessError):
        sys.exit(f"This Python ({sys.executable}) cannot create a virtual environment with pip "
                 "(Debian/Ubuntu: `sudo apt-get install python3-venv`); install that, or uv, and "
                 "run the command again.")


def _install_with_pip(lock: Path) -> None:
    if not PYTHON.exists():
        _create_venv_with_pip()
    python = str(PYTHON)
    if not _has_pip(python):  # a .venv made by uv has no pip
        subprocess.run([python, "-m", "ensurepip", "--upgrade"], check=True,
                       stdout=subprocess.DEVNULL)
    pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    if _pip_version(python) < (21, 3):  # editable installs from pyproject.toml alone (PEP 660)
        subprocess.run([*pip, "--upgrade", "pip>=21.3"], check=True)
    _run([*pip, "--require-hashes", "--no-deps", "-r", str(lock)], lock)
    _run([*pip, "--no-deps", "-e", "."], lock)  # pip cannot check hashes of `-e .` itself


def _run(cmd: list[str], lock: Path) -> None:
    if subprocess.run(cmd, cwd=ROOT).returncode != 0:
        sys.exit(f"Installing from {lock.relative_to(ROOT).as_posix()} failed (the lines above say "
                 f"why). If pyproject.toml changed since the lock was made, run `{LOCK_COMMAND}`.")


def _digest(lock: Path) -> str:
    data = INSTALL_FORMAT.encode() + lock.read_bytes() + (ROOT / "pyproject.toml").read_bytes()
    return hashlib.sha256(data).hexdigest()[:16]


def _all_stamp() -> str:
    return f"{_digest(LOCK_ALL)}:all"


def _uv_version(uv: str) -> tuple[int, ...]:
    try:
        out = subprocess.run([uv, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    found = re.search(r"(\d+)\.(\d+)", out)
    return tuple(int(x) for x in found.groups()) if found else ()


def _has_pip(python: str) -> bool:
    return _pip_version(python) > ()


def _pip_version(python: str) -> tuple[int, ...]:
    try:
        out = subprocess.run([python, "-m", "pip", "--version"], capture_output=True, text=True,
                             timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    found = re.match(r"pip (\d+)\.(\d+)", out)
    return tuple(int(x) for x in found.groups()) if found else ()


#: Set to 1 to skip the install step when .venv already exists (the test of `make lab`, or a
#: maintainer who installed by hand); the command still runs exactly as for a learner.
NO_INSTALL_ENV = "MLFLOW_400_LAB_NO_INSTALL"


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("lab", "test"):
        print(__doc__)
        return 2
    # A learner's lab needs only the kit's pins; the test tools (browser driver, PostgreSQL
    # driver, pytest) come with `test`.
    try:
        if not (os.environ.get(NO_INSTALL_ENV) == "1" and PYTHON.exists()):
            ensure_env("" if argv[0] == "lab" else "test")
        os.chdir(ROOT)
    except KeyboardInterrupt:
        print("\nStopped during the install; run the command again to finish it.", file=sys.stderr)
        return 130
    if argv[0] == "lab":
        return run_final([str(PYTHON), "-c", _LAUNCH_LAB, "lab", *argv[1:]])
    return run_final([str(PYTHON), *TEST_ARGS, *argv[1:]])


# `python -m helpers lab`, with a Ctrl-C that lands while Python imports the kit (before its own
# handler is in, helpers/__main__.py) ending the command in one line instead of a traceback.
_LAUNCH_LAB = """import runpy, sys
try:
    runpy.run_module("helpers", run_name="__main__", alter_sys=True)
except KeyboardInterrupt:
    print("\\nStopped.", file=sys.stderr)
    sys.exit(130)
"""


def run_final(cmd: list[str]) -> int:
    """Run the kit's command as this process's last act.

    POSIX: `os.execv` replaces this process with it, so Ctrl-C, SIGTERM and SIGHUP reach the
    command itself, which stops JupyterLab and the server before it exits (a `subprocess.call`
    here would kill it 0.25 s after the first Ctrl-C, mid-cleanup). Windows has no exec: the
    console delivers Ctrl-C to the child as well, so wait for it through every Ctrl-C.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name == "posix":
        os.execv(cmd[0], cmd)
    child = subprocess.Popen(cmd)
    while True:
        try:
            return child.wait()
        except KeyboardInterrupt:
            continue  # the child got it too and is cleaning up: wait for its exit code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
