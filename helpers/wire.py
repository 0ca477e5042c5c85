"""Send one HTTP request with `requests` and record exactly what went out and what came back.

`send()` behaves like the `requests.request` call a learner would write (`json=` sets
Content-Type, `data=` does not), so what an `Exchange` shows is what their own code would do.
"""

from __future__ import annotations

import base64
import importlib
import json as jsonlib
import os
import shlex
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3

from helpers import config, redact
from helpers.deadline import Deadline, Late
from helpers.errors import ServerUnreachable
from helpers.redact import MASK  # noqa: F401  (re-exported: what masked values read)

DEFAULT_TIMEOUT = 10.0
#: Bodies up to this size, valid UTF-8, with no NUL and no leading "@" go inline in `to_curl()`;
#: any other body is sent from stdin, so the command reproduces it byte for byte at any size.
CURL_INLINE_LIMIT = 64 * 1024


@dataclass(frozen=True, repr=False)
class SentRequest:
    """The request as it went on the wire: method, URL, headers in order, raw body bytes."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def __repr__(self) -> str:  # masked like every other display (classroom credentials)
        body = redact.mask_body(self.body.decode("utf-8", errors="replace"))
        return (f"SentRequest(method={self.method!r}, url={_safe_url(self.url)!r}, "
                f"headers={tuple(mask_headers(self.headers))!r}, body={body!r})")

    def header(self, name: str) -> str | None:
        """A header's value (case-insensitive name), or None when it was not sent."""
        return _find(self.headers, name)

    @property
    def path(self) -> str:
        """Path and query, secret query values masked: what displays show."""
        parts = urlsplit(_safe_url(self.url))
        return parts.path + (f"?{parts.query}" if parts.query else "")


@dataclass(frozen=True, repr=False)
class Exchange:
    """One request and the server's answer to it, both exactly as they crossed the wire."""

    request: SentRequest
    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    elapsed_ms: float

    def header(self, name: str) -> str | None:
        return _find(self.headers, name)

    @property
    def content_type(self) -> str | None:
        """The response's Content-Type header, parameters included (None when absent)."""
        return self.header("Content-Type")

    @property
    def media_type(self) -> str:
        """The response's media type alone, e.g. "application/json" or "text/html"."""
        return (self.content_type or "").split(";")[0].strip().lower()

    @property
    def json(self) -> Any:
        """The response body parsed as JSON, or None when it is not JSON."""
        try:
            return jsonlib.loads(self.body)
        except ValueError:
            return None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    @property
    def body_kind(self) -> str:
        """"mlflow-json" (MLflow's error format), "json", "html", "text" or "empty"."""
        if not self.body.strip():
            return "empty"
        data = self.json
        if isinstance(data, dict) and "error_code" in data:
            return "mlflow-json"
        if data is not None:
            return "json"
        if "html" in self.media_type or self.text.lstrip().lower().startswith(("<!doctype", "<html")):
            return "html"
        return "text"

    @property
    def error_code(self) -> str | None:
        data = self.json
        return data.get("error_code") if isinstance(data, dict) else None

    @property
    def message(self) -> str | None:
        """MLflow's error message, or the text of a non-JSON error body (first line)."""
        data = self.json
        if isinstance(data, dict):
            return data.get("message")
        if self.status >= 400 and self.body_kind == "text":
            return self.text.strip().splitlines()[0]
        return None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def to_curl(self) -> str:
        """A curl command sending the same method, URL, headers and body bytes (secrets masked)."""
        return to_curl(self.request)

    def to_text(self) -> str:
        """Deterministic plain text, secrets masked (rendered by helpers.display)."""
        return _renderer("text")(self)

    def _repr_html_(self) -> str:
        return _renderer("html")(self)

    # Deterministic (no timings, no Date header), so a notebook's committed output can be compared.
    def __repr__(self) -> str:
        return self.to_text()

    __str__ = __repr__


# Rendering is display's job and data flows one way (docs/architecture.md): wire never imports
# display.
# helpers.display registers its renderers here when it is imported; `_renderer` loads the module
# named in RENDERER_MODULE by name the first time an Exchange is shown before that.
RENDERER_MODULE = "helpers.display"
_RENDERERS: dict[str, Callable[[Exchange], str]] = {}


def register_renderer(kind: str, render: Callable[[Exchange], str]) -> None:
    """Install how exchanges are shown: kind "text" (repr, to_text) or "html" (notebooks)."""
    _RENDERERS[kind] = render


def _renderer(kind: str) -> Callable[[Exchange], str]:
    if kind not in _RENDERERS:
        importlib.import_module(RENDERER_MODULE)
    return _RENDERERS[kind]


def resolve_url(path_or_url: str, base_url: str | None = None) -> str:
    """An absolute URL: a full URL is kept, a path is joined to the kit's server URL."""
    if "://" in path_or_url:
        return path_or_url
    base = base_url or config.base_url()
    if not base:
        raise ServerUnreachable(
            "No MLflow server is known yet: start one with `python -m helpers serve` "
            "(or run the setup cell of 00_start_here.ipynb), then try again."
        )
    return base.rstrip("/") + "/" + path_or_url.lstrip("/")


def send(
    path_or_url: str,
    *,
    method: str = "POST",
    headers: Mapping[str, str | None] | None = None,
    json: Any = None,
    data: bytes | str | Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    base_url: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    session: requests.Session | None = None,
) -> Exchange:
    """Send a request the way `requests.request` would and return the recorded `Exchange`.

    A header given as None is not sent, even one `requests` would add itself. Failures to reach the server
    raise `ServerUnreachable` with one sentence naming the URL and what to do.
    """
    url = resolve_url(path_or_url, base_url)
    http = session or loopback_aware_session(url)
    deadline = Deadline(timeout)  # one for the whole exchange: requests' timeout is per read
    if session is None:
        deadline.mount(http)
    started = time.perf_counter()
    wanted = dict(headers or {})
    wanted = {**_tracking_auth(url, wanted), **wanted}  # classroom credentials, see _tracking_auth
    try:
        prepared = http.prepare_request(requests.Request(
            method, url, headers={k: v for k, v in wanted.items() if v is not None},
            json=json, data=data, params=params))
        for name in (k for k, v in wanted.items() if v is None):
            prepared.headers.pop(name, None)  # also headers requests itself adds (json= sets one)
        response = http.send(prepared, timeout=timeout, allow_redirects=False, stream=True)
        try:
            body = deadline.read(response)
        finally:
            response.close()
    except requests.exceptions.InvalidJSONError:
        raise  # the body, not the server: NaN or a set in json= (the caller says so, see exercises)
    except (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema,
            requests.exceptions.MissingSchema) as exc:
        raise ServerUnreachable(
            f"{_safe_url(url)!r} is not a usable http(s) URL ({exc.__class__.__name__}): write it "
            "like http://127.0.0.1:5000/api/2.0/mlflow/runs/log-metric."
        ) from None
    except (OSError, urllib3.exceptions.HTTPError, Late) as exc:  # requests' errors are OSErrors
        if deadline.fired or isinstance(exc, (requests.exceptions.Timeout, TimeoutError, Late,
                                              urllib3.exceptions.TimeoutError)):
            raise ServerUnreachable(
                f"{_safe_url(url)} did not answer within {timeout:g} s: the server may be busy or "
                "stuck; check it with `python -m helpers status`, restart it if needed."
            ) from None
        raise ServerUnreachable(
            f"Could not connect to {_safe_url(url)}: no server is answering there. Check the "
            "address, or start the kit's server with `python -m helpers serve`."
        ) from None
    finally:
        deadline.cancel()
        if session is None:
            http.close()
    elapsed_ms = (time.perf_counter() - started) * 1000
    return exchange_from_response(response, elapsed_ms, answer=body)


def loopback_aware_session(url: str) -> requests.Session:
    """A `requests.Session` with the kit's rule for `url`: no HTTP(S)_PROXY for this machine."""
    http = requests.Session()
    if is_loopback(url):
        http.trust_env = False  # HTTP(S)_PROXY must never see a request to this machine
    return http


#: The whole of one read-only state lookup (preflight's `server=`), connection to last byte.
LOOKUP_TIMEOUT = 10.0


def mlflow_state(url: str, params: Mapping[str, str], *, session: requests.Session | None = None,
                 timeout: float | None = None) -> tuple[int, Any] | str:
    """(status, JSON) of a read-only GET that MLflow itself answered, else why not (one phrase).

    Sent by `send()`, so it keeps the kit's rules (no proxy for this machine, the learner's
    credentials, one overall deadline; on a caller's `session`, whose adapters are left as they
    are, the deadline bounds the body and `timeout` each wait before it). Only MLflow's answers
    count: a 200 with a JSON object or an error in MLflow's JSON format (`error_code`); an empty
    404 from a proxy or another server is not "not found"."""
    try:
        answer = send(url, method="GET", params=params, session=session,
                      timeout=LOOKUP_TIMEOUT if timeout is None else timeout)
    except ServerUnreachable as exc:
        return str(exc).split(": ", 1)[0]
    data = answer.json
    if (answer.status == 200 and isinstance(data, dict)) or answer.body_kind == "mlflow-json":
        return answer.status, data
    what = {"empty": "an empty body"}.get(answer.body_kind, f"a {answer.body_kind} body")
    return (f"it answered {answer.status} {answer.reason} with {what}, not MLflow's JSON"
            + {401: " (the server wants a user name and password)",
               403: " (these credentials may not read it)"}.get(answer.status, ""))


def exchange_from_response(response: requests.Response, elapsed_ms: float | None = None, *,
                           answer: bytes | None = None) -> Exchange:
    """Build an `Exchange` from a `requests` response (its `.request` is what was sent);
    `answer` is the response body when the caller read it itself (send, within its deadline)."""
    prepared = response.request
    body = prepared.body or b""
    if isinstance(body, str):
        body = body.encode("utf-8")
    # http.client adds Host itself; record it so the request is shown as the server saw it.
    sent_headers = list(prepared.headers.items())
    if _find(sent_headers, "Host") is None:  # without any user:pass@, as http.client sends it
        sent_headers.insert(0, ("Host", redact.host_of(prepared.url or "")))
    return Exchange(
        request=SentRequest(method=prepared.method or "GET", url=prepared.url or "",
                            headers=tuple(sent_headers), body=bytes(body)),
        status=response.status_code,
        reason=response.reason or "",
        headers=tuple(response.headers.items()),
        body=(response.content if answer is None else answer) or b"",
        elapsed_ms=elapsed_ms if elapsed_ms is not None else response.elapsed.total_seconds() * 1000,
    )


# Headers curl sets on its own (or that depend on the client): not repeated in the command.
_CLIENT_HEADERS = frozenset({"host", "content-length", "user-agent", "accept-encoding",
                             "connection", "accept"})


def to_curl(request: SentRequest, *, show_secrets: bool = False) -> str:
    """A POSIX-shell curl command that sends the same method, URL, headers and body bytes.

    Secrets (credentials, token-like headers and query values, password-like JSON fields) are
    masked unless `show_secrets=True`. A body that cannot be a shell argument unchanged (a NUL
    byte, not UTF-8, a leading "@" that curl would read as a file name, or too long for one
    argument) goes to curl's stdin as base64, decoded by `base64 -d`: byte for byte, any size.
    """
    url = request.url if show_secrets else _safe_url(request.url)
    parts = ["curl", "-sS", "-X", request.method, _quote(url)]
    names = {name.lower() for name, _ in request.headers}
    headers = request.headers if show_secrets else tuple(mask_headers(request.headers))
    for name, value in headers:
        if name.lower() in _CLIENT_HEADERS and not (
            name.lower() == "host" and value != redact.host_of(request.url)
        ):
            continue
        # curl reads "Name:" with nothing after the colon as "remove this header"; "Name;" is
        # its spelling for a header sent with an empty value.
        parts += ["-H", _quote(f"{name}: {value}" if value.strip() else f"{name};")]
    if not (request.body or request.method in ("POST", "PUT", "PATCH")):
        return " ".join(parts)
    if "content-type" not in names:
        # curl would add "Content-Type: application/x-www-form-urlencoded" to a body;
        # an empty "Content-Type:" header tells it to send none, as the original did.
        parts += ["-H", _quote("Content-Type:")]
    body = request.body
    if not show_secrets:
        text = body.decode("utf-8", errors="replace")
        shown = redact.mask_body(text)
        if shown != text:
            body = shown.encode("utf-8")
    try:
        inline = body.decode("utf-8")
    except UnicodeDecodeError:
        inline = None
    if (inline is not None and "\0" not in inline and not inline.startswith("@")
            and len(body) <= CURL_INLINE_LIMIT):
        return " ".join(parts + ["--data-binary", _quote(inline)])
    encoded = base64.encodebytes(body).decode("ascii")
    return (" ".join(["base64", "-d", "<<'BODY'", "|", *parts, "--data-binary", "@-"])
            + "\n" + encoded + "BODY")


def _quote(text: str) -> str:
    """Single-quote for a POSIX shell, always (easier to read than shlex's bare words)."""
    return f"'{text}'" if "'" not in text else shlex.quote(text)


def mask_headers(headers: tuple[tuple[str, str], ...]) -> list[tuple[str, str]]:
    """Headers with secret values replaced by a mask, for anything that prints them."""
    return redact.mask_headers(headers)


def is_loopback(url: str) -> bool:
    """True when `url` names this machine: no HTTP proxy applies (see config.is_loopback)."""
    return config.is_loopback(url)


# Classroom mode (helpers/classroom.py) may run MLflow's basic-auth app. Credentials come from
# MLflow's own variables, in MLflow's order (user name + password, else token), else from the
# learner's netrc entry (helpers/room.py, what plain `requests` would send), and go only to
# the MLFLOW_TRACKING_URI server; a caller's own Authorization header (or None) wins. They are
# never shown: helpers.redact masks Authorization in to_curl and in every display.
def _tracking_auth(url: str, given: Mapping[str, str | None]) -> dict[str, str]:
    """The Authorization header for the configured tracking server, or nothing."""
    tracking = config.external_tracking_uri()
    if not tracking or any(name.lower() == "authorization" for name in given):
        return {}
    target, home = urlsplit(url), urlsplit(tracking)
    if (target.scheme.lower(), target.netloc.lower()) != (home.scheme.lower(), home.netloc.lower()):
        return {}
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    password = os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if user and password:
        pair = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        return {"Authorization": f"Basic {pair}"}
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    if token:
        return {"Authorization": f"Bearer {token}"}
    from helpers import room  # the learner's netrc entry, as `python -m helpers join` wrote it

    found = room.credentials(url)
    if found:
        pair = base64.b64encode(f"{found[0]}:{found[1]}".encode()).decode("ascii")
        return {"Authorization": f"Basic {pair}"}
    return {}


def tracking_auth(url: str) -> dict[str, str]:
    """The Authorization header the kit sends to `url` (empty unless it is the configured
    tracking server and credentials are set): for kit code that talks to it without `send`."""
    return _tracking_auth(url, {})


def _safe_url(url: str) -> str:
    """The URL with credentials and secret query values masked."""
    return redact.mask_url(url)


def _find(headers: tuple[tuple[str, str], ...] | list[tuple[str, str]], name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers:
        if key.lower() == lowered:
            return value
    return None
