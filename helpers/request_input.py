"""Turn what a user pastes into the exact requests it describes: a curl command
(helpers/curl_command.py), a raw HTTP/1.1 request, a HAR file, or plain flags.

Raw HTTP is read by h11 (the HTTP/1.1 parser uvicorn uses under MLflow), a HAR file with `json`.
Nothing here talks to a server.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from helpers.errors import InputError

#: Paths the kit checks in a HAR file: MLflow's REST API and the UI's ajax copy of it.
MLFLOW_PREFIXES = ("/api/", "/ajax-api/")


@dataclass(frozen=True)
class HttpRequest:
    """One request as it would go on the wire: method, absolute URL, headers in order, body."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    #: Where it came from ("curl", "raw HTTP", "HAR entry 3", "flags").
    source: str = ""
    #: What the reader ignored or assumed, in words (e.g. "-k: TLS options do not change the request").
    notes: tuple[str, ...] = field(default=(), compare=False)

    def header(self, name: str) -> str | None:
        """The last value of header `name` (case-insensitive), or None."""
        found = None
        for key, value in self.headers:
            if key.lower() == name.lower():
                found = value
        return found

    def header_dict(self) -> dict[str, str]:
        """Headers as `requests` takes them (one value per name, the last one wins)."""
        out: dict[str, str] = {}
        for key, value in self.headers:
            for existing in [k for k in out if k.lower() == key.lower()]:
                del out[existing]
            out[key] = value
        return out


# ---------------------------------------------------------------------------- raw HTTP/1.1


def parse_raw_http(data: bytes | str, *, base_url: str | None = None) -> HttpRequest:
    """A raw HTTP/1.1 request (as pasted from a log or captured on the wire), read with h11.

    Lines may end in CRLF or LF. A body shorter than its Content-Length (a truncated paste) is
    kept as it is, with a note. The URL is built from the Host header (`base_url` when absent).
    """
    import h11

    raw = data.encode("utf-8") if isinstance(data, str) else data
    raw = raw.lstrip(b"\r\n").removeprefix("\ufeff".encode())
    head, sep, rest = raw.partition(b"\r\n\r\n")
    if not sep:
        head, sep, rest = raw.partition(b"\n\n")
    head = head.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") + b"\r\n\r\n"
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(head + rest)
    notes: list[str] = []
    try:
        event = conn.next_event()
        if not isinstance(event, h11.Request):
            raise InputError("Cannot read the input: it is not a complete HTTP request "
                             "(start with a line like POST /api/2.0/mlflow/runs/log-metric HTTP/1.1).")
        chunks: list[bytes] = []
        nxt = conn.next_event()
        while isinstance(nxt, h11.Data):
            chunks.append(bytes(nxt.data))
            nxt = conn.next_event()
        body = b"".join(chunks)
        if nxt is h11.NEED_DATA:  # fewer bytes than Content-Length: a truncated paste
            body = rest
            notes.append("the body is shorter than its Content-Length: kept as pasted")
        elif not body and rest.strip():
            body = rest.rstrip(b"\r\n")
            notes.append("no Content-Length: the text after the headers is taken as the body")
    except h11.RemoteProtocolError as exc:
        first = head.split(b"\r\n", 1)[0].decode("latin-1")
        raise InputError(f"Cannot read the input as HTTP: {exc} (first line: {first!r}).") from None
    headers = tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in event.headers.raw_items())
    target = event.target.decode("latin-1")
    host = next((v for k, v in headers if k.lower() == "host"), None)
    if "://" in target:
        url = target
    elif host:
        url = f"http://{host}{target}"
    elif base_url:
        url = base_url.rstrip("/") + target
    else:
        url = "http://localhost" + target
        notes.append("no Host header: http://localhost assumed")
    return HttpRequest(event.method.decode("ascii"), url, headers, body, "raw HTTP", tuple(notes))


# ---------------------------------------------------------------------------------------- HAR


def parse_har(document: Mapping, *, everything: bool = False) -> list[HttpRequest]:
    """The MLflow requests (paths under /api/ or /ajax-api/) of a HAR 1.2 document, in order.

    HTTP/2 pseudo-headers (`:authority`, ...) and Chromium's `Content-Length` are dropped (the
    body is the text itself); a base64 body (`postData.encoding`) is decoded.
    """
    try:
        entries = document["log"]["entries"]
        if not isinstance(entries, list):
            raise TypeError
    except (KeyError, TypeError):
        raise InputError("Cannot read the input as HAR: no log.entries list in it. Export it "
                         "from devtools with 'Save all as HAR'.") from None
    out = []
    for n, entry in enumerate(entries, 1):
        try:
            request = entry["request"]
            url = request["url"]
            if not everything and not urlsplit(url).path.startswith(MLFLOW_PREFIXES):
                continue
            headers = tuple((h["name"], h["value"]) for h in request.get("headers", [])
                            if not h["name"].startswith(":") and h["name"].lower() != "content-length")
            post = request.get("postData") or {}
            text = post.get("text") or ""
            if post.get("encoding") == "base64" or "base64" in (post.get("comment") or ""):
                body = base64.b64decode(text)
            else:
                body = text.encode("utf-8")
            out.append(HttpRequest(request["method"], url, headers, body, f"HAR entry {n}"))
        except (KeyError, TypeError, ValueError):
            raise InputError(f"Cannot read the input as HAR: entry {n} has no usable request "
                             "(method, url, headers).") from None
    return out


# ------------------------------------------------------------------------ flags and detection


def from_flags(method: str | None, url: str, headers: Iterable[str] = (),
               data: str | None = None) -> HttpRequest:
    """A request from --method/--url/--header/--data, without curl's own additions."""
    pairs = []
    for h in headers:
        name, sep, value = h.partition(":")
        if not sep:
            raise InputError(f"Cannot read --header {h!r}: write it as 'Name: value'.")
        pairs.append((name.strip(), value.strip()))
    body = (data or "").encode("utf-8")
    if "://" not in url:
        url = "http://" + url if not url.startswith("/") else "http://localhost" + url
    return HttpRequest((method or ("POST" if data is not None else "GET")).upper(), url,
                       tuple(pairs), body, "flags")


def read_input(data: bytes | str, cwd: str | Path | None = None, stdin: bytes | None = None,
               name: str = "") -> list[HttpRequest]:
    """Every request in `data`, whichever form it is: HAR (JSON), raw HTTP, or curl."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    text = raw.decode("utf-8", errors="replace").lstrip("\ufeff")
    stripped = text.lstrip()
    if stripped.startswith("{") or name.endswith(".har"):
        try:
            document = json.loads(stripped)
        except ValueError as exc:
            raise InputError(f"Cannot read the input: it starts like a HAR file (JSON), but the "
                             f"JSON is broken: {exc}.") from None
        return parse_har(document)
    if re.match(r"[A-Z]+ \S+ HTTP/\d", stripped):
        return [parse_raw_http(raw.lstrip())]
    return parse_curl(text, cwd=cwd, stdin=stdin)


def parse_curl(text: str, *, cwd: str | Path | None = None,
               stdin: bytes | None = None) -> list[HttpRequest]:
    """The requests a curl command line sends: helpers/curl_command.py::parse_curl."""
    from helpers import curl_command

    return curl_command.parse_curl(text, cwd=cwd, stdin=stdin)


__all__ = ["HttpRequest", "InputError", "MLFLOW_PREFIXES", "from_flags", "parse_curl",
           "parse_har", "parse_raw_http", "read_input"]
