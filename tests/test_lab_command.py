"""`python -m helpers lab` (`make lab`): JupyterLab and the server up; Ctrl-C or a kill stops both."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests

from helpers import config


def _listening(proc: psutil.Process) -> list[tuple[str, int]]:
    try:
        return [(c.laddr.ip, c.laddr.port) for c in proc.net_connections(kind="inet")
                if c.status == psutil.CONN_LISTEN]
    except psutil.NoSuchProcess:
        return []


def test_lab_starts_both_on_loopback_and_a_kill_stops_both(tmp_path: Path) -> None:
    """SIGTERM to the lab's process alone (`kill PID`). SIGINT and SIGHUP go to the same handler
    (`_catch_stop_signals`); they are sent through a real terminal in the tests below."""
    home = tmp_path / "home"
    env = {**os.environ, config.HOME_ENV: str(home), "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt"),
           "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg")}
    env.pop(config.TRACKING_URI_ENV, None)
    lab = subprocess.Popen([sys.executable, "-m", "helpers", "lab", "--no-browser"], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        jupyter_addr: list[tuple[str, int]] = []
        # JupyterLab and the server start together: wait for both.
        while time.monotonic() < deadline and not (jupyter_addr and (home / "server.json").exists()):
            kids = psutil.Process(lab.pid).children(recursive=True)
            jupyter_addr = [a for k in kids if "jupyter" in " ".join(k.cmdline())
                            for a in _listening(k)]
            time.sleep(0.5)
        assert jupyter_addr, "JupyterLab did not start listening"
        assert {ip for ip, _ in jupyter_addr} == {"127.0.0.1"}
        state = _state(home)
        assert requests.get(f"{state['url']}/health", timeout=5).status_code == 200
        ip, port = jupyter_addr[0]
        assert requests.get(f"http://{ip}:{port}/api/status", timeout=5).status_code in (200, 403)
        tree = [psutil.Process(lab.pid), *psutil.Process(lab.pid).children(recursive=True),
                psutil.Process(state["pid"])]
        lab.send_signal(signal.SIGTERM)
        lab.wait(timeout=60)
        _, alive = psutil.wait_procs(tree, timeout=10)
        assert not alive, f"left running: {alive}"
        assert not (home / "server.json").exists()
    finally:
        if lab.poll() is None:
            lab.kill()


# -- through the README's own command, in a real terminal ----------------------------------------

ROOT = Path(__file__).resolve().parents[1]


class Terminal:
    """A command running in a pseudo-terminal, as in a learner's terminal window: it is the
    session leader, the pty is its controlling terminal, and Ctrl-C is the byte 0x03 typed
    there (the terminal driver turns it into SIGINT for the foreground process group)."""

    def __init__(self, argv: list[str], env: dict[str, str]):
        import pty
        import threading

        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdin=slave, stdout=slave,
                                     stderr=slave, start_new_session=True,
                                     preexec_fn=lambda: _take_terminal(0))
        os.close(slave)
        self.output = b""
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 4096)
            except OSError:
                return
            if not chunk:
                return
            self.output += chunk

    @property
    def text(self) -> str:
        return self.output.decode(errors="replace")

    def wait_for(self, needle: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while needle not in self.text:
            assert time.monotonic() < deadline, f"no {needle!r} after {timeout} s:\n{self.text}"
            assert self.proc.poll() is None, f"exited early:\n{self.text}"
            time.sleep(0.2)
        return self.text

    def ctrl_c(self) -> None:
        os.write(self.master, b"\x03")

    def tree(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.proc.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []


def _take_terminal(fd: int) -> None:
    import fcntl
    import termios

    fcntl.ioctl(fd, termios.TIOCSCTTY, 0)


def _lab_env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, config.HOME_ENV: str(tmp_path / "home"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt"), "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg"),
           "JUPYTER_DATA_DIR": str(tmp_path / "data"), "BROWSER": "true",
           # .venv exists already: skip only the install; make -> bootstrap -> helpers lab as usual
           "MLFLOW_400_LAB_NO_INSTALL": "1", "TERM": "xterm"}
    env.pop(config.TRACKING_URI_ENV, None)
    return env


def _start_a_kernel(text: str) -> None:
    """What opening a notebook does: a kernel, the process most often left behind."""
    url = re.search(r"JupyterLab is ready: (\S+)", text).group(1)
    base, token = url.split("/lab/tree/")[0], url.rsplit("token=", 1)[1]
    answer = requests.post(f"{base}/api/kernels", headers={"Authorization": f"token {token}"},
                           json={"name": "python3"}, timeout=60)
    assert answer.status_code == 201, answer.text


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX terminals")
@pytest.mark.parametrize("entry, presses", [
    ("make lab", 1), ("python tools/bootstrap.py lab", 2), ("python -m helpers lab", 2),
    ("parent ignores SIGINT", 1),
], ids=["make-lab-ctrl-c", "bootstrap-ctrl-c-twice", "helpers-lab-ctrl-c-twice",
        "sigint-ignored-by-parent"])
def test_ctrl_c_in_a_terminal_stops_everything(tmp_path: Path, entry: str, presses: int) -> None:
    if entry == "make lab" and shutil.which("make") is None:
        pytest.skip("make is not installed")
    python = sys.executable
    argv = {
        "make lab": ["make", "lab", f"PYTHON={python}"],
        "python tools/bootstrap.py lab": [python, "tools/bootstrap.py", "lab", "--no-browser"],
        "python -m helpers lab": [python, "-m", "helpers", "lab", "--no-browser"],
        # `nohup`, a script's background job, some IDE runners: SIGINT arrives ignored.
        "parent ignores SIGINT": ["bash", "-c", f"trap '' INT; exec {python} -m helpers lab "
                                  "--no-browser"],
    }[entry]
    term = Terminal(argv, _lab_env(tmp_path))
    seen: dict[int, psutil.Process] = {}
    try:
        text = term.wait_for("Press Ctrl-C once", timeout=240)
        assert "?token=" in text and "/lab/tree/00_start_here.ipynb" in text
        _start_a_kernel(text)
        state = _state(tmp_path / "home")
        seen.update({p.pid: p for p in term.tree()})
        seen[state["pid"]] = psutil.Process(state["pid"])
        assert any("ipykernel" in " ".join(p.cmdline()) for p in seen.values())
        token = re.search(r"token=(\w+)", text).group(1)
        on_argv = [p.pid for p in psutil.process_iter(["cmdline"])
                   if token in " ".join(p.info["cmdline"] or [])]
        assert not on_argv, "the Jupyter token is on a command line (ps shows it to everyone)"
        for _ in range(presses):
            term.ctrl_c()
            time.sleep(0.3)
        term.proc.wait(timeout=90)
        _, alive = psutil.wait_procs(list(seen.values()), timeout=15)
        assert not alive, f"left running: {alive}\n{term.text}"
        assert "Traceback" not in term.text, term.text
        assert "Stopped. Nothing of the lab is left running." in term.text
        assert not (tmp_path / "home" / "server.json").exists()
    finally:
        for proc in [*term.tree(), *seen.values()]:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX terminals")
@pytest.mark.parametrize("delay", [0.3])  # before the lab installs its own handler
def test_ctrl_c_during_start_up_is_not_lost_when_sigint_arrives_ignored(
        tmp_path: Path, delay: float) -> None:
    """Issue 22: SIGINT ignored by the parent, Ctrl-C while the bootstrap or the interpreter
    starts (before the lab's own handler): it must stop the command, leaving nothing."""
    python = sys.executable
    term = Terminal(["bash", "-c", f"trap '' INT; exec {python} tools/bootstrap.py lab --no-browser"],
                    _lab_env(tmp_path))
    seen: dict[int, psutil.Process] = {}
    try:
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline:
            seen.update({p.pid: p for p in term.tree()})
            time.sleep(0.05)
        term.ctrl_c()
        try:
            term.proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the Ctrl-C was lost: the lab kept running\n{term.text}")
        seen.update({p.pid: p for p in term.tree()})
        _, alive = psutil.wait_procs(list(seen.values()), timeout=15)
        assert not alive, f"left running: {alive}\n{term.text}"
        assert "Traceback" not in term.text, term.text
        assert not (tmp_path / "home" / "server.json").exists()
    finally:
        for proc in [*term.tree(), *seen.values()]:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_closed_terminal_stops_everything(tmp_path: Path) -> None:
    """SIGHUP, as a shell sends its jobs when the window is closed."""
    term = Terminal([sys.executable, "tools/bootstrap.py", "lab", "--no-browser"],
                    _lab_env(tmp_path))
    try:
        term.wait_for("Press Ctrl-C once", timeout=240)
        state = _state(tmp_path / "home")
        tree = [*term.tree(), psutil.Process(state["pid"])]
        term.proc.send_signal(signal.SIGHUP)
        term.proc.wait(timeout=90)
        _, alive = psutil.wait_procs(tree, timeout=15)
        assert not alive, f"left running: {alive}"
        assert "Traceback" not in term.text
    finally:
        for proc in term.tree():
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()


def test_lab_settings_turn_the_news_prompt_off() -> None:
    """The JupyterLab setting whose default ("none") makes it ask about news on first start."""
    from helpers.__main__ import LAB_SETTINGS

    schema = Path(sys.prefix, "share/jupyter/lab/schemas/@jupyterlab/apputils-extension/"
                  "notification.json")
    assert json.loads(schema.read_text())["properties"]["fetchNews"]["default"] == "none"
    overrides = json.loads((LAB_SETTINGS / "overrides.json").read_text())
    assert overrides["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"


def _state(home: Path) -> dict:
    return json.loads((home / "server.json").read_text())


def _kit_processes(home: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline", "environ"]):
        with contextlib.suppress(psutil.Error):
            blob = " ".join(proc.info["cmdline"] or []) + str(proc.info["environ"] or {})
            if str(home) in blob and proc.pid != os.getpid():
                found.append(proc)
    return found


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX terminals")
@pytest.mark.parametrize("when, sigint_ignored", [
    ("running", False), ("running", True), ("starting", False)],
    ids=["ctrl-c-twice", "sigint-ignored-by-parent", "ctrl-c-during-startup"])
def test_serve_foreground_ctrl_c_in_a_terminal(tmp_path: Path, when: str,
                                               sigint_ignored: bool) -> None:
    home = tmp_path / "home"
    command = f"{sys.executable} -m helpers serve --foreground"
    argv = ["bash", "-c", f"trap '' INT; exec {command}"] if sigint_ignored else command.split()
    term = Terminal(argv, _lab_env(tmp_path))
    try:
        if when == "starting":
            term.wait_for("Starting MLflow", timeout=120)
            time.sleep(1.0)  # the server process exists, /health does not answer yet
            term.ctrl_c()
            term.proc.wait(timeout=60)
            assert "Stopped before the MLflow server was ready" in term.text, term.text
        else:
            term.wait_for("Press Ctrl-C to stop the server.", timeout=240)
            tree = [*term.tree(), psutil.Process(_state(home)["pid"])]
            term.ctrl_c()
            time.sleep(0.3)
            term.ctrl_c()
            term.proc.wait(timeout=60)
            _, alive = psutil.wait_procs(tree, timeout=15)
            assert not alive, f"left running: {alive}\n{term.text}"
            assert "Server stopped." in term.text
        assert "Traceback" not in term.text, term.text
        time.sleep(1)
        assert not _kit_processes(home), term.text
        assert not (home / "server.json").exists()
    finally:
        for proc in [*term.tree(), *_kit_processes(home)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
