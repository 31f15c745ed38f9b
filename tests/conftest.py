"""Shared fixtures.

Databases (see tests/pg.py for the PostgreSQL side). Every database fixture is parametrised
``sqlite`` / ``postgresql`` through ``backend``:

- ``db_url``: a fresh database already migrated to head — a copy of a template migrated
  once per session (a file copy on SQLite, ``CREATE DATABASE … TEMPLATE`` on PostgreSQL).
- ``engine``: ``make_engine(db_url)``; disposed afterwards.
- ``empty_db_url``: a fresh empty database, for what must start from nothing (the
  migrations, ``init``, ``health`` before anything ran, a command that must not create it).
- ``upgraded_engine``: ``empty_db_url`` migrated to head by the fixture itself.
- ``db_copy(name, build)``: a fresh copy of a database that ``build`` filled once per session
  (a fixture's data set, built through the CLI); see `DbTemplates`.
- ``pg_url``: a fresh empty PostgreSQL database only (mark such tests ``@pytest.mark.postgres``).
- ``pg_server``: the session's PostgreSQL server, started on first use.

The ``postgresql`` half skips when no server binaries are installed, unless
``CI=true`` or ``CREDIT_REPAIR_REQUIRE_PG=1``, where it fails instead.
"""

from __future__ import annotations

import copy
import itertools
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, closing, contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from sqlalchemy import Engine

from pipeline.config import Config, load_config
from pipeline.config import load as config_load
from pipeline.db.engine import make_engine
from pipeline.db.migrate import upgrade
from tests.helpers import Build, CliRunner, DbCopy
from tests.pg import PgServer, PgUnavailable, pg_required, server_from_environment
from tests.sms_server import SmsServer, running_server
from tests.smtp_server import Recorder

pytest_plugins = ("tests.web_site",)  # the answer page's fixtures (loaded)


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


@contextmanager
def _pg_database(server: PgServer, template: str | None = None) -> Iterator[str]:
    """A fresh PostgreSQL database (empty, or a copy of `template`), dropped afterwards."""
    name, url = server.create_database(template)
    try:
        yield url
    finally:
        server.drop_database(name)


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    with _pg_database(pg_server) as url:
        yield url


class DbTemplates:
    """Databases built once per session and copied for each test that wants one.

    On SQLite a template is a file, copied; on PostgreSQL a database, copied by the server
    (`PgServer.template`). A template is keyed by name: one build per name and backend.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.sqlite: dict[str, Path] = {}

    def workdir(self, backend: str, name: str) -> Path:
        """Where `build` may write files (snapshots, exports) and run with it as cwd."""
        folder = self.folder / f"{backend}-{name}"
        folder.mkdir(exist_ok=True)
        return folder

    def sqlite_copy(self, name: str, build: Build, dest: Path) -> str:
        template = self.sqlite.get(name)
        if template is None:
            path = self.workdir("sqlite", name) / "template.db"
            path.unlink(missing_ok=True)
            build(f"sqlite:///{path}", path.parent)
            # everything into the main file: the copy must not need the -wal beside it
            with closing(sqlite3.connect(path)) as conn:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            template = self.sqlite[name] = path
        shutil.copyfile(template, dest)
        return f"sqlite:///{dest}"

    def pg_copy(self, server: PgServer, name: str, build: Build) -> AbstractContextManager[str]:
        folder = self.workdir("postgresql", name)
        return _pg_database(server, server.template(name, lambda url: build(url, folder)))


def migrate(url: str, _folder: Path) -> None:
    engine = make_engine(url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def db_templates(tmp_path_factory: pytest.TempPathFactory) -> DbTemplates:
    return DbTemplates(tmp_path_factory.mktemp("db-templates"))


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def backend(request: pytest.FixtureRequest) -> str:
    """The database the test runs on; every database fixture below follows it."""
    name: str = request.param
    return name


@pytest.fixture
def db_copy(
    backend: str, db_templates: DbTemplates, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[DbCopy]:
    """`db_copy(name, build)`: the URL of a fresh copy of the template `name`, which
    `build(url, folder)` fills the first time it is asked for (once per backend)."""
    numbers = itertools.count(1)
    with ExitStack() as copies:

        def fresh_copy(name: str, build: Build) -> str:
            if backend == "sqlite":
                dest = tmp_path / f"{name}-{next(numbers)}.db"
                return db_templates.sqlite_copy(name, build, dest)
            server = request.getfixturevalue("pg_server")
            return copies.enter_context(db_templates.pg_copy(server, name, build))

        yield fresh_copy


@pytest.fixture
def db_url(db_copy: DbCopy) -> str:
    """A fresh database migrated to head (a copy of the session's migrated template)."""
    return db_copy("migrated", migrate)


@pytest.fixture
def empty_db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh empty database (nothing migrated; on SQLite the file does not exist yet)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path}/empty.db"
    else:
        with _pg_database(request.getfixturevalue("pg_server")) as url:
            yield url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def upgraded_engine(empty_db_url: str) -> Iterator[Engine]:
    """An empty database migrated to head here (for the tests of the migrations)."""
    engine = make_engine(empty_db_url)
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- config & data


@pytest.fixture(scope="session", autouse=True)
def _parse_each_yaml_text_once() -> Iterator[None]:
    """`yaml.safe_load` (and the config's `parse_yaml`) remember what each text parses to
    and hand out deep copies.

    Every in-process command loads the six config files again, and PyYAML's pure-Python
    parser takes ~60 ms for them: a third of what a typical CLI call costs, ~1 minute over
    the suite. Parsing is a pure function of the text, so each distinct text is still
    parsed for real (the first time; errors are raised every time, never remembered), and
    the caller gets its own copy to change. Subprocesses parse as in production.
    """

    def remembered(parse: Any) -> Any:
        parsed: dict[str, Any] = {}

        def load(stream: Any) -> Any:
            if not isinstance(stream, str):
                return parse(stream)
            if stream not in parsed:
                parsed[stream] = parse(stream)
            return copy.deepcopy(parsed[stream])

        return load

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(yaml, "safe_load", remembered(yaml.safe_load))
        patch.setattr(config_load, "parse_yaml", remembered(config_load.parse_yaml))
        yield


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
    """Run `credit-repair` in-process against the test database (migrated); returns
    (code, out, err). The working folder is tmp_path."""
    monkeypatch.setenv("CREDIT_REPAIR_DATABASE_URL", db_url)
    monkeypatch.chdir(tmp_path)
    return CliRunner(config_dir)


@pytest.fixture
def empty_cli(
    empty_db_url: str, config_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> CliRunner:
    """Like `cli`, on an empty database: the first command that needs it migrates it."""
    monkeypatch.setenv("CREDIT_REPAIR_DATABASE_URL", empty_db_url)
    monkeypatch.chdir(tmp_path)
    return CliRunner(config_dir)


@pytest.fixture(scope="session")
def _warm_lo_profile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lo") / "profile"


@pytest.fixture
def lo_profile(_warm_lo_profile: Path, tmp_path: Path) -> Iterator[Path]:
    """A LibreOffice user profile folder of this test's own (-env:UserInstallation).

    LibreOffice spends a second filling a new profile: the first test's profile is kept and
    each later test starts from a copy of it (without its lock file).
    """
    profile = tmp_path / "lo-profile"
    if _warm_lo_profile.exists():
        shutil.copytree(_warm_lo_profile, profile)
    yield profile
    if not _warm_lo_profile.exists() and (profile / "user").is_dir():
        shutil.copytree(profile, _warm_lo_profile, ignore=shutil.ignore_patterns(".lock"))


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
