"""The monthly-report workbook, streamed: openpyxl write-only mode, one row at a time.

Sheets, in order: 汇总 (KPIs per department and total, with a bar chart), 趋势
(month-over-month KPIs with a line and a bar chart — native Excel charts), 附件1
(penalties per department), 附件2 (severe-list entries per entity with its
department), 附件3 / 附件4 (the open ledgers, as in the forms), 动态调整 (this period's
added and closed entries). The ledgers and changes are appended while the records
stream past; the summary sheets, created first so they come first, are filled at the
end (write-only sheets each have their own temporary file, so that order is allowed).

Every cell and the save go through `pipeline.office.xlsx` (text never a formula; the file
checked before it is moved into place).

`write_only=False` builds the same workbook in openpyxl's normal mode (every cell in
memory): the benchmark's baseline.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from openpyxl.chart import BarChart, LineChart, Reference
from openpyxl.styles import Alignment, Font, PatternFill

from pipeline.ledger.state import WILLINGNESS, progress_names
from pipeline.monthly.kpis import KPI_NAMES, RATES
from pipeline.office.xlsx import append, cell, new_workbook, save_workbook

TITLE = Font(bold=True, size=14)
BOLD = Font(bold=True)
HEAD_FILL = PatternFill("solid", fgColor="DDEBF7")
GREEN_FILL = PatternFill("solid", fgColor="E2EFDA")
WRAP = Alignment(wrap_text=True, vertical="center")
PERCENT = "0.0%"
STATUS = {
    "repairable": "可修复",
    "in_min_period": "最短公示期内",
    "non_repairable": "不可提前修复",
    "expired": "已到期",
    "error": "评估错误",
    None: "未评估",
    "not_published": "不公示",
}
CHANGE_NAMES = {
    "added": "新增",
    "closed_repaired": "修复销账",
    "closed_expired": "到期销账",
    "closed_removed": "移出名单（修复退出）",
    "closed_revoked": "决定撤销销账",
    "closed_data_gap": "数据缺失销账",
    "closed_other": "其他原因销账",
}
SUMMARY_KPIS = (
    "records",
    "penalties",
    "list_entries",
    "open",
    "entities",
    "entities_told",
    "told_rate",
    "entities_aware",
    "aware_rate",
    "willing_eligible",
    "repaired",
    "repair_rate",
    "overdue",
    "delivery_unknown",
    "delivery_failed",
    "green_channel",
    "added",
    "closed_repaired",
    "closed_expired",
    "closed_removed",
    "to_confirm",
    "overdue_display",
    "file_only",
    "manual_pending",
    "closed_revoked",
    "closed_data_gap",
    "closed_other",
    "entities_viewed",
    "entities_willing",
    "ack_rate",
    "willing_rate",
)
CHART_RATES = ("told_rate", "aware_rate", "repair_rate")
TREND_KPIS = ("told_rate", "aware_rate", "repair_rate", "records", "added", "closed", "overdue")
PENALTY_HEAD = (
    "序号",
    "企业名称",
    "统一社会信用代码",
    "行政处罚决定书文号",
    "行政处罚可修复时间",
    "企业修复意愿（是/否）",
    "计划完成修复时间",
    "工作进展",
    "责任部门/处室",
    "责任人及电话",
    "企业负责人及电话",
    "备注",
    "绿色通道",
    "公示状态",
)
LIST_HEAD = (
    "序号",
    "企业名称",
    "统一社会信用代码",
    "处罚/判决决定书文号",
    "可修复时间",
    "企业修复意愿（是/否）",
    "计划完成修复时间",
    "工作进展",
    "修复效果（执行金额等）",
    "责任处室",
    "责任人及电话",
    "企业负责人及电话",
    "备注",
    "名单名称",
    "绿色通道",
)
CHANGE_HEAD = (
    "序号",
    "调整类型",
    "台账",
    "责任部门",
    "企业名称",
    "统一社会信用代码",
    "文号",
    "日期",
)


class ReportWorkbook:
    def __init__(
        self, departments: dict[str, str], title: str, as_of: str, write_only: bool = True
    ) -> None:
        self.departments, self.title, self.as_of = departments, title, as_of
        self.wb = new_workbook(write_only)
        self.summary = self._sheet("汇总", [14] + [10] * len(SUMMARY_KPIS))
        self.trend = self._sheet("趋势", [12] + [10] * len(TREND_KPIS))
        self.annex1 = self._sheet("附件1", [8, 40, 20, 20])
        self.annex2 = self._sheet("附件2", [8, 40, 22, 16, 36])
        self.annex3 = self._sheet("附件3", [8, 34, 22, 28, 14, 10, 14, 12, 30, 18, 18, 24, 8, 14])
        self.annex4 = self._sheet(
            "附件4", [8, 34, 22, 28, 12, 10, 14, 14, 18, 30, 18, 18, 24, 26, 8]
        )
        self.changes = self._sheet("动态调整", [8, 20, 10, 30, 34, 22, 28, 12])
        self._head(self.annex3, "市场主体行政处罚信用修复工作台账（附件3）", PENALTY_HEAD)
        self._head(self.annex4, "严重失信市场主体信用修复工作台账（附件4）", LIST_HEAD)
        self._head(self.changes, f"台账动态调整情况（{title}）", CHANGE_HEAD)
        self.n3 = self.n4 = self.n_changes = 0
        self.penalties_by_dept: Counter[str] = Counter()
        self.list_by_entity: Counter[tuple[str, str, str]] = Counter()

    # ------------------------------------------------------------------ helpers
    def _sheet(self, title: str, widths: list[int]) -> Any:
        ws = self.wb.create_sheet(title)
        for i, width in enumerate(widths):
            ws.column_dimensions[_col(i)].width = width
        return ws

    def _cell(
        self,
        ws: Any,
        value: Any,
        font: Font | None = None,
        fill: PatternFill | None = None,
        fmt: str | None = None,
    ) -> Any:
        return cell(ws, value, font, fill, fmt)

    def _head(self, ws: Any, title: str, head: tuple[str, ...] | list[str]) -> None:
        append(ws, [self._cell(ws, title, TITLE)])
        append(ws, [f"截至 {self.as_of}"])
        append(ws, [self._cell(ws, h, BOLD, HEAD_FILL) for h in head])

    def dept(self, code: str) -> str:
        return self.departments.get(code) or code or "（未分配）"

    # ------------------------------------------------------------------ streamed rows
    def ledger_row(self, s: dict[str, Any]) -> None:
        """One open ledger entry (附件3 for penalties, 附件4 for list entries)."""
        names = progress_names(s["kind"])
        progress = f"{s['progress']} {names.get(s['progress'], '')}" if s["progress"] else "未告知"
        green = "是" if s["green_channel"] else None
        if s["kind"] == "penalty":
            self.n3 += 1
            self.penalties_by_dept[s["department_code"]] += 1
            when = s["repairable_from"] or (
                "不可提前修复" if s["status"] == "non_repairable" else None
            )
            row = [
                self.n3,
                s["entity_name"],
                s["uscc"],
                s["decision_no"],
                when,
                WILLINGNESS.get(s["willingness"]) or None,
                s["planned_on"],
                progress,
                self.dept(s["department_code"]),
                s["responsible"],
                s["legal_rep"],
                s["remarks"],
                green,
                STATUS.get(s["status"], s["status"]),
            ]
            append(self.annex3, self._green(self.annex3, row) if green else row)
        else:
            self.n4 += 1
            self.list_by_entity[(s["entity_name"], s["uscc"] or "", s["department_code"])] += 1
            row = [
                self.n4,
                s["entity_name"],
                s["uscc"],
                s["decision_no"],
                None,
                WILLINGNESS.get(s["willingness"]) or None,
                s["planned_on"],
                progress,
                s["repair_effect"],
                self.dept(s["department_code"]),
                s["responsible"],
                s["legal_rep"],
                s["remarks"],
                s["list_name"],
                green,
            ]
            append(self.annex4, self._green(self.annex4, row) if green else row)

    def _green(self, ws: Any, row: list[Any]) -> list[Any]:
        return [self._cell(ws, v, fill=GREEN_FILL) for v in row]

    def change_row(self, s: dict[str, Any], change: str) -> None:
        self.n_changes += 1
        day = s["first_seen_on"] if change == "added" else s["closed_on"]
        append(
            self.changes,
            [
                self.n_changes,
                CHANGE_NAMES[change],
                "行政处罚" if s["kind"] == "penalty" else "严重失信名单",
                self.dept(s["department_code"]),
                s["entity_name"],
                s["uscc"],
                s["decision_no"],
                day,
            ],
        )

    # ------------------------------------------------------------------ summary sheets
    def finish(
        self, kpis: dict[str, Any], trend: list[dict[str, Any]], notes: list[str], path: Path
    ) -> None:
        self._summary(kpis, notes)
        self._trend(trend)
        self._annex1()
        self._annex2()
        if self.n3 == 0:
            append(self.annex3, ["（无在账记录）"])
        if self.n4 == 0:
            append(self.annex4, ["（无在账记录）"])
        if self.n_changes == 0:
            append(self.changes, ["（本期无台账调整）"])
        save_workbook(self.wb, path)  # checked (no formula, well-formed) before it is in place

    def _kpi_cells(self, ws: Any, block: dict[str, Any], font: Font | None = None) -> list[Any]:
        cells = []
        for k in SUMMARY_KPIS:
            value = block.get(k)
            if k in RATES:
                cells.append(self._cell(ws, "—" if value is None else value, font, fmt=PERCENT))
            else:
                cells.append(self._cell(ws, value or 0, font))
        return cells

    def _summary(self, kpis: dict[str, Any], notes: list[str]) -> None:
        ws = self.summary
        self._head(
            ws,
            f"信用修复工作{self.title}报告 — 指标汇总",
            ["部门", *(KPI_NAMES[k] for k in SUMMARY_KPIS)],
        )
        departments = kpis["departments"]
        for d in departments:
            append(ws, [d["name"], *self._kpi_cells(ws, d)])
        append(ws, [self._cell(ws, "合计", BOLD), *self._kpi_cells(ws, kpis["total"], BOLD)])
        append(ws, [])
        for line in notes:
            append(ws, [line])
        if departments:
            chart = BarChart()
            chart.type = "bar"
            chart.title = "各部门告知率、知晓率、修复率"
            chart.y_axis.number_format = PERCENT
            chart.y_axis.scaling.min, chart.y_axis.scaling.max = 0, 1
            for k in CHART_RATES:
                col = SUMMARY_KPIS.index(k) + 2
                chart.add_data(
                    Reference(ws, min_col=col, min_row=3, max_row=3 + len(departments)),
                    titles_from_data=True,
                )
            chart.set_categories(Reference(ws, min_col=1, min_row=4, max_row=3 + len(departments)))
            chart.height, chart.width = 4 + 0.8 * len(departments), 18
            ws.add_chart(chart, f"B{len(departments) + 7 + len(notes)}")

    def _trend(self, trend: list[dict[str, Any]]) -> None:
        ws = self.trend
        self._head(
            ws, "月度趋势（逐月对比）", ["月份", *(KPI_NAMES.get(k, "销账") for k in TREND_KPIS)]
        )
        for point in trend:
            cells: list[Any] = [point["period"]]
            for k in TREND_KPIS:
                value = point.get(k)
                cells.append(self._cell(ws, value, fmt=PERCENT) if k in RATES else (value or 0))
            append(ws, cells)
        n = len(trend)
        if n == 0:
            return
        line = LineChart()
        line.title, line.y_axis.title = "告知率、知晓率、修复率（逐月）", "比率"
        line.y_axis.number_format = PERCENT
        line.y_axis.scaling.min, line.y_axis.scaling.max = 0, 1
        line.add_data(
            Reference(ws, min_col=2, max_col=4, min_row=3, max_row=3 + n), titles_from_data=True
        )
        line.set_categories(Reference(ws, min_col=1, min_row=4, max_row=3 + n))
        line.width = 20
        ws.add_chart(line, f"A{n + 6}")
        bars = BarChart()
        bars.title = "新增、销账、逾期（逐月）"
        for k in ("added", "closed", "overdue"):
            col = TREND_KPIS.index(k) + 2
            bars.add_data(
                Reference(ws, min_col=col, min_row=3, max_row=3 + n), titles_from_data=True
            )
        bars.set_categories(Reference(ws, min_col=1, min_row=4, max_row=3 + n))
        bars.width = 20
        ws.add_chart(bars, f"A{n + 22}")

    def _annex1(self) -> None:
        ws = self.annex1
        self._head(
            ws,
            "全区市场主体行政处罚统计表（附件1）",
            ["序号", "区直/驻区部门", "行政处罚信息（条数）", "备注"],
        )
        codes = [c for c in self.departments if self.penalties_by_dept.get(c)]
        codes += sorted(c for c in self.penalties_by_dept if c not in self.departments)
        for i, code in enumerate(codes, 1):
            append(ws, [i, self.dept(code), self.penalties_by_dept[code], None])
        append(
            ws,
            [
                None,
                self._cell(ws, "合计", BOLD),
                self._cell(ws, sum(self.penalties_by_dept.values()), BOLD),
            ],
        )

    def _annex2(self) -> None:
        ws = self.annex2
        self._head(
            ws,
            "全区行业（系统）严重失信主体名单统计表（附件2）",
            ["序号", "名称", "统一社会信用代码", "失信信息（条数）", "主管部门"],
        )
        for i, ((name, uscc, code), n) in enumerate(
            sorted(self.list_by_entity.items(), key=lambda x: (x[0][2], x[0][0])), 1
        ):
            append(ws, [i, name, uscc or None, n, self.dept(code)])
        append(
            ws,
            [
                None,
                self._cell(ws, "合计", BOLD),
                None,
                self._cell(ws, sum(self.list_by_entity.values()), BOLD),
            ],
        )


def _col(index: int) -> str:
    from openpyxl.utils import get_column_letter

    return str(get_column_letter(index + 1))
