"""An unforeseen failure prints one masked line, never personal data; the traceback only
with --debug (issue 15, smaller items)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine

from pipeline.db.engine import normalise_url
from tests.helpers import CliRunner, penalty, write_rows


def _refuse_record_updates(db_url: str) -> None:
    """A trigger failing every change of a record: an error no code of ours foresees."""
    engine = create_engine(normalise_url(db_url))
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE UPDATE ON records "
                "BEGIN SELECT RAISE(ABORT, 'records are read-only today'); END"
            )
        else:
            conn.exec_driver_sql(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'records are read-only today'; END $$"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE UPDATE ON records "
                "FOR EACH ROW EXECUTE FUNCTION refuse()"
            )
    engine.dispose()


def test_a_crash_prints_a_masked_line_and_the_traceback_only_with_debug(
    cli: CliRunner, tmp_path: Path, db_url: str
) -> None:
    assert cli("sync", "--file", str(write_rows(tmp_path / "p.csv", [penalty(1)]))).code == 0
    _refuse_record_updates(db_url)
    remarks = "联系人王五 13912345678 wangwu@example.com"
    result = cli("ledger", "set", "宝税罚〔2026〕1号", "--remarks", remarks)
    assert result.code == 1
    assert "records are read-only today" in result.err
    assert "internal error" in result.err and "--debug" in result.err
    for private in ("13912345678", "wangwu@", "王五", "Traceback", "[parameters"):
        assert private not in result.err, private
    debug = cli("--debug", "ledger", "set", "宝税罚〔2026〕1号", "--remarks", remarks)
    assert debug.code == 1 and "Traceback" in debug.err
