"""Sync skips rows whose raw fingerprint is their record's, with the same results.

`records.raw_hash` keys a row's cells as read under everything that shapes their
reading (headers, field_map, departments, jurisdiction, the validating code): a resync
validates only rows that may have changed, and must report exactly what validating all
of them reports.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, update

from pipeline.config import Config, DepartmentsConfig
from pipeline.db.models import QuarantinedRow, Record, RecordChange, table_of
from pipeline.sync.columns import ColumnPlan, Columns
from pipeline.sync.rows import RawDigest
from pipeline.sync.snapshot import SyncRequest, _Sync, sync_snapshot
from pipeline.sync.sources.base import RawRow
from pipeline.sync.sources.files import read_snapshot
from tests.helpers import penalty, uscc, write_rows

NOW = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))


class _Counted:
    """Counts the rows validated in full: every row the sync validates goes through
    `ColumnPlan.run` (which validates the rows it cannot vouch for with
    `RowValidator.validate`)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.rows: list[int] = []
        original = ColumnPlan.run

        def run(plan: ColumnPlan, rows: Sequence[RawRow]) -> Columns:
            self.rows += [raw.row_no for raw in rows]
            return original(plan, rows)

        monkeypatch.setattr(ColumnPlan, "run", run)

    def take(self) -> list[int]:
        rows, self.rows = self.rows, []
        return rows


def _sync(engine: Engine, config: Config, path: Path, days: int = 0, **kw: Any) -> dict[str, Any]:
    with read_snapshot(path) as snapshot:
        request = SyncRequest(snapshot, "penalty", "file", NOW + dt.timedelta(days=days), **kw)
        body = sync_snapshot(engine, config, request).as_json()
    body.pop("sync_id")
    return body


def _records(engine: Engine) -> list[Record]:
    with engine.connect() as conn:
        return list(conn.execute(select(Record).order_by(Record.id)).all())  # type: ignore[arg-type]


def _mixed_rows() -> list[dict[str, str]]:
    """Rows 2-6 load cleanly; a warning, a quarantined, an out-of-scope row and duplicates."""
    clean = [penalty(i) for i in range(1, 6)]
    return [
        *clean,
        penalty(6, CF_XDR_SHXYM="91230506M0001TGQXM"),  # check character: a warning (row 7)
        penalty(7, CF_JDRQ="2022年13月1日"),  # quarantined (row 8)
        penalty(8, CF_XDR_SHXYM=uscc(8, area="230502")),  # out of scope (row 9)
        penalty(1, CF_NR_FK="9"),  # duplicate of row 2, another value (row 10)
        penalty(2),  # duplicate of row 3, the same cells (row 11)
    ]


def test_an_unchanged_resync_skips_validation_and_reports_what_a_full_one_does(
    engine: Engine, config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_rows(tmp_path / "a.csv", _mixed_rows())
    counted = _Counted(monkeypatch)
    first = _sync(engine, config, path)
    assert (first["added"], first["warnings"], first["quarantined"], first["out_of_scope"]) == (
        6,
        1,
        3,
        1,
    )
    assert len(counted.take()) == 10
    assert all(r.raw_hash for r in _records(engine))

    with monkeypatch.context() as m:  # the reference: every row validated, as before
        m.setattr(_Sync, "_unchanged_digests", lambda self: {})
        full = _sync(engine, config, path, days=1)
    assert len(counted.take()) == 10
    fast = _sync(engine, config, path, days=2)
    # only the rows without a clean unchanged record: warning, quarantined, out of scope,
    # and the duplicates (the second row with the cells of a known one, too)
    assert counted.take() == [7, 8, 9, 10, 11]
    assert fast == full
    assert (fast["unchanged"], fast["added"], fast["updated"], fast["vanished"]) == (6, 0, 0, 0)
    assert (fast["warnings"], fast["quarantined"], fast["out_of_scope"]) == (1, 3, 1)
    reasons = {q["row"]: q["reason"] for q in fast["quarantine"]}
    assert "duplicate of row 2" in reasons[10] and "duplicate of row 3" in reasons[11]
    with engine.connect() as conn:
        changes = conn.execute(select(RecordChange.change)).scalars().all()
        stored = conn.execute(select(QuarantinedRow.sync_id, QuarantinedRow.row_no)).all()
    assert changes == ["added"] * 6
    per_sync: dict[int, list[int]] = {}
    for sync_id, row_no in stored:
        per_sync.setdefault(sync_id, []).append(row_no)
    assert len({tuple(sorted(rows)) for rows in per_sync.values()}) == 1  # the same every time


def test_changed_and_vanished_rows_are_found_among_skipped_ones(
    engine: Engine, config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [penalty(i) for i in range(1, 21)]
    _sync(engine, config, write_rows(tmp_path / "a.csv", rows))
    counted = _Counted(monkeypatch)
    edited = [penalty(3, CF_NR_FK="0.5"), *rows[3:], penalty(21)]  # 1, 2 dropped; 3 changed
    body = _sync(engine, config, write_rows(tmp_path / "b.csv", edited), days=1)
    assert (body["added"], body["updated"], body["unchanged"], body["vanished"]) == (1, 1, 17, 2)
    assert counted.take() == [2, 20]  # the changed row and the new one
    by_no = {r.decision_no: r for r in _records(engine)}
    assert str(by_no["宝税罚〔2026〕3号"].fine_amount) in ("0.5", "0.500000")
    assert by_no["宝税罚〔2026〕1号"].vanished_on == dt.date(2026, 11, 28)
    # the updated record's fingerprint is the new row's: the next sync skips it
    again = _sync(engine, config, write_rows(tmp_path / "c.csv", edited), days=2)
    assert counted.take() == [] and again["unchanged"] == 19
    # a vanished record that comes back is a change, validated and marked reappeared
    back = _sync(engine, config, write_rows(tmp_path / "d.csv", [rows[0], *edited]), days=3)
    assert counted.take() == [2] and (back["updated"], back["unchanged"]) == (1, 19)


def test_a_department_change_revalidates_every_row_and_reroutes(
    engine: Engine, config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = "宝山区某某局"
    rows = [penalty(1), penalty(2, CF_CFJG=other, CF_CFJGDM=uscc(99).replace("91", "11", 1))]
    path = write_rows(tmp_path / "a.csv", rows)
    _sync(engine, config, path)
    assert [r.department_code for r in _records(engine)] == ["SWJ", "YSHJ"]
    counted = _Counted(monkeypatch)
    assert _sync(engine, config, path, days=1)["unchanged"] == 2 and counted.take() == []

    data = config.departments.model_dump()
    yjj = next(d for d in data["departments"] if d["code"] == "YJJ")
    yjj["authorities"].append({"name": other})
    changed = config.model_copy(update={"departments": DepartmentsConfig.model_validate(data)})
    body = _sync(engine, changed, path, days=2)
    assert counted.take() == [2, 3]  # every row: the routing may differ
    assert (body["updated"], body["unchanged"]) == (1, 1)
    rerouted = _records(engine)[1]
    assert (rerouted.department_code, rerouted.route_note) == ("YJJ", None)
    # the unchanged record's fingerprint was refreshed too: the next sync skips both
    assert _sync(engine, changed, path, days=3)["unchanged"] == 2 and counted.take() == []
    # back to the old configuration: validated again, routed back
    body = _sync(engine, config, path, days=4)
    assert counted.take() == [2, 3] and body["updated"] == 1
    assert _records(engine)[1].department_code == "YSHJ"


def test_a_jurisdiction_or_field_map_change_revalidates(
    engine: Engine, config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_rows(tmp_path / "a.csv", [penalty(1), penalty(2)])
    _sync(engine, config, path)
    counted = _Counted(monkeypatch)
    # an identity override changes nothing: the mapping is the same
    same = _sync(engine, config, path, days=1, field_map={"CF_SJLY": "CF_SJLY"})
    assert counted.take() == [] and same["unchanged"] == 2
    mapped = _sync(engine, config, path, days=1, field_map={"BZ": "行业"})  # raw extra → industry
    assert counted.take() == [2, 3] and mapped["unchanged"] == 2
    jurisdiction = config.settings.jurisdiction.model_copy(update={"name": "renamed"})
    settings = config.settings.model_copy(update={"jurisdiction": jurisdiction})
    body = _sync(engine, config.model_copy(update={"settings": settings}), path, days=2)
    assert counted.take() == [2, 3] and body["unchanged"] == 2


def test_a_quarantined_row_fixed_in_the_next_snapshot_loads(
    engine: Engine, config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = [penalty(1), penalty(2, CF_JDRQ="2022年13月1日")]
    first = _sync(engine, config, write_rows(tmp_path / "a.csv", bad))
    assert (first["added"], first["quarantined"]) == (1, 1)
    counted = _Counted(monkeypatch)
    fixed = [penalty(1), penalty(2, CF_JDRQ="2022年12月1日")]
    body = _sync(engine, config, write_rows(tmp_path / "b.csv", fixed), days=1)
    assert (body["added"], body["unchanged"], body["quarantined"], body["quarantine"]) == (
        1,
        1,
        0,
        [],
    )
    assert counted.take() == [3]
    assert _records(engine)[1].decision_date == dt.date(2022, 12, 1)


def test_a_cell_that_normalises_the_same_is_unchanged_and_its_fingerprint_kept(
    engine: Engine, config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _sync(engine, config, write_rows(tmp_path / "a.csv", [penalty(1)]))
    before = _records(engine)[0].raw_hash
    counted = _Counted(monkeypatch)
    spaced = write_rows(tmp_path / "b.csv", [penalty(1, CF_XDR_MC=" 双鸭山市测试1有限公司  ")])
    body = _sync(engine, config, spaced, days=1)
    assert (body["unchanged"], body["updated"]) == (1, 0) and counted.take() == [2]
    after = _records(engine)[0].raw_hash
    assert after and after != before
    assert _sync(engine, config, spaced, days=2)["unchanged"] == 1 and counted.take() == []


def test_records_without_a_fingerprint_are_validated_once_then_skipped(
    engine: Engine, config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records loaded before the column existed (migration 0002 leaves them NULL)."""
    path = write_rows(tmp_path / "a.csv", [penalty(1), penalty(2)])
    _sync(engine, config, path)
    with engine.begin() as conn:
        conn.execute(update(table_of(Record)).values(raw_hash=None))
    counted = _Counted(monkeypatch)
    assert _sync(engine, config, path, days=1)["unchanged"] == 2 and counted.take() == [2, 3]
    assert all(r.raw_hash for r in _records(engine))
    with engine.begin() as conn:  # not a fingerprint of ours: that row is validated
        conn.execute(update(table_of(Record)).where(Record.id == 1).values(raw_hash="not hex"))
    assert _sync(engine, config, path, days=1)["unchanged"] == 2 and counted.take() == [2]
    assert _sync(engine, config, path, days=2)["unchanged"] == 2 and counted.take() == []


def test_a_refused_sync_still_counts_skipped_rows_and_changes_nothing(
    engine: Engine, config: Config, tmp_path: Path
) -> None:
    rows = [penalty(i) for i in range(1, 21)]
    _sync(engine, config, write_rows(tmp_path / "a.csv", rows))
    body = _sync(engine, config, write_rows(tmp_path / "b.csv", rows[:2]), days=1)
    assert body["refused"] and (body["unchanged"], body["vanished"]) == (2, 18)
    assert all(r.vanished_on is None for r in _records(engine))


def test_the_raw_digest_tells_cells_and_types_apart() -> None:
    digest = RawDigest("fingerprint")
    assert digest(["a", "b"]) == digest(["a", "b"])
    assert len(digest(["a", "b"])) == 16
    assert digest(["a", "b"]) != RawDigest("other")(["a", "b"])
    assert digest(["a\x1fb", "c"]) != digest(["a", "b\x1fc"])
    assert digest(["1", "b"]) != digest([1, "b"])
    assert digest([None, "b"]) != digest(["None", "b"]) != digest(["", "b"])
    assert digest(["a", ""]) != digest(["a"])


def test_duplicates_between_validated_and_skipped_rows_keep_the_first(
    engine: Engine, config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _sync(engine, config, write_rows(tmp_path / "a.csv", [penalty(1), penalty(2)]))
    rows = [
        penalty(1, CF_NR_FK="0.5"),  # row 2: changed, first of its key: wins
        penalty(2),  # row 3: unchanged (skipped), first of its key
        penalty(1),  # row 4: the old cells of row 2's record: a duplicate of row 2
        penalty(2, CF_NR_FK="0.7"),  # row 5: a duplicate of the skipped row 3
        penalty(2, CF_NR_FK="0.9"),  # row 6: and of row 3 too, not of row 5
    ]
    counted = _Counted(monkeypatch)
    body = _sync(engine, config, write_rows(tmp_path / "b.csv", rows), days=1)
    assert counted.take() == [2, 5, 6]
    assert (body["updated"], body["unchanged"], body["added"], body["quarantined"]) == (1, 1, 0, 3)
    firsts = [(q["row"], q["reason"].split(" (")[0]) for q in body["quarantine"]]
    assert firsts == [
        (4, "duplicate of row 2"),
        (5, "duplicate of row 3"),
        (6, "duplicate of row 3"),
    ]
    fines = [str(r.fine_amount).rstrip("0") for r in _records(engine)]
    assert fines == ["0.5", "0.2"]
