"""Record every MLflow request a block of code makes, with preflight's verdict on each.

Why a loopback proxy: MLflow's client sends through a private, cached `requests` session that has
no public hook, and a learner's program may be a subprocess, `curl` or plain `requests`. A tiny
HTTP server on 127.0.0.1 in front of the MLflow server sees the real bytes from any of them:
point `MLFLOW_TRACKING_URI` (or a client, or a URL) at `recorder.url`, and every request is
forwarded (same method, path, headers and body bytes; only the connection headers and a Host that
named the proxy are changed), answered with the server's own answer, and recorded as an `Exchange`
exactly as the client sent it, with the time it started; its HAR export carries the Host the
server saw, so it replays like the recording.

    with Recorder() as recorder:
        MlflowClient(tracking_uri=recorder.url).log_metric(run_id, "accuracy", 0.99)
    print(recorder.report())
"""

from __future__ import annotations

import os
import socket
import threading
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import requests

from helpers import config
from helpers.errors import RecorderError
from helpers.preflight_pipeline import Finding, Verdict, preflight
from helpers.redact import mask_url as _safe_url
from helpers.wire import Exchange, SentRequest

LOCALHOST = "127.0.0.1"
#: Headers that describe one connection, not the request (RFC 9110 §7.6.1), plus Expect (the
#: proxy answers `100 Continue` itself): never forwarded.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "proxy-authenticate",
                        "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade",
                        "expect"})
UPSTREAM_TIMEOUT = 120.0


@dataclass(frozen=True)
class Problem:
    """One reason a recorded request needs attention: a preflight finding or a live >= 400."""

    number: int  # the request's position in the recording, from 1
    method: str
    path: str  # without the query string
    kind: str  # "error", "warning" or "status"
    text: str
    fix: str = ""
    check: str = ""

    def describe(self) -> str:
        """One line that allow-list entries are matched against, e.g.
        `POST /api/2.0/mlflow/runs/log-metric warning: timestamp=... looks like seconds ...` or
        `GET /api/2.0/mlflow/experiments/get-by-name -> 404 Not Found RESOURCE_DOES_NOT_EXIST: ...`."""
        if self.kind == "status":
            return f"{self.method} {self.path} -> {self.text}"
        return f"{self.method} {self.path} {self.kind}: {self.text}"

    def allowed_by(self, allow: Iterable[str]) -> bool:
        """True when any allow-list entry is part of `describe()` (plain substring match)."""
        line = self.describe()
        return any(entry and entry in line for entry in allow)


@dataclass(frozen=True)
class Recorded:
    """One request the recorder forwarded: the exchange as it crossed the proxy, and preflight's
    verdict on the request (None if preflight itself failed: see `preflight_error`)."""

    number: int
    exchange: Exchange
    verdict: Verdict | None
    preflight_error: str | None = None
    #: When the recorder started forwarding it (UTC): the HAR entry's startedDateTime.
    started: datetime | None = None
    #: The Host the server got, when the recorder changed it (the client's named the proxy).
    server_host: str | None = None

    def as_forwarded(self) -> Exchange:
        """The exchange with the Host the server saw: what a replay must send."""
        if self.server_host is None:
            return self.exchange
        sent = self.exchange.request
        headers = tuple((k, self.server_host if k.lower() == "host" else v)
                        for k, v in sent.headers)
        return replace(self.exchange, request=replace(sent, headers=headers))

    @property
    def method(self) -> str:
        return self.exchange.request.method

    @property
    def path(self) -> str:
        """The path without the query string (ids in a query would defeat allow-lists)."""
        return urlsplit(self.exchange.request.url).path

    @property
    def status(self) -> int:
        return self.exchange.status

    def problems(self) -> list[Problem]:
        """Preflight's errors and warnings, then the live answer when it is >= 400."""
        out = []
        if self.verdict is not None:
            for f in self.verdict.findings:
                if f.severity in ("error", "warning"):
                    out.append(Problem(self.number, self.method, self.path, f.severity,
                                       f.message, f.fix, f.check))
        elif self.preflight_error:
            out.append(Problem(self.number, self.method, self.path, "error",
                               f"preflight could not read this request: {self.preflight_error}"))
        if self.status >= 400:
            out.append(Problem(self.number, self.method, self.path, "status",
                               _answer_text(self.exchange)))
        return out

    def headline(self) -> str:
        """`[n] METHOD /path -> 200 OK · preflight 200`: the line `report()` starts with."""
        ex = self.exchange
        answer = f"{ex.status} {ex.reason}".strip()
        if ex.error_code:
            answer += f" · {ex.error_code}"
        if self.verdict is None:
            predicted = "preflight failed"
        elif self.verdict.predicted_status is None:
            predicted = "preflight: cannot tell before sending"
        else:
            predicted = f"preflight {self.verdict.predicted_status}"
        return f"[{self.number}] {self.method} {self.path} -> {answer} · {predicted}"


class Recorder:
    """A recording proxy in front of an MLflow server, for one `with` block.

    `upstream` defaults to the kit's server (`MLFLOW_TRACKING_URI` if set, else the one in the
    kit's state file); it is read once, when the recorder is made. With `patch_env=True`,
    `MLFLOW_TRACKING_URI` points at the proxy inside the block (so MLflow's fluent API, the kit's
    `send()` and child processes all go through it) and is restored afterwards.
    """

    def __init__(self, upstream: str | None = None, *, patch_env: bool = False,
                 timeout: float = UPSTREAM_TIMEOUT):
        base = upstream or config.base_url()
        if not base:
            raise RecorderError(
                "The recorder has no MLflow server to forward to: start one with "
                "`python -m helpers serve` (or pass upstream='http://127.0.0.1:PORT').")
        if "://" not in base:
            raise RecorderError(f"upstream {base!r} is not a URL: write it like "
                                "http://127.0.0.1:5000.")
        self.upstream = base.rstrip("/")
        self.patch_env = patch_env
        self.timeout = timeout
        self._records: list[Recorded] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._saved_env: str | None = None
        # Connections whose request is still arriving: `stop()` closes them (a stalled client
        # must not hold the `with` block open), and nothing half-received is ever forwarded.
        self._arriving: set[socket.socket] = set()

    # -- lifecycle

    def start(self) -> Recorder:
        """Bind a free port on 127.0.0.1 and serve in a background thread."""
        if self._server is not None:
            return self
        server = _QuietServer((LOCALHOST, 0), _handler_for(self))
        server.daemon_threads = False  # server_close() waits for requests still in flight
        server.block_on_close = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"mlflow-recorder-{self.port}", daemon=True)
        self._thread.start()
        if self.patch_env:
            self._saved_env = os.environ.get(config.TRACKING_URI_ENV)
            os.environ[config.TRACKING_URI_ENV] = self.url
        return self

    def stop(self) -> None:
        """Stop serving, close the socket and wait for the threads (idempotent)."""
        server, self._server = self._server, None
        if server is None:
            return
        if self.patch_env:
            if self._saved_env is None:
                os.environ.pop(config.TRACKING_URI_ENV, None)
            else:
                os.environ[config.TRACKING_URI_ENV] = self._saved_env
        server.shutdown()
        with self._lock:
            arriving = list(self._arriving)
        for conn in arriving:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Recorder:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RecorderError("The recorder is not running (it stops when its `with` block ends): "
                                "use its url inside `with Recorder() as recorder:`.")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """The proxy's base URL: use it wherever you would use the MLflow server's."""
        return f"http://{LOCALHOST}:{self.port}"

    # -- what was recorded

    @property
    def records(self) -> list[Recorded]:
        """Every forwarded request, in the order the answers were sent."""
        with self._lock:
            return list(self._records)

    @property
    def exchanges(self) -> list[Exchange]:
        return [r.exchange for r in self.records]

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

    def findings(self, allow: Iterable[str] = ()) -> list[Problem]:
        """Every problem in the recording (preflight errors and warnings, live answers >= 400),
        except those an `allow` entry matches (see `Problem.allowed_by`)."""
        allow = tuple(allow)
        return [p for r in self.records for p in r.problems() if not p.allowed_by(allow)]

    def problems(self, allow: Iterable[str] = ()) -> list[Recorded]:
        """The recorded requests that have at least one problem not allowed."""
        allow = tuple(allow)
        return [r for r in self.records if any(not p.allowed_by(allow) for p in r.problems())]

    def report(self, *, allow: Iterable[str] = (), only_problems: bool = False,
               show_checks: bool = True) -> str:
        """A deterministic text report: each request, its live answer, preflight's prediction,
        and every error or warning with its fix (no timings, no dates)."""
        allow = tuple(allow)
        records = self.records
        flagged = self.problems(allow)
        shown = flagged if only_problems else records
        noun = "request" if len(records) == 1 else "requests"
        lines = [f"{len(records)} MLflow {noun} recorded; {len(flagged)} would be refused "
                 "or misread." if flagged else
                 f"{len(records)} MLflow {noun} recorded; none would be refused or misread."]
        for record in shown:
            lines.append(record.headline())
            for problem in record.problems():
                mark = " (allowed)" if problem.allowed_by(allow) else ""
                if problem.kind == "status":
                    lines.append(f"      live     {problem.text}{mark}")
                    continue
                lines.append(f"      {problem.kind:<8} {problem.text}{mark}")
                if problem.fix:
                    lines.append(f"               fix: {problem.fix}")
                if show_checks and problem.check:
                    lines.append(f"               mirrors: {problem.check}")
        return "\n".join(lines)

    def save_har(self, path: str | os.PathLike[str]) -> Any:
        """Write the recording as a HAR 1.2 file (helpers/har.py, secrets masked); the path."""
        from helpers import har

        records = self.records
        return har.save([r.as_forwarded() for r in records], path,
                        started=[r.started for r in records])

    def __repr__(self) -> str:
        state = f"at {self.url}" if self.running else "stopped"
        return (f"<Recorder {state} -> {_safe_url(self.upstream)}, "
                f"{len(self._records)} recorded>")

    # -- called from the proxy's threads

    def _forward(self, method: str, target: str, headers: list[tuple[str, str]],
                 body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
        """Send one request upstream, record it, and return what to answer the client."""
        path = _path_of(target)
        url = self.upstream + path
        outgoing = [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP | {"content-length"}]
        own = {f"{LOCALHOST}:{self.port}", f"localhost:{self.port}"}
        upstream_host = urlsplit(self.upstream).netloc.rsplit("@", 1)[-1]
        # The client addressed the proxy; the server must see its own address (MLflow's
        # DNS-rebinding check reads Host). A Host the client chose on purpose goes through as is.
        outgoing = [(k, upstream_host if k.lower() == "host" and v in own else v)
                    for k, v in outgoing]
        server_host = upstream_host if any(k.lower() == "host" and v in own
                                           for k, v in headers) else None
        verdict, verdict_error = _preflight(method, url, headers, body, self.upstream)
        started_at = datetime.now(timezone.utc)
        started = time.perf_counter()
        try:
            status, reason, answer_headers, raw, decoded = self._send_upstream(
                method, url, outgoing, body)
        except Exception as exc:  # refused, timed out, or a bug here: the client gets a 502
            status, reason = 502, "Bad Gateway"
            raw = decoded = (f"The recorder could not reach the MLflow server at "
                             f"{_safe_url(self.upstream)} ({type(exc).__name__}): is it "
                             "running?").encode()
            answer_headers = [("Content-Type", "text/plain; charset=utf-8")]
        elapsed_ms = (time.perf_counter() - started) * 1000
        sent = SentRequest(method=method, url=url, headers=tuple(headers), body=body)
        exchange = Exchange(request=sent, status=status, reason=reason,
                            headers=tuple(answer_headers), body=decoded, elapsed_ms=elapsed_ms)
        with self._lock:
            self._records.append(Recorded(len(self._records) + 1, exchange, verdict,
                                          verdict_error, started_at, server_host))
        return status, reason, answer_headers, raw

    def _arrival(self, conn: socket.socket, arriving: bool) -> None:
        with self._lock:
            if arriving:
                self._arriving.add(conn)
            else:
                self._arriving.discard(conn)

    def _send_upstream(self, method: str, url: str, headers: list[tuple[str, str]],
                       body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes, bytes]:
        # Request.prepare() (not Session.prepare_request) adds no default headers of its own, so
        # the server gets the client's headers; only Content-Length is recomputed from the body.
        merged: dict[str, str] = {}
        for name, value in headers:  # a repeated header reaches the server joined by ", "
            key = next((k for k in merged if k.lower() == name.lower()), name)
            merged[key] = f"{merged[key]}, {value}" if key in merged else value
        prepared = requests.Request(method, url, headers=merged, data=body or None).prepare()
        if body == b"" and method in ("POST", "PUT", "PATCH"):
            prepared.headers["Content-Length"] = "0"
        with requests.Session() as session:
            session.trust_env = not config.is_loopback(url)  # never a proxy for this machine
            response = session.send(prepared, timeout=self.timeout, allow_redirects=False,
                                    stream=True)
            raw = response.raw.read(decode_content=False)
            response.close()
        dropped = HOP_BY_HOP if method == "HEAD" else HOP_BY_HOP | {"content-length"}
        answer_headers = [(k, v) for k, v in response.raw.headers.items()
                          if k.lower() not in dropped]
        decoded = _decode(raw, response.headers.get("Content-Encoding", ""))
        return response.status_code, response.reason or "", answer_headers, raw, decoded


def _preflight(method: str, url: str, headers: list[tuple[str, str]],
               body: bytes, server: str) -> tuple[Verdict | None, str | None]:
    merged: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        merged[key] = f"{merged[key]}, {value}" if key in merged else value
    try:
        return preflight(method, url, merged, body, server=server), None  # state-aware
    except Exception as exc:  # a bug in preflight must never break the learner's program
        return None, f"{type(exc).__name__}: {exc}"


def _answer_text(exchange: Exchange) -> str:
    line = f"{exchange.status} {exchange.reason}".strip()
    if exchange.error_code:
        line += f" {exchange.error_code}"
    message = exchange.message
    if message:
        line += f": {message}"
    elif exchange.body_kind == "html":
        line += " (an HTML page, not MLflow's JSON error)"
    return line


def _path_of(target: str) -> str:
    """The request target as path + query (an absolute-form target keeps only those)."""
    if "://" in target:
        parts = urlsplit(target)
        return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return target if target.startswith("/") else "/" + target


def _decode(raw: bytes, encoding: str) -> bytes:
    """The body as the client's library will see it (gzip/deflate undone; else unchanged)."""
    coding = encoding.strip().lower()
    try:
        if coding == "gzip":
            return zlib.decompress(raw, 16 + zlib.MAX_WBITS)
        if coding == "deflate":
            try:
                return zlib.decompress(raw)
            except zlib.error:
                return zlib.decompress(raw, -zlib.MAX_WBITS)
    except zlib.error:
        pass
    return raw


class _Incomplete(Exception):
    """The client closed the connection (or stalled past the timeout) before its body ended."""


def _read_exactly(rfile: Any, size: int) -> bytes:
    data = rfile.read(size)
    if len(data) != size:
        raise _Incomplete(f"{len(data)} of {size} bytes")
    return data


def _read_chunked(rfile: Any) -> bytes:
    """A `Transfer-Encoding: chunked` request body, de-chunked (trailers are read and dropped)."""
    out = bytearray()
    while True:
        size_line = rfile.readline(65537)
        if not size_line.endswith(b"\n"):
            raise _Incomplete("the chunk size line")
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise _Incomplete("a malformed chunk size") from None
        if size == 0:
            while True:
                trailer = rfile.readline(65537)
                if trailer in (b"\r\n", b"\n"):
                    return bytes(out)
                if not trailer.endswith(b"\n"):
                    raise _Incomplete("the end of the chunked body")
        out += _read_exactly(rfile, size)
        if rfile.readline(65537) not in (b"\r\n", b"\n"):  # the CRLF after each chunk
            raise _Incomplete("a chunk's closing CRLF")


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hangs up early is its own business; no traceback in the notebook


def _handler_for(recorder: Recorder) -> type[BaseHTTPRequestHandler]:
    class _Proxy(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # for Expect: 100-continue and chunked bodies
        timeout = 60  # a client that opens a connection and says nothing cannot pin a thread

        def setup(self) -> None:
            super().setup()
            recorder._arrival(self.connection, True)

        def finish(self) -> None:
            recorder._arrival(self.connection, False)
            super().finish()

        def _handle(self) -> None:
            headers = list(self.headers.items())
            # Forward only a complete request: a client that announced more bytes than it sent,
            # then hung up, gets nothing forwarded (sent directly, MLflow would store nothing).
            try:
                if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                    body = _read_chunked(self.rfile)
                else:
                    length = int(self.headers.get("Content-Length") or 0)
                    body = _read_exactly(self.rfile, length) if length > 0 else b""
            except (_Incomplete, ValueError, OSError):
                self.close_connection = True
                return
            recorder._arrival(self.connection, False)  # complete: stop() lets it finish
            status, reason, answer_headers, raw = recorder._forward(
                self.command, self.path, headers, body)
            # send_response_only: the server's own Date/Server headers, not http.server's.
            self.send_response_only(status, reason)
            for name, value in answer_headers:
                self.send_header(name, value)
            if self.command != "HEAD":
                self.send_header("Content-Length", str(len(raw)))
            self.send_header("Connection", "close")  # one request per connection: no idle threads
            self.end_headers()
            if self.command != "HEAD" and raw:
                self.wfile.write(raw)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the recording is the log; stderr noise would land in notebook outputs

    return _Proxy


__all__ = ["Finding", "Problem", "Recorded", "Recorder"]
