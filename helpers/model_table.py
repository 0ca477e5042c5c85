"""The one hand-written table of the server model: what cannot be derived from MLflow's source.

What the SQL store keeps (limits, milliseconds, truncation) and which server state decides an
answer live only in code paths the model cannot read generically (mlflow/store/tracking/
sqlalchemy_store.py), so they are written here once, as data, for MLflow 3.17.2. Every entry is
tested against the live server (tests/test_store_table.py); docs/architecture.md maps the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from mlflow.utils import validation as uv

#: Not in any source: the deepest JSON nesting the server survives. Deeper, its json.loads
#: raises RecursionError (not the ValueError get_json catches): 500. Measured on the kit's
#: server (uvicorn, MLflow 3.17.2): 978 levels answer, 979 crash. It depends on the server's
#: call stack, so preflight leaves the few levels around it "not modelled".
JSON_DEPTH_LIMIT = 978

#: A timestamp below this many "milliseconds" (1973-03-03) is taken for seconds: MLflow's are
#: milliseconds since the epoch, > 1e12 since 2001. One threshold for preflight and the lab.
SECONDS_THRESHOLD = 10**11


@dataclass(frozen=True)
class StateRule:
    """One fact about server state that decides a valid request's answer, in the store's order.
    Preflight settles it with a read-only lookup; explain matches a live answer against `message`."""

    subject: str  #: what is looked up: "run", "experiment", "experiment-name", "param" or "tag"
    field: str  #: the request field naming it ("params": every param of a log-batch)
    #: What must hold: "exists", "active", "deleted", "free" (no such name), "unchanged"
    #: (write-once values), "present" (the run has the tag).
    expect: str
    status: int
    error_code: str
    #: MLflow's message; {value}, {stage}, {run}, {key} are filled in. A trailing "…" marks a
    #: prefix: the rest is MLflow's own detail (old and new values, SQL text), not predicted.
    message: str
    fix: str
    check: str  #: the MLflow function that answers
    id: str  #: the finding id (the family in explain)


@dataclass(frozen=True)
class StoreRule:
    """What the store does after the handler's checks pass, for one RPC (its checks themselves
    are MLflow's code, run by helpers/store_checks.py)."""

    limits: tuple[tuple[str, int], ...] = ()  #: (field path, limit) the store enforces
    timestamps: tuple[str, ...] = ()  #: fields holding milliseconds since the epoch
    truncates: tuple[tuple[str, int], ...] = ()  #: (field path, limit) cut silently, before validation
    state: tuple[StateRule, ...] = ()  #: the server state that still decides the answer, in order


_S = "mlflow/store/tracking/sqlalchemy_store.py::SqlAlchemyStore."
RUN_EXISTS = StateRule("run", "run_id", "exists", 404, "RESOURCE_DOES_NOT_EXIST",
                       "Run with id={value} not found",
                       "Use the run_id of an existing run (runs/create returns it; runs/search "
                       "lists them).", _S + "_get_run", "run-not-found")
RUN_ACTIVE = StateRule("run", "run_id", "active", 400, "INVALID_PARAMETER_VALUE",
                       "The run {value} must be in the 'active' state. Current state is {stage}.",
                       "Restore the run first (runs/restore), or use an active one.",
                       _S + "_check_run_is_active", "not-active")
EXPERIMENT_EXISTS = StateRule("experiment", "experiment_id", "exists", 404, "RESOURCE_DOES_NOT_EXIST",
                              "No Experiment with id={value} exists",
                              "Use the id of an existing experiment (experiments/search).",
                              _S + "get_experiment", "resource-not-found")
EXPERIMENT_ACTIVE = StateRule("experiment", "experiment_id", "active", 400, "INVALID_PARAMETER_VALUE",
                              "The experiment {value} must be in the 'active' state. Current state is "
                              "{stage}.", "Restore the experiment first, or use an active one.",
                              _S + "_check_experiment_is_active", "not-active")
PARAM_UNCHANGED = StateRule("param", "key", "unchanged", 400, "INVALID_PARAMETER_VALUE",
                            "Changing param values is not allowed. Param with key='{key}' was "
                            "already logged…",
                            "Log the same value, or use a new key or run; values that change "
                            "belong in metrics.", _S + "log_param", "param-overwrite")
_RUN = (RUN_EXISTS, RUN_ACTIVE)

STORE: dict[str, StoreRule] = {
    # SqlAlchemyStore.create_experiment: location, name, tags; names are unique.
    "createExperiment": StoreRule(
        limits=(("name", uv.MAX_EXPERIMENT_NAME_LENGTH), ("tags[].key", uv.MAX_EXPERIMENT_TAG_KEY_LENGTH),
                ("tags[].value", uv.MAX_EXPERIMENT_TAG_VAL_LENGTH)),
        state=(StateRule("experiment-name", "name", "free", 400, "RESOURCE_ALREADY_EXISTS",
                         "Experiment(name={value}) already exists…",
                         "Pick a unique name, or use the existing experiment (experiments/get-by-name).",
                         _S + "create_experiment", "already-exists"),)),
    # create_run: the experiment must exist and be active; start_time is ms, stored as sent.
    "createRun": StoreRule(timestamps=("start_time",), state=(EXPERIMENT_EXISTS, EXPERIMENT_ACTIVE)),
    "updateRun": StoreRule(timestamps=("end_time",), state=_RUN),
    # delete/restore read run_id only: a body with run_uuid alone looks up run ''.
    "deleteRun": StoreRule(state=(RUN_EXISTS,)),
    "restoreRun": StoreRule(state=(RUN_EXISTS,)),
    # _log_metrics_once -> _validate_metric: finite or not, timestamps non-negative ms.
    "logMetric": StoreRule(limits=(("key", uv.MAX_ENTITY_KEY_LENGTH),), timestamps=("timestamp",),
                           state=_RUN),
    # log_param: write-once (another value for a logged key: 400); long values truncated.
    "logParam": StoreRule(limits=(("key", uv.MAX_ENTITY_KEY_LENGTH),),
                          truncates=(("value", uv.MAX_PARAM_VAL_LENGTH),), state=(*_RUN, PARAM_UNCHANGED)),
    "setTag": StoreRule(limits=(("key", uv.MAX_ENTITY_KEY_LENGTH),),
                        truncates=(("value", uv.MAX_TAG_VAL_LENGTH),), state=_RUN),
    "deleteTag": StoreRule(state=(*_RUN, StateRule(
        "tag", "key", "present", 404, "RESOURCE_DOES_NOT_EXIST",
        "No tag with name: {value} in run with id {run}", "Delete a tag the run has (runs/get lists them).",
        _S + "delete_tag", "resource-not-found"))),
    # log_batch: the batch checks, then the run; params write-once, values truncated.
    "logBatch": StoreRule(
        limits=(("metrics", uv.MAX_METRICS_PER_BATCH), ("params", uv.MAX_PARAMS_TAGS_PER_BATCH),
                ("tags", uv.MAX_PARAMS_TAGS_PER_BATCH)), timestamps=("metrics[].timestamp",),
        truncates=(("params[].value", uv.MAX_PARAM_VAL_LENGTH), ("tags[].value", uv.MAX_TAG_VAL_LENGTH)),
        state=(*_RUN, replace(PARAM_UNCHANGED, field="params", check=_S + "log_batch",
                              message="Changing param values is not allowed…"))),
    "setExperimentTag": StoreRule(limits=(("key", uv.MAX_EXPERIMENT_TAG_KEY_LENGTH),
                                          ("value", uv.MAX_EXPERIMENT_TAG_VAL_LENGTH)),
                                  state=(EXPERIMENT_EXISTS, EXPERIMENT_ACTIVE)),
    # delete_experiment / restore_experiment: only an active (a deleted) one is found: 404.
    "deleteExperiment": StoreRule(state=(replace(EXPERIMENT_EXISTS, expect="active",
                                                 check=_S + "delete_experiment"),)),
    "restoreExperiment": StoreRule(state=(replace(
        EXPERIMENT_EXISTS, expect="deleted", check=_S + "restore_experiment",
        fix="Use the id of a deleted experiment (experiments/search with view_type DELETED_ONLY)."),)),
}
