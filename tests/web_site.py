"""The answer page's test site: notices planned with links, the Flask app served on
loopback over the test database, and a client that reads codes and posts answers
(shared by tests/test_web.py and tests/test_web_browser.py)."""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
from sqlalchemy import select
from werkzeug.serving import make_server

from pipeline.app import App
from pipeline.clock import FixedClock
from pipeline.config import load_config
from pipeline.db.engine import make_engine
from pipeline.db.models import OutboxMessage, table_of
from pipeline.web.site import create_app
from tests.helpers import CONTACT_HEADERS, CliRunner, penalty, uscc, write_rows

SH = ZoneInfo("Asia/Shanghai")
BASE = "https://xyxf.example.gov.cn"
PLANNED = "2026-11-27T10:00"
CODE = re.compile(re.escape(BASE) + r"/r/([1-9A-HJ-NP-Za-km-z]{11})")


@dataclass
class Site:
    url: str
    cli: CliRunner
    db_url: str
    app: App

    def code(self, decision_no: str = "宝税罚〔2026〕1号") -> str:
        payload = self.payload("repair_notice", decision_no)
        found = CODE.search(payload["text"])
        assert found, payload["text"]
        return found.group(1)

    def payload(self, kind: str, decision_no: str) -> dict[str, Any]:
        c = table_of(OutboxMessage).c
        engine = make_engine(self.db_url)
        try:
            with engine.connect() as conn:
                rows = conn.execute(select(c.payload, c.key).where(c.kind == kind)).all()
        finally:
            engine.dispose()
        return next(p for p, key in rows if decision_no in p["text"])

    def get(self, code: str, **kw: Any) -> requests.Response:
        return requests.get(f"{self.url}/r/{code}", timeout=10, allow_redirects=False, **kw)

    def token(self, code: str) -> str:
        found = re.search(r'name="token" value="([^"]+)"', self.get(code).text)
        assert found
        return found.group(1)

    def answer(self, code: str, answer: str, **extra: str) -> requests.Response:
        data = {"token": self.token(code), "answer": answer, **extra}
        return requests.post(f"{self.url}/r/{code}", data=data, timeout=10, allow_redirects=False)

    def entry(self, decision_no: str = "宝税罚〔2026〕1号") -> dict[str, Any]:
        lines = self.cli("ledger", "show", "--all", "--json", now=PLANNED).json_lines()
        return next(e for e in lines if e["decision_no"] == decision_no)


def web_env(monkeypatch: pytest.MonkeyPatch, **extra: str) -> None:
    monkeypatch.setenv("CREDIT_REPAIR_WEB__PUBLIC_BASE_URL", BASE)
    monkeypatch.setenv("CREDIT_REPAIR_WEB__SECRET", "test-secret")
    for key, value in extra.items():
        monkeypatch.setenv(f"CREDIT_REPAIR_WEB__{key.upper()}", value)


def load_notices(cli: CliRunner, tmp_path: Path, rows: list[dict[str, str]]) -> None:
    assert cli("sync", "--file", str(write_rows(tmp_path / "p.csv", rows)), now=PLANNED).code == 0
    contacts = [
        {
            "统一社会信用代码": uscc(n),
            "联系人": "王经理",
            "联系电话": "",
            "电子邮箱": f"c{n}@example.com",
        }
        for n in range(1, len(rows) + 1)
    ]
    path = write_rows(tmp_path / "c.csv", contacts, headers=CONTACT_HEADERS)
    assert cli("contacts", "import", str(path), now=PLANNED).code == 0
    assert cli("eligibility", now=PLANNED).code == 0
    assert cli("notices", "plan", now=PLANNED).code == 0


@contextmanager
def serve(app: App) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, create_app(app), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)


def make_app(config_dir: Path, db_url: str, at: str, **web: str) -> App:
    env = {
        "CREDIT_REPAIR_DATABASE_URL": db_url,
        "CREDIT_REPAIR_WEB__PUBLIC_BASE_URL": BASE,
        "CREDIT_REPAIR_WEB__SECRET": "test-secret",
        **{f"CREDIT_REPAIR_WEB__{k.upper()}": v for k, v in web.items()},
    }
    config = load_config(config_dir, env=env)
    return App(config, FixedClock(dt.datetime.fromisoformat(at).replace(tzinfo=SH)))


@contextmanager
def site_for(
    cli: CliRunner, db_url: str, config_dir: Path, at: str = "2026-11-28T10:00", **web: str
) -> Iterator[Site]:
    app = make_app(config_dir, db_url, at, **web)
    try:
        with serve(app) as url:
            yield Site(url, cli, db_url, app)
    finally:
        app.close()


@pytest.fixture
def loaded(cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """Two repairable penalties (decided 2026-05-06), contacts, their notices planned."""
    web_env(monkeypatch)
    load_notices(
        cli, tmp_path, [penalty(1, CF_JDRQ="2026-05-06"), penalty(2, CF_JDRQ="2026-05-06")]
    )
    return cli
