"""The company answer page, driven over loopback: links in notices, answers in the ledger,
and the defences (CSRF, rate limits, headers, guessed codes, closed records)."""

from __future__ import annotations

import base64
import datetime as dt
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select

from pipeline.db.engine import make_engine
from pipeline.db.models import LedgerEvent, OutboxMessage, Record, table_of
from pipeline.web.codes import encode
from pipeline.web.security import csrf_token
from tests.helpers import CliRunner, penalty, write_rows
from tests.web_site import (
    BASE,
    PLANNED,
    SH,
    Site,
    load_notices,
    make_app,
    site_for,
    web_env,
)


@pytest.fixture
def site(loaded: CliRunner, db_url: str, config_dir: Path) -> Iterator[Site]:
    # generous limits here: each test makes a few dozen requests (the limits have their own test)
    with site_for(
        loaded, db_url, config_dir, rate_per_code_per_minute="200", rate_per_ip_per_minute="500"
    ) as s:
        yield s


def _forged_token(site: Site, code: str) -> str:
    """A valid token for `code` (the closed page shows no form to take one from)."""
    return csrf_token("test-secret", code, int(site.app.clock.now().timestamp() // 60))


def _events(db_url: str, source: str) -> list[tuple[str, str | None]]:
    e = table_of(LedgerEvent).c
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            query = select(e.field, e.new_value).where(e.source == source).order_by(e.id)
            return [(f, v) for f, v in conn.execute(query)]
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- the notices


def test_every_company_notice_carries_its_own_link_and_the_sms_only_the_code(site: Site) -> None:
    first, second = site.code("宝税罚〔2026〕1号"), site.code("宝税罚〔2026〕2号")
    assert first != second
    payload = site.payload("repair_notice", "宝税罚〔2026〕1号")
    assert f"{BASE}/r/{first}" in payload["html"] and payload["sms_params"]["code"] == first
    assert len(payload["sms_params"]["code"]) <= 12  # a Tencent template parameter


def test_the_printed_notice_carries_the_link_and_a_qr_code_that_decodes_to_it(site: Site) -> None:
    import zxingcpp
    from PIL import Image

    code = site.code()
    content = base64.b64decode(
        site.payload("repair_notice", "宝税罚〔2026〕1号")["docx"]["content"]
    )
    from pipeline.notices.docx import docx_text

    assert f"{BASE}/r/{code}" in docx_text(content)
    import zipfile

    with zipfile.ZipFile(io.BytesIO(content)) as zf:
        [media] = [n for n in zf.namelist() if n.startswith("word/media/")]
        image = Image.open(io.BytesIO(zf.read(media)))
    [decoded] = zxingcpp.read_barcodes(image)
    assert decoded.text == f"{BASE}/r/{code}"


def test_without_a_public_address_no_link_is_made(
    cli: CliRunner, tmp_path: Path, db_url: str, config_dir: Path
) -> None:
    load_notices(cli, tmp_path, [penalty(1, CF_JDRQ="2026-05-06")])
    app = make_app(config_dir, db_url, PLANNED)
    try:
        with app.engine.connect() as conn:
            payload = conn.execute(select(table_of(OutboxMessage).c.payload)).scalars().first()
    finally:
        app.close()
    assert "/r/" not in payload["text"] and "code" not in payload["sms_params"]


# --------------------------------------------------------------------------- answering


def test_the_page_shows_the_records_facts_and_the_first_view_is_recorded(
    site: Site, db_url: str
) -> None:
    page = site.get(site.code())
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    for text in (
        "双鸭山市测试1有限公司",
        "宝税罚〔2026〕1号",
        "2026年8月7日起",
        "信用修复申请书",
        "我已知晓",
    ):
        assert text in page.text, text
    assert (
        "双鸭山市测试2有限公司" not in page.text and "王经理" not in page.text
    )  # nothing of others
    assert "<script" not in page.text
    viewed = site.entry()["viewed_at"]
    assert viewed is not None
    site.get(site.code())
    assert site.entry()["viewed_at"] == viewed  # the first view stays
    assert [f for f, _ in _events(db_url, "company")] == [
        "viewed_at"
    ]  # audited once, as the company's


def test_an_answer_records_knowledge_and_willingness_audited_as_the_companys(
    site: Site, db_url: str
) -> None:
    code = site.code()
    answered = site.answer(code, "willing")
    assert answered.status_code == 303 and answered.headers["Location"] == f"/r/{code}?done=1"
    done = requests.get(site.url + answered.headers["Location"], timeout=10)
    assert "已收到您的答复：我有修复意愿" in done.text
    entry = site.entry()
    assert (entry["willingness"], entry["company_answer"]) == ("yes", "willing")
    assert entry["receipt_confirmed_at"] is not None
    fields = {f for f, _ in _events(db_url, "company")}
    assert {"willingness", "company_answer", "receipt_confirmed_at"} <= fields
    # the answer can be changed while the record is open
    assert site.answer(code, "unwilling").status_code == 303
    assert (site.entry()["willingness"], site.entry()["company_answer"]) == ("no", "unwilling")


def test_a_department_edit_of_the_willingness_wins_over_the_company(site: Site) -> None:
    assert site.cli("ledger", "set", "宝税罚〔2026〕1号", "--willing", "no", now=PLANNED).code == 0
    assert site.answer(site.code(), "willing").status_code == 303
    entry = site.entry()
    assert (entry["willingness"], entry["company_answer"]) == ("no", "willing")


def test_a_post_without_a_valid_token_is_refused(site: Site) -> None:
    code = site.code()
    for data in (
        {"answer": "willing"},
        {"answer": "willing", "token": "1.deadbeef"},
        {"answer": "willing", "token": site.token(site.code("宝税罚〔2026〕2号"))},
    ):
        refused = requests.post(
            f"{site.url}/r/{code}", data=data, timeout=10, allow_redirects=False
        )
        assert refused.status_code == 403
    assert site.entry()["company_answer"] is None


def test_help_needs_a_real_phone_number_and_nothing_typed_is_reflected_or_stored(
    site: Site,
) -> None:
    code = site.code()
    for bad in (
        "<script>alert(1)</script>",
        "13912345678'; DROP TABLE records;--",
        "12345",
        "一三九",
    ):
        refused = site.answer(code, "help", phone=bad)
        assert refused.status_code == 400 and "请填写正确的手机号码" in refused.text
        assert "<script>alert" not in refused.text and "DROP TABLE" not in refused.text
    assert site.entry()["company_answer"] is None
    assert site.answer(code, "help", phone="139 1234 5678").status_code == 303
    entry = site.entry()
    assert (entry["company_answer"], entry["help_phone"]) == ("help", "13912345678")
    assert site.answer(code, "maybe").status_code == 400


def test_a_guessed_or_malformed_code_is_a_plain_404(site: Site) -> None:
    real = site.get(site.code())
    for code in (encode(12345), "A" * 11, "short", "../../etc/passwd", "0OIl0OIl0OI"):
        missing = site.get(code)
        assert missing.status_code == 404 and "链接无效" in missing.text
        assert missing.headers["Content-Security-Policy"] == real.headers["Content-Security-Policy"]


def test_every_response_carries_the_security_headers(site: Site) -> None:
    for response in (
        site.get(site.code()),
        site.get("nothing"),
        requests.get(site.url + "/healthz", timeout=10),
    ):
        assert "script-src" not in response.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert requests.get(site.url + "/healthz", timeout=10).text == "ok\n"


def test_a_closed_record_is_shown_but_no_longer_answered(site: Site) -> None:
    code = site.code()
    token = site.token(code)
    site.cli(
        "sync",
        "--file",
        str(
            write_rows(
                Path(site.app.config.directory).parent.parent / "x.csv",
                [penalty(2, CF_JDRQ="2026-05-06")],
            )
        ),
        "--force",
        now=PLANNED,
    )
    site.cli("eligibility", now=PLANNED)
    assert (
        site.cli("ledger", "set", "宝税罚〔2026〕1号", "--confirm", "repaired", now=PLANNED).code
        == 0
    )
    page = site.get(code)
    assert page.status_code == 200 and "已办结" in page.text and 'name="token"' not in page.text
    closed = requests.post(
        f"{site.url}/r/{code}", data={"token": token, "answer": "willing"}, timeout=10
    )
    assert closed.status_code == 410


def test_an_expired_link_is_no_longer_answered(
    loaded: CliRunner, db_url: str, config_dir: Path
) -> None:
    with site_for(
        loaded, db_url, config_dir, at="2027-06-01T10:00"
    ) as late:  # 180 days after planning
        code = late.code()
        assert "已办结或链接已过期" in late.get(code).text
        refused = requests.post(
            f"{late.url}/r/{code}",
            data={"token": _forged_token(late, code), "answer": "willing"},
            timeout=10,
        )
        assert refused.status_code == 410


def test_requests_beyond_the_rate_limit_are_refused(
    loaded: CliRunner, db_url: str, config_dir: Path
) -> None:
    with site_for(
        loaded, db_url, config_dir, rate_per_code_per_minute="3", rate_per_ip_per_minute="5"
    ) as s:
        code = s.code()
        statuses = [s.get(code).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        guesses = [s.get(encode(n)).status_code for n in range(3)]
        assert guesses[-1] == 429  # the address's own limit (5 a minute) is spent


# --------------------------------------------------------------------------- what follows


def test_a_company_that_applied_gets_no_more_reminders_until_the_ledger_moves(site: Site) -> None:
    assert site.answer(site.code(), "applied").status_code == 303
    plan = site.cli("notices", "plan", "--json", now="2026-12-28T10:00").json()
    assert plan["by_kind"].get("follow_up", 0) <= 1  # only entity 2 can be followed up
    keys = [r["key"] for r in site.cli("outbox", "--json", now="2026-12-28T10:00").json_lines()]
    assert not any(k.startswith("follow_up:1:") for k in keys)


def test_a_help_request_reaches_the_departments_digest_with_the_phone(site: Site) -> None:
    assert site.answer(site.code(), "help", phone="13912345678").status_code == 303
    assert site.cli("notices", "plan", now="2026-11-29T10:00").code == 0
    digest = next(p for p in _digests(site) if "企业在线求助" in p["text"])
    assert "双鸭山市测试1有限公司（宝税罚〔2026〕1号），联系电话：13912345678" in digest["text"]


def _digests(site: Site) -> list[dict[str, Any]]:
    c = table_of(OutboxMessage).c
    with site.app.engine.connect() as conn:
        return list(conn.execute(select(c.payload).where(c.kind == "department_digest")).scalars())


def test_the_report_counts_acknowledged_and_willing_companies_from_their_answers(
    site: Site, tmp_path: Path
) -> None:
    engine = site.app.engine
    with engine.begin() as conn:  # as if the notices had been e-mailed: told on 11-27
        conn.execute(
            table_of(Record)
            .update()
            .values(
                progress=1,
                notified_at=dt.datetime(2026, 11, 27, 12, tzinfo=SH),
                notified_channel="email",
            )
        )
    assert site.answer(site.code(), "willing").status_code == 303
    kpis = site.cli(
        "report",
        "monthly",
        "--month",
        "2026-11",
        "--out",
        str(tmp_path),
        "--no-send",
        "--json",
        now="2026-12-01T09:00",
    ).json()
    total = kpis["total"]
    assert (
        total["entities_told"],
        total["entities_aware"],
        total["entities_willing"],
        total["entities_viewed"],
    ) == (2, 1, 1, 1)
    assert (total["ack_rate"], total["willing_rate"]) == (0.5, 1.0)


# --------------------------------------------------------------------------- the real server


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_serve_runs_the_page_under_gunicorn_and_stops_on_sigterm(
    site: Site, db_url: str, config_dir: Path, tmp_path: Path
) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    port = _free_port()
    env = {
        **os.environ,
        "CREDIT_REPAIR_DATABASE_URL": db_url,
        "CREDIT_REPAIR_WEB__PUBLIC_BASE_URL": BASE,
        "CREDIT_REPAIR_WEB__SECRET": "test-secret",
    }
    argv = [
        sys.executable,
        "-m",
        "pipeline",
        "--config",
        str(config_dir),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "2",
    ]
    with (tmp_path / "serve.err").open("wb") as err:
        proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=err)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    health = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                    break
                except requests.ConnectionError:
                    assert proc.poll() is None and time.monotonic() < deadline, (
                        tmp_path / "serve.err"
                    ).read_text()
                    time.sleep(0.2)
            assert health.text == "ok\n"
            code = site.code()
            page = requests.get(f"http://127.0.0.1:{port}/r/{code}", timeout=10)
            assert page.status_code == 200 and "双鸭山市测试1有限公司" in page.text
            token = re.search(r'name="token" value="([^"]+)"', page.text)
            assert token
            # a form served by one worker is accepted by any: the secret is shared
            for _ in range(3):
                answered = requests.post(
                    f"http://127.0.0.1:{port}/r/{code}",
                    timeout=10,
                    data={"token": token.group(1), "answer": "acknowledged"},
                    allow_redirects=False,
                )
                assert answered.status_code == 303
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0
    assert code not in (tmp_path / "serve.err").read_text()  # no access log of the links


def test_the_sms_to_the_gateway_carries_the_code_as_a_template_parameter(
    cli: CliRunner, tmp_path: Path, config_dir: Path, monkeypatch: pytest.MonkeyPatch, db_url: str
) -> None:
    import json

    from tests.helpers import CONTACT_HEADERS, dispatch_config, uscc
    from tests.sms_server import Reply, running_server

    web_env(monkeypatch)
    with running_server() as gateway:
        gateway.default = Reply(200, b'{"id": "m-1"}', {"Content-Type": "application/json"})
        cfg = dispatch_config(tmp_path, config_dir, 9, gateway.url)
        settings = (cfg / "settings.yaml").read_text(encoding="utf-8")
        settings = settings.replace(
            "repair_notice: {id: T1}", "repair_notice: {id: T1, params: [code]}"
        )
        (cfg / "settings.yaml").write_text(settings, encoding="utf-8")
        run = CliRunner(cfg)
        assert (
            run(
                "sync", "--file", str(write_rows(tmp_path / "p.csv", [penalty(1)])), now=PLANNED
            ).code
            == 0
        )
        contacts = [
            {
                "统一社会信用代码": uscc(1),
                "联系人": "王经理",
                "联系电话": "13912345678",
                "电子邮箱": "",
            }
        ]
        run(
            "contacts",
            "import",
            str(write_rows(tmp_path / "c.csv", contacts, headers=CONTACT_HEADERS)),
            now=PLANNED,
        )
        run("eligibility", now=PLANNED)
        run("notices", "plan", now=PLANNED)
        assert run("dispatch", "--json", now=PLANNED).json()["sent"] == 1
        [seen] = gateway.seen
        body = json.loads(seen.body)
    site = Site("", run, db_url, make_app(cfg, db_url, PLANNED))
    try:
        assert body["params"] == {"code": site.code()}
    finally:
        site.app.close()
