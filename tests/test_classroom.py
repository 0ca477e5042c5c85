"""Classroom mode for real: `serve --classroom` on a throw-away PostgreSQL, learners' requests.

One room server is started the way an instructor starts it (the CLI, MLflow's default workers,
a `postgresql://` URI with a password in it, learners told to use http://127.1:PORT, a loopback
address outside MLflow's default allow-list). The lesson's requests go to it and to the session's
SQLite server, and the answers are compared. Ground truth is always the live servers. Rooms with
basic auth (one account per learner) are in tests/test_classroom_auth.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from importlib.util import find_spec
from pathlib import Path

import psutil
import pytest
import requests

from benchmarks.classroom_load import LESSON, TempPostgres, read_back, run_lesson, sent_ok
from helpers import classroom, config, errors, room_address, runs
from helpers import room as learner_room
from helpers.diagnose import explain
from helpers.processes import free_port
from helpers.wire import send
from tests.loopback import RecordingServer, start_recording_server
from tests.rooms import ROOT, Room, postgres_cluster, require_postgres, start_cli_room, stop_room

API = "/api/2.0/mlflow"
# unique per run: other test sessions on a shared machine may show their own on a command line
SECRET = f"not-a-real-secret-{uuid.uuid4().hex[:12]}"
DUPLICATE = "duplicate experiment (RESOURCE_ALREADY_EXISTS)"


def test_missing_postgresql_fails_in_ci_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(TempPostgres, "unavailable", staticmethod(lambda: "no initdb (test)"))
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must run the PostgreSQL tests"):
        require_postgres()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="no initdb"):
        require_postgres()


@pytest.fixture(scope="module")
def room(postgres: TempPostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Room]:
    """`python -m helpers serve --classroom` on PostgreSQL, as an instructor would start it: the
    URI with its password in MLFLOW_BACKEND_STORE_URI, learners told to use 127.1."""
    uri = postgres.create_database("classroom")
    typed = uri.replace("postgresql+psycopg2://postgres@", f"postgresql://postgres:{SECRET}@")
    room = start_cli_room(["--host", "127.0.0.1", "--advertise", "127.1"],
                          tmp_path_factory.mktemp("room-home"),
                          env={classroom.BACKEND_URI_ENV: typed})
    yield room
    if room.proc.poll() is None:  # test_ctrl_c_stops_the_room normally did this already
        stop_room(room, signal.SIGINT)


@pytest.fixture(scope="module")
def postgres() -> Iterator[TempPostgres]:
    yield from postgres_cluster()


# -- what the instructor sees ------------------------------------------------------------------


def test_room_prints_the_learner_line_and_hides_the_password(room: Room) -> None:
    printed = "\n".join(room.out)
    assert "Learners are given 127.1 (--advertise)." in printed
    assert f"  .venv/bin/python -m helpers join http://127.1:{room.port}\n" in printed + "\n"
    assert (f"  Windows (cmd.exe or PowerShell): .venv\\Scripts\\python -m helpers join "
            f"http://127.1:{room.port}") in printed
    assert "<" not in printed.split("Each learner runs", 1)[1]  # no placeholder to fill in
    assert "MLflow 3.17.2 answers at" in printed
    server_log = room.err_path.parent / "classroom" / f"server-{room.port}.log"
    everything = printed + room.err_path.read_text() + server_log.read_text()
    assert SECRET not in everything
    assert "postgres:****@127.0.0.1" in printed
    # postgresql:// means psycopg 3 under SQLAlchemy 2.1, which is not installed: the note says so
    assert find_spec("psycopg") is None and "using postgresql+psycopg2://" in printed


def test_no_process_shows_the_database_password(room: Room) -> None:
    """The URI came in MLFLOW_BACKEND_STORE_URI; no command line on this machine carries it."""
    shown = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        if SECRET in " ".join(proc.info["cmdline"] or []):
            shown.append(proc.info["pid"])
    assert shown == []


def test_room_runs_mlflows_default_workers(room: Room) -> None:
    tree = psutil.Process(room.proc.pid).children(recursive=True)
    workers = [p for p in tree if "multiprocessing.spawn" in " ".join(p.cmdline())]
    # MLflow 3.17.2 `mlflow server` without --workers: mlflow/server/__init__.py uses `workers or 4`
    assert len(workers) == 4
    # the server's processes do not carry the database password on their command lines (`ps`
    # shows those to every user); only the instructor's own typed command does
    assert not [p.pid for p in tree if SECRET in " ".join(p.cmdline())]
    listening = {c.laddr.ip for p in tree for c in p.net_connections(kind="inet")
                 if c.status == psutil.CONN_LISTEN}
    assert listening == {"127.0.0.1"}


def test_allowed_hosts_admit_the_advertised_address(room: Room, server_url: str) -> None:
    search = f"{API}/experiments/search?max_results=1"
    # Ground truth for why the flag is needed: MLflow's defaults refuse the Host "127.1:PORT".
    default_port = server_url.rsplit(":", 1)[1]
    refused = requests.get(f"http://127.1:{default_port}{search}", timeout=30)
    assert (refused.status_code, refused.text) == (
        403, "Invalid Host header - possible DNS rebinding attack detected")
    accepted = requests.get(f"{room.url}{search}", timeout=30)
    assert accepted.status_code == 200
    foreign = requests.get(f"{room.url}{search}", headers={"Host": f"evil.example:{room.port}"},
                           timeout=30)
    assert foreign.status_code == 403  # the room did not open the door to every name


# -- what learners see -------------------------------------------------------------------------


def _norm(text: str | None, names: list[str]) -> str:
    text = text or ""
    for name in names:
        text = text.replace(name, "NAME")
    return re.sub(r"\b[0-9a-f]{32}\b", "RUN_ID", text)


def test_lesson_answers_on_postgresql_match_sqlite(room: Room, server_url: str) -> None:
    lite = run_lesson(server_url, runs.unique_name("compare-sqlite"))
    pg = run_lesson(room.url, runs.unique_name("compare-postgresql"))
    assert [a.step.label for a in lite.answers] == [a.step.label for a in pg.answers] == \
        [s.label for s in LESSON]
    names = [lite.ctx["name"], pg.ctx["name"]]
    differs = []
    for a, b in zip(lite.answers, pg.answers):
        assert (a.status, b.status) == (a.step.expect, a.step.expect), a.step.label
        assert a.exchange.error_code == b.exchange.error_code, a.step.label
        assert explain(a.exchange).family == explain(b.exchange).family, a.step.label
        if _norm(a.exchange.message, names) != _norm(b.exchange.message, names):
            differs.append(a.step.label)
    assert differs == [DUPLICATE]
    dup_lite = lite.answers[1].exchange.message
    dup_pg = pg.answers[1].exchange.message
    assert dup_lite.startswith(f"Experiment(name={names[0]}) already exists. Error: (sqlite3.IntegrityError) "
                               "UNIQUE constraint failed: experiments.workspace, experiments.name")
    assert dup_pg.startswith(f"Experiment(name={names[1]}) already exists. Error: "
                             "(psycopg2.errors.UniqueViolation) duplicate key value violates unique "
                             'constraint "uq_experiments_workspace_name"')
    assert explain(pg.answers[1].exchange).family == "already-exists"
    for base, result in ((server_url, lite), (room.url, pg)):
        assert read_back(base, result) == sent_ok(result) == \
            {"experiments": 1, "runs": 1, "metric points": 3, "params": 1}


_LEARNER_SCRIPT = """
import json
from helpers import runs, start_server
from benchmarks.classroom_load import run_lesson
server = start_server()
names = [runs.unique_name("lesson"), runs.unique_name("lesson")]
results = [run_lesson(server.url, name) for name in names]
print(json.dumps({"source": server.source, "names": names,
                  "statuses": [[a.status for a in r.answers] for r in results]}))
"""


def test_two_learners_running_the_same_notebook_do_not_collide(room: Room, tmp_path: Path) -> None:
    procs = {}
    for learner in ("ana", "ben"):
        env = {**os.environ, config.TRACKING_URI_ENV: room.url, config.LEARNER_ENV: learner,
               config.HOME_ENV: str(tmp_path / learner)}
        procs[learner] = subprocess.Popen([sys.executable, "-c", _LEARNER_SCRIPT], cwd=ROOT, env=env,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = {}
    for learner, proc in procs.items():
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
        seen[learner] = json.loads(out.strip().splitlines()[-1])
    expected = [s.expect for s in LESSON]
    for learner, got in seen.items():
        assert got["source"] == "MLFLOW_TRACKING_URI"
        assert got["statuses"] == [expected, expected]  # each first create is 200, no collision
        assert all(n.startswith(f"400lab/{learner}/lesson-") for n in got["names"])
    for learner in seen:
        found = send(f"{API}/experiments/search", base_url=room.url, json={
            "filter": f"name LIKE '400lab/{learner}/%'", "max_results": 100})
        assert found.status == 200
        assert sorted(e["name"] for e in found.json["experiments"]) == sorted(seen[learner]["names"])


# -- bad settings get one sentence ---------------------------------------------------------------


def test_bad_settings_are_refused_in_one_sentence(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    monkeypatch.setenv(config.HOME_ENV, str(tmp_path))
    with pytest.raises(errors.ClassroomError, match="--host 0.0.0.0"):
        classroom.build(backend_store_uri="sqlite:///x.db", host="")
    with pytest.raises(errors.ClassroomError, match="--backend-store-uri"):
        classroom.build(backend_store_uri="", host="127.0.0.1")
    with pytest.raises(errors.ClassroomError, match="nowhere/room.db is in .* which does not exist"):
        classroom.build(backend_store_uri=f"sqlite:///{tmp_path}/nowhere/room.db", host="127.0.0.1")
    assert not (tmp_path / "nowhere").exists()
    with pytest.raises(errors.ClassroomError, match="--workers must be 1 or more"):
        classroom.build(backend_store_uri="sqlite:///x.db", host="127.0.0.1", workers=0)
    with pytest.raises(errors.ClassroomError, match="--basic-auth needs --roster FILE"):
        classroom.build(backend_store_uri="sqlite:///x.db", host="127.0.0.1", basic_auth=True)
    with pytest.raises(errors.ClassroomError, match="needs --basic-auth too"):
        classroom.build(backend_store_uri="sqlite:///x.db", host="127.0.0.1", roster=["ana"])
    monkeypatch.setenv(classroom.ADMIN_PASSWORD_ENV, "short")
    with pytest.raises(errors.ClassroomError, match="at least 12 characters"):
        classroom.build(backend_store_uri="sqlite:///x.db", host="127.0.0.1", basic_auth=True,
                        roster=["ana"])
    done = subprocess.run([sys.executable, "-m", "helpers", "serve", "--host", "0.0.0.0"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip() == ("error: --host is for classroom mode only (add --classroom); the "
                                   "kit's own server always listens on 127.0.0.1 with SQLite.")


def test_a_password_on_the_command_line_is_refused(tmp_path: Path) -> None:
    env = {**os.environ, config.HOME_ENV: str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "helpers", "serve", "--classroom", "--host",
                           "127.0.0.1", "--port", str(free_port()), "--backend-store-uri",
                           f"postgresql://mlflow:{SECRET}@127.0.0.1/mlflow"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 1
    assert done.stderr.startswith("error: Keep the database password off the command line")
    assert "PGPASSWORD" in done.stderr and classroom.BACKEND_URI_ENV in done.stderr
    assert SECRET not in done.stdout + done.stderr
    assert not (tmp_path / "classroom").exists()  # refused before anything was made or started


def test_a_wrong_database_address_fails_in_seconds_with_its_cause(tmp_path: Path) -> None:
    """Nothing listens on the port: the cause comes from the driver, before any server starts."""
    nobody = free_port()
    uri = f"postgresql+psycopg2://mlflow@127.0.0.1:{nobody}/mlflow"
    env = {**os.environ, config.HOME_ENV: str(tmp_path), classroom.BACKEND_URI_ENV: uri}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "helpers", "serve", "--classroom", "--host",
                           "127.0.0.1", "--port", str(free_port())],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    elapsed = time.monotonic() - started
    assert done.returncode == 1
    assert done.stderr.startswith(f"error: Cannot connect to the database {uri}: connection to "
                                  f'server at "127.0.0.1", port {nobody} failed: Connection refused')
    assert "still waiting" not in done.stderr
    assert not list((tmp_path / "classroom").glob("server-*.log"))  # no server was started
    print(f"wrong database address reported after {elapsed:.1f} s (incl. Python start-up)")


def test_a_missing_database_is_named(postgres: TempPostgres) -> None:
    uri = f"postgresql+psycopg2://postgres@127.0.0.1:{postgres.port}/no_such_db"
    with pytest.raises(errors.ClassroomError, match='database "no_such_db" does not exist'):
        classroom.check_database(uri)


# -- the learner line and the roster -----------------------------------------------------------


@pytest.mark.parametrize("shell", ["sh"])  # a plain command now: no shell's own read/printf quirks
@pytest.mark.parametrize("auth", [False, True])
def test_the_learner_line_asks_and_sets_everything(shell: str, auth: bool, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The printed line, run as printed in the kit's folder, records the room in files every later
    terminal and kernel reads (not in one shell's variables); the password only in the netrc."""
    if shutil.which(shell) is None:
        pytest.skip(f"no {shell} here")
    monkeypatch.setenv(config.HOME_ENV, str(tmp_path))
    monkeypatch.setenv(classroom.ADMIN_PASSWORD_ENV, "admin-pass-for-tests-1")
    built = classroom.build(backend_store_uri="sqlite:///x.db", host="127.0.0.1", port=5123,
                            basic_auth=auth, roster=["ana"] if auth else ())
    posix, windows = classroom.learner_lines(built)
    assert "<" not in posix + windows and "your-name" not in posix + windows
    typed = "ana\ns3cret-pass-word\n" if auth else "ana\n"
    netrc = tmp_path / "netrc"
    done = subprocess.run([shell, "-c", posix], input=typed, capture_output=True, text=True,
                          timeout=60, cwd=ROOT, start_new_session=True,  # no tty: getpass reads stdin
                          env={"PATH": os.environ["PATH"], config.HOME_ENV: str(tmp_path),
                               "NETRC": str(netrc)})
    assert "This laptop now uses the room's server http://127.0.0.1:5123 as ana" in done.stdout, \
        done.stdout + done.stderr
    monkeypatch.delenv(config.TRACKING_URI_ENV, raising=False)
    monkeypatch.delenv(config.LEARNER_ENV, raising=False)
    monkeypatch.setenv("NETRC", str(netrc))
    assert (config.external_tracking_uri(), config.learner_name()) == ("http://127.0.0.1:5123", "ana")
    assert "s3cret-pass-word" not in done.stdout + done.stderr + config.room_file().read_text()
    if auth:
        assert netrc.stat().st_mode & 0o777 == 0o600
        assert learner_room.credentials("http://127.0.0.1:5123/api") == ("ana", "s3cret-pass-word")
    else:
        assert not netrc.exists()


def test_roster_and_credentials_file(tmp_path: Path) -> None:
    roster = tmp_path / "roster.txt"
    roster.write_text("ana\n  ben  # the one at the back\n\n# nobody\ncarla-2\n")
    assert classroom.read_roster(roster) == ["ana", "ben", "carla-2"]
    for text, message in (("ana\nAna\n", "already on line 1"), ("ana smith\n", "not a usable"),
                          ("admin\n", "admin's user name"), ("# only\n", "has no names"),
                          ("José\n", "ASCII letters")):  # issue 22: said "letters" and refused é
        roster.write_text(text)
        with pytest.raises(errors.ClassroomError, match=message):
            classroom.read_roster(roster)
    creds = tmp_path / "credentials.csv"
    first = classroom.write_credentials(creds, ["ana", "ben"], admin=("admin", "a" * 16))
    assert creds.stat().st_mode & 0o777 == 0o600
    assert creds.read_text().splitlines()[0] == "name,password"
    creds.chmod(0o644)
    loose = creds.stat().st_ino
    again = classroom.write_credentials(creds, ["ana", "ben", "carla"])
    # issue 22 (2): a new 0600 file renamed over the loose one, never the loose one rewritten
    assert creds.stat().st_mode & 0o777 == 0o600 and creds.stat().st_ino != loose
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    assert (again["ana"], again["ben"]) == (first["ana"], first["ben"])  # learners keep theirs
    assert len({again["ana"], again["ben"], again["carla"]}) == 3


# -- which address learners are given ----------------------------------------------------------

Iface = room_address.Interface
ROOM = [Iface("lo", True, ("127.0.0.1",)), Iface("wlan0", True, ("192.168.1.20",)),
        Iface("docker0", True, ("172.17.0.1",)), Iface("vboxnet0", True, ("169.254.10.3",))]


def test_the_default_routes_address_is_advertised() -> None:
    """The issue's machine: the old rule (first private address as a string) took 169.254.10.3."""
    ip, why = room_address.choose_address(ROOM, "192.168.1.20")
    assert ip == "192.168.1.20"
    assert why == ("Learners are given 192.168.1.20 (wlan0: the default route's interface; also "
                   "up: docker0 172.17.0.1). Another? --advertise ADDRESS.")


def test_without_a_default_route_a_physical_interface_wins() -> None:
    ip, why = room_address.choose_address(ROOM, None)
    assert ip == "192.168.1.20" and "no default route; first up, non-virtual interface" in why
    # a default route through a VPN or docker address still wins: it is where traffic goes
    assert room_address.choose_address(ROOM, "172.17.0.1")[0] == "172.17.0.1"


def test_down_loopback_and_link_local_interfaces_are_never_advertised() -> None:
    down = [Iface("lo", True, ("127.0.0.1",)), Iface("eth0", False, ("10.0.0.5",)),
            Iface("docker0", True, ("172.17.0.1",)), Iface("en1", True, ("169.254.3.3",))]
    ip, why = room_address.choose_address(down, None)
    assert ip == "172.17.0.1" and "only container/VM interfaces are up" in why
    with pytest.raises(errors.ClassroomError, match="no usable network address"):
        room_address.choose_address([Iface("lo", True, ("127.0.0.1",)),
                                  Iface("en1", True, ("169.254.3.3",))], "169.254.3.3")
    public_first = [Iface("eth0", True, ("93.184.216.34",)), Iface("eth1", True, ("10.1.2.3",))]
    assert room_address.choose_address(public_first, None)[0] == "10.1.2.3"  # private before public


def test_the_address_choice_is_explained_and_can_be_overridden(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(config.HOME_ENV, str(tmp_path))
    monkeypatch.setattr(classroom, "local_interfaces", lambda: ROOM)
    monkeypatch.setattr(classroom, "default_route_address", lambda: "192.168.1.20")
    built = classroom.build(backend_store_uri="sqlite:///x.db", host="0.0.0.0", port=5000)
    assert built.url == "http://192.168.1.20:5000"
    assert built.describe().splitlines()[0].startswith("Learners are given 192.168.1.20 (wlan0")
    told = classroom.build(backend_store_uri="sqlite:///x.db", host="0.0.0.0", port=5000,
                           advertise="teacher.local")
    assert told.url == "http://teacher.local:5000"
    assert told.describe().splitlines()[0] == "Learners are given teacher.local (--advertise)."
    assert "teacher.local" in told.added_hosts


def test_database_passwords_are_masked() -> None:
    assert classroom.mask_uri("postgresql://mlflow:pa:ss@db.local:5432/mlflow") == \
        "postgresql://mlflow:****@db.local:5432/mlflow"
    assert classroom.mask_uri("postgresql+psycopg2://mlflow@db/mlflow") == \
        "postgresql+psycopg2://mlflow@db/mlflow"
    for password in ("pa/ss", "p#w@rd", "a?b"):  # issue 22: urlsplit ends the host part there
        assert classroom.mask_uri(f"postgresql://mlflow:{password}@db.local:5432/mlflow") == \
            "postgresql://mlflow:****@db.local:5432/mlflow"


# -- the wire helper carries classroom credentials, and never shows them -------------------------


def test_credentials_go_to_the_tracking_server_only_and_are_masked(
        echo: RecordingServer, monkeypatch: pytest.MonkeyPatch) -> None:
    password = "s3cret-class-password"
    monkeypatch.setenv(config.TRACKING_URI_ENV, echo.url)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "learner")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)
    exchange = send(f"{API}/runs/log-metric", json={"run_id": "r", "key": "k", "value": 1})
    # requests' own basic-auth encoder is the reference for the header value
    reference = requests.Request("GET", echo.url, auth=("learner", password)).prepare()
    assert echo.received[-1].headers["Authorization"] == reference.headers["Authorization"]
    token = reference.headers["Authorization"].split()[1]
    for shown in (exchange.to_curl(), exchange.to_text(), exchange._repr_html_(), repr(exchange),
                  str(exchange), repr(exchange.request)):
        assert password not in shown and token not in shown
    assert "'Authorization: ****'" in exchange.to_curl()

    other, httpd = start_recording_server()  # any other server gets nothing
    try:
        send(f"{other.url}/api", json={})
        assert "Authorization" not in other.received[-1].headers
    finally:
        httpd.shutdown()
        httpd.server_close()

    send(f"{API}/x", json={}, headers={"Authorization": None})  # the learner's own choice wins
    assert "Authorization" not in echo.received[-1].headers


def test_token_is_sent_as_bearer(echo: RecordingServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(config.TRACKING_URI_ENV, echo.url)
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "tok-123456")
    exchange = send(f"{API}/x", method="GET")
    assert echo.received[-1].headers["Authorization"] == "Bearer tok-123456"
    assert "tok-123456" not in exchange.to_curl() + exchange.to_text() + repr(exchange.request)


# -- last: Ctrl-C ends the room and leaves nothing behind -----------------------------------------


def test_ctrl_c_stops_the_room_and_leaves_no_process(room: Room) -> None:
    """Even though the room was started from a parent that ignores SIGINT (start_cli_room)."""
    assert stop_room(room, signal.SIGINT)[-1] == "Classroom server stopped."
