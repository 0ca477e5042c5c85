"""Look up MLflow REST endpoints in the server model (helpers.server_model) by URL, path, suffix
or RPC name, and route a URL path as the server does (Flask's url map, and the routes outside it).
"""

from __future__ import annotations

import ast
import difflib
import functools
import re
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

from helpers import source
from helpers.errors import UnknownEndpoint
from helpers.server_model import PREFIXES, Endpoint, Field
from helpers.server_model import endpoints as _model_endpoints

__all__ = ["PREFIXES", "Endpoint", "Field",
           "endpoint", "endpoints", "match_path", "other_route", "path_params"]


def endpoints() -> list[Endpoint]:
    """Every endpoint the server routes from MLflow's protos and handlers.py, in its order."""
    return list(_model_endpoints())


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
    candidates = match_path(query) if query.startswith(PREFIXES) else _match_loose(query)
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


@functools.cache
def _routes() -> tuple[tuple[str, Endpoint], ...]:
    return tuple((p, e) for e in _model_endpoints() for p in e.paths)


def _candidates(path: str, routes: Iterable[tuple[str, Any]]
                ) -> Iterator[tuple[re.Pattern[str], Any]]:
    """The routes whose literal start fits `path`, compiled (on first use: a check of one
    request compiles a handful of the 445 routes, not all)."""
    for route, value in routes:
        if path.startswith(re.split(r"[<{]", route, maxsplit=1)[0]):
            yield _compile(route), value


@functools.cache
def _compile(route: str) -> re.Pattern[str]:
    """A Flask (`<x>`, `<path:x>`) or FastAPI (`{x}`, `{x:path}`) route as a regex with one
    named group per parameter."""
    out = []
    for part in re.split(r"(<(?:\w+:)?\w+>|\{\w+(?::\w+)?\})", route):
        if part and part[0] in "<{" and part[-1] in ">}":
            words = part[1:-1].split(":")
            name = words[-1] if part[0] == "<" else words[0]
            out.append(f"(?P<{name}>{'.+' if 'path' in words[:-1] + words[1:] else '[^/]+'})")
        else:
            out.append(re.escape(part))
    return re.compile("".join(out))


def match_path(path: str) -> list[Endpoint]:
    """Endpoints served at exactly this URL path (a route parameter matches one segment)."""
    return list(_match_path(path))


@functools.lru_cache(maxsize=4096)  # a HAR file asks for the same few paths thousands of times
def _match_path(path: str) -> tuple[Endpoint, ...]:
    return tuple(e for pattern, e in _candidates(path, _routes()) if pattern.fullmatch(path))


def path_params(ep: Endpoint, path: str) -> dict[str, str]:
    """The route parameters Flask passes the handler (`artifact_path`, `trace_id` ...)."""
    found = next((m for p, e in _candidates(path, _routes()) if e is ep
                  and (m := p.fullmatch(path))), None)
    return found.groupdict() if found else {}


@functools.cache
def _other_routes() -> tuple[tuple[str, None], ...]:
    """Routes served outside get_endpoints: mlflow/server/__init__.py's `@app.route`s and the
    FastAPI routers (path literals, with their router's prefix), read with `ast`."""
    found: list[str] = []
    for relative in ("server/__init__.py", "server/fastapi_app.py", "server/otel_api.py",
                     "server/job_api.py", "server/gateway_api.py", "server/artifact_router.py",
                     "server/server_info_api.py", "server/mcp_server_api.py",
                     "server/assistant/api.py"):
        try:
            tree = source.tree(relative)
        except OSError:
            continue
        consts = {t.id: n.value.value for n in tree.body if isinstance(n, ast.Assign)
                  for t in n.targets if isinstance(t, ast.Name)
                  and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str)}
        prefixes = []
        for call in ast.walk(tree):
            if isinstance(call, ast.Call) and getattr(call.func, "id", "") == "APIRouter":
                for k in call.keywords:
                    if k.arg == "prefix":
                        prefixes.append(consts.get(getattr(k.value, "id", ""),
                                                   getattr(k.value, "value", "")) or "")
        # A router without its own prefix is included under the module's *_PREFIX constants.
        prefixes = prefixes or [v for k, v in consts.items() if k.endswith("PREFIX")] or [""]
        for call in ast.walk(tree):
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and \
                    call.func.attr in ("route", "get", "post", "put", "patch", "delete",
                                       "api_route", "add_api_route") and call.args:
                arg = call.args[0]
                if isinstance(arg, ast.Call) and arg.args:  # _add_static_prefix("/x")
                    arg = arg.args[0]
                text = getattr(arg, "value", None) if isinstance(arg, ast.Constant) else \
                    consts.get(getattr(arg, "id", ""))
                if isinstance(text, str) and text.startswith("/"):
                    found += [p + text for p in prefixes]
                elif isinstance(text, str) and text == "":
                    found += [p for p in prefixes if p]
    return tuple((p, None) for p in dict.fromkeys(found))


@functools.lru_cache(maxsize=4096)
def other_route(path: str) -> bool:
    """True when a route outside the model (health, static files, FastAPI routers) serves it."""
    return any(p.fullmatch(path) for p, _ in _candidates(path, _other_routes()))
