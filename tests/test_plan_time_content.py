"""The planner renders every channel's content; the dispatcher only sends (issue 10).

The DOCX is rendered at plan time (in the business zone's date) and kept in the outbox
payload; a permanent failure falls back to content and recipients the planner stored,
with a `Dispatcher` that has no planner at all. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import ast
import base64
import datetime as dt
import email
import inspect
import os
import time
from collections.abc import Iterator
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

import pipeline.notices.docx as docx_module
from pipeline.app import App
from pipeline.channels.fake import FakeChannel, Script
from pipeline.channels.file import file_stem
from pipeline.db.engine import make_engine
from pipeline.delivery.dispatcher import Dispatcher, DispatchResult, Limits
from pipeline.errors import ChannelDown, ChannelError, OutcomeUnknown
from pipeline.notices.docx import DOCX_FILENAME, docx_content, docx_text, render_docx
from pipeline.notices.outbox import outbox
from tests.helpers import CliRunner, penalty, uscc, write_rows

REPO = Path(__file__).resolve().parent.parent
CONTACT_HEADERS = ["统一社会信用代码", "联系人", "联系电话", "电子邮箱"]
NOW = "2026-11-27T09:00"


def _plan(cli: CliRunner, tmp_path: Path, email: str = "", phone: str = "", now: str = NOW) -> None:
    """One penalty, its company's contact, eligibility, and the notices plan — at `now`."""
    assert (
        cli("sync", "--file", str(write_rows(tmp_path / "p.csv", [penalty(1)])), now=now).code == 0
    )
    contacts = [
        {"统一社会信用代码": uscc(1), "联系人": "王经理", "联系电话": phone, "电子邮箱": email}
    ]
    path = write_rows(tmp_path / "c.csv", contacts, headers=CONTACT_HEADERS)
    assert cli("contacts", "import", str(path), now=now).code == 0
    assert cli("eligibility", now=now).code == 0
    assert cli("notices", "plan", now=now).code == 0


def _rows(db_url: str, kind: str = "repair_notice") -> list[dict[str, Any]]:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            query = select(outbox).where(outbox.c.kind == kind).order_by(outbox.c.id)
            return [dict(r) for r in conn.execute(query).mappings()]
    finally:
        engine.dispose()


def _planned_docx(row: dict[str, Any]) -> bytes:
    return base64.b64decode(row["payload"]["docx"]["content"])


def _no_rendering(*args: object) -> bytes:
    raise AssertionError("the DOCX was rendered after planning")


@pytest.fixture
def utc_host() -> Iterator[None]:
    """The host's zone is UTC (as in most containers), whatever the business zone is."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    try:
        yield
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()


# --------------------------------------------------------------------------- the DOCX


def test_the_docx_sent_is_the_one_rendered_at_plan_time(
    cli: CliRunner, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _plan(cli, tmp_path, email="c1@example.com")
    [row] = _rows(db_url)
    planned = _planned_docx(row)
    assert "双鸭山市测试1有限公司" in docx_text(planned)
    monkeypatch.setattr(docx_module, "render_docx", _no_rendering)
    assert cli("dispatch", "--json").json()["written"] >= 1  # the file channel: written, not sent
    folder = tmp_path / "var" / "outbox" / "email"
    stem = file_stem(row["key"])
    assert (folder / f"{stem}-{DOCX_FILENAME}").read_bytes() == planned
    eml = email.message_from_bytes((folder / f"{stem}.eml").read_bytes(), policy=default_policy)
    assert isinstance(eml, EmailMessage)
    [attachment] = eml.iter_attachments()
    assert attachment.get_filename() == DOCX_FILENAME
    assert attachment.get_content() == planned


def test_a_docx_planned_after_midnight_in_the_business_zone_bears_that_day_on_a_utc_host(
    utc_host: None, cli: CliRunner, db_url: str, tmp_path: Path
) -> None:
    # 00:30 on the 28th in Asia/Shanghai is 16:30 on the 27th in UTC, the host's zone
    _plan(cli, tmp_path, email="c1@example.com", now="2026-11-28T00:30")
    [row] = _rows(db_url)
    assert row["payload"]["docx"]["date"] == "2026年11月28日"
    assert cli("dispatch", now="2026-11-28T00:30").code == 0
    sent = tmp_path / "var" / "outbox" / "email" / f"{file_stem(row['key'])}-{DOCX_FILENAME}"
    lines = docx_text(sent.read_bytes()).splitlines()
    assert "2026年11月28日" in lines and "2026年11月27日" not in lines


@pytest.mark.parametrize("zone", ["UTC", "Asia/Shanghai", "America/Los_Angeles"])
def test_a_docx_is_the_same_bytes_in_any_host_zone(zone: str, utc_host: None) -> None:
    reference = render_docx("某公司", "第一段。\n\n第二段。", "宝山区营商环境局", "2026年11月28日")
    os.environ["TZ"] = zone
    time.tzset()
    again = render_docx("某公司", "第一段。\n\n第二段。", "宝山区营商环境局", "2026年11月28日")
    assert again == reference


def test_a_row_planned_before_the_docx_was_kept_gets_the_document_of_its_stored_texts() -> None:
    texts = {
        "entity_name": "某公司",
        "issuer": "宝山区营商环境局",
        "date": "2026年11月28日",
        "body": "第一段。\n\n第二段。",
    }
    legacy = docx_content(texts)  # no "content": planned by an earlier version
    assert legacy == render_docx(
        texts["entity_name"], texts["body"], texts["issuer"], texts["date"]
    )
    assert "2026年11月28日" in docx_text(legacy).splitlines()


# --------------------------------------------------------------------------- fallback


def _dispatcher(app: App, transports: dict[str, Any]) -> Dispatcher:
    tz = app.config.settings.tz
    limits = Limits(tz, (dt.time(21), dt.time(8)), 10, {})
    return Dispatcher(
        app.engine, app.config.notices, transports, limits, app.clock.now, "test-worker"
    )


def _dispatch(config_dir: Path, now: str, **transports: FakeChannel) -> DispatchResult:
    app = App.load(str(config_dir), now)
    try:
        return _dispatcher(app, transports).run()
    finally:
        app.close()


def _refuse_notices(error: ChannelError) -> Script:
    """Refuse every repair notice (not the departments' digests)."""
    return lambda message, _call: error if message.key.startswith("repair_notice:") else None


def test_the_dispatcher_takes_no_planner() -> None:
    assert "planner" not in inspect.signature(Dispatcher).parameters


def test_the_planner_stores_each_fallback_with_its_key_and_recipient(
    cli: CliRunner, db_url: str, tmp_path: Path
) -> None:
    _plan(cli, tmp_path, email="c1@example.com", phone="13912345678")
    [row] = _rows(db_url)
    assert row["channel"] == "email"
    fallbacks = [
        (f["channel"], f["recipient"], f["recipient_name"]) for f in row["payload"]["fallbacks"]
    ]
    assert fallbacks == [("sms", "13912345678", "王经理"), ("manual", "responsible-person", None)]
    assert row["payload"]["fallbacks"][0]["key"] == row["key"].replace(
        ":email:c1@example.com", ":sms:13912345678"
    )


def test_a_permanent_failure_falls_back_to_the_content_planned_days_before(
    cli: CliRunner, db_url: str, tmp_path: Path, config_dir: Path
) -> None:
    _plan(cli, tmp_path, email="c1@example.com", phone="13912345678")
    [planned] = _rows(db_url)
    mail = FakeChannel("email", _refuse_notices(ChannelError("550 no such user", permanent=True)))
    sms = FakeChannel("sms")
    result = _dispatch(
        config_dir, "2026-11-30T09:00", email=mail, sms=sms, manual=FakeChannel("manual")
    )
    assert (result.failed, result.fallbacks) == (1, 1)
    [message] = [m for m in sms.sent if m.key.startswith("repair_notice:")]
    assert message.key == planned["payload"]["fallbacks"][0]["key"]
    assert (message.recipient, message.recipient_name) == ("13912345678", "王经理")
    assert message.text == planned["payload"]["sms_text"] and message.attachments == ()
    states = {r["channel"]: r["state"] for r in _rows(db_url)}
    assert states == {"email": "failed", "sms": "sent"}
    assert _rows(db_url)[1]["payload"]["docx"] == planned["payload"]["docx"]  # dated the 27th


def test_a_chain_of_failures_ends_at_the_manual_task_with_the_planned_docx(
    cli: CliRunner, db_url: str, tmp_path: Path, config_dir: Path
) -> None:
    _plan(cli, tmp_path, email="c1@example.com", phone="13912345678")
    [planned] = _rows(db_url)
    refused = _refuse_notices(ChannelError("refused", permanent=True))
    manual = FakeChannel("manual")
    email_, sms = FakeChannel("email", refused), FakeChannel("sms", refused)
    result = _dispatch(config_dir, NOW, email=email_, sms=sms, manual=manual)
    assert (result.failed, result.fallbacks) == (2, 2)
    [task] = manual.sent
    assert task.subject == planned["payload"]["subject"] and task.text == planned["payload"]["text"]
    assert [a.content for a in task.attachments] == [_planned_docx(planned)]
    assert [r["state"] for r in _rows(db_url)] == ["failed", "failed", "sent"]


@pytest.mark.parametrize(
    ("error", "state"),
    [
        (ChannelDown("535 authentication failed", code="535"), "pending"),
        (OutcomeUnknown("lost after DATA", code="no-answer"), "unknown"),
        (ChannelError("421 try later", permanent=False, code="421"), "retry"),
    ],
)
def test_only_a_permanent_failure_falls_back(
    error: ChannelError,
    state: str,
    cli: CliRunner,
    db_url: str,
    tmp_path: Path,
    config_dir: Path,
) -> None:
    _plan(cli, tmp_path, email="c1@example.com", phone="13912345678")
    sms = FakeChannel("sms")
    result = _dispatch(config_dir, NOW, email=FakeChannel("email", _refuse_notices(error)), sms=sms)
    assert result.fallbacks == 0 and not [m for m in sms.sent if m.key.startswith("repair_notice:")]
    assert [(r["channel"], r["state"]) for r in _rows(db_url)] == [("email", state)]
    assert result.channels_down == (["email"] if isinstance(error, ChannelDown) else [])


# --------------------------------------------------------------------------- host time


def _host_time_calls(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """Calls that read the host's zone or clock: x.astimezone(), datetime.now(), date.today()…"""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        name, owner = node.func.attr, ast.unparse(node.func.value)
        bare = not node.args and not node.keywords
        if (
            (name == "astimezone" and bare)
            or (name == "now" and bare and owner.endswith("datetime"))
            or (
                name in ("today", "utcnow", "utcfromtimestamp")
                and owner.endswith(("date", "datetime"))
            )
        ):
            yield node.lineno, ast.unparse(node)


def test_no_code_reads_the_host_time_zone() -> None:
    found = [
        f"{path.relative_to(REPO)}:{line}: {call}"
        for path in sorted((REPO / "pipeline").rglob("*.py"))
        for line, call in _host_time_calls(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert found == []


def test_a_notice_only_written_to_a_file_does_not_tell_the_company(
    cli: CliRunner, db_url: str, tmp_path: Path
) -> None:
    _plan(cli, tmp_path, email="c1@example.com")
    result = cli("dispatch", "--json")
    body = result.json()
    assert (body["sent"], body["written"], body["written_by_channel"]) == (
        0,
        2,
        {"email": 2},
    )  # notice + digest
    assert (
        "e-mail is not configured (email.host): 2 notices written to var/outbox/email, not sent"
        in result.err
    )
    assert "邮件未配置（email.host）" in result.err
    states = {r["kind"]: r["state"] for r in cli("outbox", "--json").json_lines()}
    assert states == {"repair_notice": "written", "department_digest": "written"}
    [entry] = cli("ledger", "show", "--json").json_lines()
    assert (entry["progress"], entry["notified_at"], entry["notified_channel"]) == (0, None, None)
    assert cli("dispatch", "--json").json()["written"] == 0  # final: not written twice
