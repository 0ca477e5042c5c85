"""What the server says to model-registry requests and to requests naming an experiment id: the
store method each handler calls, run on an empty database (helpers.store_run).

The registry store validates names, versions, aliases and tags with mlflow/utils/validation.py
before it looks anything up; the tracking store parses experiment ids (`_parse_experiment_id`:
"Invalid experiment ID 'abc'"). What they refuse is the answer; what passes depends on the
server's rows (a "state" finding, `None`). `_create_model_version` first checks the `source`
with handlers.py's own `_validate_source_*` helpers, compiled by helpers.server_model; where they
need the run or model behind the source, that is server state too.
"""

from __future__ import annotations

import functools
import urllib.parse
from collections.abc import Callable
from typing import Any

from mlflow.entities import LoggedModelParameter, LoggedModelTag
from mlflow.entities.model_registry import ModelVersionTag, RegisteredModelTag
from mlflow.environment_variables import MLFLOW_CREATE_MODEL_VERSION_SOURCE_VALIDATION_REGEX
from mlflow.exceptions import MlflowException

from helpers import server_model, store_run
from helpers.server_model import HOST_ADDRESSED_ARTIFACT_SCHEMES
from helpers.store_run import REGISTRY as _R
from helpers.store_run import TRACKING as _T

H = "mlflow/server/handlers.py::"


def _version(m: Any) -> Any:
    return m.version if m.HasField("version") else None


#: What each handler passes its store (handlers.py, the function named in the comment).
_CALLS: dict[str, store_run.Call] = {
    # _create_registered_model, _rename_..., _update_..., _delete_..., _get_registered_model
    "createRegisteredModel": (_R, "create_registered_model", lambda m: dict(
        name=m.name, tags=m.tags, description=m.description)),
    "renameRegisteredModel": (_R, "rename_registered_model", lambda m: dict(
        name=m.name, new_name=m.new_name)),
    "updateRegisteredModel": (_R, "update_registered_model", lambda m: dict(
        name=m.name, description=m.description)),
    "deleteRegisteredModel": (_R, "delete_registered_model", lambda m: dict(name=m.name)),
    "getRegisteredModel": (_R, "get_registered_model", lambda m: dict(name=m.name)),
    "getLatestVersions": (_R, "get_latest_versions", lambda m: dict(
        name=m.name, stages=m.stages)),
    # _create_model_version (after the source checks of `_source` below)
    "createModelVersion": (_R, "create_model_version", lambda m: dict(
        name=m.name, source=m.source, run_id=m.run_id, run_link=m.run_link, tags=m.tags,
        description=m.description, model_id=m.model_id)),
    "updateModelVersion": (_R, "update_model_version", lambda m: dict(
        name=m.name, version=m.version,
        description=m.description if m.HasField("description") else None)),
    "transitionModelVersionStage": (_R, "transition_model_version_stage", lambda m: dict(
        name=m.name, version=m.version, stage=m.stage,
        archive_existing_versions=m.archive_existing_versions)),
    "deleteModelVersion": (_R, "delete_model_version", lambda m: dict(
        name=m.name, version=m.version)),
    "getModelVersion": (_R, "get_model_version", lambda m: dict(name=m.name, version=m.version)),
    "setRegisteredModelTag": (_R, "set_registered_model_tag", lambda m: dict(
        name=m.name, tag=RegisteredModelTag(key=m.key, value=m.value))),
    "setModelVersionTag": (_R, "set_model_version_tag", lambda m: dict(
        name=m.name, version=m.version, tag=ModelVersionTag(key=m.key, value=m.value))),
    "deleteRegisteredModelTag": (_R, "delete_registered_model_tag", lambda m: dict(
        name=m.name, key=m.key)),
    "deleteModelVersionTag": (_R, "delete_model_version_tag", lambda m: dict(
        name=m.name, version=m.version, key=m.key)),
    "setRegisteredModelAlias": (_R, "set_registered_model_alias", lambda m: dict(
        name=m.name, alias=m.alias, version=m.version)),
    "deleteRegisteredModelAlias": (_R, "delete_registered_model_alias", lambda m: dict(
        name=m.name, alias=m.alias)),
    "getModelVersionByAlias": (_R, "get_model_version_by_alias", lambda m: dict(
        name=m.name, alias=m.alias)),
    # Experiment ids: _get_experiment, _update_experiment (renames only when new_name is
    # set), _delete_experiment_tag, _get_experiment_by_name, _get_scorer, ...
    "getExperiment": (_T, "get_experiment", lambda m: dict(experiment_id=m.experiment_id)),
    "getExperimentByName": (_T, "get_experiment_by_name", lambda m: dict(
        experiment_name=m.experiment_name)),
    "updateExperiment": (_T, "rename_experiment", lambda m: dict(
        experiment_id=m.experiment_id, new_name=m.new_name) if m.new_name else None),
    "deleteExperimentTag": (_T, "delete_experiment_tag", lambda m: dict(
        experiment_id=m.experiment_id, key=m.key)),
    "getScorer": (_T, "get_scorer", lambda m: dict(
        experiment_id=m.experiment_id, name=m.name, version=_version(m))),
    "deleteScorer": (_T, "delete_scorer", lambda m: dict(
        experiment_id=m.experiment_id, name=m.name, version=_version(m))),
    "listScorerVersions": (_T, "list_scorer_versions", lambda m: dict(
        experiment_id=m.experiment_id, name=m.name)),
    "getLabelSchemaByName": (_T, "get_label_schema_by_name", lambda m: dict(
        experiment_id=m.experiment_id, name=m.name)),
    "listLabelSchemas": (_T, "list_label_schemas", lambda m: dict(
        experiment_id=m.experiment_id,
        max_results=m.max_results if m.HasField("max_results") else 100,
        page_token=m.page_token if m.HasField("page_token") else None)),
    # _calculate_trace_filter_correlation, _get_or_create_user_queue, review queues
    "calculateTraceFilterCorrelation": (_T, "calculate_trace_filter_correlation", lambda m: dict(
        experiment_ids=m.experiment_ids, filter_string1=m.filter_string1,
        filter_string2=m.filter_string2,
        base_filter=m.base_filter if m.HasField("base_filter") else None)),
    "getOrCreateUserQueue": (_T, "get_or_create_user_queue", lambda m: dict(
        experiment_id=m.experiment_id, user=m.user)),
    "getReviewQueueByName": (_T, "get_review_queue_by_name", lambda m: dict(
        experiment_id=m.experiment_id, name=m.name)),
    "listReviewQueues": (_T, "list_review_queues", lambda m: dict(
        experiment_id=m.experiment_id, **{k: getattr(m, k) if m.HasField(k) else None
                                          for k in ("user", "item_id", "max_results",
                                                    "page_token")})),
    # _deprecated_start_trace_v2, _create_logged_model
    "startTrace": (_T, "deprecated_start_trace_v2", lambda m: dict(
        experiment_id=m.experiment_id, timestamp_ms=m.timestamp_ms,
        request_metadata={e.key: e.value for e in m.request_metadata},
        tags={e.key: e.value for e in m.tags})),
    "createLoggedModel": (_T, "create_logged_model", lambda m: dict(
        experiment_id=m.experiment_id, name=m.name or None, model_type=m.model_type,
        source_run_id=m.source_run_id,
        params=[LoggedModelParameter.from_proto(p) for p in m.params] or None,
        tags=[LoggedModelTag(key=t.key, value=t.value) for t in m.tags] or None)),
}

_ID_FIX = ("Experiment ids are the whole numbers the server gave, sent as strings (e.g. "
           "\"0\"); experiments/get-by-name looks one up by name.")
_FIXES = (
    ("Invalid experiment ID", "bad-experiment-id", _ID_FIX),
    ("invalid literal for int()", "bad-experiment-id", _ID_FIX),
    ("Names cannot contain", "invalid-name", "Leave '/' and ':' out of model names: they "
     "separate the parts of models:/<name>/<version> URIs."),
    ("alias", "invalid-alias", "Use letters, digits, '_' and '-' for aliases, not 'latest' or "
     "'v<number>' (both are reserved)."),
    ("must be an integer", "bad-version", "Send the version number as a string of digits, "
     "e.g. \"1\"."),
    ("model version source", "invalid-source", "Register what a run or logged model holds: "
     "runs:/<run_id>/<path> with that run_id, or models:/<model_id> with that model_id."),
    ("Missing value", "missing-field", "Send a non-blank value."),
    ("exceeds the maximum length", "too-long", "Shorten it to the length the message names."),
    ("resolve to", "invalid-name", "Keep '..' and a leading '/' out of keys: names may be "
     "used as file paths."),
    ("Names may only contain", "invalid-name", "Use letters, digits, _ - . space : / only."),
)


def _describe(sim: Any, exc: MlflowException, names: list[str]) -> tuple[str, str, str]:
    said = exc.message
    id_, fix = next(((i, f) for key, i, f in _FIXES if key in said),
                    ("invalid-value", "Change the value the message names."))
    return id_, said, fix


class _NeedsState(Exception):
    """A handler helper reached for the server's stores."""


def _needs_state(*args: Any, **kwargs: Any) -> Any:
    raise _NeedsState


@functools.cache
def _source_checks() -> dict[str, Any]:
    """handlers.py's source checks; where they would read a run, model or version: state."""
    return server_model.handler_functions(
        ("_is_prompt_request", "_validate_prompt_source", "_resolve_registered_model_source_lineage",
         "_validate_source_run", "_validate_source_model", "_raise_invalid_model_version_source",
         "_validate_non_local_source_contains_relative_paths", "_parse_model_version_source",
         "_is_mlflow_artifact_source", "_normalized_uri_parts", "_iteratively_unquote",
         "_is_uri_within_root"),
        _get_source_run=_needs_state, _get_source_model=_needs_state,
        _get_model_registry_store=_needs_state)


def _source(sim: Any) -> None:
    """handlers.py::_create_model_version's checks of `source`, before the store call."""
    m = sim.message
    if m.source and MLFLOW_CREATE_MODEL_VERSION_SOURCE_VALIDATION_REGEX.get():
        raise sim.not_modelled("the source pattern set by "
                               "MLFLOW_CREATE_MODEL_VERSION_SOURCE_VALIDATION_REGEX")
    parsed = urllib.parse.urlparse(m.source)
    if parsed.scheme in HOST_ADDRESSED_ARTIFACT_SCHEMES and parsed.netloc:
        raise sim.not_modelled(f"whether the server accepts a '{parsed.scheme}' source naming "
                               "a host (its own artifact store settings)")
    fns = _source_checks()
    check = H + "_create_model_version"
    try:
        if fns["_is_prompt_request"](m):
            fns["_validate_prompt_source"](m.source)
            return
        source, run_id, model_id = fns["_resolve_registered_model_source_lineage"](
            m.source, m.run_id, m.model_id, has_run_id=m.HasField("run_id"),
            has_model_id=m.HasField("model_id"))
        if model_id:
            fns["_validate_source_model"](source, model_id)
        else:
            fns["_validate_source_run"](source, run_id)
    except MlflowException as exc:
        id_, message, fix = _describe(sim, exc, [])
        raise sim.fail(exc.get_http_status_code(), id_, check, message, fix, said=exc.message,
                       code=exc.error_code) from None
    except _NeedsState:
        raise sim.fail(None, "state", check, "The source names a run, logged model or model "
                       "version: whether it exists on this server, and holds the source, decides "
                       "the answer.", severity="info") from None
    except server_model.NotModelled as exc:
        raise sim.not_modelled(f"a source check of _create_model_version ({exc})") from None


def registry(sim: Any) -> None:
    """The handler's own checks, then its store call: refused, or server state decides."""
    if sim.endpoint.name == "createModelVersion":
        _source(sim)
    call = _CALLS[sim.endpoint.name]
    if call[2](sim.message) is None:
        return  # the handler skips its store: 200
    where = store_run.run(sim, call, _describe)
    raise sim.fail(None, "state", where, "Valid as sent: the store's checks pass; what this "
                   "server holds (the model, version or experiment it names) decides the answer.",
                   severity="info")


STEPS: dict[str, Callable[[Any], None]] = {name: registry for name in _CALLS}
