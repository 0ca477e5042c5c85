"""A learner's side of the room, cheaply: the files `join` writes, NO_PROXY at import, the doctor's
proxy line, the room pre-check against the session server, and `lab --fresh`'s copies.

The live `--basic-auth` room (credentials accepted and refused, the core path as a learner) is
tests/test_classroom_auth.py's, which shares its room start-up.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from helpers import config, doctor, fresh_copies, room
from helpers.errors import ConfigError
from helpers.processes import free_port
from tests.rooms import ROOT

DEAD_PROXY = "http://127.0.0.1:9"  # discard port: nothing listens, a proxy that never answers


@pytest.fixture
def learner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A learner's data folder and netrc in tmp_path; the real ~/.netrc is never touched."""
    for name in (config.TRACKING_URI_ENV, config.LEARNER_ENV, "MLFLOW_TRACKING_USERNAME",
                 "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(config.HOME_ENV, str(tmp_path / "home"))
    monkeypatch.setenv(room.NETRC_ENV, str(tmp_path / "netrc"))
    return tmp_path


def test_join_and_leave_touch_only_the_rooms_entry(learner: Path) -> None:
    netrc = learner / "netrc"
    netrc.write_text("machine git.example login me password mine\n# a comment\n")
    room.join("http://192.0.2.10:5000/", "ana", "pass-one-1234")
    room.join("http://192.0.2.10:5000", "ana", "pass-two-1234")  # again: replaced, not added
    assert netrc.read_text() == ("machine git.example login me password mine\n# a comment\n"
                                 "machine 192.0.2.10 login ana password pass-two-1234\n")
    assert netrc.stat().st_mode & 0o777 == 0o600
    # what requests itself sends: the room's host gets ana's, another host its own entry
    assert requests.utils.get_netrc_auth("http://192.0.2.10:5000/api") == ("ana", "pass-two-1234")
    assert requests.utils.get_netrc_auth("https://git.example/x") == ("me", "mine")
    assert (config.external_tracking_uri(), config.learner_name()) == ("http://192.0.2.10:5000", "ana")
    assert "pass" not in config.room_file().read_text()
    os.environ[config.TRACKING_URI_ENV] = "http://10.1.1.1:5000"  # an explicit variable still wins
    try:
        assert config.external_tracking_uri() == "http://10.1.1.1:5000"
    finally:
        del os.environ[config.TRACKING_URI_ENV]
    assert "removed" in room.leave()
    assert netrc.read_text() == "machine git.example login me password mine\n# a comment\n"
    assert config.external_tracking_uri() is None and not config.room_file().exists()
    for bad, said in (("192.0.2.10:5000", "not a server address"),
                      ("http://ana:pw@192.0.2.10:5000", "Leave the name and password out")):
        with pytest.raises(ConfigError, match=said):
            room.join(bad, "ana", "pass-one-1234")
    with pytest.raises(ConfigError, match="not a usable name"):
        room.join("http://192.0.2.10:5000", "ana smith", None)


def _python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_importing_helpers_sends_plain_requests_past_a_dead_proxy(server_url: str,
                                                                  learner: Path) -> None:
    """The issue's laptop: HTTP_PROXY set, NO_PROXY not. Plain requests to 127.0.0.1 fail through
    the proxy; after `import helpers` (every notebook's first cell) they go direct, and the
    joined room's host is in NO_PROXY and no_proxy too."""
    room.join("http://192.0.2.10:5000", "ana")
    env = {k: v for k, v in os.environ.items() if k.lower() != "no_proxy"}
    env.update(HTTP_PROXY=DEAD_PROXY, HTTPS_PROXY=DEAD_PROXY)
    plain = f"import requests; print(requests.get({server_url + '/health'!r}, timeout=30).status_code)"
    before = _python(plain, env)
    assert "ProxyError" in before.stderr  # ground truth: the proxy is in the way without the kit
    after = _python("import helpers, os\n" + plain + "\nprint(os.environ['NO_PROXY']);"
                    "print(os.environ['no_proxy'])", env)
    assert after.returncode == 0, after.stderr
    status, upper, lower = after.stdout.split()
    assert status == "200"
    assert upper == lower == "127.0.0.1,localhost,::1,192.0.2.10"


def test_the_doctors_proxy_line_says_what_requests_will_do(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy",
                 "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("HTTP_PROXY", raising=False)
    assert doctor.proxy_line("http://127.0.0.1:5400") == ""  # no proxy, nothing to say
    monkeypatch.setenv("HTTP_PROXY", "http://user:secret@proxy.example:3128")
    through = doctor.proxy_line("http://192.0.2.10:5000")
    assert through.startswith(" (requests to 192.0.2.10 go through the proxy: "
                              "HTTP_PROXY=http://****@proxy.example:3128;")
    assert "secret" not in through
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,192.0.2.10")
    for url in ("http://127.0.0.1:5400", "http://192.0.2.10:5000"):
        assert "go direct: it is in NO_PROXY" in doctor.proxy_line(url)
        assert requests.utils.get_environ_proxies(url) == {}  # and requests agrees


def _room_doctor(url: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "helpers", "doctor", "--room", url], cwd=ROOT,
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=120)


def test_room_precheck_against_an_open_server_a_closed_port_and_a_proxy(server_url: str,
                                                                        learner: Path) -> None:
    """The session server stands in for a room without basic auth (the --basic-auth room's
    answers are checked in tests/test_classroom_auth.py)."""
    ok = _room_doctor(server_url)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    lines = ok.stdout.splitlines()
    assert lines[0] == f"✓ room: the room's server at {server_url} answers from this laptop"
    assert lines[1] == (f"✓ login: it asks for no password (basic auth off); MLflow "
                        f"{config.PINNED_MLFLOW} as pinned")
    assert lines[2].startswith("If the room's server cannot be reached, nobody waits for it")
    port = free_port()
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0  # nothing listens there
    closed = _room_doctor(f"http://127.0.0.1:{port}")
    assert closed.returncode == 1
    assert closed.stdout.startswith(f"✗ room: 127.0.0.1 refuses connections on port {port} — fix:")
    assert "client isolation" in closed.stdout and "python -m helpers leave" in closed.stdout
    # the same server by a loopback name that is not in NO_PROXY, with a proxy that never answers
    proxied = _room_doctor(server_url.replace("127.0.0.1", "127.1"), HTTP_PROXY=DEAD_PROXY,
                           NO_PROXY="", no_proxy="")
    assert proxied.returncode == 1
    assert proxied.stdout.startswith("✗ room: a proxy is in the way: requests to 127.1 go to it")
    assert "python -m helpers join http://127.1:" in proxied.stdout


def _digest(folder: Path) -> str:
    return hashlib.sha256(b"".join(p.read_bytes() for p in sorted(folder.glob("*.ipynb")))).hexdigest()


def test_fresh_copies_have_no_outputs_and_leave_the_lessons_alone(tmp_path: Path) -> None:
    before = _digest(fresh_copies.NOTEBOOKS)
    folder, note = fresh_copies.prepare(dest=tmp_path / "fresh")
    lessons = sorted(p.name for p in fresh_copies.NOTEBOOKS.glob("*.ipynb"))
    assert sorted(p.name for p in folder.glob("*.ipynb")) == lessons
    assert note.startswith(f"Lessons without their outputs in {folder} ({len(lessons)} copied)")
    for copy in folder.glob("*.ipynb"):
        nb = json.loads(copy.read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert code and all(c["outputs"] == [] and c["execution_count"] is None for c in code)
        assert "widgets" not in nb["metadata"]
    assert (folder / "integration" / "test_mlflow_requests.py").is_file()  # notebook 15 runs it
    assert (folder / "images" / "request_lab.png").is_file()
    assert not (folder / "solutions").exists()  # the answers stay in notebooks/solutions/
    assert _digest(fresh_copies.NOTEBOOKS) == before
    worked = folder / "00_start_here.ipynb"
    worked.write_text(worked.read_text().replace('"cells"', '"cells"', 1) + "\n")
    mine = worked.read_bytes()
    _, again = fresh_copies.prepare(dest=folder)
    assert worked.read_bytes() == mine  # a learner's copy is kept
    assert f"0 copied, {len(lessons)} kept from before: delete the folder to start over" in again
