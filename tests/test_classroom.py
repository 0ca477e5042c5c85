"""Classroom mode for real: `serve --classroom` on a throw-away PostgreSQL, learners' requests.

One room server is started the way an instructor starts it (the CLI, MLflow's default workers,
a `postgresql://` URI with a password in it, learners told to use http://127.1:PORT, a loopback
address outside MLflow's default allow-list). The lesson's requests go to it and to the session's
SQLite server, and the answers are compared. Ground truth is always the live servers.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

import psutil
import pytest
import requests

from benchmarks.classroom_load import LESSON, TempPostgres, read_back, run_lesson, sent_ok
from helpers import classroom, config, runs
from helpers.diagnose import explain
from helpers.server import free_port
from helpers.wire import send
from tests.loopback import RecordingServer, start_recording_server

ROOT = Path(__file__).resolve().parents[1]
API = "/api/2.0/mlflow"
SECRET = "not-a-real-secret-4711"
DUPLICATE = "duplicate experiment (RESOURCE_ALREADY_EXISTS)"
START_TIMEOUT = 300  # four workers importing MLflow on a busy two-core machine


@dataclass
class Room:
    url: str
    port: int
    proc: subprocess.Popen
    out: list[str]
    lines: queue.Queue  # what the CLI prints after start-up (None once it exits)
    err_path: Path


@pytest.fixture(scope="module")
def postgres() -> Iterator[TempPostgres]:
    why = TempPostgres.unavailable()
    if why:
        pytest.skip(f"PostgreSQL cannot run here: {why}")
    cluster = TempPostgres().start()
    yield cluster
    postmaster = psutil.Process(int((cluster.dir / "data" / "postmaster.pid").read_text().split()[0]))
    family = [postmaster, *postmaster.children(recursive=True)]
    cluster.stop()
    _, alive = psutil.wait_procs(family, timeout=30)
    assert not [p.pid for p in alive if _running(p)], "PostgreSQL processes left running"


@pytest.fixture(scope="module")
def room(postgres: TempPostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Room]:
    """`python -m helpers serve --classroom` on PostgreSQL, as an instructor would type it."""
    uri = postgres.create_database("classroom")
    typed = uri.replace("postgresql+psycopg2://postgres@", f"postgresql://postgres:{SECRET}@")
    port = free_port()
    home = tmp_path_factory.mktemp("room-home")
    err_path = home / "stderr.txt"
    env = {**os.environ, config.HOME_ENV: str(home)}
    env.pop(config.TRACKING_URI_ENV, None)
    with open(err_path, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "helpers", "serve", "--classroom", "--backend-store-uri", typed,
             "--host", "127.0.0.1", "--port", str(port), "--advertise", "127.1"],
            stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, text=True, cwd=ROOT,
            env=env)
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_pump, args=(proc, lines), daemon=True).start()
    out: list[str] = []
    deadline = time.monotonic() + START_TIMEOUT
    while not any("Press Ctrl-C" in line for line in out):
        try:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            line = None
        if line is None:
            proc.kill()
            pytest.fail(f"classroom server did not start; stdout: {out}; stderr: "
                        f"{err_path.read_text()[-2000:]}")
        out.append(line)
    room = Room(url=f"http://127.1:{port}", port=port, proc=proc, out=out, lines=lines,
                err_path=err_path)
    yield room
    if proc.poll() is None:  # test_ctrl_c_stops_the_room normally did this already
        tree = [proc.pid, *(p.pid for p in psutil.Process(proc.pid).children(recursive=True))]
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
        psutil.wait_procs([psutil.Process(p) for p in tree if psutil.pid_exists(p)], timeout=30)


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _pump(proc: subprocess.Popen, lines: queue.Queue) -> None:
    for line in proc.stdout:
        lines.put(line.rstrip("\n"))
    lines.put(None)


# -- what the instructor sees ------------------------------------------------------------------


def test_room_prints_the_learner_line_and_hides_the_password(room: Room) -> None:
    printed = "\n".join(room.out)
    assert f"export MLFLOW_TRACKING_URI=http://127.1:{room.port} MLFLOW_400_LAB_LEARNER='<your-name>'" \
        in printed
    assert f'$env:MLFLOW_TRACKING_URI="http://127.1:{room.port}"' in printed
    assert "MLflow 3.17.2 answers at" in printed
    server_log = room.err_path.parent / "classroom" / f"server-{room.port}.log"
    everything = printed + room.err_path.read_text() + server_log.read_text()
    assert SECRET not in everything
    assert "postgres:****@127.0.0.1" in printed
    # postgresql:// means psycopg 3 under SQLAlchemy 2.1, which is not installed: the note says so
    assert find_spec("psycopg") is None and "using postgresql+psycopg2://" in printed


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


# -- basic auth (MLflow's app; needs the mlflow[auth] extra) -------------------------------------


@pytest.mark.skipif(find_spec("flask_wtf") is None,
                    reason="MLflow's basic-auth app needs Flask-WTF (mlflow[auth]), which the "
                           "kit's pins do not install")
def test_basic_auth_room(postgres: TempPostgres, monkeypatch: pytest.MonkeyPatch,
                         tmp_path: Path) -> None:
    admin, learner_pw = "admin-pass-for-tests-1", "class-pass-for-tests-2"
    monkeypatch.setenv(config.HOME_ENV, str(tmp_path))
    monkeypatch.setenv(classroom.ADMIN_PASSWORD_ENV, admin)
    monkeypatch.setenv(classroom.CLASS_PASSWORD_ENV, learner_pw)
    monkeypatch.delenv(classroom.AUTH_CONFIG_ENV, raising=False)
    monkeypatch.delenv(classroom.SECRET_KEY_ENV, raising=False)
    built = classroom.build(backend_store_uri=postgres.create_database("auth"), host="127.0.0.1",
                            port=free_port(), basic_auth=True, workers=1)
    posix, powershell = classroom.learner_lines(built)
    assert "MLFLOW_TRACKING_USERNAME=learner MLFLOW_TRACKING_PASSWORD='<the class password>'" in posix
    assert learner_pw not in posix + powershell + built.describe()
    handle = classroom.start(built, progress=lambda _: None)
    try:
        search = f"{handle.url}{API}/experiments/search"
        assert requests.get(search, params={"max_results": 1}, timeout=30).status_code == 401
        monkeypatch.setenv(config.TRACKING_URI_ENV, handle.url)
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", classroom.CLASS_USER)
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", learner_pw)
        made = runs.new_run("auth")  # the kit's own helpers now carry the credentials
        answer = send(f"{API}/runs/get", method="GET", params={"run_id": made.run_id})
        assert answer.status == 200
        token = base64.b64encode(f"learner:{learner_pw}".encode()).decode()
        assert answer.request.header("Authorization") == f"Basic {token}"
        for shown in (answer.to_curl(), answer.to_text(), answer._repr_html_(), repr(answer),
                      repr(answer.request)):
            assert learner_pw not in shown and token not in shown
        # The lesson's "nonexistent run" is answered by the auth layer first: 403, not 404.
        ghost = send(f"{API}/runs/get", method="GET", params={"run_id": "0" * 32})
        assert (ghost.status, ghost.text) == (403, "Permission denied")
        # The doctor on a learner's laptop: right password passes, wrong one is named.
        ok = _doctor_server(dict(os.environ))
        assert ok.returncode == 0 and "✓ server: the shared server at" in ok.stdout
        wrong = _doctor_server({**os.environ, "MLFLOW_TRACKING_PASSWORD": "wrong-password-123"})
        assert wrong.returncode == 1 and "refuses the user name and password given" in wrong.stdout
        assert learner_pw not in ok.stdout + ok.stderr + wrong.stdout + wrong.stderr
    finally:
        handle.stop()


def _doctor_server(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "helpers", "doctor", "--check", "server"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


# -- bad settings get one sentence ---------------------------------------------------------------


def test_bad_settings_are_refused_in_one_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(classroom.ClassroomError, match="--host 0.0.0.0"):
        classroom.build(backend_store_uri="sqlite:///x.db", host="")
    with pytest.raises(classroom.ClassroomError, match="--backend-store-uri"):
        classroom.build(backend_store_uri="", host="127.0.0.1")
    with pytest.raises(classroom.ClassroomError, match="--workers must be 1 or more"):
        classroom.build(backend_store_uri="sqlite:///x.db", host="127.0.0.1", workers=0)
    monkeypatch.delenv(classroom.ADMIN_PASSWORD_ENV, raising=False)
    expected = "needs Flask-WTF" if find_spec("flask_wtf") is None else "needs an admin password"
    with pytest.raises(classroom.ClassroomError, match=expected):
        classroom.build(backend_store_uri="sqlite:///x.db", host="127.0.0.1", basic_auth=True)
    done = subprocess.run([sys.executable, "-m", "helpers", "serve", "--host", "0.0.0.0"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip() == ("error: --host is for classroom mode only (add --classroom); the "
                                   "kit's own server always listens on 127.0.0.1 with SQLite.")


def test_database_passwords_are_masked() -> None:
    assert classroom.mask_uri("postgresql://mlflow:pa:ss@db.local:5432/mlflow") == \
        "postgresql://mlflow:****@db.local:5432/mlflow"
    assert classroom.mask_uri("postgresql+psycopg2://mlflow@db/mlflow") == \
        "postgresql+psycopg2://mlflow@db/mlflow"


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
    tree = [room.proc, *psutil.Process(room.proc.pid).children(recursive=True)]
    pids = [p.pid for p in tree]
    room.proc.send_signal(signal.SIGINT)
    assert room.proc.wait(timeout=60) == 0
    gone, alive = psutil.wait_procs([p for p in tree[1:] if psutil.pid_exists(p.pid)], timeout=30)
    assert not alive, f"left running: {[p.pid for p in alive]} of {pids}"
    rest = []
    while (line := room.lines.get(timeout=30)) is not None:
        rest.append(line)
    assert rest[-1] == "Classroom server stopped."
