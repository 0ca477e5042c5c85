"""One overall deadline for one HTTP exchange made with `requests` (used by helpers/wire.py).

`requests`' timeout bounds each read of the socket, not the exchange: a server that trickles one
byte at a time, in its status line, its headers or its body, keeps the caller waiting without
limit. A `Deadline` cuts the connection when the time is up (a timer shuts the socket down, which
wakes a blocked read), and reads the body itself, stopping at the deadline.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool


class Late(Exception):
    """The answer was still arriving at the deadline."""


class Deadline:
    """`seconds` from now: connections made through `mount`ed sessions are cut then."""

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds
        self.fired = False  # the timer cut a connection: whatever error follows means "too late"
        self._timers: list[threading.Timer] = []

    def left(self) -> float:
        return self.at - time.monotonic()

    def mount(self, session: requests.Session) -> None:
        """Make every connection `session` opens (directly, not through a proxy) watched."""
        watch = self._watch

        class Watched(HTTPConnection):
            def connect(self) -> None:
                super().connect()
                watch(self.sock)

        class WatchedTLS(HTTPSConnection):
            def connect(self) -> None:
                super().connect()
                watch(self.sock)

        class Pool(HTTPConnectionPool):
            ConnectionCls = Watched

        class TLSPool(HTTPSConnectionPool):
            ConnectionCls = WatchedTLS

        adapter = HTTPAdapter()
        adapter.poolmanager.pool_classes_by_scheme = {"http": Pool, "https": TLSPool}
        session.mount("http://", adapter)
        session.mount("https://", adapter)

    def read(self, response: requests.Response) -> bytes:
        """The whole body of a `stream=True` response, read by the deadline: before each read the
        socket's timeout is the time left, and each read is one read (urllib3's read1)."""
        raw = response.raw
        chunks: list[bytes] = []
        while True:
            left = self.left()
            if left <= 0:
                raise Late
            sock = getattr(getattr(raw, "connection", None), "sock", None)
            if sock is not None:
                sock.settimeout(left)
            chunk = raw.read1(64 * 1024, decode_content=True)
            if not chunk:  # the end of the body (a short one raises urllib3's ProtocolError)
                return b"".join(chunks)
            chunks.append(chunk)

    def cancel(self) -> None:
        """The exchange is over: no connection is cut after this."""
        for timer in self._timers:
            timer.cancel()

    def _watch(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        timer = threading.Timer(max(self.left(), 0.0), self._cut, (sock,))
        timer.daemon = True
        timer.start()
        self._timers.append(timer)

    def _cut(self, sock: socket.socket) -> None:
        self.fired = True
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


__all__ = ["Deadline", "Late"]
