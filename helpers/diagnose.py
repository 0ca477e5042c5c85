"""Explain an answer from the server: what caused it, which check fired, and how to fix it.

`explain(exchange)` runs the server model on the recorded request (offline preflight) and
reconciles the prediction with the real answer: when they agree, the deciding finding explains
it (a 200 by the first warning) and its id is the `family`. Only what the answer alone can tell
has rules here: server state, HTML pages, proxies, 5xx, bodies that are not MLflow's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from helpers import display
from helpers.display import Table
from helpers.model_table import StateRule
from helpers.preflight_pipeline import Verdict, preflight
from helpers.preflight_store import describe
from helpers.source import security
from helpers.wire import Exchange, SentRequest

if TYPE_CHECKING:
    from helpers.request_input import HttpRequest

_KIND_WORDS = {"html": "an HTML", "text": "a plain-text", "json": "a JSON", "empty": "an empty",
               "mlflow-json": "an MLflow JSON"}
_STORE = "mlflow/store/tracking/sqlalchemy_store.py"
#: Findings that explain a 200 when no warning does: accepted and stored as meant.
_OK_INFOS = ("double-encoded", "deprecated-run-uuid", "coerced-string")


@dataclass(frozen=True)
class Diagnosis:
    """One answer explained. `family` is a stable id (the deciding finding's id for answers the
    model predicted); `check` names the code that decided."""

    family: str
    severity: str  # "ok" | "info" | "warning" | "error"
    cause: str
    check: str
    fix: str
    status: int = 0
    reason: str = ""
    body_kind: str = ""
    error_code: str | None = None
    #: What the model predicted for the request (None: it could not tell offline).
    predicted_status: int | None = None

    def __str__(self) -> str:
        return display.diagnosis_text(self)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        return display.diagnosis_html(self)


def verdict_of(req: SentRequest | HttpRequest, *, trusted: bool = False,
               server: str | None = None) -> Verdict:
    """Preflight on the request exactly as recorded, repeated headers merged as the server sees
    them (joined by ", "). `trusted`: as if the server allowed its Host and Origin (it runs with
    --allowed-hosts or --cors-allowed-origins, which the model cannot see)."""
    url, merged = req.url, {}
    for name, value in req.headers:
        key = name.lower()
        merged[key] = f"{merged[key]}, {value}" if key in merged else value
    if trusted:  # a Host and no Origin that the middleware lets through
        merged = {k: v for k, v in merged.items() if k not in ("origin", "host")}
        url = urlsplit(url)._replace(scheme="http", netloc="localhost").geturl()
    return preflight(req.method, url, merged, req.body, server=server)


def explain(exchange: Exchange) -> Diagnosis:
    """The model's prediction for the recorded request, reconciled with the real answer."""
    verdict = verdict_of(exchange.request)
    status, kind = exchange.status, exchange.body_kind
    if verdict.predicted_status == 403 and status != 403:  # the server allows this Host/Origin
        verdict = verdict_of(exchange.request, trusted=True)
    predicted = verdict.predicted_status
    if predicted == status or predicted is None and 200 <= status < 300:
        found = _from_finding(verdict, exchange)
    elif predicted is None and kind == "mlflow-json" and status >= 400:
        found = _state_answer(verdict, exchange)
    else:
        found = _answer_side(verdict, exchange)
    return Diagnosis(*found, status=status, reason=exchange.reason, body_kind=kind,
                     error_code=exchange.error_code, predicted_status=predicted)


_Found = tuple[str, str, str, str, str]


def _from_finding(verdict: Verdict, exchange: Exchange) -> _Found:
    """The answer is the one the model predicted: the deciding finding explains it."""
    if exchange.status >= 300 and (verdict.errors or verdict.findings):
        f = (verdict.errors or verdict.findings)[0]
        return f.id, "error" if exchange.status >= 400 else "info", f.message, f.check, f.fix
    f = next((f for f in verdict.findings if f.severity == "warning"), None) or \
        next((f for f in verdict.findings if f.id in _OK_INFOS), None)
    if f is not None:  # a warning, else an info that says how the value was stored
        lead = f"{exchange.status}{', but' if f.severity == 'warning' else ''}: "
        return "ok-but-" + f.id, f.severity, lead + f.message, f.check, f.fix
    return ("ok", "ok", "The server accepted the request, and nothing in it looks stored "
            "differently from what was sent.", "every check passed",
            "Nothing to fix; read the data back if it matters (runs/get, metrics/get-history).")


def _state_answer(verdict: Verdict, exchange: Exchange) -> _Found:
    """An MLflow error the model left open: server state, or a step it does not model."""
    message, code = (exchange.message or "").strip(), exchange.error_code
    first = _first_sentence(message)
    if verdict.errors:  # the model saw a problem but not the answer it leads to
        f = verdict.errors[0]
        return f.id, "error", f.message, f.check, f.fix
    if any(f.id == "state" for f in verdict.findings) and \
            (found := _state_rule(verdict, message)) is not None:
        rule, value = found
        return (rule.id, "error", "The request passed every check; the answer comes from the "
                f"server's state, where this did not hold: {describe(rule, value)}.", rule.check, rule.fix)
    if code == "RESOURCE_ALREADY_EXISTS":
        return ("already-exists", "error", f"Something with that name already exists: {first} "
                "(names are unique; the rest of the message is the database's own text).",
                f"the tracking store's unique constraint ({_STORE})",
                "Pick a unique name, or fetch the existing one (experiments/get-by-name).")
    if exchange.status == 404 and code == "RESOURCE_DOES_NOT_EXIST":
        return ("resource-not-found", "error", "The request was valid but names something the "
                f"store does not have: {first}", f"the tracking store's lookup ({_STORE})",
                "Check the id or name: look it up first (e.g. experiments/search, runs/search).")
    if exchange.status >= 500:
        return _answer_side(verdict, exchange)
    open_step = next((f.message for f in verdict.findings if f.id in ("state", "not-modelled")), "")
    return ("mlflow-error", "error", f"MLflow refused the request with {code}: {first} "
            f"({open_step or 'the model has no rule for this answer'})",
            "an MLflow handler or store check", "Read the message: MLflow's messages name the "
            "field and the rule that failed.")


def _state_rule(verdict: Verdict, message: str) -> tuple[StateRule, str | None] | None:
    """The state rule (helpers/model_table.py) whose MLflow message this is, and its value."""
    rules = verdict.endpoint.store.state if verdict.endpoint and verdict.endpoint.store else ()
    for rule in rules:
        pattern = re.sub(r"\\\{(\w+)\\\}", lambda m: f"(?P<{m.group(1)}>.*?)",
                         re.escape(rule.message.rstrip("…")))
        found = re.match(pattern + ("" if rule.message.endswith("…") else "$"), message)
        if found:
            return rule, found.groupdict().get("value")
    return None


def _answer_side(verdict: Verdict, exchange: Exchange) -> _Found:
    """Facts only the answer holds: its body kind, security texts, 5xx, proxies."""
    status, kind, message = exchange.status, exchange.body_kind, exchange.message or ""
    words = _KIND_WORDS.get(kind, kind)
    uvicorn = (exchange.header("server") or "").lower() == "uvicorn"
    where = "mlflow/server/fastapi_security.py::" if uvicorn else \
        "mlflow/server/security.py::init_security_middleware "
    if status == 403 and message == security().INVALID_HOST_MSG:
        return ("forbidden-host", "error", f"The server's security middleware refused Host: "
                f"{exchange.request.header('Host')}; only the hosts it allows get through "
                "(DNS-rebinding protection).", where + "HostValidationMiddleware",
                "Call the server by an address it allows, or start it with --allowed-hosts "
                "(MLFLOW_SERVER_ALLOWED_HOSTS) listing the name you use.")
    if status == 403 and message == security().CORS_BLOCKED_MSG:
        return ("forbidden-origin", "error", f"A {exchange.request.method} carrying Origin: "
                f"{exchange.request.header('Origin')} was blocked by the security middleware.",
                where + "CORSBlockingMiddleware", "Scripts should not send an Origin header; a "
                "browser app's origin must be in --cors-allowed-origins.")
    if status == 500:
        return ("server-error", "error", "An unhandled exception in the server"
                + (f": {_first_sentence(message)}" if kind == "mlflow-json" else
                   " (Flask's HTML 500 page); the request itself may or may not be at fault."),
                "the handler or its store call", "A 500 means the server failed, not that the "
                "request was fine: read the server log, and retry only a sound request.")
    if status in (502, 503, 504) and kind == "mlflow-json":
        return ("mlflow-unavailable", "error", f"MLflow itself answered {status} "
                f"{exchange.error_code}: {_first_sentence(message)} The server is up but cannot "
                "serve the request now (its database or disk, for example).",
                "an MLflow store error (catch_mlflow_exception)", "Read the message and the "
                "server log; fix the server's resources, then retry.")
    if status in (502, 503, 504):
        return ("gateway-error", "error", f"A {status} with {words} body came from something "
                "between you and MLflow (a proxy, gateway or load balancer): MLflow's own "
                "answer, if any, never reached you.", "a proxy or gateway in front of MLflow",
                "Check that the MLflow server is up and that the proxy points at it; retry later.")
    if 400 <= status < 500 and kind != "mlflow-json":
        return ("not-mlflow", "error", f"This {status} has {words} body, not MLflow's JSON "
                "error, and not the answer the server model predicts for this request "
                f"({verdict.predicted_status or 'none'}): something else (a proxy, a gateway, "
                "another server on that port) answered.", "not MLflow: the component in front "
                "of it, or another server", "Check the URL and port, then the proxy's "
                "configuration and logs; MLflow may never have seen the request.")
    if kind == "mlflow-json" and status >= 400 and verdict.predicted_status is not None:
        f = (verdict.errors or verdict.warnings or (None,))[0]
        return ("model-disagrees", "error", f"MLflow answered {status} {exchange.error_code}: "
                f"{_first_sentence(message)} The model predicted {verdict.predicted_status}"
                + (f" ({f.message})" if f else "") + ": this server differs from the installed "
                "MLflow, or runs with other settings.", "the server model (helpers/server_model.py)",
                "Read MLflow's message; check the server's version and settings.")
    return ("unrecognised", "error" if status >= 400 else "info",
            f"Not recognised: the server model predicts {verdict.predicted_status or 'nothing'} "
            f"for this request, and no answer-side rule matches a {status} with {words} body"
            + (f" and error_code {exchange.error_code}" if exchange.error_code else "") + ".",
            "unknown", "Read the raw answer above (status, headers, body); if it comes from "
            "MLflow, its message names the check.")


def field_guide(exchanges: Iterable[Exchange], *, one_per_family: bool = True) -> Table:
    """A table (status, body kind, error_code, family, cause, fix) explaining live exchanges in
    their order; with `one_per_family`, the first exchange of each family stands for the rest."""
    rows: dict[Any, list[Any]] = {}
    for i, d in enumerate(map(explain, exchanges)):
        rows.setdefault(d.family if one_per_family else i,
                        [d.status, d.body_kind, d.error_code or "—", d.family, d.cause, d.fix])
    return Table(list(rows.values()), ("status", "body kind", "error_code", "family", "cause", "fix"))


def _first_sentence(message: str) -> str:
    first = message.split("\n", 1)[0]
    found = re.match(r"^(.+?[.!?])(\s|$)", first)
    return found.group(1) if found else first
