"""Predict what the MLflow server answers to one request, and why, by running the server model.

`preflight()` walks the server's pipeline on the exact bytes: security middleware, router,
decorators, Content-Type, JSON, protobuf parsing, the handler's `schema` (MLflow's validators,
from helpers.server_model), then what the store checks where the model has it. Findings have
stable ids and name the MLflow code they mirror. What server state decides is `None` offline,
with a "state" finding; `server=URL` settles it with read-only lookups. A step the model does
not cover gets a "not-modelled" finding and `None`, never a guess.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlparse, urlsplit

import requests
from google.protobuf.json_format import ParseError
from mlflow.entities import Metric, Param, RunTag
from mlflow.environment_variables import (
    MLFLOW_ENABLE_AI_GATEWAY,
    MLFLOW_ENABLE_WORKSPACES,
    MLFLOW_TRUNCATE_LONG_VALUES,
)
from mlflow.exceptions import MlflowException
from mlflow.utils import validation as uv
from mlflow.utils.mlflow_tags import MLFLOW_CUSTOM_VIEW_TAG_PREFIX, MLFLOW_RUN_NAME
from mlflow.utils.proto_json_utils import parse_dict
from mlflow.utils.uri import validate_query_string

from helpers import registry_checks, search_checks
from helpers import server_model as model
from helpers.server_model import HOST_ADDRESSED_ARTIFACT_SCHEMES, PREFIXES, Endpoint, Field

Severity = Literal["error", "warning", "info"]

H = "mlflow/server/handlers.py::"
UV = "mlflow/utils/validation.py::"
STORE = "mlflow/store/tracking/sqlalchemy_store.py::SqlAlchemyStore."
PARSE = "google/protobuf/json_format.py::ParseDict (from " + H + "_get_request_message)"
ROUTER = "werkzeug routing (Flask url map built by " + H + "get_endpoints)"
SECURITY = "mlflow/server/fastapi_security.py::"
CRASH = ("The server crashes with 500 Internal Server Error (an HTML page, no MLflow error "
         "JSON) instead of answering a clear 400")
SECONDS_THRESHOLD = 1e11  # ms timestamps are > 1e12 since 2001; < 1e11 looks like seconds
#: How deep preflight walks a body looking for traps (the server's own limits are lower).
_MAX_DEPTH = 64


@dataclass(frozen=True)
class Finding:
    """One thing the server will do with the request, and how to fix it if it is a problem.

    `id` is stable (e.g. "missing-field", "trap-seconds-timestamp", "not-modelled"): tests,
    explain() and allow-lists key on it; the message may be reworded.
    """

    severity: Severity
    check: str
    message: str
    fix: str = ""
    id: str = ""


@dataclass(frozen=True)
class Verdict:
    """The predicted answer to one request (`predicted_status` None: it depends on server state
    or on a step the model does not cover; a finding says which)."""

    method: str
    path: str
    endpoint: Endpoint | None
    predicted_status: int | None
    expected_message: str | None
    expected_error_code: str | None
    findings: tuple[Finding, ...]
    #: The parsed request message (None when the request never got that far).
    message: Any = field(default=None, repr=False, compare=False)
    #: True when read-only lookups against a server settled the state this answer depends on.
    state_checked: bool = False

    @property
    def parsed(self) -> Mapping[str, Any] | None:
        """The request message as the handler reads it after protobuf parsing (defaults filled
        in), or None when the request never got that far. Built on first use."""
        return None if self.message is None else _to_python(self.message)

    @property
    def status(self) -> int | None:
        return self.predicted_status

    @property
    def valid(self) -> bool:
        """True when no check refuses the request: predicted 2xx, or valid as sent with only
        server state left to decide (status None and a "state" finding)."""
        if self.errors:
            return False
        if self.predicted_status is None:
            return any(f.id == "state" for f in self.findings)
        return 200 <= self.predicted_status < 300

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "error")

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "warning")

    def __str__(self) -> str:
        status = "cannot tell" if self.predicted_status is None else self.predicted_status
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
              body: bytes | str | None = None, *, server: str | None = None,
              session: requests.Session | None = None) -> Verdict:
    """Predict the server's answer to `method path_or_url` with these headers and body bytes.

    `headers` and `body` mean what they mean to `requests.request(..., headers=, data=)`: no
    Content-Type is added for you, a str body is sent as UTF-8, a header set to None is absent.
    With `server` (the MLflow server's base URL), read-only GET lookups settle what depends on
    server state; without it such a request is predicted `None`, with a "state" finding.
    """
    if body is not None and not isinstance(body, (bytes, str)):
        raise TypeError("body must be the bytes (or str) you send, e.g. json.dumps(payload); "
                        f"got {type(body).__name__}")
    req = _Request.build(method, path_or_url, headers, body)
    sim = _Simulation(req, server.rstrip("/") if server else None, session)
    try:
        sim.run()
        status, message, code = 200, None, None
    except _Answer as answer:
        status, message, code = answer.status, answer.message, answer.error_code
    sim.lint()
    return Verdict(method=req.method, path=req.path, endpoint=sim.endpoint,
                   predicted_status=status, expected_message=message, expected_error_code=code,
                   findings=tuple(sim.findings), message=sim.message,
                   state_checked=sim.state_checked)


# --------------------------------------------------------------------------- request model


@dataclass(frozen=True)
class _Request:
    method: str
    path: str
    query: tuple[tuple[str, str], ...]
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
        # The ASGI server percent-decodes the path before routing (log%2Dmetric is log-metric).
        return cls(method.upper(), unquote(parts.path or "/"),
                   tuple(parse_qsl(parts.query, keep_blank_values=True)), host, seen, data)


class _Answer(Exception):
    """The server's answer is decided at this step (status None: the model cannot tell)."""

    def __init__(self, status: int | None, message: str | None = None,
                 error_code: str | None = None):
        super().__init__(status, message)
        self.status, self.message, self.error_code = status, message, error_code


# ----------------------------------------------------------------------------- simulation


@dataclass
class _Simulation:
    req: _Request
    server: str | None
    session: requests.Session | None
    findings: list[Finding] = field(default_factory=list)
    endpoint: Endpoint | None = None
    request_json: Any = None
    message: Any = None
    stopped_at: str | None = None  # the field where protobuf parsing gave up
    state_checked: bool = False

    def add(self, severity: Severity, id_: str, check: str, message: str, fix: str = "") -> None:
        self.findings.append(Finding(severity, check, message, fix, id_))

    def fail(self, status: int | None, id_: str, check: str, message: str, fix: str = "", *,
             said: str | None = None, code: str | None = None,
             severity: Severity = "error") -> _Answer:
        """Record the finding that decides the answer and return the answer to raise."""
        self.add(severity, id_, check, message, fix)
        return _Answer(status, said, code)

    def not_modelled(self, what: str) -> _Answer:
        return self.fail(None, "not-modelled", "helpers/server_model.py",
                         f"Not modelled: {what}. Preflight cannot predict this answer.",
                         severity="info")

    # -- the pipeline, in the server's order

    def run(self) -> None:
        self.security()
        ep = self.endpoint = self.route()
        self.decorators(ep)
        if ep.handler is None:  # handlers.py::get_handler falls back to _not_implemented
            raise self.fail(404, "not-implemented", H + "_not_implemented",
                            f"{ep.name} is routed but handlers.py has no handler for it: the "
                            "server answers 404 with an empty body.",
                            "This server does not implement it; use another endpoint.")
        if ep.schema is None:
            raise self.not_modelled(f"{ep.handler} has no schema dict; what it checks")
        first: _Answer | None = None
        try:
            self.content_type()
        except _Answer as answer:
            first = answer
        mark = len(self.findings)
        try:
            self.handler(ep)
        except _Answer as answer:
            if first is None:
                raise self._uncaught(ep, answer) from None
            self._relabel_after(mark)
        if first is not None:
            self.message = None  # the server never parsed this body
            raise first

    def _uncaught(self, ep: Endpoint, answer: _Answer) -> _Answer:
        """A handler without @catch_mlflow_exception lets MLflow's error escape: Flask's 500."""
        if answer.error_code is None or "catch_mlflow_exception" in ep.decorators:
            return answer
        return self.fail(500, "server-error", H + str(ep.handler), f"{CRASH}: {ep.handler} "
                         f"has no @catch_mlflow_exception, so this error escapes: "
                         f"{answer.message}", "Fix what that message names.")

    def _relabel_after(self, mark: int) -> None:
        """Findings past a Content-Type failure describe the next answer once that is fixed."""
        for i in range(mark, len(self.findings)):
            f = self.findings[i]
            if f.severity == "error":
                self.findings[i] = Finding("error", f.check, "Once Content-Type is fixed: "
                                           + f.message, f.fix, f.id)

    def security(self) -> None:
        """fastapi_security.py middleware, with mlflow/server/security_utils.py's own rules."""
        req, sec = self.req, model.security()
        if req.host is not None and req.path not in sec.HEALTH_ENDPOINTS:
            allowed = sec.get_allowed_hosts_from_env() or sec.get_default_allowed_hosts()
            if not sec.is_allowed_host_header(allowed, req.host):
                raise self.fail(
                    403, "forbidden-host", SECURITY + "HostValidationMiddleware",
                    f"Host {req.host!r} is not a localhost or private address: the server "
                    "refuses it (DNS-rebinding protection) before routing.",
                    "Use http://127.0.0.1:PORT or http://localhost:PORT, or start the server "
                    "with --allowed-hosts / MLFLOW_SERVER_ALLOWED_HOSTS.",
                    said=sec.INVALID_HOST_MSG)
        origin = req.headers.get("origin")
        if origin is not None and req.path.startswith((sec.API_PATH_PREFIX,
                                                       sec.AJAX_API_PATH_PREFIX)) and \
                sec.should_block_cors_request(origin, req.method,
                                              sec.get_allowed_origins_from_env()):
            raise self.fail(
                403, "forbidden-origin", SECURITY + "CORSBlockingMiddleware",
                f"Origin {origin!r} is not localhost: cross-origin writes are blocked.",
                "Send no Origin header (scripts don't need one), or start the server with "
                "--cors-allowed-origins.", said=sec.CORS_BLOCKED_MSG)

    def route(self) -> Endpoint:
        req = self.req
        path = req.path
        if model.other_route(path):
            raise self.not_modelled(f"{path} is served outside handlers.py's route table "
                                    "(mlflow/server/__init__.py or a FastAPI router)")
        if "//" in path:
            merged = re.sub("/{2,}", "/", path)
            if any(req.method in _methods(e) for e in model.match(merged)):
                raise self.fail(
                    308, "merged-slashes", ROUTER + " merge_slashes",
                    f"The path has '//': the server redirects (308) to {merged}. requests "
                    "follows it (re-sending the body) unless allow_redirects=False.",
                    f"Use {merged}.", severity="warning")
        found = model.match(path)
        if not found:
            raise self.fail(404, "route-not-found", ROUTER,
                            f"No route {path}: the server answers 404 with Flask's HTML "
                            "'Not Found' page (not MLflow error JSON).", _route_fix(path))
        if req.method == "OPTIONS":
            if "origin" in req.headers:
                raise self.not_modelled("a CORS preflight (Starlette's CORSMiddleware)")
            raise self.fail(204, "options", SECURITY + "SecurityHeadersMiddleware",
                            "OPTIONS on an API path: Flask answers it, the middleware "
                            "turns the 200 into 204 No Content.", severity="info")
        for ep in sorted(found, key=lambda e: path not in e.paths):  # static routes first
            if req.method in _methods(ep):
                return ep
        allowed = sorted({m for e in found for m in e.http_methods})
        raise self.fail(405, "method-not-allowed", ROUTER,
                        f"{path} exists but does not take {req.method}: the server answers "
                        "405 with Flask's HTML 'Method Not Allowed' page.",
                        f"Send the request as {' or '.join(allowed)}.")

    def decorators(self, ep: Endpoint) -> None:
        """The handler's decorators that answer before it runs (server configuration)."""
        where = f"{H}{ep.handler} (decorator "
        if "_disable_if_workspaces_disabled" in ep.decorators and \
                not MLFLOW_ENABLE_WORKSPACES.get():
            raise self.fail(503, "feature-disabled", where + "_disable_if_workspaces_disabled)",
                            f"{ep.name} needs a server started with --enable-workspaces: it "
                            "answers 503 with a plain-text page.",
                            "Start the server with --enable-workspaces.")
        if "_disable_if_gateway_disabled" in ep.decorators and not MLFLOW_ENABLE_AI_GATEWAY.get():
            raise self.fail(501, "feature-disabled", where + "_disable_if_gateway_disabled)",
                            f"{ep.name} needs the AI gateway (MLFLOW_ENABLE_AI_GATEWAY).",
                            "Enable the AI gateway.", code="NOT_IMPLEMENTED")

    def content_type(self) -> None:
        """mlflow/server/validation.py::_validate_content_type (POST and PUT only)."""
        if self.req.method == "GET" and self.req.query:
            return  # _get_request_message reads the query string and never calls it
        value = self.req.headers.get("content-type")
        try:
            model.validation()._validate_content_type(
                SimpleNamespace(method=self.req.method, content_type=value), ["application/json"])
        except MlflowException as exc:
            check = "mlflow/server/validation.py::_validate_content_type"
            if value is None:
                raise self.fail(400, "content-type-missing", check,
                                "No Content-Type header: the server refuses the body before "
                                "reading it.", "Send Content-Type: application/json (requests "
                                "adds it for json=; data= sends none).",
                                said=exc.message, code=exc.error_code) from None
            raise self.fail(400, "content-type-wrong", check,
                            f"Content-Type {value!r}: the server compares the part before ';' "
                            "with 'application/json' exactly." + _ct_why(value),
                            "Send exactly Content-Type: application/json.",
                            said=exc.message, code=exc.error_code) from None

    def handler(self, ep: Endpoint) -> None:
        for step in ep.pre_steps:
            self._pre_step(ep, step)
        if self.req.method == "GET" and self.req.query:
            raw = self._query_json(ep)
        else:
            raw = self._body_json()
            if "_validate_batch_log_api_req(_get_request_json())" in ep.pre_steps:
                self._batch_size(raw)
            raw = self._normalize(raw)
        self.request_json = raw
        proto_ok: bool | None = None
        if ep.request is not None and ep.parses_proto:
            self._reject_aliases(raw, ep.request_class.DESCRIPTOR)
            proto_ok = self._parse(ep)
        self._schema(ep, proto_ok)
        steps = _STORE_STEPS.get(ep.name) if ep.service == "MlflowService" and ep.store else None
        steps = steps or search_checks.STEPS.get(ep.name) or registry_checks.STEPS.get(ep.name)
        if steps is None:
            raise self.not_modelled(f"what {ep.handler} does after its schema check passes "
                                    "(its store call)")
        steps(self)
        self.state(ep)

    # -- handler steps

    def _pre_step(self, ep: Endpoint, step: str) -> None:
        """A statement a handler runs before its schema check, where the model knows it."""
        if step == "_validate_batch_log_api_req(_get_request_json())" or \
                step.startswith("_validate_content_type("):
            return  # modelled in order: the content type first, the batch size after JSON
        found = re.fullmatch(r"(\w+) = (\w+)\(\1\)", step)
        if found and found.group(2) == "_get_workspace_scoped_repo_path_if_enabled" and \
                not MLFLOW_ENABLE_WORKSPACES.get():
            return  # returns the path unchanged without workspaces
        if found and found.group(2) == "validate_path_is_safe":
            value = model.path_params(ep, self.req.path).get(found.group(1), "")
            self.store_check(H + ep.handler, model.resolve("validate_path_is_safe"), value)
            return
        raise self.not_modelled(f"{ep.handler} runs `{step}` before its schema check")

    def _query_json(self, ep: Endpoint) -> dict[str, Any]:
        """handlers.py::_get_request_message's GET branch: query args by the proto's fields."""
        args: dict[str, list[str]] = {}
        for k, v in self.req.query:
            args.setdefault(k, []).append(v)
        out: dict[str, Any] = {}
        for f in ep.fields:
            if f.name not in args:
                continue
            if f.repeated:
                out[f.name] = args[f.name]
                continue
            value: Any = args[f.name][0]
            if f.type == "bool":
                if value.lower() not in ("true", "false"):
                    said = f"Invalid boolean value: {value}, must be 'true' or 'false'."
                    raise self.fail(400, "bad-type", H + "_get_request_message", said,
                                    f"Send {f.name}=true or {f.name}=false.", said=said,
                                    code="INVALID_PARAMETER_VALUE")
                value = value.lower() == "true"
            out[f.name] = value
        if ep.request is None:  # _get_validated_flask_request_json keeps every arg
            out = {k: v if any(c.name == "array" for c in dict(ep.schema or ()).get(k, ()))
                   else (v[0] if len(v) == 1 else v) for k, v in args.items()}
        return out

    def _body_json(self) -> Any:
        """Werkzeug's get_json(force=True, silent=True): json.loads on the raw bytes (UTF-8/16/32
        detected, BOM allowed, NaN/Infinity accepted), None on any ValueError."""
        if self.req.method == "GET" and not self.req.body:
            return None  # a GET without a query string: nothing to read, and nothing wrong
        try:
            raw = json.loads(self.req.body)
            limit = model.JSON_DEPTH_LIMIT
            if self.req.body.count(b"[") + self.req.body.count(b"{") > limit - 10:
                depth = _depth(raw) if isinstance(raw, (dict, list)) else 0
                if depth > limit + 10:
                    raise RecursionError
                if depth > limit - 10:
                    raise self.not_modelled(f"a body nested {depth} levels deep, near the "
                                            f"server's limit ({limit}, measured)")
            return raw
        except RecursionError:
            raise self.fail(500, "server-error", H + "_get_request_json",
                            f"{CRASH}: the body nests deeper than Python's JSON reader can "
                            "follow (RecursionError is not the ValueError get_json catches).",
                            "Send a flat JSON object.") from None
        except ValueError:
            self.add("error", "malformed-json", H + "_get_request_json",
                     f"The body is not JSON: {describe_json_error(self.req.body)}. The server "
                     "does not say so: get_json(silent=True) turns it into nothing, the request "
                     "looks empty, and the handler's first check is what you see.",
                     "Build the body from a dict: requests.post(url, json=body); if you must "
                     "send a string, check it first with json.loads(text).")
            return None

    def _batch_size(self, raw: Any) -> None:
        """handlers.py::_log_batch calls _validate_batch_log_api_req(_get_request_json())."""
        check = UV + "_validate_batch_log_api_req"
        try:
            len(raw)
        except TypeError as exc:
            raise self.fail(500, "server-error", check, f"{CRASH}: it measures the parsed body "
                            f"with len() before anything else ({type(exc).__name__}: {exc}).",
                            "Send a JSON object with run_id.") from None
        self.store_check(check, uv._validate_batch_log_api_req, raw, id_="batch-limit")

    def _normalize(self, raw: Any) -> Any:
        """handlers.py::_get_normalized_request_json."""
        if isinstance(raw, str):
            try:
                decoded = json.loads(raw)
            except (ValueError, RecursionError) as exc:
                raise self.fail(500, "server-error", H + "_get_normalized_request_json",
                                f"{CRASH}: the body is a JSON string, which the server decodes "
                                f"a second time, and that fails ({exc}).",
                                "Send the JSON object itself, not a string holding it.") from None
            self.add("info", "double-encoded", H + "_get_normalized_request_json",
                     "The body is a JSON string holding JSON (double-encoded, e.g. "
                     "json.dumps(json.dumps(...)) or json=json.dumps(...)); the server decodes "
                     "it a second time for old clients.",
                     "Send data=json.dumps(payload) or json=payload, not both.")
            raw = decoded
        return {} if raw is None else raw

    def _reject_aliases(self, request_json: Any, descriptor: Any) -> None:
        """handlers.py::_reject_conflicting_field_aliases, walked without recursion."""
        stack = [(request_json, descriptor, 0)]
        while stack:
            value, desc, depth = stack.pop()
            if not isinstance(value, dict) or depth > _MAX_DEPTH:
                continue
            for fd in desc.fields:
                if fd.name != fd.json_name and fd.name in value and fd.json_name in value:
                    said = (f"Request specifies both '{fd.name}' and '{fd.json_name}'; "
                            "provide only one of them.")
                    raise self.fail(400, "conflicting-alias",
                                    H + "_reject_conflicting_field_aliases",
                                    f"The body spells one field twice: '{fd.name}' and "
                                    f"'{fd.json_name}'.", f"Keep only '{fd.name}'.",
                                    code="INVALID_PARAMETER_VALUE", said=said)
                nested = fd.message_type
                if nested is None or nested.GetOptions().map_entry or \
                        nested.full_name.startswith("google.protobuf."):
                    continue
                inner = value.get(fd.name, value.get(fd.json_name))
                stack += [(item, nested, depth + 1)
                          for item in (inner if isinstance(inner, list) else [inner])]

    def _parse(self, ep: Endpoint) -> bool:
        """handlers.py::_get_request_message: mlflow's parse_dict (unknown fields ignored)."""
        msg = ep.request_class()
        ok = True
        try:
            parse_dict(self.request_json, msg)
        except ParseError as exc:
            ok = False
            self._partial_parse(ep, exc)
        except Exception as exc:  # the server lets these escape: 500
            raise self.fail(500, "server-error", PARSE, f"{CRASH}: the proto parser cannot read "
                            f"a JSON {type(self.request_json).__name__} "
                            f"({type(exc).__name__}: {exc}).", "Send a JSON object.") from None
        self.message = msg
        return ok

    def _partial_parse(self, ep: Endpoint, exc: Exception) -> None:
        body = self.request_json
        if not isinstance(body, dict):
            return
        by_key = {k: f for f in ep.fields for k in (f.name, f.json_name)}
        keys = [k for k in body if k in by_key]
        bad = next((k for k in keys if not _parses(ep, k, body[k])), None)
        if bad is None:
            return
        self.stopped_at = bad
        dropped = keys[keys.index(bad) + 1:]
        f, value = by_key[bad], body[bad]
        lost = f"'{bad}'" + (f" and every field after it ({', '.join(dropped)})"
                             if dropped else "")
        id_, why = _stop_kind(f, value)
        fix = (f"Fix the item the parser names inside '{bad}'." if f.message
               else f"Send '{bad}' as {_type_hint(f)}.")
        if id_ == "trap-nan":
            fix = ("Send non-finite values as strings (\"NaN\", \"Infinity\"); "
                   "json.dumps(body, allow_nan=False) catches them before sending.")
        self.add("warning", id_, PARSE,
                 f"{why}The proto parser gives up at '{bad}' ({str(exc).rstrip('.')[:120]}): "
                 f"{lost} reach the handler as 0 or empty. Its type checks then run on the raw "
                 "JSON instead.", fix)

    def _schema(self, ep: Endpoint, proto_ok: bool | None) -> None:
        """handlers.py::_validate_request_json_with_schema, calling MLflow's own
        _validate_param_against_schema on one validator at a time."""
        body = self.request_json
        check = f"{H}_validate_param_against_schema (schema of {ep.handler})"
        validate = model._validators()["_validate_param_against_schema"]
        for key, checks in ep.schema or ():
            try:
                if not (key in body or any(c.name == "required" for c in checks)):
                    continue
                value = body.get(key)
                if key == "run_id" and value is None and "run_uuid" in body:
                    value = body.get("run_uuid")
            except Exception as exc:  # `in` / .get() on a body that is not an object
                raise self.fail(500, "server-error", check, f"{CRASH}: {type(exc).__name__}: "
                                f"{exc}.", _crash_fix(body)) from None
            for c in checks:
                if c.type_check and proto_ok:
                    continue
                if c.fn is None:
                    raise self.not_modelled(f"the validator `{c.name}` of '{key}'")
                try:
                    validate([c.fn], key, value, False)
                except MlflowException as exc:
                    raise self._schema_error(check, ep, key, value, c, exc) from None
                except model.NotModelled as exc:
                    raise self.not_modelled(f"the validator `{c.name}` ({exc})") from None
                except Exception as exc:  # only MlflowException becomes a 400 on the server
                    raise self.fail(500, "server-error", check,
                                    f"{CRASH}: the '{c.name}' check of '{key}' raises "
                                    f"{type(exc).__name__}: {exc}.", _crash_fix(body)) from None

    def _schema_error(self, check: str, ep: Endpoint, key: str, value: Any, c: model.Check,
                      exc: MlflowException) -> _Answer:
        f = next((x for x in ep.fields if key in (x.name, x.json_name)), None)
        said = exc.message
        if c.name == "required" or "Missing value" in said:
            id_ = "missing-field"
            fix = f"Add \"{key}\": {_type_hint(f)}." + self._camel_hint(key, f)
            if "[" in said:  # a nested _assert_<field>_fields_present helper
                fix = f"Every item of '{key}' needs the key the message names."
        elif c.type_check:
            id_, fix = "bad-type", f"Send '{key}' as {_type_hint(f)}."
        else:
            id_ = "out-of-range"
            limits = ", ".join(f"{k} {v}" for k, v in c.limits)
            fix = f"Keep '{key}' within the handler's limit ({limits or c.name})."
        short = said.removesuffix(" See the API docs for more information about request "
                                  "parameters.")
        return self.fail(400, id_, check, f"{short} (the '{c.name}' check of the handler's "
                         f"schema, on '{key}')", fix, said=said, code=exc.error_code)

    def _camel_hint(self, key: str, f: Field | None) -> str:
        body = self.request_json
        if f is not None and f.json_name != key and f.json_name in body:
            return f" (You sent '{f.json_name}': the parser accepts it, the check reads '{key}'.)"
        if key == "run_id" and body.get("run_id") == "" and "run_uuid" in body:
            return " (An empty run_id blocks the fall-back to run_uuid.)"
        return ""

    def store_check(self, check: str, fn: Callable[..., Any], *args: Any,
                    id_: str = "") -> Any:
        """Run one of MLflow's validators exactly as the store does."""
        try:
            return fn(*args)
        except MlflowException as exc:
            raise self.fail(exc.get_http_status_code(), id_ or self._store_id(exc.message),
                            check, exc.message, _store_fix(exc.message), said=exc.message,
                            code=exc.error_code) from None

    def _store_id(self, message: str) -> str:
        if self.stopped_at is not None and message.startswith('Invalid value "" for parameter'):
            return "partial-parse"
        if "exceeds the maximum length" in message:
            return "too-long"
        if "Names may only contain" in message or "resolve to" in message:
            return "invalid-name"
        if "batch logging request" in message or "at most" in message:
            return "batch-limit"
        return "store-check"

    # -- state

    def state(self, ep: Endpoint) -> None:
        """What a valid request still depends on; settled by lookups when a server is given."""
        store = ep.store
        if store is None or not store.state:
            return
        if self.server is None:
            words = "; ".join(self._state_words(kind, name) for kind, name in store.state)
            raise self.fail(None, "state", STORE + "get_run / get_experiment",
                            f"Valid as sent; the answer depends on server state: {words}. "
                            "Pass server=URL to look it up.", severity="info")
        for kind, name in store.state:
            self._check_state(kind, name)
        self.state_checked = True

    def _value(self, name: str) -> Any:
        msg = self.message
        if name == "run_id" and self.endpoint is not None and self.endpoint.reads_run_uuid:
            return msg.run_id or msg.run_uuid
        return getattr(msg, name)

    def _state_words(self, kind: str, name: str) -> str:
        return model.STATE_KINDS[kind].format(self._value(name) if name != "params" else "")

    def _lookup(self, path: str, params: dict[str, str]) -> tuple[int, Any]:
        try:
            answer = (self.session or requests).get(f"{self.server}/api/2.0/mlflow/{path}",
                                                    params=params, timeout=10)
            return answer.status_code, answer.json() if answer.content else {}
        except (requests.RequestException, ValueError) as exc:
            raise self.fail(None, "state-lookup-failed", "helpers/preflight.py",
                            "Could not look up server state at "
                            f"{urlsplit(self.server).netloc.rpartition('@')[2]} "
                            f"({type(exc).__name__}).", "Check that the server is running.",
                            severity="info") from None

    def _check_state(self, kind: str, name: str) -> None:
        subject, _, want = kind.partition(":")
        state_check = STORE + ("_get_run" if subject in ("run", "param", "tag")
                               else "get_experiment")
        if subject in ("run", "param", "tag"):
            run_id = self._value("run_id")
            status, data = self._lookup("runs/get", {"run_id": run_id})
            if status == 404 or not run_id:
                said = f"Run with id={run_id} not found"
                raise self.fail(404, "run-not-found", state_check,
                                f"{said}: the request is valid, but no run has this id.",
                                "Use the run_id of an existing run (runs/create returns it).",
                                said=said, code="RESOURCE_DOES_NOT_EXIST")
            run = data.get("run", {})
            if subject == "run" and want == "active" and \
                    run.get("info", {}).get("lifecycle_stage") != "active":
                said = (f"The run {run_id} must be in the 'active' state. Current state is "
                        f"{run.get('info', {}).get('lifecycle_stage')}.")
                raise self.fail(400, "not-active", STORE + "_check_run_is_active", said,
                                "Restore the run first (runs/restore), or use an active one.",
                                said=said, code="INVALID_PARAMETER_VALUE")
            if subject == "param":
                logged = {p["key"]: p.get("value", "") for p in run.get("data", {})
                          .get("params", [])}
                sent = ([(p.key, p.value) for p in self.message.params] if name == "params"
                        else [(self.message.key, self.message.value)])
                changed = [k for k, v in sent
                           if k in logged and logged[k] != v[:uv.MAX_PARAM_VAL_LENGTH]]
                if changed:
                    raise self.fail(400, "param-overwrite", STORE + "log_param",
                                    f"Param '{changed[0]}' already has the value "
                                    f"{logged[changed[0]]!r} in this run; params are "
                                    "write-once.", "Log the same value, or use a new key or "
                                    "run; values that change belong in metrics.",
                                    code="INVALID_PARAMETER_VALUE")
            if subject == "tag":
                tags = {t["key"] for t in run.get("data", {}).get("tags", [])}
                if self.message.key not in tags:
                    said = (f"No tag with name: {self.message.key} in run with id {run_id}")
                    raise self.fail(404, "resource-not-found", STORE + "delete_tag", said,
                                    "Delete a tag the run has (runs/get lists them).",
                                    said=said, code="RESOURCE_DOES_NOT_EXIST")
            return
        if subject == "experiment-name":
            status, _ = self._lookup("experiments/get-by-name",
                                     {"experiment_name": self.message.name})
            if status == 200:
                raise self.fail(400, "already-exists", STORE + "create_experiment",
                                f"An experiment named {self.message.name!r} exists already "
                                "(active or deleted); names are unique.",
                                "Pick a unique name, or use the existing experiment.",
                                code="RESOURCE_ALREADY_EXISTS")
            return
        exp_id = self._value("experiment_id")
        status, data = self._lookup("experiments/get", {"experiment_id": exp_id})
        stage = data.get("experiment", {}).get("lifecycle_stage") if status == 200 else None
        said = f"No Experiment with id={exp_id} exists"
        if stage is None or (want == "active-or-404" and stage != "active") or \
                (want == "deleted-or-404" and stage != "deleted"):
            raise self.fail(404, "resource-not-found", state_check,
                            f"{said}" + (f" in the '{want.split('-')[0]}' stage"
                                         if stage else "") + ".",
                            "Use the id of an existing experiment (experiments/search).",
                            said=said, code="RESOURCE_DOES_NOT_EXIST")
        if want == "active" and stage != "active":
            said = (f"The experiment {exp_id} must be in the 'active' state. Current state is "
                    f"{stage}.")
            raise self.fail(400, "not-active", STORE + "_check_experiment_is_active", said,
                            "Restore the experiment first, or use an active one.", said=said,
                            code="INVALID_PARAMETER_VALUE")

    # -- lint: warnings about a body the server accepts or explains badly

    def lint(self) -> None:
        ep, body = self.endpoint, self._lint_body()
        if ep is None or not isinstance(body, dict) or ep.request is None:
            return
        store = ep.store
        for where, value in _walk_timestamps(body, store.timestamps if store else ()):
            _timestamp_warning(self, where, value)
        _unknown_enum(self, ep, body)
        _unknown_keys(self, ep.fields, body)
        _number_warnings(self, ep, body)
        if isinstance(body.get("key"), str) and body["key"] != body["key"].strip():
            self.add("warning", "padded-key", UV + "_validate_metric_name",
                     f"The key {json.dumps(body['key'])} has spaces at its ends: it is stored "
                     f"as written, a different key from {json.dumps(body['key'].strip())}.",
                     "Strip keys before sending: key.strip().")
        if ep.name == "logParam" and body.get("value") in (None, ""):
            self.add("warning", "param-without-value", H + "_log_param",
                     "The param has no value: the handler does not require one, so an empty "
                     "string is stored, and it can never be changed (params are write-once).",
                     "Send the value as a string: {\"key\": ..., \"value\": str(value)}.")
        if "run_uuid" in body and not body.get("run_id") and \
                any(f.name == "run_uuid" for f in ep.fields):
            self.add("info", "deprecated-run-uuid", H + (ep.handler or ""),
                     "run_uuid is the deprecated spelling of run_id; the handler still reads "
                     "run_id or run_uuid.", "Send run_id instead.")

    def _lint_body(self) -> Any:
        if self.request_json is not None:
            return self.request_json
        try:
            raw = json.loads(self.req.body)
            return json.loads(raw) if isinstance(raw, str) else raw
        except (ValueError, RecursionError):
            return None


# ------------------------------------------------------------- store steps, per endpoint
# Only for the RPCs of server_model.STORE: what the store validates before touching the DB.

_METRIC_INIT = "mlflow/entities/metric.py::Metric.__init__"


def _log_metric(sim: _Simulation) -> None:
    m = sim.message
    # The handler builds the Metric entity first; it refuses half a dataset reference.
    sim.store_check(_METRIC_INIT, Metric, m.key, m.value, m.timestamp, m.step,
                    m.model_id or None, m.dataset_name or None, m.dataset_digest or None,
                    m.run_id or None)
    sim.store_check(UV + "_validate_metric", uv._validate_metric, m.key, m.value, m.timestamp,
                    m.step)
    _stored_value_warning(sim, m.value, "value")


def _log_param(sim: _Simulation) -> None:
    m = sim.message
    value = _truncated(sim, "value", m.value, uv.MAX_PARAM_VAL_LENGTH)
    sim.store_check(UV + "_validate_param", uv._validate_param, m.key, value)


def _set_tag(sim: _Simulation) -> None:
    m = sim.message
    value = _truncated(sim, "value", m.value, uv.MAX_TAG_VAL_LENGTH)
    sim.store_check(UV + "_validate_tag", uv._validate_tag, m.key, value)


def _log_batch(sim: _Simulation) -> None:
    m = sim.message
    metrics = [sim.store_check(_METRIC_INIT, Metric.from_proto, x) for x in m.metrics]
    params = [Param(p.key, _truncated(sim, f"params[{i}].value", p.value,
                                      uv.MAX_PARAM_VAL_LENGTH)) for i, p in enumerate(m.params)]
    tags = [RunTag(t.key, _truncated(sim, f"tags[{i}].value", t.value, uv.MAX_TAG_VAL_LENGTH))
            for i, t in enumerate(m.tags)]
    sim.store_check(UV + "_validate_run_id", uv._validate_run_id, m.run_id)
    sim.store_check(UV + "_validate_batch_log_data", uv._validate_batch_log_data,
                    metrics, params, tags)
    sim.store_check(UV + "_validate_batch_log_limits", uv._validate_batch_log_limits,
                    metrics, params, tags, id_="batch-limit")
    sim.store_check(UV + "_validate_param_keys_unique", uv._validate_param_keys_unique, params)
    for i, metric in enumerate(metrics):
        if not math.isfinite(metric.value):
            _stored_value_warning(sim, metric.value, f"metrics[{i}].value")
            break
    body = sim.request_json
    for name in ("metrics", "params", "tags"):
        sent = body.get(name) if isinstance(body, dict) else None
        kept = len(getattr(m, name))
        if isinstance(sent, list) and kept < len(sent):
            sim.add("warning", "trap-parse-stopped", PARSE,
                    f"Only {kept} of the {len(sent)} {name} reach the store; the rest are "
                    "dropped silently because proto parsing stopped early.",
                    "Fix the item the parser gave up on (see above).")


def _create_run(sim: _Simulation) -> None:
    m = sim.message
    if m.experiment_id:
        sim.store_check(UV + "_parse_experiment_id", uv._parse_experiment_id, m.experiment_id)
    run_name_tag = next((t.value for t in m.tags if t.key == MLFLOW_RUN_NAME), None)
    if m.run_name and run_name_tag and m.run_name != run_name_tag:
        said = ("Both 'run_name' argument and 'mlflow.runName' tag are specified, but with "
                f"different values (run_name='{m.run_name}', mlflow.runName='{run_name_tag}').")
        raise sim.fail(400, "store-check", STORE + "create_run", said,
                       "Give one run name, or the same in both.", said=said,
                       code="INVALID_PARAMETER_VALUE")
    if not m.experiment_id:
        raise sim.fail(
            400, "store-check", STORE + "create_run",
            "No experiment_id: the store looks up the Default experiment for checks but "
            "inserts the run with experiment_id '' and the database refuses it (a "
            "FOREIGN KEY/type error reported as 400 BAD_REQUEST with SQL in the message).",
            "Send \"experiment_id\": \"0\" (Default) or the id experiments/create returned.",
            code="BAD_REQUEST")
    if any(not t.key for t in m.tags):
        sim.add("warning", "empty-tag-key", STORE + "create_run",
                "runs/create does not validate tags: a tag without a key is stored as ''.",
                "Give every tag a key.")


def _create_experiment(sim: _Simulation) -> None:
    m = sim.message
    views = sum(t.key.startswith(MLFLOW_CUSTOM_VIEW_TAG_PREFIX) for t in m.tags)
    if views > uv.MAX_CUSTOM_VIEWS_PER_EXPERIMENT:
        said = ("Unable to create another custom view; the maximum number of custom views per "
                f"experiment is {uv.MAX_CUSTOM_VIEWS_PER_EXPERIMENT}. Delete an existing custom "
                "view before creating a new one.")
        raise sim.fail(400, "batch-limit", H + "_validate_custom_view_count", said,
                       "Send fewer view tags.", said=said, code="INVALID_PARAMETER_VALUE")
    location = m.artifact_location
    if location:
        parsed = urlparse(location)
        if parsed.fragment or parsed.params:
            said = "'artifact_location' URL can't include fragments or params."
            raise sim.fail(400, "store-check", H + "_validate_storage_location_uri", said,
                           "Remove the ';params' or '#fragment'.", said=said,
                           code="INVALID_PARAMETER_VALUE")
        sim.store_check("mlflow/utils/uri.py::validate_query_string", validate_query_string,
                        parsed.query)
        names_host = parsed.netloc or parsed.scheme != "mlflow-artifacts"
        if parsed.scheme in HOST_ADDRESSED_ARTIFACT_SCHEMES and names_host:
            raise sim.not_modelled(f"whether the server accepts a '{parsed.scheme}' "
                                   "artifact_location naming a host (its own artifact store, "
                                   "or MLFLOW_ALLOWED_HOST_ADDRESSED_ARTIFACT_SCHEMES)")
        sim.store_check(UV + "_validate_experiment_artifact_location",
                        uv._validate_experiment_artifact_location, location)
        sim.store_check(UV + "_validate_experiment_artifact_location_length",
                        uv._validate_experiment_artifact_location_length, location)
    sim.store_check(UV + "_validate_experiment_name", uv._validate_experiment_name, m.name)
    for t in m.tags:
        sim.store_check(UV + "_validate_experiment_tag", uv._validate_experiment_tag,
                        t.key, t.value)


def _set_experiment_tag(sim: _Simulation) -> None:
    m = sim.message
    sim.store_check(UV + "_validate_experiment_tag", uv._validate_experiment_tag, m.key, m.value)
    sim.store_check(UV + "_parse_experiment_id", uv._parse_experiment_id, m.experiment_id)


def _experiment_id_only(sim: _Simulation) -> None:
    sim.store_check(UV + "_parse_experiment_id", uv._parse_experiment_id,
                    sim.message.experiment_id)


def _run_id_only(sim: _Simulation) -> None:
    """delete/restore read run_id alone: a run_uuid-only body looks up run ''."""
    if not sim.message.run_id:
        said = "Run with id= not found"
        raise sim.fail(404, "run-not-found", STORE + "_get_run",
                       f"{sim.endpoint.handler if sim.endpoint else 'the handler'} reads run_id "
                       "only; the body's run_uuid passes the schema check but the handler looks "
                       "up run ''.", "Send run_id.", said=said, code="RESOURCE_DOES_NOT_EXIST")


_STORE_STEPS: dict[str, Callable[[_Simulation], None]] = {
    "logMetric": _log_metric, "logParam": _log_param, "setTag": _set_tag,
    "logBatch": _log_batch, "createRun": _create_run, "updateRun": lambda sim: None,
    "createExperiment": _create_experiment, "setExperimentTag": _set_experiment_tag,
    "deleteExperiment": _experiment_id_only, "restoreExperiment": _experiment_id_only,
    "deleteRun": _run_id_only, "restoreRun": _run_id_only, "deleteTag": _run_id_only,
}


# ------------------------------------------------------------------------------ helpers


def _methods(ep: Endpoint) -> set[str]:
    extra = {"HEAD"} if "GET" in ep.http_methods else set()
    return {*ep.http_methods, *extra, "OPTIONS"}


def _route_fix(path: str) -> str:
    import difflib

    known = [p for e in model.endpoints() for p in e.paths]
    close = difflib.get_close_matches(path, known, n=1, cutoff=0.8)
    if close:
        return f"Did you mean {close[0]}?"
    if not path.startswith(PREFIXES):
        return "MLflow's REST paths start with /api/2.0/mlflow/ (e.g. /api/2.0/mlflow/runs/create)."
    return "Check the path against the REST API reference (catalog.endpoints() lists them)."


def describe_json_error(raw: bytes) -> str | None:
    """Why `json.loads` (what Flask's get_json uses) refuses these bytes, in a learner's words;
    None when it accepts them."""
    if not raw.strip():
        return "the body is empty"
    try:
        json.loads(raw)
        return None
    except RecursionError:
        return "it nests deeper than Python's JSON reader can follow"
    except json.JSONDecodeError as exc:
        err = exc
    except ValueError:
        return "the body is not valid UTF-8 text"
    text, pos, msg = err.doc, err.pos, err.msg
    before = text[:pos].rstrip()[-1:] if text[:pos].strip() else ""
    here = text[pos:pos + 1]
    where = f"(line {err.lineno}, column {err.colno})"
    if here == "/":
        return f"a comment, which JSON does not allow {where}"
    if here == "'":
        return f"single-quoted strings, as Python's str(dict) writes them {where}"
    if msg.startswith("Expecting property name"):
        if before == "," and here == "}":
            return f"a trailing comma before the closing brace {where}"
        return f"an unquoted key, which JSON does not allow {where}"
    if pos >= len(text.rstrip()) or msg.startswith("Unterminated string"):
        return f"the body ends before the JSON does, as if cut off {where}"
    return f"not valid JSON: {msg} {where}"


def _depth(value: Any) -> int:
    """How deeply JSON containers nest, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        stack += [(v, level + 1) for v in (item.values() if isinstance(item, dict) else item)
                  if isinstance(v, (dict, list))]
    return deepest


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


def _parses(ep: Endpoint, key: str, value: Any) -> bool:
    try:
        parse_dict({key: value}, ep.request_class())
        return True
    except ParseError:
        return False
    except Exception:  # noqa: BLE001 - anything else stops the parser too
        return False


def _stop_kind(f: Field, value: Any) -> tuple[str, str]:
    """The finding id and a lead sentence for the field protobuf could not read."""
    if isinstance(value, float) and not math.isfinite(value):
        name = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        return "trap-nan", (f"'{f.name}' is a bare {name} literal, which JSON "
                            "does not have (Python's json.dumps writes it anyway). ")
    if f.name in ("timestamp", "start_time", "end_time") and isinstance(value, (int, float)):
        if 0 < abs(value) < SECONDS_THRESHOLD:
            return "trap-seconds-timestamp", (f"{f.name}={value!r} is fractional seconds "
                                              "(time.time()), not integer milliseconds. ")
        return "trap-fractional-timestamp", (f"{f.name}={value!r} has a fraction; an int64 "
                                             "timestamp cannot hold one. ")
    if f.name == "step" and isinstance(value, float):
        return "trap-fractional-step", f"step={value!r} has a fraction; step is an int64. "
    return "trap-parse-stopped", ""


def _type_hint(f: Field | None) -> str:
    if f is None:
        return "the documented type"
    if f.repeated:
        return "a JSON array" + (" of objects" if f.message else "")
    if f.name in ("timestamp", "start_time", "end_time"):
        return "a whole number of milliseconds, e.g. int(time.time() * 1000)"
    if f.name == "experiment_id":
        return "a JSON string, e.g. \"0\": ids are strings in MLflow's REST API"
    return {
        "string": "a JSON string", "double": "a JSON number (or the string \"NaN\")",
        "int64": "a whole JSON number", "int32": "a whole JSON number",
        "bool": "true or false", "message": "a JSON object",
        "enum": "one of " + ", ".join(f.enum_values),
    }.get(f.type, f"a {f.type}" if f.type else "the documented type")


def _crash_fix(body: Any) -> str:
    if isinstance(body, dict):
        return "Send a plain value: a string, a number, or a list of objects where documented."
    return "Send one JSON object: {\"field\": value, ...}."


def _store_fix(message: str) -> str:
    if "at most" in message:
        return "Split it into several requests."
    if "exceeds the maximum length" in message:
        return "Shorten it."
    if "Names may only contain" in message or "resolve to" in message:
        return "Use letters, digits, _ - . space : / only, and no '..' or leading '/'."
    return "Change the value as the message says."


def _stored_value_warning(sim: _Simulation, value: float, where: str) -> None:
    if math.isinf(value):
        sim.add("warning", "trap-infinity", STORE + "sanitize_metric_value",
                f"{where} is infinite: the SQL store saves +/-1.7976931348623157e308 instead.",
                "Log a finite number if the exact value matters.")


def _truncated(sim: _Simulation, where: str, value: str, limit: int) -> str:
    """The value the store keeps. Truncated here, so MLflow's validator has nothing to log."""
    if len(value) <= limit or not MLFLOW_TRUNCATE_LONG_VALUES.get():
        return value
    sim.add("warning", "trap-truncated", UV + "_validate_length_limit",
            f"{where} has {len(value)} characters: the server keeps the first {limit} and says "
            "nothing (MLFLOW_TRUNCATE_LONG_VALUES, on by default).",
            f"Keep it under {limit} characters, or log it as an artifact.")
    return value[:limit]


#: Unknown fields named one by one (each costs a difflib search); the rest get one summary.
_UNKNOWN_NAMED = 20


def _unknown_keys(sim: _Simulation, fields: tuple[Field, ...], body: dict) -> None:
    """Unknown keys at the top level and in lists of messages, without recursion."""
    import difflib

    unknown = 0
    stack: list[tuple[tuple[Field, ...], dict, str, int]] = [(fields, body, "", 0)]
    while stack:
        fields_, obj, where, depth = stack.pop(0)
        known = {k: f for f in fields_ for k in (f.name, f.json_name)}
        for key, value in obj.items():
            f = known.get(key)
            if f is None:
                unknown += 1
                if unknown > _UNKNOWN_NAMED:
                    continue
                close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
                hint = f" Did you mean '{close[0]}'?" if close else ""
                sim.add("warning", "unknown-field", PARSE + " ignore_unknown_fields=True",
                        f"Unknown field '{where}{key}': the server drops it silently.{hint}",
                        f"Rename it to '{close[0]}'." if close else "Remove it.")
            elif key == f.json_name != f.name and f.handler_checks:
                sim.add("warning", "json-name", H + "_validate_request_json_with_schema",
                        f"'{where}{key}' is the proto's JSON name: the parser accepts it, but "
                        f"the handler's checks look for '{f.name}' only.", f"Send '{f.name}'.")
            elif f.fields and isinstance(value, list) and depth < 2:
                stack += [(f.fields, item, f"{where}{f.name}[{i}].", depth + 1)
                          for i, item in enumerate(value[:_UNKNOWN_NAMED])
                          if isinstance(item, dict)]
    if unknown > _UNKNOWN_NAMED:
        sim.add("warning", "unknown-field", PARSE + " ignore_unknown_fields=True",
                f"{unknown - _UNKNOWN_NAMED} more unknown fields: the server drops them "
                "silently too.", "Remove them.")


def _unknown_enum(sim: _Simulation, ep: Endpoint, body: dict) -> None:
    for f in ep.fields:
        value = body.get(f.name, body.get(f.json_name))
        if f.enum_values and isinstance(value, str) and value not in f.enum_values:
            sim.add("warning", "unknown-enum", PARSE + " ignore_unknown_fields=True",
                    f"'{f.name}' = {json.dumps(value)} is not one of {', '.join(f.enum_values)}: "
                    "protobuf skips unknown enum names, so that field is not changed.",
                    f"Use one of the enum's names exactly: {', '.join(f.enum_values)}.")


def _walk_timestamps(body: dict, paths: tuple[str, ...]) -> Iterator[tuple[str, Any]]:
    for path in paths:
        if "[]." in path:
            outer, inner = path.split("[].")
            items = body.get(outer)
            for i, item in enumerate(items if isinstance(items, list) else []):
                if isinstance(item, dict) and inner in item:
                    yield f"{outer}[{i}].{inner}", item[inner]
        elif path in body:
            yield path, body[path]


def _timestamp_warning(sim: _Simulation, where: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        return  # a float is a parse stop, reported by _partial_parse
    if 0 < value < SECONDS_THRESHOLD:
        sim.add("warning", "trap-seconds-timestamp", "MLflow timestamps are milliseconds since "
                "the epoch", f"{where}={value!r} looks like seconds: it is stored as {value} "
                "ms, i.e. early 1970.", "Send int(time.time() * 1000).")
    elif value < 0 and not where.endswith("timestamp"):
        sim.add("warning", "negative-timestamp", STORE + "create_run / update_run_info",
                f"{where}={value!r} is negative; runs/create and runs/update store it as is.",
                "Send milliseconds since the epoch.")


def _number_warnings(sim: _Simulation, ep: Endpoint, body: dict) -> None:
    for f in ep.fields:
        value = body.get(f.name)
        if f.type in ("double", "float", "int64", "int32") and isinstance(value, bool) and \
                f.name != sim.stopped_at:
            sim.add("warning", "bool-as-number", PARSE,
                    f"'{f.name}' was sent as {json.dumps(value)}: protobuf reads a JSON boolean "
                    f"as a number, so {int(value)} is stored.", "Send the number you mean.")
        elif f.type in ("double", "float", "int64", "int32") and isinstance(value, str) and \
                sim.message is not None and _parses(ep, f.name, value):
            sim.add("info", "coerced-string", PARSE,
                    f"'{f.name}' is the string {json.dumps(value)}: protobuf's JSON parser "
                    f"converts numeric strings, so {getattr(sim.message, f.name)!r} is stored.",
                    "Send numbers as JSON numbers.")


def _to_python(msg: Any) -> dict[str, Any]:
    """A message as the handler reads it: unset scalars show their default (enums unset show
    None: handlers test HasField first). Nesting is bounded by the proto, not the body."""
    out: dict[str, Any] = {}
    for fd in msg.DESCRIPTOR.fields:
        value = getattr(msg, fd.name)
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            out[fd.name] = dict(value)
        elif fd.message_type is not None and fd.message_type.full_name.startswith("google."):
            out[fd.name] = str(value)
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
