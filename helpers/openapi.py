"""MLflow's tracking REST API as an OpenAPI 3.1 document, generated from the installed MLflow.

Why: MLflow publishes no OpenAPI description (its FastAPI app sets `openapi_url=None`, and the
protos are proto2, which generators reject). The kit already reads every route, field, type,
required field and limit from the installed MLflow; written as OpenAPI 3.1 (whose schemas are
JSON Schema 2020-12), that knowledge serves Postman, Bruno, Schemathesis, client generators and
any JSON-Schema validator.

Layout: `_operations()` is the one adapter that reads the kit's knowledge of the server and
returns plain `Operation`/`Param` records; everything below it (JSON Schema, error responses,
the document) depends on those records only.

    python -m helpers openapi --output openapi/mlflow-3.17.2.json
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow

from helpers.errors import KitError

#: The paths the document covers: the REST API (the `/ajax-api` twins serve the same handlers
#: to MLflow's own web UI and are left out).
API_PREFIX = "/api/"
#: Link target for "where does the server check this" (the installed MLflow's own tag).
SOURCE_URL = f"https://github.com/mlflow/mlflow/blob/v{mlflow.__version__}/mlflow/server/handlers.py"
DROPPED_NOTE = ("Unknown fields are silently dropped: the server parses the body with protobuf's "
                "`ignore_unknown_fields=True`, so a misspelt optional field is neither stored nor "
                "refused.")
CONTENT_TYPE_NOTE = ("POST and PUT requests must carry `Content-Type: application/json` (any "
                     "`; charset=...` parameter is allowed); without it the server answers 400 "
                     "before it reads the body.")


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Param:
    """One field of a JSON body, or one query parameter, as the server accepts it."""

    name: str
    #: "string", "integer", "number", "boolean", "enum", "object", "map", "any", "bytes",
    #: "timestamp", "duration", "field-mask", "list-value", "struct".
    kind: str
    repeated: bool = False
    required: bool = False
    enum: tuple[str, ...] = ()
    max_length: int | None = None
    max_items: int | None = None
    minimum: int | None = None
    maximum: int | None = None
    #: The nested message's fields ("object"), or the map's value ("map", one Param).
    fields: tuple[Param, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Operation:
    """One route and method the server registers under /api."""

    path: str  # Flask spelling: /api/2.0/mlflow/traces/<request_id>/info
    method: str  # upper case
    name: str  # the RPC name (createExperiment) or the handler's
    group: str  # the proto service, e.g. MlflowService
    handler: str  # the function in handlers.py that answers it
    handler_line: int | None
    #: "json" (a JSON object), "none" (GET: query only), "raw" (bytes, e.g. artifact upload).
    body: str
    fields: tuple[Param, ...]
    drops_unknown: bool = True
    notes: tuple[str, ...] = ()
    #: Why the server may answer 503 instead (the handler's `_disable_if_*` decorators).
    disabled: tuple[str, ...] = ()


# --------------------------------------------------------------------------- the adapter


def _operations() -> list[Operation]:
    """Every /api route and method, from the kit's model of the server (helpers.server_model)."""
    from helpers import server_model

    return _operations_from_model(server_model.endpoints())


def _operations_from_model(endpoints: Any) -> list[Operation]:
    """Operation records from the server model's endpoints.

    Reads its `Endpoint`/`Field`: paths, http_methods, handler, decorators, reads_run_uuid,
    request (None off the protos), store (timestamps, state, truncates); per field: type,
    message, repeated, fields, enum_values, enforced, documented, handler_checks, limits
    (("max_length"|"max_items"|"min"|"max", n), ...).
    """
    from helpers import server_model
    from helpers.preflight_store import describe

    ops: list[Operation] = []
    for ep in endpoints:
        notes: list[str] = []
        store = ep.store
        if store is not None:
            if store.timestamps:
                notes.append("Milliseconds since the epoch: "
                             + ", ".join(f"`{t}`" for t in store.timestamps) + ".")
            notes += [f"`{name}` longer than {n} characters is truncated, not refused."
                      for name, n in store.truncates]
            if store.state:
                notes.append("Depends on server state: " + "; ".join(
                    describe(r, f"<{r.field}>") for r in store.state) + ".")
        if ep.reads_run_uuid:
            notes.append("`run_uuid` (deprecated) is accepted in place of `run_id`.")
        disabled = tuple(_DISABLING[d] for d in ep.decorators if d in _DISABLING)
        for path in ep.paths:
            if not path.startswith(API_PREFIX):
                continue
            path_params = set(re.findall(r"<(?:\w+:)?(\w+)>", path))
            for method in ep.http_methods:
                fields = tuple(_param_from_model(f, ep.request is None) for f in ep.fields
                               if f.name not in path_params or f.enforced)
                ops.append(Operation(
                    path=path, method=method, name=ep.name, group=ep.service,
                    handler=ep.handler or "", handler_line=server_model.handler_lines().get(ep.handler or ""),
                    body=_body_kind(path, method), fields=fields,
                    drops_unknown=ep.request is not None, notes=tuple(notes), disabled=disabled))
    return ops


def _param_from_model(f: Any, plain: bool) -> Param:
    limits = dict(f.limits)
    if plain:  # a route outside the protos: the handler's checks are all there is
        names = f.handler_checks
        kind = ("string" if "string" in names else "integer" if "intlike" in names
                else "boolean" if "bool" in names else
                "string" if "item_type_string" in names else "any")
        repeated = "array" in names
    else:
        kind, repeated = _kind(f.type, f.message), f.repeated
    nested: tuple[Param, ...] = ()
    if kind == "object":
        nested = tuple(_param_from_model(sub, False) for sub in f.fields)
    elif kind == "map":
        nested = (_map_value(f.message),)
    return Param(
        name=f.name, kind=kind, repeated=repeated,
        required=f.enforced or "secret_value" in f.handler_checks,
        enum=tuple(f.enum_values), minimum=limits.get("min"), maximum=limits.get("max"),
        max_length=limits.get("max_length") if kind == "string" and not repeated else None,
        max_items=limits.get("max_items") if repeated else None, fields=nested)


#: Handlers whose body is bytes, not JSON (mlflow-artifacts upload and multipart parts).
_RAW_BODY_PATHS = ("/mlflow-artifacts/artifacts/",)

_SCALAR_KINDS = {
    "string": "string", "bool": "boolean", "enum": "enum", "bytes": "bytes",
    "double": "number", "float": "number",
    "int32": "integer", "int64": "integer", "uint32": "integer", "uint64": "integer",
    "sint32": "integer", "sint64": "integer", "fixed32": "integer", "fixed64": "integer",
    "sfixed32": "integer", "sfixed64": "integer",
}
_WELL_KNOWN = {
    "google.protobuf.Timestamp": "timestamp", "google.protobuf.Duration": "duration",
    "google.protobuf.FieldMask": "field-mask", "google.protobuf.Value": "any",
    "google.protobuf.Struct": "struct", "google.protobuf.ListValue": "list-value",
}


#: handlers.py decorators that turn a route off (503) on servers started without a feature.
_DISABLING = {
    "_disable_if_artifacts_only": "the server runs with --artifacts-only",
    "_disable_if_gateway_disabled": "the AI gateway is disabled on this server",
    "_disable_if_workspaces_disabled": "the server runs without --enable-workspaces",
}


def _body_kind(path: str, method: str) -> str:
    if method == "GET":
        return "none"
    if method == "PUT" and any(marker in path for marker in _RAW_BODY_PATHS):
        return "raw"
    return "json"


def _kind(proto_type: str, message: str | None) -> str:
    if not message:
        return _SCALAR_KINDS.get(proto_type, "string")
    if message in _WELL_KNOWN:
        return _WELL_KNOWN[message]
    return "map" if _descriptor(message).GetOptions().map_entry else "object"


def _descriptor(full_name: str) -> Any:
    from google.protobuf.descriptor_pool import Default

    return Default().FindMessageTypeByName(full_name)


def _map_value(entry: str) -> Param:
    """The value of a protobuf map (JSON: an object whose keys are the map's keys)."""
    value = _descriptor(entry).fields_by_name["value"]
    sub = value.message_type.full_name if value.message_type is not None else None
    kind = _kind(_TYPE_NAME.get(value.type, ""), sub)
    enum = tuple(v.name for v in value.enum_type.values) if value.enum_type else ()
    return Param(name="value", kind=kind, enum=enum)


def _proto_type_names() -> dict[int, str]:
    from google.protobuf.descriptor import FieldDescriptor

    return {v: n[len("TYPE_"):].lower() for n, v in vars(FieldDescriptor).items()
            if n.startswith("TYPE_")}


_TYPE_NAME = _proto_type_names()


# --------------------------------------------------------------------------- JSON Schema

_INT_STRING = r"^-?[0-9]+$"
_FLOAT_STRING = r"^(NaN|-?Infinity|[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?)$"


def json_schema(p: Param, *, in_query: bool = False) -> dict[str, Any]:
    """The JSON Schema (2020-12) of one Param, as the server accepts it."""
    item = _scalar_schema(p, in_query)
    if p.repeated:
        schema: dict[str, Any] = {"type": "array", "items": item}
        if p.max_items is not None:
            schema["maxItems"] = p.max_items
    else:
        schema = item
    if p.notes:
        schema["description"] = " ".join(p.notes)
    return schema


def _scalar_schema(p: Param, in_query: bool) -> dict[str, Any]:
    s = _type_schema(p, in_query)
    # _assert_required refuses None and "" alike: a required value is neither.
    if p.required and not p.repeated:
        if s.get("type") == "string" or p.kind in ("field-mask", "timestamp", "duration"):
            s.setdefault("minLength", 1)
        elif not s:
            s = {"not": {"enum": [None, ""]}}
    return s


def _type_schema(p: Param, in_query: bool) -> dict[str, Any]:
    k = p.kind
    if k == "string":
        s: dict[str, Any] = {"type": "string"}
        if p.max_length is not None:
            s["maxLength"] = p.max_length
        return s
    if k == "integer":
        # protobuf's JSON parser takes int64 as a number or a decimal string; a range check
        # (`int(x) <= N`) is only expressible on numbers, so those fields are numbers only.
        if in_query or p.minimum is not None or p.maximum is not None:
            s = {"type": "integer"}
            if p.minimum is not None:
                s["minimum"] = p.minimum
            if p.maximum is not None:
                s["maximum"] = p.maximum
            return s
        return {"type": ["integer", "string"], "pattern": _INT_STRING,
                "description": "an integer, or the same integer as a decimal string"}
    if k == "number":
        if in_query:
            return {"type": "number"}
        return {"type": ["number", "string"], "pattern": _FLOAT_STRING,
                "description": "a number, or a numeric string (also \"NaN\", \"Infinity\", "
                               "\"-Infinity\")"}
    if k == "boolean":
        return {"type": "boolean"}
    if k == "enum":
        return {"type": "string", "enum": list(p.enum)}
    if k == "bytes":
        return {"type": "string", "contentEncoding": "base64"}
    if k == "timestamp":
        return {"type": "string", "format": "date-time"}
    if k == "duration":
        return {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]{1,9})?s$"}
    if k == "field-mask":
        return {"type": "string"}
    if k == "struct":
        return {"type": "object"}
    if k == "list-value":
        return {"type": "array"}
    if k == "map":
        value = json_schema(p.fields[0]) if p.fields else {}
        return {"type": "object", "additionalProperties": value}
    if k == "object":
        return _object_schema(p.fields, drops_unknown=True)
    return {}


def _object_schema(fields: tuple[Param, ...], *, drops_unknown: bool) -> dict[str, Any]:
    s: dict[str, Any] = {"type": "object",
                         "properties": {f.name: json_schema(f) for f in fields}}
    required = [f.name for f in fields if f.required]
    if required:
        s["required"] = required
    if drops_unknown:
        s["x-unknown-fields"] = "dropped"
    return s


# --------------------------------------------------------------------------- the document


def error_codes() -> list[str]:
    """Every `error_code` MLflow can put in an error body (databricks.ErrorCode)."""
    from mlflow.protos import databricks_pb2

    return list(databricks_pb2.ErrorCode.keys())


def _components() -> dict[str, Any]:
    return {
        "schemas": {
            "Error": {
                "type": "object",
                "description": "MLflow's JSON error body (mlflow.exceptions.MlflowException"
                               ".serialize_as_json).",
                "required": ["error_code", "message"],
                "properties": {
                    "error_code": {"type": "string", "enum": error_codes()},
                    "message": {"type": "string"},
                    "error_class": {"type": "string"},
                    "sqlstate": {"type": "string"},
                    "details": {},
                },
            },
        },
        "responses": {
            "BadRequest": {
                "description": "The request was refused: wrong Content-Type, a body that is not "
                               "a JSON object, a missing required field, a wrong type, a limit "
                               "exceeded, or a rule of the store (error_code "
                               "INVALID_PARAMETER_VALUE, RESOURCE_ALREADY_EXISTS, ...).",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            },
            "Forbidden": {
                "description": "Refused by the server's security middleware: a Host header not "
                               "in --allowed-hosts (DNS-rebinding check) or a cross-origin "
                               "request from an origin not in --cors-allowed-origins. The body "
                               "is plain text; with MLflow's basic-auth app, PERMISSION_DENIED "
                               "as JSON.",
                "content": {"text/plain": {"schema": {"type": "string"}},
                            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            },
            "NotFound": {
                "description": "A run, experiment, model, trace ... named in the request does "
                               "not exist (RESOURCE_DOES_NOT_EXIST). A path the server does not "
                               "know at all gets Flask's HTML 404 page instead.",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}},
                            "text/html": {"schema": {"type": "string"}}},
            },
            "MethodNotAllowed": {
                "description": "The path exists but not with this method: Flask's HTML page, "
                               "with an `Allow` header naming the methods that work.",
                "headers": {"Allow": {"schema": {"type": "string"}}},
                "content": {"text/html": {"schema": {"type": "string"}}},
            },
            "NotImplemented": {
                "description": "A feature this server does not offer (NOT_IMPLEMENTED): the AI "
                               "gateway is disabled, or the artifact store has no multipart "
                               "upload or presigned URLs (a local directory has neither).",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            },
            "Unavailable": {
                "description": "The route is switched off on this server (`--artifacts-only`, or "
                               "workspaces not enabled): a plain-text sentence naming the flag; "
                               "or TEMPORARILY_UNAVAILABLE as JSON when the store is out of "
                               "space.",
                "content": {"text/plain": {"schema": {"type": "string"}},
                            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            },
            "ServerError": {
                "description": "A server bug: INTERNAL_ERROR as JSON, or an HTML page when the "
                               "exception escaped MLflow's handler (see openapi/server-errors.md).",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}},
                            "text/html": {"schema": {"type": "string"}}},
            },
        },
    }


_ERRORS = {"400": "BadRequest", "403": "Forbidden", "404": "NotFound", "405": "MethodNotAllowed",
           "500": "ServerError"}


def _openapi_path(flask_path: str) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", flask_path)


def _operation_object(op: Operation, operation_id: str) -> dict[str, Any]:
    where = f"{SOURCE_URL}#L{op.handler_line}" if op.handler_line else SOURCE_URL
    lines = [f"Handler: [`{op.handler or '?'}`]({where})."]
    out: dict[str, Any] = {"operationId": operation_id, "tags": [op.group],
                           "summary": f"{op.name} ({op.method} {op.path})"}
    params = [{"name": name, "in": "path", "required": True,
               "schema": {"type": "string"},
               **({"description": "may contain `/`"} if f"<path:{name}>" in op.path else {})}
              for name in re.findall(r"<(?:\w+:)?(\w+)>", op.path)]
    if op.body == "none":
        for p in op.fields:
            if p.kind in ("object", "map", "struct", "list-value", "any"):
                lines.append(f"`{p.name}` is a message and cannot be sent as a query parameter.")
                continue
            param: dict[str, Any] = {"name": p.name, "in": "query", "required": p.required,
                                     "schema": json_schema(p, in_query=True)}
            if p.repeated:
                param.update(style="form", explode=True)
            params.append(param)
        if op.fields and op.drops_unknown:
            lines.append("Unknown query parameters are ignored.")
    elif op.body == "json":
        body = _object_schema(op.fields, drops_unknown=op.drops_unknown)
        out["requestBody"] = {
            "required": op.method in ("POST", "PUT"),
            "description": CONTENT_TYPE_NOTE + (" " + DROPPED_NOTE if op.drops_unknown else ""),
            "content": {"application/json": {"schema": body}},
        }
    else:
        out["requestBody"] = {"required": True, "description": "The file's bytes.",
                              "content": {"application/octet-stream": {
                                  "schema": {"type": "string", "contentMediaType":
                                             "application/octet-stream"}}}}
    if params:
        out["parameters"] = params
    twice = [p.name for p in op.fields if p.required and f"<{p.name}>" in op.path]
    if twice:
        lines.append("The handler checks " + ", ".join(f"`{n}`" for n in twice) + " in the "
                     + ("query" if op.body == "none" else "body") + " as well: send it in the "
                     "URL and there.")
    lines += list(op.notes)
    ok_content = ({"application/octet-stream": {"schema": {"type": "string"}}}
                  if op.method == "GET" and "/mlflow-artifacts/artifacts/" in op.path
                  else {"application/json": {"schema": {"type": "object"}}})
    errors = dict(_ERRORS)
    if op.disabled:
        lines.append("Switched off (503 or 501) when " + "; or when ".join(op.disabled) + ".")
        errors["501"] = "NotImplemented"
        errors["503"] = "Unavailable"
    if "/mlflow-artifacts/mpu/" in op.path or "/presigned" in op.path:
        errors["501"] = "NotImplemented"
    out["responses"] = {"200": {"description": "OK", "content": ok_content},
                        **{code: {"$ref": f"#/components/responses/{name}"}
                           for code, name in sorted(errors.items())}}
    out["description"] = "\n\n".join(lines)
    return out


#: Tag of the operations MLflow serves from FastAPI directly (not from its Flask route table).
NATIVE_TAG = "FastAPI-native"
_NATIVE_NOTE = ("Served by MLflow's FastAPI app directly, not by its Flask handlers: this operation "
                "is FastAPI's own description of it (MLflow builds it but leaves it switched off, "
                "`openapi_url=None`). Invalid bodies get FastAPI's 422 with a `detail` list.")


@functools.cache
def _native_openapi() -> dict[str, Any]:
    """FastAPI's own document for the routes MLflow serves natively (MCP server registry, ...).

    In a child process: building MLflow's FastAPI app imports mlflow.server (seconds, a Flask
    app), which must not happen in the caller's process (a learner's kernel)."""
    code = ("import json, sys; from mlflow.server.fastapi_app import app; "
            "json.dump(app.openapi(), sys.stdout)")
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True,
                          text=True, timeout=300, env=env)
    if done.returncode != 0:
        raise KitError("MLflow's FastAPI app could not be built to describe its native routes: "
                       + (done.stderr.strip().splitlines() or ["no output"])[-1])
    return json.loads(done.stdout)


def _merge_native(paths: dict[str, dict[str, Any]], components: dict[str, Any]) -> None:
    """Add the native /api operations the Flask table lacks, their schemas renamed `fastapi.X`."""
    native = _native_openapi()
    for route, item in native.get("paths", {}).items():
        if not route.startswith(API_PREFIX):
            continue
        for method, operation in item.items():
            if method in paths.get(route, {}):
                continue  # the Flask route is described from MLflow's handlers already
            operation = _rename_refs(operation)
            operation["tags"] = [NATIVE_TAG]
            operation["description"] = _NATIVE_NOTE
            operation["responses"] = {
                **operation.get("responses", {}),
                **{code: {"$ref": f"#/components/responses/{name}"}
                   for code, name in _ERRORS.items() if code not in ("400",)}}
            paths.setdefault(route, {})[method] = operation
    schemas = native.get("components", {}).get("schemas", {})
    components["schemas"].update({f"fastapi.{k}": _rename_refs(v) for k, v in schemas.items()})


def _rename_refs(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: (v.replace("#/components/schemas/", "#/components/schemas/fastapi.")
                    if k == "$ref" and isinstance(v, str) else _rename_refs(v))
                for k, v in node.items()}
    if isinstance(node, list):
        return [_rename_refs(v) for v in node]
    return node


def build(operations: list[Operation] | None = None) -> dict[str, Any]:
    """The whole OpenAPI 3.1 document for the installed MLflow (deterministic: no dates)."""
    ops = _operations() if operations is None else operations
    counts: dict[str, int] = {}
    for op in ops:
        counts[op.name] = counts.get(op.name, 0) + 1
    paths: dict[str, dict[str, Any]] = {}
    used: set[str] = set()
    for op in ops:
        oid = op.name
        if counts[op.name] > 1:  # one RPC at two paths or with two methods, or two services
            version = re.search(r"/api/(\d)\.0", op.path)
            oid = f"{op.name}_{op.method.lower()}_v{version.group(1) if version else ''}"
        if oid in used:
            oid = f"{op.group}_{oid}"
        used.add(oid)
        paths.setdefault(_openapi_path(op.path), {})[op.method.lower()] = _operation_object(op, oid)
    components = _components()
    _merge_native(paths, components)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "MLflow tracking server REST API",
            "version": mlflow.__version__,
            "description": (
                f"Generated by MLflow 400 Lab (`python -m helpers openapi`) from MLflow "
                f"{mlflow.__version__}: routes and fields from its protobuf descriptors (checked "
                "against its route table by the kit's tests), required fields and limits from the "
                "`schema=` checks in "
                "mlflow/server/handlers.py and its exported constants. Not an official MLflow "
                "document. Operations tagged FastAPI-native are MLflow's FastAPI routes, as "
                "FastAPI itself describes them. Every path is also served under /ajax-api (for "
                "MLflow's web UI).\n\n"
                + CONTENT_TYPE_NOTE + " " + DROPPED_NOTE),
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [{"url": "http://127.0.0.1:5000", "description": "a local `mlflow server`"}],
        "paths": dict(sorted(paths.items())),
        "components": components,
    }


def dumps(document: dict[str, Any]) -> str:
    """The document as committed: sorted paths, two-space indent, trailing newline."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def default_output() -> Path:
    return Path(__file__).resolve().parents[1] / "openapi" / f"mlflow-{mlflow.__version__}.json"


def operation_count(document: dict[str, Any]) -> int:
    return sum(1 for item in document["paths"].values() for m in item
               if m in ("get", "post", "put", "patch", "delete"))


def load() -> dict[str, Any]:
    """The committed document for the installed MLflow (generated on the fly if there is none)."""
    path = default_output()
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    return build()


def request_schema(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    """The JSON Schema of one operation's JSON body, standalone (components bundled), e.g.
    `request_schema(doc, "POST", "/api/2.0/mlflow/runs/log-metric")`: what any JSON-Schema
    validator, in any language, needs to check a body before it is sent."""
    operation = document["paths"][path][method.lower()]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema,
            "components": document["components"]}


def check_body(document: dict[str, Any], method: str, path: str, body: Any) -> list[str]:
    """Every way `body` breaks the document's schema, one line each ("" path = the body itself)."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(request_schema(document, method, path))
    return [f"{'.'.join(str(p) for p in error.absolute_path) or '(body)'}: {_short(error)}"
            for error in sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))]


def _short(error: Any) -> str:
    """jsonschema's message, without repeating a long value back."""
    if error.validator == "maxLength":
        return f"{len(error.instance)} characters, more than the {error.validator_value} allowed"
    if error.validator == "maxItems":
        return f"{len(error.instance)} items, more than the {error.validator_value} allowed"
    return error.message if len(error.message) <= 160 else error.message[:157] + "..."


def write(output: Path | None = None) -> Path:
    """Generate and write the document; returns where it went."""
    target = Path(output) if output else default_output()
    text = dumps(build())
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise KitError(f"Cannot write {target} ({exc.strerror or exc}): choose another "
                       "--output.") from None
    return target


__all__ = ["Operation", "Param", "build", "check_body", "dumps", "json_schema", "load",
           "operation_count", "request_schema", "write"]
