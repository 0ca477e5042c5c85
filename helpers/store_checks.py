"""What the server says once a handler's schema check passes: handlers.py's own handler (compiled
by helpers.server_model, fed the parsed message) on MLflow's SQL stores, bound to an in-memory
SQLite database that holds the Default experiment and never commits.

For the search, registry and experiment-id RPCs (`STEPS`) the handler stops at its first store
call: what it refuses before any row matters is the answer, a search that passes answers 200,
what needs rows (not found, already exists) is server state. For the store table's RPCs
(helpers/preflight_store.py) the database also holds the run or experiment their state rules
name, and the handler runs until the store's first write.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import logging
import re
import threading
import traceback
import warnings
from collections.abc import Callable
from typing import Any
from unittest import mock

from mlflow.environment_variables import MLFLOW_CREATE_MODEL_VERSION_SOURCE_VALIDATION_REGEX
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.host_policy import host_addressed_uri_targets

from helpers import server_model
from helpers.errors import NotModelled
from helpers.preflight_advice import CRASH, ID_FIX, store_refusal

#: RPCs whose handler searches: the store passing means 200, whatever the data.
SEARCHES = ("searchExperiments", "searchRuns", "searchTraces", "searchTracesV3", "searchLoggedModels",
            "searchEvaluationDatasets", "searchRegisteredModels", "searchModelVersions")
#: RPCs whose handler reads or writes named rows: the store passing leaves it to server state.
LOOKUPS = (
    "createRegisteredModel", "renameRegisteredModel", "updateRegisteredModel", "deleteRegisteredModel",
    "getRegisteredModel", "getLatestVersions", "createModelVersion", "updateModelVersion",
    "transitionModelVersionStage", "deleteModelVersion", "getModelVersion", "setRegisteredModelTag",
    "setModelVersionTag", "deleteRegisteredModelTag", "deleteModelVersionTag", "setRegisteredModelAlias",
    "deleteRegisteredModelAlias", "getModelVersionByAlias", "getExperiment", "getExperimentByName",
    "updateExperiment", "deleteExperimentTag", "getScorer", "deleteScorer", "listScorerVersions",
    "getLabelSchemaByName", "listLabelSchemas", "calculateTraceFilterCorrelation", "getOrCreateUserQueue",
    "getReviewQueueByName", "listReviewQueues", "startTrace", "createLoggedModel")
#: Error codes that say "this row is (not) there": server state decides them, not the request.
STATE_CODES = ("RESOURCE_DOES_NOT_EXIST", "RESOURCE_ALREADY_EXISTS", "NOT_FOUND", "ALREADY_EXISTS")
_LOCK = threading.Lock()  # one in-memory database, one connection, one request at a time
_NOW: dict[str, Any] = {}  # the request being run and the store method it reached (under _LOCK)


@functools.cache
def stores() -> dict[str, Any]:
    """The tracking and registry stores on an in-memory SQLite database holding the Default
    experiment only (the kit's server stores in SQLite too); sessions roll back, never commit."""
    import sqlalchemy
    from sqlalchemy.pool import StaticPool
    from sqlalchemy.schema import CreateTable

    with warnings.catch_warnings():  # the registry store's mappers use a deprecated loader
        warnings.simplefilter("ignore", sqlalchemy.exc.SADeprecationWarning)
        from mlflow.store.db.base_sql_model import Base
        from mlflow.store.db.utils import _get_managed_session_maker
        from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as Registry
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as Tracking
        sqlalchemy.orm.configure_mappers()
    for out in logging.getLogger("mlflow").handlers:  # MLflow's own; its logger does not propagate
        out.addFilter(_quiet)

    class _NeverCommits(sqlalchemy.orm.Session):
        def commit(self) -> None:
            self.rollback()

        def flush(self, objects: Any = None) -> None:
            if self.new or self.dirty or self.deleted:  # the store checks before it writes; a
                raise _Stop  # write here could only collide with rows, which is server state
            super().flush(objects)

    engine = sqlalchemy.create_engine("sqlite://", poolclass=StaticPool,
                                      connect_args={"check_same_thread": False})
    with engine.begin() as conn:  # tables only: no rows are ever read, indexes do not matter
        for table in Base.metadata.sorted_tables:
            conn.execute(CreateTable(table))
    maker = _get_managed_session_maker(
        sqlalchemy.orm.sessionmaker(bind=engine, class_=_NeverCommits), "sqlite")
    out = {}
    for name, cls in (("_get_tracking_store", Tracking), ("_get_model_registry_store", Registry)):
        store = object.__new__(cls)
        store.engine, store.db_type, store.ManagedSessionMaker = engine, "sqlite", maker
        store.artifact_root_uri = "mlflow-artifacts:/"  # the kit server's --default-artifact-root
        out[name] = store
    with sqlalchemy.orm.Session(engine) as session:  # every server has the Default experiment
        out["_get_tracking_store"]._create_default_experiment(session)
        session.commit()
    return out


class _Stop(BaseException):  # not an Exception: no `except Exception` of a handler catches it
    """The store method the handler called has answered: the rest of the handler is not a check."""


class _NeedsState(BaseException):
    """A source check of _create_model_version reached for the run or logged model it names."""


class _Store:
    """A store as the handler sees it: each call records its method and, with no rows assumed, stops."""

    def __init__(self, getter: str) -> None:
        self.real = stores()[getter]

    def __getattr__(self, method: str) -> Any:
        found = getattr(self.real, method)
        if not callable(found):
            return found

        def call(*args: Any, **kwargs: Any) -> Any:
            _NOW["where"] = f"{type(self.real).__module__.replace('.', '/')}.py::SqlAlchemyStore.{method}"
            answer = found(*args, **kwargs)
            if _NOW["assumed"] is None:
                raise _Stop
            return answer
        return call


@functools.cache
def _handler(name: str) -> Callable[[], Any]:
    """handlers.py's handler `name`, reading the request from `_NOW` and the empty stores."""
    stand_ins = {getter: lambda g=getter: _Store(g)
                 for getter in ("_get_tracking_store", "_get_model_registry_store")}
    return server_model.handler_functions(
        (name,), _get_request_message=lambda *a, **k: _NOW["message"],
        _get_request_json=lambda *a, **k: _NOW["json"],
        Response=mock.MagicMock,  # flask.Response: what the handler answers is not a check
        _get_source_run=mock.Mock(side_effect=_NeedsState),
        _get_source_model=mock.Mock(side_effect=_NeedsState),
        _validate_artifact_uri_scheme=_host_scheme, **stand_ins)[name]


def _host_scheme(uri: str, field_name: str) -> None:
    """handlers.py::_validate_artifact_uri_scheme: which hosts it allows is the server's setting."""
    if host_addressed_uri_targets(uri) is not None:
        raise NotModelled(f"whether the server accepts a {field_name} naming a host (its own "
                          "artifact store, or MLFLOW_ALLOWED_HOST_ADDRESSED_ARTIFACT_SCHEMES)")


_HERE = threading.local()


def _quiet(record: logging.LogRecord) -> bool:
    """MLflow's log lines while a handler runs here (a value it truncates) are the server's, not the
    cell's (a filter: a level change clears every logger's cache)."""
    return not getattr(_HERE, "running", False)


def _call(handler: str, message: Any, request_json: Any = None,
          assumed: dict[str, tuple[str, str]] | None = None) -> str | None:
    """Run the handler on `message`: the store method it reached, None when it skipped its store (it
    answers 200 on its own). Without `assumed` the handler stops at its first store call; with it,
    the rows it names ({"run" or "experiment": (id, lifecycle stage)}) exist and it runs until the
    store writes."""
    with _LOCK:
        _NOW.clear()
        _NOW.update(message=message, json=request_json, assumed=assumed)
        _hold(assumed or {})
        _HERE.running = True
        try:
            with contextlib.suppress(_Stop):
                _handler(handler)()
        finally:
            _HERE.running = False
        return _NOW.get("where")


#: The assumption the database holds now and its rows (under _LOCK): kept for the next request that
#: assumes the same, as a HAR's thousands of requests to one run do (a write costs milliseconds).
_HELD: dict[str, Any] = {"assumed": {}, "rows": []}


def _hold(assumed: dict[str, tuple[str, str]]) -> None:
    """Exactly the assumed experiment and run in the database (Default is always there)."""
    import sqlalchemy
    from mlflow.store.tracking.dbmodels.models import SqlExperiment, SqlRun

    if assumed == _HELD["assumed"]:
        return
    engine = stores()["_get_tracking_store"].engine  # first: its mappers are configured quietly
    rows: list[Any] = []
    experiment_id, stage = assumed.get("experiment", ("0", ""))
    if experiment_id.isdigit() and int(experiment_id) != 0:
        rows.append(SqlExperiment(experiment_id=int(experiment_id), name=f"assumed {experiment_id}",
                                  lifecycle_stage=stage, artifact_location="mlflow-artifacts:/1"))
    if "run" in assumed:
        rows.append(SqlRun(run_uuid=assumed["run"][0], lifecycle_stage=assumed["run"][1],
                           name="assumed", experiment_id=0, status="RUNNING", user_id="assumed",
                           artifact_uri="mlflow-artifacts:/0/r"))
    with sqlalchemy.orm.Session(engine, expire_on_commit=False) as session:
        for row in _HELD["rows"]:
            session.delete(row)
        session.flush()
        session.add_all(rows)
        session.commit()
    _HELD.update(assumed=assumed, rows=rows)


def run(sim: Any, assumed: dict[str, tuple[str, str]] | None = None) -> None:
    """The step for one RPC of SEARCHES or LOOKUPS, or (with the rows it `assumed`) of the
    store table (helpers/preflight_store.py); raises the deciding answer, if any."""
    ep, m = sim.endpoint, sim.message
    regex = MLFLOW_CREATE_MODEL_VERSION_SOURCE_VALIDATION_REGEX  # the server's setting, not ours
    if ep.name == "createModelVersion" and m.source and regex.get():
        raise sim.not_modelled(f"the source pattern set by {regex.name}")
    where = "mlflow/server/handlers.py::" + ep.handler
    try:
        reached = _call(ep.handler, m, sim.request_json, assumed)
    except _NeedsState:
        raise sim.fail(None, "state", where, "The source names a run, logged model or model "
                       "version: whether it exists on this server, and holds the source, decides "
                       "the answer.", severity="info") from None
    except NotModelled as exc:
        raise sim.not_modelled(f"what {ep.handler} does after its schema check ({exc})") from None
    except MlflowException as exc:  # a row missing or taken, or a write the database refuses: state
        if exc.error_code in STATE_CODES or type(exc.__cause__).__module__.startswith("sqlalchemy"):
            if assumed is not None:
                return  # the store table's state rules say what the server holds
            raise sim.fail(None, "state", _NOW.get("where") or where, "Valid as far as the handler "
                           "and the store check before they look rows up (on an empty database: "
                           f"{exc.message!r}): what this server holds decides the answer.",
                           severity="info") from None
        raise _refusal(sim, _NOW.get("where") or where, exc) from None
    except Exception as exc:  # the store's own crash is Flask's 500 page; a stand-in's is ours
        if not any("/mlflow/store/" in f.filename for f in traceback.extract_tb(exc.__traceback__)):
            raise sim.not_modelled(f"{ep.handler} of this MLflow ({type(exc).__name__})") from None
        raise sim.fail(500, "server-error", _NOW.get("where") or where, f"{CRASH}: "
                       f"{type(exc).__name__}: {exc}.", "Change the value the message names.") from None
    if reached is None or assumed is not None:
        return  # the handler skips its store (200), or the state rules decide next
    if ep.name in SEARCHES:
        sim.add("info", "search-ok", reached, f"{reached.rpartition('.')[2]} accepts the filter, "
                "order_by, page token and max_results (run on an empty database): the server "
                "answers 200 with what matches.")
        return
    raise sim.fail(None, "state", reached, "Valid as sent: the handler's and the store's checks "
                   "pass; what this server holds (the model, version, run or experiment it "
                   "names) decides the answer.", severity="info")


def _refusal(sim: Any, where: str, exc: MlflowException) -> Exception:
    """MLflow's refusal as the server's answer, named by the MLflow function that raised it."""
    crashed = exc.__cause__ if isinstance(exc.__cause__, Exception) else None
    raised = crashed if exc.error_code == "INTERNAL_ERROR" and crashed else exc
    frames = [f for f in traceback.extract_tb(raised.__traceback__)[1:] if "/mlflow/" in f.filename
              and not f.filename.endswith("db/utils.py")]  # from the handler on
    if sim.endpoint.store is not None:  # named by the MLflow function the handler or store called
        outer = next((f for f in frames[1:] if "/store/tracking/" not in f.filename), None)
        if outer is not None:
            where = f"mlflow/{outer.filename.rpartition('/mlflow/')[2]}::{outer.name}"
        (id_, fix), message = sim.refusal(exc.message), exc.message
    else:
        frames = [f for f in frames if not f.filename.endswith("server/handlers.py")]
        if frames[1:]:
            inner = frames[-1]
            where += " -> mlflow/" + inner.filename.rpartition("/mlflow/")[2] + "::" + inner.name
        if sim.endpoint.name in SEARCHES:
            id_, message, fix = _describe_search(sim, exc, [f.name for f in frames[1:]])
        else:
            (id_, fix), message = store_refusal(exc.message, "invalid-value"), exc.message
    if raised is not exc:
        message = (f"The store crashes ({type(raised).__name__}) and the server answers "
                   f"500 INTERNAL_ERROR: {message}")
    return sim.fail(exc.get_http_status_code(), id_, where, message, fix, said=exc.message,
                    code=exc.error_code)


#: Search finding ids (stable: other code keys on them) and fixes, by the first key in the name
#: of an MLflow function that raised, else in its message; `_describe_search` writes the others.
_SEARCH_IDS = (
    (("page_token", "PaginationToken"), "search-page-token", "Send back the next_page_token of "
     "the previous answer unchanged, or leave page_token out for the first page."),
    (("order_by", "orderby"), "search-order-by", "Write each order_by item as '<key> ASC' or "
     "'<key> DESC' with a key the message allows (e.g. 'metrics.acc DESC'; quote odd keys with "
     "backticks), each key once."),
    (("_parse_experiment_id", "int()"), "bad-experiment-id", ID_FIX),
    (("filter",), "search-filter", ""),
    (("max_results",), "search-max-results", ""))

_FILTER_FIXES = (
    ("Invalid comparator", "Use one of the comparators the message lists. For patterns use LIKE or ILIKE "
     "('%' matches any text); regular expressions (RLIKE) are not supported here."),
    ("Invalid clause(s)", "Join comparisons with AND only: MLflow's filter has no OR, NOT or parentheses "
     "around clauses. Run one search per alternative, or use IN ('a', 'b') where the key supports it."),
    ("list", "IN / NOT IN take a parenthesized list of quoted strings, e.g. "
     "attributes.run_id IN ('a', 'b'), and only on the keys the message names."),
    ("Expected numeric value", "Compare metrics and numeric attributes with a bare number, "
     "e.g. metrics.acc > 0.9."),
    ("quoted string", "Quote string values: params.lr = '0.01'."),
    ("multiple expression", "Send one expression: clauses joined with AND, no ';'."),
    ("Invalid attribute key", "Use one of the keys the message lists, or prefix the name with "
     "metrics., params. or tags."),
    ("Invalid entity type", "Prefix each key with an entity this search takes (the message "
     "lists them), e.g. metrics.acc or tags.team."),
    ("Invalid identifier token", "This search takes no such prefix: write the key bare (e.g. "
     "name) or with a prefix it supports."),
)


def _describe_search(sim: Any, exc: MlflowException, names: list[str]) -> tuple[str, str, str]:
    """The search finding (id, message, fix) for MLflow's refusal, raised in functions `names`."""
    said = exc.message
    id_ = next((i for keys, i, _ in _SEARCH_IDS for k in keys for n in names if k in n), None) \
        or next((i for keys, i, _ in _SEARCH_IDS for k in keys if k in said), "search-filter")
    if id_ == "search-max-results":
        from mlflow.store import model_registry as r
        from mlflow.store import tracking as t

        # The handler's own bound where its schema has one (traces: 500), else the store's; the
        # client's default is what mlflow/tracking/client.py passes.
        limit = dict(sim.endpoint.field("max_results").limits).get("max", t.SEARCH_MAX_RESULTS_THRESHOLD)
        default = {"searchRegisteredModels": r.SEARCH_REGISTERED_MODEL_MAX_RESULTS_DEFAULT,
                   "searchModelVersions": r.SEARCH_MODEL_VERSION_MAX_RESULTS_DEFAULT,
                   "searchTraces": t.SEARCH_TRACES_DEFAULT_MAX_RESULTS,
                   "searchTracesV3": t.SEARCH_TRACES_DEFAULT_MAX_RESULTS,
                   "searchEvaluationDatasets": t.SEARCH_EVALUATION_DATASETS_MAX_RESULTS,
                   }.get(sim.endpoint.name, t.SEARCH_MAX_RESULTS_DEFAULT)
        return id_, said, (f"Send max_results: a whole number from 1 to {limit} (MLflow's client "
                           f"sends {default}). Left out, the handler passes the proto default, "
                           "which is 0 where the proto has none, though the docs call it optional.")
    if id_ != "search-filter":
        return id_, said, next(fix for _, i, fix in _SEARCH_IDS if i == id_)
    field = "filter" if hasattr(sim.message, "filter") else "filter_string"
    hyphen = _HYPHENATED.search(_unquoted(getattr(sim.message, field)))  # outside quotes
    if hyphen is not None and _quoting_helps(sim, field, *hyphen.groups()):
        entity, key = hyphen.groups()
        return ("search-filter-hyphen",
                f"The filter names {entity}.{key} without quotes: the parser reads '-' as minus, "
                f"so it sees no single identifier. MLflow says: {said}",
                f"Quote the key with backticks: {entity}.`{key}`.")
    return id_, said, next((fix for key, fix in _FILTER_FIXES if key in said), None) or \
        next((fix for key, fix in _FILTER_FIXES for n in names if key in n and n[0] != "<"),
             "Write the filter as <entity>.<key> <comparator> <value>, clauses joined "
             "with AND (e.g. metrics.acc > 0.9 AND params.lr = '0.01').")


def _quoting_helps(sim: Any, field: str, entity: str, key: str) -> bool:
    """Whether, with the key in backticks, the store accepts that clause (it may still refuse
    another one, which the next attempt will show)."""
    quoted = copy.deepcopy(sim.message)
    setattr(quoted, field, getattr(quoted, field).replace(f"{entity}.{key}", f"{entity}.`{key}`", 1))
    try:
        _call(sim.endpoint.handler, quoted)
    except (Exception, _NeedsState) as exc:  # noqa: BLE001 - any failure is an answer too
        error = exc.message if isinstance(exc, MlflowException) else repr(exc)
        return f"'{entity}" not in error and key not in error
    return True


#: `entity.key-with-hyphen`: MLflow's filter parser reads the '-' as minus.
_HYPHENATED = re.compile(r"(?<![\w.`])([A-Za-z_]+)\.([\w.]*-[\w.\-]*\w)")


def _unquoted(text: str) -> str:
    """The filter with its quoted strings and backticked names blanked, positions kept."""
    return re.sub(r"'[^']*'|\"[^\"]*\"|`[^`]*`", lambda m: " " * len(m.group()), text)


def quote_hyphenated(text: str) -> str:
    """The filter with every hyphenated key in backticks: metrics.val-loss -> metrics.`val-loss`
    (what the "search-filter-hyphen" finding's fix says, for a corrected request)."""
    for start, end in reversed([m.span(2) for m in _HYPHENATED.finditer(_unquoted(text))]):
        text = f"{text[:start]}`{text[start:end]}`{text[end:]}"
    return text


STEPS: dict[str, Callable[[Any], None]] = {name: run for name in (*SEARCHES, *LOOKUPS)}
