"""Render exchanges and tables as notebook HTML and as deterministic plain text.

The text form leaves out timings and the client's own headers so that strict nbval can compare
it run after run; ports, run ids and timestamps are left to the sanitize file.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
from typing import Any

from helpers import redact, wire
from helpers.wire import Exchange

BODY_LIMIT = 400
# Headers every `requests` call adds; they never decide MLflow's answer, so they are not shown.
_QUIET_HEADERS = frozenset({"host", "user-agent", "accept-encoding", "accept", "connection",
                            "content-length"})
_BADGE_COLOURS = {2: "#1a7f37", 3: "#8250df", 4: "#cf222e", 5: "#9a6700"}


def badge_colour(status: int) -> str:
    """The badge colour for a status class: green 2xx, purple 3xx, red 4xx, amber 5xx."""
    return _BADGE_COLOURS.get(status // 100, "#57606a")


def status_line(exchange: Exchange) -> str:
    """E.g. `400 Bad Request`."""
    return f"{exchange.status} {exchange.reason}".strip()


def request_headers_shown(exchange: Exchange) -> list[tuple[str, str]]:
    """The request headers worth showing: Content-Type (or its absence) and anything unusual."""
    req = exchange.request
    host = req.header("Host")
    shown = [(k, v) for k, v in redact.mask_headers(req.headers)
             if k.lower() not in _QUIET_HEADERS
             or (k.lower() == "host" and host and host != redact.host_of(req.url))]
    if req.header("Content-Type") is None and req.method in ("POST", "PUT", "PATCH"):
        shown.insert(0, ("Content-Type", "(not sent)"))
    return shown


def clip(text: str, limit: int = BODY_LIMIT) -> str:
    return text if len(text) <= limit else text[:limit] + f"… ({len(text) - limit} more characters)"


def response_summary(exchange: Exchange) -> str:
    """The answer in one or two lines: status, error code and message, or the body kind."""
    line = status_line(exchange)
    if exchange.error_code:
        line += f" · {exchange.error_code}"
    if exchange.message:  # the server's words may quote a URL with its credentials: masked
        return f"{line}\n{redact.mask_text(exchange.message)}"
    if exchange.body_kind == "html":
        return f"{line} · an HTML page ({exchange.media_type}), not MLflow's JSON error"
    if exchange.body_kind == "empty":
        return f"{line} · empty body"
    return f"{line}\n{redact.mask_text(clip(exchange.text.strip(), 200))}"


def request_body_shown(exchange: Exchange) -> str:
    """The request body as text, secret-like fields masked (the bytes sent are unchanged)."""
    return redact.mask_body(exchange.request.body.decode("utf-8", errors="replace"))


def exchange_text(exchange: Exchange) -> str:
    """A deterministic plain-text rendering: request line, key headers, body, then the answer."""
    req = exchange.request
    lines = [f">>> {req.method} {req.path}"]
    lines += [f">>> {k}: {v}" for k, v in request_headers_shown(exchange)]
    if req.body:
        lines.append(">>> " + clip(request_body_shown(exchange)))
    lines.append(f"<<< {response_summary(exchange).replace(chr(10), chr(10) + '<<< ')}")
    return "\n".join(lines)


def exchange_html(exchange: Exchange) -> str:
    """An HTML card: a coloured status badge, the request as sent, the response as received."""
    colour = badge_colour(exchange.status)
    req = exchange.request
    headers = "".join(f"{html.escape(k)}: {html.escape(v)}\n"
                      for k, v in request_headers_shown(exchange))
    body = html.escape(clip(request_body_shown(exchange))) if req.body else "(no body)"
    answer = html.escape(response_summary(exchange))
    return (
        '<div class="lab400-exchange" style="border:1px solid #d0d7de;border-radius:6px;'
        'padding:8px;margin:4px 0;font-family:monospace">'
        f'<span class="lab400-status" style="background:{colour};color:white;padding:2px 8px;'
        f'border-radius:10px;font-weight:bold">{html.escape(status_line(exchange))}</span>'
        f'<pre style="margin:6px 0">{html.escape(req.method)} {html.escape(req.path)}\n'
        f"{headers}\n{body}</pre>"
        f'<pre style="margin:6px 0;white-space:pre-wrap">{answer}</pre></div>'
    )


def table_text(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """A fixed-width plain-text table (deterministic; used for nbval-checked outputs)."""
    cells = [[str(h) for h in headers]] + [[_cell(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    out = [" | ".join(c.ljust(w) for c, w in zip(cells[0], widths)).rstrip(),
           "-+-".join("-" * w for w in widths)]
    out += [" | ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells[1:]]
    return "\n".join(out)


def table_html(rows: Iterable[Sequence[Any]], headers: Sequence[str]) -> str:
    """An HTML table with escaped cells."""
    # An empty heading (a corner above row labels) is a plain cell: a header cell needs text
    # (axe-core's empty-table-header rule).
    head = "".join(f"<th style='text-align:left'>{html.escape(str(h))}</th>" if str(h).strip()
                   else "<td></td>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


class Table:
    """A table that shows as HTML in a notebook and as aligned text everywhere else."""

    def __init__(self, rows: Iterable[Sequence[Any]], headers: Sequence[str]):
        self.rows = [list(r) for r in rows]
        self.headers = list(headers)

    def _repr_html_(self) -> str:
        return table_html(self.rows, self.headers)

    def __repr__(self) -> str:
        return table_text(self.rows, self.headers)


def _cell(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return "" if value is None else str(value)


def verdict_text(v: Any) -> str:
    """A preflight Verdict (helpers/preflight_pipeline.py) as plain text: the prediction, then
    each finding with its fix and the check it mirrors."""
    status = "cannot tell" if v.predicted_status is None else v.predicted_status
    lines = [f"{v.method} {v.path} -> predicted {status}"
             + (f" {v.expected_error_code}" if v.expected_error_code else "")]
    if v.expected_message:
        lines.append(f"  server says: {v.expected_message}")
    for f in v.findings:
        lines.append(f"  {f.severity:<7} {f.message}")
        if f.fix:
            lines.append(f"          fix: {f.fix}")
        lines.append(f"          ({f.check})")
    return "\n".join(lines)


_SEVERITY_MARKS = {"ok": "✓", "info": "i", "warning": "!", "error": "✗"}
_SEVERITY_COLOURS = {"ok": "#1a7f37", "info": "#0969da", "warning": "#9a6700", "error": "#cf222e"}


def diagnosis_text(d: Any) -> str:
    """An explain() Diagnosis (helpers/diagnose.py) as plain text."""
    head = f"{_SEVERITY_MARKS.get(d.severity, '?')} {d.family} — {d.status} {d.reason}".rstrip()
    if d.error_code:
        head += f" · {d.error_code}"
    return "\n".join([head, f"  cause: {d.cause}", f"  check: {d.check}", f"  fix:   {d.fix}"])


def diagnosis_html(d: Any) -> str:
    """An explain() Diagnosis as notebook HTML, every text escaped."""
    code = f" · {html.escape(d.error_code)}" if d.error_code else ""
    rows = "".join(
        f"<tr><th style='text-align:left;padding-right:8px;vertical-align:top'>{k}</th>"
        f"<td style='text-align:left'>{html.escape(v)}</td></tr>"
        for k, v in (("cause", d.cause), ("check", d.check), ("fix", d.fix)))
    return (f'<div class="lab400-diagnosis" style="border-left:4px solid '
            f'{_SEVERITY_COLOURS.get(d.severity, "#57606a")};padding:4px 8px;margin:4px 0">'
            f"<b>{html.escape(d.family)}</b> — "
            f"{html.escape(f'{d.status} {d.reason}'.strip())}{code}<table>{rows}</table></div>")


# How an Exchange shows itself (repr, to_text, notebook HTML): wire asks for these by kind.
wire.register_renderer("text", exchange_text)
wire.register_renderer("html", exchange_html)
