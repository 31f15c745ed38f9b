"""Dispatch through real channels: aiosmtpd on loopback and an SMS gateway on loopback.

Every test runs on SQLite and PostgreSQL. What the servers received is parsed and
checked, and the outbox states are read back through the CLI, as an operator would.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import (
    CONTACT_HEADERS,
    DISPATCH_NOW,
    CliRunner,
    DispatchSetup,
    dispatch_config,
    load_notices,
    outbox_states,
    penalty,
    uscc,
    write_rows,
)
from tests.sms_server import Reply, SmsServer, running_server
from tests.smtp_server import Recorder, free_port, rejecting, smtp_server, smtp_server_on

NOW = DISPATCH_NOW


def _dispatch(s: DispatchSetup, now: str = NOW) -> dict[str, int]:
    result = s.cli("dispatch", "--json", now=now)
    assert result.code == 0, result.err
    out: dict[str, int] = result.json()
    return out


@pytest.fixture
def sms() -> Iterator[SmsServer]:
    with running_server() as server:
        yield server


@pytest.fixture
def setup(
    cli: CliRunner, tmp_path: Path, config_dir: Path, recorder: Recorder, sms: SmsServer
) -> Iterator[DispatchSetup]:
    with smtp_server(recorder) as port:
        cfg = dispatch_config(tmp_path, config_dir, port, sms.url)
        yield DispatchSetup(CliRunner(cfg), cfg, tmp_path)


def test_every_notice_goes_out_once_with_its_docx(setup: DispatchSetup, recorder: Recorder) -> None:
    load_notices(setup, 5)
    assert _dispatch(setup)["sent"] == 5
    assert _dispatch(setup)["sent"] == 0
    assert recorder.connections == 1 and len(recorder.received) == 5
    message = recorder.parsed()[0]
    assert "行政处罚信用修复告知书" in message["Subject"]
    attachment = next(message.iter_attachments())
    assert attachment.get_filename() == "行政处罚信用修复告知书.docx"
    text = message.get_body(("plain",)).get_content()
    assert "2026年12月29日" in text and "双鸭山市测试" in text
    entries = setup.cli("ledger", "show", "--json", now=NOW).json_lines()
    assert {(e["progress"], e["notified_channel"]) for e in entries} == {(1, "email")}


def test_smtp_down_then_up_sends_every_notice_once(
    cli: CliRunner, tmp_path: Path, config_dir: Path, sms: SmsServer
) -> None:
    port = free_port()
    s = DispatchSetup(
        CliRunner(dispatch_config(tmp_path, config_dir, port, sms.url)), tmp_path / "cfg", tmp_path
    )
    load_notices(s, 4)
    down = _dispatch(s)
    assert (down["sent"], down["retry"]) == (0, 4)
    assert _dispatch(s)["claimed"] == 0  # not due again before the back-off
    recorder = Recorder()
    with smtp_server_on(port, recorder):
        up = _dispatch(s, now="2026-11-27T11:00")
    assert up["sent"] == 4 and len(recorder.received) == 4
    assert len({m["Message-ID"] for m in recorder.parsed()}) == 4
    assert outbox_states(s) == {"sent": 4}


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
def test_an_authentication_failure_takes_the_channel_down_without_a_retry_storm(
    cli: CliRunner, tmp_path: Path, config_dir: Path, sms: SmsServer
) -> None:
    recorder = Recorder()
    with smtp_server(recorder, authenticator=rejecting, auth_require_tls=False) as port:
        cfg = dispatch_config(
            tmp_path, config_dir, port, sms.url, extra_email="  user: notice\n  password: wrong\n"
        )
        s = DispatchSetup(CliRunner(cfg), cfg, tmp_path)
        load_notices(s, 6)
        result = _dispatch(s)
        assert (
            result["channels_down"] == ["email"] and result["sent"] == 0 and result["failed"] == 0
        )
        assert recorder.connections == 1  # one login attempt, not six
        again = _dispatch(s, now="2026-11-27T09:30")
        assert again["claimed"] == 0 and recorder.connections == 1
    assert outbox_states(s) == {"pending": 6}


def test_sms_rate_limits_and_server_errors_retry_and_a_timeout_is_unknown(
    setup: DispatchSetup, sms: SmsServer
) -> None:
    load_notices(setup, 3, email=False, phone=True)
    sms.reply(
        Reply(status=429, headers={"Retry-After": "120"}), Reply(status=503), Reply(delay=2.0)
    )
    first = _dispatch(setup)
    assert (first["retry"], first["unknown"]) == (2, 1)
    sms.default = Reply(status=200, body=b'{"id": "ok"}')
    later = _dispatch(setup, now="2026-11-27T12:00")
    assert later["sent"] == 2
    assert (
        _dispatch(setup, now="2026-11-28T12:00")["claimed"] == 0
    )  # the unknown one is never resent
    unknown = setup.cli("outbox", "--state", "unknown", "--json", now=NOW).json_lines()
    assert len(unknown) == 1 and unknown[0]["channel"] == "sms"
    assert len(sms.seen) == 5


def test_the_webhook_is_signed_and_carries_the_rendered_text(
    setup: DispatchSetup, sms: SmsServer
) -> None:
    import hashlib
    import hmac

    load_notices(setup, 1, email=False, phone=True)
    sms.default = Reply(status=200, body=b"{}")
    assert _dispatch(setup)["sent"] == 1
    seen = sms.seen[0]
    assert (
        seen.headers["x-signature"]
        == hmac.new(b"test-secret", seen.body, hashlib.sha256).hexdigest()
    )
    body = json.loads(seen.body)
    assert body["phone"] == "13900000001" and body["template"] == "repair_notice"
    assert "2026年12月29日" in body["text"]


def test_sms_stays_quiet_at_night_and_goes_in_the_morning(
    setup: DispatchSetup, sms: SmsServer
) -> None:
    load_notices(setup, 1, email=False, phone=True)
    sms.default = Reply(status=200, body=b"{}")
    night = _dispatch(setup, now="2026-11-27T22:30")
    assert (night["sent"], night["deferred"]) == (0, 1) and sms.seen == []
    assert _dispatch(setup, now="2026-11-28T07:59")["claimed"] == 0
    assert _dispatch(setup, now="2026-11-28T08:01")["sent"] == 1


def test_a_permanent_failure_falls_back_to_the_next_channel(
    setup: DispatchSetup, sms: SmsServer, recorder: Recorder
) -> None:
    notices = (setup.cfg / "notices.yaml").read_text(encoding="utf-8")
    (setup.cfg / "notices.yaml").write_text(
        notices.replace(
            "    channels: [email, sms, manual]\n    attach_docx: true",
            "    channels: [sms, email, manual]\n    attach_docx: true",
        ),
        encoding="utf-8",
    )
    load_notices(setup, 1, email=True, phone=True)
    sms.reply(Reply(status=400, body=b'{"error": "blacklisted"}'))
    first = _dispatch(setup)
    assert (first["failed"], first["fallbacks"], first["sent"]) == (
        1,
        1,
        1,
    )  # the e-mail went in the same run
    assert _dispatch(setup)["claimed"] == 0
    assert len(recorder.received) == 1
    assert outbox_states(setup) == {"failed": 1, "sent": 1}


def test_a_record_closed_before_sending_cancels_its_notice(
    setup: DispatchSetup, recorder: Recorder
) -> None:
    load_notices(setup, 10)
    rows = [penalty(i) for i in range(2, 11)]
    assert (
        setup.cli(
            "sync", "--file", str(write_rows(setup.tmp / "p2.csv", rows)), now="2026-11-27T10:00"
        ).code
        == 0
    )
    assert setup.cli("eligibility", now="2026-11-27T10:00").code == 0
    result = _dispatch(setup, now="2026-11-27T10:00")
    assert (result["cancelled"], result["sent"]) == (1, 9)
    assert len(recorder.received) == 9


def test_a_name_with_cr_lf_or_html_cannot_inject_headers_and_is_escaped(
    setup: DispatchSetup, recorder: Recorder
) -> None:
    rows = [penalty(1, CF_XDR_MC="双鸭山<b>坏</b>公司")]
    assert (
        setup.cli("sync", "--file", str(write_rows(setup.tmp / "p.csv", rows)), now=NOW).code == 0
    )
    contacts = [
        {
            "统一社会信用代码": uscc(1),
            "联系人": "张三\r\nBcc: victim@example.net",
            "联系电话": "",
            "电子邮箱": "c1@example.com",
        }
    ]
    setup.cli(
        "contacts",
        "import",
        str(write_rows(setup.tmp / "c.csv", contacts, headers=CONTACT_HEADERS)),
        now=NOW,
    )
    setup.cli("eligibility", now=NOW)
    setup.cli("notices", "plan", now=NOW)
    assert _dispatch(setup)["sent"] == 1
    message = recorder.parsed()[0]
    assert message["Bcc"] is None and recorder.received[0][1] == ["c1@example.com"]
    html = message.get_body(("html",)).get_content()
    assert "&lt;b&gt;坏&lt;/b&gt;" in html and "<b>坏</b>" not in html


def _attempts(db_url: str, outbox_id: int) -> list[tuple[str | None, str | None]]:
    from sqlalchemy import select

    from pipeline.db.engine import make_engine
    from pipeline.db.models import DeliveryAttempt

    engine = make_engine(db_url)
    query = (
        select(DeliveryAttempt.outcome, DeliveryAttempt.error)
        .where(DeliveryAttempt.outbox_id == outbox_id)
        .order_by(DeliveryAttempt.id)
    )
    with engine.connect() as conn:
        found = [(outcome, error) for outcome, error in conn.execute(query)]
    engine.dispose()
    return found


def test_a_person_requeues_an_unknown_message_after_checking_audited(
    setup: DispatchSetup, sms: SmsServer, db_url: str
) -> None:
    load_notices(setup, 1, email=False, phone=True)
    sms.reply(Reply(delay=2.0))  # the gateway never answers: unknown
    assert _dispatch(setup)["unknown"] == 1
    [row] = setup.cli("outbox", "--state", "unknown", "--json").json_lines()
    early = setup.cli("outbox", "requeue", "--state", "unknown", "--before", "2026-11-27", "--json")
    assert early.code == 0 and early.json() == {"requeued": 0, "ids": [], "from": "unknown"}
    result = setup.cli(
        "outbox",
        "requeue",
        "--state",
        "unknown",
        "--before",
        "2026-11-27T10:00",
        "--actor",
        "张科员",
        "--json",
        now="2026-11-27T10:30",
    )
    assert result.code == 0, result.err
    assert result.json() == {"requeued": 1, "ids": [row["id"]], "from": "unknown"}
    assert _attempts(db_url, row["id"])[-1] == ("requeued", "requeued from unknown by 张科员")
    sms.default = Reply(status=200, body=b'{"id": "ok"}')
    assert _dispatch(setup, now="2026-11-27T10:30")["sent"] == 1
    assert outbox_states(setup) == {"sent": 1}
    bad = setup.cli("outbox", "requeue", "--state", "sent")
    assert bad.code == 2  # only unknown, written or failed messages


def test_notices_only_written_to_files_can_be_requeued_once_a_channel_works(
    cli: CliRunner, tmp_path: Path
) -> None:
    load_notices(DispatchSetup(cli, cli.config_dir, tmp_path), 2)
    written = cli("dispatch", "--json").json()["written"]  # the notices and a digest
    assert written == 3 and cli("dispatch", "--json").json()["written"] == 0
    assert cli("outbox", "requeue", "--state", "written", "--json").json()["requeued"] == written
    assert cli("dispatch", "--json").json()["written"] == written  # still no SMTP: again
