"""The HTTP adapter: JSON (a list, an object holding a list, or paged) or a CSV/XLSX download.

The session is injected (tests pass a real one pointed at a loopback server) and so is
`sleep`, so retry back-off costs no time in tests. 5xx, 429, connection errors and
timeouts are retried with exponential back-off, and still failing after the retries
raise `SourceUnavailable` (exit 1: the work failed, a later run may succeed); other 4xx
and a reply that holds no usable snapshot raise `SourceError` (exit 2: fix the url, the
credentials or the source). Conditional GET (ETag / Last-Modified) lets an unchanged
snapshot be skipped.

Everything is downloaded before `fetch_snapshot` returns: downloads go to a file under
`workdir` (pages to a JSON-lines spool), so a failure on page 7 fails the fetch, not the
sync half-way, and memory stays bounded. The auth header never appears in messages.
"""

from __future__ import annotations

import io
import json
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import requests

from pipeline.config import SourceSettings
from pipeline.errors import InputError, SourceError, SourceUnavailable
from pipeline.office.archive import OLE_MAGIC, XlsxLimits
from pipeline.sync.sources.base import Snapshot, pick_records, record_headers, record_rows
from pipeline.sync.sources.files import read_snapshot
from pipeline.sync.sources.jsonstream import json_snapshot

Sleep = Callable[[float], None]
_CHUNK = 64 * 1024
# ChunkedEncodingError: the connection dropped mid-body, as transient as a reset
_TRANSIENT = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)
_FILE_TYPES = {"csv": "csv", "spreadsheetml": "xlsx", "ms-excel": "xlsx"}


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
    """A failure worth another try (5xx, 429, connection error, timeout)."""


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
    request = _Request(session, source, source.url, _headers(source, state), sleep, workdir, limits)
    try:
        response = _get(request, _page_params(source, 1))
        if response.status_code == 304:
            _discard(request)
            return HttpFetch(True, state or HttpState(), None)
        new_state = HttpState(response.headers.get("ETag"), response.headers.get("Last-Modified"))
        request.headers = _headers(source, None)  # later pages are not conditional
        return HttpFetch(False, new_state, _snapshot(request, response))
    except BaseException:
        _discard(request)
        raise


def _discard(request: _Request) -> None:
    if request.download is not None:
        request.download.close()


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
    """csv/xlsx when the source says so or the server labels the body so; None for JSON."""
    if source.format in ("csv", "xlsx"):
        return source.format
    if source.format == "json":
        return None
    ctype = response.headers.get("Content-Type", "").lower()
    return next((kind for marker, kind in _FILE_TYPES.items() if marker in ctype), None)


def _snapshot(request: _Request, response: requests.Response) -> Snapshot:
    if request.download is not None:
        return _file_snapshot(request, request.download)
    if request.source.page_param:
        return _paged_snapshot(request, response)
    return _json_snapshot(request, response)


# --------------------------------------------------------------------------- requests


def _get(request: _Request, params: dict[str, int]) -> requests.Response:
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


def _get_once(request: _Request, params: dict[str, int]) -> requests.Response:
    try:
        with request.session.get(
            request.url,
            params=params,
            headers=request.headers,
            timeout=request.source.timeout,
            stream=True,
        ) as response:
            _check_status(request, response)
            _read_body(request, response)
            return response
    except _TRANSIENT as exc:
        raise _Retryable(f"{type(exc).__name__}: {exc}") from None
    except requests.RequestException as exc:
        raise SourceError(f"source {request.source.name!r}: {request.url}: {exc}") from None


def _check_status(request: _Request, response: requests.Response) -> None:
    status = response.status_code
    if status == 429 or status >= 500:
        raise _Retryable(f"HTTP {status} {response.reason}")
    if status >= 400:
        raise SourceError(
            f"source {request.source.name!r}: {request.url}: HTTP {status} {response.reason} "
            "(permanent; check the url and credentials)"
        )


def _read_body(request: _Request, response: requests.Response) -> None:
    """JSON into memory (one page); a CSV/XLSX download into a temporary file."""
    kind = _file_format(request.source, response)
    if response.status_code == 304:
        return
    if kind is None:
        _ = response.content
        return
    if request.download is None:
        request.download = tempfile.NamedTemporaryFile(  # noqa: SIM115 - the snapshot closes it
            dir=request.workdir, prefix="http-download-", suffix=f".{kind}"
        )
    request.download.seek(0)
    request.download.truncate()  # a retry starts the download over
    for chunk in response.iter_content(_CHUNK):
        request.download.write(chunk)
    request.download.flush()


# --------------------------------------------------------------------------- JSON


def _records(request: _Request, response: requests.Response) -> list[object]:
    where = f"source {request.source.name!r}: {request.url}"
    body = response.content
    ctype = response.headers.get("Content-Type", "(none)")
    if "html" in ctype.lower() or body.lstrip()[:1] == b"<":
        raise SourceError(f"{where}: expected JSON, got {ctype}: {_preview(body)}")
    try:
        data = json.loads(body)
    except ValueError:
        raise SourceError(f"{where}: not valid JSON ({ctype}): {_preview(body)}") from None
    return pick_records(data, request.source.records_key, where, SourceError)


def _json_snapshot(request: _Request, response: requests.Response) -> Snapshot:
    """One JSON reply, its records streamed from the body rather than parsed whole."""
    where = f"source {request.source.name!r}: {request.url}"
    body = response.content
    ctype = response.headers.get("Content-Type", "(none)")
    if "html" in ctype.lower() or body.lstrip()[:1] == b"<":
        raise SourceError(f"{where}: expected JSON, got {ctype}: {_preview(body)}")
    return json_snapshot(
        request.url,
        lambda: io.BytesIO(body),
        request.source.records_key,
        where,
        SourceError,
        lambda _why: f"{where}: not valid JSON ({ctype}): {_preview(body)}",
    )


def _preview(body: bytes) -> str:
    text = body[:400].decode("utf-8", errors="replace")
    return repr(" ".join(text.split())[:80])


def _paged_snapshot(request: _Request, first: requests.Response) -> Snapshot:
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


def _spool_pages(request: _Request, first: requests.Response, spool: IO[str]) -> list[str]:
    seen: dict[str, None] = {}
    response, page, previous = first, 1, b""
    while records := _records(request, response):
        if response.content == previous:
            raise SourceError(
                f"source {request.source.name!r}: {request.url}: page {page} repeats page "
                f"{page - 1}; does the server support the page parameter "
                f"{request.source.page_param!r}?"
            )
        record_headers(records, seen)
        spool.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        previous, page = response.content, page + 1
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
    if source.format in ("csv", "xlsx"):
        return source.format
    download.seek(0)
    head = download.read(8)
    # a zip, or an OLE file (an encrypted workbook or an .xls): the XLSX reader names it
    return "xlsx" if head[:4] == b"PK\x03\x04" or head == OLE_MAGIC else "csv"
