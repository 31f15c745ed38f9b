"""What a 告知书 says, per rule set: materials, route, process, issuer, tense, restrictions."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from pipeline.config import Config, load_config
from pipeline.db.engine import make_engine
from pipeline.db.models import OutboxMessage, table_of
from pipeline.domain.calendar import WorkingCalendar
from pipeline.notices.context import sample_row
from pipeline.notices.docx import docx_text, render_docx
from pipeline.notices.planner import Occurrence, Planner
from pipeline.notices.templating import Renderer, template_dirs
from tests.helpers import CliRunner, penalty, write_rows

TODAY = dt.date(2026, 12, 1)
CONTACT = {"email": "c@example.com", "phone": "13900000001", "contact_name": "王经理"}


def _planner(config: Config) -> Planner:
    return Planner(
        config, config.notices, Renderer(template_dirs(config)), WorkingCalendar(config.holidays)
    )


def _notice(config: Config, row: dict[str, Any], today: dt.date = TODAY) -> dict[str, Any]:
    planned = _planner(config).message(
        row, Occurrence("repair_notice", "t"), CONTACT, today, "email"
    )
    assert planned is not None
    return planned.payload


def _row(config: Config, rule_set: str, **changes: Any) -> dict[str, Any]:
    return {**sample_row(config, rule_set), "green_channel": False, **changes}


@pytest.mark.parametrize("rule_set", ["ndrc-2019-527", "ndrc-2023-58", "ndrc-2025-36"])
def test_an_ndrc_notice_says_what_to_submit_where_and_how_and_who_tells(
    config: Config, rule_set: str
) -> None:
    wording = config.notices.rule_wording[rule_set]
    text = _notice(config, _row(config, rule_set))["text"]
    for item in wording.materials:
        assert item in text
    assert wording.apply in text and wording.process in text and wording.commitment in text
    assert wording.citation in text and "一般失信" in text
    assert "最短公示期3个月，最长公示期1年" in text and "2026年12月29日起" in text
    assert (
        "公示期满（2027年9月28日）后，相关信息应当撤下；届时未撤下的，你（企业）可申请撤下" in text
    )
    assert "自动撤下" not in text
    authority = _row(config, rule_set)["authority"]
    assert text.rstrip().endswith(f"{authority}\n2026年12月1日")  # 处罚即告知: the authority signs
    assert "或咨询宝山区营商环境局" in text  # the bureau, for questions


def test_a_market_regulation_notice_speaks_of_gsxt_without_ndrc_severity_words(
    config: Config,
) -> None:
    row = _row(config, "samr-2021-45", market_regulation=True, publish_by=dt.date(2026, 12, 20))
    payload = _notice(config, row)
    text = payload["text"]
    assert "国家企业信用信息公示系统" in text and "提前停止公示" in text
    assert "20个工作日内（2026年12月20日前）" in text  # 45号令's own limit (unverified, config)
    assert not any(word in text for word in ("一般失信", "严重失信", "信用中国（黑龙江）"))
    assert "提前停止公示" in payload["sms_text"]


def test_after_the_publication_deadline_the_notice_speaks_in_the_past(config: Config) -> None:
    row = _row(config, "ndrc-2025-36")  # publish_by 2026-10-13
    assert "该行政处罚信息已在信用中国" in _notice(config, row)["text"]
    before = _notice(config, row, dt.date(2026, 10, 1))["text"]
    assert "将在7个工作日内（2026年10月13日前）通过信用中国" in before
    published = _notice(config, {**row, "publication_date": dt.date(2026, 10, 9)})["text"]
    assert "已于2026年10月9日在信用中国" in published


def test_an_unpublished_minor_penalty_is_said_to_be_not_published_never_an_undated_display(
    config: Config,
) -> None:
    row = _row(
        config,
        "ndrc-2025-36",
        status="not_published",
        severity="minor",
        publish_by=None,
        repairable_from=None,
        min_end=None,
        max_end=None,
        removal_on=None,
    )
    payload = _notice(config, row)
    assert "依规不予公示" in payload["text"] and "依规不予公示" in payload["sms_text"]
    for text in (payload["text"], payload["html"], payload["sms_text"], payload["docx"]["body"]):
        assert "日期未定" not in text and "可申请撤下" not in text


def test_restrictions_are_told_to_the_company(config: Config) -> None:
    reason = "列入严重失信主体名单：安全生产严重失信主体名单（宝山区应急管理局，2026-03-01列入，宝应急认〔2026〕1号）"
    row = _row(config, "ndrc-2025-36", restrictions=[{"code": "severe_list", "reason": reason}])
    text = _notice(config, row)["text"]
    assert f"存在以下可能影响信用修复的情形：{reason}" in text


def test_the_bureau_signs_when_configured(tmp_path: Path, config_dir: Path) -> None:
    config = load_config(config_dir, env={"CREDIT_REPAIR_ISSUED_BY": "bureau"})
    text = _notice(config, _row(config, "ndrc-2025-36"))["text"]
    assert text.rstrip().endswith("宝山区营商环境局\n2026年12月1日")


def test_the_docx_and_the_html_carry_the_same_paragraphs_as_the_text(config: Config) -> None:
    payload = _notice(config, _row(config, "ndrc-2023-58", entity_name="双鸭山市<甲>有限公司"))
    d = payload["docx"]
    printed = docx_text(render_docx(d["entity_name"], d["body"], d["issuer"], d["date"]))
    body = [p for p in payload["text"].split("\n\n")[1:-1]]
    for paragraph in body:
        assert paragraph in printed
        assert (
            paragraph.replace("<", "&lt;").replace(">", "&gt;").replace("“", "“") in payload["html"]
        )
    assert "签收人" in printed and "&lt;甲&gt;" in payload["html"]


def test_preview_of_a_record_that_could_not_be_evaluated_says_which_and_why(
    cli: CliRunner, tmp_path: Path
) -> None:
    rows = [penalty(1, 失信严重程度="很严重")]
    assert cli("sync", "--file", str(write_rows(tmp_path / "p.csv", rows))).code == 0
    assert cli("eligibility").code == 0
    result = cli("preview", "--decision-no", "宝税罚〔2026〕1号")
    assert result.code == 2
    assert (
        "宝税罚〔2026〕1号" in result.err
        and "很严重" in result.err
        and "notices.yaml" not in result.err
    )


def test_the_digest_lists_records_to_confirm_and_penalties_shown_past_their_period(
    cli: CliRunner, tmp_path: Path, db_url: str
) -> None:
    rows = [penalty(i, CF_JDRQ="2026-05-06") for i in range(1, 11)] + [
        penalty(11, CF_JDRQ="2022-05-09")
    ]
    assert (
        cli("sync", "--file", str(write_rows(tmp_path / "a.csv", rows)), now="2026-11-27").code == 0
    )
    assert cli("eligibility", now="2026-11-27").code == 0
    assert (
        cli("sync", "--file", str(write_rows(tmp_path / "b.csv", rows[1:])), now="2026-11-28").code
        == 0
    )
    assert cli("eligibility", now="2026-11-28").code == 0
    assert cli("notices", "plan", now="2026-11-28T10:00").code == 0
    payload = _digest_payload(db_url, "SWJ")
    assert "待核实1件" in payload["subject"] and "超期仍公示1件" in payload["subject"]
    text = payload["text"]
    assert (
        "待核实案件（1件" in text
        and "宝税罚〔2026〕1号），2026年11月28日起不在公示数据中，可能已修复" in text
    )
    assert "超期仍公示案件（1件" in text and "宝税罚〔2026〕11号），应于2023年5月10日撤下" in text


def _digest_payload(db_url: str, code: str) -> dict[str, Any]:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            c = table_of(OutboxMessage).c
            query = select(c.payload).where(
                c.kind == "department_digest", c.department_code == code
            )
            payload: dict[str, Any] = conn.execute(query).scalar_one()
            return payload
    finally:
        engine.dispose()


def test_the_bureau_is_warned_in_its_digest_before_the_working_day_data_runs_out(
    cli: CliRunner, tmp_path: Path, db_url: str
) -> None:
    assert (
        cli(
            "sync", "--file", str(write_rows(tmp_path / "a.csv", [penalty(1)])), now="2026-12-02"
        ).code
        == 0
    )
    assert cli("eligibility", now="2026-12-02").code == 0
    assert cli("notices", "plan", now="2026-12-02T10:00").code == 0
    bureau = _digest_payload(db_url, "YSHJ")  # 29 days left: a digest for the warning alone
    assert "【提醒】工作日数据（config/holidays.yaml）截至2026年12月31日" in bureau["text"]
    assert "2027年" in bureau["text"] and "【提醒】" not in _digest_payload(db_url, "SWJ")["text"]
