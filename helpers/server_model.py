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
import importlib
import importlib.util
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
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
#: The services handlers.py::get_endpoints registers, in its order.
_SERVICES = ("service_pb2.MlflowService", "model_registry_pb2.ModelRegistryService",
             "mlflow_artifacts_pb2.MlflowArtifactsService", "webhooks_pb2.WebhookService")
_TYPE_NAMES = {v: n[5:].lower() for n, v in vars(FieldDescriptor).items() if n.startswith("TYPE_")}
_PATHS = ("_get_paths", "_get_rest_path", "_get_ajax_path")
_SCHEMA_CALLS = ("_get_request_message", "_get_validated_flask_request_json",
                 "_get_workspace_request_message")


@dataclass(frozen=True)
class Check:
    """One validator of a handler's schema list, in the handler's order."""

    #: "required", "string", "intlike", ... (an `_assert_` name without its prefix), or the
    #: source text of a lambda / other validator.
    name: str
    #: MLflow's own function, compiled from handlers.py (None: not found there, or a nested
    #: `_fields_present` key).
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
        """The generated protobuf class the server parses the body into."""
        return message_class(self.request) if self.request else None


@functools.cache
def _imports() -> dict[str, tuple[str, str | None]]:
    """handlers.py's module-level imports: name -> (module, attribute or None)."""
    table: dict[str, tuple[str, str | None]] = {}
    for node in source.tree(HANDLERS).body:
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                table[alias.asname or alias.name] = (node.module, alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                table[alias.asname or alias.name.split(".")[0]] = (alias.name, None)
    return table


def resolve(name: str) -> Any:
    """A name handlers.py defines as a literal or imports, from MLflow itself (never from
    mlflow.server)."""
    node = _top_defs().get(name)
    if isinstance(node, ast.Assign):
        try:
            return ast.literal_eval(node.value)
        except ValueError:
            raise ImportError(f"{name} is computed by handlers.py") from None
    module, attr = _imports()[name]
    if module.startswith("mlflow.server"):
        raise ImportError(f"{name} comes from {module}")
    loaded = importlib.import_module(module if attr is not None else name)
    return getattr(loaded, attr) if attr is not None else loaded


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
    namespace["__builtins__"] = {**vars(builtins), "__import__": _import_outside_server}
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


@functools.cache
def _top_defs() -> dict[str, ast.stmt]:
    out: dict[str, ast.stmt] = {}
    for node in source.tree(HANDLERS).body:
        if isinstance(node, ast.FunctionDef):
            out[node.name] = node
        elif isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            out[node.targets[0].id] = node
    return out


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
    """Compile `nodes` into `namespace`, resolving their free names through the imports."""
    known = set(namespace) | {getattr(n, "name", None) for n in nodes} | set(dir(builtins))
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


def _check(expr: ast.expr, namespace: dict[str, Any]) -> Check:
    name = expr.id if isinstance(expr, ast.Name) else ast.unparse(expr)
    if isinstance(expr, ast.Name):  # most checks name a validator: no compile needed
        fn = namespace.get(name)
    else:
        fn = eval(compile(ast.Expression(expr), str(mlflow_file(HANDLERS)),  # noqa: S307
                          "eval", optimize=0), namespace)
    body = _top_defs().get(name) if isinstance(expr, ast.Name) else expr
    return Check(name=name.removeprefix("_assert_"), fn=fn,
                 type_check=fn in namespace.get("_TYPE_VALIDATORS", ()),
                 limits=_limits(body, namespace) if body is not None else ())


def _limits(node: ast.AST, namespace: dict[str, Any]) -> tuple[tuple[str, int], ...]:
    """Limits in `_assert_less_than_or_equal(int(x) | len(x), N)` and
    `_assert_intlike_within_range(int(x), lo, hi)` calls, with N resolved from MLflow."""
    out: list[tuple[str, int]] = []
    for call in ast.walk(node):
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)):
            continue
        args = call.args
        if not args or not isinstance(args[0], ast.Call):
            continue
        on = getattr(args[0].func, "id", "")
        try:
            values = [eval(compile(ast.Expression(a), "<limit>", "eval"), dict(namespace))  # noqa: S307
                      for a in args[1:]]
        except Exception:  # a bound MLflow computes at request time: no static limit
            continue
        if not all(isinstance(v, int) for v in values[:2]):
            continue
        if call.func.id == "_assert_less_than_or_equal" and values:
            out.append(("max_items" if on == "len" else "max", int(values[0])))
        elif call.func.id == "_assert_intlike_within_range" and len(values) >= 2:
            out += [("min", int(values[0])), ("max", int(values[1]))]
    return tuple(out)


@dataclass(frozen=True)
class _Handler:
    name: str
    schema: tuple[tuple[str, tuple[Check, ...]], ...]
    pre_steps: tuple[str, ...]
    reads_run_uuid: bool
    parses_proto: bool


@functools.cache
def handlers() -> dict[str, _Handler]:
    """Every handler function of handlers.py that passes a `schema={...}` dict, by name."""
    out: dict[str, _Handler] = {}
    for fn in source.tree(HANDLERS).body:
        if not isinstance(fn, ast.FunctionDef):
            continue
        call = next((c for c in ast.walk(fn) if isinstance(c, ast.Call)
                     and getattr(c.func, "id", "") in _SCHEMA_CALLS
                     and any(k.arg == "schema" and isinstance(k.value, ast.Dict)
                             for k in c.keywords)), None)
        if call is None:
            continue
        namespace = dict(_validators())
        schema_node = next(k.value for k in call.keywords if k.arg == "schema")
        # The handler's nested helpers compiled, and the names its schema uses resolved.
        _fill(namespace, [s for s in fn.body if isinstance(s, ast.FunctionDef)]
              + [ast.copy_location(ast.Expr(schema_node), schema_node)])
        schema = tuple(
            (key.value, tuple(_check(e, namespace) for e in getattr(value, "elts", [value])))
            for key, value in zip(schema_node.keys, schema_node.values)
            if isinstance(key, ast.Constant))
        pre = []
        for stmt in fn.body:
            if any(node is call for node in ast.walk(stmt)):
                break
            if not isinstance(stmt, (ast.FunctionDef, ast.Import, ast.ImportFrom)) and not (
                    isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)):
                pre.append(ast.unparse(stmt))
        # The handler's text and the top-level helpers it passes its request to
        # (`_get_run` -> `get_run_impl(request_message)`, which reads `run_id or run_uuid`).
        defs = _top_defs()
        text = "\n".join([ast.unparse(fn)] + [
            ast.unparse(defs[c.func.id]) for c in ast.walk(fn)
            if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)
            and isinstance(defs.get(c.func.id), ast.FunctionDef)])
        out[fn.name] = _Handler(
            name=fn.name, schema=schema,
            pre_steps=tuple(pre),
            reads_run_uuid=bool(re.search(r"\.run_id or \w+\.run_uuid", text)),
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
def _extra_routes() -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    """The (path, handler, methods) tuples handlers.py::get_endpoints adds to the services'."""
    defs = _top_defs()
    out = []
    for name, node in defs.items():
        if not (name.startswith("get_") and name.endswith("_endpoints")
                and isinstance(node, ast.FunctionDef)):
            continue
        for tup in ast.walk(node):
            if isinstance(tup, ast.Tuple) and len(tup.elts) == 3 and \
                    isinstance(tup.elts[1], ast.Name) and isinstance(tup.elts[2], ast.List):
                path = _path_expr(tup.elts[0])
                if path:
                    methods = tuple(e.value for e in tup.elts[2].elts
                                    if isinstance(e, ast.Constant))
                    out.append((path, tup.elts[1].id, methods))
    return tuple(out)


def _path_expr(node: ast.expr) -> str | None:
    """`_get_rest_path("/mlflow/x", version=3)` (ajax likewise), run by handlers.py itself."""
    if isinstance(node, ast.Call) and getattr(node.func, "id", "") in _PATHS[1:] and \
            node.args and isinstance(node.args[0], ast.Constant):
        return eval(compile(ast.Expression(node), HANDLERS, "eval"), _paths())  # noqa: S307
    return None


@functools.cache
def _paths() -> dict[str, Any]:
    """handlers.py's own path builders: `_get_paths` concatenates plainly (a proto path without
    a leading slash, like searchDatasets', really is served as /api/2.0mlflow/...)."""
    return handler_functions(_PATHS)


@functools.cache
def endpoints() -> tuple[Endpoint, ...]:
    """Every route handlers.py::get_endpoints registers from the protos and its extra lists,
    with fields, schema and store rule. Cached: built once per process (~0.3 s)."""
    by_request = _handler_by_request()
    schemas = handlers()
    built: list[Endpoint] = []
    for dotted in _SERVICES:
        module, service_name = dotted.split(".")
        service = importlib.import_module(f"mlflow.protos.{module}").DESCRIPTOR \
            .services_by_name[service_name]
        for method in service.methods:
            rpc = method.GetOptions().Extensions[databricks_pb2.rpc]
            paths: list[str] = []
            verbs: list[str] = []
            for ep in rpc.endpoints:
                for served in _paths()["_get_paths"](ep.path, version=ep.since.major):
                    if served not in paths:
                        paths.append(served)
                if ep.method not in verbs:
                    verbs.append(ep.method)
            handler_name = by_request.get(method.input_type.full_name)
            handler = schemas.get(handler_name or "")
            built.append(replace(
                _endpoint(method.name, service.name, tuple(verbs), tuple(paths),
                          method.input_type, handler, handler_name),
                response=method.output_type.full_name))
    for path, fn_name, methods in _extra_routes():
        handler = schemas.get(fn_name)
        same = next((e for e in built if e.handler == fn_name and e.service == "handlers.py"
                     and e.http_methods == methods), None)
        if same is not None:
            paths = tuple(sorted((*same.paths, path), key=lambda p: not p.startswith("/api")))
            built[built.index(same)] = replace(same, paths=paths)
            continue
        built.append(_endpoint(fn_name.strip("_"), "handlers.py", methods, (path,), None,
                               handler, fn_name))
    return tuple(built)


def _endpoint(name: str, service: str, verbs: tuple[str, ...], paths: tuple[str, ...],
              message: Descriptor | None, handler: _Handler | None,
              handler_name: str | None) -> Endpoint:
    schema = handler.schema if handler else None
    checks = dict(schema or ())
    store = STORE.get(name) if service == "MlflowService" else None
    if message is not None:
        fields = _fields(message, checks, handler, store, 0, ())
    else:  # a route outside the protos: its schema is all there is to say about its fields
        fields = tuple(_field(k, k, "", False, None, (), (), cs, store) for k, cs in checks.items())
    return Endpoint(name=name, service=service, http_methods=verbs, paths=paths,
                    request=message.full_name if message is not None else None, fields=fields,
                    handler=handler_name, schema=schema,
                    decorators=tuple(ast.unparse(d) for d in getattr(
                        _top_defs().get(handler_name or ""), "decorator_list", ())),
                    pre_steps=handler.pre_steps if handler else (),
                    reads_run_uuid=handler.reads_run_uuid if handler else False,
                    parses_proto=handler.parses_proto if handler else False, store=store)


def _nested_required(handler: _Handler | None) -> dict[str, tuple[str, ...]]:
    """Keys the nested `_assert_<field>_fields_present` helpers require, per field."""
    if handler is None:
        return {}
    fn = _top_defs().get(handler.name)
    out: dict[str, tuple[str, ...]] = {}
    for inner in getattr(fn, "body", []):
        if isinstance(inner, ast.FunctionDef) and inner.name.endswith("_fields_present"):
            keys = [c.args[0].args[0].value for c in ast.walk(inner)
                    if isinstance(c, ast.Call) and getattr(c.func, "id", "") == "_assert_required"
                    and c.args and isinstance(c.args[0], ast.Call) and c.args[0].args
                    and isinstance(c.args[0].args[0], ast.Constant)]
            out[inner.name.removeprefix("_assert_").removesuffix("_fields_present")] = tuple(keys)
    return out


def _fields(message: Descriptor, checks: dict[str, tuple[Check, ...]],
            handler: _Handler | None, store: StoreRule | None, depth: int,
            seen: tuple[str, ...], prefix: str = "") -> tuple[Field, ...]:
    nested_required = _nested_required(handler) if depth == 0 else {}
    out = []
    for fd in message.fields:
        sub = fd.message_type
        nested: tuple[Field, ...] = ()
        if sub is not None and depth < 3 and sub.full_name not in seen \
                and not sub.GetOptions().map_entry:
            inner = {k: (Check("required", None),) for k in nested_required.get(fd.name, ())}
            nested = _fields(sub, inner, None, store, depth + 1, (*seen, message.full_name),
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


@functools.cache
def message_class(full_name: str) -> Any:
    return GetMessageClass(Default().FindMessageTypeByName(full_name))
