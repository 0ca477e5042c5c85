"""Classroom mode: one MLflow server for a whole room, on a real database, reachable from laptops.

The kit's own server binds 127.0.0.1 and uses SQLite, which is right for one learner. A room needs
one server bound where the instructor says (`--host`), backed by a database that takes forty
writers (PostgreSQL), with MLflow's `--allowed-hosts` covering the address learners type (a name
or public address outside MLflow's defaults is refused with 403 otherwise), optionally MLflow's
basic-auth app with one account per learner (`--roster`), and one line to tell learners. The server
runs with the `mlflow server` CLI and MLflow's own default number of workers; it runs in the
instructor's terminal until Ctrl-C, SIGTERM or SIGHUP.

Secrets never go on a command line (`ps` shows command lines to every user): the database URI
reaches MLflow in its environment, a password in `--backend-store-uri` is refused (PGPASSWORD or
MLFLOW_BACKEND_STORE_URI carry it instead), and the learners' passwords live only in
`<data dir>/classroom/credentials.csv` (mode 0600).
"""

from __future__ import annotations

import csv
import io
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from urllib.parse import quote, urlsplit

from helpers import config, processes, server, server_launch
from helpers.errors import ClassroomError
from helpers.room_address import choose_address, default_route_address, lan_addresses, local_interfaces

DEFAULT_PORT = 5000
# MLflow's own settings for its basic-auth app (mlflow/server/auth, MLflow 3.17.2).
ADMIN_USER_ENV = "MLFLOW_AUTH_ADMIN_USERNAME"
ADMIN_PASSWORD_ENV = "MLFLOW_AUTH_ADMIN_PASSWORD"
AUTH_CONFIG_ENV = "MLFLOW_AUTH_CONFIG_PATH"
SECRET_KEY_ENV = "MLFLOW_FLASK_SERVER_SECRET_KEY"
BACKEND_URI_ENV = "MLFLOW_BACKEND_STORE_URI"  # read by `mlflow server`; the kit reads it too
MIN_PASSWORD = 12  # mlflow/utils/validation.py::_validate_password
CREDENTIALS = "credentials.csv"  # in <data dir>/classroom: name,password per learner (and admin)
AUTH_DB = "basic_auth.db"  # in <data dir>/classroom: MLflow's auth database (basic_auth.ini)


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
    roster: list[str] = field(default_factory=list)  # one MLflow user each (basic auth)
    address_note: str = ""  # why learners are given this address, in one line

    @property
    def credentials(self) -> Path:
        return self.home / CREDENTIALS

    def describe(self) -> str:
        """What runs, with any password in the database URI masked."""
        workers = (f"{self.workers} worker{'s' if self.workers > 1 else ''}" if self.workers
                   else "MLflow's default number of workers")
        auth = (f"basic auth on, {len(self.roster)} learner accounts" if self.basic_auth
                else "basic auth off")
        lines = [f"Classroom server for learners at {self.url} (bound to {self.bind}:{self.port}, "
                 f"{workers}, {auth}).",
                 f"Database: {mask_uri(self.backend_store_uri)}",
                 f"Allowed Host headers: MLflow's defaults (localhost, private networks) and "
                 f"{', '.join(self.added_hosts) or 'nothing else'}."]
        return "\n".join(self.notes + ([self.address_note] if self.address_note else []) + lines)


def build(
    *,
    backend_store_uri: str,
    host: str,
    port: int = DEFAULT_PORT,
    allowed_hosts: Sequence[str] = (),
    basic_auth: bool = False,
    workers: int | None = None,
    advertise: str | None = None,
    roster: Sequence[str] = (),
) -> Classroom:
    """Decide the `mlflow server` command for a room; raise `ClassroomError` on bad settings.

    `host` is where the server binds (0.0.0.0 = every network of this machine); `advertise` is the
    address learners type (default: `host`, or `choose_address` when binding 0.0.0.0).
    `workers=None` keeps MLflow's default, which is what the load benchmark measured. With
    `basic_auth`, `roster` names the learners: one MLflow user each, created by `start`.
    """
    notes: list[str] = []
    uri = _driver_uri(backend_store_uri.strip(), notes)
    check_database(uri)  # first: before MLflow is even imported, a wrong address fails in seconds
    if not host:
        raise ClassroomError(_host_hint())
    if basic_auth and not roster:
        raise ClassroomError("--basic-auth needs --roster FILE (learner names, one per line): each "
                             "learner gets their own MLflow account.")
    if roster and not basic_auth:
        raise ClassroomError("--roster makes one MLflow account per learner, which needs "
                             "--basic-auth too.")
    if advertise:
        address, why = advertise, f"Learners are given {advertise} (--advertise)."
    elif host not in ("0.0.0.0", "::"):
        address, why = host, f"Learners are given {host}, the --host address."
    else:
        address, why = choose_address(local_interfaces(), default_route_address())
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
    cmd, env = server_launch.launch_command(port, host=host, launcher="cli", backend_store_uri=uri,
                                            workers=workers, extra_args=extra)
    if basic_auth:
        env.update(_auth_env(home))
    return Classroom(cmd=cmd, env=env, bind=host, port=port, url=f"http://{_url_host(address)}:{port}",
                     backend_store_uri=uri, allowed_hosts=hosts, added_hosts=added,
                     basic_auth=basic_auth, workers=workers, home=home, notes=notes,
                     roster=list(roster), address_note=why)


def learner_lines(room: Classroom) -> list[str]:
    """The line each learner runs in the kit's folder (POSIX shells, then Windows cmd.exe or
    PowerShell): `python -m helpers join` asks for their name (and password) itself, so there is
    no placeholder to forget and no password in it, and records the room for every later
    terminal and kernel (helpers/room.py)."""
    flag = " --basic-auth" if room.basic_auth else ""
    return [f".venv/bin/python -m helpers join {_sh(room.url)}{flag}",
            f".venv\\Scripts\\python -m helpers join {room.url}{flag}"]


def start(room: Classroom, *, timeout: float = 300.0,
          progress: Callable[[str], None] | None = None) -> server.ServerHandle:
    """Check the database, start the room's server and wait until it answers; with basic auth,
    create one MLflow user per learner on the roster."""
    say = progress or (lambda message: print(message, file=sys.stderr, flush=True))
    probe = f"http://{_url_host(_loopback_for(room.bind))}:{room.port}"
    if processes.port_in_use(room.port, _loopback_for(room.bind)):
        raise ClassroomError(f"Port {room.port} is already in use on this machine: stop what uses "
                             "it, or choose another with --port.")
    log_path = room.home / f"server-{room.port}.log"
    say(f"Starting the classroom server (log: {log_path}) ...")
    if room.basic_auth and not os.environ.get(AUTH_CONFIG_ENV):  # our basic_auth.ini names it
        # MLflow would create it 0644; an empty file is an empty SQLite database
        os.close(os.open(room.home / AUTH_DB, os.O_WRONLY | os.O_CREAT, 0o600))
        os.chmod(room.home / AUTH_DB, 0o600)
    with config.open_private(log_path) as log:
        proc = subprocess.Popen(room.cmd, env=room.env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, **processes.new_group_kwargs())
    try:
        server_launch.wait_until_ready(proc, probe, time.monotonic() + timeout, log_path, say)
        if room.basic_auth:
            create_learners(probe, room)
    except BaseException:
        processes.kill_tree(proc.pid)
        proc.wait(timeout=5)
        raise
    version = _server_version(probe, room)
    return server.ServerHandle(url=room.url, source="started", pid=proc.pid, mlflow_version=version,
                               log_path=log_path, _proc=proc)


def serve(room: Classroom, out: Callable[[str], None] | None = None) -> int:
    """Run the room in this terminal until Ctrl-C, SIGTERM or SIGHUP; leave no process behind.

    SIGINT gets Python's handler back explicitly: a process started with SIGINT ignored (`nohup`,
    `cmd &` in a script) would otherwise ignore Ctrl-C, and Python keeps an inherited ignore.
    """
    say = out or (lambda line: print(line, flush=True))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), _interrupt)
    try:
        handle = start(room)
    except KeyboardInterrupt:
        say("Stopped before the classroom server was ready.")
        return 1
    code = 0
    try:
        say(room.describe())
        say(f"MLflow {handle.mlflow_version or '?'} answers at {room.url}.")
        shadowed = server_launch.shadowing_note(handle.mlflow_version)
        if shadowed:
            say(shadowed)
        posix, windows = learner_lines(room)
        say("Each learner runs this line once, in the kit's folder (it asks for their name"
            + (" and password" if room.basic_auth else "") + "; every later terminal and "
            "notebook then uses this server):")
        say(f"  {posix}")
        say(f"  Windows (cmd.exe or PowerShell): {windows}")
        if room.basic_auth:
            say(f"Passwords (one per learner, and the admin's): {room.credentials} (readable by you "
                "only). Hand each learner their own line of it.")
        say(f"Check a laptop with: python -m helpers doctor --room {room.url}. Press Ctrl-C to stop.")
        while handle._proc is not None and handle._proc.poll() is None:
            time.sleep(0.5)
        say(f"The classroom server exited on its own (code {handle._proc.returncode}); see "
            f"{handle.log_path}.")
        code = 1
    except KeyboardInterrupt:
        pass
    finally:
        for name in ("SIGINT", "SIGTERM", "SIGHUP"):  # a second Ctrl-C must not cut the cleanup short
            if hasattr(signal, name):
                signal.signal(getattr(signal, name), signal.SIG_IGN)
        handle.stop()
    say("Classroom server stopped.")
    return code


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


# -- learners' accounts ----------------------------------------------------------------------


def read_roster(path: str | Path) -> list[str]:
    """Learner names, one per line (blank lines and `# comments` skipped); checked, no duplicates."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ClassroomError(f"Cannot read the roster {path} ({exc.strerror}).") from None
    names: list[str] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        name = raw.split("#", 1)[0].strip()
        if not name:
            continue
        if not config.LEARNER_NAME.fullmatch(name):
            raise ClassroomError(f"{path}, line {number}: {name!r} is not a usable learner name "
                                 f"({config.LEARNER_NAME_RULE}).")
        if name.lower() in seen:
            raise ClassroomError(f"{path}, line {number}: {name!r} is already on line "
                                 f"{seen[name.lower()]}; each learner needs their own name.")
        if name.lower() == _admin_name().lower():
            raise ClassroomError(f"{path}, line {number}: {name!r} is the admin's user name.")
        seen[name.lower()] = number
        names.append(name)
    if not names:
        raise ClassroomError(f"The roster {path} has no names: write one learner name per line.")
    return names


def read_credentials(path: Path) -> dict[str, str]:
    """name → password from a credentials file (empty when there is none yet)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    return {row[0]: row[1] for row in csv.reader(io.StringIO(text)) if len(row) == 2 and row[0] != "name"}


def write_credentials(path: Path, names: Sequence[str],
                      admin: tuple[str, str] | None = None) -> dict[str, str]:
    """Give every name a password (kept from an earlier file, else new) and write `name,password`
    rows to `path`, readable by its owner only (see save_credentials)."""
    rows = plan_credentials(path, names, admin)
    save_credentials(path, rows)
    return rows


def plan_credentials(path: Path, names: Sequence[str],
                     admin: tuple[str, str] | None = None) -> dict[str, str]:
    """name → password for every name (kept from an earlier file, else new), admin first; nothing
    is written: create_learners saves only what the server accepted."""
    known = read_credentials(path)
    rows = {name: known.get(name) or secrets.token_urlsafe(12) for name in names}  # 16 characters
    return {admin[0]: admin[1], **rows} if admin else rows


def save_credentials(path: Path, rows: Mapping[str, str]) -> None:
    """Write `name,password` rows: a 0600 temporary file in the same folder, then a rename, so the
    file is never readable by others (an older file's looser mode included) nor half-written."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["name", "password"])
    writer.writerows(rows.items())
    config.write_private(path, buffer.getvalue())


def create_learners(base: str, room: Classroom) -> dict[str, str]:
    """One MLflow user per roster name, through the auth app's REST API, with the admin's
    credentials; an existing user gets the password from the credentials file."""
    import requests

    admin = (_admin_name(), room.env[ADMIN_PASSWORD_ENV])
    rows = plan_credentials(room.credentials, room.roster, admin=admin)
    # Saved only once the server has taken them: a refused admin password must not replace the
    # right one (after a restart, the file may hold its only readable copy).
    saved = read_credentials(room.credentials)
    accepted = dict(saved)
    api = f"{base}/api/2.0/mlflow/users"
    try:
        with requests.Session() as session:
            session.trust_env = False  # the room's own server, on this machine
            session.auth = admin
            known = session.get(f"{api}/get", params={"username": admin[0]}, timeout=30)
            _refused_admin(known.status_code, room)
            accepted = {admin[0]: admin[1], **accepted}
            for name in room.roster:
                body = {"username": name, "password": rows[name]}
                made = session.post(f"{api}/create", json=body, timeout=30)
                if made.status_code == 400 and "RESOURCE_ALREADY_EXISTS" in made.text:
                    made = session.patch(f"{api}/update-password", json=body, timeout=30)
                _refused_admin(made.status_code, room)
                if made.status_code != 200:
                    raise ClassroomError(f"Could not create the account of '{name}': the server "
                                         f"answered {made.status_code} {made.text[:200]}")
                accepted[name] = rows[name]
    finally:
        if admin[0] in accepted and accepted != saved:
            save_credentials(room.credentials, accepted)
    return rows


def _refused_admin(status: int, room: Classroom) -> None:
    if status == 401:
        raise ClassroomError(
            f"The server refuses the admin password: its auth database ({room.home / AUTH_DB}) "
            f"was made with another one. Put that one in {ADMIN_PASSWORD_ENV} (or the admin line "
            f"of {room.credentials}, left unchanged), or delete the auth database to start its "
            "accounts afresh.")


def _admin_name() -> str:
    return os.environ.get(ADMIN_USER_ENV) or "admin"


# -- the address learners type ---------------------------------------------------------------


def check_database(uri: str, timeout: int = 5) -> None:
    """Connect once before starting anything: a wrong address fails in seconds, with its cause.

    (MLflow itself would retry for minutes while its workers print nothing useful.) A SQLite file
    is not opened, only its folder checked: connecting would create the file."""
    if uri.startswith("sqlite:"):  # a file: its folder must exist (connecting would create it)
        path = uri.split(":///", 1)[-1].split("?", 1)[0]
        folder = Path(path).expanduser().resolve().parent if path and path != ":memory:" else None
        if folder is not None and not folder.is_dir():
            raise ClassroomError(f"The database {uri} is in {folder}, which does not exist: create "
                                 "the folder, or give another path.")
        return
    import sqlalchemy
    from sqlalchemy.exc import SQLAlchemyError

    args = {"connect_timeout": timeout} if uri.startswith(("postgresql", "postgres", "mysql")) else {}
    try:
        engine = sqlalchemy.create_engine(uri, connect_args=args, poolclass=sqlalchemy.pool.NullPool)
    except (SQLAlchemyError, ValueError, ImportError) as exc:
        raise ClassroomError(f"The database address {mask_uri(uri)} is not usable: "
                             f"{_first_line(exc)}") from None
    try:
        with engine.connect():
            pass
    except SQLAlchemyError as exc:
        cause = _first_line(getattr(exc, "orig", None) or exc)
        raise ClassroomError(f"Cannot connect to the database {mask_uri(uri)}: {cause}. Check the "
                             "host, port, database name and user (and PGPASSWORD).") from None
    finally:
        engine.dispose()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__).rstrip(".")


def uri_from_args(given: str | None, environ: Mapping[str, str] = os.environ) -> str:
    """The room's database URI: `--backend-store-uri` without a password, else $MLFLOW_BACKEND_STORE_URI."""
    if given:
        if urlsplit(given.strip()).password is not None:
            raise ClassroomError(
                "Keep the database password off the command line (`ps` shows command lines to "
                "every user of this machine): give it in PGPASSWORD, or put the whole URI in "
                f"{BACKEND_URI_ENV}, and leave it out of --backend-store-uri.")
        return given
    return environ.get(BACKEND_URI_ENV, "")


def mask_uri(uri: str) -> str:
    """A database URI with its password replaced by ****, for anything that prints it (the one
    masking rule, helpers/redact.py: a password holding "/", "#" or "@" is masked whole)."""
    from helpers.redact import mask_password

    return mask_password(uri)


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
    """The settings MLflow's basic-auth app refuses to start without (checked before starting).

    The admin password: $MLFLOW_AUTH_ADMIN_PASSWORD, else the admin line of credentials.csv, else
    a new one written there. It reaches MLflow in its environment, never in a file or argv."""
    if find_spec("flask_wtf") is None:
        raise ClassroomError(
            "MLflow's basic-auth app needs Flask-WTF, which the kit's runtime pins do not include: "
            'run `pip install -e ".[classroom]"` in the kit\'s folder (only on the instructor\'s '
            "machine), then try again.")
    admin = _admin_name()
    password = os.environ.get(ADMIN_PASSWORD_ENV) or read_credentials(home / CREDENTIALS).get(admin)
    if password is None:
        password = secrets.token_urlsafe(18)
    if len(password) < MIN_PASSWORD:
        raise ClassroomError(f"Set {ADMIN_PASSWORD_ENV} to a password of at least {MIN_PASSWORD} "
                             "characters (MLflow refuses shorter ones), or unset it to have one made.")
    env = {ADMIN_PASSWORD_ENV: password, ADMIN_USER_ENV: admin}
    if not os.environ.get(AUTH_CONFIG_ENV):
        ini = home / "basic_auth.ini"
        # READ for everyone else: a learner sees the room's runs but writes only to the
        # experiments they created (MLflow gives the creator MANAGE on each new experiment).
        # A "%" in the folder's path: quoted "%25" in the URI (SQLAlchemy's make_url decodes
        # %XX), then "%%" for the configparser that reads this file (it interpolates "%").
        database = f"sqlite:///{quote((home / AUTH_DB).as_posix(), safe='/:')}".replace("%", "%%")
        ini.write_text(
            "[mlflow]\n"
            "# Written by `python -m helpers serve --classroom --basic-auth`.\n"
            "default_permission = READ\n"
            f"database_uri = {database}\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
            "# MLflow's credential cache (off by default): PBKDF2 then runs once per learner per\n"
            "# minute and worker instead of on every request; a changed password reaches every\n"
            "# worker within the minute (mlflow/server/auth/basic_auth.ini).\n"
            "auth_cache_ttl_seconds = 60\n")
        env[AUTH_CONFIG_ENV] = str(ini)
    if not os.environ.get(SECRET_KEY_ENV):
        # Only needs to be the same in every worker of this one server: a fresh one per start.
        env[SECRET_KEY_ENV] = secrets.token_hex(32)
    return env


def _server_version(base: str, room: Classroom) -> str | None:
    import requests

    auth = (_admin_name(), room.env[ADMIN_PASSWORD_ENV]) if room.basic_auth else None
    try:
        answer = requests.get(f"{base}/version", auth=auth, timeout=10)
    except requests.RequestException:
        return None
    return answer.text.strip() if answer.status_code == 200 else None


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
