"""The `credit-repair` command line (also `python -m pipeline`).

Global options come before the command: ``credit-repair --config DIR --now 2026-12-21
sync --json``. Exit status: 0 success, 1 the work failed (or a guard refused it),
2 bad usage, config or input. Errors go to stderr as one sentence naming the
file/row/key at fault; ``--json`` output goes to stdout and nothing else does.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable, Sequence

from sqlalchemy.exc import DBAPIError

from pipeline import __version__, logs
from pipeline.app import App
from pipeline.commands import data, ledger, monthly, notices, ops, reports
from pipeline.errors import CreditRepairError

Handler = Callable[[App, argparse.Namespace], int]
REGISTRARS = (
    data.register,
    ledger.register,
    notices.register,
    monthly.register,
    reports.register,
    ops.register,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="credit-repair",
        description="Market-entity credit repair (信用修复) campaign pipeline.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--config",
        metavar="DIR",
        help="config folder (default $CREDIT_REPAIR_CONFIG, else ./config)",
    )
    parser.add_argument(
        "--now",
        metavar="VALUE",
        help="business clock for this run: ISO date or date-time in the configured zone",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help="on an unexpected error, print its traceback (it may hold personal data)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in REGISTRARS:
        register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    app: App | None = None
    try:
        app = App.load(args.config, args.now)
        logs.configure(app.config.settings.logging.level, app.config.settings.logging.format)
        return handler(app, args)
    except CreditRepairError as exc:
        print(f"credit-repair: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # `credit-repair ... --json | head`: the reader left; not an error
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("credit-repair: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug or an unforeseen failure: no personal data on screen
        return _crashed(exc, args.debug, logged=app is not None)
    finally:
        if app is not None:
            app.close()


def _crashed(exc: Exception, debug: bool, logged: bool) -> int:
    """Say what failed in one masked line (the class and the driver's or the error's first
    line: never SQL parameters); the traceback, which may hold rows, only with --debug."""
    summary = crash_summary(exc)
    if debug:
        traceback.print_exc()
    if logged:
        logs.get_logger("cli").error("cli.crash", error=type(exc).__name__, message=summary)
    hint = "" if debug else " (run with --debug for the traceback)"
    print(f"credit-repair: internal error: {summary}{hint}", file=sys.stderr)
    return 1


def crash_summary(exc: BaseException) -> str:
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    first = (str(cause).strip().splitlines() or [""])[0][:300]
    return f"{type(cause).__name__}: {logs.mask_text(first)}"
