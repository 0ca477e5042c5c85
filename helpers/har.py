"""Exchanges as a HAR 1.2 file (HTTP Archive): open a recorded session in browser devtools,
mitmproxy, Postman or any HAR viewer.

Why HAR: it is the one format every HTTP tool reads. Secrets are masked by the kit's one masking
rule (helpers/redact.py) as in every other display: headers, cookies, URL credentials and token
query values, request and response bodies (JSON fields, nested or not, and form fields) and the
redirect target, so a HAR file can be shared.

    with Recorder() as recorder:
        ...
    recorder.save_har("session.har")

Spec: http://www.softwareishard.com/blog/har-12-spec/ (W3C draft of the same).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from datetime import datetime, timezone
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from helpers.redact import mask_body, mask_url
from helpers.wire import Exchange, mask_headers

CREATOR = {"name": "MLflow 400 Lab", "version": "0.1.0"}
_NO_START = ("No start time was given for this exchange; startedDateTime is the export time and "
             "entries are in the order the answers were sent.")


def to_har(exchanges: Iterable[Exchange], *, started: Iterable[datetime | None] | None = None,
           comment: str = "") -> dict[str, Any]:
    """A HAR 1.2 `{"log": ...}` document for these exchanges, in order.

    `started` gives each exchange's start time when the caller knows it; without it every entry
    carries the export time, and its comment says so.
    """
    exchanges = list(exchanges)
    starts = list(started) if started is not None else [None] * len(exchanges)
    now = datetime.now(timezone.utc)
    log: dict[str, Any] = {"version": "1.2", "creator": dict(CREATOR), "pages": [],
                           "entries": [_entry(ex, start, now) for ex, start in zip(exchanges, starts)]}
    if comment:
        log["comment"] = comment
    return {"log": log}


def save(exchanges: Iterable[Exchange], path: str | Path, **kwargs: Any) -> Path:
    """Write `to_har(...)` as UTF-8 JSON; returns the path."""
    target = Path(path)
    target.write_text(json.dumps(to_har(exchanges, **kwargs), indent=2, ensure_ascii=False),
                      encoding="utf-8")
    return target


def _entry(ex: Exchange, start: datetime | None, now: datetime) -> dict[str, Any]:
    elapsed = round(max(ex.elapsed_ms, 0.0), 3)
    entry: dict[str, Any] = {
        "startedDateTime": (start or now).isoformat(timespec="milliseconds"),
        "time": elapsed,
        "request": _request(ex),
        "response": _response(ex),
        "cache": {},
        # The kit measures one span per exchange (request sent -> answer read): all of it
        # is reported as `wait`; HAR says -1 for phases that were not measured.
        "timings": {"blocked": -1, "dns": -1, "connect": -1, "send": 0, "wait": elapsed,
                    "receive": 0, "ssl": -1},
    }
    if start is None:
        entry["comment"] = _NO_START
    return entry


def _request(ex: Exchange) -> dict[str, Any]:
    sent = ex.request
    url = mask_url(sent.url)
    headers = mask_headers(sent.headers)
    out: dict[str, Any] = {
        "method": sent.method,
        "url": url,
        "httpVersion": "HTTP/1.1",
        "cookies": _cookies(sent.header("Cookie")),
        "headers": [{"name": k, "value": v} for k, v in headers],
        "queryString": [{"name": k, "value": v}
                        for k, v in parse_qsl(urlsplit(url).query, keep_blank_values=True)],
        "headersSize": -1,
        "bodySize": len(sent.body),
    }
    if sent.body or sent.method in ("POST", "PUT", "PATCH"):
        text, encoded = _text(sent.body)
        out["postData"] = {"mimeType": sent.header("Content-Type") or "", "params": [],
                           "text": text}
        if encoded:
            out["postData"]["comment"] = "body is not UTF-8: text holds it in base64"
    _no_content_type(out, sent.header("Content-Type"))
    return out


def _no_content_type(request: dict[str, Any], content_type: str | None) -> None:
    """HAR requires postData.mimeType, and converters turn it into a header: without a
    Content-Type an empty body gets no postData, and a body's says none was sent."""
    post = request.get("postData")
    if content_type is not None or post is None:
        return
    if not post["text"]:
        del request["postData"]
        return
    note = "no Content-Type header was sent: replay without one"
    post["comment"] = f"{post['comment']}; {note}" if post.get("comment") else note


def _response(ex: Exchange) -> dict[str, Any]:
    text, encoded = _text(ex.body)
    content: dict[str, Any] = {"size": len(ex.body), "mimeType": ex.content_type or "",
                               "text": text}
    if encoded:
        content["encoding"] = "base64"
    return {
        "status": ex.status,
        "statusText": ex.reason,
        "httpVersion": "HTTP/1.1",
        "cookies": [],
        "headers": [{"name": k, "value": v} for k, v in mask_headers(ex.headers)],
        "content": content,
        "redirectURL": mask_url(ex.header("Location") or ""),
        "headersSize": -1,
        "bodySize": len(ex.body),
    }


def _text(body: bytes) -> tuple[str, bool]:
    """The body for the file, secrets masked: UTF-8 text, else base64 of the bytes (masked through
    latin-1, which maps every byte to one character and back, so only the secrets change)."""
    try:
        return mask_body(body.decode("utf-8")), False
    except UnicodeDecodeError:
        masked = mask_body(body.decode("latin-1")).encode("latin-1", errors="replace")
        return base64.b64encode(masked).decode("ascii"), True


def _cookies(header: str | None) -> list[dict[str, str]]:
    """Cookie names only: their values are secrets (masked like every display of the kit)."""
    if not header:
        return []
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except Exception:  # a malformed Cookie header is shown in headers (masked), not parsed
        return []
    return [{"name": name, "value": "****"} for name in jar]


__all__ = ["save", "to_har"]
