"""Check a request someone pasted: the predicted answer, the check inside MLflow that decides it,
the cause, the fix, and a corrected request where the fix is mechanical.

`check("curl ...")` (or raw HTTP, a HAR document, an `HttpRequest`) runs preflight on each
request, applies the mechanical fixes of helpers/request_fixes.py, runs preflight again on the
result, and repeats until nothing more applies. A corrected request is offered only when the
model predicts it succeeds. `replay()` sends the original and the corrected request to the
kit's own local server. Every text this module returns is masked by helpers/redact.py.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from helpers import config, redact
from helpers.errors import KitError
from helpers.request_input import HttpRequest, InputError, read_input

#: How many rounds of fixing: each round fixes one finding, then preflight runs again.
MAX_ROUNDS = 6
#: Text output shows commands up to this many characters (the JSON output has all of them).
SHOWN_LIMIT = 1500
#: Replay sends at most this many originals (each with its corrected request) to the server.
REPLAY_LIMIT = 50


@dataclass(frozen=True)
class Report:
    """One request checked: prediction, cause, fix, and the corrected request when there is one."""

    request: HttpRequest
    verdict: Any  # helpers.preflight_pipeline.Verdict
    cause: str
    fix: str
    check: str
    #: What the user must decide when the fix is not mechanical ("" otherwise).
    decide: str = ""
    #: The corrected request(s) (several when a batch is split), or () when none is offered.
    corrected: tuple[HttpRequest, ...] = ()
    corrected_verdicts: tuple[Any, ...] = ()
    #: The fixes applied, in words, in order.
    applied: tuple[str, ...] = ()
    #: Filled by replay(): the server's answers to the original and to each corrected request.
    answers: tuple[Any, ...] = field(default=(), compare=False)

    @property
    def predicted_status(self) -> int | None:
        return self.verdict.predicted_status

    @property
    def fails(self) -> bool:
        """Predicted to fail, or to store something other than what was sent (a trap)."""
        v = self.verdict
        if v.errors or (v.predicted_status is not None and v.predicted_status >= 300):
            return True
        return any(f.severity == "warning" for f in v.findings)

    def curl(self) -> str | None:
        """The corrected request as one masked curl command line (joined by && when split)."""
        if not self.corrected:
            return None
        return " && ".join(_curl(r) for r in self.corrected)

    def requests_code(self) -> str | None:
        """The corrected request as the equivalent `requests` call(s), masked."""
        if not self.corrected:
            return None
        return "\n".join(_requests_call(r) for r in self.corrected)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object `--format json` writes for this request (masked)."""
        v = self.verdict
        out: dict[str, Any] = {
            "source": self.request.source,
            "method": self.request.method,
            "url": redact.mask_url(self.request.url),
            "predicted_status": v.predicted_status,
            "error_code": v.expected_error_code,
            "message": _mask(v.expected_message),
            "cause": _mask(self.cause),
            "fix": _mask(self.fix),
            "check": self.check,
            "decide": _mask(self.decide) or None,
            "findings": [{"id": f.id, "severity": f.severity, "message": _mask(f.message),
                          "check": f.check} for f in v.findings],
            "applied": list(self.applied),
            "corrected": self.curl(),
            "corrected_requests": self.requests_code(),
            "corrected_predicted_status": [c.predicted_status for c in self.corrected_verdicts]
            or None,
            "notes": list(self.request.notes),
        }
        if self.answers:
            out["replay"] = [_answer_dict(label, ex) for label, ex in self.answers]
        return out

    def to_text(self) -> str:
        """The report as a terminal shows it."""
        v, req = self.verdict, self.request
        lines = [f"{req.method} {redact.mask_url(req.url)}" + (f"   ({req.source})" if req.source else "")]
        lines.append(f"  predicted: {_status_words(v)}")
        if v.expected_message:
            lines.append(f"  MLflow says: {_mask(v.expected_message)}")
        lines.append(f"  decided by: {self.check}")
        lines.append(f"  cause: {_mask(self.cause)}")
        if self.fix:
            lines.append(f"  fix:   {_mask(self.fix)}")
        others = [f for f in v.findings if f.severity in ("error", "warning")][1:]
        for f in others:
            lines.append(f"  also:  {f.severity} {f.id}: {_first_sentence(_mask(f.message))}")
        for note in req.notes:
            lines.append(f"  note:  {note}")
        for f in v.findings:
            if f.id == "server-config":
                lines.append(f"  note:  {_mask(f.message)}")
        if self.decide:
            lines.append(f"  you decide: {_mask(self.decide)}")
        if self.corrected:
            status = ", ".join(_status_words(c) for c in self.corrected_verdicts)
            lines.append(f"  corrected request ({'; '.join(self.applied)}) -> predicted {status}:")
            lines.append(_indent(_clip(self.curl() or ""), 4))
            lines.append("  the same with requests:")
            lines.append(_indent(_clip(self.requests_code() or ""), 4))
        elif self.applied:
            lines.append(f"  no corrected request: after the mechanical fixes "
                         f"({'; '.join(self.applied)}) it still fails, see above.")
        for label, ex in self.answers:
            lines.append(f"  replayed {label}: {_answer_words(ex)}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()

    __repr__ = __str__

    def _repr_html_(self) -> str:
        import html

        return f"<pre style='white-space:pre-wrap'>{html.escape(self.to_text())}</pre>"


class Reports(list):
    """The reports of one input, shown as text (one table first when there are several)."""

    def to_text(self) -> str:
        return render_text(self)

    def to_json(self) -> str:
        return json.dumps([r.to_dict() for r in self], indent=2, ensure_ascii=False)

    def __str__(self) -> str:
        return self.to_text()

    __repr__ = __str__

    def _repr_html_(self) -> str:
        import html

        return f"<pre style='white-space:pre-wrap'>{html.escape(self.to_text())}</pre>"


# ------------------------------------------------------------------------------- checking


def check(source: str | bytes | HttpRequest | Sequence[HttpRequest], *, server: str | None = None,
          replay_url: str | None = None, progress: bool = False) -> Reports:
    """Check every request in `source` (curl command, raw HTTP, HAR text, or HttpRequest(s)).

    `server`: settle server state with preflight's read-only lookups there. `replay_url`: also
    send the original and the corrected request to the kit's local server at that URL (loopback
    only) and keep both answers; state is then settled there too unless `server` says else.
    `progress`: a progress bar on stderr for long inputs.
    """
    if isinstance(source, HttpRequest):
        requests_ = [source]
    elif isinstance(source, (str, bytes)):
        requests_ = read_input(source)
    else:
        requests_ = list(source)
    if replay_url is not None:
        _refuse_remote(replay_url)
        if len(requests_) > REPLAY_LIMIT:
            raise KitError(f"Replay sends at most {REPLAY_LIMIT} requests and the input holds "
                           f"{len(requests_)}: check it without replay, or cut it down.")
        server = server or replay_url  # the requests go there: settle their state there too
    out = Reports()
    cache: dict[tuple, Report] = {}
    bar = _Progress(len(requests_)) if progress else None
    for req in requests_:
        key = (req.method, req.url, req.headers, req.body)
        report = cache.get(key) if replay_url is None else None
        if report is None:
            report = check_request(req, server=server)
            cache[key] = report
        elif report.request.source != req.source:
            report = replace(report, request=req)
        if replay_url is not None:
            report = replay(report, replay_url)
        out.append(report)
        if bar:
            bar.step()
    if bar:
        bar.close()
    return out


def check_request(req: HttpRequest, *, server: str | None = None) -> Report:
    """One request: preflight, then the mechanical fixes, re-checked until none applies."""
    from helpers.request_fixes import CHOICES, apply_one

    verdict = _preflight(req, server)
    deciding = _deciding(verdict)
    cause, fix, check_ = _explained(verdict, deciding)
    current, verdicts, applied = [req], [verdict], []
    for _round in range(MAX_ROUNDS):
        progressed = False
        next_: list[HttpRequest] = []
        for r, v in zip(current, verdicts):
            fixed = apply_one(r, v.findings)
            if fixed is None:
                next_.append(r)
                continue
            progressed = True
            next_ += fixed[0]
            if fixed[1] not in applied:
                applied.append(fixed[1])
        if not progressed:
            break
        current = next_
        verdicts = [_preflight(r, server) for r in current]
    decide = ""
    if deciding is not None and deciding.id in CHOICES and not applied:
        decide = CHOICES[deciding.id]
    ok = all(v.valid for v in verdicts)
    if not applied or not ok:
        if not decide and not ok and not verdict.valid:
            last = _deciding(verdicts[0])
            if last is not None and last.id in CHOICES:
                decide = CHOICES[last.id]
        return Report(req, verdict, cause, fix, check_, decide, applied=tuple(applied))
    return Report(req, verdict, cause, fix, check_, decide, tuple(current), tuple(verdicts),
                  tuple(applied))


def _preflight(req: HttpRequest, server: str | None) -> Any:
    from helpers.diagnose import verdict_of
    from helpers.preflight_pipeline import Finding

    verdict = verdict_of(req, server=server)
    blocked = verdict.errors[0] if verdict.errors else None
    if verdict.predicted_status != 403 or blocked is None or \
            blocked.id not in ("forbidden-host", "forbidden-origin") or \
            config.is_loopback(req.url):
        return verdict
    # A server reachable by that name is started with --allowed-hosts (--cors-allowed-origins),
    # which the model cannot see: predict the rest as such a server answers, and say so.
    note = Finding("info", blocked.check, f"{blocked.message} Predicted below as a server "
                   "started with that host (origin) allowed answers; with MLflow's defaults "
                   "the answer is 403.", blocked.fix, "server-config")
    verdict = verdict_of(req, trusted=True, server=server)
    return replace(verdict, findings=(note, *verdict.findings))


def _deciding(verdict: Any) -> Any:
    """The finding that decides the answer: the first error, else the first warning (a trap),
    else what the answer depends on (state, not modelled)."""
    for severity in ("error", "warning"):
        found = next((f for f in verdict.findings if f.severity == severity), None)
        if found is not None:
            return found
    return next((f for f in verdict.findings if f.id in ("state", "not-modelled")),
                verdict.findings[0] if verdict.findings else None)


def _explained(verdict: Any, f: Any) -> tuple[str, str, str]:
    if f is None:
        return ("Nothing wrong: every check passes and the server stores what was sent.",
                "Nothing to fix.", "every check passed")
    if f.id == "state":
        return (_first_sentence(f.message), "Nothing to fix in the request itself: --server URL "
                "(or --replay) tells whether what it names exists and is active.", f.check)
    if f.severity == "info" and f.id not in ("state", "not-modelled"):
        return (f"Accepted: {_first_sentence(f.message)}", f.fix or "Nothing to fix.", f.check)
    return _first_sentence(f.message), f.fix, f.check


# --------------------------------------------------------------------------------- replay


def _refuse_remote(url: str) -> None:
    if not config.is_loopback(url):
        raise KitError(f"Replay sends requests only to the kit's own local server, not to "
                       f"{redact.mask_url(url)}: start it with `python -m helpers serve`.")


def retarget(req: HttpRequest, base_url: str) -> HttpRequest:
    """The same request aimed at `base_url` (the kit's server): scheme and host replaced, and a
    Host, Origin or Referer that named the old origin follows it."""
    old, new = urlsplit(req.url), urlsplit(base_url)
    url = new._replace(path=old.path, query=old.query, fragment="").geturl()
    old_origin = f"{old.scheme}://{old.netloc}"
    headers = []
    for name, value in req.headers:
        low = name.lower()
        if low == "host":
            continue  # requests sends the right one
        if low in ("origin", "referer") and value.startswith(old_origin):
            value = f"{new.scheme}://{new.netloc}" + value[len(old_origin):]
        headers.append((name, value))
    return replace(req, url=url, headers=tuple(headers))


def replay(report: Report, base_url: str) -> Report:
    """Send the original and each corrected request to the kit's local server (loopback only);
    the report keeps both answers, side by side."""
    from helpers.wire import send

    _refuse_remote(base_url)
    answers = []
    for label, req in [("original", report.request)] + [
            (f"corrected{'' if len(report.corrected) == 1 else f' {i}'}", r)
            for i, r in enumerate(report.corrected, 1)]:
        target = retarget(req, base_url)
        sent = send(target.url, method=target.method, data=target.body,
                    headers={**{k: None for k in ("Accept", "Accept-Encoding", "User-Agent",
                                                  "Connection")},
                             **target.header_dict()}, base_url=base_url)
        answers.append((label, sent))
    return replace(report, answers=tuple(answers))


# ------------------------------------------------------------------------------- rendering


def render_text(reports: Sequence[Report], *, details: int = 20) -> str:
    """All reports as text: one request in full; several as one summary table, then the full
    report of the first request of each failing kind (at most `details`)."""
    if len(reports) == 1:
        return reports[0].to_text()
    if not reports:
        return "No MLflow request (no path under /api/ or /ajax-api/) in the input."
    groups: dict[tuple, list[Report]] = {}
    for r in reports:
        f = _deciding(r.verdict)
        path = urlsplit(r.request.url).path
        key = (r.request.method, path, _status_words(r.verdict), f.id if f else "ok",
               "yes" if r.corrected else ("decide" if r.decide else "-"))
        groups.setdefault(key, []).append(r)
    from helpers.display import table_text

    rows = [[len(g), *key] for key, g in groups.items()]
    table = table_text(rows, ["count", "method", "path", "predicted", "deciding finding",
                              "corrected"])
    failing = sum(r.fails for r in reports)
    lines = [f"{len(reports)} MLflow requests, {failing} predicted to fail or to store something "
             f"else.", table]
    shown = 0
    for g in groups.values():
        if g[0].fails and shown < details:
            lines += ["", g[0].to_text() + (f"\n  (and {len(g) - 1} more like it)" if len(g) > 1
                                            else "")]
            shown += 1
    return "\n".join(lines)


def exit_status(reports: Iterable[Report]) -> int:
    """0 when every request is predicted to succeed without a trap, 1 otherwise."""
    return 1 if any(r.fails for r in reports) else 0


def _status_words(verdict: Any) -> str:
    status = verdict.predicted_status
    if status is None:
        if verdict.valid:
            return "valid; the server's state decides (pass --server URL to look it up)"
        return "cannot tell (not modelled)"
    words = str(status)
    if verdict.expected_error_code:
        words += f" {verdict.expected_error_code}"
    return words


def _first_sentence(text: str) -> str:
    return re.split(r"(?<=[.!?])\s+(?=[A-Z(])", text.strip(), maxsplit=1)[0]


def _mask(text: str | None) -> str:
    return redact.mask_text(redact.mask_body(text)) if text else (text or "")


def _indent(text: str, n: int) -> str:
    return "\n".join(" " * n + line for line in text.splitlines())


def _clip(text: str) -> str:
    if len(text) <= SHOWN_LIMIT:
        return text
    return text[:SHOWN_LIMIT] + f" ... ({len(text) - SHOWN_LIMIT} more characters; " \
        "--format json has all of it)"


_NOT_IN_COMMAND = frozenset({"host", "content-length", "accept-encoding", "connection",
                             "user-agent", "accept"})


def _curl(req: HttpRequest) -> str:
    from helpers.wire import SentRequest, to_curl

    return to_curl(SentRequest(req.method, req.url, req.headers, req.body))


def _requests_call(req: HttpRequest) -> str:
    """`requests.<method>(url, json=..., headers=...)`, masked like everything shown."""
    from helpers.request_fixes import body_json

    headers = [(k, v) for k, v in redact.mask_headers(req.headers)
               if k.lower() not in _NOT_IN_COMMAND]
    payload = body_json(req) if req.body else None
    is_json = (req.header("Content-Type") or "").strip() == "application/json" and \
        isinstance(payload, (dict, list))
    if is_json:
        headers = [(k, v) for k, v in headers if k.lower() != "content-type"]
    method = req.method.lower()
    call = f"requests.{method}(" if method in ("get", "post", "put", "delete", "patch") else \
        f"requests.request({req.method!r}, "
    args = [repr(redact.mask_url(req.url))]
    if is_json:
        args.append("json=" + repr(_masked(payload)))
    elif req.body:
        args.append("data=" + _mask(repr(req.body)))
    if headers:
        args.append("headers=" + repr(dict(headers)))
    return call + ", ".join(args) + ")"


def _masked(value: Any) -> Any:
    """A JSON value with the values of secret-like keys (password, token ...) masked."""
    if isinstance(value, dict):
        return {k: redact.MASK if redact.is_secret_name(str(k)) else _masked(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value


def _answer_dict(label: str, ex: Any) -> dict[str, Any]:
    return {"request": label, "status": ex.status, "error_code": ex.error_code,
            "message": _mask(ex.message)}


def _answer_words(ex: Any) -> str:
    words = f"{ex.status} {ex.reason}".strip()
    if ex.error_code:
        words += f" {ex.error_code}"
    if ex.message:
        words += f": {_mask(ex.message)}"
    return words


class _Progress:
    """A one-line progress bar on stderr, shown only on a terminal and only after one second."""

    def __init__(self, total: int):
        self.total, self.done = total, 0
        self.start = time.perf_counter()
        self.shown = False
        self.tty = sys.stderr.isatty()

    def step(self) -> None:
        self.done += 1
        if not self.tty or self.done % 50 and self.done != self.total:
            return
        if time.perf_counter() - self.start < 1.0 and not self.shown:
            return
        self.shown = True
        width = 30
        filled = int(width * self.done / max(self.total, 1))
        sys.stderr.write(f"\rchecking [{'#' * filled}{'.' * (width - filled)}] "
                         f"{self.done}/{self.total}")
        sys.stderr.flush()

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\n")
            sys.stderr.flush()


__all__ = ["InputError", "Report", "Reports", "check", "check_request", "exit_status",
           "render_text", "replay", "retarget"]
