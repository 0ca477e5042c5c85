#!/usr/bin/env python3
"""Setup time: the kit's bootstrap (uv + the lock) against plain `pip install -e .`, one machine.

Every run starts from a fresh `git clone` of this repository's current commit in a temporary
folder, so nothing of this checkout's `.venv` is reused:

- bootstrap: `tools/bootstrap.py`'s first run for the lab: find uv (fetched with pip into the kit's
  user cache folder when that cache is cold), create `.venv`, install `locks/lab.txt` and the kit
  (timed as two parts: uv, then the install);
- pip: `python -m venv .venv && .venv/bin/pip install -e .` (what the kit did before its lock);
- cold: with empty pip, uv and kit caches (everything downloaded again, uv fetched); warm: the
  same caches, again (the fetched uv is found in the kit's cache);
- clone to URL: a fresh clone, `python3 tools/bootstrap.py lab --no-browser`, until JupyterLab
  prints its URL (warm caches); then Ctrl-C, and a check that nothing is left running.

    python benchmarks/setup_time.py            # all of it (cold runs download ~250 MB twice)
    python benchmarks/setup_time.py --warm-only   # the user's own (already warm) pip and uv caches

A uv already on PATH is hidden from the bootstrap here: the cold runs always measure fetching uv.
Goals (issue 12): bootstrap <= 0.2 x plain pip; fresh clone to JupyterLab's URL <= 15 s, warm.
Figures are printed, never asserted: the machine may be shared, so say its load with them.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
URL = re.compile(r"http://127\.0\.0\.1:\d+/lab\S*")


def clone(into: Path) -> Path:
    branch = subprocess.run(["git", "rev-parse", "--abbrev-ref", "HEAD"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout.strip()
    dest = into / f"clone-{time.monotonic_ns()}"
    subprocess.run(["git", "clone", "-q", "--branch", branch, str(ROOT), str(dest)], check=True)
    return dest


def env_with(caches: Path | None) -> dict[str, str]:
    """This environment with the given pip and uv caches (None: the user's own), no uv on PATH,
    no tracking server."""
    path = [d for d in os.environ.get("PATH", "").split(os.pathsep)
            if d and not (Path(d) / "uv").exists() and not (Path(d) / "uv.exe").exists()]
    env = {**os.environ, "PATH": os.pathsep.join(path), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    if caches is not None:
        # ... and the kit's own cache of the fetched uv (tools/bootstrap.py: tools_dir())
        env.update(PIP_CACHE_DIR=str(caches / "pip"), UV_CACHE_DIR=str(caches / "uv"),
                   XDG_CACHE_HOME=str(caches / "user"), LOCALAPPDATA=str(caches / "user"))
    for name in ("MLFLOW_TRACKING_URI", "VIRTUAL_ENV", "MLFLOW_400_LAB_NO_UV"):
        env.pop(name, None)
    return env


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.monotonic()
    done = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return time.monotonic() - started


def bootstrap_run(work: Path, caches: Path | None) -> tuple[float, float]:
    """(fetch uv, install the lab) in a fresh clone."""
    repo = clone(work)
    env = env_with(caches)
    code = "import sys; sys.path.insert(0, 'tools'); import bootstrap; "
    fetch = timed([sys.executable, "-c", code + "assert bootstrap.find_uv(install=True)"], repo, env)
    install = timed([sys.executable, "-c", code + "bootstrap.ensure_env('')"], repo, env)
    return fetch, install


def pip_run(work: Path, caches: Path | None) -> float:
    repo = clone(work)
    env = env_with(caches)
    python = repo / ".venv" / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    return (timed([sys.executable, "-m", "venv", ".venv"], repo, env)
            + timed([str(python), "-m", "pip", "install", "--quiet", "-e", "."], repo, env))


def clone_to_url(work: Path, caches: Path | None, home: Path) -> tuple[float, float, list[str]]:
    """Seconds from `git clone` to JupyterLab's URL; seconds to stop; processes left afterwards."""
    import psutil

    started = time.monotonic()
    repo = clone(work)
    env = {**env_with(caches), "MLFLOW_400_LAB_HOME": str(home)}
    proc = subprocess.Popen([sys.executable, "tools/bootstrap.py", "lab", "--no-browser"], cwd=repo,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, preexec_fn=_as_in_a_terminal)
    seen = []
    for line in proc.stdout:
        seen.append(line.rstrip())
        if URL.search(line):
            break
    else:
        sys.exit("JupyterLab printed no URL:\n" + "\n".join(seen[-30:]))
    to_url = time.monotonic() - started
    family = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    stop_started = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)  # the terminal's Ctrl-C goes to the foreground group
    try:
        proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
    stopped = time.monotonic() - stop_started
    time.sleep(1)
    left = [f"{p.pid} {' '.join(p.cmdline())[:80]}" for p in family if _alive(p)]
    strays = [p for p in family if _alive(p)]
    strays += [p for p in psutil.process_iter() if _alive(p) and p not in family
               and str(repo) in " ".join(_cmdline(p))]
    left = [f"{p.pid} {' '.join(_cmdline(p))[:80]}" for p in strays]
    for stray in strays:  # reported above; the benchmark itself leaves nothing running
        try:
            stray.kill()
        except psutil.Error:
            pass
    return to_url, stopped, left


def _as_in_a_terminal() -> None:
    """A terminal's foreground command gets SIGINT; this script may run where it is ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _alive(proc) -> bool:
    import psutil

    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _cmdline(proc) -> list[str]:
    try:
        return proc.cmdline()
    except Exception:  # noqa: BLE001 - gone or not ours
        return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warm-only", action="store_true",
                        help="skip the cold-cache runs (they download everything twice)")
    args = parser.parse_args(argv)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    if dirty:
        print("note: uncommitted changes are not measured (each run clones the last commit)")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start; "
          f"Python {sys.version.split()[0]}")
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="kit-setup-") as tmp:
        work = Path(tmp)
        # Shared by the cold and then the warm runs of each tool; --warm-only: the user's caches.
        caches = None if args.warm_only else work / "caches"
        for temperature in (("warm",) if args.warm_only else ("cold", "warm")):
            fetch, install = bootstrap_run(work, caches)
            results[f"bootstrap {temperature}"] = fetch + install
            print(f"bootstrap, {temperature} caches: {fetch + install:6.1f} s  (fetch uv {fetch:.1f} s, "
                  f"venv + lock + kit {install:.1f} s)", flush=True)
            results[f"pip {temperature}"] = pip_run(work, caches)
            print(f"pip install -e ., {temperature} caches: {results[f'pip {temperature}']:6.1f} s",
                  flush=True)
        for temperature in ("cold", "warm"):
            if f"pip {temperature}" in results:
                ratio = results[f"bootstrap {temperature}"] / results[f"pip {temperature}"]
                print(f"ratio bootstrap / pip, {temperature}: {ratio:.2f}x  (goal <= 0.2x)")
        to_url, stopped, left = clone_to_url(work, caches, work / "home")
        print(f"fresh clone to JupyterLab's URL (make lab, warm caches): {to_url:.1f} s "
              f"(goal <= 15 s); Ctrl-C stopped it in {stopped:.1f} s; "
              f"processes left: {len(left)}{' ' + str(left) if left else ''}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
