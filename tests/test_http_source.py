"""The HTTP adapter against a real loopback server with scripted replies."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import requests

from pipeline.config import SourceSettings
from pipeline.errors import SourceError, SourceUnavailable
from pipeline.sync.sources.base import RawRow
from pipeline.sync.sources.http import HttpFetch, HttpState, fetch_snapshot
from tests.source_server import Reply, Seen, SourceServer, json_reply, running_source

RECORDS = [
    {
        "CF_WSH": "市场【2019】1号",
        "CF_XDR_MC": "双鸭山智慧城市运营有限公司",
        "CF_XDR_SHXYM": "91230500MA1B3N1N2M",
        "CF_NR_FK": 0.2,
        "CF_JDRQ": "2019-10-10",
        "CF_CFJG": "双鸭山市公安局",
    },
    {
        "CF_WSH": "杭市监罚〔2021〕12号",
        "CF_XDR_MC": "杭州某某科技有限公司",
        "CF_XDR_SHXYM": "91330100716105852F",
        "CF_NR_FK": 1.5,
        "CF_JDRQ": "2021-03-05",
        "CF_CFJG": "杭州市市场监督管理局",
    },
]
SECRET = "Bearer s3cret-token"


@pytest.fixture
def server() -> Iterator[SourceServer]:
    with running_source() as srv:
        yield srv


class Sleeps(list[float]):
    """Records back-off delays instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def source(url: str, **settings: Any) -> SourceSettings:
    return SourceSettings(name="province", kind="http", url=url, **{"backoff": 0.5, **settings})


def rows_of(fetch: HttpFetch) -> tuple[list[str], list[RawRow]]:
    assert fetch.snapshot is not None
    with fetch.snapshot as snapshot:
        return snapshot.headers, list(snapshot)


def test_a_json_list_becomes_rows_numbered_from_one(
    server: SourceServer, session: requests.Session, tmp_path: Path
) -> None:
    server.replies = [json_reply(RECORDS)]
    headers, rows = rows_of(fetch_snapshot(session, source(server.url), None, tmp_path))
    assert headers == list(RECORDS[0])
    assert [r.row_no for r in rows] == [1, 2]
    assert rows[0].values[2] == "91230500MA1B3N1N2M"


def test_a_json_object_gives_its_records_key(
    server: SourceServer, session: requests.Session, tmp_path: Path
) -> None:
    server.replies = [json_reply({"code": 0, "msg": "ok", "result": RECORDS})]
    fetch = fetch_snapshot(session, source(server.url, records_key="result"), None, tmp_path)
    assert len(rows_of(fetch)[1]) == 2


def test_a_500_is_retried_after_backoff_and_then_succeeds(
    server: SourceServer, session: requests.Session, tmp_path: Path
) -> None:
    server.replies = [Reply(status=500, body=b"oops"), json_reply(RECORDS)]
    sleeps = Sleeps()
    fetch = fetch_snapshot(session, source(server.url), None, tmp_path, sleep=sleeps)
    assert len(rows_of(fetch)[1]) == 2
    assert sleeps == [0.5]


def test_a_timeout_is_retried_and_then_succeeds(
    server: SourceServer, session: requests.Session, tmp_path: Path
) -> None:
    server.replies = [json_reply(RECORDS, delay=1.0), json_reply(RECORDS)]
    sleeps = Sleeps()
    settings = source(server.url, timeout=0.2)
    fetch = fetch_snapshot(session, settings, None, tmp_path, sleep=sleeps)
    assert len(rows_of(fetch)[1]) == 2
    assert sleeps == [0.5]


def test_backoff_doubles_and_exhausted_retries_name_the_url_and_last_error(
    server: SourceServer, session: requests.Session, tmp_path: Path
) -> None:
    server.default = lambda seen: Reply(status=503, body=b"busy")
    sleeps = Sleeps()
    with pytest.raises(SourceError) as caught:
        fetch_snapshot(session, source(server.url, retries=3), None, tmp_path, sleep=sleeps)
    assert sleeps == [0.5, 1.0, 2.0]
    assert len(server.seen) == 4
    assert server.url in str(caught.value)
    assert "failed 4 times; last: HTTP 503" in str(caught.value)


def test_429_is_retried_like_a_server_error(
    server: SourceServer, session: requests.Session, tmp_path: Path
) -> None:
    server.replies = [Reply(status=429), json_reply(RECORDS)]
    fetch = fetch_snapshot(session, source(server.url), None, tmp_path, sleep=Sleeps())
    assert len(rows_of(fetch)[1]) == 2


def test_a_404_is_permanent_and_not_retried(
    server: SourceServer, session: requests.Session, tmp_path: Path
) -> None:
    server.default = lambda seen: Reply(status=404)
    sleeps = Sleeps()
    with pytest.raises(SourceError, match="HTTP 404 Not Found"):
        fetch_snapshot(session, source(server.url), None, tmp_path, sleep=sleeps)
    assert (sleeps, len(server.seen)) == ([], 1)


def test_a_refused_connection_is_retried_then_reported(
    session: requests.Session, tmp_path: Path
) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sleeps = Sleeps()
    url = f"http://127.0.0.1:{port}/x"
    with pytest.raises(SourceError, match=r"failed 2 times; last: ConnectionError"):
        fetch_snapshot(session, source(url, retries=1), None, tmp_path, sleep=sleeps)
    assert sleeps == [0.5]


def test_html_instead_of_json_names_url_content_type_and_the_start_of_the_body(
    server: SourceServer, session: requests.Session, tmp_path: Path
) -> None:
    page = "<html><head><title>统一身份认证 登录</title></head><body>请登录</body></html>"
    server.replies = [Reply(body=page.encode(), content_type="text/html; charset=utf-8")]
    with pytest.raises(SourceError) as caught:
        fetch_snapshot(session, source(server.url), None, tmp_path)
    message = str(caught.value)
    assert server.url in message
    assert "expected JSON, got text/html; charset=utf-8" in message
    assert "<title>统一身份认证 登录</title>" in message


def test_a_body_that_is_not_json_is_a_source_error(
    server: SourceServer, session: requests.Session, tmp_path: Path
) -> None:
    server.replies = [Reply(body=b'{"data": [1, 2', content_type="application/json")]
    with pytest.raises(SourceError, match=r"not valid JSON \(application/json\): '\{\"data\""):
        fetch_snapshot(session, source(server.url), None, tmp_path)


def test_etag_round_trip_gives_not_modified_the_second_time(
    server: SourceServer, session: requests.Session, tmp_path: Path
) -> None:
    def conditional(seen: Seen) -> Reply:
        if seen.headers.get("If-None-Match") == '"v1"':
            return Reply(status=304, content_type="application/json")
        return json_reply(RECORDS, headers={"ETag": '"v1"'})

    server.default = conditional
    first = fetch_snapshot(session, source(server.url), None, tmp_path)
    assert (first.not_modified, first.state.etag) == (False, '"v1"')
    rows_of(first)
    second = fetch_snapshot(session, source(server.url), first.state, tmp_path)
    assert (second.not_modified, second.snapshot, second.state) == (True, None, first.state)


def test_last_modified_is_sent_back_as_if_modified_since(
    server: SourceServer, session: requests.Session, tmp_path: Path
) -> None:
    stamp = "Wed, 09 Nov 2022 08:00:00 GMT"
    server.replies = [Reply(status=304)]
    state = HttpState(last_modified=stamp)
    assert fetch_snapshot(session, source(server.url), state, tmp_path).not_modified
    assert server.seen[0].headers["If-Modified-Since"] == stamp
    assert "If-None-Match" not in server.seen[0].headers


def test_paged_json_is_fetched_until_an_empty_page(
    server: SourceServer, session: requests.Session, tmp_path: Path
) -> None:
    pages = {"1": RECORDS[:1], "2": [{**RECORDS[1], "CF_NR_WFFF": 3}], "3": []}
    server.default = lambda seen: json_reply({"total": 2, "rows": pages[seen.query["pageNo"]]})
    settings = source(server.url, page_param="pageNo", page_size_param="pageSize", page_size=1)
    headers, rows = rows_of(fetch_snapshot(session, settings, None, tmp_path))
    assert [s.query for s in server.seen] == [
        {"pageNo": str(n), "pageSize": "1"} for n in (1, 2, 3)
    ]
    assert headers == [*RECORDS[0], "CF_NR_WFFF"]
    assert [r.row_no for r in rows] == [1, 2]
    assert rows[0].values[-1] is None and rows[1].values[-1] == 3


def test_a_server_ignoring_the_page_parameter_is_caught_not_looped_forever(
    server: SourceServer, session: requests.Session, tmp_path: Path
) -> None:
    server.default = lambda seen: json_reply(RECORDS)
    with pytest.raises(SourceError, match="page 2 repeats page 1"):
        fetch_snapshot(session, source(server.url, page_param="page"), None, tmp_path)


def test_a_gb18030_csv_download_is_streamed_to_a_file_and_read(
    server: SourceServer, session: requests.Session, tmp_path: Path
) -> None:
    lines = ["行政处罚决定书文号,行政相对人名称,罚款金额（万元）,处罚决定日期,处罚机关"]
    lines += [
        f"市场【2019】{i}号,双鸭山智慧城市运营有限公司,0.2,2019-10-10,双鸭山市公安局"
        for i in range(1, 3001)
    ]
    body = ("\r\n".join(lines) + "\r\n").encode("gb18030")
    server.replies = [Reply(body=body, content_type="text/csv")]
    headers, rows = rows_of(fetch_snapshot(session, source(server.url), None, tmp_path))
    assert headers[2] == "罚款金额（万元）"
    assert len(rows) == 3000
    assert rows[-1].row_no == 3001 and rows[-1].values[0] == "市场【2019】3000号"
    assert list(tmp_path.iterdir()) == []  # the download is deleted when the snapshot closes


def test_a_workbook_download_is_read_as_xlsx_and_a_csv_labelled_excel_as_csv(
    server: SourceServer, session: requests.Session, tmp_path: Path
) -> None:
    book = openpyxl.Workbook()
    book.active.append(["CF_WSH", "CF_JDRQ"])
    book.active.append(["A1", "20190101"])
    book.save(tmp_path / "p.xlsx")
    workbook = (tmp_path / "p.xlsx").read_bytes()
    (tmp_path / "p.xlsx").unlink()
    excel = "application/vnd.ms-excel"
    server.replies = [
        Reply(body=workbook, content_type=excel),
        Reply(body=b"CF_WSH,CF_JDRQ\nA1,20190101\n", content_type=excel),
    ]
    for _ in range(2):
        fetch = fetch_snapshot(session, source(server.url), None, tmp_path)
        assert rows_of(fetch)[1] == [RawRow(2, ["A1", "20190101"])]


def test_an_xls_and_an_ods_download_are_read_by_their_content(
    server: SourceServer, session: requests.Session, tmp_path: Path
) -> None:
    import xlwt

    from tests.test_exports import _ods

    book = xlwt.Workbook()
    sheet = book.add_sheet("s")
    for c, value in enumerate(["CF_WSH", "CF_JDRQ"]):
        sheet.write(0, c, value)
    for c, value in enumerate(["A1", "20190101"]):
        sheet.write(1, c, value)
    book.save(str(tmp_path / "p.xls"))
    _ods(tmp_path / "p.ods", [["CF_WSH", "CF_JDRQ"], ["A1", "20190101"]])
    bodies = [(tmp_path / name).read_bytes() for name in ("p.xls", "p.ods")]
    for name in ("p.xls", "p.ods"):
        (tmp_path / name).unlink()
    server.replies = [
        Reply(body=bodies[0], content_type="application/vnd.ms-excel"),
        Reply(body=bodies[1], content_type="application/octet-stream"),
    ]
    for fmt in ("auto", "ods"):
        fetch = fetch_snapshot(session, source(server.url, format=fmt), None, tmp_path)
        assert rows_of(fetch)[1] == [RawRow(2, ["A1", "20190101"])]


def test_format_csv_in_the_source_overrides_a_wrong_content_type(
    server: SourceServer, session: requests.Session, tmp_path: Path
) -> None:
    server.replies = [Reply(body=b"CF_WSH,CF_JDRQ\nA1,20190101\n", content_type="text/plain")]
    fetch = fetch_snapshot(session, source(server.url, format="csv"), None, tmp_path)
    assert rows_of(fetch)[1] == [RawRow(2, ["A1", "20190101"])]


def test_the_auth_header_is_sent_but_never_appears_in_errors(
    server: SourceServer, session: requests.Session, tmp_path: Path
) -> None:
    server.replies = [json_reply(RECORDS), Reply(status=401)]
    settings = source(server.url, auth_header=SECRET, auth_header_name="X-Api-Key")
    rows_of(fetch_snapshot(session, settings, None, tmp_path))
    assert server.seen[0].headers["X-Api-Key"] == SECRET
    with pytest.raises(SourceError) as caught:
        fetch_snapshot(session, settings, None, tmp_path)
    assert "HTTP 401" in str(caught.value)
    assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize(
    ("reply", "unavailable"),
    [
        (Reply(status=503, body=b"busy"), True),
        (Reply(status=429), True),
        (Reply(status=404), False),
        (Reply(status=401), False),
        (Reply(body=b"<html>login</html>", content_type="text/html"), False),
    ],
)
def test_only_a_source_that_could_not_deliver_after_its_retries_is_unavailable(
    server: SourceServer, session: requests.Session, tmp_path: Path, reply: Reply, unavailable: bool
) -> None:
    """Unavailable (exit 1, the work failed) vs. an answer that is no snapshot (exit 2)."""
    server.default = lambda seen: reply
    with pytest.raises(SourceError) as caught:
        fetch_snapshot(session, source(server.url, retries=1), None, tmp_path, sleep=Sleeps())
    assert isinstance(caught.value, SourceUnavailable) is unavailable
    assert caught.value.exit_code == (1 if unavailable else 2)
