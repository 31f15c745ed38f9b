"""Column types that behave the same on SQLite and PostgreSQL, and `scanned` (a condition's
column read without its index)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import DateTime, Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import JSON, TypeDecorator


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware datetimes in, aware UTC datetimes out; stored as naive UTC.

    SQLite has no time zones; storing naive UTC everywhere keeps comparisons in SQL
    correct on both databases.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        return value.replace(tzinfo=dt.UTC)


JSONType = JSON(none_as_null=True)


class Scanned(ColumnElement[Any]):
    """A column a condition reads without its index (`scanned`)."""

    inherit_cache = True

    def __init__(self, column: ColumnElement[Any]) -> None:
        self.column = column
        self.type = column.type


def scanned(column: ColumnElement[Any]) -> ColumnElement[Any]:
    """`column` in a condition that should not pick its index: on SQLite ``+column``.

    SQLite has no statistics unless ANALYZE ran, so for ``kind = 'penalty'`` — true of
    nearly every record — it walks the (kind, authority, decision_no) index and fetches each
    record by its id: three to four times slower than reading the table straight through.
    PostgreSQL keeps statistics and chooses well: the column as it is.
    """
    return Scanned(column)


@compiles(Scanned)
def _scanned_default(element: Scanned, compiler: Any, **kw: Any) -> str:
    text: str = compiler.process(element.column, **kw)
    return text


@compiles(Scanned, "sqlite")
def _scanned_sqlite(element: Scanned, compiler: Any, **kw: Any) -> str:
    return "+" + str(compiler.process(element.column, **kw))
