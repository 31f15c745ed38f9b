"""Monthly and period reports: KPIs against a hand-computed ledger, on SQLite and PostgreSQL.

The fixture ledger (all times Asia/Shanghai) — report month 2026-10, run on 2026-11-20,
so every change made in November must be rolled back:

=====  ======  ====  ===========================================================
rec    entity  dept  history
=====  ======  ====  ===========================================================
P1     e1      SWJ   repairable 08-07; 09-05 progress 1 by hand (told + aware);
                     10-25 willing, progress 4 → repaired
P2     e2      SWJ   repairable 08-07; 09-05 e-mail delivered, willing; 10-03 an
                     outbox notice left `unknown`; 11-10 progress 4 (rolled back)
                     → as of October: willing + eligible, not repaired, overdue
P3     e3      SWJ   vanished 10-10 → closed repaired_early (changes: 修复销账)
P4     e1      SWJ   in its minimum period; planned 10-15, progress 0 → overdue
P6     e6      SWJ   a warning: not published → out of scope
P7     e7      SWJ   first seen 10-10 (changes: 新增), green channel (医药);
                     11-05 e-mail delivered, 11-06 receipt (both rolled back)
P5     e5      YJJ   09-05 unwilling; 10-03 SMS delivered; an outbox notice `failed`
L1     e9      YJJ   list entry removed 10-15 → progress 5, closed removed
L2     e10     YJJ   list entry; 09-05 progress 1 by hand; 10-12 willing, progress 3
=====  ======  ====  ===========================================================

Hand-computed, as of 2026-10-31 24:00:

- SWJ: entities e1 e2 e3 e7 = 4; told e1 e2 = 2 → 50 %; aware e1 = 1 → 25 %;
  repaired P1 P3 of willing+eligible P1 P2 P3 → 2/3; overdue P2 P4 = 2; added 1,
  closed_repaired 1; unknown 1; green 1; records 5 (P6 out).
- YJJ: entities e5 e9 e10 = 3; told e5 e10 → 2/3; aware e10 → 1/3; repaired L1 of
  L1 L2 → 1/2; overdue 0; closed_removed 1; failed 1; records 3.
- Total: entities 7; told 4/7; aware 2/7; repaired 3/5; overdue 2.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from sqlalchemy import Engine, select, update

from pipeline.cli import build_parser
from pipeline.db.engine import make_engine
from pipeline.db.models import OutboxMessage, Record, table_of
from pipeline.ledger.state import change
from pipeline.notices.outbox import Planned, enqueue
from tests.helpers import (
    EMERGENCY,
    EMERGENCY_USCC,
    CliRunner,
    DbCopy,
    cli_at,
    missing_tool,
    penalty,
    uscc,
    write_rows,
)

TZ = ZoneInfo("Asia/Shanghai")
RUN = "2026-11-20T09:00"
records = table_of(Record)
outbox = table_of(OutboxMessage)


def test_report_monthly_and_period_are_commands_of_the_cli() -> None:
    parser = build_parser()
    assert parser.parse_args(["report", "monthly", "--month", "2026-10"]).month == "2026-10"
    period = parser.parse_args(["report", "period", "--from", "2026-09-01", "--to", "2026-10-31"])
    assert (period.start, period.end) == (dt.date(2026, 9, 1), dt.date(2026, 10, 31))


def _at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=TZ)


def _list_row(n: int, no: int) -> dict[str, str]:
    return {
        "名单名称": "安全生产严重失信主体名单",
        "企业名称": f"双鸭山市测试{n}有限公司",
        "统一社会信用代码": uscc(n),
        "认定部门": EMERGENCY,
        "认定文书号": f"宝应急认〔2026〕{no}号",
        "列入日期": "2026-03-01",
        "列入原因": "较大事故",
    }


def _yjj(n: int, **extra: str) -> dict[str, str]:
    return penalty(
        n, CF_CFJG=EMERGENCY, CF_CFJGDM=EMERGENCY_USCC, CF_WSH=f"宝应急罚〔2026〕{n}号", **extra
    )


def _mark(engine: Engine, decision_no: str, values: dict[str, Any], at: str) -> None:
    """What the dispatcher writes when a notice is delivered (pipeline.delivery.dispatcher._sent)."""
    with engine.begin() as conn:
        row = (
            conn.execute(select(records).where(records.c.decision_no == decision_no))
            .mappings()
            .one()
        )
        change(conn, row, values, _at(at), "notice", "test")


def _notice(engine: Engine, decision_no: str, state: str, at: str) -> None:
    with engine.begin() as conn:
        row = (
            conn.execute(select(records).where(records.c.decision_no == decision_no))
            .mappings()
            .one()
        )
        key = f"repair_notice:{row['id']}:{at}:email:x@example.com"
        enqueue(
            conn,
            [
                Planned(
                    key,
                    "repair_notice",
                    at,
                    "email",
                    "x@example.com",
                    None,
                    row["id"],
                    row["department_code"],
                    {"subject": "s"},
                )
            ],
            _at(at),
        )
        conn.execute(update(outbox).where(outbox.c.key == key).values(state=state))


def build_ledger(cli: CliRunner, tmp: Path, engine: Engine) -> None:
    def ok(*args: str, now: str) -> None:
        result = cli(*args, now=now)
        assert result.code == 0, (args, result.err)

    first = [
        penalty(1, CF_JDRQ="2026-05-06"),
        penalty(2, CF_JDRQ="2026-05-06"),
        penalty(3, CF_JDRQ="2026-05-06"),
        penalty(4, CF_JDRQ="2026-08-20", CF_XDR_SHXYM=uscc(1), CF_XDR_MC="双鸭山市测试1有限公司"),
        penalty(6, CF_CFLB="警告", CF_JDRQ="2026-05-06"),
        _yjj(5, CF_JDRQ="2026-05-06"),
    ]
    ok("sync", "--file", str(write_rows(tmp / "p1.csv", first)), "--force", now="2026-09-01T07:00")
    ok(
        "sync",
        "--file",
        str(write_rows(tmp / "l1.csv", [_list_row(9, 1), _list_row(10, 2)])),
        "--kind",
        "severe-list",
        "--force",
        now="2026-09-01T07:10",
    )
    ok("eligibility", now="2026-09-01T07:30")
    ok("ledger", "set", "宝税罚〔2026〕1号", "--progress", "1", now="2026-09-05T10:00")
    _mark(
        engine,
        "宝税罚〔2026〕2号",
        {"progress": 1, "notified_at": _at("2026-09-05T10:00"), "notified_channel": "email"},
        "2026-09-05T10:00",
    )
    ok("ledger", "set", "宝税罚〔2026〕2号", "--willing", "yes", now="2026-09-05T10:05")
    ok("ledger", "set", "宝税罚〔2026〕4号", "--planned", "2026-10-15", now="2026-09-05T10:10")
    ok("ledger", "set", "宝应急罚〔2026〕5号", "--willing", "no", now="2026-09-05T10:15")
    ok("ledger", "set", "宝应急认〔2026〕2号", "--progress", "1", now="2026-09-05T10:20")
    _mark(
        engine,
        "宝应急罚〔2026〕5号",
        {"progress": 1, "notified_at": _at("2026-10-03T10:00"), "notified_channel": "sms"},
        "2026-10-03T10:00",
    )
    _notice(engine, "宝税罚〔2026〕2号", "unknown", "2026-10-03T11:00")
    _notice(engine, "宝应急罚〔2026〕5号", "failed", "2026-10-03T11:00")
    second = [r for r in first if r["CF_WSH"] != "宝税罚〔2026〕3号"]
    second.append(penalty(7, CF_JDRQ="2026-09-28", CF_XDR_MC="双鸭山市测试7医药有限公司"))
    ok("sync", "--file", str(write_rows(tmp / "p2.csv", second)), "--force", now="2026-10-10T07:00")
    ok("eligibility", now="2026-10-10T07:30")
    # P3 left the snapshot: 待核实 until the department confirms why (here: repaired)
    ok("ledger", "set", "宝税罚〔2026〕3号", "--confirm", "repaired", now="2026-10-10T08:00")
    ok(
        "ledger",
        "set",
        "宝应急认〔2026〕2号",
        "--willing",
        "yes",
        "--progress",
        "3",
        now="2026-10-12T10:00",
    )
    ok(
        "sync",
        "--file",
        str(write_rows(tmp / "l2.csv", [_list_row(10, 2)])),
        "--kind",
        "severe-list",
        "--force",
        now="2026-10-15T07:00",
    )
    ok("eligibility", now="2026-10-15T07:30")
    ok(
        "ledger",
        "set",
        "宝税罚〔2026〕1号",
        "--willing",
        "yes",
        "--progress",
        "4",
        now="2026-10-25T10:00",
    )
    # November: all of this must be rolled back in October's report
    _mark(
        engine,
        "宝税罚〔2026〕7号",
        {"progress": 1, "notified_at": _at("2026-11-05T10:00"), "notified_channel": "email"},
        "2026-11-05T10:00",
    )
    ok("ledger", "set", "宝税罚〔2026〕7号", "--confirm-receipt", now="2026-11-06T10:00")
    ok("ledger", "set", "宝税罚〔2026〕2号", "--progress", "4", now="2026-11-10T10:00")
    _notice(engine, "宝税罚〔2026〕2号", "unknown", "2026-11-05T11:00")


def _build(url: str, folder: Path, config_dir: Path) -> None:
    """The ledger of the module docstring, from `init` on an empty database."""
    engine = make_engine(url)
    try:
        with cli_at(url, folder, config_dir) as cli:
            assert cli("init").code == 0
            build_ledger(cli, folder, engine)
    finally:
        engine.dispose()


@pytest.fixture
def ledger_url(db_copy: DbCopy, config_dir: Path) -> str:
    """A fresh copy of the ledger (built once per backend and session)."""
    return db_copy("reports-ledger", lambda url, folder: _build(url, folder, config_dir))


@pytest.fixture
def ledger(
    ledger_url: str, config_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> CliRunner:
    """The CLI (as the `cli` fixture sets it up) on a fresh copy of the ledger."""
    monkeypatch.setenv("CREDIT_REPAIR_DATABASE_URL", ledger_url)
    monkeypatch.chdir(tmp_path)
    return CliRunner(config_dir)


def _dept(result: dict[str, Any], code: str) -> dict[str, Any]:
    return next(d for d in result["departments"] if d["code"] == code)


def _reports(cli: CliRunner) -> list[dict[str, Any]]:
    return [
        r for r in cli("outbox", "--json", now=RUN).json_lines() if r["kind"] == "monthly_report"
    ]


EXPECTED = {
    "SWJ": {
        "records": 5,
        "penalties": 5,
        "list_entries": 0,
        "open": 4,
        "entities": 4,
        "entities_told": 2,
        "told_rate": 0.5,
        "entities_aware": 1,
        "aware_rate": 0.25,
        "willing_eligible": 3,
        "repaired": 2,
        "repair_rate": 0.6667,
        "overdue": 2,
        "green_channel": 1,
        "added": 1,
        "closed_repaired": 1,
        "closed_expired": 0,
        "closed_removed": 0,
        "delivery_unknown": 1,
        "delivery_failed": 0,
    },
    "YJJ": {
        "records": 3,
        "penalties": 1,
        "list_entries": 2,
        "open": 2,
        "entities": 3,
        "entities_told": 2,
        "told_rate": 0.6667,
        "entities_aware": 1,
        "aware_rate": 0.3333,
        "willing_eligible": 2,
        "repaired": 1,
        "repair_rate": 0.5,
        "overdue": 0,
        "green_channel": 0,
        "added": 0,
        "closed_repaired": 0,
        "closed_expired": 0,
        "closed_removed": 1,
        "delivery_unknown": 0,
        "delivery_failed": 1,
    },
    "total": {
        "records": 8,
        "entities": 7,
        "entities_told": 4,
        "told_rate": 0.5714,
        "entities_aware": 2,
        "aware_rate": 0.2857,
        "willing_eligible": 5,
        "repaired": 3,
        "repair_rate": 0.6,
        "overdue": 2,
        "green_channel": 1,
        "added": 1,
        "closed_repaired": 1,
        "closed_removed": 1,
        "delivery_unknown": 1,
        "delivery_failed": 1,
    },
}


def test_kpis_match_the_hand_computed_ledger_as_of_the_months_end(
    ledger: CliRunner, tmp_path: Path
) -> None:
    result = ledger(
        "report", "monthly", "--month", "2026-10", "--out", str(tmp_path / "out"), "--json", now=RUN
    )
    assert result.code == 0, result.err
    kpis = result.json()
    assert kpis["period"] == "2026-10" and kpis["as_of"] == "2026-11-01T00:00:00+08:00"
    for code in ("SWJ", "YJJ"):
        got = _dept(kpis, code)
        assert {k: got[k] for k in EXPECTED[code]} == EXPECTED[code], code
    assert {k: kpis["total"][k] for k in EXPECTED["total"]} == EXPECTED["total"]
    others = [d for d in kpis["departments"] if d["code"] not in ("SWJ", "YJJ")]
    assert all(d["records"] == 0 and d["told_rate"] is None for d in others)
    assert kpis["rows"] == {"annex3": 5, "annex4": 1, "changes": 3}
    # the trend: 12 months before, then this one; September recomputed as of its end
    assert [p["period"] for p in kpis["trend"]][-2:] == ["2026-09", "2026-10"] and len(
        kpis["trend"]
    ) == 13
    september = kpis["trend"][-2]
    assert (september["source"], september["records"], september["added"]) == ("recomputed", 7, 7)
    assert september["told_rate"] == round(
        3 / 6, 4
    )  # e1 e2 e10 of e1 e2 e3 e5 e9 e10 (P5's SMS came in October)
    assert kpis["trend"][0]["records"] == 0 and kpis["trend"][0]["told_rate"] is None


def test_the_workbook_holds_the_annexes_ledgers_changes_and_native_charts(
    ledger: CliRunner, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    kpis = ledger(
        "report", "monthly", "--month", "2026-10", "--out", str(out), "--json", now=RUN
    ).json()
    path = Path(kpis["files"]["xlsx"])
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["汇总", "趋势", "附件1", "附件2", "附件3", "附件4", "动态调整"]
    annex1 = [list(row) for row in wb["附件1"].iter_rows(min_row=4, values_only=True)]
    assert annex1 == [
        [1, "国家税务总局双鸭山市宝山区税务局", 4, None],
        [2, "宝山区应急管理局", 1, None],
        [None, "合计", 5, None],
    ]
    annex2 = list(wb["附件2"].iter_rows(min_row=4, values_only=True))
    assert (
        annex2[0][1:] == ("双鸭山市测试10有限公司", uscc(10), 1, "宝山区应急管理局")
        and annex2[-1][3] == 1
    )
    annex3 = list(wb["附件3"].iter_rows(min_row=4, values_only=True))
    assert annex3[0][3] == "宝税罚〔2026〕7号"  # green channel first
    p2 = next(r for r in annex3 if r[3] == "宝税罚〔2026〕2号")
    assert (p2[5], p2[7]) == ("是", "1 已告知")  # progress 4 of November rolled back
    changes = {(r[1], r[6]) for r in wb["动态调整"].iter_rows(min_row=4, values_only=True)}
    assert changes == {
        ("新增", "宝税罚〔2026〕7号"),
        ("修复销账", "宝税罚〔2026〕3号"),
        ("移出名单（修复退出）", "宝应急认〔2026〕1号"),
    }
    total = next(r for r in wb["汇总"].iter_rows(values_only=True) if r[0] == "合计")
    assert total[7] == pytest.approx(0.5714)
    with zipfile.ZipFile(path) as z:
        charts = [n for n in z.namelist() if n.startswith("xl/charts/chart")]
    assert len(charts) == 3  # summary bars, trend line, trend bars


def test_the_html_summary_has_the_chinese_kpis_and_a_table_chart(
    ledger: CliRunner, tmp_path: Path
) -> None:
    kpis = ledger(
        "report", "monthly", "--month", "2026-10", "--out", str(tmp_path), "--json", now=RUN
    ).json()
    html = Path(kpis["files"]["html"]).read_text(encoding="utf-8")
    assert '<meta charset="utf-8">' in html and "<script" not in html and "<svg" not in html
    for text in (
        "告知率",
        "知晓率",
        "修复率",
        "逾期",
        "57.1%",
        "28.6%",
        "60.0%",
        "国家税务总局双鸭山市宝山区税务局",
        "2026年10月",
    ):
        assert text in html, text
    assert 'width="57%" bgcolor="#4472C4"' in html  # the total's bar
    messages = _reports(ledger)
    assert {m["recipient"] for m in messages} == {
        "credit-bureau@example.org",
        "bureau-head@example.org",
        "tax@example.org",
        "emergency@example.org",
        "samr@example.org",
        "env@example.org",
        "housing@example.org",
        "fire@example.org",
    }
    assert all(
        m["channel"] == "email" and m["state"] == "pending" and m["record_id"] is None
        for m in messages
    )


def test_the_message_renders_as_an_email_through_the_dispatchers_mapping(
    ledger: CliRunner, tmp_path: Path, ledger_url: str
) -> None:
    from pipeline.channels.email import render_eml
    from pipeline.delivery.dispatcher import to_message

    ledger("report", "monthly", "--month", "2026-10", "--out", str(tmp_path), now=RUN)
    engine = make_engine(ledger_url)
    try:
        with engine.connect() as conn:
            row = (
                conn.execute(select(outbox).where(outbox.c.recipient == "tax@example.org"))
                .mappings()
                .one()
            )
    finally:
        engine.dispose()
    message = to_message(dict(row))
    assert "信用修复工作2026年10月报告" in message.subject and "告知率 50.0%" in message.text
    assert (
        message.html is not None and 'bgcolor="#FFF2CC"' in message.html
    )  # its own row highlighted
    eml = render_eml(message, "notice@example.gov.cn")
    assert b'charset="utf-8"' in eml or b"charset=utf-8" in eml


def test_rerun_rewrites_the_files_but_sends_only_with_resend(
    ledger: CliRunner, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    first = ledger(
        "report", "monthly", "--month", "2026-10", "--out", str(out), "--json", now=RUN
    ).json()
    assert (first["send"], first["sent"]) == ("sent", 8)
    xlsx = Path(first["files"]["xlsx"])
    xlsx.write_bytes(b"stale")
    again = ledger(
        "report",
        "monthly",
        "--month",
        "2026-10",
        "--out",
        str(out),
        "--json",
        now="2026-11-21T09:00",
    ).json()
    assert (again["send"], again["sent"]) == ("already_sent", 0) and len(_reports(ledger)) == 8
    assert zipfile.is_zipfile(xlsx)  # rewritten
    assert {k: again["total"][k] for k in EXPECTED["total"]} == EXPECTED[
        "total"
    ]  # reproduced exactly
    resent = ledger(
        "report",
        "monthly",
        "--month",
        "2026-10",
        "--out",
        str(out),
        "--resend",
        "--json",
        now="2026-11-21T10:00",
    ).json()
    assert (resent["send"], resent["sent"]) == ("resent", 8) and len(_reports(ledger)) == 16


def test_the_current_month_uses_current_values_and_reuses_stored_months(
    ledger: CliRunner, tmp_path: Path
) -> None:
    ledger("report", "monthly", "--month", "2026-10", "--out", str(tmp_path), "--no-send", now=RUN)
    kpis = ledger(
        "report",
        "monthly",
        "--month",
        "2026-11",
        "--out",
        str(tmp_path),
        "--no-send",
        "--json",
        now=RUN,
    ).json()
    assert kpis["as_of"] == "2026-11-20T09:00:00+08:00" and kpis["send"] == "not_requested"
    swj = _dept(
        kpis, "SWJ"
    )  # P3 closed in October: out; P7 told (11-05) and aware (11-06); P2 repaired (11-10)
    assert (swj["entities"], swj["entities_told"], swj["entities_aware"], swj["repaired"]) == (
        3,
        3,
        2,
        2,
    )
    assert swj["delivery_unknown"] == 2
    assert (
        kpis["trend"][-2]["source"] == "stored"
        and kpis["trend"][-2]["told_rate"] == EXPECTED["total"]["told_rate"]
    )


def test_a_period_report_covers_a_span_with_the_same_code(
    ledger: CliRunner, tmp_path: Path
) -> None:
    result = ledger(
        "report",
        "period",
        "--from",
        "2026-09-01",
        "--to",
        "2026-10-31",
        "--out",
        str(tmp_path),
        "--json",
        now=RUN,
    )
    assert result.code == 0, result.err
    kpis = result.json()
    assert (
        kpis["period"] == "2026-09-01..2026-10-31" and kpis["as_of"] == "2026-11-01T00:00:00+08:00"
    )
    assert (kpis["total"]["records"], kpis["total"]["added"], kpis["total"]["closed_repaired"]) == (
        8,
        8,
        1,
    )
    assert [p["period"] for p in kpis["trend"]] == ["2026-09", "2026-10"]
    assert Path(kpis["files"]["xlsx"]).name == "credit-repair-report-2026-09-01_2026-10-31.xlsx"
    assert (
        ledger("report", "period", "--from", "2026-10-31", "--to", "2026-09-01", now=RUN).code == 2
    )


def test_a_month_with_no_data_is_an_honest_empty_report(cli: CliRunner, tmp_path: Path) -> None:
    result = cli(
        "report", "monthly", "--month", "2026-08", "--out", str(tmp_path), "--json", now=RUN
    )
    assert result.code == 0, result.err
    kpis = result.json()
    assert (
        kpis["total"]["records"] == 0
        and kpis["total"]["told_rate"] is None
        and kpis["total"]["repair_rate"] is None
    )
    wb = openpyxl.load_workbook(kpis["files"]["xlsx"])
    assert next(wb["附件3"].iter_rows(min_row=4, values_only=True))[0] == "（无在账记录）"
    html = Path(kpis["files"]["html"]).read_text(encoding="utf-8")
    assert "本期无在账记录" in html and "—" in html
    assert cli("report", "monthly", "--month", "2026-13", now=RUN).code == 2


def test_the_default_month_is_the_previous_one(cli: CliRunner, tmp_path: Path) -> None:
    kpis = cli(
        "report", "monthly", "--out", str(tmp_path), "--no-send", "--json", now="2026-12-18T09:00"
    ).json()
    assert kpis["period"] == "2026-11"


def test_the_workbook_opens_in_libreoffice_and_converts_to_pdf(
    ledger: CliRunner, tmp_path: Path, lo_profile: Path
) -> None:
    if shutil.which("soffice") is None:
        missing_tool("LibreOffice (soffice) is not installed: apt-get install libreoffice-calc")
    kpis = ledger(
        "report", "monthly", "--month", "2026-10", "--out", str(tmp_path / "out"), "--json", now=RUN
    ).json()
    pdf_dir = tmp_path / "pdf"
    done = subprocess.run(
        [
            "soffice",
            f"-env:UserInstallation={lo_profile.as_uri()}",
            "--headless",
            "--convert-to",
            "pdf",
            "--outdir",
            str(pdf_dir),
            kpis["files"]["xlsx"],
        ],
        capture_output=True,
        timeout=180,
        check=False,
    )
    pdf = pdf_dir / "credit-repair-report-2026-10.pdf"
    assert done.returncode == 0 and pdf.exists(), done.stderr
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 5000


def test_the_monthly_report_job_reports_the_previous_month_once(
    cli: CliRunner, config_dir: Path, tmp_path: Path
) -> None:
    from jobs.monthly_report import SPEC
    from pipeline.app import App
    from pipeline.scheduler.runner import JobContext

    assert (SPEC.default.by_day, SPEC.default.at, SPEC.default.working_day_before) == (
        20,
        "09:00",
        True,
    )
    rows = write_rows(tmp_path / "p.csv", [penalty(1, CF_JDRQ="2026-10-28")])
    assert cli("sync", "--file", str(rows), now="2026-11-02").code == 0
    app = App.load(str(config_dir), "2026-12-18T09:00", commit=True)
    try:
        ctx = JobContext("monthly_report", "r1", None, app.clock.now(), {})
        first = SPEC.func(app, ctx).as_json()
        assert (first["period"], first["send"], first["sent"], first["records"]) == (
            "2026-11",
            "sent",
            8,
            1,
        )
        assert SPEC.func(app, ctx).as_json()["send"] == "already_sent"
        current = SPEC.func(
            app, JobContext("monthly_report", "r2", None, app.clock.now(), {"month": "current"})
        ).as_json()
        assert current["period"] == "2026-12"
    finally:
        app.close()


def _task(engine: Engine, decision_no: str, channel: str, state: str, at: str) -> None:
    """A repair notice in the outbox on `channel`, left in `state` (written: a file only)."""
    with engine.begin() as conn:
        row = (
            conn.execute(select(records).where(records.c.decision_no == decision_no))
            .mappings()
            .one()
        )
        key = f"repair_notice:{row['id']}:{at}:{channel}:x"
        enqueue(
            conn,
            [
                Planned(
                    key,
                    "repair_notice",
                    at,
                    channel,
                    "x",
                    None,
                    row["id"],
                    row["department_code"],
                    {"subject": "s"},
                )
            ],
            _at(at),
        )
        conn.execute(update(outbox).where(outbox.c.key == key).values(state=state))


HONEST = {
    "records": 5,
    "open": 5,
    "entities": 5,
    "entities_told": 1,
    "told_rate": 0.2,
    "to_confirm": 1,
    "overdue_display": 1,
    "file_only": 1,
    "manual_pending": 1,
    "repaired": 0,
    "closed_repaired": 0,
    "willing_eligible": 0,
    "repair_rate": None,
    "added": 0,
}


def test_kpis_count_what_was_not_concluded_apart_from_what_was(
    cli: CliRunner, tmp_path: Path, db_url: str
) -> None:
    """Vanished-unconfirmed, still shown past its period, file-only and manual-unconfirmed
    notices: none is told or repaired; each has its own column. Hand-computed:
    P11 file only · P12 vanished 10-10 (待核实) · P13 manual task unconfirmed ·
    P14 manual task confirmed by phone (told) · P15 decided 2023-05-08, removed 2026-05-09, still shown."""

    def ok(*args: str, now: str) -> None:
        result = cli(*args, now=now)
        assert result.code == 0, (args, result.err)

    rows = [penalty(n, CF_JDRQ="2026-05-06") for n in (11, 12, 13, 14)] + [
        penalty(15, CF_JDRQ="2023-05-08")
    ]
    ok(
        "sync",
        "--file",
        str(write_rows(tmp_path / "a.csv", rows)),
        "--force",
        now="2026-09-01T07:00",
    )
    ok("eligibility", now="2026-09-01T07:30")
    ok(
        "sync",
        "--file",
        str(
            write_rows(tmp_path / "b.csv", [r for r in rows if r["CF_WSH"] != "宝税罚〔2026〕12号"])
        ),
        "--force",
        now="2026-10-10T07:00",
    )
    ok("eligibility", now="2026-10-10T07:30")
    engine = make_engine(db_url)
    try:
        _task(engine, "宝税罚〔2026〕11号", "email", "written", "2026-10-03T10:00")
        _task(engine, "宝税罚〔2026〕13号", "manual", "sent", "2026-10-03T10:00")
        _task(engine, "宝税罚〔2026〕14号", "manual", "sent", "2026-10-03T10:00")
    finally:
        engine.dispose()
    ok(
        "ledger",
        "set",
        "宝税罚〔2026〕14号",
        "--progress",
        "1",
        "--method",
        "phone",
        now="2026-10-05T10:00",
    )
    kpis = cli(
        "report",
        "monthly",
        "--month",
        "2026-10",
        "--out",
        str(tmp_path),
        "--no-send",
        "--json",
        now=RUN,
    ).json()
    swj = _dept(kpis, "SWJ")
    assert {k: swj[k] for k in HONEST} == HONEST
    assert {k: kpis["total"][k] for k in HONEST} == HONEST
    september = cli(
        "report",
        "monthly",
        "--month",
        "2026-09",
        "--out",
        str(tmp_path),
        "--no-send",
        "--json",
        now=RUN,
    ).json()
    assert (september["total"]["to_confirm"], september["total"]["file_only"]) == (
        0,
        0,
    )  # P12 shown; no notice yet
    assert september["total"]["overdue_display"] == 1
