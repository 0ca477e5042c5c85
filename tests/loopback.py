"""A tiny loopback HTTP server that records the raw requests it receives (for wire tests)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class RecordingServer:
    url: str
    received: list[Received] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.record.received.append(  # type: ignore[attr-defined]
            Received(self.command, self.path, dict(self.headers.items()), body))
        if self.path.startswith("/trickle"):  # one byte every 0.2 s, 100 of them: 20 s in all
            if self.path.startswith("/trickle-head"):  # ... in the headers
                self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            else:  # ... in the body
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "100")
                self.end_headers()
            for _ in range(100):
                try:
                    self.wfile.write(b" ")
                    self.wfile.flush()
                except OSError:  # the client gave up: what a deadline does
                    return
                time.sleep(0.2)
            return
        if self.path.startswith("/html"):
            payload, ctype, status = b"<!doctype html><html><body>Not Found</body></html>", "text/html", 404
        elif self.path.startswith("/empty404"):  # a 404 from something that is not MLflow
            payload, ctype, status = b"", None, 404
        elif self.path.startswith("/empty"):
            payload, ctype, status = b"", None, 204
        elif self.path.startswith("/proxy"):
            payload, ctype, status = b"Bad Gateway: upstream closed the connection", "text/plain", 502
        else:
            payload, ctype, status = b'{"ok": true}', "application/json", 200
        self.send_response(status)
        if ctype:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = _handle

    def log_message(self, *args: object) -> None:
        pass


def start_recording_server() -> tuple[RecordingServer, ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    record = RecordingServer(url=f"http://127.0.0.1:{httpd.server_address[1]}")
    httpd.record = record  # type: ignore[attr-defined]
    # a short poll: shutdown() at teardown waits up to one poll interval (0.5 s by default)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return record, httpd
