"""Build the OpenAPI 3.1 document from the route records: JSON Schemas, operations, responses.

Reads only the `Operation`/`Param` records of helpers/openapi_operations.py, plus FastAPI's own
description of the routes MLflow serves natively (built in a child process).
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
from typing import Any

import mlflow

from helpers.errors import KitError
from helpers.openapi_operations import API_PREFIX, Operation, Param, message_fields, read_operations

#: Link target for "where does the server check this" (the installed MLflow's own tag).
SOURCE_URL = f"https://github.com/mlflow/mlflow/blob/v{mlflow.__version__}/mlflow/server/handlers.py"
DROPPED_NOTE = ("Unknown fields are silently dropped: the server parses the body with protobuf's "
                "`ignore_unknown_fields=True`, so a misspelt optional field is neither stored nor "
                "refused.")
DOUBLE_ENCODED_NOTE = ("For older clients the server also takes a body that is a JSON string holding "
                       "the object (double-encoded: mlflow/server/handlers.py::"
                       "_get_normalized_request_json decodes it again); this document describes "
                       "the object only.")
CONTENT_TYPE_NOTE = ("POST and PUT requests must carry `Content-Type: application/json` (any "
                     "`; charset=...` parameter is allowed); without it the server answers 400 "
                     "before it reads the body.")


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


def _object_schema(fields: tuple[Param, ...], *, drops_unknown: bool,
                   aliases: tuple[tuple[str, str], ...] = ()) -> dict[str, Any]:
    s: dict[str, Any] = {"type": "object",
                         "properties": {f.name: json_schema(f) for f in fields}}
    aliased = {name: alias for name, alias in aliases if alias in s["properties"]}
    required = [f.name for f in fields if f.required and f.name not in aliased]
    if required:
        s["required"] = required
    if aliased:
        # mlflow/server/handlers.py::_validate_request_json_with_schema checks `run_uuid` when
        # `run_id` is absent, with run_id's checks: one of the two, and not empty.
        s["allOf"] = [{"anyOf": [{"required": [name]},
                                 {"required": [alias], "properties": {
                                     alias: {"type": "string", "minLength": 1}}}]}
                      for name, alias in aliased.items()]
    if drops_unknown:
        s["x-unknown-fields"] = "dropped"
    return s


# --------------------------------------------------------------------------- answers (200)

#: Where a message's schema lives in the document: `#/components/schemas/mlflow.Run`.
_SCHEMA_REF = "#/components/schemas/"


def response_schema(message: str, schemas: dict[str, Any]) -> dict[str, Any]:
    """A `$ref` to the answer's proto message, adding it (and every message it holds) to
    `schemas`. MLflow writes answers with message_to_json (mlflow/utils/proto_json_utils.py):
    proto field names, int64 as JSON numbers, unset fields left out (so nothing is required)."""
    if message not in schemas:
        schemas[message] = {}  # a placeholder first: messages may hold themselves
        schemas[message] = {
            "type": "object", "description": f"The proto message `{message}` as JSON.",
            "properties": {p.name: _answer_field(p, schemas) for p in message_fields(message)}}
    return {"$ref": _SCHEMA_REF + message}


def _answer_field(p: Param, schemas: dict[str, Any]) -> dict[str, Any]:
    if p.kind == "object" and p.message:
        item = response_schema(p.message, schemas)
    elif p.kind == "map":
        value = p.fields[0]
        item = {"type": "object", "additionalProperties":
                response_schema(value.message, schemas) if value.message
                else _answer_field(value, schemas)}
    elif p.kind == "integer":
        item = {"type": "integer"}
    else:
        item = _type_schema(p, False)
    return {"type": "array", "items": item} if p.repeated else item


# --------------------------------------------------------------------------- the document


def error_codes() -> list[str]:
    """Every `error_code` MLflow can put in an error body (databricks.ErrorCode)."""
    from mlflow.protos import databricks_pb2

    return list(databricks_pb2.ErrorCode.keys())


#: FastAPI's error body for HTTPException (404, 405, ...).
_DETAIL = {"type": "object", "required": ["detail"], "properties": {"detail": {}}}


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
        "securitySchemes": {
            "basicAuth": {
                "type": "http", "scheme": "basic",
                "description": "Only on a classroom server started with MLflow's basic-auth app "
                               "(`python -m helpers serve --classroom --basic-auth`, "
                               "helpers/classroom.py); a plain local `mlflow server` asks for no "
                               "credentials, hence the document's `security` allows none as well.",
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
            "NativeNotFound": {
                "description": "Not found, as FastAPI answers it (`{\"detail\": ...}`), or "
                               "MLflow's error body for an MlflowException "
                               "(mlflow/server/fastapi_app.py::add_mcp_exception_handlers).",
                "content": {"application/json": {"schema": {"anyOf": [
                    {"$ref": "#/components/schemas/Error"}, _DETAIL]}}},
            },
            "NativeMethodNotAllowed": {
                "description": "The path exists but not with this method, as FastAPI answers it.",
                "content": {"application/json": {"schema": _DETAIL}},
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
#: MLflow's FastAPI routes answer 404 and 405 as FastAPI does (`{"detail": ...}`).
_NATIVE_ERRORS = {**{k: v for k, v in _ERRORS.items() if k != "400"},
                  "404": "NativeNotFound", "405": "NativeMethodNotAllowed"}


def _openapi_path(flask_path: str) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", flask_path)


def _operation_object(op: Operation, operation_id: str,
                      schemas: dict[str, Any]) -> dict[str, Any]:
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
            alias = dict(op.aliases).get(p.name)
            if alias:  # OpenAPI cannot say "one of two query parameters": the stricter reading
                param["description"] = (f"The server also takes `{alias}` (deprecated) in its "
                                        "place: the handler falls back to it. OpenAPI cannot "
                                        "say \"one of two query parameters\", so this document "
                                        f"asks for `{p.name}`.")
            if p.repeated:
                param.update(style="form", explode=True)
            params.append(param)
        if op.fields and op.drops_unknown:
            lines.append("Unknown query parameters are ignored.")
    elif op.body == "json":
        body = _object_schema(op.fields, drops_unknown=op.drops_unknown, aliases=op.aliases)
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
                  else {"application/json": {"schema": response_schema(op.response, schemas)
                                             if op.response else {"type": "object"}}})
    errors = dict(_ERRORS)
    if op.disabled:
        lines.append("Switched off (503 or 501) when " + "; or when ".join(op.disabled) + ".")
        errors["501"] = "NotImplemented"
        errors["503"] = "Unavailable"
    if "/mlflow-artifacts/mpu/" in op.path or "/presigned" in op.path:
        errors["501"] = "NotImplemented"
    ok: dict[str, Any] = {"description": "OK", "content": ok_content}
    if op.body == "raw":
        # MLflow's FastAPI artifact router serves this PUT ahead of the Flask handler
        # (mlflow/server/artifact_router.py::upload_artifact: `Response(status_code=200)`).
        ok = {"description": "Stored: an empty answer, without a Content-Type."}
    out["responses"] = {"200": ok,
                        **{code: {"$ref": f"#/components/responses/{name}"}
                           for code, name in sorted(errors.items())}}
    out["description"] = "\n\n".join(lines)
    return out


#: Who answers for this document (not MLflow: it publishes none).
CONTACT = {"name": "MLflow 400 Lab (the kit that generates this document; not MLflow's)",
           "url": "https://mlflow.org/docs/latest/api_reference/rest-api.html"}


def _tag_description(tag: str) -> str:
    if tag == NATIVE_TAG:
        return "Routes MLflow's FastAPI app serves itself, described by FastAPI."
    if tag == "handlers.py":
        return "Routes mlflow/server/handlers.py::get_endpoints adds outside the protos."
    return f"The rpcs of the `{tag}` service in MLflow's protos (mlflow/protos)."


def _drop_unused(paths: dict[str, Any], components: dict[str, Any]) -> None:
    """Keep only the components the operations reach (FastAPI's document brings its whole
    schema set, most of it for routes outside /api)."""
    reached: set[str] = set()
    todo = [paths]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/components/") and ref not in reached:
                reached.add(ref)
                _, _, kind, name = ref.split("/", 3)
                todo.append(components[kind][name])
            todo.extend(v for k, v in node.items() if k != "$ref")
        elif isinstance(node, list):
            todo.extend(node)
    for kind in ("schemas", "responses"):
        components[kind] = {k: v for k, v in sorted(components[kind].items())
                            if f"#/components/{kind}/{k}" in reached}


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
                   for code, name in _NATIVE_ERRORS.items()}}
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
    ops = read_operations() if operations is None else operations
    counts: dict[str, int] = {}
    for op in ops:
        counts[op.name] = counts.get(op.name, 0) + 1
    paths: dict[str, dict[str, Any]] = {}
    used: set[str] = set()
    components = _components()
    for op in ops:
        oid = op.name
        if counts[op.name] > 1:  # one RPC at two paths or with two methods, or two services
            version = re.search(r"/api/(\d)\.0", op.path)
            oid = f"{op.name}_{op.method.lower()}_v{version.group(1) if version else ''}"
        if oid in used:
            oid = f"{op.group}_{oid}"
        used.add(oid)
        paths.setdefault(_openapi_path(op.path), {})[op.method.lower()] = _operation_object(
            op, oid, components["schemas"])
    _merge_native(paths, components)
    _drop_unused(paths, components)
    tags = sorted({t for item in paths.values() for o in item.values() for t in o["tags"]})
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
                + CONTENT_TYPE_NOTE + " " + DROPPED_NOTE + " " + DOUBLE_ENCODED_NOTE),
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
            "contact": CONTACT,
        },
        "servers": [{"url": "http://127.0.0.1:5000", "description": "a local `mlflow server`"}],
        "security": [{}, {"basicAuth": []}],
        "tags": [{"name": t, "description": _tag_description(t)} for t in tags],
        "paths": dict(sorted(paths.items())),
        "components": components,
    }
