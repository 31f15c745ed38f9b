"""The answer page as a Flask application: ``GET /r/<code>``, ``POST /r/<code>``, ``/healthz``.

Chinese, mobile first, no JavaScript and no cookies. One code shows one record's public
facts; nothing lists or searches. Flask (with gunicorn in production, `pipeline.web.serve`)
because the rest of the program is synchronous SQLAlchemy: a threaded WSGI worker fits it
without an event loop, and Jinja2 is already the notices' template engine.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from flask import Flask, Response, abort, redirect, render_template, request
from sqlalchemy import text
from werkzeug.exceptions import HTTPException

from pipeline.app import App
from pipeline.logs import get_logger
from pipeline.notices.context import penalty_text, span
from pipeline.notices.templating import cn_date, template_dirs
from pipeline.web.answers import (
    ANSWERS,
    Found,
    Visitor,
    clean_phone,
    find,
    give_answer,
    record_view,
)
from pipeline.web.security import HEADERS, RateLimiter, csrf_ok, csrf_token, ip_hash

log = get_logger("web")
MAX_FORM_BYTES = 4096
SEVERITY = {"general": "一般失信", "serious": "严重失信", "special_serious": "特定严重失信"}


def create_app(app: App, secret: str | None = None) -> Flask:
    """The WSGI application over `app`'s database and clock."""
    web = app.config.settings.web
    secret = secret or web.secret or secrets.token_hex(32)
    folder = next(d / "web" for d in template_dirs(app.config) if (d / "web").is_dir())
    flask = Flask(__name__, template_folder=str(folder), static_folder=None)
    flask.config.update(MAX_CONTENT_LENGTH=MAX_FORM_BYTES, SECRET=secret)
    flask.jinja_env.filters["cn_date"] = cn_date
    by_ip, by_code = (
        RateLimiter(web.rate_per_ip_per_minute),
        RateLimiter(web.rate_per_code_per_minute),
    )

    def client() -> str:
        forwarded = request.headers.get("X-Forwarded-For", "") if web.trust_forwarded_for else ""
        return forwarded.split(",")[0].strip() or (request.remote_addr or "")

    def limited(code: str) -> None:
        if not by_ip.allow(client()) or not by_code.allow(code):
            log.warning("web.rate_limited", path=request.path[:40])
            abort(429)

    @flask.after_request
    def headers(response: Response) -> Response:
        response.headers.update(HEADERS)
        return response

    @flask.errorhandler(HTTPException)
    def error(exc: HTTPException) -> tuple[str, int]:
        return render_template("error.html.j2", status=exc.code), exc.code or 500

    @flask.get("/healthz")
    def healthz() -> Response:
        with app.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return Response("ok\n", mimetype="text/plain")

    @flask.get("/r/<code>")
    def page(code: str) -> str:
        limited(code)
        now = app.clock.now()
        with app.engine.begin() as conn:
            found = _found(conn, code, now)
            record_view(conn, found, now)
        done = request.args.get("done") == "1"
        return _render(app, found, code, secret, now, done=done)

    @flask.post("/r/<code>")
    def answer(code: str) -> Any:
        limited(code)
        now = app.clock.now()
        form = request.form
        with app.engine.begin() as conn:
            found = _found(conn, code, now)
            if not found.open:
                abort(410)
            if not csrf_ok(secret, code, form.get("token", "")[:80], _minute(now)):
                abort(403)
            choice = form.get("answer", "")
            if choice not in ANSWERS:
                abort(400)
            phone = clean_phone(form.get("phone", "")[:40]) if choice == "help" else None
            if choice == "help" and phone is None:
                problem = "请填写正确的手机号码或固定电话（如 13912345678 或 0469-1234567）。"
                return _render(app, found, code, secret, now, problem=problem), 400
            visitor = Visitor(ip_hash(secret, client()), request.user_agent.string[:300] or None)
            give_answer(conn, found, choice, phone, visitor, now)
        log.info("web.answer", answer=choice, link=found.link["id"])
        return redirect(f"/r/{code}?done=1", code=303)

    return flask


def _found(conn: Any, code: str, now: dt.datetime) -> Found:
    found = find(conn, code[:64], now)
    if found is None:
        abort(404)
    return found


def _minute(now: dt.datetime) -> int:
    return int(now.timestamp() // 60)


def _render(
    app: App,
    found: Found,
    code: str,
    secret: str,
    now: dt.datetime,
    *,
    done: bool = False,
    problem: str | None = None,
) -> str:
    return render_template(
        "answer.html.j2",
        **page_facts(app, found.record),
        open=found.open,
        token=csrf_token(secret, code, _minute(now)),
        answers=ANSWERS,
        current=found.record["company_answer"],
        done=done,
        problem=problem,
        action=f"/r/{code}",
    )


def page_facts(app: App, record: dict[str, Any]) -> dict[str, Any]:
    """What the page may show of a record: its own public facts and the department's contact."""
    config = app.config
    dep = config.department(record["department_code"]) or config.departments.bureau
    rule = config.notices.rule_wording.get(record["rule_set"] or "")
    return {
        "entity_name": record["entity_name"],
        "decision_no": record["decision_no"],
        "authority": record["authority"],
        "decision_date": record["decision_date"],
        "penalty": penalty_text(record),
        "kind": record["kind"],
        "status": record["status"],
        "severity": SEVERITY.get(record["severity"] or "", "")
        if rule and rule.severity_words
        else "",
        "repairable_from": record["repairable_from"],
        "removal_on": record["removal_on"],
        "max_end": record["max_end"],
        "max_span": span(record["period_start"], record["max_end"]),
        "restrictions": [r["reason"] for r in record["restrictions"] or []],
        "rule": rule.model_dump() if rule else None,
        "department": {"name": dep.name, "phone": dep.contact.phone},
        "list_name": record["list_name"],
    }
