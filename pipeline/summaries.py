"""One line a person reads for each job run: what it did, Chinese first, English after.

Built from the run's counts (`Result.as_json()`, what ``job_runs.counts`` keeps), so the
runner's log (`job.end` ``summary``) and `run --once` / `jobs run` say the same. Never a
Python dict, never ``None``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

from pipeline.ledger.state import STATUS_NAMES

JOB_NAMES = {
    "sync": "同步",
    "evaluate": "评估",
    "plan_notices": "计划通知",
    "department_reminder": "月度提醒",
    "escalate": "督办升级",
    "monthly_report": "月度报告",
    "dispatch": "发送",
}
OUTCOMES = {
    "ok": "完成",
    "refused": "被拒绝",
    "error": "失败",
    "disabled": "已停用",
    "gave_up": "多次失败，已放弃",
    "before_installation": "安装前到期，不补跑",
    None: "未到期",
}
SEND = {
    "sent": "已发送",
    "resent": "已重发",
    "already_sent": "此前已发送",
    "not_requested": "未发送",
    "empty_not_sent": "无记录，未发送",
}
KINDS = {
    "repair_notice": "告知书",
    "eligibility_reminder": "可修复提醒",
    "follow_up": "跟进提醒",
    "list_notice": "名单告知",
    "department_digest": "部门日报",
    "department_reminder": "月度提醒",
    "escalation": "督办",
    "monthly_report": "月度报告",
}


def _n(counts: Mapping[str, Any], key: str) -> int:
    value = counts.get(key)
    return int(value) if isinstance(value, (int, float)) else 0


def by(values: Any, names: Mapping[str, str]) -> str:
    if not isinstance(values, Mapping) or not values:
        return "无"
    order = [k for k in names if k in values] + [k for k in values if k not in names]
    return "，".join(f"{names.get(k, k)} {values[k]}" for k in order)


def pct(value: Any) -> str:
    return "—" if not isinstance(value, (int, float)) else f"{value * 100:.1f}%"


def _sync(c: Mapping[str, Any]) -> str:
    text = (
        f"{_n(c, 'sources')} 个来源：新增 {_n(c, 'added')}，更新 {_n(c, 'updated')}，"
        f"消失 {_n(c, 'vanished')}，隔离 {_n(c, 'quarantined')}"
    )
    if c.get("refused"):
        text += "；被保护机制拒绝：" + "；".join(str(r) for r in c.get("reasons") or [])
    return text


def _evaluate(c: Mapping[str, Any]) -> str:
    return (
        f"评估 {_n(c, 'evaluated')} 条（变化 {_n(c, 'changed')}）：{by(c.get('by_status'), STATUS_NAMES)}；"
        f"提前修复销账 {_n(c, 'repaired_early')}，到期销账 {_n(c, 'expired')}，"
        f"待核实 {_n(c, 'to_confirm')}，超期仍公示 {_n(c, 'overdue_display')}"
    )


def _plan(c: Mapping[str, Any]) -> str:
    return (
        f"新计划 {_n(c, 'planned')} 条（{by(c.get('by_kind'), KINDS)}），"
        f"此前已计划 {_n(c, 'already_planned')}，无联系方式 {_n(c, 'no_address')}"
    )


def _dispatch(c: Mapping[str, Any]) -> str:
    manual = _n(c, "manual_tasks")
    sent = f"发送 {_n(c, 'sent')}"
    if manual:  # a task for a person is not a notice delivered: said apart
        sent = f"发送 {_n(c, 'sent') - manual}，转人工送达 {manual}"
    text = (
        f"{sent}，仅写入文件 {_n(c, 'written')}，待重试 {_n(c, 'retry')}，"
        f"失败 {_n(c, 'failed')}，结果未知 {_n(c, 'unknown')}，推迟 {_n(c, 'deferred')}"
    )
    if c.get("channels_down"):
        text += "；渠道不可用：" + "、".join(str(x) for x in c["channels_down"])
    return text


def _reminder(c: Mapping[str, Any]) -> str:
    return f"{c.get('month', '-')} 月：{_n(c, 'departments')} 个部门，新计划 {_n(c, 'planned')} 封"


def _escalate(c: Mapping[str, Any]) -> str:
    return (
        f"{c.get('month', '-')} 月：发现 {sum((c.get('found') or {}).values())}，"
        f"升级 {_n(c, 'escalated')}（{by({f'{k}级': v for k, v in (c.get('by_level') or {}).items()}, {})}），"
        f"督办邮件 {_n(c, 'digests')}"
    )


def _report(c: Mapping[str, Any]) -> str:
    return (
        f"{c.get('period', '-')}：记录 {_n(c, 'records')}，告知率 {pct(c.get('told_rate'))}，"
        f"知晓率 {pct(c.get('aware_rate'))}，修复率 {pct(c.get('repair_rate'))}，"
        f"逾期 {_n(c, 'overdue')}；{SEND.get(str(c.get('send')), str(c.get('send')))} {_n(c, 'sent')} 封"
    )


SUMMARIES: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "sync": _sync,
    "evaluate": _evaluate,
    "plan_notices": _plan,
    "dispatch": _dispatch,
    "department_reminder": _reminder,
    "escalate": _escalate,
    "monthly_report": _report,
}


def _plain(c: Mapping[str, Any]) -> str:
    return "，".join(f"{k} {v}" for k, v in c.items() if v is not None and k != "seconds") or "-"


def job_summary(job: str, counts: Mapping[str, Any]) -> str:
    """What the run did, in one clause (the counts of a job this module does not know: k v)."""
    try:
        return SUMMARIES.get(job, _plain)(counts)
    except (TypeError, ValueError, AttributeError):  # counts of an older shape: say them plainly
        return _plain(counts)


def local_time(at: dt.datetime | None, tz: ZoneInfo) -> str:
    """`2026-11-20 09:00 +08:00`: a moment in the business zone."""
    if at is None:
        return "-"
    local = at.astimezone(tz)
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M} {offset[:3]}:{offset[3:]}"


def outcome_line(
    job: str,
    ran: bool,
    outcome: str | None,
    counts: Mapping[str, Any],
    due_at: dt.datetime | None,
    error: str | None,
    tz: ZoneInfo,
) -> str:
    """`escalate 督办升级 [完成 ok] 到期 2026-11-20 09:00 +08:00：2026-11 月：…`."""
    name = f"{job} {JOB_NAMES.get(job, '')}".rstrip()
    state = f"{OUTCOMES.get(outcome, outcome or '')} {outcome or 'not due'}".strip()
    due = f" 到期 {local_time(due_at, tz)}" if due_at else ""
    if not ran:
        return f"{name} [{state}]{due}"
    text = f"{name} [{state}]{due}：{job_summary(job, counts)}"
    if error:
        text += f"；错误 / error: {error}"
    return text
