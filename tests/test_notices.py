"""Planning notices: what is due for whom, once — on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import CliRunner, penalty, uscc, write_rows

CONTACT_HEADERS = ["统一社会信用代码", "联系人", "联系电话", "电子邮箱"]


def _setup(
    cli: CliRunner,
    tmp_path: Path,
    rows: list[dict[str, str]],
    contacts: list[dict[str, str]],
    now: str,
) -> None:
    assert (
        cli("sync", "--file", str(write_rows(tmp_path / "p.csv", rows)), "--force", now=now).code
        == 0
    )
    if contacts:
        path = write_rows(tmp_path / "c.csv", contacts, headers=CONTACT_HEADERS)
        assert cli("contacts", "import", str(path), now=now).code == 0
    assert cli("eligibility", now=now).code == 0


def contact(n: int, phone: str = "", email: str = "", name: str = "王经理") -> dict[str, str]:
    return {"统一社会信用代码": uscc(n), "联系人": name, "联系电话": phone, "电子邮箱": email}


def _outbox(cli: CliRunner, now: str = "2026-11-27T09:00") -> list[dict[str, object]]:
    return cli("outbox", "--json", now=now).json_lines()


def test_a_new_penalty_gets_one_repair_notice_and_a_rerun_plans_nothing(
    cli: CliRunner, tmp_path: Path
) -> None:
    _setup(
        cli,
        tmp_path,
        [penalty(1)],
        [contact(1, email="a@example.com", phone="13912345678")],
        "2026-11-27",
    )
    first = cli("notices", "plan", "--json").json()
    assert first["by_kind"].get("repair_notice") == 1 and first["planned"] >= 1
    again = cli("notices", "plan", "--json").json()
    assert again["planned"] == 0 and again["already_planned"] == 1
    rows = [r for r in _outbox(cli) if r["kind"] == "repair_notice"]
    assert [(r["channel"], r["recipient"], r["state"]) for r in rows] == [
        ("email", "a@example.com", "pending")
    ]


def test_the_first_channel_with_an_address_is_chosen_else_manual(
    cli: CliRunner, tmp_path: Path
) -> None:
    rows = [penalty(1), penalty(2), penalty(3)]
    _setup(
        cli,
        tmp_path,
        rows,
        [contact(1, email="a@example.com"), contact(2, phone="13912345678")],
        "2026-11-27",
    )
    cli("notices", "plan")
    chosen = {
        r["key"].split(":")[1]: r["channel"] for r in _outbox(cli) if r["kind"] == "repair_notice"
    }
    assert sorted(chosen.values()) == ["email", "manual", "sms"]


def test_a_manual_task_is_counted_apart_from_notices_sent(cli: CliRunner, tmp_path: Path) -> None:
    _setup(
        cli, tmp_path, [penalty(1), penalty(2)], [contact(1, email="a@example.com")], "2026-11-27"
    )
    cli("notices", "plan")
    result = cli("dispatch", "--json").json()
    # no SMTP configured: the e-mails (notice and digest) are files; company 2 has no
    # address: its notice is a task for a person, counted in `sent` as before and apart
    assert (result["sent"], result["manual_tasks"], result["written"]) == (1, 1, 2)


def test_nothing_is_planned_for_records_not_published_or_expired(
    cli: CliRunner, tmp_path: Path
) -> None:
    rows = [
        penalty(1, CF_CFLB="警告"),
        penalty(2, CF_JDRQ="2022-05-09"),
    ]  # minor under 36号令; expired
    _setup(
        cli,
        tmp_path,
        rows,
        [contact(1, email="a@example.com"), contact(2, email="b@example.com")],
        "2026-11-27",
    )
    plan = cli("notices", "plan", "--json").json()
    assert plan["by_kind"].get("repair_notice") is None


def test_the_eligibility_reminder_comes_five_working_days_before_and_on_the_day(
    cli: CliRunner, tmp_path: Path
) -> None:
    # decided 2026-08-13: repairable from 2026-11-14 … use a record repairable 2026-12-01 instead
    row = penalty(1, CF_JDRQ="2026-08-31")  # min_end 2026-11-30, repairable_from 2026-12-01
    _setup(cli, tmp_path, [row], [contact(1, phone="13912345678")], "2026-11-20")
    before_window = cli(
        "notices", "plan", "--json", now="2026-11-23"
    ).json()  # 6 working days before
    assert "eligibility_reminder" not in before_window["by_kind"]
    cli("eligibility", now="2026-11-24")
    five_before = cli("notices", "plan", "--json", now="2026-11-24").json()
    assert five_before["by_kind"].get("eligibility_reminder") == 1
    cli("eligibility", now="2026-12-01")
    on_day = cli("notices", "plan", "--json", now="2026-12-01").json()
    assert on_day["by_kind"].get("eligibility_reminder") == 1
    occurrences = sorted(
        r["occurrence"] for r in _outbox(cli) if r["kind"] == "eligibility_reminder"
    )
    assert occurrences == ["before:2026-12-01", "on:2026-12-01"]


def test_follow_ups_come_every_thirty_days_after_the_notice_at_most_twice(
    cli: CliRunner, tmp_path: Path
) -> None:
    _setup(
        cli,
        tmp_path,
        [penalty(1, CF_JDRQ="2026-05-06")],
        [contact(1, phone="13912345678")],
        "2026-08-07",
    )
    assert cli("ledger", "set", "宝税罚〔2026〕1号", "--progress", "1", now="2026-08-07").code == 0
    kinds = []
    for day in ("2026-09-07", "2026-10-07", "2026-11-07", "2026-12-07", "2027-01-07"):
        cli("eligibility", now=day)
        kinds.append(
            cli("notices", "plan", "--json", now=day).json()["by_kind"].get("follow_up", 0)
        )
    assert sum(kinds) == 2
    assert sorted(r["occurrence"] for r in _outbox(cli) if r["kind"] == "follow_up") == [
        "follow:1",
        "follow:2",
    ]


def test_no_follow_up_for_unwilling_or_applied_companies(cli: CliRunner, tmp_path: Path) -> None:
    rows = [penalty(1, CF_JDRQ="2026-05-06"), penalty(2, CF_JDRQ="2026-05-06")]
    _setup(
        cli,
        tmp_path,
        rows,
        [contact(1, phone="13912345678"), contact(2, phone="13912345679")],
        "2026-08-07",
    )
    cli(
        "ledger", "set", "宝税罚〔2026〕1号", "--progress", "1", "--willing", "no", now="2026-08-07"
    )
    cli(
        "ledger",
        "set",
        "宝税罚〔2026〕2号",
        "--willing",
        "yes",
        "--progress",
        "3",
        now="2026-08-07",
    )
    assert "follow_up" not in cli("notices", "plan", "--json", now="2026-10-07").json()["by_kind"]


def test_a_list_entry_gets_a_list_notice_with_its_removal_conditions(
    cli: CliRunner, tmp_path: Path
) -> None:
    row = {
        "名单名称": "安全生产严重失信主体名单",
        "企业名称": "双鸭山市测试9有限公司",
        "统一社会信用代码": uscc(9),
        "认定部门": "宝山区应急管理局",
        "认定文书号": "宝应急认〔2026〕1号",
        "列入日期": "2026-03-01",
        "列入原因": "较大事故",
    }
    cli("sync", "--file", str(write_rows(tmp_path / "l.csv", [row])), "--kind", "severe-list")
    cli(
        "contacts",
        "import",
        str(
            write_rows(
                tmp_path / "c.csv", [contact(9, email="x@example.com")], headers=CONTACT_HEADERS
            )
        ),
    )
    assert cli("notices", "plan", "--json").json()["by_kind"].get("list_notice") == 1


def test_each_department_contact_gets_one_digest_a_day(cli: CliRunner, tmp_path: Path) -> None:
    rows = [penalty(i) for i in range(1, 6)]
    _setup(cli, tmp_path, rows, [], "2026-11-27")
    plan = cli("notices", "plan", "--json", now="2026-11-27T10:00").json()
    assert plan["by_kind"]["department_digest"] == 1
    assert cli("notices", "plan", "--json", now="2026-11-27T15:00").json()["planned"] == 0
    digest = next(r for r in _outbox(cli) if r["kind"] == "department_digest")
    assert (digest["recipient"], digest["department_code"]) == ("tax@example.org", "SWJ")


def test_dry_run_shows_what_would_be_planned_and_writes_nothing(
    cli: CliRunner, tmp_path: Path
) -> None:
    _setup(cli, tmp_path, [penalty(1)], [contact(1, email="a@example.com")], "2026-11-27")
    dry = cli("notices", "plan", "--dry-run", "--json").json()
    assert dry["planned"] == 2 and {m["kind"] for m in dry["messages"]} == {
        "repair_notice",
        "department_digest",
    }
    assert _outbox(cli) == []


def test_preview_renders_a_records_notice_in_each_channel(cli: CliRunner, tmp_path: Path) -> None:
    _setup(cli, tmp_path, [penalty(1)], [], "2026-11-27")
    sms = cli("preview", "--decision-no", "宝税罚〔2026〕1号", "--channel", "sms")
    assert sms.code == 0 and "2026年12月29日" in sms.out
    out = tmp_path / "n.docx"
    assert (
        cli(
            "preview", "--decision-no", "宝税罚〔2026〕1号", "--channel", "docx", "--out", str(out)
        ).code
        == 0
    )
    from pipeline.notices.docx import docx_text

    text = docx_text(out.read_bytes())
    assert "双鸭山市测试1有限公司" in text and "2026年12月29日" in text and "签收人" in text
    assert "《信用修复管理办法》（国家发展改革委令第36号）" in text
