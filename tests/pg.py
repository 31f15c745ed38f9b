"""A throwaway PostgreSQL server for the test session.

`server_from_environment()` gives a `PgServer`:

- ``CREDIT_REPAIR_TEST_PG_URL`` set: that server (any PostgreSQL the URL's user may
  ``CREATE DATABASE`` on); nothing is started or stopped.
- otherwise: a private cluster (`PgCluster`) from the server binaries under
  ``/usr/lib/postgresql/<version>/bin`` (15 preferred), in a temporary folder, on a
  free port of 127.0.0.1, trust auth, fsync off. As root, initdb/postgres run as the
  ``postgres`` user (they refuse to run as root).
- no binaries: `PgUnavailable`; the fixtures skip on it, or fail when PostgreSQL is
  required (``CI=true`` or ``CREDIT_REPAIR_REQUIRE_PG=1``).

Each test gets a fresh database (`PgServer.create_database`), dropped afterwards: empty,
or a copy of a template database built once per session (`PgServer.template`: migrated,
or holding a fixture's data) made by ``CREATE DATABASE … TEMPLATE``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL, make_url

URL_ENV = "CREDIT_REPAIR_TEST_PG_URL"
REQUIRE_ENV = "CREDIT_REPAIR_REQUIRE_PG"
PG_ROOT = Path("/usr/lib/postgresql")
PREFERRED_VERSION = "15"
SUPERUSER = "postgres"
NOT_FOUND = f"PostgreSQL server binaries not found under {PG_ROOT}; set {URL_ENV}"
Connection = psycopg.Connection[tuple[object, ...]]


class PgUnavailable(RuntimeError):
    """No PostgreSQL to test against (no binaries and no URL)."""


def pg_required() -> bool:
    """CI must never skip the PostgreSQL half."""
    ci = os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}
    return ci or os.environ.get(REQUIRE_ENV, "").strip() == "1"


def find_bindir() -> Path | None:
    """The bin folder of PostgreSQL 15, else of the newest version installed."""
    candidates = [
        p.parent for p in PG_ROOT.glob("*/bin/postgres") if (p.parent / "initdb").exists()
    ]
    if not candidates:
        return None

    def rank(bindir: Path) -> tuple[int, int]:
        version = bindir.parent.name
        major = int(version) if version.isdigit() else 0
        return (version == PREFERRED_VERSION, major)

    return max(candidates, key=rank)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PgServer:
    """A server we may create and drop databases on."""

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        # the maintenance database to run CREATE/DROP DATABASE from
        self.admin_url: URL = parsed.set(
            drivername="postgresql", database=parsed.database or "postgres"
        )
        self._names = itertools.count(1)
        self._prefix = "t_" if isinstance(self, PgCluster) else f"t_{os.getpid()}_"
        self._templates: dict[str, str] = {}

    def url_for(self, database: str) -> str:
        """SQLAlchemy URL (psycopg 3) of one database on this server."""
        return self.admin_url.set(
            drivername="postgresql+psycopg", database=database
        ).render_as_string(hide_password=False)

    def _connect(self) -> Connection:
        conninfo = self.admin_url.render_as_string(hide_password=False)
        return psycopg.connect(conninfo, autocommit=True, connect_timeout=10)

    def create_database(self, template: str | None = None) -> tuple[str, str]:
        """A fresh database, empty or a copy of `template`: (name, SQLAlchemy URL)."""
        name = f"{self._prefix}{next(self._names)}"
        create = (
            sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'").format(
                sql.Identifier(name)
            )
            if template is None
            else sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )
        with self._connect() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
            conn.execute(create)
        return name, self.url_for(name)

    def template(self, key: str, build: Callable[[str], None]) -> str:
        """The name of a database built once by `build(url)` and kept for copying.

        `build` gets an empty database and must close its connections (dispose its
        engines): PostgreSQL copies a database only while nobody is connected to it.
        """
        name = self._templates.get(key)
        if name is None:
            name, url = self.create_database()
            try:
                build(url)
                self._disconnect(name)
            except BaseException:
                self.drop_database(name)
                raise
            self._templates[key] = name
        return name

    def _disconnect(self, name: str, conn: Connection | None = None) -> None:
        """Kick out the connections to database `name`."""
        with contextlib.ExitStack() as stack:
            if conn is None:
                conn = stack.enter_context(self._connect())
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )

    def drop_database(self, name: str) -> None:
        """Drop, after kicking out leftover connections; errors are ignored."""
        with contextlib.suppress(psycopg.Error), self._connect() as conn:
            self._disconnect(name, conn)
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))

    def stop(self) -> None:
        """Drop the templates; a server we did not start keeps running."""
        for name in self._templates.values():
            self.drop_database(name)
        self._templates.clear()


class PgCluster(PgServer):
    """A private cluster in a temporary folder, removed on `stop`."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.as_root = os.geteuid() == 0
        self.tmp = Path(tempfile.mkdtemp(prefix="crpg-", dir=self._tmp_parent()))
        self.data = self.tmp / "data"
        self.sockets = self.tmp / "sockets"
        self.log = self.tmp / "postgres.log"
        self.port = 0
        self.started = False
        try:
            self.sockets.mkdir()
            if self.as_root:
                try:
                    user = pwd.getpwnam(SUPERUSER)
                except KeyError:
                    raise PgUnavailable(
                        f"running as root needs a {SUPERUSER!r} user to run the PostgreSQL "
                        f"server as (or set {URL_ENV})"
                    ) from None
                for path in (self.tmp, self.sockets):
                    os.chown(path, user.pw_uid, user.pw_gid)
            self._initdb()
            self._start()
        except BaseException:
            self.stop()
            raise
        super().__init__(f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/postgres")

    @staticmethod
    def _tmp_parent() -> str:
        # The socket path must stay short (~107 bytes) and, as root, the postgres
        # user must be able to reach the folder: fall back to /tmp.
        parent = tempfile.gettempdir()
        if len(parent) > 40 or (os.geteuid() == 0 and not _world_traversable(Path(parent))):
            parent = "/tmp"
        return parent

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.as_root:
            runuser = shutil.which("runuser") or "/usr/sbin/runuser"
            cmd = [runuser, "-u", SUPERUSER, "--", *cmd]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        result = subprocess.run(
            cmd,
            cwd=self.tmp,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
                f"{self._log_tail()}"
            )
        return result

    def _log_tail(self) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n--- postgres.log ---\n" + "\n".join(text.splitlines()[-30:])

    def _initdb(self) -> None:
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        # pg_hba from --auth=trust: trust for local sockets and 127.0.0.1/::1.
        # Appending keeps the file's owner (postgres when we run as root).
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# credit-repair test cluster\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.sockets}'\n"
                "fsync = off\n"
                "synchronous_commit = off\n"
                "full_page_writes = off\n"
                "max_connections = 100\n"
                "log_min_messages = warning\n"
            )

    def _start(self) -> None:
        # A free port can be taken between probing and binding: retry a few times.
        error: RuntimeError | None = None
        for _ in range(3):
            self.port = _free_port()
            try:
                self._run(
                    "pg_ctl",
                    "start",
                    "-w",
                    "-t",
                    "60",
                    "-D",
                    str(self.data),
                    "-l",
                    str(self.log),
                    "-o",
                    f"-p {self.port}",
                    timeout=90,
                )
            except RuntimeError as exc:
                error = exc
                continue
            self.started = True
            return
        assert error is not None
        raise error

    def stop(self) -> None:
        try:
            if self.started:
                self.started = False
                with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                    self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "immediate", "-w")
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)


def _world_traversable(path: Path) -> bool:
    for p in (path, *path.parents):
        try:
            if not p.stat().st_mode & 0o001:
                return False
        except OSError:
            return False
    return True


def server_from_environment() -> PgServer:
    """The server to test against; `PgUnavailable` if there is none."""
    url = os.environ.get(URL_ENV, "").strip()
    if url:
        return PgServer(url)
    bindir = find_bindir()
    if bindir is None:
        raise PgUnavailable(NOT_FOUND)
    return PgCluster(bindir)
