"""The HTTP adapter: JSON (a list, an object holding a list, or paged) or a CSV/XLSX download.

The session is injected (tests pass a real one pointed at a loopback server) and so is
`sleep`, so retry back-off costs no time in tests. 5xx, 429, connection errors and
timeouts are retried with exponential back-off, and still failing after the retries
raise `SourceUnavailable` (exit 1: the work failed, a later run may succeed); other 4xx
and a reply that holds no usable snapshot raise `SourceError` (exit 2: fix the url, the
credentials or the source). Conditional GET (ETag / Last-Modified) lets an unchanged
snapshot be skipped.

Everything is downloaded before `fetch_snapshot` returns: every body is streamed to a
file under `workdir` (pages to a JSON-lines spool), so a failure on page 7 fails the
fetch, not the sync half-way, and memory stays bounded. The auth header never appears in
messages.

A hostile or broken server is bounded: each request has a total `deadline` (connecting,
headers and body; see `deadline.py`) and a body over `max_body_mb` is refused, checked
against Content-Length first and while streaming. Redirects are followed here, not by
`requests`: within the same origin (scheme, host, port) as before; to another origin
only if the source lists it in `allowed_redirect_origins`, and then without the
configured credentials, which never leave the configured origin.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import urljoin

import requests

from pipeline.config import SourceSettings
from pipeline.config.settings import origin_of
from pipeline.errors import InputError, SourceError, SourceUnavailable
from pipeline.office.archive import OLE_MAGIC, XlsxLimits, is_encrypted_package
from pipeline.sync.sources.base import Snapshot, pick_records, record_headers, record_rows
from pipeline.sync.sources.deadline import DeadlineAdapter, deadline
from pipeline.sync.sources.files import read_snapshot
from pipeline.sync.sources.jsonstream import json_snapshot

Sleep = Callable[[float], None]
_CHUNK = 64 * 1024
_MIB = 1024 * 1024
MAX_REDIRECTS = 5
# ChunkedEncodingError: the connection dropped mid-body, as transient as a reset
_TRANSIENT = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)
_FILE_TYPES = {
    "csv": "csv",
    "spreadsheetml": "xlsx",
    "ms-excel": "xlsx",
    "opendocument.spreadsheet": "ods",
}
_WORKBOOKS = ("csv", "xlsx", "xls", "ods")
_ODS_MIMETYPE = b"mimetypeapplication/vnd.oasis.opendocument.spreadsheet"


@dataclass(frozen=True)
class HttpState:
    """Validators of the last snapshot fetched, for the next conditional GET."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass
class HttpFetch:
    not_modified: bool
    state: HttpState
    snapshot: Snapshot | None
    """None when not modified; otherwise close it after use (it may hold a download)."""


class _Retryable(Exception):
    """A failure worth another try (5xx, 429, connection error, timeout, the deadline)."""


@dataclass
class _Answer:
    """A response whose body (if any) is in `_Request.body` (JSON) or `.download`."""

    status: int
    headers: requests.structures.CaseInsensitiveDict[str]
    digest: bytes = b""
    """Of the body: a page repeating the one before is caught by it."""


@dataclass
class _Request:
    session: requests.Session
    source: SourceSettings
    url: str
    headers: dict[str, str]
    sleep: Sleep
    workdir: Path
    limits: XlsxLimits | None = None
    """What a downloaded XLSX may unpack to (settings.yaml `files`)."""
    download: IO[bytes] | None = None
    """Where a CSV/XLSX body went (a temporary file, deleted when closed)."""
    body: IO[bytes] | None = None
    """Where the last JSON body went (a temporary file, reused page after page)."""
    credentials: set[str] = field(default_factory=set)
    """The configured header names that must never leave `source.url`'s origin."""


def fetch_snapshot(
    session: requests.Session,
    source: SourceSettings,
    state: HttpState | None,
    workdir: Path,
    sleep: Sleep = time.sleep,
    limits: XlsxLimits | None = None,
) -> HttpFetch:
    """Fetch the source's current snapshot, or report that it has not changed."""
    if not source.url:
        raise SourceError(f"source {source.name!r}: no url configured")
    workdir.mkdir(parents=True, exist_ok=True)  # downloads and page spools go here
    adapter = DeadlineAdapter()
    for scheme in ("http://", "https://"):
        session.mount(scheme, adapter)
    request = _Request(session, source, source.url, _headers(source, state), sleep, workdir, limits)
    request.credentials = {source.auth_header_name} if source.auth_header else set()
    try:
        response = _get(request, _page_params(source, 1))
        if response.status == 304:
            _discard(request)
            return HttpFetch(True, state or HttpState(), None)
        new_state = HttpState(response.headers.get("ETag"), response.headers.get("Last-Modified"))
        request.headers = _headers(source, None)  # later pages are not conditional
        snapshot = _snapshot(request, response)
        _close_body(request)
        return HttpFetch(False, new_state, snapshot)
    except BaseException:
        _discard(request)
        raise


def _discard(request: _Request) -> None:
    if request.download is not None:
        request.download.close()
    _close_body(request)


def _close_body(request: _Request) -> None:
    if request.body is not None:
        request.body.close()
        request.body = None


def _headers(source: SourceSettings, state: HttpState | None) -> dict[str, str]:
    headers = {"Accept": "application/json, text/csv;q=0.9, */*;q=0.5"}
    if source.auth_header:
        headers[source.auth_header_name] = source.auth_header
    if state and state.etag:
        headers["If-None-Match"] = state.etag
    if state and state.last_modified:
        headers["If-Modified-Since"] = state.last_modified
    return headers


def _file_format(source: SourceSettings, response: requests.Response) -> str | None:
    """A file format when the source says so or the server labels the body so; None for JSON."""
    if source.format in _WORKBOOKS:
        return source.format
    if source.format == "json":
        return None
    ctype = response.headers.get("Content-Type", "").lower()
    return next((kind for marker, kind in _FILE_TYPES.items() if marker in ctype), None)


def _snapshot(request: _Request, response: _Answer) -> Snapshot:
    if request.download is not None:
        return _file_snapshot(request, request.download)
    if request.source.page_param:
        return _paged_snapshot(request, response)
    return _json_snapshot(request, response)


# --------------------------------------------------------------------------- requests


def _get(request: _Request, params: dict[str, int]) -> _Answer:
    """GET with retries; the body is read inside each try, so a slow body is retried too."""
    source, last = request.source, ""
    tries = max(source.retries, 0) + 1
    for attempt in range(tries):
        if attempt:
            request.sleep(source.backoff * 2 ** (attempt - 1))
        try:
            return _get_once(request, params)
        except _Retryable as exc:
            last = str(exc)
    raise SourceUnavailable(
        f"source {source.name!r}: {request.url}: failed {tries} times; last: {last}"
    )


def _get_once(request: _Request, params: dict[str, int]) -> _Answer:
    """One GET, its redirects followed (see the module docstring), within the deadline."""
    source = request.source
    late = f"no complete answer within the deadline of {source.deadline:g} s"
    with deadline(source.deadline) as watch:
        try:
            answer = _follow(request, params, watch.remaining)
        except _TRANSIENT as exc:
            raise _Retryable(late if watch.expired else f"{type(exc).__name__}: {exc}") from None
        except requests.RequestException as exc:
            if watch.expired:
                raise _Retryable(late) from None
            raise SourceError(f"source {source.name!r}: {request.url}: {exc}") from None
    if watch.expired:  # cut off: what arrived may look complete (headers, a body to EOF)
        raise _Retryable(late)
    return answer


def _follow(request: _Request, params: dict[str, int], remaining: Callable[[], float]) -> _Answer:
    url, headers, query = request.url, dict(request.headers), dict(params)
    home = origin_of(request.url)
    for _hop in range(MAX_REDIRECTS + 1):
        with request.session.get(
            url,
            params=query,
            headers=headers,
            timeout=min(request.source.timeout, max(remaining(), 0.001)),
            stream=True,
            allow_redirects=False,
        ) as response:
            if not response.is_redirect:
                _check_status(request, response)
                return _read_body(request, response, remaining)
            target = urljoin(response.url, response.headers["Location"])
        headers = _redirect_headers(request, home, target, headers)
        url, query = target, {}
    raise SourceError(
        f"source {request.source.name!r}: {request.url}: more than {MAX_REDIRECTS} redirects"
    )


def _redirect_headers(
    request: _Request, home: str, target: str, headers: dict[str, str]
) -> dict[str, str]:
    """The headers to send to `target`; refuses an origin the source does not allow."""
    where = origin_of(target)
    if where == home:
        return headers
    if where not in request.source.allowed_redirect_origins:
        raise SourceError(
            f"source {request.source.name!r}: {request.url} redirects to another origin "
            f"({where}); refused, the source's credentials are never sent elsewhere — "
            "if that is where the export lives, list it in allowed_redirect_origins"
        )
    return {k: v for k, v in headers.items() if k not in request.credentials}


def _check_status(request: _Request, response: requests.Response) -> None:
    status = response.status_code
    if status == 429 or status >= 500:
        raise _Retryable(f"HTTP {status} {response.reason}")
    if status >= 400:
        raise SourceError(
            f"source {request.source.name!r}: {request.url}: HTTP {status} {response.reason} "
            "(permanent; check the url and credentials)"
        )


def _read_body(
    request: _Request, response: requests.Response, remaining: Callable[[], float]
) -> _Answer:
    """The body into a temporary file: a CSV/XLSX download (kept for the snapshot) or a
    JSON page (read back by `_records`); bounded by `max_body_mb` and the deadline."""
    answer = _Answer(response.status_code, response.headers)
    if response.status_code == 304:
        return answer
    limit = int(request.source.max_body_mb * _MIB)
    _check_declared_size(request, response, limit)
    kind = _file_format(request.source, response)
    out = _body_file(request, kind)
    out.seek(0)
    out.truncate()  # a retry, or the next page, starts over
    digest, size = hashlib.blake2b(digest_size=16), 0
    for chunk in response.iter_content(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise _too_big(request, f"more than {request.source.max_body_mb:g} MiB")
        if remaining() <= 0:
            raise _Retryable(
                f"no complete answer within the deadline of {request.source.deadline:g} s"
            )
        out.write(chunk)
        digest.update(chunk)
    out.flush()
    answer.digest = digest.digest()
    return answer


def _body_file(request: _Request, kind: str | None) -> IO[bytes]:
    if kind is not None:
        if request.download is None:
            request.download = tempfile.NamedTemporaryFile(  # noqa: SIM115 - the snapshot closes it
                dir=request.workdir, prefix="http-download-", suffix=f".{kind}"
            )
        return request.download
    if request.body is None:
        request.body = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed after parsing
            dir=request.workdir, prefix="http-page-", suffix=".json"
        )
    return request.body


def _check_declared_size(request: _Request, response: requests.Response, limit: int) -> None:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_big(request, f"{int(declared) / _MIB:,.0f} MiB by its Content-Length")


def _too_big(request: _Request, size: str) -> SourceError:
    source = request.source
    return SourceError(
        f"source {source.name!r}: {request.url}: the answer is {size}, over max_body_mb "
        f"({source.max_body_mb:g} MiB); nothing was loaded (raise max_body_mb if the export "
        "really is that large)"
    )


# --------------------------------------------------------------------------- JSON


def _records(request: _Request, response: _Answer) -> list[object]:
    where = f"source {request.source.name!r}: {request.url}"
    assert request.body is not None
    body = request.body
    body.seek(0)
    head = body.read(400)
    ctype = response.headers.get("Content-Type", "(none)")
    if "html" in ctype.lower() or head.lstrip()[:1] == b"<":
        raise SourceError(f"{where}: expected JSON, got {ctype}: {_preview(head)}")
    body.seek(0)
    try:
        data = json.load(body)
    except ValueError:
        raise SourceError(f"{where}: not valid JSON ({ctype}): {_preview(head)}") from None
    return pick_records(data, request.source.records_key, where, SourceError)


def _json_snapshot(request: _Request, response: _Answer) -> Snapshot:
    """One JSON reply, its records streamed from the spooled body rather than parsed whole."""
    where = f"source {request.source.name!r}: {request.url}"
    body, request.body = request.body, None  # the snapshot owns the spooled body now
    assert body is not None
    try:
        body.seek(0)
        head = body.read(400)
        ctype = response.headers.get("Content-Type", "(none)")
        if "html" in ctype.lower() or head.lstrip()[:1] == b"<":
            raise SourceError(f"{where}: expected JSON, got {ctype}: {_preview(head)}")
        snapshot = json_snapshot(
            request.url,
            lambda: open(body.name, "rb"),  # noqa: SIM115 - each pass closes its own stream
            request.source.records_key,
            where,
            SourceError,
            lambda _why: f"{where}: not valid JSON ({ctype}): {_preview(head)}",
        )
    except BaseException:
        body.close()
        raise
    snapshot.on_close(body.close)  # the temporary file goes with the snapshot
    return snapshot


def _preview(body: bytes) -> str:
    text = body[:400].decode("utf-8", errors="replace")
    return repr(" ".join(text.split())[:80])


def _paged_snapshot(request: _Request, first: _Answer) -> Snapshot:
    """Spool every page to a JSON-lines file, then stream the rows back from it."""
    spool = tempfile.NamedTemporaryFile(  # noqa: SIM115 - the snapshot closes it
        "w+", encoding="utf-8", dir=request.workdir, prefix="http-pages-", suffix=".jsonl"
    )
    try:
        headers = _spool_pages(request, first, spool)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    snapshot = Snapshot(request.url, headers, record_rows(_spooled(spool), headers))
    snapshot.on_close(spool.close)
    return snapshot


def _spool_pages(request: _Request, first: _Answer, spool: IO[str]) -> list[str]:
    seen: dict[str, None] = {}
    response, page, previous = first, 1, b""
    while records := _records(request, response):
        if response.digest == previous:
            raise SourceError(
                f"source {request.source.name!r}: {request.url}: page {page} repeats page "
                f"{page - 1}; does the server support the page parameter "
                f"{request.source.page_param!r}?"
            )
        record_headers(records, seen)
        spool.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        previous, page = response.digest, page + 1
        response = _get(request, _page_params(request.source, page))
    return list(seen)


def _page_params(source: SourceSettings, page: int) -> dict[str, int]:
    if not source.page_param:
        return {}
    params = {source.page_param: page}
    if source.page_size_param:
        params[source.page_size_param] = source.page_size
    return params


def _spooled(spool: IO[str]) -> Iterator[object]:
    for line in spool:
        yield json.loads(line)


# --------------------------------------------------------------------------- files


def _file_snapshot(request: _Request, download: IO[bytes]) -> Snapshot:
    try:
        snapshot = read_snapshot(
            Path(download.name),
            _download_format(request.source, download),
            request.source.encoding,
            name=request.url,
            limits=request.limits,
        )
    except InputError as exc:
        raise SourceError(f"source {request.source.name!r}: {exc}") from None
    snapshot.on_close(download.close)
    return snapshot


def _download_format(source: SourceSettings, download: IO[bytes]) -> str:
    """The source's format if set; else by content, as servers often label CSV as Excel."""
    if source.format in _WORKBOOKS:
        return source.format
    download.seek(0)
    head = download.read(128)
    if head[:4] == b"PK\x03\x04":  # a zip: an .ods names its type first, uncompressed
        return "ods" if head[30 : 30 + len(_ODS_MIMETYPE)] == _ODS_MIMETYPE else "xlsx"
    if head[:8] == OLE_MAGIC:  # an .xls, or an encrypted workbook (which the XLSX check names)
        download.seek(0)
        return "xlsx" if is_encrypted_package(download) else "xls"
    return "csv"
