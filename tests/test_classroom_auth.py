"""Classroom mode with MLflow's basic-auth app: one account per learner, isolation by permission.

Live, on PostgreSQL and on SQLite: rooms started as an instructor starts them
(`serve --classroom --basic-auth --roster FILE`), learners acting with their own credentials, and
MLflow's own permission answers. Each room is stopped with a different signal.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest
import requests

from benchmarks.classroom_load import TempPostgres
from helpers import classroom, config, errors, runs
from helpers import room as room_mod
from helpers.preflight_pipeline import preflight
from helpers.wire import send
from tests.rooms import ROOT, Room, postgres_cluster, start_cli_room, stop_room

API = "/api/2.0/mlflow"


@pytest.fixture(scope="module")
def postgres() -> Iterator[TempPostgres]:
    yield from postgres_cluster()


def _csv(path: Path) -> dict[str, str]:
    return classroom.read_credentials(path)


@pytest.mark.parametrize(("backend", "stop_with"), [("postgresql", signal.SIGHUP),
                                                    ("sqlite", signal.SIGTERM)])
def test_each_learner_writes_only_their_own_runs(backend: str, stop_with: int, tmp_path: Path,
                                                  request: pytest.FixtureRequest,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path
    if backend == "postgresql":
        uri = request.getfixturevalue("postgres").create_database("auth")
    else:
        uri = f"sqlite:///{(tmp_path / 'room.db').as_posix()}"
        # Issue 22 (6): a "%" in the data folder's path (configparser reads basic_auth.ini)
        home = tmp_path / "data 100%25 %d"
        home.mkdir()
    roster = tmp_path / "roster.txt"
    roster.write_text("# the class\nana\nben\n\n")
    # 127.1: a room host that is not the learners' own 127.0.0.1, so netrc entries stay apart
    room = start_cli_room(["--basic-auth", "--roster", str(roster), "--host", "127.0.0.1",
                           "--advertise", "127.1", "--workers", "1"], home,
                          {classroom.BACKEND_URI_ENV: uri},
                          drop=(classroom.ADMIN_PASSWORD_ENV, classroom.AUTH_CONFIG_ENV))
    try:
        creds_file = home / "classroom" / "credentials.csv"
        # Issue 22 (2): the passwords, MLflow's auth database and the server log: owner only
        for private in (creds_file, home / "classroom" / classroom.AUTH_DB,
                        home / "classroom" / f"server-{room.port}.log"):
            assert private.stat().st_mode & 0o777 == 0o600, private
        creds = _csv(creds_file)
        assert sorted(creds) == ["admin", "ana", "ben"]
        assert all(len(pw) >= classroom.MIN_PASSWORD for pw in creds.values())
        printed = "\n".join(room.out) + room.err_path.read_text()
        assert f"Passwords (one per learner, and the admin's): {creds_file}" in printed
        assert "basic auth on, 2 learner accounts" in printed
        commandlines = " ".join(" ".join(p.info["cmdline"] or [])
                                for p in psutil.process_iter(["cmdline"]))
        for password in creds.values():
            assert password not in printed and password not in commandlines
        api = f"{room.url}{API}"
        assert requests.get(f"{api}/experiments/search", params={"max_results": 1},
                            timeout=30).status_code == 401
        made = {}
        for name in ("ana", "ben"):
            auth = (name, creds[name])
            exp = requests.post(f"{api}/experiments/create", auth=auth, timeout=30,
                                json={"name": runs.unique_name(f"400lab/{name}/perm")})
            assert exp.status_code == 200, exp.text
            run = requests.post(f"{api}/runs/create", auth=auth, timeout=30,
                                json={"experiment_id": exp.json()["experiment_id"]})
            assert run.status_code == 200, run.text
            made[name] = (exp.json()["experiment_id"], run.json()["run"]["info"]["run_id"])
        metric = {"key": "loss", "value": 0.5, "timestamp": 1, "step": 0}
        ben, ana = ("ben", creds["ben"]), ("ana", creds["ana"])
        # learner B writing to learner A's run: MLflow's permission check refuses it
        refused = requests.post(f"{api}/runs/log-metric", auth=ben, timeout=30,
                                json={"run_id": made["ana"][1], **metric})
        assert (refused.status_code, refused.text) == (403, "Permission denied")
        sneaked = requests.post(f"{api}/runs/create", auth=ben, timeout=30,
                                json={"experiment_id": made["ana"][0]})
        assert sneaked.status_code == 403
        own = requests.post(f"{api}/runs/log-metric", auth=ana, timeout=30,
                            json={"run_id": made["ana"][1], **metric})
        assert own.status_code == 200
        # why, in MLflow's own terms: the creator holds MANAGE, everyone else the default READ
        admin = ("admin", creds["admin"])
        for name, expected in (("ana", "MANAGE"), ("ben", "READ")):
            perm = requests.get(f"{room.url}/api/3.0/mlflow/users/permissions/get", auth=admin,
                                timeout=30, params={"username": name, "resource_type": "experiment",
                                                    "resource_id": made["ana"][0]})
            assert perm.status_code == 200, perm.text
            assert perm.json()["permission"] == expected
        # the instructor (admin) reads every learner's run; ana's metric is there, ben's attempt not
        for name, (_, run_id) in made.items():
            got = requests.get(f"{api}/runs/get", params={"run_id": run_id}, auth=admin, timeout=30)
            assert got.status_code == 200
            assert len(got.json()["run"]["data"].get("metrics", [])) == (1 if name == "ana" else 0)
        if backend == "postgresql":
            _kit_as_a_learner(room, creds, monkeypatch)
        else:
            _core_path_as_a_learner(room, creds, tmp_path / "ana", monkeypatch)
            _a_wrong_admin_password_keeps_the_saved_one(room, creds_file)
    finally:
        rest = stop_room(room, stop_with)
    assert rest[-1] == "Classroom server stopped."


def _a_wrong_admin_password_keeps_the_saved_one(room: Room, creds_file: Path) -> None:
    """Issue 22 (2): what a restart with another MLFLOW_AUTH_ADMIN_PASSWORD runs: the server
    refuses it, and credentials.csv (the only readable copy of the right one) is unchanged."""
    saved = creds_file.read_bytes()
    again = SimpleNamespace(env={classroom.ADMIN_PASSWORD_ENV: "another-password-123"},
                            credentials=creds_file, roster=["ana", "ben", "carla"],
                            home=creds_file.parent)
    with pytest.raises(errors.ClassroomError, match="refuses the admin password"):
        classroom.create_learners(room.url, again)
    assert creds_file.read_bytes() == saved
    assert creds_file.stat().st_mode & 0o777 == 0o600


def _kit_as_a_learner(room: Room, creds: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The kit's own helpers and the doctor, with a learner's variables set as the line sets them."""
    monkeypatch.setenv(config.TRACKING_URI_ENV, room.url)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "ana")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", creds["ana"])
    made = runs.new_run("auth")  # the kit's own helpers carry the credentials
    answer = send(f"{API}/runs/get", method="GET", params={"run_id": made.run_id})
    assert answer.status == 200
    token = base64.b64encode(f"ana:{creds['ana']}".encode()).decode()
    assert answer.request.header("Authorization") == f"Basic {token}"
    for shown in (answer.to_curl(), answer.to_text(), answer._repr_html_(), repr(answer),
                  repr(answer.request)):
        assert creds["ana"] not in shown and token not in shown
    # Issue 22 (4b): preflight's state lookups carry the learner's credentials as send() does
    body = json.dumps({"run_id": made.run_id, "key": "loss", "value": 0.5, "timestamp": 1})
    # Addressed as 127.0.0.1 (where the room is bound): offline, preflight predicts MLflow's
    # default Host allow-list, which does not name 127.1 (the room allows it with --advertise).
    local = f"http://127.0.0.1:{room.port}"
    monkeypatch.setenv(config.TRACKING_URI_ENV, local)  # the learner's credentials go there
    verdict = preflight("POST", f"{local}{API}/runs/log-metric",
                        {"Content-Type": "application/json"}, body, server=local)
    assert verdict.predicted_status == 200 and verdict.state_checked, verdict.findings
    # The lesson's "nonexistent run" is answered by the auth layer first: 403, not 404.
    ghost = send(f"{API}/runs/get", method="GET", params={"run_id": "0" * 32})
    assert (ghost.status, ghost.text) == (403, "Permission denied")
    ok = _doctor_server(dict(os.environ))
    assert ok.returncode == 0 and "✓ server: the shared server at" in ok.stdout
    wrong = _doctor_server({**os.environ, "MLFLOW_TRACKING_PASSWORD": "wrong-password-123"})
    assert wrong.returncode == 1 and "refuses the user name and password given" in wrong.stdout
    assert creds["ana"] not in ok.stdout + ok.stderr + wrong.stdout + wrong.stderr


def _doctor_server(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "helpers", "doctor", "--check", "server"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)




# -- the core path as a learner who joined the room ------------------------------------------------

CORE_PATH = ("00_start_here", "01_missing_content_type", "02_malformed_json", "03_invalid_run_id")
STATUS = re.compile(r"\b(200|400|401|403|404|405|500)\b")
#: The one difference MLflow itself makes: its permission check runs before the handler, so any
#: request of a learner naming a run that does not exist gets 403 "Permission denied" (where the
#: local server gives 404, or the 400 of a check the handler makes first): notebook 03's cells.
NOT_FOUND_CELLS = {("03_invalid_run_id", 3), ("03_invalid_run_id", 5), ("03_invalid_run_id", 7)}


def _statuses(cell: dict) -> list[str]:
    text = ""
    for out in cell.get("outputs", []):
        text += "".join(out.get("text", "")) + "".join(
            "".join(v) for k, v in out.get("data", {}).items() if k.startswith("text/plain"))
    return STATUS.findall(text)


def _core_path_as_a_learner(room: Room, creds: dict[str, str], home: Path,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Notebooks 00-03 as written, in real kernels, for a learner who ran the printed line: every
    status is the local run's (the committed outputs), but for MLflow's 403 on a missing run.

    The learner's HOME-like places are temporary (the kit's data folder, NETRC): the real
    ~/.netrc is never touched; no MLFLOW_TRACKING_* variable is set, so only the files count."""
    import nbformat
    from nbclient import NotebookClient

    netrc = home / "netrc"
    for name in (config.TRACKING_URI_ENV, "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
                 config.LEARNER_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(config.HOME_ENV, str(home))
    monkeypatch.setenv(room_mod.NETRC_ENV, str(netrc))
    line = classroom_line(room)
    joined = subprocess.run(line, shell=True, cwd=ROOT, input=f"ana\n{creds['ana']}\n",
                            capture_output=True, text=True, timeout=120, start_new_session=True)
    assert joined.returncode == 0, joined.stdout + joined.stderr
    assert netrc.stat().st_mode & 0o777 == 0o600
    assert creds["ana"] not in joined.stdout + joined.stderr
    assert "✓ room:" in joined.stdout and "your name and password work ('ana'" in joined.stdout
    # The plain request of notebook 03 that differs, asked directly: MLflow's permission check.
    ghost = requests.post(f"{room.url}{API}/runs/log-metric", timeout=30, json={
        "run_id": "this_is_not_a_real_uuid", "key": "acc", "value": 0.99, "timestamp": 1})
    assert (ghost.status_code, ghost.text) == (403, "Permission denied")
    # One kernel for the four notebooks, one after the other, as a learner runs them (each
    # begins with its own imports): a kernel start-up and MLflow's import once, not four times.
    origin, cells = [], []
    for name in CORE_PATH:
        committed = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
        for index, cell in enumerate(committed.cells):
            if cell.cell_type == "code":
                origin.append((name, index, _statuses(cell)))
                cells.append(nbformat.v4.new_code_cell(cell.source))
    nb = nbformat.v4.new_notebook(cells=cells)
    NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    differences: list[tuple[str, int, str]] = []
    for (name, index, expected), got in zip(origin, nb.cells):
        errors = [o for o in got.outputs if o.output_type == "error"]
        seen = _statuses(got)
        assert not errors, (name, index, errors[0].ename, errors[0].evalue)
        if (name, index) in NOT_FOUND_CELLS:
            assert len(seen) == len(expected), (name, index, seen, expected)
            for local, here in zip(expected, seen):
                assert here == local or (here == "403" and local in ("400", "404")), \
                    (name, index, seen, expected)
            differences += [(name, index, "403")] if seen != expected else []
            continue
        assert seen == expected, (name, index, seen, expected)
    assert {d[:2] for d in differences} == NOT_FOUND_CELLS, differences  # each shows the 403
    # The pre-check with a mistyped password: named as refused, the password never printed.
    wrong = subprocess.run([sys.executable, "-m", "helpers", "doctor", "--room"], cwd=ROOT,
                           env={**os.environ, "MLFLOW_TRACKING_USERNAME": "ana",
                                "MLFLOW_TRACKING_PASSWORD": "mistyped-password-1"},
                           capture_output=True, text=True, timeout=120)
    assert wrong.returncode == 1
    assert wrong.stdout.splitlines()[1].startswith(
        "✗ login: the room refuses the name and password for 'ana' (from "
        "MLFLOW_TRACKING_USERNAME/PASSWORD)")
    assert "mistyped-password-1" not in wrong.stdout + wrong.stderr


def classroom_line(room: Room) -> str:
    """The learner line the room printed, as printed (POSIX form)."""
    return next(line.strip() for line in room.out if "-m helpers join" in line
                and not line.strip().startswith("Windows"))
