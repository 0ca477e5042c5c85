"""Predict, offline, what an MLflow 3.17.2 server answers to one request, and why.

Why: a 400 names only the first problem the server meets, and some mistakes get a 200 while
the data is silently changed. `preflight()` walks the server's own pipeline on the learner's
exact bytes: security middleware, router, Content-Type, JSON, protobuf parsing, the handler's
schema, the store's validators. Every finding names the MLflow function it mirrors.
tests/test_preflight_agreement.py holds the predictions against a live server.

What it cannot see is server state: whether the run or experiment exists. A request that is
valid in itself is predicted 200, with an `info` finding naming the state it still depends on.
"""

from __future__ import annotations

import contextlib
import difflib
import fnmatch
import json
import logging
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlparse, urlsplit

from google.protobuf import json_format
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.utils import validation as uv
from mlflow.utils.mlflow_tags import MLFLOW_CUSTOM_VIEW_TAG_PREFIX, MLFLOW_RUN_NAME
from mlflow.utils.uri import validate_query_string

from helpers.catalog import PREFIXES, Endpoint, Field, HandlerRule, match_path

Severity = Literal["error", "warning", "info"]

H = "mlflow/server/handlers.py::"
UV = "mlflow/utils/validation.py::"
STORE = "mlflow/store/tracking/sqlalchemy_store.py::SqlAlchemyStore."
PARSE = "google/protobuf/json_format.py::ParseDict (from " + H + "_get_request_message)"
ROUTER = "werkzeug routing (Flask url map built by " + H + "get_endpoints)"
SECURITY = "mlflow/server/fastapi_security.py::"
CRASH = ("The server crashes with 500 Internal Server Error (an HTML page, no MLflow error "
         "JSON) instead of answering a clear 400")
DOCS_HINT = " See the API docs for more information about request parameters."
SECONDS_THRESHOLD = 1e11  # ms timestamps are > 1e12 since 2001; < 1e11 looks like seconds

# Routes registered outside the protos (mlflow/server/__init__.py, the extras of
# handlers.py::get_endpoints, the FastAPI routers of fastapi_app.py). Preflight has no rules
# for them, so it says "cannot tell" rather than predicting a wrong 404.
_OTHER_ROUTES = ("/health", "/version", "/graphql", "/get-artifact", "/static-files/",
                 "/model-versions/get-artifact", "/api/3.0/mlflow/server-info", "/v1/traces",
                 "/ajax-api/", "/gateway/", "/api/2.0/mlflow-artifacts/")


@dataclass(frozen=True)
class Finding:
    """One thing the server will do with the request, and how to fix it if it is a problem."""

    severity: Severity
    check: str
    message: str
    fix: str = ""


@dataclass(frozen=True)
class Verdict:
    """The predicted answer to one request (`predicted_status` None: depends on server state
    or on a route preflight has no rules for)."""

    method: str
    path: str
    endpoint: Endpoint | None
    predicted_status: int | None
    expected_message: str | None
    expected_error_code: str | None
    findings: tuple[Finding, ...]
    #: The request message as the handler reads it after protobuf parsing (defaults filled in),
    #: or None when the request never got that far.
    parsed: Mapping[str, Any] | None = None

    @property
    def ok(self) -> bool:
        """True when the server is predicted to accept the request."""
        return (self.predicted_status is not None and 200 <= self.predicted_status < 300
                and not self.errors)

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "error")

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "warning")

    def __str__(self) -> str:
        status = "cannot tell offline" if self.predicted_status is None else self.predicted_status
        lines = [f"{self.method} {self.path} -> predicted {status}"
                 + (f" {self.expected_error_code}" if self.expected_error_code else "")]
        if self.expected_message:
            lines.append(f"  server says: {self.expected_message}")
        for f in self.findings:
            lines.append(f"  {f.severity:<7} {f.message}")
            if f.fix:
                lines.append(f"          fix: {f.fix}")
            lines.append(f"          ({f.check})")
        return "\n".join(lines)


def preflight(method: str, path_or_url: str, headers: Mapping[str, str | None] | None = None,
              body: bytes | str | None = None) -> Verdict:
    """Predict the server's answer to `method path_or_url` with these headers and body bytes.

    `headers` and `body` mean what they mean to `requests.request(..., headers=, data=)`: no
    Content-Type is added for you, a str body is sent as UTF-8, a header set to None is absent.
    """
    if body is not None and not isinstance(body, (bytes, str)):
        raise TypeError("body must be the bytes (or str) you send, e.g. json.dumps(payload); "
                        f"got {type(body).__name__}")
    req = _Request.build(method, path_or_url, headers, body)
    sim = _Simulation(req)
    try:
        sim.run()
        status, message, code = 200, None, None
    except _Answer as answer:
        status, message, code = answer.status, answer.message, answer.error_code
    sim.lint()
    if status == 200:
        sim.state_note()
    return Verdict(method=req.method, path=req.path, endpoint=sim.endpoint,
                   predicted_status=status, expected_message=message, expected_error_code=code,
                   findings=tuple(sim.findings), parsed=sim.parsed)


# --------------------------------------------------------------------------- request model


@dataclass(frozen=True)
class _Request:
    method: str
    path: str
    host: str | None
    headers: Mapping[str, str]  # lower-case names, values as the server sees them
    body: bytes

    @classmethod
    def build(cls, method: str, path_or_url: str, headers: Mapping[str, str | None] | None,
              body: bytes | str | None) -> _Request:
        absolute = "://" in path_or_url
        parts = urlsplit(path_or_url if absolute else "http://_/" + path_or_url.lstrip("/"))
        host = parts.netloc.rpartition("@")[2] if absolute else None  # no user:password@
        seen: dict[str, str] = {}
        for name, value in (headers or {}).items():
            if value is not None:  # requests' merge: the last spelling of a name wins
                seen[name.lower()] = value.strip(" \t")  # the HTTP parser strips OWS
        host = seen.get("host", host)
        data = body.encode("utf-8") if isinstance(body, str) else (body or b"")
        return cls(method.upper(), parts.path or "/", host, seen, data)


class _Answer(Exception):
    """The server's answer is decided at this step."""

    def __init__(self, status: int | None, message: str | None = None,
                 error_code: str | None = None):
        super().__init__(status, message)
        self.status, self.message, self.error_code = status, message, error_code


# --------------------------------------------------------------- mirrors of handlers.py checks


def _assert_string(x: Any) -> None:
    assert isinstance(x, str)


def _assert_intlike(x: Any) -> None:
    try:
        x = int(x)
    except ValueError:
        pass
    assert isinstance(x, int)


def _assert_floatlike(x: Any) -> None:
    try:
        x = float(x)
    except ValueError:
        pass
    assert isinstance(x, float)


def _assert_array(x: Any) -> None:
    assert isinstance(x, list)


def _assert_required(x: Any, path: str | None = None) -> None:
    if path is None:
        assert x is not None
        assert x != ""
    else:
        assert x is not None, uv.missing_value(path)
        assert x != "", uv.missing_value(path)


def _fields_present(name: str, keys: tuple[str, ...]) -> Callable[[Any], None]:
    """handlers.py::_log_batch's _assert_{metrics,params,tags}_fields_present."""

    def check(items: Any) -> None:
        for idx, item in enumerate(items):
            for key in keys:
                _assert_required(item.get(key), path=f"{name}[{idx}].{key}")

    return check


_CHECKS: dict[str, Callable[[Any], None]] = {
    "required": _assert_required, "string": _assert_string, "intlike": _assert_intlike,
    "floatlike": _assert_floatlike, "array": _assert_array,
}
#: handlers.py::_TYPE_VALIDATORS: skipped when protobuf parsing succeeded.
_TYPE_CHECKS = frozenset({"string", "intlike", "floatlike", "array", "bool", "item_type_string"})


# ----------------------------------------------------------------------------- simulation


@dataclass
class _Simulation:
    req: _Request
    findings: list[Finding] = field(default_factory=list)
    endpoint: Endpoint | None = None
    parsed: dict[str, Any] | None = None
    request_json: Any = None
    message: Any = None

    def add(self, severity: Severity, check: str, message: str, fix: str = "") -> None:
        self.findings.append(Finding(severity, check, message, fix))

    def fail(self, status: int | None, check: str, message: str, fix: str = "", *,
             said: str | None = None, code: str | None = None,
             severity: Severity = "error") -> _Answer:
        """Record the finding that decides the answer and return the answer to raise."""
        self.add(severity, check, message, fix)
        return _Answer(status, said, code)

    # -- the pipeline, in the server's order

    def run(self) -> None:
        self.security()
        self.endpoint = self.route()
        rule = self.endpoint.rule
        if rule is None:
            self.add("info", ROUTER, f"{self.endpoint.name} exists, but preflight has no "
                     "handler rules for it, so it cannot predict the answer.")
            raise _Answer(None)
        first: _Answer | None = None
        try:
            self.content_type()
        except _Answer as answer:
            first = answer
        mark = len(self.findings)
        try:
            self.handler(rule)
        except _Answer:
            if first is None:
                raise
            self._relabel_after(mark)
        if first is not None:
            self.parsed = None  # the server never parsed this body
            raise first

    def state_note(self) -> None:
        """What a valid request still depends on: the state preflight cannot see."""
        rule = self.endpoint.rule if self.endpoint else None
        if rule is not None:
            self.add("info", STORE + "_get_run / get_experiment",
                     "Valid as sent; the answer still depends on server state: "
                     f"{self._state_subject()}{rule.state}.")

    def _relabel_after(self, mark: int) -> None:
        """Findings past a Content-Type failure describe the next answer once that is fixed."""
        for i in range(mark, len(self.findings)):
            f = self.findings[i]
            if f.severity == "error":
                self.findings[i] = Finding("error", f.check, "Once Content-Type is fixed: "
                                           + f.message, f.fix)

    def security(self) -> None:
        """fastapi_security.py middleware with default settings (no MLFLOW_SERVER_* env)."""
        req = self.req
        if req.host is not None and req.path not in ("/health", "/version"):
            if not _allowed_host(req.host):
                raise self.fail(
                    403, SECURITY + "HostValidationMiddleware",
                    f"Host {req.host!r} is not a localhost or private address: the server "
                    "refuses it (DNS-rebinding protection) before routing.",
                    "Use http://127.0.0.1:PORT or http://localhost:PORT, or start the server "
                    "with --allowed-hosts / MLFLOW_SERVER_ALLOWED_HOSTS.",
                    said="Invalid Host header - possible DNS rebinding attack detected")
        origin = req.headers.get("origin")
        if (origin is not None and req.method in ("POST", "PUT", "DELETE", "PATCH")
                and req.path.startswith(("/api/", "/ajax-api/"))
                and not _localhost_origin(origin)):
            raise self.fail(
                403, SECURITY + "CORSBlockingMiddleware",
                f"Origin {origin!r} is not localhost: cross-origin writes are blocked.",
                "Send no Origin header (scripts don't need one), or start the server with "
                "--cors-allowed-origins.", said="Cross-origin request blocked")

    def route(self) -> Endpoint:
        req = self.req
        path = req.path
        if "//" in path:
            merged = re.sub("/{2,}", "/", path)
            if any(req.method in _methods(e) for e in match_path(merged)):
                raise self.fail(
                    308, ROUTER + " merge_slashes",
                    f"The path has '//': the server redirects (308) to {merged}. requests "
                    "follows it (re-sending the body) unless allow_redirects=False.",
                    f"Use {merged}.", severity="warning")
        found = match_path(path)
        if not found:
            if path == "/" or path.startswith(_OTHER_ROUTES):
                self.add("info", ROUTER, f"{path} is served outside MLflow's proto catalog; "
                         "preflight has no rules for it.")
                raise _Answer(None)
            raise self.fail(404, ROUTER, f"No route {path}: the server answers 404 with "
                            "Flask's HTML 'Not Found' page (not MLflow error JSON).",
                            _route_fix(path))
        if req.method == "OPTIONS":
            if "origin" in req.headers:
                self.add("info", SECURITY + "CORSMiddleware",
                         "A CORS preflight: Starlette's CORSMiddleware answers it.")
                raise _Answer(None)
            raise self.fail(204, "mlflow/server/fastapi_security.py::SecurityHeadersMiddleware",
                            "OPTIONS on an API path: Flask answers it, the middleware "
                            "turns the 200 into 204 No Content.", severity="info")
        for ep in found:
            if req.method in _methods(ep):
                return ep
        allowed = sorted({m for e in found for m in e.http_methods})
        raise self.fail(405, ROUTER, f"{path} exists but does not take {req.method}: the server "
                        "answers 405 with Flask's HTML 'Method Not Allowed' page.",
                        f"Use {' or '.join(allowed)}.")

    def content_type(self) -> None:
        """mlflow/server/validation.py::_validate_content_type (POST and PUT only)."""
        if self.req.method not in ("POST", "PUT"):
            return
        check = "mlflow/server/validation.py::_validate_content_type"
        value = self.req.headers.get("content-type")
        if value is None:
            raise self.fail(400, check, "No Content-Type header: the server refuses the body "
                            "before reading it.",
                            "Send Content-Type: application/json (requests adds it for json=; "
                            "data= sends none).",
                            said="Bad Request. Content-Type header is missing.",
                            code="INVALID_PARAMETER_VALUE")
        media = value.split(";")[0]
        if media != "application/json":
            raise self.fail(400, check, f"Content-Type {value!r}: the server compares the part "
                            "before ';' with 'application/json' exactly." + _ct_why(value),
                            "Send exactly Content-Type: application/json.",
                            said="Bad Request. Content-Type must be one of ['application/json'].",
                            code="INVALID_PARAMETER_VALUE")

    def handler(self, rule: HandlerRule) -> None:
        raw, error = _flask_get_json(self.req.body)
        if error is not None:
            what = "is empty" if not self.req.body else f"is not valid JSON ({error})"
            self.add("error", H + "_get_request_json",
                     f"The body {what}. The server does not say so: get_json(silent=True) "
                     "turns it into {} and the request looks empty.",
                     "Send json.dumps(payload) (double quotes, no trailing commas) in UTF-8.")
        if rule.handler == "_log_batch":
            self._batch_size(raw)
        self.request_json = self._normalize(raw)
        self._reject_aliases(self.request_json, self._descriptor())
        proto_ok = self._parse()
        self._schema(rule, proto_ok)
        _STORE_STEPS.get(self.endpoint.name, _no_store_step)(self, rule)

    # -- handler steps

    def _batch_size(self, raw: Any) -> None:
        """handlers.py::_log_batch calls _validate_batch_log_api_req(_get_request_json())."""
        check = UV + "_validate_batch_log_api_req"
        try:
            size = len(raw)
        except TypeError as exc:
            raise self.fail(500, check, f"{CRASH}: it measures the parsed body with len() "
                            f"before anything else ({type(exc).__name__}: {exc}).",
                            "Send a JSON object with run_id.") from None
        if size > uv.MAX_BATCH_LOG_REQUEST_SIZE:  # len() of the top-level JSON value
            self.store_check(check, uv._validate_batch_log_api_req, raw)

    def _normalize(self, raw: Any) -> Any:
        """handlers.py::_get_normalized_request_json."""
        if isinstance(raw, str):
            try:
                decoded = json.loads(raw)
            except ValueError as exc:
                raise self.fail(500, H + "_get_normalized_request_json",
                                f"{CRASH}: the body is a JSON string, which the server decodes "
                                f"a second time, and that fails ({exc}).",
                                "Send the JSON object itself, not a string holding it.") from None
            self.add("warning", H + "_get_normalized_request_json",
                     "The body is a JSON string holding JSON (double-encoded, e.g. "
                     "json.dumps(json.dumps(...)) or json=json.dumps(...)); the server decodes "
                     "it a second time for old clients.",
                     "Send data=json.dumps(payload) or json=payload, not both.")
            raw = decoded
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            self.add("error", H + "_get_request_message",
                     f"The body is a JSON {type(raw).__name__}, not an object; the server "
                     "expects {\"field\": value, ...}.", "Wrap the fields in one JSON object.")
        return raw

    def _descriptor(self) -> Any:
        return self.endpoint.request_class.DESCRIPTOR

    def _reject_aliases(self, request_json: Any, descriptor: Any) -> None:
        """handlers.py::_reject_conflicting_field_aliases."""
        if not isinstance(request_json, dict):
            return
        for fd in descriptor.fields:
            if fd.name != fd.json_name and fd.name in request_json and \
                    fd.json_name in request_json:
                raise self.fail(
                    400, H + "_reject_conflicting_field_aliases",
                    f"The body spells one field twice: '{fd.name}' and '{fd.json_name}'.",
                    f"Keep only '{fd.name}'.", code="INVALID_PARAMETER_VALUE",
                    said=f"Request specifies both '{fd.name}' and '{fd.json_name}'; "
                         "provide only one of them.")
            nested = fd.message_type
            if nested is None or nested.GetOptions().map_entry or \
                    nested.full_name.startswith("google.protobuf."):
                continue
            value = request_json.get(fd.name, request_json.get(fd.json_name))
            for item in value if isinstance(value, list) else [value]:
                self._reject_aliases(item, nested)

    def _parse(self) -> bool:
        """handlers.py::_get_request_message: parse_dict(..., ignore_unknown_fields=True)."""
        msg = self.endpoint.request_class()
        error: Exception | None = None
        try:
            json_format.ParseDict(self.request_json, msg, ignore_unknown_fields=True)
        except json_format.ParseError as exc:
            error = exc
        except Exception as exc:  # the server lets these escape: 500
            raise self.fail(500, PARSE, f"{CRASH}: the proto parser cannot iterate a JSON "
                            f"{type(self.request_json).__name__} ({type(exc).__name__}: {exc}).",
                            "Send a JSON object.") from None
        self.message = msg
        self.parsed = _to_python(msg)
        if error is not None:
            self._explain_partial_parse(error)
        return error is None

    def _explain_partial_parse(self, exc: Exception) -> None:
        body = self.request_json
        if not isinstance(body, dict):
            return
        by_key = {k: f for f in self.endpoint.fields for k in (f.name, f.json_name)}
        keys = [k for k in body if k in by_key]
        bad = next((k for k in keys if not _parses(self.endpoint, k, body[k])), None)
        if bad is None:
            return
        dropped = keys[keys.index(bad) + 1:]
        f = by_key[bad]
        tail = (f"; it also skips everything after it in the body: {', '.join(dropped)}"
                if dropped else "")
        defaults = ", ".join(f"{by_key[k].name}={self.parsed[by_key[k].name]!r}"
                             for k in [bad, *dropped]
                             if not by_key[k].repeated and not by_key[k].message
                             and by_key[k].name in self.parsed)
        seen = f" The handler sees {defaults}." if defaults else ""
        if f.message and self.parsed.get(f.name):
            # A list item half-parsed before the failure is kept, with defaults for the rest.
            seen += f" What it kept of '{bad}': {json.dumps(self.parsed[f.name])}."
        fix = (f"Fix the item the parser names inside '{bad}'." if f.message
               else f"Send '{bad}' as {_type_hint(f)}.")
        self.add("warning", PARSE,
                 f"The proto parser gives up at '{bad}' ({_short(exc)}) and keeps only the "
                 f"fields before it{tail}.{seen} The handler's type checks then run on the raw "
                 "JSON instead.", fix)

    def _schema(self, rule: HandlerRule, proto_ok: bool) -> None:
        """handlers.py::_validate_request_json_with_schema + _validate_param_against_schema."""
        body = self.request_json
        nested = dict(rule.nested_required)
        check = f"{H}_validate_param_against_schema (schema of {rule.handler})"
        try:
            for key, names in rule.schema:
                if not (key in body or "required" in names):
                    continue
                value = body.get(key)
                if key == "run_id" and value is None and "run_uuid" in body:
                    value = body.get("run_uuid")
                for name in names:
                    if name in _TYPE_CHECKS and proto_ok:
                        continue
                    fn = _CHECKS.get(name) or _fields_present(key, nested[key])
                    try:
                        fn(value)
                    except AssertionError as exc:
                        raise self._schema_error(check, key, value, name, exc) from None
        except _Answer:
            raise
        except Exception as exc:  # only AssertionError becomes a 400 on the server
            raise self.fail(500, check, f"{CRASH}: {type(exc).__name__}: {exc}.",
                            _crash_fix(body)) from None

    def _schema_error(self, check: str, key: str, value: Any, name: str,
                      exc: AssertionError) -> _Answer:
        f = _field_or_none(self.endpoint, key)
        if exc.args:
            said = exc.args[0]
            needed = "', '".join(dict(self.endpoint.rule.nested_required)[key])
            fix = f"Every item of '{key}' needs a non-empty '{needed}'."
        elif name == "required":
            said = uv.missing_value(key)
            fix = f"Add \"{key}\": {_type_hint(f)}." + self._camel_hint(key, f)
        else:
            hint = f" Hint: Value was of type '{type(value).__name__}'."
            said = uv.invalid_value(key, value, hint)
            fix = f"Send '{key}' as {_type_hint(f)}."
        return self.fail(400, check, f"{said} (the '{name}' check of the handler's schema, "
                         f"on '{key}')", fix, said=said + DOCS_HINT, code="INVALID_PARAMETER_VALUE")

    def _camel_hint(self, key: str, f: Field | None) -> str:
        body = self.request_json
        if f is not None and f.json_name != key and f.json_name in body:
            return f" (You sent '{f.json_name}': the parser accepts it, the check reads '{key}'.)"
        if key == "run_id" and body.get("run_id") == "" and "run_uuid" in body:
            return " (An empty run_id blocks the fall-back to run_uuid.)"
        return ""

    def store_check(self, check: str, fn: Callable[..., Any], *args: Any) -> Any:
        """Run one validator of mlflow/utils/validation.py exactly as the store does."""
        try:
            with _quiet():
                return fn(*args)
        except MlflowException as exc:
            raise self.fail(exc.get_http_status_code(), check, exc.message,
                            _store_fix(exc.message), said=exc.message,
                            code=exc.error_code) from None

    def _state_subject(self) -> str:
        msg, fields = self.message, {f.name for f in self.endpoint.fields}
        if "run_id" in fields and msg is not None:
            run_id = msg.run_id or (msg.run_uuid if "run_uuid" in fields else "")
            return f"run '{run_id}': "
        if "experiment_id" in fields and msg is not None:
            return f"experiment '{msg.experiment_id or '0'}': "
        return ""

    # -- lint: warnings about a body the server accepts or explains badly

    def lint(self) -> None:
        ep, body = self.endpoint, self._lint_body()
        if ep is None or not isinstance(body, dict):
            return
        _unknown_keys(self, ep.fields, body, "")
        # MLflow's own client sends both spellings with one value: only run_uuid *alone* is
        # the deprecated use worth a warning.
        if ("run_uuid" in body and not body.get("run_id")
                and any(f.name == "run_uuid" for f in ep.fields)):
            self.add("warning", H + ep.rule.handler if ep.rule else ROUTER,
                     "run_uuid is the deprecated spelling of run_id.", "Send run_id instead.")
        _nonfinite(self, body, "")
        if ep.rule is not None:
            for path in ep.rule.timestamp_fields:
                for where, value in _values_at(body, path):
                    _timestamp_warning(self, where, value)
        _float_field_warnings(self, ep, body)

    def _lint_body(self) -> Any:
        if self.request_json is not None:
            return self.request_json
        raw, error = _flask_get_json(self.req.body)
        if isinstance(raw, str):
            with contextlib.suppress(ValueError):
                raw = json.loads(raw)
        return raw if error is None else None


# ------------------------------------------------------------- store steps, per endpoint


def _no_store_step(sim: _Simulation, rule: HandlerRule) -> None:
    msg = sim.message
    if "run_id" in dict(rule.schema) and not rule.reads_run_uuid and not msg.run_id:
        raise sim.fail(404, STORE + "_get_run",
                       f"{rule.handler} reads run_id only; the body's run_uuid passes the "
                       "schema check but the handler looks up run ''.", "Send run_id.",
                       said="Run with id= not found", code="RESOURCE_DOES_NOT_EXIST")


_METRIC_INIT = "mlflow/entities/metric.py::Metric.__init__"


def _log_metric(sim: _Simulation, rule: HandlerRule) -> None:
    m = sim.message
    # The handler builds the Metric entity before the store sees it; its constructor refuses
    # half a dataset (name without digest, or the reverse) with a 400.
    sim.store_check(_METRIC_INIT, Metric, m.key, m.value, m.timestamp, m.step,
                    m.model_id or None, m.dataset_name or None, m.dataset_digest or None,
                    m.run_id or None)
    sim.store_check(UV + "_validate_metric", uv._validate_metric, m.key, m.value, m.timestamp,
                    m.step)
    _stored_value_warning(sim, m.value, "value")


def _log_param(sim: _Simulation, rule: HandlerRule) -> None:
    m = sim.message
    sim.store_check(UV + "_validate_param", uv._validate_param, m.key, m.value)
    _truncation_warning(sim, "value", m.value, uv.MAX_PARAM_VAL_LENGTH)


def _set_tag(sim: _Simulation, rule: HandlerRule) -> None:
    m = sim.message
    sim.store_check(UV + "_validate_tag", uv._validate_tag, m.key, m.value)
    _truncation_warning(sim, "value", m.value, uv.MAX_TAG_VAL_LENGTH)


def _log_batch(sim: _Simulation, rule: HandlerRule) -> None:
    m = sim.message
    metrics = [sim.store_check(_METRIC_INIT, Metric.from_proto, x) for x in m.metrics]
    params = [Param.from_proto(x) for x in m.params]
    tags = [RunTag.from_proto(x) for x in m.tags]
    sim.store_check(UV + "_validate_run_id", uv._validate_run_id, m.run_id)
    sim.store_check(UV + "_validate_batch_log_data", uv._validate_batch_log_data,
                    metrics, params, tags)
    sim.store_check(UV + "_validate_batch_log_limits", uv._validate_batch_log_limits,
                    metrics, params, tags)
    sim.store_check(UV + "_validate_param_keys_unique", uv._validate_param_keys_unique, params)
    for i, metric in enumerate(metrics):
        _stored_value_warning(sim, metric.value, f"metrics[{i}].value")
    for i, p in enumerate(params):
        _truncation_warning(sim, f"params[{i}].value", p.value, uv.MAX_PARAM_VAL_LENGTH)
    for i, t in enumerate(tags):
        _truncation_warning(sim, f"tags[{i}].value", t.value, uv.MAX_TAG_VAL_LENGTH)
    body = sim.request_json
    for name in ("metrics", "params", "tags"):
        sent = body.get(name) if isinstance(body, dict) else None
        kept = len(getattr(m, name))
        if isinstance(sent, list) and kept < len(sent):
            sim.add("warning", PARSE, f"Only {kept} of the {len(sent)} {name} reach the store; "
                    "the rest are dropped silently because proto parsing stopped early.",
                    "Fix the item the parser gave up on (see above).")


def _create_run(sim: _Simulation, rule: HandlerRule) -> None:
    m = sim.message
    if m.experiment_id:
        sim.store_check(UV + "_parse_experiment_id", uv._parse_experiment_id, m.experiment_id)
    run_name_tag = next((t.value for t in m.tags if t.key == MLFLOW_RUN_NAME), None)
    if m.run_name and run_name_tag and m.run_name != run_name_tag:
        said = ("Both 'run_name' argument and 'mlflow.runName' tag are specified, but with "
                f"different values (run_name='{m.run_name}', mlflow.runName='{run_name_tag}').")
        raise sim.fail(400, STORE + "create_run", said, "Give one run name, or the same in both.",
                       said=said, code="INVALID_PARAMETER_VALUE")
    if not m.experiment_id:
        raise sim.fail(
            400, STORE + "create_run",
            "No experiment_id: the store looks up the Default experiment for checks but "
            "inserts the run with experiment_id '' and the database refuses it (a "
            "FOREIGN KEY/type error reported as 400 BAD_REQUEST with SQL in the message).",
            "Send \"experiment_id\": \"0\" (Default) or the id experiments/create returned.",
            code="BAD_REQUEST")
    if any(not t.key for t in m.tags):
        sim.add("warning", STORE + "create_run",
                "runs/create does not validate tags: a tag without a key is stored as ''.",
                "Give every tag a key.")


def _update_run(sim: _Simulation, rule: HandlerRule) -> None:
    body = sim.request_json
    if isinstance(body, dict) and body.get("status") is not None and \
            not sim.message.HasField("status"):
        names = ", ".join(sim.endpoint.field("status").enum_values)
        sim.add("warning", PARSE,
                f"status {body['status']!r} is not a RunStatus: it is ignored and the run "
                "keeps its status (the answer is still 200).", f"Use one of {names}.")


def _create_experiment(sim: _Simulation, rule: HandlerRule) -> None:
    m = sim.message
    views = sum(t.key.startswith(MLFLOW_CUSTOM_VIEW_TAG_PREFIX) for t in m.tags)
    if views > uv.MAX_CUSTOM_VIEWS_PER_EXPERIMENT:
        said = ("Unable to create another custom view; the maximum number of custom views per "
                f"experiment is {uv.MAX_CUSTOM_VIEWS_PER_EXPERIMENT}. Delete an existing custom "
                "view before creating a new one.")
        raise sim.fail(400, H + "_validate_custom_view_count", said, "Send fewer view tags.",
                       said=said, code="INVALID_PARAMETER_VALUE")
    location = m.artifact_location
    if location:
        parsed = urlparse(location)
        if parsed.fragment or parsed.params:
            said = "'artifact_location' URL can't include fragments or params."
            raise sim.fail(400, H + "_validate_storage_location_uri", said,
                           "Remove the ';params' or '#fragment'.", said=said,
                           code="INVALID_PARAMETER_VALUE")
        sim.store_check("mlflow/utils/uri.py::validate_query_string", validate_query_string,
                        parsed.query)
        names_host = parsed.netloc or parsed.scheme != "mlflow-artifacts"
        if parsed.scheme in _HOST_SCHEMES and names_host:
            sim.add("info", H + "_validate_artifact_uri_scheme",
                    f"A '{parsed.scheme}' artifact_location names a host: the server accepts "
                    "it only if that host is its own artifact store or the scheme is allowed "
                    "by MLFLOW_ALLOWED_HOST_ADDRESSED_ARTIFACT_SCHEMES.")
            raise _Answer(None)
        sim.store_check(UV + "_validate_experiment_artifact_location",
                        uv._validate_experiment_artifact_location, location)
        sim.store_check(UV + "_validate_experiment_artifact_location_length",
                        uv._validate_experiment_artifact_location_length, location)
    sim.store_check(UV + "_validate_experiment_name", uv._validate_experiment_name, m.name)
    for t in m.tags:
        sim.store_check(UV + "_validate_experiment_tag", uv._validate_experiment_tag,
                        t.key, t.value)


def _set_experiment_tag(sim: _Simulation, rule: HandlerRule) -> None:
    m = sim.message
    sim.store_check(UV + "_validate_experiment_tag", uv._validate_experiment_tag, m.key, m.value)
    sim.store_check(UV + "_parse_experiment_id", uv._parse_experiment_id, m.experiment_id)


def _experiment_id_only(sim: _Simulation, rule: HandlerRule) -> None:
    sim.store_check(UV + "_parse_experiment_id", uv._parse_experiment_id,
                    sim.message.experiment_id)


_STORE_STEPS: dict[str, Callable[[_Simulation, HandlerRule], None]] = {
    "logMetric": _log_metric, "logParam": _log_param, "setTag": _set_tag,
    "logBatch": _log_batch, "createRun": _create_run, "updateRun": _update_run,
    "createExperiment": _create_experiment, "setExperimentTag": _set_experiment_tag,
    "deleteExperiment": _experiment_id_only, "restoreExperiment": _experiment_id_only,
}
_HOST_SCHEMES = frozenset({"ftp", "sftp", "hdfs", "viewfs", "http", "https", "mlflow-artifacts",
                           "r2", "b2", "abfss"})  # mlflow/store/artifact/host_policy.py


# ------------------------------------------------------------------------------ helpers


def _flask_get_json(body: bytes) -> tuple[Any, str | None]:
    """Werkzeug's get_json(force=True, silent=True): json.loads on the raw bytes (UTF-8/16/32
    detected, BOM allowed, NaN/Infinity accepted), None on any ValueError."""
    try:
        return json.loads(body), None
    except ValueError as exc:
        return None, str(exc)


def _methods(ep: Endpoint) -> set[str]:
    extra = {"HEAD"} if "GET" in ep.http_methods else set()
    return {*ep.http_methods, *extra, "OPTIONS"}


def _allowed_host(host: str) -> bool:
    """security_utils.py::get_default_allowed_hosts + is_allowed_host_header."""
    local = ["localhost", "127.0.0.1", "[::1]", "0.0.0.0"]
    patterns = [*local, "localhost:*", "127.0.0.1:*", "[[]::1]:*", "0.0.0.0:*",
                "192.168.*", "10.*", *(f"172.{i}.*" for i in range(16, 32)), "fc00:*", "fd00:*"]
    return bool(host) and any(fnmatch.fnmatch(host, p) if "*" in p else host == p
                              for p in patterns)


def _localhost_origin(origin: str) -> bool:
    """security_utils.py::is_localhost_origin."""
    try:
        return urlparse(origin).hostname in ("localhost", "127.0.0.1", "[::1]", "::1")
    except ValueError:
        return False


def _route_fix(path: str) -> str:
    from helpers.catalog import _catalog

    known = [p for e in _catalog() for p in e.paths]
    close = difflib.get_close_matches(path, known, n=1, cutoff=0.8)
    if close:
        return f"Did you mean {close[0]}?"
    if not path.startswith(PREFIXES):
        return "MLflow's REST paths start with /api/2.0/mlflow/ (e.g. /api/2.0/mlflow/runs/create)."
    return "Check the path against the REST API reference (catalog.endpoints() lists them)."


def _ct_why(value: str) -> str:
    media = value.split(";")[0]
    if media.lower().strip() == "application/json":
        if media.lower() == "application/json":
            return " It is case-sensitive here, although media types are not in HTTP."
        return " The space before ';' makes it 'application/json ', which does not match."
    if "," in media:
        return " Two media types (or two Content-Type headers merged into one) never match."
    if media == "application/x-www-form-urlencoded":
        return " That is what requests sends for data=<dict>; use json=<dict> instead."
    if media == "":
        return " An empty header counts as present but wrong."
    return ""


def _short(exc: Exception) -> str:
    text = str(exc).rstrip(".")
    return text if len(text) < 120 else text[:117] + "..."


def _parses(ep: Endpoint, key: str, value: Any) -> bool:
    try:
        json_format.ParseDict({key: value}, ep.request_class(), ignore_unknown_fields=True)
        return True
    except json_format.ParseError:
        return False


def _field_or_none(ep: Endpoint | None, key: str) -> Field | None:
    if ep is None:
        return None
    return next((f for f in ep.fields if key in (f.name, f.json_name)), None)


def _type_hint(f: Field | None) -> str:
    if f is None:
        return "the documented type"
    if f.repeated:
        return "a JSON array" + (" of objects" if f.message else "")
    if f.name in ("timestamp", "start_time", "end_time"):
        return "a whole number of milliseconds, e.g. int(time.time() * 1000)"
    return {
        "string": "a JSON string", "double": "a JSON number (or the string \"NaN\")",
        "int64": "a whole JSON number", "int32": "a whole JSON number",
        "bool": "true or false", "message": "a JSON object",
        "enum": "one of " + ", ".join(f.enum_values),
    }.get(f.type, f"a {f.type}")


def _crash_fix(body: Any) -> str:
    if isinstance(body, dict):
        return "Send a plain value: a string, a number, or a list of objects where documented."
    return "Send one JSON object: {\"field\": value, ...}."


def _store_fix(message: str) -> str:
    if "exceeds the maximum length" in message or "at most" in message:
        return "Shorten it or split the request."
    if "Names may only contain" in message or "resolve to" in message:
        return "Use letters, digits, _ - . space : / only, and no '..' or leading '/'."
    return "Change the value as the message says."


def _stored_value_warning(sim: _Simulation, value: float, where: str) -> None:
    if math.isnan(value):
        sim.add("info", STORE + "sanitize_metric_value", f"{where} is NaN: stored as NaN.")
    elif math.isinf(value):
        sim.add("warning", STORE + "sanitize_metric_value",
                f"{where} is infinite: the SQL store saves +/-1.7976931348623157e308 instead.",
                "Log a finite number if the exact value matters.")


def _truncation_warning(sim: _Simulation, where: str, value: str, limit: int) -> None:
    if len(value) > limit:
        sim.add("warning", UV + "_validate_length_limit",
                f"{where} has {len(value)} characters: the server keeps the first {limit} "
                "and says nothing (MLFLOW_TRUNCATE_LONG_VALUES, on by default).",
                f"Keep it under {limit} characters, or log it as an artifact.")


#: Unknown fields named one by one (each costs a difflib search); the rest get one summary.
_UNKNOWN_NAMED = 20


def _unknown_keys(sim: _Simulation, fields: tuple[Field, ...], body: dict, where: str) -> None:
    known = {k: f for f in fields for k in (f.name, f.json_name)}
    unknown = 0
    for key, value in body.items():
        f = known.get(key)
        if f is None:
            unknown += 1
            if unknown > _UNKNOWN_NAMED:
                continue
            close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            sim.add("warning", PARSE + " ignore_unknown_fields=True",
                    f"Unknown field '{where}{key}': the server drops it silently.{hint}",
                    f"Rename it to '{close[0]}'." if close else "Remove it.")
        elif key == f.json_name != f.name and f.handler_checks:
            sim.add("warning", H + "_validate_request_json_with_schema",
                    f"'{where}{key}' is the proto's JSON name: the parser accepts it, but the "
                    f"handler's checks look for '{f.name}' only.", f"Send '{f.name}'.")
        elif f.message and f.fields and isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    _unknown_keys(sim, f.fields, item, f"{where}{f.name}[{i}].")
    if unknown > _UNKNOWN_NAMED:
        sim.add("warning", PARSE + " ignore_unknown_fields=True",
                f"{unknown - _UNKNOWN_NAMED} more unknown fields in "
                f"{where.rstrip('.') or 'the body'}: the server drops them silently too.",
                "Remove them.")


def _nonfinite(sim: _Simulation, value: Any, where: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        sim.add("warning", PARSE,
                f"{where or 'the body'} is a bare {_nonfinite_name(value)} literal. JSON has "
                "none (Python's "
                "json.dumps writes it anyway); the server's JSON reader accepts it but the proto "
                "parser refuses it.", f"Send the string \"{_nonfinite_name(value)}\" instead.")
    elif isinstance(value, dict):
        for k, v in value.items():
            _nonfinite(sim, v, f"{where}.{k}" if where else k)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _nonfinite(sim, v, f"{where}[{i}]")


def _nonfinite_name(value: float) -> str:
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _values_at(body: dict, path: str) -> Iterator[tuple[str, Any]]:
    if "[]." in path:
        outer, inner = path.split("[].")
        items = body.get(outer)
        for i, item in enumerate(items if isinstance(items, list) else []):
            if isinstance(item, dict) and inner in item:
                yield f"{outer}[{i}].{inner}", item[inner]
    elif path in body:
        yield path, body[path]


def _timestamp_warning(sim: _Simulation, where: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if 0 < value < SECONDS_THRESHOLD:
        sim.add("warning", "MLflow timestamps are milliseconds since the epoch",
                f"{where}={value!r} looks like seconds: it is stored as {value} ms, i.e. "
                "early 1970.", "Send int(time.time() * 1000).")
    elif value < 0 and where != "timestamp" and not where.endswith("].timestamp"):
        sim.add("warning", STORE + "create_run / update_run_info",
                f"{where}={value!r} is negative; runs/create and runs/update store it as is.",
                "Send milliseconds since the epoch.")


def _float_field_warnings(sim: _Simulation, ep: Endpoint, body: dict) -> None:
    for f in ep.fields:
        value = body.get(f.name)
        if f.type == "double" and isinstance(value, bool):
            sim.add("warning", PARSE, f"{f.name}={value!r} is a boolean: stored as "
                    f"{float(value)}.", "Send a number.")
        elif f.type in ("double", "int64") and isinstance(value, str) and sim.parsed and \
                _parses(ep, f.name, value):
            sim.add("info", PARSE, f"{f.name} is the string {value!r}: the proto parser "
                    "converts numeric strings, so it is accepted.")


def _to_python(msg: Any) -> dict[str, Any]:
    """A message as the handler reads it: unset scalars show their default, which is what a
    handler gets from msg.field (enums unset show None: handlers test HasField first)."""
    out: dict[str, Any] = {}
    for fd in msg.DESCRIPTOR.fields:
        value = getattr(msg, fd.name)
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            out[fd.name] = dict(value)
        elif fd.message_type is not None:
            if fd.is_repeated:
                out[fd.name] = [_to_python(x) for x in value]
            elif not fd.has_presence or msg.HasField(fd.name):
                out[fd.name] = _to_python(value)
        elif fd.is_repeated:
            out[fd.name] = list(value)
        elif fd.enum_type is not None:
            unset = fd.has_presence and not msg.HasField(fd.name)
            out[fd.name] = None if unset else fd.enum_type.values_by_number[value].name
        else:
            out[fd.name] = value
    return out


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The validators log a warning when they truncate; the learner sees a finding instead."""
    logger = logging.getLogger("mlflow.utils.validation")
    previous, logger.disabled = logger.disabled, True
    try:
        yield
    finally:
        logger.disabled = previous
