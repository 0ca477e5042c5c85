"""Hold the server model against the installed MLflow source and against the live server, for
every RPC of helpers/model_table.py::STORE (the one hand-written table: what the store does).

Offline: each such RPC's derived `schema`, nested requirements, run_uuid fall-back, and the
table's limits and the store checks of STORE_CHECKS are compared with mlflow/server/handlers.py and
mlflow/utils/validation.py, read here with an `ast` walk of the test's own (mlflow.server is
never imported), so an MLflow upgrade that moves a check fails here with the RPC's name.

Live: one case per (rule, schema key, check), per nested requirement, per limit, per timestamp
field, per store check and per run_uuid fall-back, generated from the table. Each case starts
from a valid body for the RPC (BASE, checked by the `base` cases), breaks exactly one thing,
sends the exact bytes to the session server and asserts the answer is what the table says, and
that preflight() predicts the same status (and the same message when it claims one).
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mlflow.entities import Param
from mlflow.environment_variables import MLFLOW_ARTIFACT_LOCATION_MAX_LENGTH
from mlflow.exceptions import MlflowException
from mlflow.utils import validation as uv
from mlflow.utils.mlflow_tags import MLFLOW_CUSTOM_VIEW_TAG_PREFIX

from helpers.catalog import endpoint
from helpers.model_table import RUN_EXISTS, STORE
from helpers.preflight_pipeline import preflight
from helpers.wire import Exchange, send

JSON = {"Content-Type": "application/json"}
TS = 1700000000000  # a valid millisecond timestamp (2023-11-14)
NOT_A_STRING = 12345  # an int; also not a RunStatus number (an int naming one parses as the enum)
NOT_A_NUMBER = "abc"
BAD_NAME = "a*b"  # '*' is outside the name characters mlflow/utils/validation.py allows

# A valid body per RPC of HANDLER_RULES, as small as a body can be while every field a rule
# names (a list to take items from, a value to find again) is present. {run_id},
# {experiment_id} come from the fresh_run fixture, {unique} is new per case.
BASE: dict[str, dict[str, Any]] = {
    "createExperiment": {"name": "hr-{unique}", "tags": [{"key": "team", "value": "ml"}]},
    "createRun": {"experiment_id": "{experiment_id}"},
    "updateRun": {"run_id": "{run_id}", "run_name": "{unique}"},
    "deleteRun": {"run_id": "{run_id}"},
    "restoreRun": {"run_id": "{run_id}"},
    "logMetric": {"run_id": "{run_id}", "key": "m{unique}", "value": 0.5, "timestamp": TS},
    "logParam": {"run_id": "{run_id}", "key": "p", "value": "{unique}"},
    "setTag": {"run_id": "{run_id}", "key": "t", "value": "{unique}"},
    "deleteTag": {"run_id": "{run_id}", "key": "t"},
    "logBatch": {"run_id": "{run_id}",
                 "metrics": [{"key": "m{unique}", "value": 0.5, "timestamp": TS}],
                 "params": [{"key": "p", "value": "v"}], "tags": [{"key": "t", "value": "v"}]},
    "setExperimentTag": {"experiment_id": "{experiment_id}", "key": "t", "value": "{unique}"},
    "deleteExperiment": {"experiment_id": "{experiment_id}"},
    "restoreExperiment": {"experiment_id": "{experiment_id}"},
}
#: State a valid body needs: this other RPC's base body is sent first.
SETUP = {"deleteTag": "setTag", "restoreRun": "deleteRun", "restoreExperiment": "deleteExperiment"}


# ============================================================================ offline: source

MLFLOW_DIR = Path(importlib.util.find_spec("mlflow").submodule_search_locations[0])
HANDLERS_PY = "server/handlers.py"
VALIDATION_PY = "utils/validation.py"


@functools.cache
def _tree(rel: str) -> ast.Module:
    return ast.parse((MLFLOW_DIR / rel).read_text(encoding="utf-8"))


@functools.cache
def _defs(rel: str) -> dict[str, ast.FunctionDef]:
    return {n.name: n for n in _tree(rel).body if isinstance(n, ast.FunctionDef)}


def _handler(rule: HandlerRule) -> ast.FunctionDef:
    fn = _defs(HANDLERS_PY).get(rule.handler)
    assert fn is not None, f"mlflow/{HANDLERS_PY} has no function {rule.handler}"
    return fn


def _check_name(node: ast.expr) -> str:
    """`_assert_required` -> "required", `_assert_metrics_fields_present` ->
    "metrics_fields_present"; any other validator keeps its own name."""
    name = node.id if isinstance(node, ast.Name) else ast.unparse(node)
    return name.removeprefix("_assert_")


def _source_schema(fn: ast.FunctionDef) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The `schema={...}` literal the handler passes to _get_request_message, in order."""
    for node in ast.walk(fn):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                node.func.id == "_get_request_message":
            schema = next((kw.value for kw in node.keywords if kw.arg == "schema"), None)
            assert isinstance(schema, ast.Dict), f"{fn.name}: schema= is not a dict literal"
            out = []
            for key, value in zip(schema.keys, schema.values):
                assert isinstance(key, ast.Constant) and isinstance(value, ast.List), fn.name
                out.append((key.value, tuple(_check_name(e) for e in value.elts)))
            return tuple(out)
    raise AssertionError(f"{fn.name} does not call _get_request_message(schema=...)")


def _source_nested_required(fn: ast.FunctionDef) -> dict[str, tuple[str, ...]]:
    """The nested `_assert_<field>_fields_present` helpers: keys they require, in order."""
    out = {}
    for inner in fn.body:
        if isinstance(inner, ast.FunctionDef) and inner.name.endswith("_fields_present"):
            field = inner.name.removeprefix("_assert_").removesuffix("_fields_present")
            keys = []
            for node in ast.walk(inner):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                        node.func.id == "_assert_required":
                    got = node.args[0]
                    assert isinstance(got, ast.Call) and isinstance(got.args[0], ast.Constant)
                    keys.append(got.args[0].value)
            out[field] = tuple(keys)
    return out


def _reads_run_uuid(fn: ast.FunctionDef) -> bool:
    """True when the handler itself reads request_message.run_uuid (`run_id or run_uuid`)."""
    return any(isinstance(n, ast.Attribute) and n.attr == "run_uuid"
               and isinstance(n.value, ast.Name) and n.value.id == "request_message"
               for n in ast.walk(fn))


def _registered_handlers() -> dict[str, str]:
    """handlers.py's HANDLERS dict: request message class name -> handler function name."""
    for node in _tree(HANDLERS_PY).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "HANDLERS"
                                                for t in node.targets):
            assert isinstance(node.value, ast.Dict)
            return {k.id: v.id for k, v in zip(node.value.keys, node.value.values)
                    if isinstance(k, ast.Name) and isinstance(v, ast.Name)}
    raise AssertionError(f"mlflow/{HANDLERS_PY} has no HANDLERS dict")


def _constants_reached(entries: list[tuple[str, str]]) -> set[str]:
    """MAX_* names used by these functions and every handlers.py / validation.py function
    they call, transitively."""
    seen: set[tuple[str, str]] = set()
    todo, found = list(entries), set()
    while todo:
        module, name = todo.pop()
        fn = _defs(module).get(name)
        if (module, name) in seen or fn is None:
            continue
        seen.add((module, name))
        for node in ast.walk(fn):
            if isinstance(node, ast.Name) and node.id.startswith("MAX_"):
                found.add(node.id)
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                callee = node.func.id
                where = module if callee in _defs(module) else VALIDATION_PY
                todo.append((where, callee))
    return found


@dataclass(frozen=True)
class HandlerRule:
    """One RPC of the table in short: the handler's schema as names, in order, what the model
    derived about it, and the table's store rule."""

    handler: str
    schema: tuple[tuple[str, tuple[str, ...]], ...]
    nested_required: tuple[tuple[str, tuple[str, ...]], ...]
    reads_run_uuid: bool
    limits: tuple[tuple[str, int], ...]
    store_checks: tuple[str, ...]
    timestamp_fields: tuple[str, ...]


#: The mlflow/utils/validation.py functions each RPC's handler and store call run before any row
#: matters, in order (SqlAlchemyStore's methods; createExperiment's location checks are the
#: handler's _validate_storage_location_uri). Preflight runs MLflow's code itself
#: (helpers/store_checks.py); the live cases below break each of these and compare.
STORE_CHECKS: dict[str, tuple[str, ...]] = {
    "createExperiment": ("_validate_experiment_artifact_location",
                         "_validate_experiment_artifact_location_length",
                         "_validate_experiment_name", "_validate_experiment_tag"),
    "createRun": ("_parse_experiment_id",),
    "logMetric": ("_validate_metric",),
    "logParam": ("_validate_param",),
    "setTag": ("_validate_tag",),
    "logBatch": ("_validate_run_id", "_validate_batch_log_data", "_validate_batch_log_limits",
                 "_validate_param_keys_unique"),
    "setExperimentTag": ("_validate_experiment_tag", "_parse_experiment_id"),
    "deleteExperiment": ("_parse_experiment_id",),
    "restoreExperiment": ("_parse_experiment_id",),
}


def _rule(rpc: str) -> HandlerRule:
    ep, store = endpoint(rpc), STORE[rpc]
    return HandlerRule(
        handler=ep.handler or "", reads_run_uuid=ep.reads_run_uuid,
        schema=tuple((k, tuple(c.name for c in cs)) for k, cs in ep.schema or ()),
        nested_required=tuple((f.name, tuple(g.name for g in f.fields if g.enforced))
                              for f in ep.fields if any(g.enforced for g in f.fields)),
        limits=store.limits, timestamp_fields=store.timestamps,
        store_checks=STORE_CHECKS.get(rpc, ()))


HANDLER_RULES: dict[str, HandlerRule] = {rpc: _rule(rpc) for rpc in STORE}
RULE_IDS = list(HANDLER_RULES)
#: Observed live: log-metric and log-batch refuse a negative metric timestamp
#: (_validate_metric); runs/create and runs/update store start/end times as sent.
NON_NEGATIVE = ("timestamp", "metrics[].timestamp")


@pytest.mark.parametrize("rpc", RULE_IDS)
def test_schema_is_the_handlers_schema_in_order(rpc: str) -> None:
    rule = HANDLER_RULES[rpc]
    assert rule.schema == _source_schema(_handler(rule))


@pytest.mark.parametrize("rpc", RULE_IDS)
def test_nested_requirements_are_the_handlers(rpc: str) -> None:
    rule = HANDLER_RULES[rpc]
    assert dict(rule.nested_required) == _source_nested_required(_handler(rule))
    # Every `<field>_fields_present` check in the schema has its nested keys in the table.
    for key, checks in rule.schema:
        for check in checks:
            if check.endswith("_fields_present"):
                assert check == f"{key}_fields_present"
                assert key in dict(rule.nested_required), (key, check)


@pytest.mark.parametrize("rpc", RULE_IDS)
def test_reads_run_uuid_matches_the_handler(rpc: str) -> None:
    rule = HANDLER_RULES[rpc]
    assert rule.reads_run_uuid == _reads_run_uuid(_handler(rule))


@pytest.mark.parametrize("rpc", RULE_IDS)
def test_the_handler_is_the_one_registered_for_the_rpc(rpc: str) -> None:
    message_class = endpoint(rpc).request.rpartition(".")[2]
    assert _registered_handlers().get(message_class) == HANDLER_RULES[rpc].handler


@pytest.mark.parametrize("rpc", RULE_IDS)
def test_store_checks_are_mlflow_validators(rpc: str) -> None:
    missing = [n for n in HANDLER_RULES[rpc].store_checks if n not in _defs(VALIDATION_PY)]
    assert not missing, f"not functions of mlflow/{VALIDATION_PY}: {missing}"


@pytest.mark.parametrize("rpc", RULE_IDS)
def test_limits_are_constants_the_handler_or_its_store_checks_use(rpc: str) -> None:
    rule = HANDLER_RULES[rpc]
    names = _constants_reached([(HANDLERS_PY, rule.handler)]
                               + [(VALIDATION_PY, n) for n in rule.store_checks])
    used = {n: getattr(uv, n) for n in names if hasattr(uv, n)}
    for limit_name, value in rule.limits:
        assert value in used.values(), (f"{rpc} limit {limit_name!r}={value} is not one of the "
                                        f"constants {rule.handler} and its store checks use: {used}")


@pytest.mark.parametrize("rpc", RULE_IDS)
def test_timestamp_fields_are_int64_fields_of_the_request(rpc: str) -> None:
    ep = endpoint(rpc)
    for path in HANDLER_RULES[rpc].timestamp_fields:
        outer, _, inner = path.partition("[].")
        field = ep.field(outer)
        if inner:
            field = next(f for f in field.fields if f.name == inner)
        assert field.type == "int64", (path, field.type)


def test_every_rule_has_a_valid_base_body() -> None:
    assert set(BASE) == set(HANDLER_RULES)


# ============================================================================ live: the cases


@dataclass(frozen=True)
class Broken:
    """A body with one thing broken, and what the table says the server answers."""

    body: Any
    status: int
    #: Substrings the live error message must contain.
    says: tuple[str, ...] = ()
    #: MLflow's error_code for an error status.
    code: str = "INVALID_PARAMETER_VALUE"
    #: (run before, run after, the case's {unique}) -> a problem, or None. Run-based RPCs only.
    effect: Callable[[dict, dict, str], str | None] | None = None


@dataclass(frozen=True)
class Probe:
    rpc: str
    name: str
    #: Filled-in valid base body -> the broken request and its expected answer.
    breaks: Callable[[dict[str, Any]], Broken]

    @property
    def id(self) -> str:
        return f"{self.rpc}:{self.name}"


def _schema_probes(rpc: str, rule: HandlerRule) -> Iterator[Probe]:
    nested = dict(rule.nested_required)
    for key, checks in rule.schema:
        for check in checks:
            if check.endswith("_fields_present"):
                for inner in nested.get(key, ()):
                    yield Probe(rpc, f"{key}[0].{inner}:required", _drop_nested(key, inner))
            else:
                yield Probe(rpc, f"{key}:{check}", _break_check(key, check))


def _rejected(path: str) -> tuple[str, ...]:
    # _validate_param_against_schema: "Missing value for required parameter '<path>'." or
    # "Invalid value ... for parameter '<path>' supplied: ..."
    return (f"parameter '{path}'",)


def _break_check(key: str, check: str) -> Callable[[dict], Broken]:
    def breaks(body: dict) -> Broken:
        if check == "required":
            body.pop(key, None)
        elif check == "string":
            body[key] = NOT_A_STRING
        elif check in ("intlike", "floatlike"):
            body[key] = NOT_A_NUMBER
        elif check == "array":
            items = body.get(key)
            body[key] = items[0] if isinstance(items, list) and items else NOT_A_NUMBER
        else:
            pytest.fail(f"this test does not know how to break the {check!r} check: teach "
                        "_break_check, the table has a check it has not seen")
        return Broken(body, 400, _rejected(key))

    return breaks


def _drop_nested(key: str, inner: str) -> Callable[[dict], Broken]:
    def breaks(body: dict) -> Broken:
        assert body.get(key), f"the base body needs at least one item in {key!r}"
        body[key][0].pop(inner, None)
        return Broken(body, 400, _rejected(f"{key}[0].{inner}"))

    return breaks


def _run_uuid_probe(rpc: str, rule: HandlerRule) -> Probe:
    def breaks(body: dict) -> Broken:
        body["run_uuid"] = body.pop("run_id")
        if rule.reads_run_uuid:
            return Broken(body, 200, effect=_applied)
        # The handler reads run_id alone, so it acts on run '' : the store's run-id check
        # refuses it first when it has one (400), else the run is not found (404).
        validates = "_validate_run_id" in rule.store_checks
        if validates:
            return Broken(body, 400, ("parameter 'run_id'",), effect=_unchanged)
        return Broken(body, 404, ("id= not found",), "RESOURCE_DOES_NOT_EXIST", _unchanged)

    return Probe(rpc, "run_uuid instead of run_id", breaks)


def _applied(before: dict, after: dict, unique: str) -> str | None:
    """The base bodies carry {unique} in the value they write (run_name, key or value)."""
    def holds(run: dict) -> bool:
        return any(unique in text for text in _strings(run))

    if holds(after) and not holds(before):
        return None
    return f"200, but nothing holding {unique!r} was stored: the handler did not use run_uuid"


def _unchanged(before: dict, after: dict, unique: str) -> str | None:
    return None if before == after else "the run changed although the request was refused"


def _strings(value: Any) -> set[str]:
    if isinstance(value, str):
        return {value}
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return set().union(*(_strings(v) for v in items)) if items else set()


def _limit_probe(rpc: str, rule: HandlerRule, limit_name: str, limit: int) -> Probe:
    truncated = limit_name.endswith(" (truncated)")
    name = limit_name.removesuffix(" (truncated)")
    limits = dict(rule.limits)

    def breaks(body: dict) -> Broken:
        says: tuple[str, ...] = (str(limit),)
        if name == "custom view tags":  # handlers.py::_validate_custom_view_count
            body["tags"] = [{"key": f"{MLFLOW_CUSTOM_VIEW_TAG_PREFIX}{i}", "value": "{}"}
                            for i in range(limit + 1)]
        elif name == "top-level JSON length":  # len() of the parsed body: its key count
            body.update({f"x{i}": 0 for i in range(limit + 1 - len(body))})
        elif " + " in name:  # the sum over several lists, each within its own limit
            left = limit + 1
            for part in name.split(" + "):
                count = min(limits[part], left)
                body[part] = _items(body[part][0], count)
                left -= count
            assert left == 0, f"{name}: the lists' own limits cannot add up to {limit + 1}"
            says += tuple(name.split(" + "))
        elif "[]." in name:
            outer, inner = name.split("[].")
            body[outer][0][inner] = "x" * (limit + 1)
        elif isinstance(body.get(name), list):
            body[name] = _items(body[name][0], limit + 1)
            says += (name,)
        elif isinstance(body.get(name), str):
            body[name] = "x" * (limit + 1)
        else:
            pytest.fail(f"this test does not know how to exceed the limit {limit_name!r}")
        if truncated:
            outer, _, inner = name.partition("[].")
            sent = body[outer][0][inner] if inner else body[name]
            return Broken(body, 200, effect=_truncated_to(sent, limit))
        return Broken(body, 400, says)

    return Probe(rpc, f"limit {limit_name}", breaks)


def _items(template: dict, count: int) -> list[dict]:
    """`count` copies of a list item, keys made unique (params must not repeat a key)."""
    return [{**template, "key": f"{template['key']}{i}"} for i in range(count)]


def _truncated_to(sent: str, limit: int) -> Callable[[dict, dict, str], str | None]:
    def effect(before: dict, after: dict, unique: str) -> str | None:
        stored = _strings(after)
        if sent[:limit] in stored and sent not in stored:
            return None
        return f"the {len(sent)}-character value was not stored truncated to {limit}"

    return effect


def _timestamp_probe(rpc: str, rule: HandlerRule, path: str) -> Probe:
    def breaks(body: dict) -> Broken:
        outer, _, inner = path.partition("[].")
        if inner:
            body[outer][0][inner] = -1
        else:
            body[outer] = -1
        # `non_negative` says which timestamps the server refuses below zero; the others it
        # stores as sent, and the table must say which is which.
        if path in NON_NEGATIVE:
            return Broken(body, 400, _rejected(path.replace("[]", "[0]")))
        return Broken(body, 200)

    return Probe(rpc, f"{path}:negative", breaks)


# Store checks: how to make each validator of mlflow/utils/validation.py refuse a body; the
# expected message is the validator's own message for the same value.
def _bad_name(body: dict) -> Broken:
    if "key" in body:
        body["key"] = BAD_NAME
    else:
        first_list = next(v for v in body.values() if isinstance(v, list) and v)
        first_list[0]["key"] = BAD_NAME
    return Broken(body, 400, (uv.bad_character_message(),))


def _message_of(fn: Callable[..., Any], *args: Any) -> str:
    try:
        fn(*args)
    except MlflowException as exc:
        return exc.message
    raise AssertionError(f"{fn.__name__}{args} accepted the value meant to break it")


def _bad_experiment_id(body: dict) -> Broken:
    body["experiment_id"] = NOT_A_NUMBER
    return Broken(body, 400, (_message_of(uv._parse_experiment_id, NOT_A_NUMBER),))


def _bad_run_id(body: dict) -> Broken:
    body["run_id"] = "not a run id!"
    return Broken(body, 400, (_message_of(uv._validate_run_id, "not a run id!"),))


def _repeated_param(body: dict) -> Broken:
    body["params"] = [body["params"][0]] * 2
    p = body["params"][0]
    return Broken(body, 400, (_message_of(uv._validate_param_keys_unique,
                                          [Param(p["key"], p["value"])] * 2),))


def _bad_location(body: dict) -> Broken:
    body["artifact_location"] = "runs:/abc/model"
    return Broken(body, 400, (_message_of(uv._validate_experiment_artifact_location,
                                          "runs:/abc/model"),))


def _long_location(body: dict) -> Broken:
    """A location one character over MLflow's limit (kept when another break set one)."""
    limit = MLFLOW_ARTIFACT_LOCATION_MAX_LENGTH.get()
    location = body.setdefault("artifact_location", "/tmp/" + "a" * (limit - 4))
    return Broken(body, 400, (_message_of(uv._validate_experiment_artifact_location_length,
                                          "/tmp/" + "a" * (limit - 4)),) if len(location) > limit
                  else ())


STORE_BREAKS: dict[str, Callable[[dict], Broken]] = {
    "_validate_experiment_artifact_location": _bad_location,
    "_validate_experiment_artifact_location_length": _long_location,
    "_validate_metric": _bad_name, "_validate_param": _bad_name, "_validate_tag": _bad_name,
    "_validate_experiment_tag": _bad_name, "_validate_batch_log_data": _bad_name,
    "_parse_experiment_id": _bad_experiment_id, "_validate_run_id": _bad_run_id,
    "_validate_param_keys_unique": _repeated_param,
}
#: Validators whose only refusal reachable past the schema is a limit: the limit cases test them.
COVERED_BY_LIMITS = {"_validate_experiment_name", "_validate_batch_log_limits"}


def _store_break(name: str, body: dict) -> Broken:
    if name not in STORE_BREAKS:
        pytest.fail(f"this test does not know how to make {name} refuse a body")
    return STORE_BREAKS[name](body)


def _store_probes(rpc: str, rule: HandlerRule) -> Iterator[Probe]:
    testable = [n for n in rule.store_checks if n not in COVERED_BY_LIMITS]
    for name in testable:
        yield Probe(rpc, f"store {name}", functools.partial(_store_break, name))
    if len(testable) > 1:  # "in order": with all of them broken, the first one answers
        def all_broken(body: dict) -> Broken:
            first = [_store_break(name, body) for name in testable][0]
            return Broken(body, first.status, first.says)

        yield Probe(rpc, "store checks in order", all_broken)


def _probes() -> list[Probe]:
    probes = []
    for rpc, rule in HANDLER_RULES.items():
        probes.append(Probe(rpc, "base", lambda body: Broken(body, 200)))
        probes.extend(_schema_probes(rpc, rule))
        if "run_id" in dict(rule.schema):
            probes.append(_run_uuid_probe(rpc, rule))
        probes.extend(_limit_probe(rpc, rule, n, v) for n, v in rule.limits)
        probes.extend(_limit_probe(rpc, rule, f"{n} (truncated)", v)
                      for n, v in STORE[rpc].truncates)
        probes.extend(_timestamp_probe(rpc, rule, p) for p in rule.timestamp_fields)
        probes.extend(_store_probes(rpc, rule))
    return probes


PROBES = _probes()


def _fill(value: Any, values: dict[str, str]) -> Any:
    if isinstance(value, str):
        for name, filled in values.items():
            value = value.replace("{" + name + "}", filled)
        return value
    if isinstance(value, dict):
        return {k: _fill(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, values) for v in value]
    return value


def _post(server_url: str, rpc: str, body: Any) -> tuple[bytes, Exchange]:
    data = json.dumps(body).encode("utf-8")
    return data, send(endpoint(rpc).path, headers=JSON, data=data, base_url=server_url,
                      timeout=60)


def _run(server_url: str, run_id: str) -> dict:
    answer = send("/api/2.0/mlflow/runs/get", method="GET", params={"run_id": run_id},
                  base_url=server_url)
    assert answer.status == 200, answer.text
    return answer.json["run"]


@pytest.mark.parametrize("probe", PROBES, ids=[p.id for p in PROBES])
def test_the_live_server_answers_what_the_table_says(probe: Probe, server_url: str,
                                                     fresh_run: dict[str, str]) -> None:
    values = {**fresh_run, "unique": uuid.uuid4().hex}
    if probe.rpc in SETUP:
        _, setup = _post(server_url, SETUP[probe.rpc], _fill(BASE[SETUP[probe.rpc]], values))
        assert setup.status == 200, f"setup {SETUP[probe.rpc]}: {setup.text}"
    broken = probe.breaks(_fill(BASE[probe.rpc], values))
    before = _run(server_url, fresh_run["run_id"]) if broken.effect else {}

    data = json.dumps(broken.body).encode("utf-8")
    verdict = preflight("POST", server_url + endpoint(probe.rpc).path, JSON, data,
                        server=server_url)  # state-aware, before the request changes state
    _, live = _post(server_url, probe.rpc, broken.body)

    problems = []
    if live.status != broken.status:
        problems.append(f"the table says {broken.status}, the server answered {live.status} "
                        f"{live.error_code or ''} {live.message or ''}".rstrip())
    elif live.status >= 400 and live.error_code != broken.code:
        problems.append(f"error code {live.error_code}, expected {broken.code}")
    for part in broken.says:
        if part not in (live.message or ""):
            problems.append(f"the message {live.message!r} does not contain {part!r}")
    if broken.effect and live.status == broken.status:
        problem = broken.effect(before, _run(server_url, fresh_run["run_id"]), values["unique"])
        if problem:
            problems.append(problem)
    if verdict.predicted_status != live.status:
        problems.append(f"preflight predicts {verdict.predicted_status}, the server answered "
                        f"{live.status}")
    if verdict.expected_message is not None and verdict.expected_message != live.message:
        problems.append(f"preflight expects the message {verdict.expected_message!r}, the "
                        f"server said {live.message!r}")
    assert not problems, "\n".join(problems)


# ===================================================================== live: the state rules
#
# One case per StateRule of the table: the server state is set up so that exactly that rule
# fails, then the live answer must be the rule's (status, error code, message), state-aware
# preflight must predict it, offline preflight must leave it to state, and explain() must name
# the rule from the live answer alone.

STATE_CASES = [(rpc, rule) for rpc, store in STORE.items() for rule in store.state]


def test_a_param_or_tag_rule_comes_after_the_run_exists_rule() -> None:
    """preflight_store settles a param or tag rule with the run already found (its 404 is the
    run rule's answer): the table keeps that order."""
    for rpc, store in STORE.items():
        subjects = [r.subject for r in store.state]
        for i, rule in enumerate(store.state):
            if rule.subject in ("param", "tag"):
                assert RUN_EXISTS in store.state[:i], (rpc, subjects)


def _break_state(server_url: str, rpc: str, subject: str, expect: str, body: dict,
                 ids: dict[str, str]) -> None:
    """Change the body or the server so that the (subject, expect) rule fails."""
    def setup(rpc_: str, payload: dict) -> None:
        _, answer = _post(server_url, rpc_, payload)
        assert answer.status == 200, f"setup {rpc_}: {answer.text}"

    if (subject, expect) == ("run", "exists"):
        body["run_id"] = "0" * 32
    elif (subject, expect) == ("run", "active"):
        setup("deleteRun", {"run_id": ids["run_id"]})
    elif (subject, expect) == ("experiment", "exists"):
        body["experiment_id"] = "987654321"
    elif (subject, expect) == ("experiment", "active"):
        setup("deleteExperiment", {"experiment_id": ids["experiment_id"]})
    elif (subject, expect) == ("experiment-name", "free"):
        setup("createExperiment", {"name": body["name"]})
    elif (subject, expect) == ("param", "unchanged"):
        key = body["key"] if "key" in body else body["params"][0]["key"]
        setup("logParam", {"run_id": ids["run_id"], "key": key, "value": "another value"})
    elif (subject, expect) not in (("experiment", "deleted"), ("tag", "present")):
        pytest.fail(f"this test does not know how to break the state rule {subject}:{expect}")


@pytest.mark.parametrize(("rpc", "rule"), STATE_CASES,
                         ids=[f"{rpc}:{r.subject}:{r.expect}" for rpc, r in STATE_CASES])
def test_each_state_rule_is_what_the_live_server_does(rpc: str, rule: Any, server_url: str,
                                                      fresh_run: dict[str, str]) -> None:
    from helpers.diagnose import explain

    body = _fill(BASE[rpc], {**fresh_run, "unique": uuid.uuid4().hex})
    _break_state(server_url, rpc, rule.subject, rule.expect, body, fresh_run)
    data = json.dumps(body).encode("utf-8")
    url = server_url + endpoint(rpc).path
    offline = preflight("POST", url, JSON, data)
    aware = preflight("POST", url, JSON, data, server=server_url)
    _, live = _post(server_url, rpc, body)

    assert (live.status, live.error_code) == (rule.status, rule.error_code), live.text
    assert live.message.startswith(rule.message.split("{")[0].rstrip("…")), live.message
    assert offline.predicted_status is None and "state" in [f.id for f in offline.findings]
    assert aware.predicted_status == live.status and rule.id in [f.id for f in aware.findings]
    if aware.expected_message is not None:
        assert aware.expected_message == live.message
    diagnosis = explain(live)
    assert (diagnosis.family, diagnosis.check) == (rule.id, rule.check), diagnosis


def test_deleting_an_experiment_that_holds_a_deleted_run(server_url: str,
                                                         fresh_run: dict[str, str]) -> None:
    """A deleted run inside does not stop experiments/delete: 200, and state-aware preflight
    predicts it (the experiment is active, the only state its rule looks at)."""
    _, gone = _post(server_url, "deleteRun", {"run_id": fresh_run["run_id"]})
    assert gone.status == 200, gone.text
    data = json.dumps({"experiment_id": fresh_run["experiment_id"]})
    url = server_url + endpoint("deleteExperiment").path
    aware = preflight("POST", url, JSON, data, server=server_url)
    _, live = _post(server_url, "deleteExperiment", json.loads(data))
    assert (aware.predicted_status, live.status) == (200, 200), (aware, live.text)
