"""Jinja2 rendering of notices: one function, templates named by kind and part.

Templates live in ``templates/notices/<kind>/{subject,body.txt,body.html,sms.txt,docx.txt}.j2``;
a configured ``paths.templates_dir`` overrides them file by file. StrictUndefined: a
template that names a missing value fails loudly (check-config renders every template
against sample data). HTML parts are autoescaped — a company name with ``<b>`` stays text.
"""

from __future__ import annotations

import datetime as dt
import re
from functools import cached_property
from pathlib import Path
from typing import Any

import jinja2

from pipeline.config import Config

PARTS = ("subject", "body.txt", "body.html", "sms.txt")


def cn_date(value: dt.date | str | None) -> str:
    """2026-12-29 → 2026年12月29日 (the form printed on notices)."""
    if value is None or value == "":
        return "（日期未定）"
    day = dt.date.fromisoformat(value) if isinstance(value, str) else value
    return f"{day.year}年{day.month}月{day.day}日"


def quote(value: str) -> str:
    return f"“{value}”"


def paragraphs(text: str) -> list[str]:
    """Paragraphs separated by blank lines, each on one line (Chinese needs no line breaks).

    Keeps markup-safe text safe: `Markup.split` and `strip` return Markup.
    """
    safe = type(text)  # re.split returns plain str: wrap again (no second escaping)
    parts = re.split(r"\n\s*\n", text)
    return [safe("".join(line.strip() for line in p.splitlines())) for p in parts if p.strip()]


def template_dirs(config: Config) -> list[Path]:
    """Override folder first, then the bundled templates (next to config/, or in the source tree)."""
    dirs = []
    if config.settings.paths.templates_dir:
        dirs.append(Path(config.settings.paths.templates_dir))
    for candidate in (
        config.directory.parent / "templates",
        Path(__file__).resolve().parents[2] / "templates",
    ):
        if candidate.is_dir() and candidate not in dirs:
            dirs.append(candidate)
    return dirs


class Renderer:
    def __init__(self, dirs: list[Path]) -> None:
        self.dirs = dirs

    @cached_property
    def _text(self) -> jinja2.Environment:
        return self._environment(autoescape=False)

    @cached_property
    def _html(self) -> jinja2.Environment:
        return self._environment(autoescape=True)

    def _environment(self, autoescape: bool) -> jinja2.Environment:
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader([str(d) for d in self.dirs]),
            undefined=jinja2.StrictUndefined,
            autoescape=autoescape,
            keep_trailing_newline=False,
            trim_blocks=False,
        )
        env.filters["cn_date"] = cn_date
        env.filters["quote"] = quote
        env.filters["paragraphs"] = paragraphs
        return env

    def render(self, kind: str, part: str, context: dict[str, Any]) -> str:
        env = self._html if part.endswith("html") else self._text
        text = env.get_template(f"notices/{kind}/{part}.j2").render(context)
        return text.strip() if part in ("subject", "sms.txt") else text

    def has(self, kind: str, part: str) -> bool:
        return any((d / "notices" / kind / f"{part}.j2").exists() for d in self.dirs)
