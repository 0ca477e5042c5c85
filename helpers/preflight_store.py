"""Preflight's last steps: what the store does once a handler's checks pass, and the server
state that still decides the answer, both run generically from helpers/model_table.py.

`run(sim)` truncates what the store truncates, calls MLflow's own validators with the fields a
`Validate` rule names, adds the few kit steps no validator covers (below, each citing the MLflow
code it mirrors), then settles the rule's `StateRule`s: offline as a "state" finding and no
status, with `server=URL` by read-only GET lookups.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse, urlsplit

import requests
from mlflow.entities import Metric, Param, RunTag
from mlflow.environment_variables import MLFLOW_TRUNCATE_LONG_VALUES
from mlflow.utils import validation as uv
from mlflow.utils.mlflow_tags import MLFLOW_CUSTOM_VIEW_TAG_PREFIX, MLFLOW_RUN_NAME
from mlflow.utils.uri import validate_query_string

from helpers.model_table import RUN_EXISTS, StateRule, StoreRule, Validate
from helpers.preflight_advice import PARSE, STORE, H
from helpers.server_model import HOST_ADDRESSED_ARTIFACT_SCHEMES

if TYPE_CHECKING:
    from helpers.preflight_pipeline import Pipeline

_ENTITIES = {"metrics": Metric, "params": Param, "tags": RunTag}


def run(sim: Pipeline, rule: StoreRule) -> None:
    """The store's checks in its order, then the server state (raises the deciding answer)."""
    msg, entities = sim.message, {}
    name = sim.endpoint.name if sim.endpoint else ""
    if name in _BEFORE_STORE:
        _BEFORE_STORE[name](sim)
    for path, limit in rule.truncates:
        _truncate(sim, msg, path, limit)
    for v in rule.validators:
        if v.when and not getattr(msg, v.when):
            continue
        fn, check = _function(v)
        for args in _arguments(msg, v.args, entities):
            sim.store_check(check, fn, *args, id_=v.id)
    if name in _KIT_STEPS:
        _KIT_STEPS[name](sim)
    state(sim, rule.state)


def _function(v: Validate) -> tuple[Callable[..., Any], str]:
    module, _, attr = v.fn.rpartition(":")
    if not module:
        return getattr(uv, attr), f"mlflow/utils/validation.py::{attr}"
    found: Any = importlib.import_module(module)
    for part in attr.split("."):
        found = getattr(found, part)
    return found, f"{module.replace('.', '/')}.py::{attr}"


def _arguments(msg: Any, spec: tuple[str, ...], entities: dict[str, list[Any]]
               ) -> list[tuple[Any, ...]]:
    """The argument tuples of one call: once, or once per item of a `field[]` spec."""
    each = next((a.partition("[]")[0] for a in spec if "[]" in a), None)

    def one(arg: str, item: Any) -> Any:
        name = arg.rstrip("?")
        if name.endswith("*"):  # built once per request, shared by the batch validators
            name = name[:-1]
            if name not in entities:
                entities[name] = [_ENTITIES[name].from_proto(x) for x in getattr(msg, name)]
            value = entities[name]
        elif "[]" in name:
            attr = name.partition("[]")[2].lstrip(".")
            value = getattr(item, attr) if attr else item
        else:
            value = getattr(msg, name)
        return (value or None) if arg.endswith("?") else value
    return [tuple(one(a, item) for a in spec) for item in (getattr(msg, each) if each else [None])]


def _truncate(sim: Pipeline, msg: Any, path: str, limit: int) -> None:
    """The value the store keeps: MLFLOW_TRUNCATE_LONG_VALUES (on by default) cuts it silently,
    so the validators that run after see it cut."""
    if not MLFLOW_TRUNCATE_LONG_VALUES.get():
        return
    outer, _, inner = path.rpartition("[].")
    items = [(f"{outer}[{i}].{inner}", x) for i, x in enumerate(getattr(msg, outer))] \
        if outer else [(path, msg)]
    for where, item in items:
        value = getattr(item, inner or path)
        if len(value) > limit:
            sim.add("warning", "trap-truncated", "mlflow/utils/validation.py::"
                    "_validate_length_limit", f"{where} has {len(value)} characters: the server "
                    f"keeps the first {limit} and answers 200; only its log warns "
                    "(MLFLOW_TRUNCATE_LONG_VALUES, on by default).",
                    f"Keep it under {limit} characters, or log it as an artifact.")
            setattr(item, inner or path, value[:limit])


# -------------------------------------------------------------------------------- state


def state(sim: Pipeline, rules: tuple[StateRule, ...]) -> None:
    """What a valid request still depends on; settled by lookups when a server is given. An
    empty id names nothing: that answer needs no lookup."""
    if not rules:
        return
    if sim.server is None:
        first = rules[0]
        if first.expect in ("exists", "active", "deleted") and not _value(sim, first):
            raise _refuse(sim, first, _value(sim, first), "")
        words = "; ".join(describe(r, _value(sim, r)) for r in rules)
        raise sim.fail(None, "state", " / ".join(dict.fromkeys(r.check for r in rules)),
                       f"Valid as sent; the answer depends on server state: {words}. "
                       "Pass server=URL to look it up.", severity="info")
    for rule in rules:
        _settle(sim, rule)
    sim.state_checked = True


def describe(rule: StateRule, value: Any = None) -> str:
    """A state rule in words: "run 'abc' exists (else 404)"."""
    named = "" if value is None or rule.field == "params" else f" '{value}'"
    what = {"exists": "exists", "active": "exists and is active", "deleted": "is deleted",
            "free": "is not taken yet", "unchanged": "was not logged before with another "
            "value (params are write-once)", "present": "is set on the run"}[rule.expect]
    subject = {"experiment-name": "experiment name", "param": "param", "tag": "tag"}.get(
        rule.subject, rule.subject)
    return f"{subject}{named} {what} (else {rule.status})"


def _value(sim: Pipeline, rule: StateRule) -> Any:
    msg = sim.message
    if rule.field == "run_id" and sim.endpoint is not None and sim.endpoint.reads_run_uuid:
        return msg.run_id or msg.run_uuid
    return None if rule.field == "params" else getattr(msg, rule.field)


def _refuse(sim: Pipeline, rule: StateRule, value: Any, stage: str) -> Exception:
    run = _value(sim, RUN_EXISTS) if "{run}" in rule.message else ""
    said = rule.message.format(value=value, stage=stage, run=run,
                               key=getattr(sim.message, "key", ""))
    exact = not said.endswith("…")
    return sim.fail(rule.status, rule.id, rule.check, said.rstrip("…") + (
        "" if exact else f" ({describe(rule, value)})"), rule.fix,
        said=said if exact else None, code=rule.error_code)


def _lookup(sim: Pipeline, path: str, params: dict[str, str]) -> tuple[int, Any]:
    try:
        answer = (sim.session or requests).get(f"{sim.server}/api/2.0/mlflow/{path}",
                                               params=params, timeout=10)
        return answer.status_code, answer.json() if answer.content else {}
    except (requests.RequestException, ValueError) as exc:
        host = urlsplit(sim.server).netloc.rpartition("@")[2]
        raise sim.fail(None, "state-lookup-failed", "helpers/preflight_store.py",
                       f"Could not look up server state at {host} ({type(exc).__name__}).",
                       "Check that the server is running.", severity="info") from None


def _settle(sim: Pipeline, rule: StateRule) -> None:
    value = _value(sim, rule)
    if rule.subject == "experiment-name":
        status, _ = _lookup(sim, "experiments/get-by-name", {"experiment_name": value})
        if status == 200:
            raise _refuse(sim, rule, value, "")
        return
    if rule.subject == "experiment":
        status, data = _lookup(sim, "experiments/get", {"experiment_id": value})
        stage = data.get("experiment", {}).get("lifecycle_stage", "") if status == 200 else ""
    else:  # run, param, tag: one runs/get
        run_id = _value(sim, RUN_EXISTS)
        status, data = _lookup(sim, "runs/get", {"run_id": run_id}) if run_id else (404, {})
        stage = data.get("run", {}).get("info", {}).get("lifecycle_stage", "")
        if status == 404 and rule.subject != "run":
            raise _refuse(sim, RUN_EXISTS, run_id, "")
    if rule.expect in ("exists", "active", "deleted") and status == 404:
        raise _refuse(sim, rule, value, "")
    if rule.expect in ("active", "deleted") and stage != rule.expect:
        raise _refuse(sim, rule, value, stage)
    run = data.get("run", {}).get("data", {})
    if rule.expect == "unchanged":
        logged = {p["key"]: p.get("value", "") for p in run.get("params", [])}
        sent = [(p.key, p.value) for p in sim.message.params] if rule.field == "params" \
            else [(sim.message.key, sim.message.value)]
        changed = [k for k, v in sent if k in logged and logged[k] != v[:uv.MAX_PARAM_VAL_LENGTH]]
        if changed:
            raise sim.fail(rule.status, rule.id, rule.check, f"Param '{changed[0]}' already has "
                           f"the value {logged[changed[0]]!r} in this run; params are "
                           "write-once.", rule.fix, code=rule.error_code)
    if rule.expect == "present" and value not in {t["key"] for t in run.get("tags", [])}:
        raise _refuse(sim, rule, value, stage)


# ------------------------------------------------------- kit steps no validator covers


def _log_metric(sim: Pipeline) -> None:
    _infinite(sim, [sim.message.value], "value")


def _log_batch(sim: Pipeline) -> None:
    m, body = sim.message, sim.request_json
    _infinite(sim, [x.value for x in m.metrics], "metrics[{}].value")
    for name in ("metrics", "params", "tags"):
        sent = body.get(name) if isinstance(body, dict) else None
        kept = len(getattr(m, name))
        if isinstance(sent, list) and kept < len(sent):
            sim.add("warning", "trap-parse-stopped", PARSE,
                    f"Only {kept} of the {len(sent)} {name} reach the store; the rest are "
                    "dropped silently because proto parsing stopped early.",
                    "Fix the item the parser gave up on (see above).")


def _infinite(sim: Pipeline, values: list[float], where: str) -> None:
    i = next((i for i, v in enumerate(values) if math.isinf(v)), None)
    if i is not None:
        sim.add("warning", "trap-infinity", STORE + "sanitize_metric_value",
                f"{where.format(i)} is infinite: the SQL store saves +/-1.7976931348623157e308 "
                "instead.", "Log a finite number if the exact value matters.")


def _create_run(sim: Pipeline) -> None:
    m = sim.message
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


def _create_experiment(sim: Pipeline) -> None:
    """handlers.py::_create_experiment's own checks, which run before the store's."""
    m = sim.message
    views = sum(t.key.startswith(MLFLOW_CUSTOM_VIEW_TAG_PREFIX) for t in m.tags)
    if views > uv.MAX_CUSTOM_VIEWS_PER_EXPERIMENT:
        said = ("Unable to create another custom view; the maximum number of custom views per "
                f"experiment is {uv.MAX_CUSTOM_VIEWS_PER_EXPERIMENT}. Delete an existing custom "
                "view before creating a new one.")
        raise sim.fail(400, "batch-limit", H + "_validate_custom_view_count", said,
                       "Send fewer view tags.", said=said, code="INVALID_PARAMETER_VALUE")
    if not m.artifact_location:
        return
    parsed = urlparse(m.artifact_location)
    if parsed.fragment or parsed.params:
        said = "'artifact_location' URL can't include fragments or params."
        raise sim.fail(400, "store-check", H + "_validate_storage_location_uri", said,
                       "Remove the ';params' or '#fragment'.", said=said,
                       code="INVALID_PARAMETER_VALUE")
    sim.store_check("mlflow/utils/uri.py::validate_query_string", validate_query_string,
                    parsed.query)
    if parsed.scheme in HOST_ADDRESSED_ARTIFACT_SCHEMES and \
            (parsed.netloc or parsed.scheme != "mlflow-artifacts"):
        raise sim.not_modelled(f"whether the server accepts a '{parsed.scheme}' "
                               "artifact_location naming a host (its own artifact store, or "
                               "MLFLOW_ALLOWED_HOST_ADDRESSED_ARTIFACT_SCHEMES)")


#: The kit's steps per RPC: after the rule's validators, and before them where the handler
#: checks first (createExperiment's own checks run before the store's).
_KIT_STEPS: dict[str, Callable[[Pipeline], None]] = {
    "logMetric": _log_metric, "logBatch": _log_batch, "createRun": _create_run,
}
_BEFORE_STORE: dict[str, Callable[[Pipeline], None]] = {"createExperiment": _create_experiment}
