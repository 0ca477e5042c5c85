"""Where the kit keeps its data and which MLflow server it talks to.

One place decides these so that the server launcher, the wire helper and the CLI never disagree.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from helpers.errors import ConfigError

#: The MLflow version every notebook's committed output was produced with.
PINNED_MLFLOW = "3.17.2"

HOME_ENV = "MLFLOW_400_LAB_HOME"
LEARNER_ENV = "MLFLOW_400_LAB_LEARNER"
TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
ROOM_FILE = "room.json"  # in the data folder: the room joined with `python -m helpers join`


def data_dir() -> Path:
    """The kit's data directory: `$MLFLOW_400_LAB_HOME`, else `~/.mlflow-400-lab`.

    Kept out of the learner's working folder so a notebook directory never fills with `mlruns/`.
    A relative value is refused here: each process (the CLI, JupyterLab, a kernel in
    `notebooks/`) would resolve it against its own folder and they would not find each other.
    The CLI resolves it once (`resolve_home_env`) before it starts anything.
    """
    override = os.environ.get(HOME_ENV)
    if not override:
        return Path.home() / ".mlflow-400-lab"
    path = Path(override).expanduser()
    if not path.is_absolute():
        raise ConfigError(f"{HOME_ENV} is a relative path ({override}): each program would look "
                          f"for it in its own folder; set it to an absolute path, e.g. "
                          f"{HOME_ENV}=$PWD/{override}.")
    return path


def resolve_home_env() -> str | None:
    """Make a relative `$MLFLOW_400_LAB_HOME` absolute, once, for this process and its children.

    Called by the command line before it starts the server or JupyterLab, so every kernel sees
    the same folder. Returns a note to show when it changed something."""
    override = os.environ.get(HOME_ENV)
    if not override or Path(override).expanduser().is_absolute():
        return None
    absolute = str(Path(override).expanduser().resolve())
    os.environ[HOME_ENV] = absolute
    return f"{HOME_ENV} was relative ({override}); using {absolute}."


def state_file() -> Path:
    """The JSON file that records the running kit server (pid, url, version)."""
    return data_dir() / "server.json"


# What a state file must hold, and of which type, to be believed at all.
_STATE_FIELDS = {"pid": int, "create_time": (int, float), "url": str, "cmdline": list}


def read_state() -> dict[str, Any] | None:
    """The recorded kit server, or None when there is none or the file is unreadable or
    malformed (truncated, not an object, a field missing or of the wrong type, pid <= 1)."""
    try:
        state = json.loads(state_file().read_text())
    except (OSError, ValueError):
        return None
    return state if valid_state(state) else None


def valid_state(state: Any) -> bool:
    """True when `state` has every field the kit needs to recognise its own server."""
    if not isinstance(state, dict):
        return False
    for name, kind in _STATE_FIELDS.items():
        value = state.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            return False
    url = state["url"]
    return state["pid"] > 1 and url.startswith("http://127.0.0.1:") and bool(state["cmdline"])


def open_private(path: Path) -> BinaryIO:
    """`path` truncated and opened for writing, readable by its owner only (0600 from the moment
    it exists, and an older file's wider rights taken back): server logs may quote secrets."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.chmod(path, 0o600)
    except OSError:  # a file system without POSIX modes (some Windows shares)
        pass
    return os.fdopen(fd, "wb")


#: A learner name (roster, `join`), ASCII only: MLflow's client (through `requests`) sends the user
#: name in a Basic auth header encoded as latin-1, so a name outside ASCII would not reach the
#: server as written.
LEARNER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}")
LEARNER_NAME_RULE = ("ASCII letters A-Z and a-z, digits, '.', '_', '-'; up to 40; no spaces, no "
                     "accents: write José as Jose")


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` whole, readable by its owner only: a 0600 temporary file in the same
    folder renamed over it, so an older file's looser mode, a half-written file or a link planted
    at `path` never receives it. Raises OSError (the temporary file removed)."""
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def external_tracking_uri() -> str | None:
    """The shared server to use: `MLFLOW_TRACKING_URI` when it names an http(s) server (other
    schemes are not servers), else the room joined with `python -m helpers join` (room.json)."""
    uri = os.environ.get(TRACKING_URI_ENV, "").strip()
    if uri.lower().startswith(("http://", "https://")):
        return uri.rstrip("/")
    if uri:
        return None  # set, but not a server: ignored_tracking_uri_note says so
    joined = joined_room()
    return joined["url"] if joined else None


def tracking_origin() -> tuple[str, str]:
    """Where the shared server's address comes from, for messages: (what to call it, how to go
    back to the local server)."""
    if os.environ.get(TRACKING_URI_ENV, "").strip():
        return "MLFLOW_TRACKING_URI", "`unset MLFLOW_TRACKING_URI`"
    return "the room joined", "`python -m helpers leave`"


def room_file() -> Path:
    """The joined room's settings (`python -m helpers join URL`): read by every process of the
    kit, so a new terminal or a restarted kernel still talks to the room. No secret in it: the
    password lives in the learner's netrc file (helpers/room.py)."""
    return data_dir() / ROOM_FILE


def joined_room() -> dict[str, str] | None:
    """{"url": ..., "learner": ...} of the joined room, or None (none joined, or unreadable)."""
    try:
        found = json.loads(room_file().read_text(encoding="utf-8"))
    except (OSError, ValueError, ConfigError):
        return None
    if not isinstance(found, dict) or not isinstance(found.get("url"), str) or \
            not found["url"].lower().startswith(("http://", "https://")):
        return None
    learner = found.get("learner")
    return {"url": found["url"].rstrip("/"), "learner": learner if isinstance(learner, str) else ""}


def userinfo_note(uri: str) -> str:
    """" (...)" naming why a URI whose password holds "/", "?" or "#" reaches no server, else ""."""
    from helpers.redact import userinfo_has_delimiters

    if not userinfo_has_delimiters(uri):
        return ""
    return (" (its user name or password holds a '/', '?' or '#', which ends the host part of a "
            "URL: write them as %2F, %3F and %23)")


def ignored_tracking_uri_note() -> str | None:
    """One sentence when `MLFLOW_TRACKING_URI` is set but is not an http(s) URL (and so ignored)."""
    uri = os.environ.get(TRACKING_URI_ENV, "").strip()
    if not uri or external_tracking_uri():
        return None
    from helpers.redact import mask_text

    return (f"Note: MLFLOW_TRACKING_URI is {mask_text(uri)!r}, which is not an http(s) server "
            "address (the lessons send HTTP requests to a tracking server), so the kit ignores it "
            "and uses its own local server; unset it, or set it to http://HOST:PORT.")


def is_loopback(url: str) -> bool:
    """True when `url` names this machine (127.0.0.0/8, ::1, localhost): no proxy applies."""
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return False
    return (host in ("localhost", "::1") or host.endswith(".localhost")
            or host.startswith("127."))


_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


def direct_hosts() -> list[str]:
    """Hosts the lessons' requests must reach without a proxy: this machine, and the room's
    server when one is configured (a proxy cannot reach 127.0.0.1, nor usually a room's LAN)."""
    hosts = list(_LOOPBACK_NAMES)
    try:
        room = external_tracking_uri()
    except ConfigError:  # a relative data folder: the CLI says so; no room to add here
        room = None
    host = (urlsplit(room).hostname or "") if room else ""
    if host and host not in hosts:
        hosts.append(host)
    return hosts


def bypass_proxy() -> list[str]:
    """Put `direct_hosts()` into NO_PROXY and no_proxy for this process and its children.

    Done when `helpers` is imported (every notebook's first cell does), so the article's plain
    `requests` calls, MLflow's client and a kernel started by any JupyterLab or VS Code reach the
    local and the room's server directly even on a laptop with HTTP(S)_PROXY set. Both spellings:
    requests reads the lower-case one first. Always done, not only when a proxy variable is set:
    macOS and Windows can supply a system proxy that NO_PROXY also overrides. Returns the hosts
    it added (none when they were there already)."""
    added: list[str] = []
    hosts = direct_hosts()  # reads room.json: once
    for name in ("NO_PROXY", "no_proxy"):
        have = [h.strip() for h in os.environ.get(name, "").split(",") if h.strip()]
        missing = [h for h in hosts if h not in have]
        if missing:
            os.environ[name] = ",".join(have + missing)
            added += [h for h in missing if h not in added]
    return added


def bypass_proxy_for_loopback() -> str | None:
    """`bypass_proxy()` again, for settings changed after the import (a cell that sets
    HTTP_PROXY or NO_PROXY itself); a note when it changed something while a proxy is set."""
    added = bypass_proxy()
    if not added or not any(os.environ.get(n) for n in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
                                                         "http_proxy", "https_proxy", "all_proxy")):
        return None
    return (f"A proxy is set: {', '.join(added)} now in NO_PROXY for this Python, so requests to "
            "the local (and the room's) server go direct.")


def base_url() -> str | None:
    """The server the kit should talk to: `MLFLOW_TRACKING_URI` (http) first, else the kit's own."""
    external = external_tracking_uri()
    if external:
        return external
    state = read_state()
    return state.get("url") if state else None


def use_reproducible_env(home: str) -> None:
    """Settings under which notebook outputs are both produced (tools/run_notebooks.py) and
    checked (tests/conftest.py): if the two differed, strict nbval would see it."""
    os.environ[HOME_ENV] = home  # a throw-away data dir
    os.environ.pop(TRACKING_URI_ENV, None)  # always the kit's own local server
    os.environ[LEARNER_ENV] = "learner"  # experiment names in outputs carry it
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # offline by design


def learner_name() -> str:
    """A short, URL-safe name for this learner: `$MLFLOW_400_LAB_LEARNER`, else the name given
    when joining a room, else the OS user."""
    joined = joined_room() if not os.environ.get(LEARNER_ENV) else None
    raw = os.environ.get(LEARNER_ENV) or (joined or {}).get("learner") or _os_user()
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", raw).strip("-")[:40] or "learner"


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in some containers
        return "learner"
