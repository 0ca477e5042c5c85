"""Look up MLflow REST endpoints in the server model, by URL, path, suffix or RPC name.

The model itself (routes, fields, the handlers' schemas, limits) is helpers.server_model,
derived at runtime from the installed MLflow; this module only finds endpoints in it.

For tools that document the API (the OpenAPI generator): `endpoints()` lists every route and
method; each `Endpoint` has `http_methods`, `paths`, `request` and `fields`, and each `Field`
has `name`, `json_name`, `type`, `repeated`, `required`/`required_by` (from the handler),
`checks` (the handler's validators, in order), `limits` (e.g. ("max", 50000),
("max_items", 100), ("max_length", 250)), nested `fields`, `enum_values` and `location`
("query" for a GET, else "body").
"""

from __future__ import annotations

import difflib
import re
from urllib.parse import urlsplit

from helpers.errors import UnknownEndpoint
from helpers.server_model import PREFIXES, Endpoint, Field, HandlerRule, match
from helpers.server_model import endpoints as _model_endpoints

__all__ = ["PREFIXES", "Endpoint", "Field", "HandlerRule",
           "endpoint", "endpoints", "match_path"]


def endpoints() -> list[Endpoint]:
    """Every endpoint the server routes from MLflow's protos and handlers.py, in its order."""
    return list(_model_endpoints())


def match_path(path: str) -> list[Endpoint]:
    """Endpoints served at exactly this URL path (a Flask <param> matches one segment)."""
    return match(path)


def endpoint(path_or_name: str, method: str | None = None) -> Endpoint:
    """Find an endpoint by URL, served path, proto path, suffix or RPC name.

    Accepts e.g. "log-metric", "runs/log-metric", "logMetric",
    "/api/2.0/mlflow/runs/log-metric" or "http://127.0.0.1:5000/api/2.0/mlflow/runs/log-metric".
    `method` picks one when several RPCs share a path (e.g. GET and POST /mlflow/traces).
    """
    query = path_or_name.strip()
    if "://" in query:
        query = urlsplit(query).path
    # A served path (with its /api/2.0 prefix) must match exactly, as Flask's router does.
    candidates = match(query) if query.startswith(PREFIXES) else _match_loose(query)
    if method is not None:
        candidates = [e for e in candidates if method.upper() in e.http_methods] or candidates
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        names = [e.name for e in _model_endpoints()] + [p for e in _model_endpoints()
                                                         for p in e.paths]
        close = difflib.get_close_matches(query, names, n=3, cutoff=0.6)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownEndpoint(f"No MLflow REST endpoint matches {path_or_name!r}.{hint}")
    listed = ", ".join(f"{e.name} ({'/'.join(e.http_methods)} {e.path})" for e in candidates[:4])
    listed += ", ..." if len(candidates) > 4 else ""
    raise UnknownEndpoint(f"{path_or_name!r} is ambiguous: {listed}. Give the full path "
                          "or the HTTP method.")


def _match_loose(query: str) -> list[Endpoint]:
    key = query.strip("/").lower()
    flat = re.sub(r"[-_/]", "", key)
    by_name = [e for e in _model_endpoints() if e.name.lower() == flat]
    if by_name:
        return by_name
    return [e for e in _model_endpoints() if any(p.lower().endswith("/" + key) for p in e.paths)]


def __getattr__(name: str) -> object:
    """`HANDLER_RULES`: every MlflowService handler's rules, derived (built on first use)."""
    if name == "HANDLER_RULES":
        return {e.name: e.rule for e in _model_endpoints()
                if e.service == "MlflowService" and e.rule is not None}
    raise AttributeError(name)
