"""`sources check`: what a source's columns become, and its first rows as the sync reads them.

Writes nothing. For each column: the field it gives (or none), and how (`ORIGINS`: an
alias, a fallback, the source's field_map, a person's data, a recognised or unknown extra);
the unmapped columns; a missing required field or a repeated header (which would stop the
sync); then the first rows validated as the sync validates them — loaded (with the values
read), quarantined (with the reasons) or out of scope (with the reason). A natural
person's row shows nothing of the person.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipeline.config import Config, SourceSettings
from pipeline.domain.routing import Router
from pipeline.sync.loading import KINDS, open_source
from pipeline.sync.rows import RowValidator
from pipeline.sync.sources.base import Snapshot
from pipeline.sync.sources.fields import (
    HeaderMapping,
    build_mapping,
    column_origins,
    describe_field,
)

SHOWN_FIELDS = (
    "decision_no",
    "decision_key",
    "entity_name",
    "entity_type",
    "uscc",
    "authority",
    "authority_uscc",
    "decision_date",
    "penalty_types",
    "fine_amount",
    "confiscated_amount",
    "valid_until",
    "publish_until",
    "data_source",
    "department_code",
)
"""The values a row shows as parsed (the rest are kept too, but these decide the most)."""


@dataclass
class SourceReport:
    source: str
    where: str
    kind: str
    date_order: str
    columns: list[dict[str, Any]] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    repeated: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    not_modified: bool = False

    @property
    def ok(self) -> bool:
        """Whether a sync would read the file (no missing field, no repeated header)."""
        return not self.missing and not self.repeated

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "where": self.where,
            "kind": self.kind,
            "date_order": self.date_order,
            "ok": self.ok,
            "columns": self.columns,
            "unmapped": self.unmapped,
            "missing": self.missing,
            "repeated": self.repeated,
            "rows": self.rows,
            "not_modified": self.not_modified,
        }


def check_source(config: Config, source: SourceSettings, rows: int = 5) -> SourceReport:
    """Open the source (a file, or one download of an HTTP source) and report on it."""
    where = source.path if source.kind == "file" else source.url
    report = SourceReport(source.name, str(where), source.records, source.date_order)
    with open_source(config, source) as (snapshot, _):
        if snapshot is None:
            report.not_modified = True
            return report
        describe_snapshot(config, source, snapshot, report, rows)
    return report


def describe_snapshot(
    config: Config, source: SourceSettings, snapshot: Snapshot, report: SourceReport, rows: int
) -> None:
    mapping = build_mapping(snapshot.headers, source.records, source.field_map)
    _describe_columns(mapping, source, report)
    if not report.ok:
        return  # the sync would stop here: no row is read
    router = Router(config.departments, config.settings.jurisdiction)
    validator = RowValidator(KINDS[source.records], mapping, router, source.date_order)
    for raw in snapshot:
        if len(report.rows) >= rows:
            break
        report.rows.append(_row(validator.validate(raw)))


def _describe_columns(mapping: HeaderMapping, source: SourceSettings, report: SourceReport) -> None:
    origins = column_origins(mapping, source.field_map)
    for number, (header, name, origin) in enumerate(
        zip(mapping.headers, mapping.fields, origins, strict=True), 1
    ):
        report.columns.append({"column": number, "header": header, "field": name, "how": origin})
        if origin == "unmapped":
            report.unmapped.append(header)
    report.missing = mapping.describe_missing()
    report.repeated = mapping.describe_repeated()
    units = mapping.amount_units
    for column in report.columns:
        if column["field"] in units:
            column["unit"] = "元" if units[column["field"]] == "yuan" else "万元"


def _row(outcome: Any) -> dict[str, Any]:
    errors = [i.as_json() for i in outcome.issues if i.level == "error"]
    warnings = [i.as_json() for i in outcome.issues if i.level == "warning"]
    if outcome.values is not None:
        values = {k: _shown(outcome.values.get(k)) for k in SHOWN_FIELDS}
        return {"row": outcome.row_no, "outcome": "loaded", "values": values, "issues": warnings}
    if outcome.out_of_scope:
        return {
            "row": outcome.row_no,
            "outcome": "out_of_scope",
            "scope_reason": outcome.scope_reason,
            "values": None,  # a natural person's row shows nothing; others need not
            "issues": [],
        }
    return {"row": outcome.row_no, "outcome": "quarantined", "values": None, "issues": errors}


def _shown(value: Any) -> Any:
    return value if value is None or isinstance(value, str | int | float) else str(value)


def field_label(name: str | None, kind: str) -> str:
    """`decision_no (CF_WSH / 行政处罚决定书文号)`, or `-` for none."""
    if name is None:
        return "-"
    try:
        return describe_field(name, "penalties" if kind == "penalties" else "severe-list")
    except KeyError:
        return name
