"""Predict what the MLflow server answers to one request, and why, by running the server model
on the exact bytes, step by step in the server's order (docs/architecture.md maps the steps).
What server state decides is `None` offline, with a "state" finding (`server=URL` settles it with
read-only lookups); a step the model does not cover gets a "not-modelled" finding, never a guess.
"""

from __future__ import annotations

import functools
import json
import re
import traceback
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from types import SimpleNamespace
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

import requests
from google.protobuf.json_format import ParseError
from mlflow.environment_variables import MLFLOW_ENABLE_WORKSPACES
from mlflow.exceptions import MlflowException
from mlflow.utils import validation as uv
from mlflow.utils.proto_json_utils import parse_dict
from werkzeug.datastructures import MultiDict

from helpers import catalog, preflight_route, preflight_store, redact, source, store_checks
from helpers import preflight_advice as advice
from helpers import server_model as model
from helpers.errors import NotModelled
from helpers.model_table import JSON_DEPTH_LIMIT
from helpers.preflight_advice import CRASH, PARSE, UV, H
from helpers.server_model import Endpoint, Field

Severity = Literal["error", "warning", "info"]


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
    #: The request message as the handler reads it after protobuf parsing (unset fields read
    #: as their defaults); None when the request never got that far.
    message: Any = field(default=None, repr=False, compare=False)
    #: True when read-only lookups against a server settled the state this answer depends on.
    state_checked: bool = False

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
        from helpers.display import verdict_text

        return verdict_text(self)


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
    sim = Pipeline(req, server.rstrip("/") if server else None, session)
    try:
        sim.run()
        status, message, code = 200, None, None
    except _Answer as answer:
        status, message, code = answer.status, answer.message, answer.error_code
    advice.lint(sim)
    return Verdict(method=req.method, path=req.path, endpoint=sim.endpoint,
                   predicted_status=status, expected_message=message, expected_error_code=code,
                   findings=tuple(sim.findings), message=sim.message,
                   state_checked=sim.state_checked)


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
        # no user:password@, found by the masking rule (a password may hold "/" or "#")
        host = redact.host_of(path_or_url) if absolute else None
        seen: dict[str, str] = {}
        for name, value in (headers or {}).items():
            if value is not None:  # requests' merge: the last spelling of a name wins
                seen[name.lower()] = value.strip(" \t")  # the HTTP parser strips OWS
        host = seen.get("host", host)
        data = body.encode("utf-8") if isinstance(body, str) else (body or b"")
        # The ASGI server percent-decodes the path before routing (log%2Dmetric is log-metric).
        return cls(method.upper(), unquote(parts.path or "/"),
                   tuple(parse_qsl(parts.query, keep_blank_values=True)), host, seen, data)


_CURRENT: ContextVar[Pipeline] = ContextVar("pipeline")


@functools.cache
def _readers() -> dict[str, Any]:
    """handlers.py's own request readers (_get_request_message, _get_validated_flask_request_json
    and what they call), compiled with the validators the schemas hold. The content type is
    checked before them (Pipeline.content_type); the body, the proto parser and each validator go
    through the current Pipeline, which turns what they raise into findings."""
    validators = model.schema_validator().__globals__

    def current(method: str) -> Callable[..., Any]:
        return lambda *args, **kwargs: getattr(_CURRENT.get(), method)(*args, **kwargs)

    return model.handler_functions(
        ("_get_request_message", "_get_validated_flask_request_json"), request=None,
        Request=None, _assert_required=validators["_assert_required"],
        _assert_array=validators["_assert_array"], _validate_content_type=lambda *a: None,
        parse_dict=current("parse"), _validate_param_against_schema=current("validate"))


class _Answer(Exception):
    """The server's answer is decided at this step (status None: the model cannot tell)."""

    def __init__(self, status: int | None, message: str | None = None,
                 error_code: str | None = None):
        super().__init__(status, message)
        self.status, self.message, self.error_code = status, message, error_code


@dataclass
class Pipeline:
    """One request walked through the server's steps; the store and lint steps
    (helpers/preflight_store.py, helpers/preflight_advice.py) use its public methods."""

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
        preflight_route.security(self)
        ep = self.endpoint = preflight_route.route(self)
        preflight_route.decorators(self, ep)
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
            # past a Content-Type failure, the findings describe the next answer once it is fixed
            self.findings[mark:] = [replace(f, message="Once Content-Type is fixed: " + f.message)
                                    if f.severity == "error" else f for f in self.findings[mark:]]
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

    def content_type(self) -> None:
        """mlflow/server/validation.py::_validate_content_type (POST and PUT only)."""
        if self.req.method == "GET" and self.req.query:
            return  # _get_request_message reads the query string and never calls it
        value = self.req.headers.get("content-type")
        try:
            source.server_module("server/validation.py")._validate_content_type(
                SimpleNamespace(method=self.req.method, content_type=value), ["application/json"])
        except MlflowException as exc:
            missing = value is None
            raise self.fail(
                400, "content-type-missing" if missing else "content-type-wrong",
                "mlflow/server/validation.py::_validate_content_type",
                "No Content-Type header: the server refuses the body before reading it."
                if missing else f"Content-Type {value!r}: the server compares the part before "
                "';' with 'application/json' exactly." + advice.content_type_why(value),
                "Send Content-Type: application/json (requests adds it for json=; data= sends "
                "none)." if missing else "Send exactly Content-Type: application/json.",
                said=exc.message, code=exc.error_code) from None

    def handler(self, ep: Endpoint) -> None:
        """The handler's own request reading (handlers.py::_get_request_message or
        ::_get_validated_flask_request_json, compiled by `_readers`), then its store call."""
        for step in ep.pre_steps:
            self._pre_step(ep, step)
        flask = SimpleNamespace(method=self.req.method, args=MultiDict(self.req.query),
                                get_json=lambda **_: self.body_json)
        schema = {key: [c.fn for c in checks] for key, checks in ep.schema or ()}
        readers, token = _readers(), _CURRENT.set(self)
        try:
            if "_validate_batch_log_api_req(_get_request_json())" in ep.pre_steps:
                self.store_check(UV + "_validate_batch_log_api_req", uv._validate_batch_log_api_req,
                                 readers["_get_request_json"](flask), id_="batch-limit")
            if ep.request is not None and ep.parses_proto:
                readers["_get_request_message"](ep.request_class(), flask, schema)
            else:
                self.request_json = readers["_get_validated_flask_request_json"](flask, schema)
        except _Answer:
            raise
        except Exception as exc:  # raised in MLflow's reading: named by the MLflow frame it left
            inner = [f for f in traceback.extract_tb(exc.__traceback__) if "/mlflow/" in f.filename][-1]
            where = "mlflow/" + inner.filename.rpartition("/mlflow/")[2] + "::" + inner.name
            if isinstance(exc, MlflowException):  # the alias check, or a query-string boolean
                id_, fix = ("conflicting-alias", self.refusal(exc.message)[1]) if "alias" in \
                    inner.name else ("bad-type", "Send true or false.")
                raise self.fail(400, id_, where, exc.message, fix, said=exc.message,
                                code=exc.error_code) from None
            raise self.fail(500, "server-error", where, f"{CRASH}: {inner.name} fails on this "
                            f"body ({type(exc).__name__}: {exc}).",
                            advice.crash_fix(self.request_json)) from None
        finally:
            _CURRENT.reset(token)
        if ep.store is not None:
            preflight_store.run(self, ep.store)
        elif ep.name in store_checks.STEPS:
            store_checks.STEPS[ep.name](self)
        else:
            raise self.not_modelled(f"what {ep.handler} does after its schema check passes "
                                    "(its store call)")

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
            value = catalog.path_params(ep, self.req.path).get(found.group(1), "")
            self.store_check(H + ep.handler, model.resolve("validate_path_is_safe"), value)
            return
        raise self.not_modelled(f"{ep.handler} runs `{step}` before its schema check")

    @functools.cached_property
    def body_json(self) -> Any:
        """Werkzeug's get_json(force=True, silent=True): json.loads on the raw bytes (UTF-8/16/32
        detected, BOM allowed, NaN/Infinity accepted), None on any ValueError. Read once."""
        if self.req.method == "GET" and not self.req.body:
            return None  # a GET without a query string: nothing to read, and nothing wrong
        try:
            raw = json.loads(self.req.body)
            limit = JSON_DEPTH_LIMIT
            if self.req.body.count(b"[") + self.req.body.count(b"{") > limit - 10:
                depth = advice.depth(raw) if isinstance(raw, (dict, list)) else 0
                if depth > limit + 10:
                    raise RecursionError
                if depth > limit - 10:
                    raise self.not_modelled(f"a body nested {depth} levels deep, near the "
                                            f"server's limit ({limit}, measured)")
        except RecursionError:
            raise self.fail(500, "server-error", H + "_get_request_json",
                            f"{CRASH}: the body nests deeper than Python's JSON reader can "
                            "follow (RecursionError is not the ValueError get_json catches).",
                            "Send a flat JSON object.") from None
        except ValueError:
            self.add("error", "malformed-json", H + "_get_request_json",
                     f"The body is not JSON: {advice.describe_json_error(self.req.body)}. The server "
                     "does not say so: get_json(silent=True) turns it into nothing, the request "
                     "looks empty, and the handler's first check is what you see.",
                     "Build the body from a dict: requests.post(url, json=body); if you must "
                     "send a string, check it first with json.loads(text).")
            return None
        if isinstance(raw, str):
            self.add("info", "double-encoded", H + "_get_normalized_request_json",
                     "The body is a JSON string, not an object (double-encoded, e.g. "
                     "json.dumps(json.dumps(...)) or json=json.dumps(...)); the server decodes "
                     "it a second time for old clients.",
                     "Send data=json.dumps(payload) or json=payload, not both.")
        self.request_json = raw
        return raw

    def parse(self, request_json: Any, msg: Any) -> None:
        """mlflow's parse_dict (unknown fields ignored), as handlers.py::_get_request_message
        calls it: a ParseError leaves the fields after the bad one unset."""
        self.request_json = request_json
        try:
            parse_dict(request_json, msg)
        except ParseError as exc:
            self.message = msg
            self._partial_parse(self.endpoint, exc)
            raise
        except Exception as exc:  # the server lets these escape: 500
            raise self.fail(500, "server-error", PARSE, f"{CRASH}: the proto parser cannot read "
                            f"a JSON {type(request_json).__name__} "
                            f"({type(exc).__name__}: {exc}).", "Send a JSON object.") from None
        self.message = msg

    def validate(self, schema: list[Any], param: str, value: Any,
                 proto_parsing_succeeded: bool | None = False) -> None:
        """handlers.py::_validate_param_against_schema, one validator at a time, so that a
        refusal names its check."""
        ep = self.endpoint
        check = f"{H}_validate_param_against_schema (schema of {ep.handler})"
        for c in dict(ep.schema or ())[param]:
            try:
                model.schema_validator()([c.fn], param, value, proto_parsing_succeeded)
            except MlflowException as exc:
                raise self._schema_error(check, param, value, c, exc) from None
            except NotModelled as exc:
                raise self.not_modelled(f"the validator `{c.name}` ({exc})") from None
            except Exception as exc:  # only MlflowException becomes a 400 on the server
                raise self.fail(500, "server-error", check,
                                f"{CRASH}: the '{c.name}' check of '{param}' raises "
                                f"{type(exc).__name__}: {exc}.",
                                advice.crash_fix(self.request_json)) from None

    def _partial_parse(self, ep: Endpoint, exc: Exception) -> None:
        body = self.request_json
        if not isinstance(body, dict):
            return
        by_key = {k: f for f in ep.fields for k in (f.name, f.json_name)}
        keys = [k for k in body if k in by_key]
        bad = next((k for k in keys if not advice.parses(ep, k, body[k])), None)
        if bad is None:
            return
        self.stopped_at = bad
        dropped = keys[keys.index(bad) + 1:]
        f, value = by_key[bad], body[bad]
        lost = f"'{bad}'" + (f" and every field after it ({', '.join(dropped)})"
                             if dropped else "")
        id_, why, fix = advice.stop_kind(f, value)
        fix = fix or (f"Fix the item the parser names inside '{bad}'." if f.message
                      else f"Send '{bad}' as {advice.type_hint(f)}.")
        self.add("warning", id_, PARSE,
                 f"{why}The proto parser gives up at '{bad}' ({str(exc).rstrip('.')[:120]}): "
                 f"{lost} reach{'' if dropped else 'es'} the handler as 0 or empty. Its type checks "
                 "then run on the raw JSON instead.", fix)

    def _schema_error(self, check: str, key: str, value: Any, c: model.Check,
                      exc: MlflowException) -> _Answer:
        f = next((x for x in self.endpoint.fields if key in (x.name, x.json_name)), None)
        said = exc.message
        if c.name == "required" or "Missing value" in said:
            id_ = "missing-field"
            fix = f"Add \"{key}\": {advice.type_hint(f)}." + self._camel_hint(key, f)
            if "[" in said:  # a nested _assert_<field>_fields_present helper
                fix = f"Every item of '{key}' needs the key the message names."
        elif c.type_check:
            id_, fix = "bad-type", f"Send '{key}' as {advice.type_hint(f)}."
        else:
            id_ = "out-of-range"
            limits = ", ".join(f"{k} {v}" for k, v in c.limits)
            fix = f"Keep '{key}' within the handler's limit ({limits or c.name})."
        short = said.removesuffix(" See the API docs for more information about request "
                                  "parameters.")
        return self.fail(400, id_, check, f"{short} (the '{c.name}' check of the handler's "
                         f"schema, on '{key}')", fix, said=said, code=exc.error_code)

    def _camel_hint(self, key: str, f: Field | None) -> str:
        body = self.request_json if isinstance(self.request_json, dict) else {}
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
            found, fix = self.refusal(exc.message)
            raise self.fail(exc.get_http_status_code(), id_ or found, check, exc.message, fix,
                            said=exc.message, code=exc.error_code) from None

    def refusal(self, message: str) -> tuple[str, str]:
        """The finding id and fix for a refusal once the schema passed, from MLflow's message."""
        id_, fix = advice.store_refusal(message)
        if self.stopped_at is not None and message.startswith('Invalid value "" for parameter'):
            return "partial-parse", fix
        return id_, fix

