"""The MLflow REST endpoint catalog, read at runtime from MLflow's own protobuf descriptors.

Why: the `.proto` service definitions are the API's schema (paths, methods, field names and
types). Reading them from the installed `mlflow.protos` means the catalog cannot drift from the
server a learner runs. A few rules are not in the protos at all but only in the server's Python
handlers; those live in the one commented table `HANDLER_RULES` below.
"""

from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from mlflow.protos import (
    databricks_pb2,
    mlflow_artifacts_pb2,
    model_registry_pb2,
    service_pb2,
    webhooks_pb2,
)
from mlflow.utils import validation as v

from helpers.errors import KitError

#: Served path prefixes: handlers.py::_get_rest_path and ::_get_ajax_path (no --static-prefix).
PREFIXES = ("/api", "/ajax-api")

# The services whose RPCs handlers.py::get_endpoints registers with Flask.
_SERVICES = (
    service_pb2.DESCRIPTOR.services_by_name["MlflowService"],
    model_registry_pb2.DESCRIPTOR.services_by_name["ModelRegistryService"],
    mlflow_artifacts_pb2.DESCRIPTOR.services_by_name["MlflowArtifactsService"],
    webhooks_pb2.DESCRIPTOR.services_by_name["WebhookService"],
)

_TYPE_NAMES = {
    value: name[len("TYPE_"):].lower()
    for name, value in vars(FieldDescriptor).items()
    if name.startswith("TYPE_")
}


class UnknownEndpoint(KitError, LookupError):
    """No MLflow REST endpoint (or more than one) matches what was asked for."""


@dataclass(frozen=True)
class HandlerRule:
    """What one handler in mlflow/server/handlers.py checks that the proto does not say.

    `schema` is the handler's `schema={...}` dict as an ordered tuple: the server walks it in
    order and reports only the first failure, so order decides which error a learner sees.
    Check names: required -> _assert_required, string -> _assert_string, intlike ->
    _assert_intlike, floatlike -> _assert_floatlike, array -> _assert_array,
    `<field>_fields_present` -> the nested _assert_*_fields_present helpers of _log_batch.
    """

    handler: str
    schema: tuple[tuple[str, tuple[str, ...]], ...]
    #: Nested keys the handler requires inside repeated fields (log-batch only).
    nested_required: tuple[tuple[str, tuple[str, ...]], ...] = ()
    #: True when the handler reads `run_id or run_uuid`; False when it reads run_id alone even
    #: though the schema check accepts run_uuid (then a run_uuid-only body finds no run).
    reads_run_uuid: bool = False
    #: Fields holding milliseconds since the epoch.
    timestamp_fields: tuple[str, ...] = ()
    #: Timestamp fields the server refuses when negative (_validate_metric); the others are
    #: stored as sent, -1 included.
    non_negative: tuple[str, ...] = ()
    #: Limits the store enforces (name -> value), from mlflow/utils/validation.py.
    limits: tuple[tuple[str, int], ...] = ()
    #: mlflow/utils/validation.py functions the store runs, in order, before touching the DB.
    store_checks: tuple[str, ...] = ()
    #: The server state that still decides the answer once the request itself is valid.
    state: str = ""

    def checks_for(self, field_name: str) -> tuple[str, ...]:
        """The handler's checks for one top-level field, in order ('' -> none)."""
        return dict(self.schema).get(field_name, ())


_RUN = "the run exists and is active (missing run: 404 RESOURCE_DOES_NOT_EXIST)"
_EXPERIMENT = "the experiment exists and is active (missing: 404 RESOURCE_DOES_NOT_EXIST)"

# Rules that live only in mlflow/server/handlers.py (MLflow 3.17.2), keyed by RPC name.
# Each `schema` copies the handler's `schema={...}` dict in its order.
HANDLER_RULES: dict[str, HandlerRule] = {
    # handlers.py::_create_experiment, then SqlAlchemyStore.create_experiment
    "createExperiment": HandlerRule(
        handler="_create_experiment",
        schema=(("name", ("required", "string")), ("artifact_location", ("string",)),
                ("tags", ("array",))),
        limits=(("name", v.MAX_EXPERIMENT_NAME_LENGTH),
                ("tags[].key", v.MAX_EXPERIMENT_TAG_KEY_LENGTH),
                ("tags[].value", v.MAX_EXPERIMENT_TAG_VAL_LENGTH),
                ("custom view tags", v.MAX_CUSTOM_VIEWS_PER_EXPERIMENT)),
        store_checks=("_validate_experiment_name", "_validate_experiment_tag"),
        state="no experiment has this name yet (else 400 RESOURCE_ALREADY_EXISTS)",
    ),
    # handlers.py::_create_run, then SqlAlchemyStore.create_run (tags are not validated there)
    "createRun": HandlerRule(
        handler="_create_run",
        schema=(("experiment_id", ("string",)), ("start_time", ("intlike",)),
                ("run_name", ("string",))),
        timestamp_fields=("start_time",),
        store_checks=("_parse_experiment_id",),
        state=_EXPERIMENT,
    ),
    # handlers.py::_update_run, then SqlAlchemyStore.update_run_info
    "updateRun": HandlerRule(
        handler="_update_run",
        schema=(("run_id", ("required", "string")), ("end_time", ("intlike",)),
                ("status", ("string",)), ("run_name", ("string",))),
        reads_run_uuid=True,
        timestamp_fields=("end_time",),
        state=_RUN,
    ),
    # handlers.py::_delete_run / ::_restore_run (read run_id only)
    "deleteRun": HandlerRule(handler="_delete_run", schema=(("run_id", ("required", "string")),),
                             state=_RUN),
    "restoreRun": HandlerRule(handler="_restore_run",
                              schema=(("run_id", ("required", "string")),), state=_RUN),
    # handlers.py::_log_metric, then SqlAlchemyStore._log_metrics_once -> _validate_metric
    "logMetric": HandlerRule(
        handler="_log_metric",
        schema=(("run_id", ("required", "string")), ("key", ("required", "string")),
                ("value", ("required", "floatlike")), ("timestamp", ("intlike", "required")),
                ("step", ("intlike",)), ("model_id", ("string",)), ("dataset_name", ("string",)),
                ("dataset_digest", ("string",))),
        reads_run_uuid=True,
        timestamp_fields=("timestamp",),
        non_negative=("timestamp",),
        limits=(("key", v.MAX_ENTITY_KEY_LENGTH),),
        store_checks=("_validate_metric",),
        state=_RUN,
    ),
    # handlers.py::_log_param, then SqlAlchemyStore.log_param -> _validate_param
    "logParam": HandlerRule(
        handler="_log_param",
        schema=(("run_id", ("required", "string")), ("key", ("required", "string")),
                ("value", ("string",))),
        reads_run_uuid=True,
        limits=(("key", v.MAX_ENTITY_KEY_LENGTH), ("value (truncated)", v.MAX_PARAM_VAL_LENGTH)),
        store_checks=("_validate_param",),
        state=_RUN + "; a param already logged with another value gives 400",
    ),
    # handlers.py::_set_tag, then SqlAlchemyStore.set_tag -> _validate_tag
    "setTag": HandlerRule(
        handler="_set_tag",
        schema=(("run_id", ("required", "string")), ("key", ("required", "string")),
                ("value", ("string",))),
        reads_run_uuid=True,
        limits=(("key", v.MAX_ENTITY_KEY_LENGTH), ("value (truncated)", v.MAX_TAG_VAL_LENGTH)),
        store_checks=("_validate_tag",),
        state=_RUN,
    ),
    # handlers.py::_delete_tag (reads run_id only)
    "deleteTag": HandlerRule(
        handler="_delete_tag",
        schema=(("run_id", ("required", "string")), ("key", ("required", "string"))),
        state=_RUN + " and has this tag (else 404)",
    ),
    # handlers.py::_log_batch: _validate_batch_log_api_req(raw JSON) first, then this schema
    # (note run_id's checks are in the opposite order to the other handlers'); the store then
    # runs the batch validators (log_batch reads run_id only).
    "logBatch": HandlerRule(
        handler="_log_batch",
        schema=(("run_id", ("string", "required")),
                ("metrics", ("array", "metrics_fields_present")),
                ("params", ("array", "params_fields_present")),
                ("tags", ("array", "tags_fields_present"))),
        nested_required=(("metrics", ("key", "value", "timestamp")), ("params", ("key",)),
                         ("tags", ("key",))),
        timestamp_fields=("metrics[].timestamp",),
        non_negative=("metrics[].timestamp",),
        limits=(("metrics", v.MAX_METRICS_PER_BATCH), ("params", v.MAX_PARAMS_TAGS_PER_BATCH),
                ("tags", v.MAX_PARAMS_TAGS_PER_BATCH),
                ("metrics + params + tags", v.MAX_ENTITIES_PER_BATCH),
                ("top-level JSON length", v.MAX_BATCH_LOG_REQUEST_SIZE)),
        store_checks=("_validate_run_id", "_validate_batch_log_data",
                      "_validate_batch_log_limits", "_validate_param_keys_unique"),
        state=_RUN,
    ),
    # handlers.py::_set_experiment_tag, then SqlAlchemyStore.set_experiment_tag
    "setExperimentTag": HandlerRule(
        handler="_set_experiment_tag",
        schema=(("experiment_id", ("required", "string")), ("key", ("required", "string")),
                ("value", ("string",))),
        limits=(("key", v.MAX_EXPERIMENT_TAG_KEY_LENGTH),
                ("value", v.MAX_EXPERIMENT_TAG_VAL_LENGTH)),
        store_checks=("_validate_experiment_tag", "_parse_experiment_id"),
        state=_EXPERIMENT,
    ),
    # handlers.py::_delete_experiment / ::_restore_experiment
    "deleteExperiment": HandlerRule(
        handler="_delete_experiment", schema=(("experiment_id", ("required", "string")),),
        store_checks=("_parse_experiment_id",), state=_EXPERIMENT,
    ),
    "restoreExperiment": HandlerRule(
        handler="_restore_experiment", schema=(("experiment_id", ("required", "string")),),
        store_checks=("_parse_experiment_id",), state="the experiment exists and is deleted",
    ),
}


@dataclass(frozen=True)
class Field:
    """One field of a request message, as the JSON body spells it."""

    name: str
    json_name: str
    type: str
    repeated: bool
    #: Full name of the nested message type ("mlflow.Metric"), None for scalars.
    message: str | None
    #: The nested message's fields (empty for scalars).
    fields: tuple[Field, ...]
    enum_values: tuple[str, ...]
    required: bool
    #: "handler" when the server rejects a body without it, "proto" when only the proto's
    #: `validate_required` option says so (documented, not enforced by this server).
    required_by: str | None
    handler_checks: tuple[str, ...]


@dataclass(frozen=True)
class Endpoint:
    """One RPC as served over HTTP: where, how, and what its body may hold."""

    name: str
    service: str
    http_methods: tuple[str, ...]
    paths: tuple[str, ...]
    request: str
    fields: tuple[Field, ...]
    rule: HandlerRule | None

    @property
    def path(self) -> str:
        """The /api/... path (the one the docs show)."""
        return self.paths[0]

    @property
    def required(self) -> tuple[str, ...]:
        """Top-level fields the server rejects a body without, in the order it checks them."""
        if self.rule is None:
            return tuple(f.name for f in self.fields if f.required_by == "handler")
        return tuple(name for name, checks in self.rule.schema if "required" in checks)

    def field(self, name: str) -> Field:
        """A top-level field by proto name or JSON name."""
        for f in self.fields:
            if name in (f.name, f.json_name):
                return f
        raise UnknownEndpoint(f"{self.name} has no field {name!r}; its fields are "
                              f"{', '.join(f.name for f in self.fields)}.")

    @property
    def request_class(self) -> Any:
        """The generated protobuf class the server parses the body into."""
        return _message_class(self.request)


def endpoints() -> list[Endpoint]:
    """Every endpoint MLflow's protos declare, in service order."""
    return list(_catalog())


def endpoint(path_or_name: str, method: str | None = None) -> Endpoint:
    """Find an endpoint by URL, served path, proto path, suffix or RPC name.

    Accepts e.g. "log-metric", "runs/log-metric", "logMetric",
    "/api/2.0/mlflow/runs/log-metric" or "http://127.0.0.1:5000/api/2.0/mlflow/runs/log-metric".
    `method` picks one when several RPCs share a path (e.g. GET and POST /mlflow/traces).
    """
    query = path_or_name.strip()
    if "://" in query:
        query = urlsplit(query).path
    # A served path (with its /api/2.0 prefix) must match exactly, as Flask's router does.
    candidates = match_path(query) if query.startswith(PREFIXES) else _match_loose(query)
    if method is not None:
        candidates = [e for e in candidates if method.upper() in e.http_methods] or candidates
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        names = [e.name for e in _catalog()] + [p for e in _catalog() for p in e.paths]
        close = difflib.get_close_matches(query, names, n=3, cutoff=0.6)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownEndpoint(f"No MLflow REST endpoint matches {path_or_name!r}.{hint}")
    listed = ", ".join(f"{e.name} ({'/'.join(e.http_methods)} {e.path})" for e in candidates[:4])
    listed += ", ..." if len(candidates) > 4 else ""
    raise UnknownEndpoint(f"{path_or_name!r} is ambiguous: {listed}. Give the full path "
                          "or the HTTP method.")


def match_path(path: str) -> list[Endpoint]:
    """Endpoints served at exactly this URL path (a Flask <param> matches one segment)."""
    return [e for pattern, e in _routes() if pattern.fullmatch(path)]


def _match_loose(query: str) -> list[Endpoint]:
    key = query.strip("/").lower()
    flat = re.sub(r"[-_/]", "", key)
    by_name = [e for e in _catalog() if e.name.lower() == flat]
    if by_name:
        return by_name
    return [e for e in _catalog() if any(p.lower().endswith("/" + key) for p in e.paths)]


@functools.cache
def _routes() -> tuple[tuple[re.Pattern[str], Endpoint], ...]:
    return tuple((_compile(p), e) for e in _catalog() for p in e.paths)


def _compile(flask_path: str) -> re.Pattern[str]:
    parts = re.split(r"(<(?:\w+:)?\w+>)", flask_path)
    regex = "".join(
        (".+" if part.startswith("<path:") else "[^/]+") if part.startswith("<")
        else re.escape(part)
        for part in parts
    )
    return re.compile(regex)


@functools.cache
def _catalog() -> tuple[Endpoint, ...]:
    """Build the catalog once per process: walking ~200 descriptors takes a few ms."""
    built: dict[tuple[str, str], Endpoint] = {}
    for service in _SERVICES:
        for method in service.methods:
            rpc = method.GetOptions().Extensions[databricks_pb2.rpc]
            if not rpc.endpoints:
                continue
            rule = HANDLER_RULES.get(method.name) if service.name == "MlflowService" else None
            paths: list[str] = []
            verbs: list[str] = []
            for ep in rpc.endpoints:
                for served in _served_paths(ep.path, ep.since.major):
                    if served not in paths:
                        paths.append(served)
                if ep.method not in verbs:
                    verbs.append(ep.method)
            built[(service.name, method.name)] = Endpoint(
                name=method.name,
                service=service.name,
                http_methods=tuple(verbs),
                paths=tuple(paths),
                request=method.input_type.full_name,
                fields=_fields(method.input_type, rule, (), depth=0, seen=()),
                rule=rule,
            )
    return tuple(built.values())


def _served_paths(proto_path: str, major: int) -> list[str]:
    """handlers.py::_get_paths: plain concatenation (a proto path without a leading slash,
    like searchDatasets', really is served as /api/2.0mlflow/...)."""
    flask_path = re.sub(r"{(\w+)}", r"<\1>", proto_path)
    flask_path = re.sub(r"{assessment\.trace_id}", r"<trace_id>", flask_path)
    return [f"{prefix}/{major}.0{flask_path}" for prefix in PREFIXES]


def _fields(message: Descriptor, rule: HandlerRule | None, nested_names: tuple[str, ...],
            depth: int, seen: tuple[str, ...]) -> tuple[Field, ...]:
    """Fields of `message`; `rule` applies at the top level, `nested_names` one level down."""
    nested_required = dict(rule.nested_required) if rule else {}
    out = []
    for fd in message.fields:
        if rule is not None:
            checks = rule.checks_for(fd.name)
        else:
            checks = ("required",) if fd.name in nested_names else ()
        proto_required = bool(fd.GetOptions().Extensions[databricks_pb2.validate_required])
        sub = fd.message_type
        nested: tuple[Field, ...] = ()
        if sub is not None and depth < 3 and sub.full_name not in seen:
            nested = _fields(sub, None, nested_required.get(fd.name, ()), depth + 1,
                             (*seen, message.full_name))
        handler_required = "required" in checks
        out.append(Field(
            name=fd.name,
            json_name=fd.json_name,
            type=_TYPE_NAMES.get(fd.type, str(fd.type)),
            repeated=fd.is_repeated,
            message=sub.full_name if sub is not None else None,
            fields=nested,
            enum_values=tuple(ev.name for ev in fd.enum_type.values) if fd.enum_type else (),
            required=handler_required or proto_required,
            required_by="handler" if handler_required else ("proto" if proto_required else None),
            handler_checks=checks,
        ))
    return tuple(out)


@functools.cache
def _message_class(full_name: str) -> Any:
    from google.protobuf import message_factory
    from google.protobuf.descriptor_pool import Default

    return message_factory.GetMessageClass(Default().FindMessageTypeByName(full_name))
