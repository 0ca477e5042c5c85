"""The routes the OpenAPI document describes, as plain records read from the kit's server model.

`read_operations()` is the one adapter between helpers/server_model.py and the document: it returns
`Operation`/`Param` records, and everything that writes OpenAPI (helpers/openapi_build.py) depends
on those records only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

#: The paths the document covers: the REST API (the `/ajax-api` twins serve the same handlers
#: to MLflow's own web UI and are left out).
API_PREFIX = "/api/"


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
    #: The message an "object" names (responses refer to it; request bodies inline `fields`).
    message: str | None = None


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
    #: Full name of the proto message a 200 carries ("mlflow.GetRun.Response"); None: not a
    #: proto answer (a route outside the protos, or file bytes).
    response: str | None = None
    #: (field, alias) pairs: a body may send the alias instead of the field (the handler reads
    #: `run_id or run_uuid`, and the schema check falls back the same way).
    aliases: tuple[tuple[str, str], ...] = ()


# --------------------------------------------------------------------------- the adapter


def read_operations() -> list[Operation]:
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
        aliases = (("run_id", "run_uuid"),) if ep.reads_run_uuid else ()
        if aliases:
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
                    drops_unknown=ep.request is not None, notes=tuple(notes), disabled=disabled,
                    response=ep.response, aliases=aliases))
    return ops


def message_fields(full_name: str) -> tuple[Param, ...]:
    """The fields of a proto message as MLflow writes it in an answer (message_to_json in
    mlflow/utils/proto_json_utils.py: proto field names); nested messages by name, so a
    recursive message stays finite."""
    out = []
    for fd in _descriptor(full_name).fields:
        sub = fd.message_type
        kind = _kind(_TYPE_NAME.get(fd.type, ""), sub.full_name if sub is not None else None)
        out.append(Param(
            name=fd.name, kind=kind, repeated=fd.is_repeated and kind != "map",
            enum=tuple(v.name for v in fd.enum_type.values) if fd.enum_type else (),
            fields=(_map_value(sub.full_name),) if kind == "map" else (),
            message=sub.full_name if kind == "object" else None))
    return tuple(out)


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
    return Param(name="value", kind=kind, enum=enum,
                 message=sub if kind == "object" else None)


def _proto_type_names() -> dict[int, str]:
    from google.protobuf.descriptor import FieldDescriptor

    return {v: n[len("TYPE_"):].lower() for n, v in vars(FieldDescriptor).items()
            if n.startswith("TYPE_")}


_TYPE_NAME = _proto_type_names()
