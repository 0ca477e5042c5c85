"""Look up MLflow REST endpoints in the server model (helpers.server_model) by URL, path, suffix
or RPC name, and route a URL path as the server does: werkzeug's router (Flask's) over the model's
routes, and the routes outside it (Flask's own, and Starlette's for the FastAPI routers).
"""

from __future__ import annotations

import ast
import difflib
import functools
import re
from urllib.parse import urlsplit

from starlette.routing import compile_path
from werkzeug.routing import Map, MapAdapter, RequestRedirect, Rule

from helpers import source
from helpers.errors import UnknownEndpoint
from helpers.server_model import PREFIXES, Endpoint, endpoints

__all__ = ["endpoint", "endpoints", "match_path", "other_route", "path_params", "router"]


def endpoint(path_or_name: str, method: str | None = None) -> Endpoint:
    """Find an endpoint by URL, served path, proto path, suffix or RPC name: "log-metric",
    "runs/log-metric", "logMetric", "/api/2.0/mlflow/runs/log-metric" or
    "http://127.0.0.1:5000/api/2.0/mlflow/runs/log-metric". `method` picks one when several RPCs
    share a path (e.g. GET and POST /mlflow/traces)."""
    query = path_or_name.strip()
    if "://" in query:
        query = urlsplit(query).path
    # A served path (with its /api/2.0 prefix) must match exactly, as Flask's router does.
    candidates = match_path(query) if query.startswith(PREFIXES) else _match_loose(query)
    if method is not None:
        candidates = [e for e in candidates if method.upper() in e.http_methods] or candidates
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        names = [n for e in endpoints() for n in (e.name, *e.paths)]
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
    return [e for e in endpoints() if e.name.lower() == flat] or \
        [e for e in endpoints() if any(p.lower().endswith("/" + key) for p in e.paths)]


@functools.lru_cache(maxsize=4096)  # a HAR file asks for the same few paths thousands of times
def router(path: str) -> MapAdapter:
    """werkzeug's router as Flask runs it (OPTIONS added to every rule, HEAD to GET ones) over the
    model's routes whose literal start fits `path`, slashes merged (all 381 would cost 0.2 s)."""
    merged = "/" + re.sub("/{2,}", "/", path).lstrip("/")
    return Map([Rule(p, endpoint=e, methods=(*e.http_methods, "OPTIONS"))
                for e in endpoints() for p in e.paths
                if merged.startswith(p.split("<", 1)[0])]).bind("localhost")


def match_path(path: str) -> list[Endpoint]:
    """Endpoints served at this URL path, one per method as Flask picks them."""
    adapter = router(path)
    try:
        return list(dict.fromkeys(adapter.match(path, m)[0] for m in sorted(adapter.allowed_methods(path))))
    except RequestRedirect:  # the path has '//': served only after a redirect
        return []


def path_params(ep: Endpoint, path: str) -> dict[str, str]:
    """The route parameters Flask passes the handler (`artifact_path`, `trace_id` ...)."""
    return router(path).match(path, ep.http_methods[0])[1]


@functools.cache
def _other_routers() -> tuple[MapAdapter, tuple[re.Pattern[str], ...]]:
    """Routes served outside get_endpoints, read with `ast`: mlflow/server/__init__.py's
    `@app.route`s (Flask's) and the path literals of the FastAPI app and every router in
    mlflow/server, with their router's prefix (Starlette's `{x}` syntax)."""
    flask, fastapi, server = [], [], source.mlflow_file("server")
    routers = sorted(p for p in server.rglob("*.py")  # the FastAPI app and its routers
                     if re.search(rb"\b(?:APIRouter|FastAPI)\(", p.read_bytes()))
    for path in (server / "__init__.py", *routers):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found = fastapi if path in routers else flask
        consts = {t.id: n.value.value for n in tree.body if isinstance(n, ast.Assign)
                  for t in n.targets if isinstance(t, ast.Name)
                  and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str)}
        prefixes, texts = [], []
        for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
            if getattr(call.func, "id", "") == "APIRouter":
                prefixes += [consts.get(getattr(k.value, "id", ""), getattr(k.value, "value", ""))
                             or "" for k in call.keywords if k.arg == "prefix"]
            elif getattr(call.func, "attr", "") in ("route", "get", "post", "put", "patch",
                                                    "delete", "api_route", "add_api_route") \
                    and call.args:
                arg = call.args[0]
                if isinstance(arg, ast.Call) and arg.args:  # _add_static_prefix("/x")
                    arg = arg.args[0]
                texts.append(arg.value if isinstance(arg, ast.Constant) else
                             consts.get(getattr(arg, "id", "")))
        # A router without its own prefix is included under the module's *_PREFIX constants.
        prefixes = prefixes or [v for k, v in consts.items() if k.endswith("PREFIX")] or [""]
        found += [p + t for t in texts if isinstance(t, str) and t.startswith("/") for p in prefixes]
        found += [p for t in texts if t == "" for p in prefixes if p]
    return (Map([Rule(p) for p in dict.fromkeys(flask)]).bind("localhost"),
            tuple(compile_path(p)[0] for p in dict.fromkeys(fastapi)))


@functools.lru_cache(maxsize=4096)
def other_route(path: str) -> bool:
    """True when a route outside the model (health, static files, FastAPI routers) serves it."""
    flask, fastapi = _other_routers()
    return any(r.match(path) for r in fastapi) or flask.test(path)
