"""A loopback HTTP server playing a province's penalty export, for the HTTP source tests.

Replies come from a script (fixed replies in order, then `default`, which may be a function
of the request); every GET is recorded (`seen`) with its path, query and headers.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

JSON = "application/json; charset=utf-8"


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = JSON
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Seen:
    path: str
    query: dict[str, str]
    headers: dict[str, str]


Responder = Callable[[Seen], Reply]


def json_reply(data: object, **kwargs: Any) -> Reply:
    return Reply(body=json.dumps(data, ensure_ascii=False).encode(), **kwargs)


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """The client gave up on a slow reply (the timeout test): expected, not an error."""


class SourceServer:
    """A loopback HTTP server replying from a script: fixed replies in order, then `default`."""

    def __init__(self) -> None:
        self.replies: list[Reply | Responder] = []
        self.default: Responder | None = None
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self.httpd = _QuietServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/penalties"

    def next_reply(self, seen: Seen) -> Reply:
        with self._lock:
            self.seen.append(seen)
            step = self.replies.pop(0) if self.replies else self.default
        assert step is not None, f"unscripted request {seen}"
        return step if isinstance(step, Reply) else step(seen)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                reply = server.next_reply(Seen(parts.path, query, dict(self.headers.items())))
                time.sleep(reply.delay)
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@contextmanager
def running_source() -> Iterator[SourceServer]:
    srv = SourceServer()
    thread = threading.Thread(target=srv.httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.httpd.shutdown()
        srv.httpd.server_close()
        thread.join()
