"""A total deadline for an HTTP request, headers and body included.

`requests` only has a timeout per socket operation: a server that sends one byte a second
never trips it, and a request can last for ever. Here every socket a request reads from
is registered with the request's `Deadline` (through the connection classes of the
`DeadlineAdapter` mounted on the session); when the deadline passes, a timer thread shuts
those sockets down, the blocked read fails at once, and `Deadline.expired` says why.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.poolmanager import ProxyManager

_current = threading.local()


class Deadline:
    """Shuts down the sockets registered with it once `seconds` have passed."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.ends = time.monotonic() + seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def remaining(self) -> float:
        return self.ends - time.monotonic()

    def watch(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            if self.expired:
                _shut(sock)
            else:
                self._sockets.append(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shut(sock)

    def __enter__(self) -> Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()


def _shut(sock: socket.socket) -> None:
    with suppress(OSError):  # already closed
        sock.shutdown(socket.SHUT_RDWR)


@contextmanager
def deadline(seconds: float) -> Iterator[Deadline]:
    """The deadline of the requests made in this thread inside the block."""
    with Deadline(seconds) as watch:
        _current.deadline = watch
        try:
            yield watch
        finally:
            _current.deadline = None


def _register(connection: HTTPConnection) -> None:
    watch: Deadline | None = getattr(_current, "deadline", None)
    if watch is not None:
        watch.watch(connection.sock)


class _WatchedHTTPConnection(HTTPConnection):
    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        _register(self)
        return super().getresponse(*args, **kwargs)


class _WatchedHTTPSConnection(HTTPSConnection):
    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        _register(self)
        return super().getresponse(*args, **kwargs)


class _Pool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _TLSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class DeadlineAdapter(HTTPAdapter):
    """An adapter whose connections register with the thread's current `deadline`."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_POOLS)

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **kwargs)
        if type(manager) is ProxyManager:  # a SOCKS manager keeps its own pools
            manager.pool_classes_by_scheme = dict(_POOLS)
        return manager


_POOLS = {"http": _Pool, "https": _TLSPool}
