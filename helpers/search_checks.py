"""What the server's SQL stores say to a search request, found by running the stores' own search
methods, on an empty database, with the arguments the handlers pass them.

handlers.py's search handlers (`_search_experiments`, `search_runs_impl`, ...) hand the parsed
request to `SqlAlchemyStore.search_*` (mlflow/store/tracking/sqlalchemy_store.py and
mlflow/store/model_registry/sqlalchemy_store.py), which check max_results, parse the filter,
order_by and page token with mlflow/utils/search_utils.py, then query. Calling those methods
on an in-memory SQLite database that has MLflow's tables and no rows runs every one of those
checks in the server's order, without re-implementing MLflow's grammar; a search that passes
them answers 200 whatever the data. `STEPS` (RPC name -> step) is what helpers.preflight runs
after the handler's schema check.
"""

from __future__ import annotations

import functools
import re
import traceback
from collections.abc import Callable
from typing import Any

from mlflow.exceptions import MlflowException

#: handlers.py's argument plumbing, per RPC: (store, method, message -> keyword arguments).
_T, _R = "tracking", "registry"
_CALLS: dict[str, tuple[str, str, Callable[[Any], dict[str, Any]]]] = {
    # handlers.py::_search_experiments
    "searchExperiments": (_T, "search_experiments", lambda m: dict(
        view_type=m.view_type, max_results=m.max_results, order_by=m.order_by,
        filter_string=m.filter, page_token=m.page_token or None)),
    # handlers.py::search_runs_impl (run_view_type ACTIVE_ONLY unless sent)
    "searchRuns": (_T, "search_runs", lambda m: dict(
        experiment_ids=list(m.experiment_ids), filter_string=m.filter,
        run_view_type=_view_type(m), max_results=m.max_results, order_by=m.order_by,
        page_token=m.page_token or None)),
    # handlers.py::_deprecated_search_traces_v2
    "searchTraces": (_T, "search_traces", lambda m: dict(
        experiment_ids=m.experiment_ids, filter_string=m.filter, max_results=m.max_results,
        order_by=m.order_by, page_token=m.page_token or None)),
    # handlers.py::_search_traces_v3: experiment locations only
    "searchTracesV3": (_T, "search_traces", lambda m: dict(
        locations=[loc.mlflow_experiment.experiment_id for loc in m.locations
                   if loc.HasField("mlflow_experiment")],
        filter_string=m.filter, max_results=m.max_results, order_by=m.order_by,
        page_token=m.page_token or None)),
    # handlers.py::_search_logged_models
    "searchLoggedModels": (_T, "search_logged_models", lambda m: dict(
        experiment_ids=list(m.experiment_ids), filter_string=m.filter or None,
        datasets=[{"dataset_name": d.dataset_name, "dataset_digest": d.dataset_digest or None}
                  for d in m.datasets] or None,
        max_results=m.max_results or None,
        order_by=[{"field_name": o.field_name, "ascending": o.ascending,
                   "dataset_name": o.dataset_name or None,
                   "dataset_digest": o.dataset_digest or None} for o in m.order_by] or None,
        page_token=m.page_token or None)),
    # handlers.py::_search_evaluation_datasets_handler
    "searchEvaluationDatasets": (_T, "search_datasets", lambda m: dict(
        experiment_ids=list(m.experiment_ids) or None, filter_string=m.filter_string or None,
        max_results=m.max_results or None, order_by=list(m.order_by) or None,
        page_token=m.page_token or None)),
    # handlers.py::_search_registered_models
    "searchRegisteredModels": (_R, "search_registered_models", lambda m: dict(
        filter_string=m.filter, max_results=m.max_results, order_by=m.order_by,
        page_token=m.page_token or None)),
    # handlers.py::search_model_versions_impl
    "searchModelVersions": (_R, "search_model_versions", lambda m: dict(
        filter_string=m.filter, max_results=m.max_results, order_by=m.order_by,
        page_token=m.page_token or None)),
}

#: Finding ids (stable: other code keys on them), by the MLflow function that raised.
_IDS = (("page_token", "search-page-token"), ("PaginationToken", "search-page-token"),
        ("order_by", "search-order-by"), ("orderby", "search-order-by"),
        ("_parse_experiment_id", "bad-experiment-id"), ("int()", "bad-experiment-id"),
        ("filter", "search-filter"),
        ("max_results", "search-max-results"))

_FIXES = (
    ("Invalid comparator", "Use one of the comparators the message lists. For patterns use "
     "LIKE or ILIKE ('%' matches any text); regular expressions (RLIKE) are not supported here."),
    ("Invalid clause(s)", "Join comparisons with AND only: MLflow's filter has no OR, NOT or "
     "parentheses around clauses. Run one search per alternative, or use IN ('a', 'b') where "
     "the key supports it."),
    ("list", "IN / NOT IN take a parenthesized list of quoted strings, e.g. "
     "attributes.run_id IN ('a', 'b'), and only on the keys the message names."),
    ("Expected numeric value", "Compare metrics and numeric attributes with a bare number, "
     "e.g. metrics.acc > 0.9."),
    ("quoted string", "Quote string values: params.lr = '0.01'."),
    ("multiple expression", "Send one expression: clauses joined with AND, no ';'."),
    ("Invalid attribute key", "Use one of the keys the message lists, or prefix the name with "
     "metrics., params. or tags."),
)


def _view_type(m: Any) -> int:
    from mlflow.entities import ViewType

    return ViewType.from_proto(m.run_view_type) if m.HasField("run_view_type") \
        else ViewType.ACTIVE_ONLY


@functools.cache
def _stores() -> dict[str, Any]:
    """The server's SQL store classes, without running their constructors (no migrations, no
    server database): bound to an in-memory SQLite database holding MLflow's tables, empty."""
    import sqlalchemy
    from mlflow.store.db.base_sql_model import Base
    from mlflow.store.db.utils import _get_managed_session_maker
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as Registry
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as Tracking
    from sqlalchemy.pool import StaticPool
    from sqlalchemy.schema import CreateTable

    engine = sqlalchemy.create_engine("sqlite://", poolclass=StaticPool,
                                      connect_args={"check_same_thread": False})
    with engine.begin() as conn:  # tables only: the searches read them, indexes do not matter
        for table in Base.metadata.sorted_tables:
            conn.execute(CreateTable(table))
    out = {}
    for name, cls in ((_T, Tracking), (_R, Registry)):
        store = object.__new__(cls)
        store.engine, store.db_type = engine, "sqlite"  # the kit's server stores in SQLite
        store.ManagedSessionMaker = _get_managed_session_maker(
            sqlalchemy.orm.sessionmaker(bind=engine), "sqlite")
        out[name] = store
    return out


def search(sim: Any) -> None:
    """Run the store's search method as the handler calls it; an MlflowException is the answer."""
    from helpers.preflight import CRASH

    store_name, method, args = _CALLS[sim.endpoint.name]
    store = _stores()[store_name]
    where = f"{type(store).__module__.replace('.', '/')}.py::SqlAlchemyStore.{method}"
    try:
        getattr(store, method)(**args(sim.message))
    except MlflowException as exc:
        raise _finding(sim, exc, where) from None
    except Exception as exc:  # outside the store's session: Flask's 500 page
        raise sim.fail(500, "server-error", where, f"{CRASH}: {type(exc).__name__}: {exc}.",
                       "Check the search's arguments.") from None
    sim.add("info", "search-ok", where, f"{where.rpartition('::')[2]} accepts the filter, "
            "order_by, page token and max_results (run on an empty database): the server "
            "answers 200 with what matches.")


def _finding(sim: Any, exc: MlflowException, where: str) -> Any:
    crashed = exc.error_code == "INTERNAL_ERROR" and isinstance(exc.__cause__, Exception)
    raised = exc.__cause__ if crashed else exc  # the store's session wraps what crashed
    frames = [f for f in traceback.extract_tb(raised.__traceback__) if "/mlflow/" in f.filename
              and not f.filename.endswith("db/utils.py")]
    names = [f.name for f in frames[1:]]  # below the search method itself
    said = exc.message
    id_ = next((i for key, i in _IDS for n in names if key in n), None) or \
        next((i for key, i in _IDS if key in said), "search-filter")
    if frames[1:]:
        inner = frames[-1]
        where += " -> mlflow/" + inner.filename.rpartition("/mlflow/")[2] + "::" + inner.name
    fix = _fix(sim, id_, said)
    message = said
    hyphen = _hyphenated(str(getattr(sim.message, "filter", "") or "")) \
        if id_ == "search-filter" else None
    if hyphen is not None:
        id_ = "search-filter-hyphen"
        entity, key = hyphen
        message = (f"The filter names {entity}.{key} without quotes: the parser reads '-' as "
                   f"minus, so it sees no single identifier. MLflow says: {said}")
        fix = f"Quote the key with backticks: {entity}.`{key}`."
    elif crashed:
        message = (f"The store crashes on this request ({type(raised).__name__}), and the "
                   f"server answers 500 INTERNAL_ERROR: {said}")
    return sim.fail(exc.get_http_status_code(), id_, where, message, fix, said=said,
                    code=exc.error_code)


def _fix(sim: Any, id_: str, said: str) -> str:
    if id_ == "search-max-results":
        from mlflow.store import model_registry as r
        from mlflow.store import tracking as t

        limit, default = {
            "searchRegisteredModels": (r.SEARCH_REGISTERED_MODEL_MAX_RESULTS_THRESHOLD,
                                       r.SEARCH_REGISTERED_MODEL_MAX_RESULTS_DEFAULT),
            "searchModelVersions": (r.SEARCH_MODEL_VERSION_MAX_RESULTS_THRESHOLD,
                                    r.SEARCH_MODEL_VERSION_MAX_RESULTS_DEFAULT),
        }.get(sim.endpoint.name, (t.SEARCH_MAX_RESULTS_THRESHOLD, t.SEARCH_MAX_RESULTS_DEFAULT))
        return (f"Send max_results: a whole number from 1 to {limit} (MLflow's client sends "
                f"{default}). Left out, the handler passes the proto "
                "default, which is 0 where the proto has none, though the docs call it "
                "optional.")
    if id_ == "search-page-token":
        return ("Send back the next_page_token of the previous answer unchanged, or leave "
                "page_token out for the first page.")
    if id_ == "search-order-by":
        return ("Write each order_by item as '<key> ASC' or '<key> DESC' with a key the "
                "message allows (e.g. 'metrics.acc DESC'; quote odd keys with backticks), "
                "each key once.")
    if id_ == "bad-experiment-id":
        return ("Experiment ids are the whole numbers the server gave, sent as strings "
                "(e.g. \"0\"); experiments/get-by-name looks one up by name.")
    return next((fix for key, fix in _FIXES if key in said),
                "Write the filter as <entity>.<key> <comparator> <value>, clauses joined "
                "with AND (e.g. metrics.acc > 0.9 AND params.lr = '0.01').")


def _hyphenated(text: str) -> tuple[str, str] | None:
    """The first `entity.key-with-hyphen` outside quotes and backticks, if any."""
    bare = re.sub(r"'[^']*'|\"[^\"]*\"|`[^`]*`", " ", text)
    found = re.search(r"(?<![\w.])([A-Za-z_]+)\.([\w.]*-[\w.\-]*\w)", bare)
    return (found.group(1), found.group(2)) if found else None


STEPS: dict[str, Callable[[Any], None]] = {name: search for name in _CALLS}
