"""The JupyterHub room, live: `python -m helpers hub --roster FILE` with three learners.

One room for the whole file (its start is the expensive part). Each learner logs in through the Hub
(PAM, their password from the room's credentials file), gets an API token made by the test through
the Hub's REST API, starts their server, and runs notebook 01's cells in a kernel of their own
through the Jupyter server's REST API and websocket kernel channel. The answers are compared with
the committed outputs of notebook 01 (produced against a live server, re-checked by nbval). One
learner's session is then driven in Chromium; the last test presses Ctrl-C and counts processes.

Needs root (system users), JupyterHub (the hub extra), configurable-http-proxy in
classroom/node_modules (`npm ci --prefix classroom`, run by .ci/run) and Chromium: outside CI a
missing one skips; in CI (CI set) it fails. The test's users are removed afterwards.
"""

from __future__ import annotations

import configparser
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest
import requests

from helpers import classroom, hub, processes
from helpers.errors import ClassroomError
from tests.conftest import FIGURES
from tests.rooms import ROOT
from tests.test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS

NOTEBOOK_01 = "notebooks/01_missing_content_type.ipynb"
API = "/api/2.0/mlflow"
START_TIMEOUT = 240


def _require(condition: bool, why: str) -> None:
    if condition:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{why}: CI must run the JupyterHub room test (.ci/run installs it).")
    pytest.skip(why)


@dataclass
class Room:
    proc: subprocess.Popen
    url: str
    names: list[str]
    passwords: dict[str, str]
    home: Path
    out: list[str]
    started: float
    seconds_to_ready: float
    timings: dict[str, float] = field(default_factory=dict)
    run_ids: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="module")
def room(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Room]:
    """The room, started as an instructor starts it; its users deleted afterwards."""
    _require(sys.platform.startswith("linux") and os.geteuid() == 0,
             "the JupyterHub room needs Linux and root (it makes one system user per learner)")
    _require(shutil.which("useradd") is not None, "useradd is missing")
    _require(hub.PROXY.exists(), "configurable-http-proxy is not installed (npm ci --prefix classroom)")
    try:
        import jupyterhub  # noqa: F401
        import websocket  # noqa: F401
    except ImportError as exc:
        _require(False, f"{exc.name} is not installed (pip install -e '.[test]')")
    blocked = hub.unreadable_by_others([Path(sys.executable), ROOT / "helpers" / "__init__.py"])
    _require(blocked is None, f"learners' users cannot read {blocked}")
    home = tmp_path_factory.mktemp("hub")
    tag = secrets.token_hex(2)
    names = [f"{first}-{tag}" for first in ("ana", "ben", "cleo")]
    roster = home / "roster.txt"
    roster.write_text("# the class\n" + "\n".join(names) + "\n")
    port = processes.free_port()
    env = {**os.environ, "MLFLOW_400_LAB_HOME": str(home / "data"),
           "PYTHONPATH": str(ROOT)}  # learners' kernels import this checkout's helpers
    for name in ("MLFLOW_TRACKING_URI", classroom.ADMIN_PASSWORD_ENV, classroom.AUTH_CONFIG_ENV):
        env.pop(name, None)
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "helpers", "hub", "--roster", str(roster),
                             "--port", str(port), "--workers", "1"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.DEVNULL)
    out: list[str] = []
    try:
        ready = _read_until(proc, out, "Press Ctrl-C")
        assert ready, f"the room did not start: {out[-15:]}"
        passwords = classroom.read_credentials(home / "data" / "classroom" / "credentials.csv")
        yield Room(proc=proc, url=f"http://127.0.0.1:{port}", names=names, passwords=passwords,
                   home=home, out=out, started=started, seconds_to_ready=time.monotonic() - started)
    finally:
        if proc.poll() is None:
            processes.kill_tree(proc.pid)
        uids = [pwd.getpwnam(n).pw_uid for n in names if _exists(n)]
        for left in hub.learner_processes(uids):
            processes.kill_tree(left.pid, grace=2)
        for name in names:
            subprocess.run(["userdel", "--remove", name], capture_output=True)


def _exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _read_until(proc: subprocess.Popen, out: list[str], marker: str) -> bool:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            return False
        out.append(line.rstrip("\n"))
        if marker in line:
            return True
    return False


def test_the_kit_never_takes_over_a_user_it_did_not_make() -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("system users: Linux only")
    with pytest.raises(ClassroomError, match="already a user of this machine that the kit did not make"):
        hub.ensure_learner("root", "not-used-password")  # refused before any password is set


def test_a_link_a_learner_plants_is_replaced_never_followed(tmp_path: Path) -> None:
    """The hub runs as root in folders learners own: a `~/.netrc` link to another file gets a new
    file in its place (the target untouched), and a linked lessons folder is refused."""
    victim = tmp_path / "victim"
    victim.write_text("root:secret\n")
    home = tmp_path / "home"
    home.mkdir()
    (home / ".netrc").symlink_to(victim)
    me = hub.Learner("ana", os.getuid(), os.getgid(), home)
    written = hub.write_netrc(me, "127.0.0.1", "Pw-123456789")
    assert victim.read_text() == "root:secret\n"
    assert not written.is_symlink() and written.stat().st_mode & 0o777 == 0o600
    assert "password Pw-123456789" in written.read_text()
    from helpers import room  # the learner's own `leave` finds and removes the hub's entry

    assert room.remove_netrc_entry(written, "127.0.0.1") and "Pw-123456789" not in written.read_text()
    (home / hub.LESSONS).symlink_to(tmp_path)
    with pytest.raises(ClassroomError, match="is a link"):
        hub.copy_lessons(me)


def test_a_private_folder_is_named_before_learners_fail_on_it() -> None:
    base = Path(tempfile.mkdtemp())  # not tmp_path: pytest's own folder is private (0700)
    base.chmod(0o755)
    private = base / "private"
    (private / "kit").mkdir(parents=True)
    (private / "kit" / "python").write_text("")
    private.chmod(0o700)
    assert hub.unreadable_by_others([private / "kit" / "python"]) == private
    private.chmod(0o711)  # enter, not list: enough for a folder on the way
    assert hub.unreadable_by_others([private / "kit" / "python"]) is None
    (private / "kit" / "python").chmod(0o600)  # the target itself must be readable
    assert hub.unreadable_by_others([private / "kit" / "python"]) == private / "kit" / "python"
    shutil.rmtree(base)


# -- a learner, through the Hub's and the Jupyter server's REST APIs -------------------------


class Learner:
    """A learner's browser-less session: log in (PAM), a token made through the Hub's API, their
    server, a kernel for notebook 01 and its websocket channel."""

    def __init__(self, room: Room, name: str) -> None:
        self.room, self.name = room, name
        login = requests.Session()
        login.get(f"{room.url}/hub/login", timeout=30)
        done = login.post(f"{room.url}/hub/login", allow_redirects=False, timeout=60,
                          data={"username": name, "password": room.passwords[name],
                                "_xsrf": login.cookies.get("_xsrf")})
        assert done.status_code == 302, f"{name} could not log in: {done.status_code}"
        made = login.post(f"{room.url}/hub/api/users/{name}/tokens", timeout=30,
                          json={"note": "tests/test_hub.py", "expires_in": 900},
                          headers={"X-XSRFToken": login.cookies.get("_xsrf", path="/hub/")})
        assert made.status_code == 201, made.text
        self.headers = {"Authorization": f"token {made.json()['token']}"}

    def start_server(self) -> str:
        answer = requests.post(f"{self.room.url}/hub/api/users/{self.name}/server",
                               headers=self.headers, timeout=START_TIMEOUT)
        # 400 "already running/pending": the same learner's browser login spawned it first
        assert answer.status_code in (201, 202) or (answer.status_code == 400 and "already"
                                                     in answer.text), answer.text
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            user = requests.get(f"{self.room.url}/hub/api/users/{self.name}",
                                headers=self.headers, timeout=30).json()
            server = user["servers"].get("")
            if server and server.get("ready"):
                self.api = f"{self.room.url}{server['url']}api"
                return self.api
            time.sleep(0.3)
        raise AssertionError(f"{self.name}'s server did not start")

    def notebook(self, path: str) -> dict:
        answer = requests.get(f"{self.api}/contents/{path}", headers=self.headers, timeout=30)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def open_kernel(self, path: str) -> None:
        import websocket

        made = requests.post(f"{self.api}/sessions", headers=self.headers, timeout=60,
                             json={"path": path, "type": "notebook", "kernel": {"name": "python3"}})
        assert made.status_code == 201, made.text
        kernel = made.json()["kernel"]["id"]
        url = self.api.replace("http://", "ws://") + f"/kernels/{kernel}/channels"
        self.ws = websocket.create_connection(
            url, timeout=120, header=[f"{k}: {v}" for k, v in self.headers.items()])
        self.session = uuid.uuid4().hex

    def run(self, code: str) -> tuple[str, list[str]]:
        """Execute `code` in the kernel; (text of its stream and result outputs, errors)."""
        msg_id = uuid.uuid4().hex
        self.ws.send(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": self.name,
                       "session": self.session, "version": "5.3", "date": ""},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": True,
                        "user_expressions": {}, "allow_stdin": False, "stop_on_error": True}}))
        text, errors = [], []
        while True:
            message = json.loads(self.ws.recv())
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = message["msg_type"], message["content"]
            if kind == "stream":
                text.append(content["text"])
            elif kind in ("execute_result", "display_data"):
                text.append(content["data"].get("text/plain", ""))
            elif kind == "error":
                errors.append(f"{content['ename']}: {content['evalue']}")
            elif kind == "status" and content["execution_state"] == "idle":
                return "".join(text), errors


def _sanitize(text: str) -> str:
    """notebooks/sanitize.cfg applied, as nbval applies it to committed and live outputs."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ROOT / "notebooks" / "sanitize.cfg")
    for section in parser.sections():
        text = re.sub(parser[section]["regex"], parser[section]["replace"], text)
    return text


def _committed_outputs(notebook: dict) -> list[str]:
    def text(out: dict) -> str:
        value = out.get("text", "")
        return "".join(value) if isinstance(value, list) else value

    return ["".join(text(out) for out in cell.get("outputs", []))
            for cell in notebook["cells"] if cell["cell_type"] == "code"]


def test_three_learners_run_notebook_01_in_their_own_kernels(room: Room, browser) -> None:
    committed = json.loads((ROOT / NOTEBOOK_01).read_text())
    learners: dict[str, Learner] = {}
    outputs: dict[str, list[tuple[str, list[str]]]] = {}
    failures: list[BaseException] = []

    def session(name: str) -> None:
        try:
            learner = Learner(room, name)
            learner.start_server()
            copy = learner.notebook(NOTEBOOK_01)["content"]  # the learner's own copy
            learner.open_kernel(NOTEBOOK_01)
            outputs[name] = [learner.run("".join(cell["source"])) for cell in copy["cells"]
                             if cell["cell_type"] == "code"]
            room.run_ids[name] = learner.run("print(run_id)")[0].strip()
            learners[name] = learner
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)

    begun = time.monotonic()
    threads = [threading.Thread(target=session, args=(name,)) for name in room.names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    room.timings["three learners: log in, start server, run notebook 01"] = time.monotonic() - begun
    if failures:
        raise failures[0]
    expected = _committed_outputs(committed)
    for name in room.names:
        got = outputs[name]
        assert [errors for _, errors in got] == [[]] * len(got), f"{name}: {got}"
        # The article's requests and the lesson's, answered live through the learner's account:
        # the same answers the committed notebook shows (nbval re-checks those against a server).
        for (text, _), want in zip(got, expected):
            if want:
                assert _sanitize(text) == _sanitize(want), name
        assert "Status code: 400" in got[1][0] and "Content-Type header is missing" in got[1][0]
        assert re.fullmatch(r"[0-9a-f]{32}", room.run_ids[name])

    ana, ben = room.names[0], room.names[1]
    admin = ("admin", room.passwords["admin"])
    mlflow_url = re.search(r"with MLflow at (http://127\.0\.0\.1:\d+)", "\n".join(room.out)).group(1)
    for name in room.names:
        # each learner's run is theirs: it is in an experiment named for them, which MLflow's auth
        # app lets only its creator manage (the others have the room's default READ)
        run = requests.get(f"{mlflow_url}{API}/runs/get", params={"run_id": room.run_ids[name]},
                           auth=admin, timeout=30).json()["run"]
        experiment = requests.get(f"{mlflow_url}{API}/experiments/get", auth=admin, timeout=30,
                                  params={"experiment_id": run["info"]["experiment_id"]}).json()
        assert experiment["experiment"]["name"].startswith(f"400lab/{name}/01-content-type-")
        for other in room.names:
            perm = requests.get(f"{mlflow_url}/api/3.0/mlflow/users/permissions/get", auth=admin,
                                timeout=30, params={"username": other, "resource_type": "experiment",
                                                    "resource_id": run["info"]["experiment_id"]})
            assert perm.json()["permission"] == ("MANAGE" if other == name else "READ"), perm.text
    # learner B, from their own kernel (their account, as the article's plain requests send it),
    # cannot write to learner A's run
    text, errors = learners[ben].run(
        "answer = requests.post(f'{server.url}/api/2.0/mlflow/runs/log-metric', json={'run_id': "
        f"'{room.run_ids[ana]}', 'key': 'intruder', 'value': 1.0, 'timestamp': 1}})\n"
        "print(answer.status_code, answer.text)")
    assert (text.strip(), errors) == ("403 Permission denied", [])
    metrics = requests.get(f"{mlflow_url}{API}/runs/get", params={"run_id": room.run_ids[ana]},
                           auth=admin, timeout=30).json()["run"]["data"].get("metrics", [])
    assert "intruder" not in {m["key"] for m in metrics}
    # nobody typed a password: it reached each kernel in its environment, never a command line
    commandlines = " ".join(" ".join(p.info["cmdline"] or []) for p in psutil.process_iter(["cmdline"]))
    assert not [n for n in room.names if room.passwords[n] in commandlines]
    for learner in learners.values():
        learner.ws.close()


def _browser_session(room: Room, name: str, result: dict) -> None:
    """Log in as `name` in Chromium, see notebook 00 open, run its first code cell."""
    from playwright.sync_api import expect, sync_playwright

    begun = time.monotonic()
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "hub_notebook_00.png"
    result["screenshot"] = shot
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        try:
            page.goto(f"{room.url}/hub/login")
            page.fill("#username_input", name)
            page.fill("#password_input", room.passwords[name])
            page.click("#login_submit")
            page.wait_for_url(re.compile(rf"/user/{name}/lab/tree/notebooks/00_start_here\.ipynb"),
                              timeout=START_TIMEOUT * 1000)
            tab = page.locator(".lm-TabBar-tab.jp-mod-current")
            expect(tab).to_contain_text("00_start_here.ipynb", timeout=60_000)
            # as tests/test_browser.py: idle alone is not enough, the kernel must be attached
            kernel = page.locator(".jp-NotebookPanel .jp-Toolbar-kernelName")
            expect(kernel).not_to_have_text(re.compile(r"^\s*(No Kernel)?\s*$"), timeout=120_000)
            expect(page.locator(".jp-Notebook-ExecutionIndicator")).to_have_attribute(
                "data-status", "idle", timeout=120_000)
            # the committed outputs first out of the way, so that what shows is this run's
            page.get_by_role("menuitem", name="Edit").click()
            page.get_by_role("menuitem", name="Clear Outputs of All Cells").click()
            first = page.locator(".jp-Notebook .jp-CodeCell").first
            prompt = first.locator(".jp-InputArea-prompt")
            expect(prompt).to_have_text("[ ]:")
            for attempt in (1, 2):  # a cell run while a busy machine still wires the kernel up
                prompt.click()      # can come back unrun ("[ ]:"): a learner presses Run again
                page.get_by_role("menuitem", name="Run", exact=True).click()
                page.get_by_role("menuitem", name="Run Selected Cell").first.click()
                try:
                    expect(prompt).to_have_text(re.compile(r"\[[*1]\]:"), timeout=30_000)
                    break
                except AssertionError:
                    if attempt == 2:
                        raise
            result["attempts"] = attempt
            expect(prompt).to_have_text("[1]:", timeout=120_000)
            result["text"] = "\n".join(first.locator(".jp-OutputArea-output").all_inner_texts())
        finally:
            page.screenshot(path=str(shot))
            browser.close()
    room.timings["browser: log in, notebook 00, first cell"] = time.monotonic() - begun


@pytest.fixture(scope="module")
def browser(room: Room) -> Iterator[tuple[threading.Thread, dict]]:
    """One learner's Chromium session, started at once in a thread: it runs while the other
    learners' API sessions run (the room's start-ups overlap instead of adding up)."""
    result: dict = {}
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        result["missing"] = "the playwright package is not installed (pip install -e '.[test]')"
    if not CHROMIUM.exists():
        result["missing"] = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    if "missing" in result:  # the API test still runs; the browser test says why it cannot
        yield None, result
        return

    def session() -> None:
        try:
            _browser_session(room, room.names[2], result)
        except BaseException as exc:  # reported by the test
            result["error"] = exc

    thread = threading.Thread(target=session)
    thread.start()
    yield thread, result
    thread.join()


def test_a_learner_logs_in_with_chromium_and_runs_notebook_00(room: Room, browser) -> None:
    thread, result = browser
    _require("missing" not in result, result.get("missing", ""))
    thread.join(timeout=START_TIMEOUT * 2)
    assert not thread.is_alive(), "the browser session did not finish"
    if "error" in result:
        raise result["error"]
    text, name = result["text"], room.names[2]
    if result.get("attempts", 1) > 1:
        FIGURES.append("JupyterHub room: the browser's first Run came back unrun; the second ran")
    # the doctor's checks passed in the learner's kernel, against the room's server, as them
    assert re.fullmatch(r"✓ all \d+ checks passed: .*\bserver\b.*\s*", text), text
    admin = ("admin", room.passwords["admin"])
    mlflow_url = re.search(r"with MLflow at (http://127\.0\.0\.1:\d+)", "\n".join(room.out)).group(1)
    found = requests.post(f"{mlflow_url}{API}/experiments/search", auth=admin, timeout=30,
                          json={"max_results": 10, "filter": f"name LIKE '400lab/{name}/first-steps-%'"})
    assert len(found.json().get("experiments", [])) == 1, found.text


def test_ctrl_c_stops_the_hub_every_learner_server_and_mlflow(room: Room) -> None:
    users = [psutil.Process(room.proc.pid), *psutil.Process(room.proc.pid).children(recursive=True)]
    uids = [pwd.getpwnam(n).pw_uid for n in room.names]
    for name in room.names:  # one learner's lessons and ~/.netrc are theirs only
        home = Path(pwd.getpwnam(name).pw_dir)
        assert home.stat().st_mode & 0o777 == 0o700
        assert (home / ".netrc").stat().st_mode & 0o777 == 0o600
    assert len(hub.learner_processes(uids)) >= 3  # their servers and kernels run
    begun = time.monotonic()
    room.proc.send_signal(signal.SIGINT)
    assert room.proc.wait(timeout=90) == 0
    rest = room.proc.stdout.read().splitlines()
    room.timings["Ctrl-C to exit"] = time.monotonic() - begun
    assert rest[-1].startswith("Room stopped"), rest
    alive = [p for p in users[1:] if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not alive, [p.cmdline() for p in alive]
    assert hub.learner_processes(uids) == []
    total = time.monotonic() - room.started
    FIGURES.append(f"JupyterHub room (tests/test_hub.py): ready in {room.seconds_to_ready:.1f} s; "
                   + "; ".join(f"{k}: {v:.1f} s" for k, v in room.timings.items())
                   + f"; start to stop {total:.1f} s")
