"""Hostile HTTP sources (issue 15, items 11-12): a total deadline per request, a maximum
body size, and credentials that never follow a redirect to another origin."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from pipeline.config import SourceSettings
from pipeline.errors import SourceError, SourceUnavailable
from pipeline.sync.sources.http import HttpFetch, fetch_snapshot
from tests.source_server import Reply, SourceServer, json_reply, running_source
from tests.test_http_source import RECORDS, SECRET, Sleeps


def source(url: str, **settings: Any) -> SourceSettings:
    return SourceSettings(name="province", kind="http", url=url, **{"retries": 0, **settings})


def rows(fetch: HttpFetch) -> int:
    assert fetch.snapshot is not None
    with fetch.snapshot as snapshot:
        return sum(1 for _ in snapshot)


@contextmanager
def trickling(head: bytes, drip: bytes, every: float, for_seconds: float) -> Iterator[str]:
    """A server that sends `head` at once, then `drip` every `every` s for `for_seconds`
    (then hangs up): a body, or headers, that never finish in time."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(65536)
                try:
                    conn.sendall(head)
                    end = time.monotonic() + for_seconds
                    while time.monotonic() < end and not stop.is_set():
                        conn.sendall(drip)
                        time.sleep(every)
                except OSError:
                    pass  # the client gave up: what the test wants

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/penalties"
    finally:
        stop.set()
        thread.join()
        listener.close()


# --------------------------------------------------------------------------- item 11


def test_a_body_trickling_for_ever_is_cut_off_at_the_deadline(
    session: requests.Session, tmp_path: Path
) -> None:
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\n"
        b"Content-Length: 2000000000\r\n\r\nCF_WSH,CF_JDRQ\r\n"
    )
    with trickling(head, b"x", every=0.05, for_seconds=8) as url:
        started = time.monotonic()
        with pytest.raises(SourceUnavailable, match=r"within the deadline of 1 s"):
            settings = source(url, timeout=5, deadline=1, max_body_mb=4096)
            fetch_snapshot(session, settings, None, tmp_path)
        assert time.monotonic() - started < 3
    assert list(tmp_path.iterdir()) == []  # the partial download is gone


def test_headers_trickling_for_ever_are_cut_off_at_the_deadline(
    session: requests.Session, tmp_path: Path
) -> None:
    with trickling(b"HTTP/1.1 200 OK\r\nX-Slow: ", b"a", every=0.05, for_seconds=8) as url:
        started = time.monotonic()
        with pytest.raises(SourceUnavailable, match="deadline"):
            fetch_snapshot(session, source(url, timeout=5, deadline=1), None, tmp_path)
        assert time.monotonic() - started < 3


def test_each_try_has_its_own_deadline_and_is_retried(
    session: requests.Session, tmp_path: Path
) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"
    with trickling(head, b"[", every=0.05, for_seconds=8) as url:
        sleeps = Sleeps()
        settings = source(url, timeout=5, deadline=0.5, retries=1, backoff=0.1)
        with pytest.raises(SourceUnavailable, match="failed 2 times; last: no complete answer"):
            fetch_snapshot(session, settings, None, tmp_path, sleep=sleeps)
        assert sleeps == [0.1]


def test_a_body_declared_larger_than_max_body_mb_is_refused_unread(
    session: requests.Session, tmp_path: Path
) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nContent-Length: 3145728\r\n\r\n"
    with trickling(head, b"x" * 1024, every=0.01, for_seconds=8) as url:
        started = time.monotonic()
        with pytest.raises(SourceError, match=r"3 MiB by its Content-Length, over max_body_mb"):
            fetch_snapshot(session, source(url, max_body_mb=1), None, tmp_path)
        assert time.monotonic() - started < 2


def test_a_body_growing_past_max_body_mb_is_refused_while_streaming(
    session: requests.Session, tmp_path: Path
) -> None:
    head = b"HTTP/1.0 200 OK\r\nContent-Type: text/csv\r\n\r\nCF_WSH\r\n"  # no length given
    with trickling(head, b"x" * 65536, every=0.001, for_seconds=10) as url:
        started = time.monotonic()
        with pytest.raises(SourceError) as caught:
            fetch_snapshot(session, source(url, max_body_mb=1), None, tmp_path)
        assert time.monotonic() - started < 3
    assert "more than 1 MiB, over max_body_mb" in str(caught.value)
    assert not isinstance(caught.value, SourceUnavailable)  # exit 2: fix the source
    assert list(tmp_path.iterdir()) == []


def test_a_json_body_is_spooled_to_a_file_streamed_and_removed_after_reading(
    session: requests.Session, tmp_path: Path
) -> None:
    with running_source() as server:
        server.replies = [json_reply(RECORDS)]
        fetch = fetch_snapshot(session, source(server.url), None, tmp_path)
        assert [p.suffix for p in tmp_path.iterdir()] == [".json"]  # spooled, read row by row
        assert rows(fetch) == 2
        assert list(tmp_path.iterdir()) == []  # gone with the snapshot


# --------------------------------------------------------------------------- item 12


@pytest.fixture
def two_servers() -> Iterator[tuple[SourceServer, SourceServer]]:
    with running_source() as home, running_source() as elsewhere:
        yield home, elsewhere


def test_a_redirect_to_another_origin_is_refused_and_gets_no_credentials(
    two_servers: tuple[SourceServer, SourceServer], session: requests.Session, tmp_path: Path
) -> None:
    home, elsewhere = two_servers
    home.replies = [Reply(status=302, headers={"Location": elsewhere.url + "?stolen=1"})]
    elsewhere.default = lambda seen: json_reply(RECORDS)
    settings = source(home.url, auth_header=SECRET, auth_header_name="X-Api-Key")
    with pytest.raises(SourceError) as caught:
        fetch_snapshot(session, settings, None, tmp_path)
    assert "redirects to another origin" in str(caught.value)
    assert "allowed_redirect_origins" in str(caught.value) and "s3cret" not in str(caught.value)
    assert elsewhere.seen == []
    assert home.seen[0].headers["X-Api-Key"] == SECRET


def test_an_allowed_origin_is_followed_without_the_credentials(
    two_servers: tuple[SourceServer, SourceServer], session: requests.Session, tmp_path: Path
) -> None:
    home, elsewhere = two_servers
    home.replies = [Reply(status=302, headers={"Location": elsewhere.url + "?file=1"})]
    elsewhere.default = lambda seen: json_reply(RECORDS)
    origin = elsewhere.url.rsplit("/", 1)[0]
    settings = source(
        home.url,
        auth_header=SECRET,
        auth_header_name="X-Api-Key",
        allowed_redirect_origins=[origin],
    )
    assert rows(fetch_snapshot(session, settings, None, tmp_path)) == 2
    assert [s.query for s in elsewhere.seen] == [{"file": "1"}]
    assert "X-Api-Key" not in elsewhere.seen[0].headers
    assert "Authorization" not in elsewhere.seen[0].headers


def test_a_redirect_within_the_origin_keeps_the_credentials(
    session: requests.Session, tmp_path: Path
) -> None:
    with running_source() as server:
        server.replies = [Reply(status=301, headers={"Location": "/v2/penalties"})]
        server.default = lambda seen: json_reply(RECORDS)
        settings = source(server.url, auth_header=SECRET)
        assert rows(fetch_snapshot(session, settings, None, tmp_path)) == 2
    assert [s.path for s in server.seen] == ["/penalties", "/v2/penalties"]
    assert server.seen[1].headers["Authorization"] == SECRET


def test_a_redirect_loop_ends(session: requests.Session, tmp_path: Path) -> None:
    with running_source() as server:
        server.default = lambda seen: Reply(status=302, headers={"Location": "/penalties"})
        with pytest.raises(SourceError, match="more than 5 redirects"):
            fetch_snapshot(session, source(server.url), None, tmp_path)
        assert len(server.seen) == 6


def test_an_allowed_origin_must_be_an_origin() -> None:
    with pytest.raises(ValueError, match="not an origin"):
        source("http://x/", allowed_redirect_origins=["https://cdn.example.cn/files/"])
    assert source("http://x/", allowed_redirect_origins=["HTTPS://CDN.example.cn"]).model_dump()[
        "allowed_redirect_origins"
    ] == ["https://cdn.example.cn:443"]
