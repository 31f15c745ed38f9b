"""One runner at a time: a lease row with an expiry, renewed while the holder works.

Acquire is one conditional UPDATE (free, expired, or already ours) and proceeds only
if exactly one row changed; the row is created on first use. A holder that dies stops
renewing, and after `ttl` another runner takes over. Works the same on SQLite and
PostgreSQL. Leases use the real wall clock, not the business clock of `--now`: a
replayed day must not be able to steal or keep a lease.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from types import TracebackType

from sqlalchemy import Engine, insert, or_, update
from sqlalchemy.exc import IntegrityError

from pipeline.db.models import Lease, table_of

leases = table_of(Lease)
Now = Callable[[], dt.datetime]


def try_acquire(
    engine: Engine, name: str, holder: str, ttl: dt.timedelta, now: dt.datetime
) -> bool:
    c = leases.c
    with engine.begin() as conn:
        taken = conn.execute(
            update(leases)
            .where(c.name == name, or_(c.holder.is_(None), c.holder == holder, c.expires_at < now))
            .values(holder=holder, acquired_at=now, expires_at=now + ttl, heartbeat_at=now)
        ).rowcount
    if taken == 1:
        return True
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(leases),
                {
                    "name": name,
                    "holder": holder,
                    "acquired_at": now,
                    "expires_at": now + ttl,
                    "heartbeat_at": now,
                },
            )
        return True
    except IntegrityError:
        return False  # somebody else holds it


def renew(engine: Engine, name: str, holder: str, ttl: dt.timedelta, now: dt.datetime) -> bool:
    c = leases.c
    with engine.begin() as conn:
        return (
            conn.execute(
                update(leases)
                .where(c.name == name, c.holder == holder)
                .values(expires_at=now + ttl, heartbeat_at=now)
            ).rowcount
            == 1
        )


def release(engine: Engine, name: str, holder: str) -> None:
    c = leases.c
    with engine.begin() as conn:
        conn.execute(
            update(leases)
            .where(c.name == name, c.holder == holder)
            .values(holder=None, expires_at=None)
        )


class HeldLease:
    """A lease renewed by a background thread every ttl/3 until released."""

    def __init__(self, engine: Engine, name: str, holder: str, ttl: dt.timedelta, now: Now) -> None:
        self.engine, self.name, self.holder, self.ttl, self.now = engine, name, holder, ttl, now
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew_loop, name=f"lease-{name}", daemon=True)

    def __enter__(self) -> HeldLease:
        self._thread.start()
        return self

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.ttl.total_seconds() / 3):
            if not renew(self.engine, self.name, self.holder, self.ttl, self.now()):
                self.lost.set()
                return

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()
        release(self.engine, self.name, self.holder)
