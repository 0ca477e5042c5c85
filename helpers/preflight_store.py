"""Preflight's last steps, run generically from helpers/model_table.py: what the store truncates,
the handler and its store call (helpers.store_checks), the few kit steps no MLflow check covers,
then the state rules: offline a "state" finding and no status, with `server=URL` GET lookups.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mlflow.environment_variables import MLFLOW_TRUNCATE_LONG_VALUES
from mlflow.utils import validation as uv

from helpers import redact, store_checks, wire
from helpers.model_table import RUN_EXISTS, StateRule, StoreRule
from helpers.preflight_advice import PARSE, STORE

if TYPE_CHECKING:
    from helpers.preflight_pipeline import Pipeline

def run(sim: Pipeline, rule: StoreRule) -> None:
    """Truncation, the handler on the rows the state rules name, the kit's steps, then the state."""
    if MLFLOW_TRUNCATE_LONG_VALUES.get():
        for path, limit in rule.truncates:
            _truncate(sim, path, limit)
    store_checks.run(sim, {r.subject: (str(_value(sim, r)), "deleted" if r.expect == "deleted" else "active")
                           for r in rule.state if r.subject in ("run", "experiment")})
    if sim.endpoint.name in _KIT_STEPS:
        _KIT_STEPS[sim.endpoint.name](sim)
    state(sim, rule.state)


def _truncate(sim: Pipeline, path: str, limit: int) -> None:
    """Each value the store cuts silently (MLflow's validator does, in the handler store_checks runs)."""
    outer, _, inner = path.rpartition("[].")
    items = [(f"{outer}[{i}].{inner}", x) for i, x in enumerate(getattr(sim.message, outer))] \
        if outer else [(path, sim.message)]
    for where, item in items:
        value = getattr(item, inner or path)
        if len(value) > limit:
            sim.add("warning", "trap-truncated", "mlflow/utils/validation.py::_validate_length_limit",
                    f"{where} has {len(value)} characters: the server keeps the first {limit} and "
                    "answers 200; only its log warns (MLFLOW_TRUNCATE_LONG_VALUES, on by default).",
                    f"Keep it under {limit} characters, or log it as an artifact.")


def state(sim: Pipeline, rules: tuple[StateRule, ...]) -> None:
    """What a valid request still depends on; settled by lookups when a server is given. An
    empty id names nothing: that answer needs no lookup."""
    if sim.server is None:
        if rules[0].expect in ("exists", "active", "deleted") and not _value(sim, rules[0]):
            raise _refuse(sim, rules[0], _value(sim, rules[0]), "")
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
    return f"{rule.subject.replace('-', ' ')}{named} {what} (else {rule.status})"


def _value(sim: Pipeline, rule: StateRule) -> Any:
    if rule.field == "run_id" and sim.endpoint.reads_run_uuid:
        return sim.message.run_id or sim.message.run_uuid
    return None if rule.field == "params" else getattr(sim.message, rule.field)


def _refuse(sim: Pipeline, rule: StateRule, value: Any, stage: str) -> Exception:
    run = _value(sim, RUN_EXISTS) if "{run}" in rule.message else ""
    said = rule.message.format(value=value, stage=stage, run=run, key=getattr(sim.message, "key", ""))
    exact = not said.endswith("…")
    return sim.fail(rule.status, rule.id, rule.check, said.rstrip("…") + (
        "" if exact else f" ({describe(rule, value)})"), rule.fix,
        said=said if exact else None, code=rule.error_code)


def _lookup(sim: Pipeline, path: str, params: dict[str, str]) -> tuple[int, Any]:
    """A read-only GET sent as wire.send sends any request (no proxy for this machine, the
    learner's credentials, one deadline); only MLflow's own answers count (see wire.mlflow_state)."""
    found = wire.mlflow_state(f"{sim.server}/api/2.0/mlflow/{path}", params, session=sim.session)
    if isinstance(found, str):
        raise sim.fail(None, "state-lookup-failed", "helpers/preflight_store.py",
                       f"Could not look up server state at {redact.host_of(sim.server or '')}: {found}.",
                       "Check that the server is running and that this is its address (with basic auth: "
                       "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD set).", severity="info")
    return found


def _settle(sim: Pipeline, rule: StateRule) -> None:
    value = _value(sim, rule)
    if rule.subject == "experiment-name":
        status, data = _lookup(sim, "experiments/get-by-name", {"experiment_name": value})
    elif rule.subject == "experiment":
        status, data = _lookup(sim, "experiments/get", {"experiment_id": value})
    else:  # run, param, tag: one runs/get (the table puts the run rules first: the run is there)
        run_id = _value(sim, RUN_EXISTS)
        status, data = _lookup(sim, "runs/get", {"run_id": run_id}) if run_id else (404, {})
    found = data.get("experiment") or data.get("run", {}).get("info", {})
    stage = found.get("lifecycle_stage", "") if status == 200 else ""
    if rule.expect == "free" and status == 200 or \
            rule.expect in ("exists", "active", "deleted") and status == 404:
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
    if not sim.message.experiment_id:
        raise sim.fail(400, "store-check", STORE + "create_run", "No experiment_id: the store looks "
                       "up the Default experiment for checks but inserts the run with experiment_id "
                       "'' and the database refuses it (a FOREIGN KEY/type error reported as 400 "
                       "BAD_REQUEST with SQL in the message).",
                       "Send \"experiment_id\": \"0\" (Default) or the id experiments/create returned.",
                       code="BAD_REQUEST")
    if any(not t.key for t in sim.message.tags):
        sim.add("warning", "empty-tag-key", STORE + "create_run",
                "runs/create does not validate tags: a tag without a key is stored as ''.",
                "Give every tag a key.")


#: The kit's steps per RPC, after the handler and its store call.
_KIT_STEPS: dict[str, Callable[[Pipeline], None]] = {
    "logMetric": lambda sim: _infinite(sim, [sim.message.value], "value"),
    "logBatch": _log_batch, "createRun": _create_run,
}
