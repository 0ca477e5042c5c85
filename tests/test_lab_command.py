"""`python -m helpers lab` (`make lab`): JupyterLab and the server up; Ctrl-C or a kill stops both."""

from __future__ import annotations

import json
import os
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


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "kill"])
def test_lab_starts_both_on_loopback_and_a_signal_stops_both(tmp_path: Path,
                                                             stop_signal: int) -> None:
    home = tmp_path / "home"
    env = {**os.environ, config.HOME_ENV: str(home), "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt"),
           "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg")}
    env.pop(config.TRACKING_URI_ENV, None)
    lab = subprocess.Popen([sys.executable, "-m", "helpers", "lab", "--no-browser"], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        jupyter_addr: list[tuple[str, int]] = []
        while time.monotonic() < deadline and not jupyter_addr:
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
        lab.send_signal(stop_signal)
        lab.wait(timeout=60)
        _, alive = psutil.wait_procs(tree, timeout=10)
        assert not alive, f"left running: {alive}"
        assert not (home / "server.json").exists()
    finally:
        if lab.poll() is None:
            lab.kill()


def _state(home: Path) -> dict:
    return json.loads((home / "server.json").read_text())
