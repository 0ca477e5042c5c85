"""What the server says to a search request: the SQL store's own search method, run as the
handler calls it (helpers.store_run), on an empty database.

handlers.py's search handlers (`_search_experiments`, `search_runs_impl`, ...) hand the parsed
request to `SqlAlchemyStore.search_*`, which checks max_results, then parses the filter,
order_by and page token with mlflow/utils/search_utils.py (in its own order), then queries. A
search those checks pass answers 200, whatever the data; a refused one gets MLflow's own message,
with a finding id saying which part failed and how to write it. `STEPS` (RPC name -> step) is
what helpers/preflight_pipeline.py runs after the handler's schema check.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from mlflow.exceptions import MlflowException

from helpers import store_run
from helpers.store_run import REGISTRY as _R
from helpers.store_run import TRACKING as _T

#: handlers.py's argument plumbing, per RPC: (store, method, message -> keyword arguments).
_CALLS: dict[str, store_run.Call] = {
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
    ("Invalid entity type", "Prefix each key with an entity this search takes (the message "
     "lists them), e.g. metrics.acc or tags.team."),
    ("Invalid identifier token", "This search takes no such prefix: write the key bare (e.g. "
     "name) or with a prefix it supports."),
)


def _view_type(m: Any) -> int:
    from mlflow.entities import ViewType

    return ViewType.from_proto(m.run_view_type) if m.HasField("run_view_type") \
        else ViewType.ACTIVE_ONLY


def search(sim: Any) -> None:
    """Run the store's search method as the handler calls it; it passing means 200."""
    where = store_run.run(sim, _CALLS[sim.endpoint.name], _describe)
    sim.add("info", "search-ok", where, f"{where.rpartition('.')[2]} accepts the filter, "
            "order_by, page token and max_results (run on an empty database): the server "
            "answers 200 with what matches.")


def _describe(sim: Any, exc: MlflowException, names: list[str]) -> tuple[str, str, str]:
    said = exc.message
    id_ = next((i for key, i in _IDS for n in names if key in n), None) or \
        next((i for key, i in _IDS if key in said), "search-filter")
    field = "filter" if hasattr(sim.message, "filter") else "filter_string"
    hyphen = _hyphenated(getattr(sim.message, field)) if id_ == "search-filter" else None
    if hyphen is None or not _quoting_helps(sim, field, *hyphen):
        return id_, said, _fix(sim, id_, said, names)
    entity, key = hyphen
    return ("search-filter-hyphen",
            f"The filter names {entity}.{key} without quotes: the parser reads '-' as minus, "
            f"so it sees no single identifier. MLflow says: {said}",
            f"Quote the key with backticks: {entity}.`{key}`.")


def _fix(sim: Any, id_: str, said: str, names: list[str]) -> str:
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
    return next((fix for key, fix in _FIXES if key in said), None) or \
        next((fix for key, fix in _FIXES for n in names if key in n and n[0] != "<"),
             "Write the filter as <entity>.<key> <comparator> <value>, clauses joined "
                "with AND (e.g. metrics.acc > 0.9 AND params.lr = '0.01').")


def _quoting_helps(sim: Any, field: str, entity: str, key: str) -> bool:
    """Whether, with the key in backticks, the store accepts that clause (it may still refuse
    another one, which the next attempt will show)."""
    quoted = type(sim.message)()
    quoted.CopyFrom(sim.message)
    setattr(quoted, field, getattr(sim.message, field).replace(f"{entity}.{key}",
                                                                f"{entity}.`{key}`", 1))
    error = store_run.error_of(_CALLS[sim.endpoint.name], quoted)
    return error is None or (f"'{entity}" not in error and key not in error)


#: `entity.key-with-hyphen`: MLflow's filter parser reads the '-' as minus.
_HYPHENATED = re.compile(r"(?<![\w.`])([A-Za-z_]+)\.([\w.]*-[\w.\-]*\w)")


def _unquoted(text: str) -> str:
    """The filter with its quoted strings and backticked names blanked, positions kept."""
    return re.sub(r"'[^']*'|\"[^\"]*\"|`[^`]*`", lambda m: " " * len(m.group()), text)


def _hyphenated(text: str) -> tuple[str, str] | None:
    """The first `entity.key-with-hyphen` outside quotes and backticks, if any."""
    found = _HYPHENATED.search(_unquoted(text))
    return (found.group(1), found.group(2)) if found else None


def quote_hyphenated(text: str) -> str:
    """The filter with every hyphenated key in backticks: metrics.val-loss -> metrics.`val-loss`
    (what the "search-filter-hyphen" finding's fix says, for a corrected request)."""
    out, last = [], 0
    for found in _HYPHENATED.finditer(_unquoted(text)):
        out += [text[last:found.start(2)], f"`{found.group(2)}`"]
        last = found.end(2)
    return "".join(out) + text[last:]


STEPS: dict[str, Callable[[Any], None]] = {name: search for name in _CALLS}
