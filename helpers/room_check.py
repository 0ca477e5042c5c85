"""The room pre-check: `python -m helpers doctor --room [URL]`, run before the doors open.

From this laptop, the way the lessons' plain `requests` calls go (proxy settings and NO_PROXY
included): does the room's server answer, is a proxy in the way, do the learner's credentials
work (from the environment or the netrc entry `python -m helpers join` wrote; never printed),
and which MLflow runs there. A failure names what to try, Wi-Fi client isolation and firewalls
included, and the last lines always say how to fall back to everyone's local server.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import requests

from helpers import config, redact, room
from helpers.doctor import Result, proxy_line

TIMEOUT = 5.0
_PROBE = "/api/2.0/mlflow/experiments/search"

FALLBACK = ("If the room's server cannot be reached, nobody waits for it: each laptop runs its own "
            "local server and the lessons give the same answers. Run `python -m helpers leave` "
            "(or unset MLFLOW_TRACKING_URI), then `make lab`.")


def run(url: str | None, say=print) -> bool:
    """Print one line per check, then the fallback; True when every check passed."""
    target = (url or config.external_tracking_uri() or "").strip().rstrip("/")
    if not target:
        say("✗ room: no room given and none joined — fix: `python -m helpers doctor --room "
            "http://ADDRESS:PORT` with the address the instructor gives")
        say(FALLBACK)
        return False
    room.room_host(target)  # one sentence (ConfigError) for an address that is not one
    results = check(target)
    for result in results:
        say(result.line())
    say(FALLBACK)
    return all(r.passed for r in results)


def check(url: str, timeout: float = TIMEOUT) -> list[Result]:
    """The room's checks, in order; the credential check only runs once the server answers."""
    reach = _reach(url, timeout)
    return [reach] if not reach.passed else [reach, _login(url, timeout)]


def _reach(url: str, timeout: float) -> Result:
    parts = urlsplit(url)
    host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    shown = redact.mask_url(url)
    try:
        with requests.Session() as http:  # trust_env: exactly what a notebook's requests.get does
            answer = http.get(f"{url}/health", timeout=timeout, auth=_no_auth)
    except requests.exceptions.ProxyError:
        return Result("room", False, f"a proxy is in the way: requests to {host} go to it, and "
                      f"it does not pass them on{proxy_line(url)}",
                      f"join the room (`python -m helpers join {shown}`): the kit then puts {host} "
                      f"into NO_PROXY; or `export NO_PROXY={host},127.0.0.1,localhost`")
    except requests.exceptions.ConnectTimeout:
        return Result("room", False, f"no answer from {host}:{port} within {timeout:g} s: the "
                      "network drops what this laptop sends there", _blocked(host, port))
    except requests.exceptions.ConnectionError as exc:
        text = str(exc)
        if "NameResolution" in text or "Name or service not known" in text or \
                "nodename nor servname" in text or "getaddrinfo" in text:
            return Result("room", False, f"this laptop cannot find {host} by name",
                          "use the room server's IP address, as the instructor's terminal "
                          "printed it (`Learners are given …`)")
        return Result("room", False, f"{host} refuses connections on port {port}{proxy_line(url)}",
                      "check the address and port against the instructor's screen; if they "
                      "match, the room's server is not running, or a firewall refuses the port: "
                      + _blocked(host, port))
    except requests.RequestException as exc:
        return Result("room", False, f"{shown} cannot be asked ({type(exc).__name__})",
                      "check the address against the instructor's screen")
    if answer.status_code != 200 or answer.text.strip() != "OK":
        return Result("room", False, f"{shown}/health answers {answer.status_code}, not MLflow's "
                      f"OK: something else answers at that address{proxy_line(url)}",
                      "check the address and port against the instructor's screen")
    return Result("room", True, f"the room's server at {shown} answers from this laptop"
                  + proxy_line(url))


def _login(url: str, timeout: float) -> Result:
    shown = redact.mask_url(url)
    host = urlsplit(url).hostname
    with requests.Session() as http:
        anonymous = http.get(f"{url}{_PROBE}", params={"max_results": 1}, timeout=timeout,
                             auth=_no_auth)
        if anonymous.status_code == 403 and anonymous.text.startswith("Invalid Host header"):
            return Result("login", False, f"the room's server refuses requests addressed to "
                          f"{host} (not in its --allowed-hosts)", "use the address the "
                          "instructor's terminal printed, or ask them to add this one with "
                          "--allowed-hosts")
        mine, where = _credentials(url)
        answer, version = anonymous, None
        if anonymous.status_code == 401:
            if mine is None:
                return Result("login", False, "the room asks for a name and password, and none "
                              f"is set for {host} on this laptop",
                              f"`python -m helpers join {shown} --basic-auth`, with the name and "
                              "password the instructor gives you")
            answer = http.get(f"{url}{_PROBE}", params={"max_results": 1}, timeout=timeout,
                              auth=mine)
            if answer.status_code == 401:
                return Result("login", False, f"the room refuses the name and password for "
                              f"'{mine[0]}' ({where})", f"`python -m helpers join {shown} "
                              "--basic-auth` again and type them as the instructor gave them")
        if answer.status_code == 200:
            got = http.get(f"{url}/version", timeout=timeout,
                           auth=mine if anonymous.status_code == 401 else _no_auth)
            version = got.text.strip() if got.status_code == 200 else None
    if answer.status_code != 200:
        return Result("login", False, f"the room's server answers {answer.status_code} to a "
                      "simple search", "tell the instructor")
    who = (f"your name and password work ('{mine[0]}', {where})" if anonymous.status_code == 401
           else "it asks for no password (basic auth off)")
    if version != config.PINNED_MLFLOW:
        return Result("login", False, f"{who}; it runs MLflow {version or 'of an unknown version'}"
                      f", not the pinned {config.PINNED_MLFLOW}",
                      f"ask the instructor to run mlflow=={config.PINNED_MLFLOW}")
    return Result("login", True, f"{who}; MLflow {version} as pinned")


def _credentials(url: str) -> tuple[tuple[str, str] | None, str]:
    """The learner's credentials as the kit sends them, and where they came from (not them)."""
    user, password = (os.environ.get("MLFLOW_TRACKING_USERNAME"),
                      os.environ.get("MLFLOW_TRACKING_PASSWORD"))
    if user and password:
        return (user, password), "from MLFLOW_TRACKING_USERNAME/PASSWORD"
    found = room.credentials(url)
    return (found, f"from {room.netrc_path()}") if found else (None, "")


def _no_auth(prepared: requests.PreparedRequest) -> requests.PreparedRequest:
    """An auth that adds nothing: keeps requests from filling in the netrc entry."""
    return prepared


def _blocked(host: str | None, port: int) -> str:
    return (f"on guest or public Wi-Fi, client isolation stops laptops reaching each other (ask "
            f"for a network without it, or use a hotspot or travel router); on the instructor's "
            f"machine a firewall may drop port {port} (Linux: `sudo ufw allow {port}/tcp`; macOS: "
            "System Settings › Network › Firewall, allow Python; Windows: allow Python on "
            f"Private networks). If `python -m helpers doctor --room http://{host}:{port}` works "
            "on the instructor's machine but not here, it is the network")
