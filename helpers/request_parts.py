"""Build the exact request a learner's choices describe: method, path, headers and body bytes.

Why a module of its own: the Request Lab's controls and the notebooks' code cells must produce
byte-for-byte the same request for the same choices, so both go through `build()` here and send
the result with `helpers.wire.send` (`send_parts`). Nothing in this module talks to the server.

A field's value is written as JSON text, exactly as it will appear in the body ("abc" with
quotes is a string, 0.95 a number, null is null); text that is not valid JSON (abc, a run id
typed without quotes) is sent as a string, so a learner never has to fight the quotes.
"""

from __future__ import annotations

import functools
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

from helpers import runs
from helpers.model_table import SECONDS_THRESHOLD
from helpers.wire import Exchange, SentRequest, resolve_url, send

API = "/api/2.0/mlflow"

#: The lab's endpoints: picker label -> path.
ENDPOINTS: dict[str, str] = {
    "log-metric": f"{API}/runs/log-metric",
    "log-param": f"{API}/runs/log-parameter",
    "log-batch": f"{API}/runs/log-batch",
    "runs/create": f"{API}/runs/create",
    "experiments/create": f"{API}/experiments/create",
}
METHODS = ("POST", "GET", "PUT")
NO_CONTENT_TYPE = "(none)"
CONTENT_TYPES = ("application/json", "application/json; charset=utf-8", "text/plain",
                 "application/x-www-form-urlencoded", NO_CONTENT_TYPE)
BODY_STYLES = ("valid JSON", "unquoted keys", "trailing comma", "single quotes", "double-encoded",
               "empty")

#: A well-formed run id (32 hex digits) that no server has: the answer is 404, not 400.
NONEXISTENT_RUN_ID = "0123456789abcdef0123456789abcdef"


class Omit:
    """Marker a quick choice returns to leave its field out of the body."""

    def __repr__(self) -> str:
        return "OMIT"


OMIT = Omit()


@dataclass(frozen=True)
class LabContext:
    """The live ids a request can refer to (the lab's own experiment and run)."""

    run_id: str
    experiment_id: str


@dataclass(frozen=True)
class FieldSpec:
    """One top-level body field: its name, protobuf type, and whether the server requires it."""

    name: str
    type: str
    repeated: bool = False
    #: The handler refuses a request without it (not: the proto documents it).
    required: bool = False
    #: Milliseconds since the epoch.
    timestamp: bool = False


@functools.cache
def fields_for(endpoint: str) -> tuple[FieldSpec, ...]:
    """The endpoint's top-level fields, from the catalog (MLflow's own protobuf descriptors)."""
    from helpers import catalog

    found = catalog.endpoint(ENDPOINTS[endpoint])
    return tuple(FieldSpec(f.name, f.type, f.repeated, f.enforced, f.timestamp)
                 for f in found.fields)


def default_payload(endpoint: str, ctx: LabContext) -> dict[str, Any]:
    """The known-good body for `endpoint`: the fields a working request sends, in this order."""
    now = runs.now_ms()
    if endpoint == "log-metric":
        return {"run_id": ctx.run_id, "key": "accuracy", "value": 0.95, "timestamp": now,
                "step": 0}
    if endpoint == "log-param":
        return {"run_id": ctx.run_id, "key": "learning_rate", "value": "0.01"}
    if endpoint == "log-batch":
        return {"run_id": ctx.run_id,
                "metrics": [{"key": "accuracy", "value": 0.95, "timestamp": now, "step": 0}],
                "params": [{"key": "batch_size", "value": "32"}], "tags": []}
    if endpoint == "runs/create":
        return {"experiment_id": ctx.experiment_id, "start_time": now}
    if endpoint == "experiments/create":
        return {"name": runs.unique_name("request-lab")}
    raise KeyError(f"Unknown lab endpoint {endpoint!r}; choose one of {', '.join(ENDPOINTS)}.")


def empty_value(spec: FieldSpec) -> Any:
    """A placeholder value for a field the known-good request leaves out."""
    if spec.repeated:
        return []
    return 0 if spec.type in ("int64", "int32", "double", "float") else ""


#: Quick choices that teach something, by field name: label -> value (or OMIT).
QUICK_CHOICES: dict[str, dict[str, Callable[[LabContext], Any]]] = {
    "run_id": {"live run": lambda ctx: ctx.run_id,
               "nonexistent": lambda ctx: NONEXISTENT_RUN_ID,
               "empty": lambda ctx: ""},
    "timestamp": {"now in ms": lambda ctx: runs.now_ms(),
                  "seconds as float": lambda ctx: time.time(),
                  "omit": lambda ctx: OMIT},
    "value": {"number": lambda ctx: 0.95, '"abc"': lambda ctx: "abc", "null": lambda ctx: None},
}
QUICK_CHOICES["start_time"] = QUICK_CHOICES["timestamp"]


def value_text(value: Any) -> str:
    """How a value is written in a field's box: its JSON text."""
    return json.dumps(value)


def parse_value(text: str) -> Any:
    """A field box's text as a value: JSON when it parses, else the text itself as a string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


@dataclass(frozen=True)
class FieldChoice:
    """One field row: sent or not, and its value as JSON text."""

    include: bool
    text: str


@dataclass(frozen=True)
class Choices:
    """Everything a learner can choose; `build(choices)` turns it into one exact request."""

    endpoint: str = "log-metric"
    method: str = "POST"
    content_type: str = "application/json"
    body_style: str = "valid JSON"
    fields: Mapping[str, FieldChoice] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        """The body's fields as values, in row order (only the included ones)."""
        return {name: parse_value(c.text) for name, c in self.fields.items() if c.include}


def default_choices(endpoint: str, ctx: LabContext) -> Choices:
    """The known-good request for `endpoint`: every field row, the needed ones ticked."""
    specs = fields_for(endpoint)
    good = default_payload(endpoint, ctx)
    rows = {s.name: FieldChoice(s.name in good, value_text(good.get(s.name, empty_value(s))))
            for s in specs}
    for name, value in good.items():  # a field the protos do not list (never expected)
        rows.setdefault(name, FieldChoice(True, value_text(value)))
    return Choices(endpoint=endpoint, fields=rows)


@dataclass(frozen=True)
class RequestParts:
    """One request, ready to send: what the lab previews, preflight checks and wire sends."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    #: The fields the body was written from (also for a double-encoded or broken body).
    payload: dict[str, Any]


def render_body(payload: Mapping[str, Any], style: str) -> bytes:
    """The body bytes for `payload` written in one of `BODY_STYLES`."""
    if style == "valid JSON":
        text = json.dumps(payload)
    elif style == "unquoted keys":
        text = _literal(payload, key_quote="", string_quote='"')
    elif style == "trailing comma":
        text = _literal(payload, key_quote='"', string_quote='"', trailing=",")
    elif style == "single quotes":
        text = _literal(payload, key_quote="'", string_quote="'")
    elif style == "double-encoded":
        text = json.dumps(json.dumps(payload))
    elif style == "empty":
        text = ""
    else:
        raise ValueError(f"Unknown body style {style!r}; choose one of {', '.join(BODY_STYLES)}.")
    return text.encode("utf-8")


def _literal(value: Any, *, key_quote: str, string_quote: str, trailing: str = "") -> str:
    """JSON-like text with the given quoting; `trailing` goes before the outermost `}` only."""
    def quote(text: str, mark: str) -> str:
        if mark == '"':
            return json.dumps(text)
        return mark + text.replace("\\", "\\\\").replace(mark, "\\" + mark) + mark if mark else text

    if isinstance(value, Mapping):
        items = [f"{quote(str(k), key_quote)}: "
                 f"{_literal(v, key_quote=key_quote, string_quote=string_quote)}"
                 for k, v in value.items()]
        return "{" + ", ".join(items) + (trailing if items else "") + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v, key_quote=key_quote, string_quote=string_quote)
                               for v in value) + "]"
    if isinstance(value, str):
        return quote(value, string_quote)
    return json.dumps(value)


def build(choices: Choices) -> RequestParts:
    """The exact request for `choices`: Content-Type as picked (or none) and the body bytes."""
    if choices.endpoint not in ENDPOINTS:
        raise KeyError(f"Unknown lab endpoint {choices.endpoint!r}; choose one of "
                       f"{', '.join(ENDPOINTS)}.")
    payload = choices.payload()
    headers = {} if choices.content_type == NO_CONTENT_TYPE else {"Content-Type": choices.content_type}
    return RequestParts(method=choices.method, path=ENDPOINTS[choices.endpoint], headers=headers,
                        body=render_body(payload, choices.body_style), payload=payload)


def preview(parts: RequestParts, base_url: str) -> SentRequest:
    """The request exactly as `send_parts` will put it on the wire, without sending it.

    `requests` prepares it the same way `send` does (same session defaults), so the headers
    shown (Content-Length, no Content-Type when none was picked, ...) are the real ones.
    """
    url = resolve_url(parts.path, base_url)
    with requests.Session() as session:
        prepared = session.prepare_request(requests.Request(parts.method, url, headers=parts.headers,
                                                            data=parts.body))
    headers = [("Host", urlsplit(url).netloc), *prepared.headers.items()]
    body = prepared.body or b""
    return SentRequest(method=prepared.method or parts.method, url=prepared.url or url,
                       headers=tuple(headers),
                       body=body.encode("utf-8") if isinstance(body, str) else bytes(body))


def send_parts(parts: RequestParts, *, base_url: str | None = None,
               timeout: float = 10.0) -> Exchange:
    """Send `parts` with `helpers.wire.send` (the body as raw bytes, headers exactly as given)."""
    return send(parts.path, method=parts.method, headers=parts.headers, data=parts.body,
                base_url=base_url, timeout=timeout)


def describe_changes(choices: Choices, baseline: Choices) -> list[str]:
    """What differs from the known-good request, in words, e.g. `Content-Type: (none)`."""
    out = []
    if choices.endpoint != baseline.endpoint:
        out.append(f"endpoint: {choices.endpoint}")
    if choices.method != baseline.method:
        out.append(f"method: {choices.method}")
    if choices.content_type != baseline.content_type:
        out.append(f"Content-Type: {choices.content_type}")
    if choices.body_style != baseline.body_style:
        out.append(f"body: {choices.body_style}")
    for name, now in choices.fields.items():
        before = baseline.fields.get(name)
        if before is None or now.include != before.include:
            out.append(f"{name} {'sent' if now.include else 'omitted'}"
                       + (f" = {_clip(now.text)}" if now.include else ""))
        elif now.include and not _same_value(name, now.text, before.text):
            out.append(f"{name} = {_clip(now.text)}")
    return out


def _same_value(name: str, text: str, before: str) -> bool:
    """Equal values, or two millisecond timestamps (a fresh "now" is not a change)."""
    if text == before:
        return True
    if any(s.timestamp and s.name == name for e in ENDPOINTS for s in fields_for(e)):
        new, old = parse_value(text), parse_value(before)
        return all(isinstance(v, int) and not isinstance(v, bool) and v >= SECONDS_THRESHOLD
                   for v in (new, old))
    return False


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def choices_from(request: Any, ctx: LabContext) -> tuple[Choices, list[str]]:
    """The lab's choices for a request someone pasted (an `HttpRequest` from
    helpers.request_input), and what the lab cannot show of it, in words.

    Every field row of the endpoint is there, ticked when the body sends it; a field the lab
    has no row for keeps a row of its own. Raises LabError when the lab has no such endpoint
    or cannot read the body as fields.
    """
    from helpers.errors import LabError

    path = urlsplit(request.url).path
    endpoint = next((name for name, p in ENDPOINTS.items() if p == path), None)
    if endpoint is None:
        raise LabError(f"The lab has no controls for {path}: it covers "
                       f"{', '.join(ENDPOINTS)}. Check the request with helpers.check instead.")
    notes: list[str] = []
    content_type = request.header("Content-Type")
    content_type = NO_CONTENT_TYPE if content_type is None else content_type
    text = request.body.decode("utf-8", errors="replace").strip()
    style, payload = _read_body(text)
    if payload is None:
        raise LabError("The lab cannot show this body as fields (it is neither JSON nor a "
                       "Python or JavaScript literal): check it with helpers.check instead.")
    if not isinstance(payload, dict):
        raise LabError("The body is not a JSON object, so the lab has no fields to show: "
                       "check it with helpers.check instead.")
    rows = {s.name: FieldChoice(s.name in payload, value_text(payload.get(s.name, empty_value(s))))
            for s in fields_for(endpoint)}
    for name, value in payload.items():
        if name not in rows:
            rows[name] = FieldChoice(True, value_text(value))
    method = request.method.upper()
    if method not in METHODS:
        notes.append(f"the method {method} has no button: shown as POST")
        method = "POST"
    extra = [k for k, _ in request.headers if k.lower() not in _CLIENT_HEADERS]
    if extra:
        notes.append(f"headers the lab does not send: {', '.join(dict.fromkeys(extra))}")
    return Choices(endpoint=endpoint, method=method, content_type=content_type,
                   body_style=style, fields=rows), notes


#: Headers every client adds by itself (curl's Accept, a browser's User-Agent): not the lab's business.
_CLIENT_HEADERS = frozenset({"content-type", "host", "content-length", "accept", "user-agent",
                             "accept-encoding", "accept-language", "connection"})


def _read_body(text: str) -> tuple[str, Any]:
    """(body style, payload) for a body's text: which of BODY_STYLES writes it, and its fields."""
    from helpers.request_fixes import literal_body

    if not text:
        return "empty", {}
    try:
        value = json.loads(text)
    except ValueError:
        value = literal_body(text)
        if value is None:
            return "valid JSON", None
        if re.search(r"[{,]\s*[A-Za-z_]\w*\s*:", text):
            return "unquoted keys", value
        if re.search(r",\s*}\s*$", text) and '"' in text and "'" not in text:
            return "trailing comma", value
        return "single quotes", value
    if isinstance(value, str):
        try:
            return "double-encoded", json.loads(value)
        except ValueError:
            return "valid JSON", None
    return "valid JSON", value
