"""Create `.venv` on first use, install the pinned kit into it, then run a kit command.

Usage: python3 tools/bootstrap.py lab | test [pytest args...]
Standard library only, so it runs on a bare Python 3.10+ (Linux, macOS or Windows).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".kit-installed"

# The README's test command: strict nbval (not --nbval-lax) with the sanitize file.
TEST_ARGS = ["-m", "pytest", "--nbval", "--nbval-current-env",
             "--nbval-sanitize-with", "notebooks/sanitize.cfg", "tests", "notebooks"]


def ensure_env(extras: str) -> None:
    if sys.version_info < (3, 10):  # noqa: UP036 - this file runs before any install
        sys.exit(f"The kit needs Python 3.10 or newer; this is {sys.version.split()[0]}.")
    if not PYTHON.exists():
        print(f"Creating {VENV} ...", flush=True)
        venv.create(VENV, with_pip=True)
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    done = set(STAMP.read_text().split()) if STAMP.exists() else set()
    if f"{digest}:{extras}" in done or f"{digest}:test" in done:  # test includes everything
        return
    print("Installing the pinned packages (first run only; a few minutes) ...", flush=True)
    subprocess.run([str(PYTHON), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
    target = f"{ROOT}[{extras}]" if extras else str(ROOT)
    subprocess.run([str(PYTHON), "-m", "pip", "install", "--quiet", "-e", target], check=True)
    STAMP.write_text(" ".join(sorted({d for d in done if d.startswith(digest)}
                                     | {f"{digest}:{extras}"})))


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
    except KeyboardInterrupt:
        print("\nStopped during the install; run the command again to finish it.", file=sys.stderr)
        return 130
    os.chdir(ROOT)
    if argv[0] == "lab":
        return run_final([str(PYTHON), "-m", "helpers", "lab", *argv[1:]])
    return run_final([str(PYTHON), *TEST_ARGS, *argv[1:]])


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
