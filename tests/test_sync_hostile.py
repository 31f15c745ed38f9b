"""Hostile snapshots: a bad row never vanishes its record, never aborts the sync, never
makes a twin record (issue 15, items 1-4), on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, select
from sqlalchemy.orm import Session

from pipeline.db.engine import normalise_url
from pipeline.db.models import QuarantinedRow, Record, RecordChange, SyncRun
from tests.helpers import CliRunner, penalty, write_rows


def _records(db_url: str) -> list[Record]:
    engine = create_engine(normalise_url(db_url))
    with Session(engine) as session:
        rows = list(session.execute(select(Record).order_by(Record.id)).scalars())
        session.expunge_all()
    engine.dispose()
    return rows


def _table(db_url: str, model: type[SyncRun] | type[QuarantinedRow] | type[RecordChange]) -> list:  # type: ignore[type-arg]
    engine = create_engine(normalise_url(db_url))
    with Session(engine) as session:
        rows = list(session.execute(select(model).order_by(model.id)).scalars())
        session.expunge_all()
    engine.dispose()
    return rows


def _sync(cli: CliRunner, path: Path, now: str = "2026-11-27T09:00") -> dict:  # type: ignore[type-arg]
    result = cli("sync", "--file", str(path), "--json", now=now)
    assert result.code == 0, result.err
    body: dict = result.json()  # type: ignore[type-arg]
    return body


# --------------------------------------------------------------------------- item 1


def test_a_quarantined_row_keeps_its_record_flagged_instead_of_vanishing_it(
    cli: CliRunner, tmp_path: Path, db_url: str
) -> None:
    rows = [penalty(i) for i in range(1, 6)]
    _sync(cli, write_rows(tmp_path / "a.csv", rows))
    bad = [
        penalty(1, CF_JDRQ="2026-02-30"),  # an impossible date
        penalty(2, CF_NR_FK="-5"),  # a negative fine
        *rows[2:],
    ]
    body = _sync(cli, write_rows(tmp_path / "b.csv", bad), now="2026-11-28T09:00")
    assert (body["quarantined"], body["vanished"], body["invalid_kept"]) == (2, 0, 2)
    assert body["refused"] is False  # 2 of 5 "missing" would have been 40 %: counted as present
    first, second = _records(db_url)[:2]
    assert first.vanished_on is None and second.vanished_on is None
    assert str(first.decision_date) == "2026-09-28"  # as it was
    quarantined = {q.row_no: q.id for q in _table(db_url, QuarantinedRow)}
    assert (first.invalid_row_id, second.invalid_row_id) == (quarantined[2], quarantined[3])
    history = [c.change for c in _table(db_url, RecordChange) if c.record_id == first.id]
    assert history == ["added", "row_invalid"]

    assert cli("eligibility", "--json", now="2026-11-28T09:00").code == 0
    shown = {e["decision_no"]: e for e in cli("ledger", "show", "--json").json_lines()}
    entry = shown[first.decision_no]
    assert "invalid_row" in entry["flags"] and entry["invalid_row_id"] == quarantined[2]
    assert entry["verify_reason"] is None and entry["closed_on"] is None
    assert "invalid_row" not in shown[_records(db_url)[2].decision_no]["flags"]

    again = _sync(cli, write_rows(tmp_path / "c.csv", rows), now="2026-11-29T09:00")
    assert (again["invalid_kept"], again["updated"], again["vanished"]) == (0, 0, 0)
    assert [r.invalid_row_id for r in _records(db_url)] == [None] * 5


def test_a_quarantined_row_of_no_known_record_changes_nothing_else(
    cli: CliRunner, tmp_path: Path, db_url: str
) -> None:
    rows = [penalty(1), penalty(2, CF_JDRQ="2026-13-01")]
    body = _sync(cli, write_rows(tmp_path / "a.csv", rows))
    assert (body["added"], body["quarantined"], body["invalid_kept"]) == (1, 1, 0)
    assert [r.invalid_row_id for r in _records(db_url)] == [None]


# --------------------------------------------------------------------------- item 2


def test_values_no_column_holds_are_quarantined_and_the_rest_loads(
    cli: CliRunner, tmp_path: Path, db_url: str
) -> None:
    rows = [
        penalty(1, CF_XDR_MC="双鸭山市测试\x00有限公司"),  # NUL: PostgreSQL refuses it
        penalty(2, CF_XDR_MC="双" * 301),  # entity_name holds 300
        penalty(3, CF_NR_FK="1e308"),  # Numeric(18, 6)
        penalty(4, CF_FRDB="张\x07三"),  # a bell in the legal representative
        penalty(5),
    ]
    body = _sync(cli, write_rows(tmp_path / "a.csv", rows))
    # C0 control characters are removed where data enters (issue 15 item 8), so rows 1 and 4
    # load cleaned; what cleaning cannot fix — a length, a number — is quarantined
    assert (body["added"], body["quarantined"]) == (3, 2)
    reasons = {(q["row"], q["field"]): q["reason"] for q in body["quarantine"]}
    assert "301 characters" in reasons[(3, "entity_name")] and "300" in reasons[(3, "entity_name")]
    assert "out of range" in reasons[(4, "fine_amount")]
    loaded = {r.decision_no: r for r in _records(db_url)}
    assert sorted(loaded) == ["宝税罚〔2026〕1号", "宝税罚〔2026〕4号", "宝税罚〔2026〕5号"]
    assert loaded["宝税罚〔2026〕1号"].entity_name == "双鸭山市测试有限公司"
    assert loaded["宝税罚〔2026〕4号"].legal_rep == "张三"


def test_json_values_no_column_holds_are_quarantined(
    cli: CliRunner, tmp_path: Path, db_url: str
) -> None:
    records = [
        {**penalty(1), "CF_NR_FK": 1e308},
        {**penalty(2), "备注": "a lone \ud800 surrogate"},  # an unmapped column, kept raw
        {**penalty(3), "CF_XDR_MC": "测试\u0090公司"},  # a C1 control character
        penalty(4),
    ]
    path = tmp_path / "a.json"
    path.write_text(json.dumps(records), encoding="utf-8")  # \ud800 stays an escape
    body = _sync(cli, path)
    # the streaming JSON reader (ijson) already replaces a lone surrogate with "?": row 2
    # loads with its raw column readable; the rest no column holds is quarantined
    assert (body["added"], body["quarantined"]) == (2, 2)
    fields = sorted((q["row"], q["field"]) for q in body["quarantine"])
    assert fields == [(1, "fine_amount"), (3, "entity_name")]
    [kept] = [r for r in _records(db_url) if r.decision_no == "宝税罚〔2026〕2号"]
    assert kept.raw is not None and "\ud800" not in kept.raw["备注"]


@pytest.fixture
def refusing_trigger(db_url: str) -> Engine:
    """A trigger that refuses every new record: a database error no check foresees."""
    engine = create_engine(normalise_url(db_url))
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON records "
                "BEGIN SELECT RAISE(ABORT, 'refused by the test trigger'); END"
            )
        else:
            conn.exec_driver_sql(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'refused by the test trigger'; END $$"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON records "
                "FOR EACH ROW EXECUTE FUNCTION refuse()"
            )
    return engine


def test_a_database_error_names_its_cause_and_leaves_no_running_sync(
    cli: CliRunner, tmp_path: Path, db_url: str, refusing_trigger: Engine
) -> None:
    path = write_rows(tmp_path / "a.csv", [penalty(1, CF_XDR_MC="秘密公司"), penalty(2)])
    result = cli("sync", "--file", str(path), "--json")
    refusing_trigger.dispose()
    assert result.code == 1
    assert "refused by the test trigger" in result.err and "a.csv" in result.err
    assert "InFailedSqlTransaction" not in result.err and "Traceback" not in result.err
    assert "秘密公司" not in result.err  # the statement's parameters are not printed
    runs = _table(db_url, SyncRun)
    assert [r.status for r in runs] == ["failed"]
    assert "refused by the test trigger" in (runs[0].reason or "")
    assert _records(db_url) == []


# --------------------------------------------------------------------------- item 3


def test_invisible_characters_in_a_decision_number_make_no_twin_record(
    cli: CliRunner, tmp_path: Path, db_url: str
) -> None:
    rows = [penalty(i) for i in range(1, 4)]
    _sync(cli, write_rows(tmp_path / "a.csv", rows))
    again = [
        penalty(1, CF_WSH="宝税罚〔2026〕1号\x00"),  # a trailing NUL
        penalty(2, CF_WSH="宝税罚〔2026〕\u200b2号"),  # a zero-width space
        penalty(3, CF_WSH="\ufeff宝税罚〔2026〕３号"),  # a BOM and a full-width digit
    ]
    body = _sync(cli, write_rows(tmp_path / "b.csv", again), now="2026-11-28T09:00")
    # the full-width ３ is shown as published: the same record, its number updated
    assert (body["added"], body["vanished"], body["unchanged"], body["updated"]) == (0, 0, 2, 1)
    records = _records(db_url)
    assert [r.decision_key for r in records] == [f"宝税罚〔2026〕{i}号" for i in (1, 2, 3)]
    assert [r.decision_no for r in records] == [
        *(f"宝税罚〔2026〕{i}号" for i in (1, 2)),
        "宝税罚〔2026〕３号",
    ]


def test_a_decision_number_that_stays_invisible_is_refused(
    cli: CliRunner, tmp_path: Path, db_url: str
) -> None:
    rows = [penalty(1), penalty(2, CF_WSH="宝税罚〔2026〕2号\u3164"), penalty(3, CF_WSH="\x00")]
    body = _sync(cli, write_rows(tmp_path / "a.csv", rows))
    assert body["added"] == 1
    reasons = {q["row"]: (q["field"], q["reason"]) for q in body["quarantine"]}
    assert reasons[3][0] == "decision_no" and "invisible" in reasons[3][1]
    assert reasons[4] == ("decision_no", "required value is empty")


def test_ledger_set_finds_a_record_by_its_number_as_typed(
    cli: CliRunner, tmp_path: Path, db_url: str
) -> None:
    _sync(cli, write_rows(tmp_path / "a.csv", [penalty(1)]))
    result = cli("ledger", "set", "宝税罚〔２０２６〕１号\u200b", "--remarks", "核对中", "--json")
    assert result.code == 0, result.err
    assert _records(db_url)[0].remarks == "核对中"


# --------------------------------------------------------------------------- item 4


def _repeated_name_csv(path: Path) -> Path:
    """Two CF_XDR_MC columns: the first with the company, the second with other text."""
    first, second = penalty(1), penalty(2)
    headers = [*first, "CF_XDR_MC"]
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(headers)
        writer.writerow([*first.values(), "联系人：张三"])
        writer.writerow([*second.values(), "联系人：李四"])
    return path


def test_a_repeated_header_is_refused_naming_both_columns(
    cli: CliRunner, tmp_path: Path, db_url: str
) -> None:
    path = _repeated_name_csv(tmp_path / "twice.csv")
    width = len(penalty(1)) + 1
    result = cli("sync", "--file", str(path), "--json")
    assert result.code == 2
    second = list(penalty(1)).index("CF_XDR_MC") + 1
    assert f"columns {second} and {width} are both named 'CF_XDR_MC'" in result.err
    assert "twice.csv" in result.err and "field_map" in result.err
    assert _records(db_url) == []


def _config_with_source(config_dir: Path, folder: Path, source: str) -> Path:
    folder.mkdir()
    settings = (config_dir / "settings.yaml").read_text(encoding="utf-8")
    assert "sources: []" in settings
    (folder / "settings.yaml").write_text(settings.replace("sources: []", source), encoding="utf-8")
    departments = (config_dir / "departments.yaml").read_text(encoding="utf-8")
    (folder / "departments.yaml").write_text(departments, encoding="utf-8")
    return folder


def test_field_map_says_which_of_a_repeated_header_to_use(
    cli: CliRunner, tmp_path: Path, config_dir: Path, db_url: str
) -> None:
    path = _repeated_name_csv(tmp_path / "twice.csv")
    source = (
        f"sources:\n  - name: twice\n    path: {path}\n    field_map: {{'CF_XDR_MC #2': '-'}}\n"
    )
    folder = _config_with_source(config_dir, tmp_path / "cfg", source)
    result = CliRunner(folder)("sync", "--source", "twice", "--json")
    assert result.code == 0, result.err
    records = _records(db_url)
    assert [r.entity_name for r in records] == ["双鸭山市测试1有限公司", "双鸭山市测试2有限公司"]
    assert records[0].raw == {"CF_XDR_MC #2": "联系人：张三"}
