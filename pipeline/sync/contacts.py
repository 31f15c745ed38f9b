"""Entity contacts (`credit-repair contacts import`): who at a company gets the notices.

A contact that changes closes its old row (``valid_to``) and opens a new one, so the
history of where a notice went is kept. Rows with a bad USCC are rejected and
reported; a bad phone or e-mail is reported and that value dropped, the rest kept.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from pipeline.db.locks import write_lock
from pipeline.db.models import Contact, table_of
from pipeline.domain.uscc import check_uscc, normalise_code
from pipeline.errors import InputError
from pipeline.office.archive import XlsxLimits
from pipeline.sync.normalize import clean_text
from pipeline.sync.sources.base import RawRow
from pipeline.sync.sources.fields import header_key
from pipeline.sync.sources.files import read_snapshot

HEADERS = {
    "uscc": ("uscc", "统一社会信用代码"),
    "contact_name": ("contact_name", "联系人"),
    "phone": ("phone", "联系电话", "手机", "手机号码"),
    "email": ("email", "电子邮箱", "邮箱"),
}
MOBILE = re.compile(r"1[3-9]\d{9}")
EMAIL = re.compile(
    r"[^@\s<>()\[\],;:\"]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.(?:[A-Za-z]{2,}|xn--[A-Za-z0-9-]+)"
)
contacts = table_of(Contact)


def normalise_email(text: str) -> str:
    """An address as mail servers take it: the domain in punycode (`user@例子.中国` →
    `user@xn--fsqu00a.xn--fiqs8s`). Raises ValueError (the reason) for what cannot be
    delivered: a non-ASCII part before the @ needs SMTPUTF8, which few servers offer."""
    local, at, domain = unicodedata.normalize("NFKC", text).strip().rpartition("@")
    if not at or not local or not domain:
        raise ValueError("not a valid e-mail address; value dropped")
    if not local.isascii():
        raise ValueError(
            "the part before @ is not ASCII, which most mail servers cannot deliver; "
            "value dropped (ask the company for another address)"
        )
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError("the domain is not a valid domain name; value dropped") from None
    address = f"{local}@{ascii_domain}"
    if not EMAIL.fullmatch(address):
        raise ValueError("not a valid e-mail address; value dropped")
    return address


def normalise_phone(text: str) -> str:
    """Mainland mobile: drop spaces, dashes and a +86 / 0086 prefix."""
    digits = re.sub(r"[\s\-()]", "", unicodedata.normalize("NFKC", text))
    for prefix in ("+86", "0086", "86"):
        if digits.startswith(prefix) and len(digits) == len(prefix) + 11:
            return digits[len(prefix) :]
    return digits


@dataclass
class ContactImport:
    rows_read: int = 0
    added: int = 0
    changed: int = 0
    unchanged: int = 0
    rejected: int = 0
    issues: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def import_contacts(
    engine: Engine, path: Path, now: dt.datetime, limits: XlsxLimits | None = None
) -> ContactImport:
    """`limits`: what an XLSX may unpack to (settings.yaml `files`)."""
    result = ContactImport()
    with read_snapshot(path, limits=limits) as snapshot:
        columns = _columns(snapshot.headers, str(path))
        with engine.begin() as conn:
            write_lock(conn, "contacts import")
            for raw in snapshot:
                result.rows_read += 1
                contact = _parse(raw, columns, result)
                if contact is not None:
                    _store(conn, contact, str(path), now, result)
    return result


def _columns(headers: list[str], shown: str) -> dict[str, int]:
    keys = [header_key(h) for h in headers]
    found = {}
    for name, aliases in HEADERS.items():
        index = next((keys.index(header_key(a)) for a in aliases if header_key(a) in keys), None)
        if index is not None:
            found[name] = index
    if "uscc" not in found:
        raise InputError(
            f"{shown}: the header lacks the column uscc (统一社会信用代码); nothing was loaded"
        )
    return found


def _parse(
    raw: RawRow, columns: dict[str, int], result: ContactImport
) -> dict[str, str | None] | None:
    cell = {k: clean_text(raw.values[i]) if i < len(raw.values) else "" for k, i in columns.items()}
    code = normalise_code(cell["uscc"])
    check = check_uscc(code)
    if raw.problem or not code or check.error:
        result.rejected += 1
        result.issues.append(
            {
                "row": raw.row_no,
                "field": "uscc",
                "reason": raw.problem or check.error or "required value is empty",
            }
        )
        return None
    phone = normalise_phone(cell.get("phone", "")) or None
    if phone and not MOBILE.fullmatch(phone):
        result.issues.append(
            {
                "row": raw.row_no,
                "field": "phone",
                "reason": "not a mainland mobile number (11 digits starting 13–19); value dropped",
            }
        )
        phone = None
    email = cell.get("email", "") or None
    if email:
        try:
            email = normalise_email(email)
        except ValueError as exc:
            result.issues.append({"row": raw.row_no, "field": "email", "reason": str(exc)})
            email = None
    return {
        "uscc": code,
        "contact_name": cell.get("contact_name") or None,
        "phone": phone,
        "email": email,
    }


def _store(
    conn: Connection,
    contact: dict[str, str | None],
    source: str,
    now: dt.datetime,
    result: ContactImport,
) -> None:
    c = contacts.c
    current = (
        conn.execute(select(contacts).where(c.uscc == contact["uscc"], c.valid_to.is_(None)))
        .mappings()
        .first()
    )
    if current and all(current[k] == contact[k] for k in ("contact_name", "phone", "email")):
        result.unchanged += 1
        return
    if current:
        conn.execute(update(contacts).where(c.id == current["id"]).values(valid_to=now))
        result.changed += 1
    else:
        result.added += 1
    conn.execute(contacts.insert(), {**contact, "source": source, "valid_from": now})


def current_contact(conn: Connection, uscc: str) -> dict[str, Any] | None:
    c = contacts.c
    row = (
        conn.execute(select(contacts).where(c.uscc == uscc, c.valid_to.is_(None)))
        .mappings()
        .first()
    )
    return dict(row) if row else None
