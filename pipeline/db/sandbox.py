"""A what-if database: the command runs as usual, and nothing it writes is kept.

`credit-repair --now <a date after the real clock> …` and the `--dry-run` of `eligibility`,
`ledger show` and `report period` compute on the ledger as it is and print the result, but
leave the real database exactly as it was (`pipeline.app.App.discard_writes`).

- **SQLite**: the database file is copied (SQLite's online backup, a consistent snapshot even
  while the scheduler writes) into a temporary folder; the command runs on the copy, which is
  deleted afterwards. The real file is only read.
- **PostgreSQL**: the command runs on one connection inside one transaction that is rolled
  back at the end. Each `engine.connect()` / `engine.begin()` of the code borrows that
  connection: its own transaction becomes a savepoint (released on commit, rolled back on
  rollback), so the code sees its own writes and rolls back what it means to roll back.
  Rows the what-if updates stay locked until it ends: a scheduled job that writes the same
  rows waits for it.

Either way the sandbox needs the schema to be current already (a what-if never migrates).
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlalchemy import Connection, Engine, NestedTransaction
from sqlalchemy.engine import URL


class Sandbox:
    """The engine a what-if runs on, and what to undo when it ends."""

    def __init__(self, engine: Any, cleanup: Any) -> None:
        self.engine = engine
        self._cleanup = cleanup

    def close(self) -> None:
        self._cleanup()


def open_sandbox(real: Engine, make_engine: Any) -> Sandbox:
    """A sandbox over the database of `real` (`make_engine(url)` builds the copy's engine)."""
    if real.dialect.name == "sqlite":
        return _sqlite_copy(real, make_engine)
    shared = SharedEngine(real)
    return Sandbox(shared, shared.dispose)


def _sqlite_copy(real: Engine, make_engine: Any) -> Sandbox:
    folder = Path(tempfile.mkdtemp(prefix="credit-repair-whatif-"))
    copy = folder / "what-if.db"
    with real.connect() as conn:
        source = conn.connection.driver_connection
        assert isinstance(source, sqlite3.Connection)
        with closing(sqlite3.connect(copy)) as target:
            source.backup(target)
        conn.rollback()
    engine: Engine = make_engine(f"sqlite:///{copy}")

    def cleanup() -> None:
        engine.dispose()
        shutil.rmtree(folder, ignore_errors=True)

    return Sandbox(engine, cleanup)


def shares_one_connection(engine: Any) -> bool:
    """Whether every `connect()` of `engine` is the same connection inside one transaction
    (a PostgreSQL what-if, `SharedEngine`): no second thread on it, no autocommit."""
    return bool(getattr(engine, "single_connection", False))


class SharedEngine:
    """An `Engine` stand-in whose every connection is one connection in one transaction,
    rolled back by `dispose` (PostgreSQL; see the module's docstring)."""

    single_connection = True
    """Every `connect()` is the same connection: code must not use it from a second thread
    (`pipeline.delivery.reader.payload_reader`)."""

    def __init__(self, real: Engine) -> None:
        self._real = real
        self._conn = real.connect()
        self._outer = self._conn.begin()
        self.dialect = real.dialect
        self.name = real.name

    @property
    def url(self) -> URL:
        return self._real.url

    def connect(self) -> Borrowed:
        return Borrowed(self._conn, {})

    @contextmanager
    def begin(self) -> Iterator[Borrowed]:
        with self.connect() as conn, conn.begin():
            yield conn

    def dispose(self) -> None:
        if self._outer.is_active:
            self._outer.rollback()
        self._conn.close()


class Borrowed:
    """One `connect()` of the code on the shared connection: its transaction is a savepoint,
    begun by `begin()` or, as SQLAlchemy's autobegin, by the first statement."""

    def __init__(self, conn: Connection, options: dict[str, Any], owner: Borrowed | None = None):
        self._conn = conn
        self._options = options
        self._owner = owner
        self._savepoint: NestedTransaction | None = None

    # -- the transaction of this borrow --------------------------------------------------
    @property
    def _root(self) -> Borrowed:
        return self._owner._root if self._owner is not None else self

    def begin(self) -> NestedTransaction:
        root = self._root
        root._savepoint = self._conn.begin_nested()
        return root._savepoint

    def _autobegin(self) -> None:
        root = self._root
        if root._savepoint is None or not root._savepoint.is_active:
            root._savepoint = self._conn.begin_nested()

    def commit(self) -> None:
        root = self._root
        if root._savepoint is not None and root._savepoint.is_active:
            root._savepoint.commit()
        root._savepoint = None

    def rollback(self) -> None:
        root = self._root
        if root._savepoint is not None and root._savepoint.is_active:
            root._savepoint.rollback()
        root._savepoint = None

    def in_transaction(self) -> bool:
        root = self._root
        return root._savepoint is not None and root._savepoint.is_active

    def close(self) -> None:
        if self._owner is None:
            self.rollback()

    def __enter__(self) -> Borrowed:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- statements -----------------------------------------------------------------------
    def execution_options(self, **options: Any) -> Borrowed:
        return Borrowed(self._conn, {**self._options, **options}, owner=self)

    def _with(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        if self._options:
            kwargs["execution_options"] = {**self._options, **kwargs.get("execution_options", {})}
        return kwargs

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        self._autobegin()
        return self._conn.execute(*args, **self._with(kwargs))

    def exec_driver_sql(self, *args: Any, **kwargs: Any) -> Any:
        self._autobegin()
        return self._conn.exec_driver_sql(*args, **self._with(kwargs))

    def scalar(self, *args: Any, **kwargs: Any) -> Any:
        self._autobegin()
        return self._conn.scalar(*args, **self._with(kwargs))

    def scalars(self, *args: Any, **kwargs: Any) -> Any:
        self._autobegin()
        return self._conn.scalars(*args, **self._with(kwargs))

    @property
    def connection(self) -> Any:
        """The DB-API connection (COPY, named cursors): inside this borrow's savepoint."""
        self._autobegin()
        return self._conn.connection

    def __getattr__(self, name: str) -> Any:  # dialect, engine, info, ...
        return getattr(self._conn, name)
