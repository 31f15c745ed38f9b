"""`credit-repair serve`: the answer page under gunicorn (threaded workers, graceful stop).

The Flask application is built once in the master process and forked into the workers,
so a CSRF secret made at start (no `web.secret` configured) is the same in every worker.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication


class Server(BaseApplication):  # type: ignore[misc]  # gunicorn ships no type hints
    def __init__(self, application: Flask, options: dict[str, Any]) -> None:
        self.application = application
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return self.application


def serve(application: Flask, host: str, port: int, workers: int) -> None:
    options = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "gthread",
        "threads": 4,
        "timeout": 30,
        "graceful_timeout": 10,
        "accesslog": None,  # the access log would hold the codes (the links) and addresses
        "errorlog": "-",
        "limit_request_line": 1024,
        "limit_request_fields": 50,
    }
    Server(application, options).run()
