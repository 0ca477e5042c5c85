"""Preflight's first steps, before any handler runs: the security middleware
(mlflow/server/fastapi_security.py with mlflow/server/security_utils.py's own rules), Flask's
router over the model's route table, and the handler's decorators that answer first.
"""

from __future__ import annotations

import difflib
import re
from typing import TYPE_CHECKING

from mlflow.environment_variables import MLFLOW_ENABLE_AI_GATEWAY, MLFLOW_ENABLE_WORKSPACES
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import RequestRedirect

from helpers import catalog, source
from helpers.preflight_advice import ROUTER, SECURITY, H
from helpers.server_model import PREFIXES, Endpoint

if TYPE_CHECKING:
    from helpers.preflight_pipeline import Pipeline


def security(sim: Pipeline) -> None:
    """fastapi_security.py middleware, with mlflow/server/security_utils.py's own rules."""
    req, sec = sim.req, source.security()
    if req.host is not None and req.path not in sec.HEALTH_ENDPOINTS:
        allowed = sec.get_allowed_hosts_from_env() or sec.get_default_allowed_hosts()
        if not sec.is_allowed_host_header(allowed, req.host):
            raise sim.fail(403, "forbidden-host", SECURITY + "HostValidationMiddleware",
                           f"Host {req.host!r} is not a localhost or private address: the "
                           "server refuses it (DNS-rebinding protection) before routing.",
                           "Use http://127.0.0.1:PORT or http://localhost:PORT, or start the "
                           "server with --allowed-hosts / MLFLOW_SERVER_ALLOWED_HOSTS.",
                           said=sec.INVALID_HOST_MSG)
    origin = req.headers.get("origin")
    if origin is not None and req.path.startswith((sec.API_PATH_PREFIX, sec.AJAX_API_PATH_PREFIX)) \
            and sec.should_block_cors_request(origin, req.method, sec.get_allowed_origins_from_env()):
        raise sim.fail(403, "forbidden-origin", SECURITY + "CORSBlockingMiddleware",
                       f"Origin {origin!r} is not localhost: cross-origin writes are blocked.",
                       "Send no Origin header (scripts don't need one), or start the server "
                       "with --cors-allowed-origins.", said=sec.CORS_BLOCKED_MSG)

def route(sim: Pipeline) -> Endpoint:
    """Flask's router (werkzeug's own, over the model's routes), after the routes outside it."""
    req, path = sim.req, sim.req.path
    if catalog.other_route(path):
        raise sim.not_modelled(f"{path} is served outside handlers.py's route table "
                               "(mlflow/server/__init__.py or a FastAPI router)")
    try:
        ep, _ = catalog.router(path).match(path, req.method)
    except RequestRedirect:
        merged = re.sub("/{2,}", "/", path)
        raise sim.fail(308, "merged-slashes", ROUTER + " merge_slashes",
                       f"The path has '//': the server redirects (308) to {merged}. requests "
                       "follows it (re-sending the body) unless allow_redirects=False.",
                       f"Use {merged}.", severity="warning") from None
    except MethodNotAllowed as exc:
        allowed = sorted(set(exc.valid_methods or ()) - {"HEAD", "OPTIONS"})
        raise sim.fail(405, "method-not-allowed", ROUTER,
                       f"{path} exists but does not take {req.method}: the server answers "
                       "405 with Flask's HTML 'Method Not Allowed' page.",
                       f"Send the request as {' or '.join(allowed)}.") from None
    except NotFound:
        raise sim.fail(404, "route-not-found", ROUTER,
                       f"No route {path}: the server answers 404 with Flask's HTML "
                       "'Not Found' page (not MLflow error JSON).", _route_fix(path)) from None
    if req.method == "OPTIONS":
        if "origin" in req.headers:
            raise sim.not_modelled("a CORS preflight (Starlette's CORSMiddleware)")
        raise sim.fail(204, "options", SECURITY + "SecurityHeadersMiddleware",
                       "OPTIONS on an API path: Flask answers it, the middleware "
                       "turns the 200 into 204 No Content.", severity="info")
    return ep

def decorators(sim: Pipeline, ep: Endpoint) -> None:
    """The handler's decorators that answer before it runs (server configuration)."""
    where = f"{H}{ep.handler} (decorator "
    if "_disable_if_workspaces_disabled" in ep.decorators and not MLFLOW_ENABLE_WORKSPACES.get():
        raise sim.fail(503, "feature-disabled", where + "_disable_if_workspaces_disabled)",
                       f"{ep.name} needs a server started with --enable-workspaces: it answers "
                       "503 with a plain-text page.", "Start the server with --enable-workspaces.")
    if "_disable_if_gateway_disabled" in ep.decorators and not MLFLOW_ENABLE_AI_GATEWAY.get():
        raise sim.fail(501, "feature-disabled", where + "_disable_if_gateway_disabled)",
                       f"{ep.name} needs the AI gateway (MLFLOW_ENABLE_AI_GATEWAY).",
                       "Enable the AI gateway.", code="NOT_IMPLEMENTED")


def _route_fix(path: str) -> str:
    known = [p for e in catalog.endpoints() for p in e.paths]
    close = difflib.get_close_matches(path, known, n=1, cutoff=0.8)
    if close:
        return f"Did you mean {close[0]}?"
    if not path.startswith(PREFIXES):
        return "MLflow's REST paths start with /api/2.0/mlflow/ (e.g. /api/2.0/mlflow/runs/create)."
    return "Check the path against the REST API reference (catalog.endpoints() lists them)."
