"""A loopback HTTP server playing an SMS provider, for tests/test_sms_*.py.

Replies come from a script (fixed replies in order, then `default`); every request is
recorded as it arrived on the wire (method, path, raw query, headers, body bytes), so a
test can check the signature over exactly what the provider would see, and that a
message refused before sending left the server with nothing.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

NOW = datetime(2026, 3, 2, 9, 30, 5, tzinfo=timezone(timedelta(hours=8)))
"""The fixed clock of the SMS tests: 2026-03-02 09:30:05 Beijing (01:30:05 UTC)."""
PHONE = "13812345678"


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    reset: bool = False
    """Read the request, then close the connection without answering."""


@dataclass
class Seen:
    method: str
    path: str
    raw_query: str
    headers: dict[str, str]
    """Lower-cased names."""
    body: bytes

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(self.raw_query, keep_blank_values=True))

    def json(self) -> Any:
        return json.loads(self.body)


Responder = Callable[[Seen], Reply]


def json_reply(data: object, status: int = 200, **kwargs: Any) -> Reply:
    headers = {"Content-Type": "application/json; charset=utf-8"}
    return Reply(status, json.dumps(data, ensure_ascii=False).encode(), headers, **kwargs)


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """The client gave up on a slow reply (the timeout tests): expected."""


class SmsServer:
    def __init__(self) -> None:
        self.replies: list[Reply | Responder] = []
        self.default: Reply | Responder | None = None
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self.httpd = _QuietServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/"

    def reply(self, *replies: Reply | Responder) -> SmsServer:
        self.replies.extend(replies)
        return self

    def _next(self, seen: Seen) -> Reply:
        with self._lock:
            self.seen.append(seen)
            step = self.replies.pop(0) if self.replies else self.default
        assert step is not None, f"unscripted request {seen.method} {seen.path}"
        return step(seen) if callable(step) else step

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                reply = server._next(Seen("POST", parts.path, parts.query, headers, body))
                if reply.reset:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                time.sleep(reply.delay)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        return Handler


@contextmanager
def running_server() -> Iterator[SmsServer]:
    server = SmsServer()
    thread = threading.Thread(target=server.httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()


def refused_url() -> str:
    """A loopback URL where nothing listens (the port was just freed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@contextmanager
def unanswered_url() -> Iterator[str]:
    """A loopback URL whose accept queue is full: connecting times out (nothing is sent)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = [socket.socket() for _ in range(3)]
    try:
        for filler in fillers:
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
        time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/"
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


KEY = "rec-1/notice/1/sms/x"
"""An outbox key as the channels see it."""
MIDNIGHT = (14 * 60 + 29) * 60 + 55.0
"""Seconds from NOW (09:30:05 Beijing) to midnight: a daily limit's retry_after."""
