"""One model of the MLflow server, derived at runtime from the installed MLflow without importing
`mlflow.server`: routes from the services' `rpc` options and handlers.py::get_endpoints, each
handler's `schema={...}` dict read with `ast`, its validators compiled from handlers.py (asserts
kept under `python -O`). What cannot be derived is in helpers/model_table.py; docs/architecture.md
says where each fact lives.
"""

from __future__ import annotations

import ast
import builtins
import copy
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.descriptor_pool import Default
from google.protobuf.message_factory import GetMessageClass
from mlflow.protos import databricks_pb2

from helpers import source
from helpers.errors import NotModelled
from helpers.model_table import STORE, StoreRule
from helpers.source import mlflow_file

HANDLERS = "server/handlers.py"
#: Served path prefixes: handlers.py::_get_rest_path and ::_get_ajax_path (no --static-prefix).
PREFIXES = ("/api", "/ajax-api")
_TYPE_NAMES = {v: n[5:].lower() for n, v in vars(FieldDescriptor).items() if n.startswith("TYPE_")}
_SCHEMA_CALLS = ("_get_request_message", "_get_validated_flask_request_json",
                 "_get_workspace_request_message")


@dataclass(frozen=True)
class Check:
    """One validator of a handler's schema list, in the handler's order."""

    #: "required", "string", "intlike", ... (an `_assert_` name without its prefix), or the
    #: source text of a lambda / other validator.
    name: str
    #: MLflow's own function, compiled from handlers.py (None for a nested `_fields_present` key).
    fn: Callable[[Any], Any] | None = field(repr=False, compare=False)
    #: True for handlers.py::_TYPE_VALIDATORS: skipped when protobuf parsing succeeded.
    type_check: bool = False
    #: Limits found in the validator: {"max": 1000} or {"min": 1, "max": 50000} on int(x),
    #: {"max_items": 100} on len(x).
    limits: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class Field:
    """One field of a request, as the JSON body (or, for a GET, the query string) spells it."""

    name: str
    json_name: str
    type: str
    repeated: bool
    message: str | None
    fields: tuple[Field, ...]
    enum_values: tuple[str, ...]
    #: The handler rejects a request without it (its schema's `required`, or a nested
    #: `_assert_<field>_fields_present`).
    enforced: bool
    #: The proto's `validate_required` option marks it required: documented, which this server
    #: may or may not enforce (log-param's `value` is documented, not enforced).
    documented: bool
    handler_checks: tuple[str, ...]
    #: The handler's validators for this field, in order (empty: none).
    checks: tuple[Check, ...] = ()
    #: Limits: from the validators, then from the store table (e.g. {"max_length": 250}).
    limits: tuple[tuple[str, int], ...] = ()
    #: Holds milliseconds since the epoch (the store rule's `timestamps`).
    timestamp: bool = False


@dataclass(frozen=True)
class Endpoint:
    """One route as served over HTTP, and what its handler checks, in order."""

    name: str
    service: str
    http_methods: tuple[str, ...]
    paths: tuple[str, ...]
    #: Full name of the request message ("mlflow.LogMetric"), None for a route outside the protos.
    request: str | None
    fields: tuple[Field, ...]
    #: The handler function in handlers.py (None: handlers.py has none for this RPC).
    handler: str | None = None
    #: ((field, (Check, ...)), ...) in the order of the handler's schema dict; None: no schema.
    schema: tuple[tuple[str, tuple[Check, ...]], ...] | None = None
    #: Decorators of the handler (e.g. "_disable_if_workspaces_disabled").
    decorators: tuple[str, ...] = ()
    #: Statements the handler runs before its schema check, as source text.
    pre_steps: tuple[str, ...] = ()
    #: True when the handler reads `run_id or run_uuid`.
    reads_run_uuid: bool = False
    #: True when the handler parses the body into `request` (`_get_request_message`) before
    #: its schema check; False when it checks the raw JSON only.
    parses_proto: bool = False
    store: StoreRule | None = None
    #: Full name of the rpc's response message ("mlflow.LogMetric.Response"), None off the protos.
    response: str | None = None

    @property
    def path(self) -> str:
        """The /api/... path (the one the docs show)."""
        return self.paths[0]

    @property
    def required(self) -> tuple[str, ...]:
        """Fields the handler rejects a request without, in the order it checks them."""
        return tuple(k for k, checks in self.schema or () if any(c.name == "required"
                                                                   for c in checks))

    def field(self, name: str) -> Field:
        """A top-level field by proto name or JSON name."""
        for f in self.fields:
            if name in (f.name, f.json_name):
                return f
        raise LookupError(f"{self.name} has no field {name!r}; its fields are "
                          f"{', '.join(f.name for f in self.fields)}.")

    @property
    def request_class(self) -> Any:
        """The generated protobuf class the server parses the body into (None off the protos)."""
        return GetMessageClass(Default().FindMessageTypeByName(self.request)) if self.request else None


@functools.cache
def _top_defs() -> dict[str, ast.stmt]:
    """handlers.py's top-level functions, assignments and imports, by the name each binds."""
    out: dict[str, ast.stmt] = {}
    for node in source.tree(HANDLERS).body:
        if isinstance(node, ast.FunctionDef):
            out[node.name] = node
        elif isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            out[node.targets[0].id] = node
        elif isinstance(node, (ast.Import, ast.ImportFrom)):  # one statement per name it binds
            out |= {(alias.asname or alias.name).split(".")[0]:
                    type(node)(**{**vars(node), "names": [alias]}) for alias in node.names}
    return out


def resolve(name: str) -> Any:
    """A name handlers.py defines as a literal or imports, from MLflow itself: its own import
    statement run, with mlflow.server left unimported."""
    node = _top_defs().get(name)
    if isinstance(node, ast.Assign):
        try:
            return ast.literal_eval(node.value)
        except ValueError:
            raise ImportError(f"{name} is computed by handlers.py") from None
    if not isinstance(node, (ast.Import, ast.ImportFrom)):
        raise KeyError(f"handlers.py neither imports nor assigns {name}")
    namespace: dict[str, Any] = {}
    _fill(namespace, [node])
    return namespace[name]


def handler_functions(names: tuple[str, ...], **stand_ins: Any) -> dict[str, Any]:
    """handlers.py's own top-level functions `names` and those they call, compiled without
    importing mlflow.server and without decorators (the pipeline models those); `stand_ins`
    replace the names that would reach the server's stores or request. Any other name of
    mlflow.server they use raises NotModelled."""
    defs, todo, nodes = _top_defs(), list(names), {}
    while todo:
        node = defs.get(name := todo.pop())
        if name not in nodes and name not in stand_ins and isinstance(node, ast.FunctionDef):
            nodes[name] = copy.copy(node)
            nodes[name].decorator_list = []
            todo += _free_names([nodes[name]])
    namespace: dict[str, Any] = dict(stand_ins)
    _fill(namespace, list(nodes.values()))
    return namespace


def _import_outside_server(name: str, *args: Any, **kwargs: Any) -> Any:
    """A handler's own `import` statements: mlflow.server stays unimported (ImportError, as
    when an optional part such as auth is missing)."""
    if name == "mlflow.server" or name.startswith("mlflow.server."):
        raise ImportError(f"{name} is not imported by the model")
    return builtins.__import__(name, *args, **kwargs)


@functools.cache
def handler_lines() -> dict[str, int]:
    """The line of each top-level function of handlers.py (for links to the source)."""
    return {n: d.lineno for n, d in _top_defs().items() if isinstance(d, ast.FunctionDef)}


def _free_names(nodes: list[ast.AST]) -> set[str]:
    return {n.id for node in nodes for n in ast.walk(node)
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


@functools.cache
def _validators() -> dict[str, Any]:
    """MLflow's `_assert_*` validators, `_TYPE_VALIDATORS` and `_validate_param_against_schema`,
    compiled from handlers.py with optimize=0: their asserts stay under `python -O`."""
    defs = _top_defs()
    wanted = [n for n in defs if n.startswith("_assert_") or n.endswith("_validator")]
    wanted += ["_TYPE_VALIDATORS", "_validate_param_against_schema"]
    namespace: dict[str, Any] = {}
    _fill(namespace, [defs[n] for n in wanted])
    return namespace


def schema_validator() -> Callable[..., Any]:
    """handlers.py::_validate_param_against_schema, compiled from MLflow's source."""
    return _validators()["_validate_param_against_schema"]


def _fill(namespace: dict[str, Any], nodes: list[ast.stmt]) -> None:
    """Compile `nodes` into `namespace`, resolving their free names through the imports; their
    own `import` statements leave mlflow.server unimported."""
    namespace.setdefault("__builtins__", {**vars(builtins), "__import__": _import_outside_server})
    known = set(namespace) | set(namespace["__builtins__"]) | {getattr(n, "name", None) for n in nodes}
    known |= {t.id for n in nodes if isinstance(n, ast.Assign) for t in n.targets
              if isinstance(t, ast.Name)}
    for name in sorted(_free_names(list(nodes)) - known):
        try:
            namespace[name] = resolve(name)
        except (KeyError, ImportError, AttributeError):
            namespace[name] = _Unresolved(name)
    module = ast.Module(body=list(nodes), type_ignores=[])
    exec(compile(module, str(mlflow_file(HANDLERS)), "exec", optimize=0), namespace)  # noqa: S102


class _Unresolved:
    """A name the model could not resolve: calling it says so (a "not modelled" check)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise NotModelled(f"{self.name} is not importable without the server")

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        raise NotModelled(f"{self.name}.{attr} is not importable without the server")


def _check(expr: ast.expr, fn: Any, namespace: dict[str, Any]) -> Check:
    """The schema entry `expr`, evaluated by handlers.py as `fn`."""
    named = isinstance(expr, ast.Name)
    return Check(name=expr.id.removeprefix("_assert_") if named else ast.unparse(expr), fn=fn,
                 type_check=fn in namespace.get("_TYPE_VALIDATORS", ()),
                 limits=_limits(_top_defs().get(expr.id, expr) if named else expr, namespace))


def _limits(node: ast.AST, namespace: dict[str, Any]) -> tuple[tuple[str, int], ...]:
    """Limits in `_assert_less_than_or_equal(int(x) | len(x), N)` and
    `_assert_intlike_within_range(int(x), lo, hi)` calls, with N resolved from MLflow."""
    out: list[tuple[str, int]] = []
    for call in ast.walk(node):
        name = getattr(getattr(call, "func", None), "id", "")
        if name not in ("_assert_less_than_or_equal", "_assert_intlike_within_range") \
                or not isinstance(next(iter(call.args), None), ast.Call):
            continue
        try:
            values = [eval(ast.unparse(a), namespace) for a in call.args[1:]]  # noqa: S307
        except Exception:  # a bound MLflow computes at request time: no static limit
            continue
        if name == "_assert_intlike_within_range":
            keys = ("min", "max")
        else:
            keys = ("max_items" if getattr(call.args[0].func, "id", "") == "len" else "max",)
        out += [(k, v) for k, v in zip(keys, values) if isinstance(v, int)]
    return tuple(out)


@functools.cache
def handlers() -> dict[str, dict[str, Any]]:
    """Every handler function of handlers.py that passes a `schema={...}` dict, by name: its
    part of its Endpoint (schema, pre_steps, reads_run_uuid, parses_proto)."""
    out: dict[str, dict[str, Any]] = {}
    for fn in source.tree(HANDLERS).body:
        if not isinstance(fn, ast.FunctionDef):
            continue
        call = next((c for c in ast.walk(fn) if isinstance(c, ast.Call)
                     and getattr(c.func, "id", "") in _SCHEMA_CALLS
                     and any(k.arg == "schema" and isinstance(k.value, ast.Dict)
                             for k in c.keywords)), None)
        if call is None:
            continue
        schema = next(k.value for k in call.keywords if k.arg == "schema")
        # The handler's nested helpers and its schema dict, run by handlers.py.
        namespace = dict(_validators())
        _fill(namespace, [s for s in fn.body if isinstance(s, ast.FunctionDef)]
              + [ast.fix_missing_locations(ast.Assign([ast.Name("_schema", ast.Store())], schema))])
        pre = []
        for stmt in fn.body:
            if any(node is call for node in ast.walk(stmt)):
                break
            if not isinstance(stmt, (ast.FunctionDef, ast.Import, ast.ImportFrom)) and not (
                    isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)):
                pre.append(ast.unparse(stmt))
        # `x.run_id or x.run_uuid`, read by the handler or a top-level helper it passes its
        # request to (`_get_run` -> `get_run_impl(request_message)`).
        called = [_top_defs().get(c.func.id) for c in ast.walk(fn)
                  if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)]
        ors = [[getattr(v, "attr", "") for v in n.values] for d in [fn, *called]
               if isinstance(d, ast.FunctionDef) for n in ast.walk(d)
               if isinstance(getattr(n, "op", None), ast.Or)]
        compiled = namespace["_schema"]
        out[fn.name] = dict(
            schema=tuple((key.value, tuple(_check(e, f, namespace)
                                           for e, f in zip(value.elts, compiled[key.value])))
                         for key, value in zip(schema.keys, schema.values)),
            pre_steps=tuple(pre),
            reads_run_uuid=["run_id", "run_uuid"] in ors,
            parses_proto=call.func.id == "_get_request_message")
    return out


@functools.cache
def _handler_by_request() -> dict[str, str]:
    """handlers.py::HANDLERS: full request message name (two services share short names, e.g.
    `ListArtifacts as ListArtifactsMlflowArtifacts`) -> handler function name."""
    table = _top_defs()["HANDLERS"].value
    return {resolve(ast.unparse(k)).DESCRIPTOR.full_name: ast.unparse(v)
            for k, v in zip(table.keys, table.values)}


@functools.cache
def _paths() -> dict[str, Any]:
    """handlers.py's own path builders: `_get_paths` concatenates plainly (a proto path without
    a leading slash, like searchDatasets', really is served as /api/2.0mlflow/...)."""
    return handler_functions(("_get_paths", "_get_rest_path", "_get_ajax_path"))


@functools.cache
def _extra_routes() -> dict[tuple[str, tuple[str, ...]], list[str]]:
    """(handler, methods) -> paths, from the lists of handlers.py's get_*_endpoints functions,
    which get_endpoints adds to the services' routes: run by MLflow, each handler standing in
    by its name."""
    lists = [d for n, d in _top_defs().items() if isinstance(d, ast.FunctionDef)
             and re.fullmatch(r"get_\w+_endpoints", n) and n != "get_service_endpoints"]
    namespace = {**{n: n for n in handler_lines()}, **_paths()}
    _fill(namespace, lists)
    out: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for node in lists:
        for path, handler, methods in namespace[node.name]():
            out.setdefault((handler, tuple(methods)), []).append(path)
    return out


@functools.cache
def endpoints() -> tuple[Endpoint, ...]:
    """Every route handlers.py::get_endpoints registers from the protos and its extra lists,
    with fields, schema and store rule. Cached: built once per process (~0.3 s)."""
    built: list[Endpoint] = []
    # The services handlers.py::get_endpoints registers, in its order.
    calls = sorted((c for c in ast.walk(_top_defs()["get_endpoints"]) if isinstance(c, ast.Call)
                    and getattr(c.func, "id", "") == "get_service_endpoints"), key=lambda c: c.lineno)
    for service in (resolve(c.args[0].id).DESCRIPTOR for c in calls):
        for method in service.methods:
            rpc = method.GetOptions().Extensions[databricks_pb2.rpc].endpoints
            paths = (p for ep in rpc for p in _paths()["_get_paths"](ep.path, version=ep.since.major))
            verbs = (ep.method for ep in rpc)
            built.append(_endpoint(method.name, service.name, tuple(dict.fromkeys(verbs)),
                                   tuple(dict.fromkeys(paths)), method.input_type,
                                   _handler_by_request().get(method.input_type.full_name),
                                   method.output_type.full_name))
    for (handler, methods), paths in _extra_routes().items():
        paths = sorted(paths, key=lambda p: not p.startswith("/api"))
        built.append(_endpoint(handler.strip("_"), "handlers.py", methods, tuple(paths), None, handler))
    return tuple(built)


def _endpoint(name: str, service: str, verbs: tuple[str, ...], paths: tuple[str, ...],
              message: Descriptor | None, handler: str | None, response: str | None = None) -> Endpoint:
    found = handlers().get(handler or "", {})
    checks = dict(found.get("schema", ()))
    store = STORE.get(name) if service == "MlflowService" else None
    if message is not None:
        fields = _fields(message, checks, _nested_required(handler), store)
    else:  # a route outside the protos: its schema is all there is to say about its fields
        fields = tuple(_field(k, k, "", False, None, (), (), cs, store) for k, cs in checks.items())
    decorators = getattr(_top_defs().get(handler or ""), "decorator_list", ())
    return Endpoint(name=name, service=service, http_methods=verbs, paths=paths,
                    request=message.full_name if message is not None else None, fields=fields,
                    handler=handler, decorators=tuple(ast.unparse(d) for d in decorators),
                    store=store, response=response, **found)


def _nested_required(handler: str | None) -> dict[str, tuple[str, ...]]:
    """Per field, the keys the handler's nested `_assert_<field>_fields_present` helper passes
    to `_assert_required` (`m.get("key")`)."""
    return {inner.name.removeprefix("_assert_").removesuffix("_fields_present"):
            tuple(re.findall(r"_assert_required\(\w+\.get\('(\w+)'\)", ast.unparse(inner)))
            for inner in getattr(_top_defs().get(handler or ""), "body", ())
            if isinstance(inner, ast.FunctionDef) and inner.name.endswith("_fields_present")}


def _fields(message: Descriptor, checks: dict[str, tuple[Check, ...]],
            nested_required: dict[str, tuple[str, ...]], store: StoreRule | None,
            seen: tuple[str, ...] = (), prefix: str = "") -> tuple[Field, ...]:
    """The fields of `message`, three levels deep at most (`seen`: the messages above)."""
    out = []
    for fd in message.fields:
        sub = fd.message_type
        nested: tuple[Field, ...] = ()
        if sub is not None and len(seen) < 3 and sub.full_name not in seen \
                and not sub.GetOptions().map_entry:
            inner = {k: (Check("required", None),) for k in nested_required.get(fd.name, ())}
            nested = _fields(sub, inner, {}, store, (*seen, message.full_name),
                             f"{prefix}{fd.name}[]." if fd.is_repeated else f"{prefix}{fd.name}.")
        proto_required = bool(fd.GetOptions().Extensions[databricks_pb2.validate_required])
        out.append(_field(fd.name, fd.json_name, _TYPE_NAMES.get(fd.type, str(fd.type)),
                          fd.is_repeated, sub.full_name if sub is not None else None, nested,
                          tuple(v.name for v in fd.enum_type.values) if fd.enum_type else (),
                          checks.get(fd.name, ()), store, proto_required, prefix + fd.name))
    return tuple(out)


def _field(name: str, json_name: str, type_: str, repeated: bool, message: str | None,
           nested: tuple[Field, ...], enums: tuple[str, ...], checks: tuple[Check, ...],
           store: StoreRule | None, proto_required: bool = False, path: str = "") -> Field:
    limits = tuple(lim for c in checks for lim in c.limits)
    if store is not None:
        kind = "max_items" if repeated else "max_length"
        limits += tuple((kind, v) for p, v in store.limits if p == (path or name))
    return Field(name=name, json_name=json_name, type=type_, repeated=repeated, message=message,
                 fields=nested, enum_values=enums,
                 enforced=any(c.name == "required" for c in checks), documented=proto_required,
                 handler_checks=tuple(c.name for c in checks), checks=checks, limits=limits,
                 timestamp=store is not None and (path or name) in store.timestamps)
