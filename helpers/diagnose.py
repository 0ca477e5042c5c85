"""Explain an answer from the server: what caused it, which check fired, and how to fix it.

`explain(exchange)` reads only the recorded `Exchange` (status, body kind, `error_code`, message
and the request as sent) and matches it against the one rule table `RULES` below, first match
wins. Rules were written from MLflow 3.17.2's server source and checked against a live server by
tests/test_diagnose.py. A 200 is also inspected: some bodies are accepted but stored wrongly, and
only the request can tell (a timestamp in seconds, a typo'd field, a bare NaN ...). For those the
request body is run through the same protobuf parser the server uses (`ParseDict` with unknown
fields ignored), from `mlflow.protos` via helpers.catalog: `mlflow.server` is never imported.
An answer no rule knows gets an honest "not recognised" diagnosis, never a guess.
"""

from __future__ import annotations

import difflib
import html
import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from helpers.display import Table, status_line
from helpers.wire import Exchange

# The texts of MLflow's own answers that are not MLflow JSON errors (mlflow/server/security_utils.py).
INVALID_HOST_MSG = "Invalid Host header - possible DNS rebinding attack detected"
CORS_BLOCKED_MSG = "Cross-origin request blocked"

#: Fields that hold milliseconds since the epoch; a value below this is seconds (before 1973).
TIMESTAMP_FIELDS = ("timestamp", "start_time", "end_time")
SECONDS_CEILING = 10**11
#: Where the store silently truncates a long value instead of refusing it (MLflow 3.17.2,
#: mlflow/utils/validation.py::_validate_param/_validate_tag with MLFLOW_TRUNCATE_LONG_VALUES).
TRUNCATED_AT = {"runs/log-parameter": 6000, "runs/set-tag": 8000}

_BODY_METHODS = ("POST", "PUT", "PATCH", "DELETE")
_HANDLERS = "mlflow/server/handlers.py"
_SCHEMA_CHECK = f"{_HANDLERS}::_validate_param_against_schema"
_ROUTING = "Flask URL routing (the routes mlflow/server/handlers.py::get_endpoints registers)"
_TYPE_WORDS = {"string": "a JSON string", "double": "a JSON number", "float": "a JSON number",
               "int64": "an integer", "int32": "an integer", "bool": "true or false",
               "message": "a JSON object", "enum": "one of the enum's names"}

_KIND_WORDS = {"html": "an HTML", "text": "a plain-text", "json": "a JSON", "empty": "an empty",
               "mlflow-json": "an MLflow JSON"}

SEVERITIES = ("ok", "info", "warning", "error")


@dataclass(frozen=True)
class Diagnosis:
    """One answer explained. `family` is a short stable id; `check` names the code that decided."""

    family: str
    severity: str  # "ok" | "info" | "warning" | "error"
    cause: str
    check: str
    fix: str
    status: int = 0
    reason: str = ""
    body_kind: str = ""
    error_code: str | None = None

    @property
    def recognised(self) -> bool:
        return self.family != "unrecognised"

    def row(self) -> list[Any]:
        """The field-guide row: status, body kind, error_code, family, cause, fix."""
        return [self.status, self.body_kind, self.error_code or "—", self.family, self.cause,
                self.fix]

    def __str__(self) -> str:
        mark = {"ok": "✓", "info": "i", "warning": "!", "error": "✗"}.get(self.severity, "?")
        head = f"{mark} {self.family} — {self.status} {self.reason}".rstrip()
        if self.error_code:
            head += f" · {self.error_code}"
        return "\n".join([head, f"  cause: {self.cause}", f"  check: {self.check}",
                          f"  fix:   {self.fix}"])

    __repr__ = __str__

    def _repr_html_(self) -> str:
        colour = {"ok": "#1a7f37", "info": "#0969da", "warning": "#9a6700",
                  "error": "#cf222e"}.get(self.severity, "#57606a")
        code = f" · {html.escape(self.error_code)}" if self.error_code else ""
        rows = "".join(
            f"<tr><th style='text-align:left;padding-right:8px;vertical-align:top'>{k}</th>"
            f"<td style='text-align:left'>{html.escape(v)}</td></tr>"
            for k, v in (("cause", self.cause), ("check", self.check), ("fix", self.fix)))
        return (f'<div class="lab400-diagnosis" style="border-left:4px solid {colour};'
                f'padding:4px 8px;margin:4px 0"><b>{html.escape(self.family)}</b> — '
                f"{html.escape(f'{self.status} {self.reason}'.strip())}{code}"
                f"<table>{rows}</table></div>")


# --------------------------------------------------------------------------------------------
# Facts: everything a rule may look at, computed once from the exchange.


@dataclass
class Facts:
    """What a rule can see: the answer, the request as sent, and the body as the server read it."""

    exchange: Exchange
    groups: dict[str, str] = field(default_factory=dict)  # captures of the rule's message regex

    @property
    def status(self) -> int:
        return self.exchange.status

    @property
    def kind(self) -> str:
        return self.exchange.body_kind

    @property
    def code(self) -> str | None:
        return self.exchange.error_code

    @cached_property
    def message(self) -> str:
        return (self.exchange.message or "").strip()

    @property
    def method(self) -> str:
        return self.exchange.request.method.upper()

    @cached_property
    def path(self) -> str:
        return urlsplit(self.exchange.request.url).path

    @cached_property
    def api_path(self) -> str:
        """The endpoint part of an MLflow REST path, e.g. "runs/log-metric" ("" otherwise)."""
        found = re.match(r"^/(?:ajax-)?api/2\.0/mlflow/(.+)$", self.path)
        return found.group(1) if found else ""

    def sent(self, header: str) -> str | None:
        return self.exchange.request.header(header)

    @property
    def raw(self) -> bytes:
        return self.exchange.request.body

    @cached_property
    def _parsed(self) -> tuple[Any, str | None, tuple[str, ...], bool]:
        """(body, parse problem, bare constants seen, double-encoded) — read as Flask does."""
        seen: list[str] = []

        def constant(name: str) -> float:
            seen.append(name)
            return float(name.replace("Infinity", "inf"))

        if not self.raw.strip():
            return None, "the body is empty", (), False
        try:
            body = json.loads(self.raw, parse_constant=constant)
        except ValueError as exc:
            return None, _describe_json_error(self.raw, exc), (), False
        if isinstance(body, str):  # handlers.py decodes a JSON string a second time
            try:
                return json.loads(body, parse_constant=constant), None, tuple(seen), True
            except ValueError:
                return body, None, tuple(seen), False
        return body, None, tuple(seen), False

    @property
    def body(self) -> Any:
        return self._parsed[0]

    @property
    def json_problem(self) -> str | None:
        """Why the body is not JSON, in words; None when it parses (or there is no body)."""
        return self._parsed[1] if self.method in _BODY_METHODS else None

    @property
    def constants(self) -> tuple[str, ...]:
        return self._parsed[2]

    @property
    def double_encoded(self) -> bool:
        return self._parsed[3]

    @property
    def fields(self) -> dict[str, Any]:
        return self.body if isinstance(self.body, dict) else {}

    @cached_property
    def endpoint(self) -> Any:
        """The catalog's Endpoint for this path and method, or None (not an MLflow endpoint)."""
        if not self.api_path:
            return None
        try:
            from helpers import catalog

            return catalog.endpoint(self.path, self.method)
        except (ImportError, LookupError):
            return None

    @cached_property
    def proto_stop(self) -> tuple[str, Any, str] | None:
        """(field, value, protobuf's reason) where the server's ParseDict stopped, if it did.

        The server catches the ParseError and carries on with the fields parsed *before* that one;
        everything from it onwards is left at its default (0, "").
        """
        if self.endpoint is None or not self.fields:
            return None
        try:
            from google.protobuf.json_format import ParseDict, ParseError
        except ImportError:
            return None
        for name, value in self.fields.items():
            try:
                ParseDict({name: value}, self.endpoint.request_class(), ignore_unknown_fields=True)
            except ParseError as exc:
                return name, value, _proto_reason(str(exc))
            except (TypeError, ValueError, AttributeError):
                return None
        return None

    def lost_after_stop(self) -> list[str]:
        """The sent fields the server dropped because parsing stopped (the stopping one first)."""
        if self.proto_stop is None:
            return []
        names = list(self.fields)
        return names[names.index(self.proto_stop[0]):]

    @cached_property
    def known_fields(self) -> dict[str, str]:
        """Every name the endpoint's protobuf message accepts (proto and JSON spelling) -> name."""
        if self.endpoint is None:
            return {}
        known = {}
        for f in self.endpoint.fields:
            known[f.name] = f.name
            known[f.json_name] = f.name
        return known

    def unknown_fields(self) -> list[str]:
        if not self.known_fields:
            return []
        return [k for k in self.fields if k not in self.known_fields]

    def field_type(self, name: str) -> str | None:
        if self.endpoint is None:
            return None
        for f in self.endpoint.fields:
            if name in (f.name, f.json_name):
                return "message" if f.message else ("enum" if f.enum_values else f.type)
        return None


def json_problem(body: bytes | str) -> str | None:
    """Why a request body is not JSON, in plain words (None when `json.loads` accepts it).

    The server never says it (it parses silently); a client can ask before sending.
    """
    raw = body.encode("utf-8") if isinstance(body, str) else body
    if not raw.strip():
        return "the body is empty"
    try:
        json.loads(raw)
    except ValueError as exc:
        return _describe_json_error(raw, exc)
    return None


def _proto_reason(text: str) -> str:
    """protobuf's ParseError text without its "Failed to parse ... field" prefix and path suffix."""
    text = re.sub(r"^Failed to parse \S+ field: ", "", text)
    return re.sub(r" at [\w.\[\]]+\.?$", "", text).strip()


def _describe_json_error(raw: bytes, exc: ValueError) -> str:
    """Why `json.loads` refused the body, in the words a learner would use."""
    if not isinstance(exc, json.JSONDecodeError):
        return "the body is not valid UTF-8 text"
    text, pos = exc.doc, exc.pos
    before = text[:pos].rstrip()[-1:] if text[:pos].strip() else ""
    here = text[pos:pos + 1]
    where = f"(line {exc.lineno}, column {exc.colno})"
    if here == "/":
        return f"a comment, which JSON does not allow {where}"
    if here == "'":
        return f"single-quoted strings, as Python's str(dict) writes them {where}"
    if exc.msg.startswith("Expecting property name"):
        if before == "," and here == "}":
            return f"a trailing comma before the closing brace {where}"
        return f"an unquoted key, which JSON does not allow {where}"
    if pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string"):
        return f"the body ends before the JSON does, as if cut off {where}"
    return f"not valid JSON: {exc.msg} {where}"


# --------------------------------------------------------------------------------------------
# The rule table. First match wins; `message` is a regex searched in the answer's message and
# its named groups fill `{placeholders}` in cause and fix (callables get the Facts instead).

Text = str | Callable[[Facts], str]


@dataclass(frozen=True)
class Rule:
    family: str
    severity: str
    when: Callable[[Facts], bool]
    cause: Text
    check: Text
    fix: Text
    message: str | None = None  # a regex the answer's message must match


def _mlflow_400(f: Facts) -> bool:
    return f.status == 400 and f.kind == "mlflow-json"


def _security_check(name: str) -> Callable[[Facts], str]:
    """Under uvicorn (the default since MLflow 3.3) the ASGI middleware decides, else Flask's."""
    def check(f: Facts) -> str:
        if (f.exchange.header("server") or "").lower() == "uvicorn":
            return f"mlflow/server/fastapi_security.py::{name}"
        return "mlflow/server/security.py::init_security_middleware"
    return check


def _allowed_methods(f: Facts) -> str:
    # Sorted: werkzeug builds Allow from a set, so its order changes from one server to the next.
    allow = sorted(m.strip() for m in (f.exchange.header("Allow") or "").split(","))
    allow = [m for m in allow if m and m not in ("OPTIONS", "HEAD")]
    if not allow and f.endpoint is not None:
        allow = list(f.endpoint.http_methods)
    return " or ".join(allow)


def _route_fix(f: Facts) -> str:
    hint = ""
    try:
        from helpers import catalog

        paths = [p for e in catalog.endpoints() for p in e.paths]
        close = difflib.get_close_matches(f.path, paths, n=1, cutoff=0.8)
        hint = f" Did you mean {close[0]}?" if close else ""
    except ImportError:
        pass
    return ("Check the path letter by letter against the REST API reference (prefix "
            f"/api/2.0/mlflow/, no trailing slash).{hint}")


def _malformed_cause(f: Facts) -> str:
    return (f"The body is not JSON — {f.json_problem}. The server parses it with "
            "get_json(force=True, silent=True), which turns an unparseable body into nothing "
            f"instead of an error, so the first required field, '{f.groups['field']}', "
            "is reported missing.")


def _missing_cause(f: Facts) -> str:
    name = f.groups["field"]
    if name in f.fields:
        shown = json.dumps(f.fields[name])
        return (f"'{name}' was sent as {shown}, which the handler's required-field check "
                "treats as missing.")
    camel = _camel(name)
    if camel != name and camel in f.fields:
        return (f"The body has '{camel}' (the protobuf JSON spelling) but the handler's check "
                f"only looks for '{name}', so it is reported missing.")
    close = difflib.get_close_matches(name, [k for k in f.fields if isinstance(k, str)], n=1,
                                      cutoff=0.6)
    if close:
        return f"The body has no '{name}' — it has '{close[0]}', a misspelling of it?"
    if f.method == "GET" and not urlsplit(f.exchange.request.url).query:
        return f"A GET sends its fields as query parameters and '{name}' was not among them."
    return f"The body has no '{name}', and the handler requires it."


def _missing_fix(f: Facts) -> str:
    name = f.groups["field"]
    if f.method == "GET":
        return f"Add it to the query string: params={{'{name}': ...}}."
    return (f"Send a non-empty '{name}' (checks run in the handler's schema order, so the next "
            "missing field shows up only after this one is fixed).")


def _type_fix(f: Facts) -> str:
    name, sent = f.groups["field"], f.groups["type"]
    wanted = _TYPE_WORDS.get(f.field_type(name) or "", "the type the API reference gives")
    if name == "experiment_id" and sent == "int":
        return ("Send experiment_id as a string, e.g. \"0\": ids are strings in MLflow's REST "
                "API even though they look like numbers.")
    return f"Send '{name}' as {wanted}, not {_a(sent)}."


_FITS = {"int": ("int64", "int32", "uint64", "uint32", "double", "float"),
         "float": ("double", "float"), "str": ("string", "enum"), "bool": ("bool",)}


def _type_fits(f: Facts) -> bool:
    """True when the type the Hint names is one the field accepts (so the type was not it)."""
    return f.field_type(f.groups["field"]) in _FITS.get(f.groups["type"], ())


def _partial_parse_cause(f: Facts) -> str:
    stop = f.proto_stop
    assert stop is not None
    lost = ", ".join(f"'{n}'" for n in f.lost_after_stop()[1:])
    return (f"Protobuf could not read '{stop[0]}' = {json.dumps(stop[1])} ({stop[2]}), and the "
            f"server keeps going with the fields parsed before it: {lost} came through empty, "
            "so a later check refused the empty value.")


def _server_error_cause(f: Facts) -> str:
    if f.json_problem is None and f.body is not None and not isinstance(f.body, dict):
        return (f"The body is a JSON {_json_type(f.body)}, not an object; the handler crashed "
                "on it instead of answering 400.")
    odd = [k for k, v in f.fields.items() if isinstance(v, (list, dict))
           and f.field_type(k) not in (None, "message")]
    if odd:
        name = odd[0]
        return (f"'{name}' is a JSON {_json_type(f.fields[name])} where a single value belongs; "
                "the type check lets it through and the handler crashes on it instead of "
                "answering 400.")
    if f.api_path == "runs/log-batch" and f.body is None:
        # handlers.py::_log_batch validates the raw JSON first: len(None) on a JSON null body.
        return ("The body is JSON null; log-batch's first check takes its length and crashes, "
                "where other endpoints answer 400 for a missing field.")
    if f.kind == "mlflow-json":
        return f"The server failed while handling the request: {_first_sentence(f.message)}"
    return "An unhandled exception in the server; the request itself may or may not be at fault."


def _stop_cause(what: str) -> Callable[[Facts], str]:
    def cause(f: Facts) -> str:
        stop = f.proto_stop
        assert stop is not None
        lost = f.lost_after_stop()
        later = (f" and every field after it ({', '.join(repr(n) for n in lost[1:])}) were"
                 if len(lost) > 1 else " was")
        return (f"200, but {what}: protobuf refused '{stop[0]}' = {json.dumps(stop[1])} "
                f"({stop[2]}); the server ignores that parse error, so '{stop[0]}'{later} "
                "stored as 0 or empty.")
    return cause


def _stopped_at(*names: str, seconds: bool | None = None) -> Callable[[Facts], bool]:
    def when(f: Facts) -> bool:
        stop = f.proto_stop
        if not (f.exchange.ok and stop and (not names or stop[0] in names)):
            return False
        if seconds is None:
            return True
        small = isinstance(stop[1], (int, float)) and 0 < abs(stop[1]) < SECONDS_CEILING
        return small == seconds
    return when


def _seconds_field(f: Facts) -> str | None:
    for name in TIMESTAMP_FIELDS:
        value = f.fields.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) \
                and 0 < value < SECONDS_CEILING:
            return name
    return None


def _seconds_cause(f: Facts) -> str:
    name = _seconds_field(f)
    value = f.fields[name]  # type: ignore[index]
    return (f"200, but '{name}' = {value} is seconds since the epoch; MLflow reads it as "
            "milliseconds, so it is stored as a moment in January 1970.")


def _unknown_cause(f: Facts) -> str:
    parts = []
    for name in f.unknown_fields():
        close = difflib.get_close_matches(name, list(f.known_fields), n=1, cutoff=0.6)
        parts.append(f"'{name}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
    return (f"200, but {', '.join(parts)} is not a field of this endpoint: the server parses "
            "with ignore_unknown_fields=True, so it was silently dropped.")


def _unknown_enum(f: Facts) -> tuple[str, Any, tuple[str, ...]] | None:
    if f.endpoint is None:
        return None
    for spec in f.endpoint.fields:
        value = f.fields.get(spec.name, f.fields.get(spec.json_name))
        if spec.enum_values and isinstance(value, str) and value not in spec.enum_values:
            return spec.name, value, spec.enum_values
    return None


def _truncated(f: Facts) -> bool:
    limit = TRUNCATED_AT.get(f.api_path)
    value = f.fields.get("value")
    return f.exchange.ok and limit is not None and isinstance(value, str) and len(value) > limit


def _coerced(f: Facts) -> str | None:
    for name, value in f.fields.items():
        if isinstance(value, str) and f.field_type(name) in ("double", "float", "int64", "int32"):
            return name
    return None


def _bool_number(f: Facts) -> str | None:
    """A numeric field sent as true/false (protobuf stores it as 1.0/0.0, or 1/0)."""
    for name, value in f.fields.items():
        if isinstance(value, bool) and f.field_type(name) in ("double", "float", "int64", "int32"):
            return name
    return None


def _padded_key(f: Facts) -> str | None:
    key = f.fields.get("key")
    return key if isinstance(key, str) and key != key.strip() else None


_PROTO_PARSE = "google.protobuf.json_format.ParseDict, called by mlflow/server/handlers.py::" \
               "_get_request_message (ParseError caught and ignored)"

RULES: tuple[Rule, ...] = (
    # ---- answers from the security middleware, before any MLflow handler runs (MLflow >= 3.5)
    Rule("forbidden-host", "error",
         lambda f: f.status == 403 and f.message == INVALID_HOST_MSG,
         lambda f: (f"The server's security middleware refused Host: {f.sent('Host')}; by "
                    "default only localhost, 127.0.0.1 and private-network addresses are "
                    "allowed (DNS-rebinding protection)."),
         _security_check("HostValidationMiddleware"),
         "Call the server by an address it allows, or start it with --allowed-hosts "
         "(MLFLOW_SERVER_ALLOWED_HOSTS) listing the name you use."),
    Rule("forbidden-origin", "error",
         lambda f: f.status == 403 and f.message == CORS_BLOCKED_MSG,
         lambda f: (f"A {f.method} carrying Origin: {f.sent('Origin')} — a cross-site origin "
                    "not on the allow-list — was blocked by the security middleware."),
         _security_check("CORSBlockingMiddleware"),
         "Scripts should not send an Origin header at all; a browser app's origin must be "
         "listed in --cors-allowed-origins (MLFLOW_SERVER_CORS_ALLOWED_ORIGINS)."),
    # ---- Flask's own pages: no MLflow handler was found for this method or path
    Rule("method-not-allowed", "error",
         lambda f: f.status == 405 and f.kind == "html",
         lambda f: (f"The path exists, but not for {f.method}: it only accepts "
                    f"{_allowed_methods(f)} (Flask's HTML page, not an MLflow JSON error)."),
         _ROUTING,
         lambda f: f"Send the request as {_allowed_methods(f)}."),
    Rule("route-not-found", "error",
         lambda f: f.status == 404 and f.kind == "html",
         lambda f: (f"No route matches {f.path}: Flask answered with its HTML 404 page before "
                    "any MLflow handler ran (a typo, a wrong prefix or version, or a trailing "
                    "slash)."),
         _ROUTING,
         _route_fix),
    # ---- MLflow JSON errors: the store looked and found nothing
    Rule("run-not-found", "error",
         lambda f: f.status == 404 and f.code == "RESOURCE_DOES_NOT_EXIST",
         "The request passed every check, then the store found no run with id={run_id}.",
         "mlflow/store/tracking/sqlalchemy_store.py::SqlAlchemyStore._get_run",
         "Use the run_id of an existing run (runs/create returns it; runs/search lists them).",
         message=r"^Run with id=(?P<run_id>\S*) not found"),
    Rule("resource-not-found", "error",
         lambda f: f.status == 404 and f.code == "RESOURCE_DOES_NOT_EXIST",
         lambda f: f"The request was valid but names something the store does not have: "
                   f"{_first_sentence(f.message)}",
         "the tracking store's lookup (mlflow/store/tracking/sqlalchemy_store.py)",
         "Check the id or name: look it up first (e.g. experiments/search, runs/search)."),
    # ---- 400 INVALID_PARAMETER_VALUE, in the order the server checks
    Rule("content-type-missing", "error", _mlflow_400,
         "No Content-Type header was sent; MLflow checks it before it reads the body at all.",
         "mlflow/server/validation.py::_validate_content_type",
         "Send Content-Type: application/json — requests does it for you with json=body.",
         message=r"Content-Type header is missing"),
    Rule("content-type-wrong", "error", _mlflow_400,
         lambda f: (f"Content-Type: {f.sent('Content-Type')} was sent; the server compares the "
                    "part before any ';' with 'application/json', exactly and case-sensitively."),
         "mlflow/server/validation.py::_validate_content_type",
         "Send Content-Type: application/json (a '; charset=utf-8' suffix is fine).",
         message=r"Content-Type must be one of"),
    Rule("conflicting-alias", "error", _mlflow_400,
         "The body spells one field two ways, '{a}' and '{b}'; the server refuses the "
         "ambiguity.",
         f"{_HANDLERS}::_reject_conflicting_field_aliases",
         "Keep one spelling — the snake_case one ('{a}').",
         message=r"Request specifies both '(?P<a>[^']+)' and '(?P<b>[^']+)'"),
    Rule("malformed-json", "error",
         lambda f: _mlflow_400(f) and f.json_problem is not None,
         _malformed_cause,
         f"{_HANDLERS}::_get_request_json (get_json(..., silent=True)), then {_SCHEMA_CHECK}",
         "Build the body from a dict: requests.post(url, json=body); if you must send a "
         "string, check it first with json.loads(text).",
         message=r"^Missing value for required parameter '(?P<field>[^']+)'"),
    Rule("malformed-json", "error",
         lambda f: f.status in (400, 500) and bool(f.api_path) and f.json_problem is not None,
         lambda f: (f"The body is not JSON — {f.json_problem}. The server parses it silently "
                    "as nothing, so the handler ran with no fields at all; on this endpoint that "
                    f"ends in {f.status} {f.code or 'with an HTML error page'}, which never "
                    "mentions JSON."),
         f"{_HANDLERS}::_get_request_json (get_json(..., silent=True)), then the handler",
         "Build the body from a dict: requests.post(url, json=body); if you must send a "
         "string, check it first with json.loads(text)."),
    Rule("missing-field", "error", _mlflow_400,
         _missing_cause,
         f"{_SCHEMA_CHECK} (_assert_required)",
         _missing_fix,
         message=r"^Missing value for required parameter '(?P<field>[^']+)'"),
    Rule("bad-type", "error", lambda f: _mlflow_400(f) and not _type_fits(f),
         lambda f: (f"'{f.groups['field']}' = {f.groups['value']} is {_a(f.groups['type'])}; "
                    "protobuf could not parse it, so the handler's type check ran and refused "
                    "it."),
         f"{_SCHEMA_CHECK} (_assert_string / _assert_intlike / _assert_floatlike)",
         _type_fix,
         message=(r"^Invalid value (?P<value>.*) for parameter '(?P<field>[^']+)' supplied:\s+"
                  r"Hint: Value was of type '(?P<type>[^']+)'")),
    Rule("out-of-range", "error", _mlflow_400,
         lambda f: (f"'{f.groups['field']}' = {f.groups['value']} has the right type but failed "
                    "another check of the handler's schema (a range or size limit); the 'Hint' "
                    "about its type is MLflow's generic wording, not the reason."),
         f"{_SCHEMA_CHECK} (e.g. _assert_less_than_or_equal)",
         lambda f: (f"Keep '{f.groups['field']}' within the limit the API reference gives "
                    "(for search endpoints, max_results is at most 50000)."),
         message=(r"^Invalid value (?P<value>.*) for parameter '(?P<field>[^']+)' supplied:\s+"
                  r"Hint: Value was of type '(?P<type>[^']+)'")),
    Rule("partial-parse", "error",
         lambda f: _mlflow_400(f) and f.proto_stop is not None,
         _partial_parse_cause,
         _PROTO_PARSE,
         lambda f: (f"Fix '{f.proto_stop[0]}' (an integer for int64 fields, a finite number for "
                    "doubles); then the fields after it arrive too."),
         message=r"^Invalid value \"\" for parameter"),
    Rule("invalid-name", "error", _mlflow_400,
         lambda f: f"The name {f.groups['value']} is not allowed: {f.groups['rule'].rstrip('.')}.",
         "mlflow/utils/validation.py::_validate_metric_name / _validate_param_name / "
         "_validate_tag_name",
         "Use letters, digits, _ - . space : and / only, with no '..' or leading '/'.",
         message=(r"^Invalid value (?P<value>.*) for parameter '(?:name|key)' supplied: "
                  r"(?P<rule>Names may .*)$")),
    Rule("too-long", "error", _mlflow_400,
         "'{what}' is longer than the store allows ({limit} characters).",
         "mlflow/utils/validation.py::exceeds_maximum_length (from _validate_length_limit or "
         "_validate_experiment_name)",
         "Shorten it to at most {limit} characters.",
         message=r"^'(?P<what>[^']+)' exceeds the maximum length of (?P<limit>\d+) characters"),
    Rule("batch-limit", "error", _mlflow_400,
         lambda f: f"One request carries more than a batch may hold: {_first_sentence(f.message)}",
         "mlflow/utils/validation.py::_validate_batch_log_limits / _validate_batch_log_api_req",
         "Split the batch: at most 1000 metrics, 100 params, 100 tags (1000 entities) per "
         "log-batch request.",
         message=r"A batch logging request can contain at most|requests must be at most"),
    Rule("not-active", "error", _mlflow_400,
         "The {what} exists but is {state}; only active runs and experiments accept changes.",
         "mlflow/store/tracking/sqlalchemy_store.py::SqlAlchemyStore._check_run_is_active",
         "Restore it first ({what}s/restore), or use an active one.",
         message=(r"^The (?P<what>run|experiment) \S+ must be in the 'active' state\. "
                  r"Current state is (?P<state>\w+)")),
    Rule("param-overwrite", "error", _mlflow_400,
         "Param '{key}' already has a different value in this run; params are write-once.",
         "mlflow/store/tracking/sqlalchemy_store.py::SqlAlchemyStore.log_param",
         "Log the same value again (allowed), use a new key, or start a new run; "
         "values that change over time belong in metrics.",
         message=r"^Changing param values is not allowed\. Param with key='(?P<key>[^']*)'"),
    Rule("already-exists", "error",
         lambda f: f.status == 400 and f.code == "RESOURCE_ALREADY_EXISTS",
         lambda f: (f"Something with that name already exists: {_first_sentence(f.message)} "
                    "(names are unique; the rest of the message is the database's own text)."),
         "the tracking store's unique constraint (mlflow/store/tracking/sqlalchemy_store.py)",
         "Pick a unique name, or fetch the existing one (experiments/get-by-name)."),
    Rule("mlflow-error", "error",
         lambda f: f.status >= 400 and f.kind == "mlflow-json" and f.status < 500,
         lambda f: (f"MLflow refused the request with {f.code}: {_first_sentence(f.message)} "
                    "(no specific rule in this kit for this message)."),
         "an MLflow handler or store check (this kit has no rule for this message)",
         "Read the message: MLflow's messages name the field and the rule that failed."),
    # ---- 500: the server crashed instead of refusing
    Rule("server-error", "error",
         lambda f: f.status == 500,
         _server_error_cause,
         lambda f: ("an unhandled exception in the handler (Flask's default HTML 500 page)"
                    if f.kind == "html" else "the handler's store call (MLflow JSON 500)"),
         "Treat a 500 as 'the server failed', not as proof the request was fine: fix the "
         "request's shape if it is odd, retry only if it is not, and read the server log."),
    # ---- answers that are not MLflow's at all
    Rule("gateway-error", "error",
         lambda f: f.status in (502, 503, 504),
         lambda f: (f"A {f.status} with {_KIND_WORDS.get(f.kind, f.kind)} body came from "
                    "something between you and "
                    "MLflow (a proxy, gateway or load balancer): MLflow's own answer, if any, "
                    "never reached you."),
         "a proxy or gateway in front of MLflow, not MLflow",
         "Check that the MLflow server is up and that the proxy points at it; retry later."),
    Rule("not-mlflow", "error",
         lambda f: 400 <= f.status < 500 and f.kind in ("html", "text", "json", "empty"),
         lambda f: (f"This {f.status} has {_KIND_WORDS.get(f.kind, f.kind)} body, not MLflow's "
                    "JSON error with an "
                    "error_code, and none of the non-JSON answers MLflow's server gives (403 from "
                    "its security middleware, 404/405 routing pages): something else (a proxy, "
                    "a gateway, another server on that port) answered."),
         "not MLflow: the component in front of it, or another server",
         "Check the URL and port, then the proxy's configuration and logs; MLflow may never "
         "have seen the request."),
    # ---- 200, but the request tells that something else was stored
    Rule("ok-but-trap-nan", "warning",
         lambda f: _stopped_at()(f) and isinstance(f.proto_stop[1], float)
         and not math.isfinite(f.proto_stop[1]),
         _stop_cause("a bare NaN/Infinity is not JSON"),
         _PROTO_PARSE,
         "Send non-finite values as strings (\"NaN\", \"Infinity\") or not at all; "
         "json.dumps(body, allow_nan=False) catches them before sending."),
    Rule("ok-but-trap-seconds-timestamp", "warning",
         _stopped_at(*TIMESTAMP_FIELDS, seconds=True),
         _stop_cause("the timestamp is fractional seconds (time.time())"),
         _PROTO_PARSE,
         "Send integer milliseconds: int(time.time() * 1000)."),
    Rule("ok-but-trap-fractional-timestamp", "warning",
         _stopped_at(*TIMESTAMP_FIELDS, seconds=False),
         _stop_cause("an int64 timestamp cannot hold a fraction"),
         _PROTO_PARSE,
         "Send integer milliseconds: int(time.time() * 1000)."),
    Rule("ok-but-trap-fractional-step", "warning",
         _stopped_at("step"),
         _stop_cause("step is an int64 and cannot hold a fraction"),
         _PROTO_PARSE,
         "Send step as a whole number (an int, or a float with no fraction such as 2.0)."),
    Rule("ok-but-trap-parse-stopped", "warning",
         _stopped_at(),
         _stop_cause("protobuf could not read one field"),
         _PROTO_PARSE,
         "Send each field in the type the API reference gives."),
    Rule("ok-but-trap-seconds-timestamp", "warning",
         lambda f: f.exchange.ok and _seconds_field(f) is not None,
         _seconds_cause,
         f"nothing: {_HANDLERS}::_assert_intlike accepts any integer",
         "Send milliseconds: int(time.time() * 1000)."),
    Rule("ok-but-unknown-enum", "warning",
         lambda f: f.exchange.ok and _unknown_enum(f) is not None,
         lambda f: (f"200, but '{_unknown_enum(f)[0]}' = {json.dumps(_unknown_enum(f)[1])} is "
                    f"not one of {', '.join(_unknown_enum(f)[2])}: protobuf skips unknown enum "
                    "names when unknown fields are ignored, so that field was not changed."),
         "mlflow/utils/proto_json_utils.py::parse_dict (ignore_unknown_fields=True)",
         lambda f: f"Use one of the enum's names exactly: {', '.join(_unknown_enum(f)[2])}."),
    Rule("ok-but-unknown-field", "warning",
         lambda f: f.exchange.ok and bool(f.unknown_fields()),
         _unknown_cause,
         "mlflow/utils/proto_json_utils.py::parse_dict (ignore_unknown_fields=True)",
         "Spell every field as the API reference does; read the data back after logging."),
    Rule("ok-but-bool-as-number", "warning",
         lambda f: f.exchange.ok and _bool_number(f) is not None,
         lambda f: (f"200, but '{_bool_number(f)}' was sent as "
                    f"{json.dumps(f.fields[_bool_number(f)])}: protobuf reads a JSON boolean as "
                    "a number, so 1 or 0 was stored."),
         "google.protobuf.json_format.ParseDict (booleans accepted for numeric fields)",
         "Send the number you mean; convert flags explicitly (1.0 if ok else 0.0)."),
    Rule("ok-but-padded-key", "warning",
         lambda f: f.exchange.ok and _padded_key(f) is not None,
         lambda f: (f"200, but the key {json.dumps(_padded_key(f))} has spaces at its ends: "
                    "it is stored as written, a different key from "
                    f"{json.dumps(_padded_key(f).strip())}."),
         "mlflow/utils/validation.py::_validate_metric_name (spaces are legal characters)",
         "Strip keys before sending: key.strip()."),
    Rule("ok-but-param-without-value", "warning",
         lambda f: (f.exchange.ok and f.api_path == "runs/log-parameter"
                    and f.fields.get("value") in (None, "")),
         "200, but the param has no value: the handler does not require one, so an empty "
         "string was stored, and it can never be changed (params are write-once).",
         f"{_HANDLERS}::_log_param (\"value\" has no _assert_required)",
         "Send the value as a string: {\"key\": ..., \"value\": str(value)}."),
    Rule("ok-but-trap-truncated", "warning",
         _truncated,
         lambda f: (f"200, but the value is {len(f.fields['value'])} characters and the store "
                    f"keeps only the first {TRUNCATED_AT[f.api_path]}, silently."),
         "mlflow/utils/validation.py::_validate_length_limit (truncate=True)",
         lambda f: (f"Keep values within {TRUNCATED_AT[f.api_path]} characters, or log long "
                    "text as an artifact."),
    ),
    Rule("ok-but-double-encoded", "info",
         lambda f: f.exchange.ok and f.double_encoded,
         "200: the body is a JSON string that holds JSON (json.dumps applied twice); MLflow "
         "decodes strings a second time for old clients, so it was stored correctly.",
         f"{_HANDLERS}::_get_normalized_request_json",
         "Encode once: json=body, or data=json.dumps(body) — other servers will not forgive it."),
    Rule("ok-but-deprecated-run-uuid", "info",
         lambda f: f.exchange.ok and "run_uuid" in f.fields and "run_id" not in f.fields,
         "200: run_uuid is the deprecated name of run_id; the handler still reads "
         "run_id or run_uuid.",
         f"{_HANDLERS}::_validate_request_json_with_schema (run_uuid fallback)",
         "Send run_id instead."),
    Rule("ok-but-coerced-string", "info",
         lambda f: f.exchange.ok and _coerced(f) is not None,
         lambda f: (f"200: '{_coerced(f)}' was sent as the string {json.dumps(f.fields[_coerced(f)])}"
                    "; protobuf's JSON parser converts numeric strings, so a number was "
                    "stored."),
         "google.protobuf.json_format.ParseDict (numbers may be quoted in protobuf JSON)",
         "Send numbers as JSON numbers; a string that is not a number gets a 400."),
    Rule("ok", "ok",
         lambda f: f.exchange.ok,
         "The server accepted the request, and nothing in it looks stored differently from "
         "what was sent.",
         "every check passed",
         "Nothing to fix; read the data back if it matters (runs/get, metrics/get-history)."),
)


def explain(exchange: Exchange) -> Diagnosis:
    """Match the exchange against `RULES` (first match wins) and say what happened."""
    facts = Facts(exchange)
    for rule in RULES:
        if rule.message is not None:
            found = re.search(rule.message, facts.message, flags=re.DOTALL)
            if not found:
                continue
            facts.groups = {k: v or "" for k, v in found.groupdict().items()}
        else:
            facts.groups = {}
        if not rule.when(facts):
            continue
        return Diagnosis(
            family=rule.family,
            severity=rule.severity,
            cause=_render(rule.cause, facts),
            check=_render(rule.check, facts),
            fix=_render(rule.fix, facts),
            status=exchange.status,
            reason=exchange.reason,
            body_kind=exchange.body_kind,
            error_code=exchange.error_code,
        )
    return Diagnosis(
        family="unrecognised",
        severity="error" if exchange.status >= 400 else "info",
        cause=(f"Not recognised: no rule in helpers/diagnose.py matches a {exchange.status} "
               f"with a {exchange.body_kind} body"
               + (f" and error_code {exchange.error_code}" if exchange.error_code else "")
               + "."),
        check="unknown",
        fix="Read the raw answer above (status, headers, body); if it comes from MLflow, its "
            "message names the check.",
        status=exchange.status,
        reason=exchange.reason,
        body_kind=exchange.body_kind,
        error_code=exchange.error_code,
    )


FIELD_GUIDE_HEADERS = ("status", "body kind", "error_code", "family", "cause", "fix")


def field_guide(exchanges: Iterable[Exchange], *, one_per_family: bool = True) -> Table:
    """A table (status, body kind, error_code, family, cause, fix) explaining live exchanges.

    Rows keep the order the exchanges were given; with `one_per_family`, the first exchange of
    each family stands for the rest.
    """
    rows: list[list[Any]] = []
    seen: set[str] = set()
    for exchange in exchanges:
        diagnosis = explain(exchange)
        if one_per_family and diagnosis.family in seen:
            continue
        seen.add(diagnosis.family)
        rows.append(diagnosis.row())
    return Table(rows, FIELD_GUIDE_HEADERS)


def families() -> tuple[str, ...]:
    """Every family a rule can produce (plus "unrecognised"), in rule order, without repeats."""
    return tuple(dict.fromkeys([r.family for r in RULES] + ["unrecognised"]))


def summary(exchange: Exchange) -> str:
    """One line: status, family, and the fix — for tables and loops."""
    d = explain(exchange)
    return f"{status_line(exchange)} → {d.family}: {d.fix}"


# --------------------------------------------------------------------------------------------


def _render(text: Text, facts: Facts) -> str:
    if callable(text):
        return text(facts)
    return text.format(**facts.groups) if facts.groups else text


def _first_sentence(message: str) -> str:
    first = message.split("\n", 1)[0]
    found = re.match(r"^(.+?[.!?])(\s|$)", first)
    return found.group(1) if found else first


def _a(word: str) -> str:
    """'an int', 'a str'."""
    return ("an " if word[:1].lower() in "aeiou" else "a ") + word


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def _json_type(value: Any) -> str:
    return {list: "array", dict: "object", str: "string", bool: "boolean",
            type(None): "null"}.get(type(value), "number")


__all__: Sequence[str] = ("Diagnosis", "RULES", "Rule", "explain", "families", "field_guide",
                          "json_problem", "summary")
