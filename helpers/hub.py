"""A workshop room with nothing to install: JupyterHub on one machine, beside the room's MLflow server.

`python -m helpers hub --roster FILE` starts, in this terminal, until Ctrl-C (or SIGTERM/SIGHUP):

1. the classroom MLflow server (helpers/classroom.py) with MLflow's basic-auth app, one MLflow account
   per roster name, bound to 127.0.0.1 only: every learner's kernel runs on this machine, so the
   tracking server never needs to be reachable from the room's network;
2. one system user per roster name (`useradd`, marked by its GECOS comment so the kit never takes
   over an account it did not make), whose login password is the learner's MLflow password, with
   their own copy of the lessons in `~/mlflow-400-lab/notebooks` and a `~/.netrc` (mode 0600) so that
   the article's plain `requests` calls carry the learner's account too;
3. JupyterHub (classroom/jupyterhub_config.py) with PAM and LocalProcessSpawner behind
   configurable-http-proxy (classroom/package.json, installed into classroom/node_modules).

Why PAM + LocalProcessSpawner: on one machine, Unix users are the isolation the operating system
already enforces (files, processes, kernels), PAM is the Hub's own default authenticator, and the
learner logs in with the one password the instructor hands out, the same as their MLflow account's.
Passwords live in `<data dir>/classroom/credentials.csv` (0600); they reach `chpasswd` on its
standard input and the learner's server in its environment, never a command line.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from helpers import config, processes, redact
from helpers.errors import ClassroomError

ROOT = Path(__file__).resolve().parents[1]
CLASSROOM = ROOT / "classroom"
HUB_CONFIG = CLASSROOM / "jupyterhub_config.py"
PROXY = CLASSROOM / "node_modules" / ".bin" / "configurable-http-proxy"
SETTINGS_ENV = "MLFLOW_400_LAB_HUB_SETTINGS"  # read by classroom/jupyterhub_config.py
DEFAULT_PORT = 8000  # JupyterHub's own default
#: The GECOS comment of every system user the hub command makes: it only ever reuses those.
MARK = "mlflow-400-lab learner"
LESSONS = "mlflow-400-lab"  # the folder in each learner's home holding their copy of notebooks/
FIRST_NOTEBOOK = "notebooks/00_start_here.ipynb"


@dataclass
class Learner:
    """One roster name as the machine knows it."""

    name: str
    uid: int
    gid: int
    home: Path


def check_machine() -> None:
    """Refuse, in one sentence, a machine where the room cannot run: not Linux, not root, no
    JupyterHub, no proxy (and no npm to install it), or a kit folder other users cannot read."""
    if not sys.platform.startswith("linux"):
        raise ClassroomError("The JupyterHub room runs on Linux (one system user per learner); "
                             "on this machine, use classroom mode with laptops instead.")
    if os.geteuid() != 0:
        raise ClassroomError("The JupyterHub room creates one system user per learner and starts "
                             "their servers as those users: run it as root (sudo).")
    try:
        import jupyterhub  # noqa: F401
    except ImportError:
        raise ClassroomError('JupyterHub is not installed: run `pip install -e ".[hub]"` in the '
                             "kit's folder, then try again.") from None
    for tool in ("useradd", "chpasswd"):
        if shutil.which(tool) is None:
            raise ClassroomError(f"`{tool}` is missing (Debian: apt-get install passwd).")
    blocked = unreadable_by_others([Path(sys.executable), ROOT / "helpers" / "__init__.py"])
    if blocked:
        raise ClassroomError(f"Learners' servers run as their own users and cannot reach {blocked}: "
                             "put the kit (and its .venv) in a folder everyone may read, e.g. "
                             f"/opt/mlflow-400-lab, or `chmod o+rx {blocked}`.")


def ensure_proxy(say: Callable[[str], None]) -> Path:
    """configurable-http-proxy from classroom/package-lock.json, installed into the project's
    classroom/node_modules (never globally) on first use."""
    if PROXY.exists():
        return PROXY
    npm = shutil.which("npm")
    if npm is None:
        raise ClassroomError("JupyterHub's proxy (configurable-http-proxy, from npm) is not "
                             "installed and npm is missing: install Node.js 20+ with npm "
                             "(Debian: apt-get install nodejs npm), then try again.")
    say("Installing configurable-http-proxy into classroom/node_modules (first run only) ...")
    done = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--prefix", str(CLASSROOM)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0 or not PROXY.exists():
        raise ClassroomError("`npm ci --prefix classroom` failed: "
                             f"{(done.stderr.strip().splitlines() or ['no message'])[-1]}")
    return PROXY


def unreadable_by_others(paths: Sequence[Path]) -> Path | None:
    """The first folder (or file) on the way to `paths` that other users may not enter or read."""
    # Both the path as given and where its links lead: a venv's python is a link to the base
    # interpreter (e.g. under a private /root/.pyenv), and a learner's server must run that too.
    for path in [p for given in paths for p in (given.absolute(), given.resolve())]:
        for part in [*reversed(path.parents), path]:
            mode = part.stat().st_mode
            # a folder on the way needs only "enter" (o+x); the target itself must be readable
            need = 0o001 if part != path else (0o005 if part.is_dir() else 0o004)
            if mode & need != need:
                return part
    return None


# -- learners on this machine -----------------------------------------------------------------


def ensure_learner(name: str, password: str) -> Learner:
    """The learner's system user (made if missing), its password set through `chpasswd`'s
    standard input, their own copy of the lessons, and `~/.netrc` for the room's MLflow."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        made = subprocess.run(["useradd", "--create-home", "--user-group", "--shell", "/bin/bash",
                               "--comment", MARK, name], capture_output=True, text=True)
        if made.returncode != 0:
            raise ClassroomError(f"Could not create the system user '{name}': "
                                 f"{made.stderr.strip() or made.returncode}") from None
        entry = pwd.getpwnam(name)
    if entry.pw_gecos.split(",")[0] != MARK:
        raise ClassroomError(f"'{name}' is already a user of this machine that the kit did not "
                             "make: rename that learner in the roster (e.g. add a suffix).")
    done = subprocess.run(["chpasswd"], input=f"{name}:{password}\n", text=True, capture_output=True)
    if done.returncode != 0:
        raise ClassroomError(f"Could not set the password of '{name}': "
                             f"{done.stderr.strip() or done.returncode}")
    learner = Learner(name, entry.pw_uid, entry.pw_gid, Path(entry.pw_dir))
    os.chmod(learner.home, 0o700)  # Debian's useradd makes homes everyone may read
    copy_lessons(learner)
    return learner


def copy_lessons(learner: Learner) -> Path:
    """`~/mlflow-400-lab/notebooks`, copied from the kit once: a restart keeps the learner's edits."""
    target = learner.home / LESSONS / "notebooks"
    if (learner.home / LESSONS).is_symlink() or target.is_symlink():  # root must not follow it
        raise ClassroomError(f"{learner.home / LESSONS} is a link: remove it, then start the room again.")
    if not target.exists():
        shutil.copytree(ROOT / "notebooks", target,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        for folder, _, files in os.walk(learner.home / LESSONS):
            os.chown(folder, learner.uid, learner.gid, follow_symlinks=False)
            for file in files:
                os.chown(os.path.join(folder, file), learner.uid, learner.gid, follow_symlinks=False)
    return target


def write_netrc(learner: Learner, host: str, password: str) -> Path:
    """`~/.netrc` (0600, the learner's): `requests` sends these credentials to `host` only, so the
    article's own calls (no auth argument) reach the room's server as this learner."""
    path = learner.home / ".netrc"
    # Root writes in a folder the learner owns: a new file renamed over whatever is there (a link
    # to /etc/shadow included), then chowned without following links.
    # the one-line form `python -m helpers join`/`leave` write and recognise (helpers/room.py)
    config.write_private(path, f"machine {host} login {learner.name} password {password}\n")
    os.chown(path, learner.uid, learner.gid, follow_symlinks=False)
    return path


def learner_processes(uids: Sequence[int]) -> list[psutil.Process]:
    """Every live process of the learners' users (their servers, kernels, terminals)."""
    found = []
    for proc in psutil.process_iter(["uids", "status"]):
        uids_of = proc.info["uids"]
        if uids_of and uids_of.real in uids and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(proc)
    return found


# -- the Hub --------------------------------------------------------------------------------


@dataclass
class Hub:
    """The running Hub: its process, public URL and the settings file it was started with."""

    proc: subprocess.Popen
    url: str
    home: Path
    log_path: Path


def hub_settings(*, host: str, port: int, users: Sequence[str], mlflow_url: str,
                 credentials: Path, home: Path, proxy: Path) -> dict:
    """What classroom/jupyterhub_config.py reads (no secret in it: passwords stay in `credentials`)."""
    return {
        "host": host, "port": port, "hub_port": processes.free_port(),
        "proxy_api_port": processes.free_port(), "users": list(users), "mlflow_url": mlflow_url,
        "credentials": str(credentials), "home": str(home), "proxy": str(proxy),
        "singleuser": [sys.executable, "-m", "jupyterhub.singleuser"],
        "notebook_dir": f"~/{LESSONS}", "default_url": f"/lab/tree/{FIRST_NOTEBOOK}",
        "lab_settings": str(ROOT / "tools" / "jupyterlab-settings"),
    }


def start_hub(settings: dict, say: Callable[[str], None], timeout: float = 120.0) -> Hub:
    """Start JupyterHub with the kit's config and wait until its REST API answers."""
    import requests

    home = Path(settings["home"])
    path = home / "settings.json"
    path.write_text(json.dumps(settings, indent=1))
    host = "127.0.0.1" if settings["host"] in ("0.0.0.0", "") else settings["host"]
    url = f"http://{host}:{settings['port']}"
    if processes.port_in_use(settings["port"], host):
        raise ClassroomError(f"Port {settings['port']} is already in use: choose another with --port.")
    log_path = home / "jupyterhub.log"
    env = {**os.environ, SETTINGS_ENV: str(path)}
    say(f"Starting JupyterHub (log: {log_path}) ...")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "jupyterhub", "-f", str(HUB_CONFIG)],
                                cwd=home, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, **processes.new_group_kwargs())
    deadline = time.monotonic() + timeout
    try:  # in its own session, Ctrl-C does not reach it: whatever stops the wait stops the Hub
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
                raise ClassroomError(f"JupyterHub exited on start (code {proc.returncode}); its log "
                                     f"{log_path} ends: " + redact.mask_text(" | ".join(tail)))
            try:
                if requests.get(f"{url}/hub/api/", timeout=2).status_code == 200:
                    return Hub(proc=proc, url=url, home=home, log_path=log_path)
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise ClassroomError(f"JupyterHub did not answer within {timeout:.0f} s; see {log_path}.")
    except BaseException:
        processes.kill_tree(proc.pid)
        proc.wait(timeout=5)
        raise


def stop_hub(hub: Hub, uids: Sequence[int], grace: float = 20.0) -> None:
    """JupyterHub's own shutdown first (SIGTERM: it stops every learner's server and its proxy),
    then whatever is left: the Hub's tree as it was, and any process of a learner's user."""
    try:
        tree = [psutil.Process(hub.proc.pid), *psutil.Process(hub.proc.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        tree = []
    if hub.proc.poll() is None:
        hub.proc.terminate()
        try:
            hub.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            processes.kill_tree(hub.proc.pid)
            hub.proc.wait(timeout=10)
    left = [p for p in tree[1:] if p.is_running()] + learner_processes(uids)
    for proc in left:
        processes.kill_tree(proc.pid, grace=3)


# -- the command ----------------------------------------------------------------------------


def serve(roster: Sequence[str], *, backend_store_uri: str = "", host: str = "127.0.0.1",
          port: int = DEFAULT_PORT, workers: int | None = None,
          out: Callable[[str], None] | None = None) -> int:
    """Run the room until Ctrl-C, SIGTERM or SIGHUP; stop the Hub, every learner's server and
    the MLflow server, leaving no process. Returns the exit code."""
    from helpers import classroom

    say = out or (lambda line: print(line, flush=True))
    started = time.monotonic()
    check_machine()
    proxy = ensure_proxy(say)
    if processes.port_in_use(port, processes.LOCALHOST if host in ("0.0.0.0", "") else host):
        raise ClassroomError(f"Port {port} is already in use: stop what uses it, or choose "
                             "another with --port.")
    home = config.data_dir() / "hub"
    home.mkdir(parents=True, exist_ok=True)
    os.chmod(home, 0o700)  # the Hub's database and cookie secret
    uri = backend_store_uri or f"sqlite:///{(home / 'mlflow.db').as_posix()}"
    room = classroom.build(backend_store_uri=uri, host=processes.LOCALHOST,
                           port=processes.free_port(), basic_auth=True, workers=workers,
                           roster=roster)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for name in ("SIGTERM", "SIGHUP"):
        signal.signal(getattr(signal, name), _interrupt)
    mlflow = hub = None
    uids: list[int] = []
    code = 0
    try:
        mlflow = classroom.start(room, progress=say)
        passwords = classroom.read_credentials(room.credentials)
        for name in roster:
            learner = ensure_learner(name, passwords[name])
            write_netrc(learner, processes.LOCALHOST, passwords[name])
            uids.append(learner.uid)
        settings = hub_settings(host=host, port=port, users=roster, mlflow_url=room.url,
                                credentials=room.credentials, home=home, proxy=proxy)
        hub = start_hub(settings, say)
        say(f"The room is ready in {time.monotonic() - started:.1f} s: learners open {hub.url}/ and "
            f"log in with their name and their password from {room.credentials} (readable by you "
            "only; hand each learner their own line). Each finds notebooks/00_start_here.ipynb "
            f"open, in their own copy of the lessons, with MLflow at {room.url} as themselves.")
        say(f"{len(roster)} learners; MLflow {mlflow.mlflow_version or '?'} on {redact.mask_password(uri)}, "
            "loopback only. Press Ctrl-C to stop the room.")
        while hub.proc.poll() is None and mlflow._proc.poll() is None:
            time.sleep(0.5)
        which = "JupyterHub" if hub.proc.poll() is not None else "The MLflow server"
        say(f"{which} exited on its own; stopping the room (logs: {home}).")
        code = 1
    except KeyboardInterrupt:
        pass
    finally:
        for name in ("SIGINT", "SIGTERM", "SIGHUP"):  # a second Ctrl-C must not cut this short
            signal.signal(getattr(signal, name), signal.SIG_IGN)
        # Both at once: each waits for its processes' own shutdown (the Hub ~6 s, MLflow ~5 s).
        stopping = threading.Thread(target=mlflow.stop) if mlflow is not None else None
        if stopping is not None:
            stopping.start()
        if hub is not None:
            stop_hub(hub, uids)
        if stopping is not None:
            stopping.join()
    say("Room stopped: JupyterHub, every learner's server and the MLflow server.")
    return code


def write_room_credentials(roster: Sequence[str]) -> str:
    """The room's credentials file (0600) for a room run elsewhere (classroom/z2jh-values.yaml):
    the admin's and one password per learner, kept from an earlier file; says where it is."""
    import secrets

    from helpers import classroom

    home = config.data_dir() / "classroom"
    home.mkdir(parents=True, exist_ok=True)
    path = home / classroom.CREDENTIALS
    admin = classroom.read_credentials(path).get("admin") or secrets.token_urlsafe(18)
    classroom.write_credentials(path, roster, admin=("admin", admin))
    return (f"Wrote {path} (readable by you only): the admin and {len(roster)} learners. Make it "
            "the Secret mlflow-400-lab-credentials (docs/instructor.md).")


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt
