"""What a code shows and what an answer changes: the answer page's only database access.

A code names one link; a link names one record. The page shows that record's public
facts (no other record, no contact person of the company). Opening it records the
first view (已查看); an answer records 知晓 and, for three of the five answers, the
company's willingness — unless the department itself set the willingness, which wins.
Every ledger change is audited with source ``company`` and actor ``company:<link id>``.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, update

from pipeline.db.models import AnswerLink, CompanyAnswer, LedgerEvent, Record, table_of
from pipeline.ledger.state import change
from pipeline.web.codes import code_hash, well_formed

links = table_of(AnswerLink)
answers = table_of(CompanyAnswer)
records = table_of(Record)
events = table_of(LedgerEvent)

ANSWERS = {
    "acknowledged": "我已知晓",
    "willing": "我有修复意愿",
    "applied": "我已提交修复申请",
    "help": "需要帮助（留联系电话）",
    "unwilling": "暂无修复意愿",
}
WILLINGNESS = {"willing": "yes", "applied": "yes", "unwilling": "no"}
DEPARTMENT_SOURCES = ("cli", "import")
MOBILE = re.compile(r"1[3-9]\d{9}")
LANDLINE = re.compile(r"0\d{2,3}-?\d{7,8}")


@dataclass(frozen=True)
class Found:
    link: dict[str, Any]
    record: dict[str, Any]
    open: bool
    """False once the record closed or the link expired: shown, no longer answered."""


def find(conn: Connection, code: str, now: dt.datetime) -> Found | None:
    """The link and record of `code`; None for a code that names nothing.

    Every code costs one hash and one indexed lookup, found or not: a guessed code
    takes as long to refuse as a real one to find.
    """
    digest = code_hash(code)
    link = conn.execute(select(links).where(links.c.code_hash == digest)).mappings().first()
    if link is None or not well_formed(code):
        return None
    record = conn.execute(select(records).where(records.c.id == link["record_id"])).mappings().one()
    is_open = record["closed_on"] is None and now < link["expires_at"]
    return Found(dict(link), dict(record), is_open)


def record_view(conn: Connection, found: Found, now: dt.datetime) -> None:
    """Count a view; the first view of the record is 已查看 in the ledger (audited)."""
    link = found.link
    conn.execute(
        update(links)
        .where(links.c.id == link["id"])
        .values(
            views=links.c.views + 1,
            last_viewed_at=now,
            first_viewed_at=link["first_viewed_at"] or now,
        )
    )
    if found.record["viewed_at"] is None:
        actor = f"company:{link['id']}"
        change(conn, found.record, {"viewed_at": now}, now, "company", actor, "answer page opened")


def clean_phone(text: str) -> str | None:
    """A mainland mobile or landline number as left for help, or None if it is not one."""
    digits = re.sub(r"[\s()（）+]", "", text)
    digits = digits.removeprefix("86") if len(digits) == 13 else digits
    if MOBILE.fullmatch(digits) or LANDLINE.fullmatch(digits):
        return digits
    return None


@dataclass(frozen=True)
class Visitor:
    ip_hash: str
    user_agent: str | None


def give_answer(
    conn: Connection,
    found: Found,
    answer: str,
    phone: str | None,
    visitor: Visitor,
    now: dt.datetime,
) -> None:
    """Store the answer and what it means for the ledger (the caller checked it is valid)."""
    link, record = found.link, found.record
    conn.execute(
        insert(answers).values(
            link_id=link["id"],
            record_id=record["id"],
            answer=answer,
            phone=phone,
            at=now,
            ip_hash=visitor.ip_hash,
            user_agent=visitor.user_agent,
        )
    )
    values: dict[str, Any] = {"company_answer": answer, "company_answer_at": now}
    values["receipt_confirmed_at"] = record["receipt_confirmed_at"] or now  # 知晓
    if answer == "help":
        values["help_phone"] = phone
    wanted = WILLINGNESS.get(answer)
    if wanted is not None and not _department_decided(conn, record["id"]):
        values["willingness"] = wanted
    change(conn, record, values, now, "company", f"company:{link['id']}", ANSWERS[answer])


def _department_decided(conn: Connection, record_id: int) -> bool:
    """Whether a person of the department set the willingness (their edit wins)."""
    e = events.c
    query = select(e.source).where(e.record_id == record_id, e.field == "willingness")
    latest = conn.execute(query.order_by(e.id.desc()).limit(1)).scalar()
    return latest in DEPARTMENT_SOURCES
