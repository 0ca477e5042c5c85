"""The local server: start, reuse, stop with no stray process, and every way it can go wrong."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import requests

from helpers import config, processes, server, server_launch
from helpers.errors import ServerError, ServerUnreachable
from helpers.server import start_server
from helpers.wire import send


@pytest.fixture
def own_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private data dir: the servers these tests start never touch the session's server."""
    home = tmp_path / "lab-home"
    monkeypatch.setenv(config.HOME_ENV, str(home))
    monkeypatch.delenv(config.TRACKING_URI_ENV, raising=False)
    yield home
    server.stop_kit_server()


def _tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def test_start_reuse_kill_restart_stop_leaves_no_process(own_home: Path) -> None:
    """One server's life: started, reused, killed mid-session, started afresh, stopped."""
    cwd_before = set(Path.cwd().iterdir())
    handle = start_server(progress=lambda _: None)
    assert handle.source == "started" and handle.url.startswith("http://127.0.0.1:")
    assert requests.get(f"{handle.url}/health", timeout=5).status_code == 200
    tree = _tree(handle.pid)
    listening = [c.laddr.ip for p in tree for c in p.net_connections(kind="inet")
                 if c.status == psutil.CONN_LISTEN]
    assert listening and set(listening) == {"127.0.0.1"}  # loopback only
    assert (own_home / "mlflow.db").exists() and (own_home / "server.json").exists()
    assert set(Path.cwd().iterdir()) == cwd_before  # nothing written in the working folder

    again = start_server()
    assert (again.source, again.url, again.pid) == ("reused", handle.url, handle.pid)
    again.stop()  # a reused handle does not own the server: still running
    assert requests.get(f"{handle.url}/health", timeout=5).status_code == 200

    # Killed mid-session (the OOM killer, a closed laptop lid): one sentence, then a new start.
    for proc in tree:
        proc.kill()
    psutil.wait_procs(tree, timeout=5)
    handle._proc.wait(timeout=5)
    with pytest.raises(ServerUnreachable, match="Could not connect"):
        send("/api/2.0/mlflow/experiments/search", method="GET")
    assert "No kit server is running" in server.status()
    fresh = start_server(progress=lambda _: None)
    assert fresh.source == "started" and fresh.pid != handle.pid
    fresh_tree = _tree(fresh.pid)
    with fresh:
        pass  # leaving the context stops it
    _, alive = psutil.wait_procs(fresh_tree, timeout=5)
    assert not alive, f"stray processes: {alive}"
    assert not (own_home / "server.json").exists()


def test_port_already_taken_is_refused_clearly(own_home: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ServerError, match=f"Port {port} .* already in use"):
            start_server(port=port, progress=lambda _: None)


def test_tracking_uri_is_honoured_and_never_stopped(own_home: Path, server_url: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(config.TRACKING_URI_ENV, server_url + "/")
    handle = start_server()
    assert (handle.source, handle.url, handle.owned) == ("MLFLOW_TRACKING_URI", server_url, False)
    assert handle.mlflow_version == config.PINNED_MLFLOW
    handle.stop()
    assert requests.get(f"{server_url}/health", timeout=5).status_code == 200
    assert not (own_home / "server.json").exists()  # no local server was started


def test_unreachable_tracking_uri_is_one_sentence(own_home: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(config.TRACKING_URI_ENV, f"http://127.0.0.1:{processes.free_port()}")
    with pytest.raises(ServerError, match="no MLflow server answers there") as caught:
        start_server()
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("password", ["S3/cr3t99", "S3#cr3t99", "S3?c/r#3t99"])
def test_a_tracking_uri_password_with_delimiters_is_never_printed(
        own_home: Path, server_url: str, password: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 22 (5): `status`, `doctor --check server` and the start-up error print the URI
    masked whole, and say why it reaches no server (requests ends the host at "/" or "#")."""
    from helpers import doctor

    port = server_url.rsplit(":", 1)[1]
    monkeypatch.setenv(config.TRACKING_URI_ENV, f"http://ana:{password}@127.0.0.1:{port}")
    with pytest.raises(ServerError) as caught:
        start_server()
    shown = [server.status(), str(caught.value), doctor.check_server().line()]
    for line in shown:
        assert "S3" not in line and "cr3t" not in line, line
        assert f"http://****@127.0.0.1:{port}" in line and "%2F" in line, line


def test_the_server_environment_cannot_shadow_the_installed_mlflow(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 22 (3): another MLflow on PYTHONPATH (or in the current folder) must not be the one
    the server imports. Asked of the server's own interpreter with its own environment."""
    fake = tmp_path / "elsewhere"
    (fake / "mlflow").mkdir(parents=True)
    (fake / "mlflow" / "__init__.py").write_text('__version__ = "2.8.1"\n')
    monkeypatch.setenv("PYTHONPATH", str(fake))
    for launcher in ("fast", "cli"):
        cmd, env = server_launch.launch_command(processes.free_port(), launcher=launcher,
                                                home=tmp_path)
        probe = "import importlib.util as u; print(u.find_spec('mlflow').origin)"
        for cwd in (tmp_path, fake):  # with "-m", Python puts the current folder first
            seen = subprocess.run([cmd[0], "-c", probe], env=env, cwd=cwd, capture_output=True,
                                  text=True, timeout=60, check=True).stdout.strip()
            assert str(fake) not in seen and seen.endswith("mlflow/__init__.py"), (launcher, seen)


def test_status_reports_the_version_that_answers(server_url: str) -> None:
    """Issue 22 (3): the version shown is what /version answers, not what a record (or the
    installed metadata) says."""
    from helpers import server_state

    answered = requests.get(f"{server_url}/version", timeout=30).text.strip()
    state = config.read_state()
    assert state is not None and state["url"] == server_url
    try:
        server_state.write_state({**state, "mlflow_version": "2.8.1"})
        assert server.find_kit_server().mlflow_version == answered
        assert f"Kit server running: MLflow {answered} at {server_url}" in server.status()
    finally:
        server_state.write_state(state)


def test_startup_timeout_names_the_log_and_leaves_nothing(own_home: Path) -> None:
    with pytest.raises(ServerError, match="did not answer .* in time") as caught:
        start_server(timeout=0.3, progress=lambda _: None)
    assert "server.log" in str(caught.value)
    assert not (own_home / "server.json").exists()
    mine = [p for p in psutil.process_iter(["cmdline", "environ"])
            if str(own_home) in " ".join(p.info["cmdline"] or [])
            or str(own_home) in str((p.info["environ"] or {}).get(server_launch.ENV_BACKEND, ""))]
    assert not mine, f"stray processes: {mine}"


def test_cli_serve_status_stop(own_home: Path) -> None:
    env = {**os.environ, config.HOME_ENV: str(own_home)}
    run = lambda *args: subprocess.run([sys.executable, "-m", "helpers", *args], env=env,  # noqa: E731
                                       capture_output=True, text=True, timeout=120)
    assert "No kit server is running" in run("status").stdout
    served = run("serve")
    assert served.returncode == 0, served.stderr
    pid = config.read_state()["pid"]
    assert "Kit server running" in run("status").stdout
    stopped = run("stop")
    assert "Stopped the kit server" in stopped.stdout
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert "nothing to stop" in run("stop").stdout


def test_fast_launch_env_names_match_mlflow() -> None:
    """The fast launcher copies MLflow internals; fail loudly when MLflow renames them."""
    from mlflow import environment_variables as ev
    from mlflow.server import constants

    assert server_launch.ENV_BACKEND == constants.BACKEND_STORE_URI_ENV_VAR
    assert server_launch.ENV_REGISTRY == constants.REGISTRY_STORE_URI_ENV_VAR
    assert server_launch.ENV_ARTIFACT_ROOT == constants.ARTIFACT_ROOT_ENV_VAR
    assert server_launch.ENV_ARTIFACT_DEST == constants.ARTIFACTS_DESTINATION_ENV_VAR
    assert server_launch.ENV_SERVE_ARTIFACTS == constants.SERVE_ARTIFACTS_ENV_VAR
    assert server_launch.ENV_SGI_NAME == ev._MLFLOW_SGI_NAME.name
    assert server_launch.ENV_IN_JOB_EXECUTOR == ev._MLFLOW_IN_JOB_EXECUTOR.name
    assert server_launch.ENV_BOOT_ID == ev._MLFLOW_SERVER_BOOT_ID.name
    assert importlib.util.find_spec(server_launch.FAST_APP.split(":")[0]) is not None
    run_server = Path(importlib.util.find_spec("mlflow.server").origin).read_text()
    assert '"mlflow.server.fastapi_app:app" if using_uvicorn' in run_server


def test_cli_launcher_also_works(own_home: Path) -> None:
    """The fallback for other MLflow versions: `mlflow server` itself, one worker."""
    handle = start_server(launcher="cli", progress=lambda _: None)
    try:
        assert requests.get(f"{handle.url}/health", timeout=5).status_code == 200
        tree = _tree(handle.pid)
    finally:
        handle.stop()
    _, alive = psutil.wait_procs(tree, timeout=5)
    assert not alive


def test_simultaneous_first_starts_share_one_server(own_home: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        handles = list(pool.map(lambda _: start_server(progress=lambda _: None), range(2)))
    try:
        assert handles[0].url == handles[1].url
        assert sorted(h.source for h in handles) == ["reused", "started"]
    finally:
        for handle in handles:
            handle.stop()


def test_a_port_taken_while_the_server_starts_is_left_to_its_owner(
        own_home: Path, server_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another program's server takes the port between the kit's check and its server's bind
    (two kits, two data folders, both wanting 5400). Its /health answers at once; the kit's own
    server must not be taken for ready, nor killed in the middle of creating its tables: it is
    left to fail its bind and exit, and the kit starts again on a free port."""
    taken = int(server_url.rsplit(":", 1)[1])  # the other kit: the session's server, its own process
    checked: list[int] = []
    truth = server.port_in_use

    def free_when_checked(port: int, host: str = "127.0.0.1") -> bool:
        """The race: the port looks free at the kit's first look, and is taken from then on."""
        checked.append(port)
        return False if checked.count(taken) == 1 and port == taken else truth(port, host)

    monkeypatch.setattr(server, "DEFAULT_PORT", taken)
    monkeypatch.setattr(server, "port_in_use", free_when_checked)
    spawned: list[subprocess.Popen] = []
    real_popen = subprocess.Popen
    monkeypatch.setattr(server.subprocess, "Popen",
                        lambda *a, **k: spawned.append(real_popen(*a, **k)) or spawned[-1])
    handle = start_server(progress=lambda _: None)
    try:
        assert taken in checked and handle.url != f"http://127.0.0.1:{taken}"
        assert len(spawned) == 2
        # the first server was not killed: it ended on its own when its bind failed, with
        # uvicorn's STARTUP_FAILURE status (3), after MLflow had set up its database
        assert spawned[0].returncode == 3, spawned[0].returncode
        assert requests.get(f"{handle.url}/api/2.0/mlflow/experiments/search",
                            params={"max_results": 1}, timeout=10).status_code == 200
    finally:
        handle.stop()


def test_a_proxy_setting_does_not_stand_between_a_learner_and_the_local_server(
        server_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Behind a corporate proxy (HTTP_PROXY set), a notebook's plain `requests.post` to the
    kit's server must go direct: start_server() adds the loopback names to NO_PROXY, once."""
    import requests

    from helpers.server import start_server

    dead_proxy = "http://127.0.0.1:9"  # nothing listens there
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, dead_proxy)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "intranet.example")
    with pytest.raises(requests.exceptions.ProxyError):
        requests.get(server_url + "/health", timeout=10)
    handle = start_server()
    assert "NO_PROXY" in capsys.readouterr().err
    assert requests.get(handle.url + "/health", timeout=10).status_code == 200
    assert os.environ["NO_PROXY"].startswith("intranet.example,127.0.0.1")
    start_server()
    assert "NO_PROXY" not in capsys.readouterr().err  # said once
