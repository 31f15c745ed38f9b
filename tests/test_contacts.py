"""`credit-repair contacts import`: validation and history, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import openpyxl
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from pipeline.db.engine import normalise_url
from pipeline.db.models import Contact
from tests.helpers import CliRunner, uscc, write_rows


def _contacts(db_url: str) -> list[Contact]:
    engine = create_engine(normalise_url(db_url))
    with Session(engine) as session:
        rows = list(session.execute(select(Contact).order_by(Contact.id)).scalars())
        session.expunge_all()
    engine.dispose()
    return rows


def test_english_headers_load_and_bad_values_are_reported_not_silently_dropped(
    cli: CliRunner, tmp_path: Path, db_url: str
) -> None:
    rows = [
        {
            "uscc": uscc(1),
            "contact_name": "王经理",
            "phone": "+86 139-1234-5678",
            "email": "a@example.com",
        },
        {
            "uscc": uscc(2),
            "contact_name": "李会计",
            "phone": "0469-1234567",
            "email": "not-an-email",
        },
        {"uscc": "12345", "contact_name": "赵", "phone": "13912345678", "email": ""},
    ]
    result = cli("contacts", "import", str(write_rows(tmp_path / "c.csv", rows)), "--json")
    assert result.code == 0
    body = result.json()
    assert (body["rows_read"], body["added"], body["rejected"]) == (3, 2, 1)
    assert {(i["row"], i["field"]) for i in body["issues"]} == {
        (3, "phone"),
        (3, "email"),
        (4, "uscc"),
    }
    first, second = _contacts(db_url)
    assert (first.phone, first.email) == ("13912345678", "a@example.com")
    assert (second.phone, second.email, second.contact_name) == (None, None, "李会计")


def test_chinese_headers_in_xlsx_and_a_changed_contact_keeps_its_history(
    cli: CliRunner, tmp_path: Path, db_url: str
) -> None:
    def workbook(phone: str) -> Path:
        wb = openpyxl.Workbook()
        ws = wb.active
        assert ws is not None
        ws.append(["统一社会信用代码", "联系人", "联系电话", "电子邮箱"])
        ws.append([uscc(1), "王经理", phone, "a@example.com"])
        path = tmp_path / f"c{phone}.xlsx"
        wb.save(path)
        return path

    assert cli("contacts", "import", str(workbook("13912345678")), "--json").json()["added"] == 1
    assert (
        cli("contacts", "import", str(workbook("13912345678")), "--json").json()["unchanged"] == 1
    )
    assert (
        cli("contacts", "import", str(workbook("13800001111")), "--json", now="2026-11-28").json()[
            "changed"
        ]
        == 1
    )
    old, new = _contacts(db_url)
    assert old.valid_to is not None and new.valid_to is None and new.phone == "13800001111"


def test_a_file_without_a_uscc_column_loads_nothing(cli: CliRunner, tmp_path: Path) -> None:
    result = cli(
        "contacts",
        "import",
        str(write_rows(tmp_path / "c.csv", [{"name": "x", "phone": "13912345678"}])),
    )
    assert result.code == 2 and "uscc" in result.err


def test_an_idn_domain_is_stored_in_punycode_and_a_non_ascii_local_part_refused(
    cli: CliRunner, tmp_path: Path, db_url: str
) -> None:
    rows = [
        {"uscc": uscc(1), "contact_name": "王经理", "phone": "", "email": "user@例子.中国"},
        {"uscc": uscc(2), "contact_name": "李会计", "phone": "", "email": "李会计@example.com"},
        {"uscc": uscc(3), "contact_name": "赵", "phone": "", "email": "ｚｈａｏ＠Example.com"},
    ]
    result = cli("contacts", "import", str(write_rows(tmp_path / "c.csv", rows)), "--json")
    assert result.code == 0, result.err
    body = result.json()
    assert [(i["row"], i["field"]) for i in body["issues"]] == [(3, "email")]
    assert "before @ is not ASCII" in body["issues"][0]["reason"]
    assert [c.email for c in _contacts(db_url)] == [
        "user@xn--fsqu00a.xn--fiqs8s",  # what SMTP servers take
        None,  # refused here, not left to fail at send
        "zhao@Example.com",  # full-width typed: NFKC
    ]
