"""Shared fixtures.

Databases (see tests/pg.py for the PostgreSQL side):

- ``db_url``: parametrised ``sqlite`` / ``postgresql``; a fresh empty database per test.
- ``engine``: ``make_engine(db_url)`` migrated to head; disposed afterwards.
- ``pg_url``: a fresh PostgreSQL database only (mark such tests ``@pytest.mark.postgres``).
- ``pg_server``: the session's PostgreSQL server, started on first use.

The ``postgresql`` half skips when no server binaries are installed, unless
``CI=true`` or ``CREDIT_REPAIR_REQUIRE_PG=1``, where it fails instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import Engine

from pipeline.config import Config, load_config
from pipeline.db.engine import make_engine
from pipeline.db.migrate import upgrade
from tests.helpers import CliRunner
from tests.pg import PgServer, PgUnavailable, pg_required, server_from_environment
from tests.sms_server import SmsServer, running_server
from tests.smtp_server import Recorder


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    try:
        server = server_from_environment()
    except PgUnavailable as exc:
        if pg_required():
            pytest.fail(f"PostgreSQL is required here but unavailable: {exc}", pytrace=False)
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        server.stop()


def _fresh_pg_database(server: PgServer) -> Iterator[str]:
    name, url = server.create_database()
    try:
        yield url
    finally:
        server.drop_database(name)


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    yield from _fresh_pg_database(pg_server)


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/test.db"
    else:
        yield from _fresh_pg_database(request.getfixturevalue("pg_server"))


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- config & data

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def config_dir() -> Path:
    """The shipped config folder (the district of the seed)."""
    return REPO / "config"


@pytest.fixture
def config(config_dir: Path) -> Config:
    return load_config(config_dir, env={})


@pytest.fixture
def cli(
    db_url: str, config_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> CliRunner:
    """Run `credit-repair` in-process against the test database; returns (code, out, err)."""
    monkeypatch.setenv("CREDIT_REPAIR_DATABASE_URL", db_url)
    monkeypatch.chdir(tmp_path)
    return CliRunner(config_dir)


# --------------------------------------------------------------------------- SMTP and SMS


@pytest.fixture
def recorder() -> Recorder:
    """What a loopback SMTP server received (tests/smtp_server.py)."""
    return Recorder()



@pytest.fixture
def server() -> Iterator[SmsServer]:
    """A scripted SMS gateway on loopback (tests/sms_server.py); modules may define their own."""
    with running_server() as gateway:
        yield gateway


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s
