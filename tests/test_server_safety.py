"""The kit never touches what it did not start, and every bad input gets one plain sentence.

Each test reproduces one finding of issue 10 for real (a stranger's process named in the state
file, a paused server, a damaged state file, a full or read-only disk, a proxy, -O) and then
checks what is left running with psutil.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import requests

from helpers import config, errors, processes, server, server_launch, server_state
from helpers.errors import ServerError
from helpers.server import start_server

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args: str, home: Path | str, timeout: float = 180, **env_changes: str | None,
         ) -> subprocess.CompletedProcess:
    env = {**os.environ, config.HOME_ENV: str(home)}
    env.pop(config.TRACKING_URI_ENV, None)
    for key, value in env_changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return subprocess.run([sys.executable, "-m", "helpers", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def _plain(done: subprocess.CompletedProcess) -> str:
    both = done.stdout + done.stderr
    assert "Traceback" not in both, both
    return both


@pytest.fixture
def own_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "lab-home"
    home.mkdir()
    monkeypatch.setenv(config.HOME_ENV, str(home))
    monkeypatch.delenv(config.TRACKING_URI_ENV, raising=False)
    yield home
    _cleanup(home)


def _cleanup(home: Path) -> None:
    """Stop a server this test left in `home` (only there: never the session's server)."""
    try:
        state = json.loads((home / "server.json").read_text())
    except (OSError, ValueError):
        state = None
    for record in (server_state.running_record(home), state):
        if isinstance(record, dict) and processes.is_kit_process(record):
            processes.kill_tree(record["pid"])


@pytest.fixture
def stranger() -> Iterator[psutil.Process]:
    """A process the kit did not start, in the test's own process group (like the shell)."""
    proc = subprocess.Popen(["sleep", "300"])
    yield psutil.Process(proc.pid)
    proc.kill()
    proc.wait()


def test_stop_never_signals_a_process_the_kit_did_not_start(own_home: Path,
                                                            stranger: psutil.Process) -> None:
    me = psutil.Process()
    url = "http://127.0.0.1:5400"
    records = [
        {"pid": stranger.pid, "create_time": None, "url": url},  # create_time null
        {"pid": stranger.pid, "url": url},  # create_time missing
        {"pid": 1},
        {"pid": stranger.pid, "create_time": stranger.create_time(), "url": url,
         "cmdline": [sys.executable, "-m", "uvicorn"]},  # pid and time match, command does not
        {"pid": me.pid, "create_time": me.create_time(), "url": url,
         "cmdline": me.cmdline()},  # the caller's parent, fully matching: still never
    ]
    for record in records:
        (own_home / "server.json").write_text(json.dumps(record))
        said = _plain(_cli("stop", home=own_home))
        assert stranger.is_running() and stranger.status() != psutil.STATUS_ZOMBIE, record
        assert len(said.strip().splitlines()) == 1, said
    assert me.is_running()


@pytest.mark.parametrize("content", ['"x"', '{"pid": 12', "[]", "", '{"pid": "7"}'])
def test_a_damaged_state_file_is_one_sentence(own_home: Path, content: str) -> None:
    (own_home / "server.json").write_text(content)
    status = _plain(_cli("status", home=own_home))
    assert "No kit server is running" in status
    stopped = _cli("stop", home=own_home)
    assert stopped.returncode == 0
    assert "nothing to stop" in _plain(stopped)
    assert not (own_home / "server.json").exists()


@pytest.mark.parametrize("port", ["70000", "-1", "0", "http"])
def test_bad_port_is_one_sentence(own_home: Path, port: str) -> None:
    done = _cli("serve", f"--port={port}", home=own_home)
    assert done.returncode == 2
    said = _plain(done)
    assert "1 to 65535" in said or "invalid" in said
    assert not list(own_home.iterdir())  # nothing started, nothing written
    with pytest.raises(ServerError, match="1 to 65535"):
        server.check_port(int(port) if port.lstrip("-").isdigit() else -5)


def test_relative_home_is_resolved_once_by_the_cli_and_refused_in_a_kernel(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(config.HOME_ENV, "relative-home")
    with pytest.raises(errors.ConfigError, match="relative path .* absolute"):
        config.data_dir()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "helpers", "status"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    said = _plain(done)
    assert f"using {tmp_path / 'relative-home'}" in said
    assert f"data: {tmp_path / 'relative-home'}" in said


@pytest.mark.parametrize("uri", ["file:///tmp/mlruns", "sqlite:///x.db", "databricks", "garbage"])
def test_non_http_tracking_uri_is_said_not_silently_ignored(own_home: Path, uri: str) -> None:
    said = _plain(_cli("status", home=own_home, MLFLOW_TRACKING_URI=uri))
    assert f"MLFLOW_TRACKING_URI is '{uri}', which is not an http(s) server" in said
    assert "No kit server is running" in said


def test_credentials_in_the_tracking_uri_are_never_printed(server_url: str, tmp_path: Path) -> None:
    uri = server_url.replace("http://", "http://alice:Secret42@")
    for command in ("status", "serve"):
        said = _plain(_cli(command, home=tmp_path, MLFLOW_TRACKING_URI=uri))
        assert "Secret42" not in said and "****@127.0.0.1" in said, said
    os.environ[config.TRACKING_URI_ENV] = uri
    try:
        handle = start_server()
    finally:
        del os.environ[config.TRACKING_URI_ENV]
    for shown in (str(handle), repr(handle)):
        assert "Secret42" not in shown


def test_launched_server_runs_without_pythonoptimize(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONOPTIMIZE", "2")
    for launcher in ("fast", "cli"):
        _, env = server_launch.launch_command(5400, launcher=launcher)
        assert "PYTHONOPTIMIZE" not in env
    _, env = server_launch.launch_command(5400, optimize=True)
    assert env["PYTHONOPTIMIZE"] == "1"


def _server_tree(home: Path) -> list[psutil.Process]:
    pid = json.loads((home / "server.json").read_text())["pid"]
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def _kit_servers(home: Path) -> list[psutil.Process]:
    """Every process whose environment or command line points at this data folder."""
    found = []
    for proc in psutil.process_iter(["cmdline", "environ"]):
        blob = " ".join(proc.info["cmdline"] or []) + str(proc.info["environ"] or {})
        if str(home) in blob and proc.pid != os.getpid():
            found.append(proc)
    return found


def test_a_live_server_under_pythonoptimize_proxies_pauses_and_a_lost_state(
        own_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Started from a shell that has PYTHONOPTIMIZE=1 and a dead corporate proxy configured.
    dead_proxy = f"http://127.0.0.1:{processes.free_port()}"
    proxies = {name: dead_proxy for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy",
                                             "https_proxy")}
    served = _cli("serve", home=own_home, PYTHONOPTIMIZE="1", NO_PROXY=None, no_proxy=None,
                  **proxies)
    assert served.returncode == 0, _plain(served)
    state = config.read_state()
    tree = _server_tree(own_home)
    assert "PYTHONOPTIMIZE" not in tree[0].environ()
    # MLflow's asserts are live: a log-metric with no timestamp is still refused.
    answer = requests.post(f"{state['url']}/api/2.0/mlflow/runs/log-metric",
                           json={"run_id": "r", "key": "k", "value": 1}, timeout=10)
    assert answer.status_code == 400

    # Proxies in the environment: status, reuse and send() all still reach the local server.
    for name, value in {**proxies, "NO_PROXY": "", "no_proxy": ""}.items():
        monkeypatch.setenv(name, value)
    assert "Kit server running" in _plain(_cli("status", home=own_home, **proxies))
    handle = start_server(progress=lambda _: None)
    assert (handle.source, handle.pid) == ("reused", state["pid"])
    from helpers.wire import send

    assert send("/health", method="GET").status == 200

    # An explicit port other than the running server's is said, not ignored.
    with pytest.raises(ServerError, match=f"already running at {state['url']}, not on port"):
        start_server(port=processes.free_port(), progress=lambda _: None)

    # Paused (SIGSTOP): alive, not dead. No second server, one sentence, and quickly.
    os.kill(state["pid"], signal.SIGSTOP)
    paused = psutil.Process(state["pid"])
    deadline = time.monotonic() + 10  # the signal is delivered asynchronously
    while paused.status() != psutil.STATUS_STOPPED and time.monotonic() < deadline:
        time.sleep(0.05)
    assert paused.status() == psutil.STATUS_STOPPED
    started = time.monotonic()
    with pytest.raises(ServerError, match="does not answer: it may be paused"):
        start_server(progress=lambda _: None)
    assert time.monotonic() - started < 5  # its stopped state is read; /health is not awaited
    # The state file truncated on top of that: still no second server on the same SQLite file.
    (own_home / "server.json").write_text('{"pid": ')
    with pytest.raises(ServerError, match="paused or overloaded"):
        start_server(progress=lambda _: None)
    assert "paused or overloaded" in _plain(_cli("status", home=own_home))
    assert [p.pid for p in _kit_servers(own_home)] == [p.pid for p in tree]

    # `stop` still finds it (through the record the server holds) and stops it, paused or not.
    stopped = _plain(_cli("stop", home=own_home))
    assert f"Stopped the kit server at {state['url']}" in stopped
    _, alive = psutil.wait_procs(tree, timeout=10)
    assert not alive and not (own_home / "server.json").exists()


def _mount_tmpfs(where: Path, size: str) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    if not shutil.which("mount") or not hasattr(os, "geteuid") or os.geteuid() != 0:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True)
    return done.returncode == 0


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 48 MB file system (tmpfs), so full-disk and read-only cases are the OS's own."""
    where = tmp_path / "small-disk"
    if not _mount_tmpfs(where, "48m"):
        pytest.skip("mounting a tmpfs needs root (CI containers run as root)")
    try:
        yield where
    finally:
        _cleanup(where / "home")
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_full_disk_and_read_only_folder(small_disk: Path) -> None:
    home = small_disk / "home"
    # Read-only: the server runs, then the folder becomes read-only; stop still stops it.
    assert _cli("serve", home=home).returncode == 0
    tree = _server_tree(home)
    # A read-only view of the folder (a bind mount over it): the running server keeps its open
    # files, every new write there fails with EROFS, as on a folder made read-only.
    subprocess.run(["mount", "--bind", str(home), str(home)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(home)], check=True)
        stopped = _plain(_cli("stop", home=home))
    finally:
        subprocess.run(["umount", str(home)], check=True)
    assert "Stopped the kit server" in stopped and "Read-only file system" in stopped
    _, alive = psutil.wait_procs(tree, timeout=10)
    assert not alive
    (home / "server.json").unlink(missing_ok=True)

    # Full: the database is there from the first run; fill every free byte, then serve.
    (home / "server.log").unlink()
    with open(small_disk / "filler", "wb") as filler:
        with pytest.raises(OSError):
            while True:
                filler.write(b"\0" * 65536)
                filler.flush()
    done = _cli("serve", home=home)
    said = _plain(done)
    assert done.returncode == 1
    (error,) = [line for line in said.splitlines() if line.startswith("error:")]
    assert "No space left on device" in error and "it was stopped" in error, said
    assert not _kit_servers(home), "a server was left running"
    assert not (home / "server.json").exists()
