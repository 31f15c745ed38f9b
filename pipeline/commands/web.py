"""serve: the company answer page."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from pipeline.errors import ConfigError

if TYPE_CHECKING:
    from pipeline.app import App


def register(commands: Any) -> None:
    p = commands.add_parser(
        "serve",
        help="运行企业在线答复页面（gunicorn）/ run the company answer page",
        description="企业通过告知书上的个人链接答复（知晓、修复意愿、已申请、求助）。"
        " / Companies answer their notice through its personal link.",
    )
    p.add_argument("--host", help="监听地址 / address to bind (default web.host)")
    p.add_argument("--port", type=int, help="端口 / port (default web.port)")
    p.add_argument("--workers", type=int, help="进程数 / worker processes (default web.workers)")
    p.set_defaults(handler=cmd_serve)


def cmd_serve(app: App, args: argparse.Namespace) -> int:
    from pipeline.web.serve import serve  # flask and gunicorn only for this command
    from pipeline.web.site import create_app

    web = app.config.settings.web
    if web.public_base_url is None:
        raise ConfigError(
            "settings.yaml: web.public_base_url: not set, so no notice carries a link to "
            "this page; set it (e.g. https://xyxf.example.gov.cn) before serving"
        )
    _ = app.engine  # migrated before the workers fork
    print(f"answer page on {args.host or web.host}:{args.port or web.port}", file=sys.stderr)
    serve(
        create_app(app), args.host or web.host, args.port or web.port, args.workers or web.workers
    )
    return 0
