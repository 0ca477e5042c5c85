"""A learner's side of classroom mode: join the room's server once, for every terminal and kernel.

`python -m helpers join URL` (the line the instructor's `serve --classroom` prints) records the
room in the kit's data folder (`room.json`, read by helpers/config.py, so a new terminal or a
restarted kernel still talks to the room) and, for a `--basic-auth` room, the learner's name and
password in their netrc file as one `machine HOST` entry. `requests` reads that file by itself
(requests.utils.get_netrc_auth), so the article's plain `requests` calls carry the learner's
credentials without a byte changed, and so does MLflow's own client. The kit's `send()` reads
the same entry (`credentials`). `python -m helpers leave` undoes both.
"""

from __future__ import annotations

import getpass
import json
import os
import re
from pathlib import Path
from urllib.parse import urlsplit

from helpers import config, redact
from helpers.errors import ConfigError

NETRC_ENV = "NETRC"  # requests and curl both read it
#: Characters a netrc token can carry without quoting (the kit's passwords are URL-safe base64).
_TOKEN = re.compile(r"[^\s\"'\\#]+")


def netrc_path() -> Path:
    """The netrc file `requests` reads: $NETRC, else the first of ~/.netrc, ~/_netrc that
    exists (requests.utils.NETRC_FILES), else ~/.netrc."""
    if os.environ.get(NETRC_ENV):
        return Path(os.environ[NETRC_ENV]).expanduser()
    from requests.utils import NETRC_FILES

    for name in NETRC_FILES:
        found = Path("~", name).expanduser()
        if found.exists():
            return found
    return Path("~/.netrc").expanduser()


def room_host(url: str) -> str:
    """The host of a room's URL, checked: an http(s) URL with a host and nothing secret in it."""
    try:
        parts = urlsplit(url.strip())
        host, scheme = parts.hostname, parts.scheme.lower()
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        host, scheme = None, ""
    if scheme not in ("http", "https") or not host:
        raise ConfigError(f"{url!r} is not a server address: give it as the instructor wrote it, "
                          "e.g. http://192.168.1.20:5000.")
    if parts.username or parts.password:
        raise ConfigError("Leave the name and password out of the address: the command asks "
                          "for them and keeps the password in your netrc file.")
    return host


def join(url: str, learner: str, password: str | None = None) -> list[str]:
    """Make `url` this laptop's room for every later terminal and kernel; return what was done.

    `password` (a `--basic-auth` room) goes into the netrc file, replacing only this host's entry.
    """
    host = room_host(url)
    if not config.LEARNER_NAME.fullmatch(learner):
        raise ConfigError(f"{learner!r} is not a usable name ({config.LEARNER_NAME_RULE}), "
                          "as on the instructor's list.")
    if password is not None and not _TOKEN.fullmatch(password):
        raise ConfigError("That password has a space, quote, backslash or # in it, which the "
                          "instructor's passwords never have: type it again as given.")
    url = url.strip().rstrip("/")
    _write_private(config.room_file(), json.dumps({"url": url, "learner": learner}) + "\n")
    done = [f"This laptop now uses the room's server {redact.mask_url(url)} as {learner}, in every "
            "new terminal and notebook (settings: " + str(config.room_file()) + ")."]
    if password is not None:
        path = netrc_path()
        replaced = set_netrc_entry(path, host, learner, password)
        done.append(f"Your name and password are in {path} for {host} only"
                    + (" (its earlier entry replaced)" if replaced else "")
                    + ": requests and the kit send them to the room's server by themselves.")
    done.append(f"{host} and this machine go into NO_PROXY whenever the kit is imported, so no "
                "proxy stands between a notebook and the room.")
    return done


def leave() -> str:
    """Forget the joined room (and this kit's netrc entry for it): back to the local server."""
    joined = config.joined_room()
    if joined is None:
        return "No room was joined: the kit uses this laptop's own local server."
    config.room_file().unlink(missing_ok=True)
    host = urlsplit(joined["url"]).hostname or ""
    removed = remove_netrc_entry(netrc_path(), host) if host else False
    return (f"Left the room {redact.mask_url(joined['url'])}" + (f" (its entry in {netrc_path()} removed)"
                                                if removed else "")
            + ": the kit uses this laptop's own local server again (`make lab`).")


def credentials(url: str) -> tuple[str, str] | None:
    """The learner's name and password for `url` from their netrc file, as `requests` finds them
    (requests.utils.get_netrc_auth); None without an entry or without requests."""
    try:
        from requests.utils import get_netrc_auth
    except ImportError:
        return None
    found = get_netrc_auth(url)
    return (found[0], found[1]) if found else None


def ask(url: str, name: str | None, basic_auth: bool) -> list[str]:
    """The interactive part of `python -m helpers join`: ask what is missing, then join."""
    learner = (name or input("Your name: ")).strip()
    password = getpass.getpass("Your password (from the instructor; not shown): ").strip() \
        if basic_auth else None
    return join(url, learner, password)


# -- the netrc file ----------------------------------------------------------------------------


def set_netrc_entry(path: Path, host: str, login: str, password: str) -> bool:
    """Write `machine HOST login L password P` to `path`, keeping every other entry and comment;
    the file is written whole to a temporary file and renamed, readable by its owner only.
    Returns True when an entry for `host` was replaced."""
    lines, removed = _without_host(_read(path), host)
    text = "".join(lines)
    if text and not text.endswith("\n"):
        text += "\n"
    _write_private(path, text + f"machine {host} login {login} password {password}\n")
    return removed


def remove_netrc_entry(path: Path, host: str) -> bool:
    """Remove the one-line entry for `host` that `set_netrc_entry` wrote; True when there was one."""
    text = _read(path)
    if not text:
        return False
    lines, removed = _without_host(text, host)
    if removed:
        _write_private(path, "".join(lines))
    return removed


def _without_host(text: str, host: str) -> tuple[list[str], bool]:
    """The file's lines without the one-line entries for `host` (the form this module writes;
    an entry spread over several lines by hand is left alone, and the kit's, written last,
    is the one Python's netrc reader keeps)."""
    kept, removed = [], False
    for line in text.splitlines(keepends=True):
        words = line.split()
        if len(words) == 6 and words[0] == "machine" and words[1] == host and \
                words[2] == "login" and words[4] == "password":
            removed = True
            continue
        kept.append(line)
    return kept, removed


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""
    except OSError as exc:
        raise ConfigError(f"Cannot read {path} ({exc.strerror}): set NETRC to a file you can "
                          "write, then run the command again.") from None


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path` through a 0600 temporary file in the same folder, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        config.write_private(path, text)
    except OSError as exc:
        raise ConfigError(f"Cannot write {path} ({exc.strerror}): set NETRC to a file you can "
                          "write, or free the folder, then run the command again.") from None
