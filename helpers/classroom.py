"""Classroom mode: one MLflow server for a whole room, on a real database, reachable from laptops.

The kit's own server binds 127.0.0.1 and uses SQLite, which is right for one learner. A room needs
one server bound where the instructor says (`--host`), backed by a database that takes forty
writers (PostgreSQL), with MLflow's `--allowed-hosts` covering the address learners type (a name
or public address outside MLflow's defaults is refused with 403 otherwise), optionally MLflow's
basic-auth app, and one line to tell learners. The server runs with the `mlflow server` CLI and
MLflow's own default number of workers; it runs in the instructor's terminal until Ctrl-C.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from helpers import config, server
from helpers.errors import KitError

DEFAULT_PORT = 5000
#: The one account learners share when basic auth is on (each learner's runs are still namespaced
#: by MLFLOW_400_LAB_LEARNER). Its password comes from this variable and is never printed.
CLASS_USER = "learner"
CLASS_PASSWORD_ENV = "MLFLOW_400_LAB_CLASS_PASSWORD"
# MLflow's own settings for its basic-auth app (mlflow/server/auth, MLflow 3.17.2).
ADMIN_USER_ENV = "MLFLOW_AUTH_ADMIN_USERNAME"
ADMIN_PASSWORD_ENV = "MLFLOW_AUTH_ADMIN_PASSWORD"
AUTH_CONFIG_ENV = "MLFLOW_AUTH_CONFIG_PATH"
SECRET_KEY_ENV = "MLFLOW_FLASK_SERVER_SECRET_KEY"
MIN_PASSWORD = 12  # mlflow/utils/validation.py::_validate_password
MASK = "****"


class ClassroomError(KitError):
    """Classroom mode cannot start as asked; the message says what to change."""


@dataclass
class Classroom:
    """What `build` decided: the command, its environment, and what learners are told."""

    cmd: list[str]
    env: dict[str, str]
    bind: str
    port: int
    url: str  # the address learners use
    backend_store_uri: str
    allowed_hosts: list[str]  # the whole list given to --allowed-hosts
    added_hosts: list[str]  # the part of it that is not MLflow's default
    basic_auth: bool
    workers: int | None
    home: Path
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """What runs, with any password in the database URI masked."""
        workers = f"{self.workers} workers" if self.workers else "MLflow's default number of workers"
        lines = [f"Classroom server for learners at {self.url} (bound to {self.bind}:{self.port}, "
                 f"{workers}, basic auth {'on' if self.basic_auth else 'off'}).",
                 f"Database: {mask_uri(self.backend_store_uri)}",
                 f"Allowed Host headers: MLflow's defaults (localhost, private networks) and "
                 f"{', '.join(self.added_hosts) or 'nothing else'}."]
        return "\n".join(self.notes + lines)


def build(
    *,
    backend_store_uri: str,
    host: str,
    port: int = DEFAULT_PORT,
    allowed_hosts: Sequence[str] = (),
    basic_auth: bool = False,
    workers: int | None = None,
    advertise: str | None = None,
) -> Classroom:
    """Decide the `mlflow server` command for a room; raise `ClassroomError` on bad settings.

    `host` is where the server binds (0.0.0.0 = every network of this machine); `advertise` is the
    address learners type (default: `host`, or this machine's first private IPv4 when binding
    0.0.0.0). `workers=None` keeps MLflow's default, which is what the load benchmark measured.
    """
    notes: list[str] = []
    uri = _driver_uri(backend_store_uri.strip(), notes)
    if not host:
        raise ClassroomError(_host_hint())
    address = advertise or (host if host not in ("0.0.0.0", "::") else _first_lan_ip())
    if address is None:
        raise ClassroomError("This machine has no network address other than loopback: connect it "
                             "to the room's network, or give --host 127.0.0.1 to rehearse alone.")
    home = config.data_dir() / "classroom"
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ClassroomError(f"Cannot create {home} ({exc.strerror}): set {config.HOME_ENV} to a "
                             "writable folder.") from None
    hosts, added = _allowed_hosts(address, port, allowed_hosts)
    extra = ["--allowed-hosts", ",".join(hosts),
             # The kit's local server keeps its artifacts in <data>/artifacts; a room's store has
             # its own experiment ids, so its artifacts go elsewhere (click keeps the last value).
             "--artifacts-destination", (home / "artifacts").as_posix()]
    if basic_auth:
        extra += ["--app-name", "basic-auth"]
    if workers is not None and workers < 1:
        raise ClassroomError("--workers must be 1 or more (or left out for MLflow's default).")
    # launch_command hands the database URI over in the environment, never on the command line.
    cmd, env = server.launch_command(port, host=host, launcher="cli", backend_store_uri=uri,
                                     workers=workers, extra_args=extra)
    if basic_auth:
        env.update(_auth_env(home))
    return Classroom(cmd=cmd, env=env, bind=host, port=port, url=f"http://{_url_host(address)}:{port}",
                     backend_store_uri=uri, allowed_hosts=hosts, added_hosts=added,
                     basic_auth=basic_auth,
                     workers=workers, home=home, notes=notes)


def learner_lines(room: Classroom) -> list[str]:
    """The line each learner runs (POSIX shells, then PowerShell); no password ever appears."""
    pairs = [("MLFLOW_TRACKING_URI", room.url), (config.LEARNER_ENV, "<your-name>")]
    if room.basic_auth:
        pairs += [("MLFLOW_TRACKING_USERNAME", CLASS_USER),
                  ("MLFLOW_TRACKING_PASSWORD", "<the class password>")]
    posix = "export " + " ".join(f"{k}={_sh(v)}" for k, v in pairs)
    powershell = "; ".join(f'$env:{k}="{v}"' for k, v in pairs)
    return [posix, powershell]


def start(room: Classroom, *, timeout: float = 120.0,
          progress: Callable[[str], None] | None = None) -> server.ServerHandle:
    """Start the room's server and wait until it answers; with basic auth, create the class account."""
    say = progress or (lambda message: print(message, file=sys.stderr, flush=True))
    probe = f"http://{_url_host(_loopback_for(room.bind))}:{room.port}"
    if server.port_in_use(room.port, _loopback_for(room.bind)):
        raise ClassroomError(f"Port {room.port} is already in use on this machine: stop what uses "
                             "it, or choose another with --port.")
    log_path = room.home / f"server-{room.port}.log"
    say(f"Starting the classroom server (log: {log_path}) ...")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(room.cmd, env=room.env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, **server.new_group_kwargs())
    try:
        server.wait_until_ready(proc, probe, time.monotonic() + timeout, log_path, say)
        if room.basic_auth:
            _ensure_class_user(probe)
    except BaseException:
        server.kill_tree(proc.pid)
        proc.wait(timeout=5)
        raise
    version = _server_version(probe, room)
    return server.ServerHandle(url=room.url, source="started", pid=proc.pid, mlflow_version=version,
                               log_path=log_path, _proc=proc)


def mask_uri(uri: str) -> str:
    """A database URI with its password replaced by ****, for anything that prints it."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = f"{parts.username or ''}:{MASK}@{parts.netloc.rsplit('@', 1)[1]}"
    return urlunsplit(parts._replace(netloc=netloc))


def lan_addresses() -> list[str]:
    """This machine's IPv4 addresses other than loopback, private ones first (read locally)."""
    import psutil

    found = [a.address for addrs in psutil.net_if_addrs().values() for a in addrs
             if a.family == socket.AF_INET and not a.address.startswith("127.")]
    return sorted(set(found), key=lambda ip: (not ipaddress.ip_address(ip).is_private, ip))


# -- decisions -------------------------------------------------------------------------------


def _driver_uri(uri: str, notes: list[str]) -> str:
    """Pick an installed PostgreSQL driver: SQLAlchemy 2.1 maps postgresql:// to psycopg 3."""
    if not uri:
        raise ClassroomError("Give the room's database with --backend-store-uri, e.g. "
                             "postgresql+psycopg2://mlflow@localhost/mlflow (see docs/instructor.md).")
    scheme, sep, rest = uri.partition("://")
    if scheme not in ("postgresql", "postgres"):
        return uri
    if find_spec("psycopg") is not None:
        return uri
    if find_spec("psycopg2") is not None:
        notes.append(f"Note: {scheme}:// means the psycopg (3) driver, which is not installed; "
                     "using postgresql+psycopg2:// (psycopg2 is).")
        return f"postgresql+psycopg2{sep}{rest}"
    raise ClassroomError("No PostgreSQL driver is installed: run `pip install psycopg2-binary` "
                         "in the kit's environment, then try again.")


def _allowed_hosts(address: str, port: int, extra: Sequence[str]) -> tuple[list[str], list[str]]:
    """MLflow's default allow-list plus the learners' address (with and without the port).

    `--allowed-hosts` replaces MLflow's defaults instead of adding to them, so the defaults
    (localhost and private networks) are repeated first. Returns (whole list, added part).
    """
    defaults = list(_mlflow_default_hosts())
    hosts = list(defaults)
    bare = _url_host(address)
    wanted = [bare, f"{bare}:{port}"]
    for item in extra:
        wanted += [h.strip() for h in item.split(",") if h.strip()]
    for host in wanted:
        if host not in hosts:
            hosts.append(host)
    return hosts, hosts[len(defaults):]


def _mlflow_default_hosts() -> tuple[str, ...]:
    # Imported here: mlflow is slow to import and only the instructor's process needs this.
    from mlflow.server.security_utils import get_default_allowed_hosts

    return tuple(get_default_allowed_hosts())


def _auth_env(home: Path) -> dict[str, str]:
    """The settings MLflow's basic-auth app refuses to start without (checked before starting)."""
    if find_spec("flask_wtf") is None:
        raise ClassroomError(
            "MLflow's basic-auth app needs Flask-WTF, which the kit's pins do not include: run "
            '`pip install "mlflow[auth]==' + config.PINNED_MLFLOW + '"` on this machine (only the '
            "instructor's), then try again.")
    if not os.environ.get(ADMIN_PASSWORD_ENV):
        raise ClassroomError(f"Basic auth needs an admin password: set {ADMIN_PASSWORD_ENV} "
                             f"(at least {MIN_PASSWORD} characters) in this terminal first.")
    for name in (ADMIN_PASSWORD_ENV, CLASS_PASSWORD_ENV):
        value = os.environ.get(name, "")
        if len(value) < MIN_PASSWORD:
            raise ClassroomError(f"Set {name} to a password of at least {MIN_PASSWORD} characters "
                                 "(MLflow refuses shorter ones), then try again.")
    env = {}
    if not os.environ.get(AUTH_CONFIG_ENV):
        ini = home / "basic_auth.ini"
        ini.write_text(
            "[mlflow]\n"
            "# Written by `python -m helpers serve --classroom --basic-auth`.\n"
            "default_permission = READ\n"
            f"database_uri = sqlite:///{(home / 'basic_auth.db').as_posix()}\n"
            f"admin_username = {os.environ.get(ADMIN_USER_ENV) or 'admin'}\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n")
        env[AUTH_CONFIG_ENV] = str(ini)
    if not os.environ.get(SECRET_KEY_ENV):
        # Only needs to be the same in every worker of this one server: a fresh one per start.
        env[SECRET_KEY_ENV] = secrets.token_hex(32)
    return env


def _ensure_class_user(base: str) -> None:
    """Create (or re-password) the shared learner account with the admin's credentials."""
    import requests

    admin = (os.environ.get(ADMIN_USER_ENV) or "admin", os.environ[ADMIN_PASSWORD_ENV])
    password = os.environ[CLASS_PASSWORD_ENV]
    api = f"{base}/api/2.0/mlflow/users"
    made = requests.post(f"{api}/create", json={"username": CLASS_USER, "password": password},
                         auth=admin, timeout=30)
    if made.status_code == 400 and "RESOURCE_ALREADY_EXISTS" in made.text:
        made = requests.patch(f"{api}/update-password",
                              json={"username": CLASS_USER, "password": password},
                              auth=admin, timeout=30)
    if made.status_code != 200:
        raise ClassroomError(f"Could not create the class account '{CLASS_USER}': the server "
                             f"answered {made.status_code}. If the admin password changed since "
                             "the first start, use the first one (MLflow keeps it).")


def _server_version(base: str, room: Classroom) -> str | None:
    import requests

    auth = None
    if room.basic_auth:
        auth = (CLASS_USER, os.environ[CLASS_PASSWORD_ENV])
    try:
        answer = requests.get(f"{base}/version", auth=auth, timeout=10)
    except requests.RequestException:
        return None
    return answer.text.strip() if answer.status_code == 200 else None


def _first_lan_ip() -> str | None:
    found = lan_addresses()
    return found[0] if found else None


def _host_hint() -> str:
    found = lan_addresses()
    where = f" (this machine: {', '.join(found)})" if found else ""
    return ("Say where the room's server listens: --host 0.0.0.0 (every network of this machine) or "
            f"--host <this machine's address on the room's network>{where}.")


def _loopback_for(bind: str) -> str:
    """Where this machine itself reaches a server bound to `bind`."""
    return "127.0.0.1" if bind in ("0.0.0.0", "", "::") else bind


def _url_host(address: str) -> str:
    return f"[{address}]" if ":" in address and not address.startswith("[") else address


def _sh(value: str) -> str:
    return value if re.fullmatch(r"[A-Za-z0-9_./:@%+=,-]+", value) else f"'{value}'"
