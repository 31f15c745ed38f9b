"""The `credit-repair` command line (also `python -m pipeline`).

Global options come before the command: ``credit-repair --config DIR --now 2026-12-21
sync --json``. Exit status: 0 success, 1 the work failed (or a guard refused it),
2 bad usage, config or input. Errors go to stderr as one sentence naming the
file/row/key at fault; ``--json`` output goes to stdout and nothing else does.

Starting is cheap: building the parser imports no database, config or template module
(each command module imports what it needs inside its handler), so ``--help`` answers in
a fraction of a second (bench/bench_help.py).
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from pipeline import __version__
from pipeline.commands import data, ledger, monthly, notices, ops, reports, web
from pipeline.errors import CreditRepairError

if TYPE_CHECKING:
    from pipeline.app import App

Handler = Callable[["App", argparse.Namespace], int]
REGISTRARS = (
    data.register,
    ledger.register,
    notices.register,
    monthly.register,
    reports.register,
    ops.register,
    web.register,
)
HELP = "显示本帮助并退出 / show this help message and exit"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="credit-repair",
        description="市场主体信用修复专项行动：同步、计算、告知、督办与报告 / "
        "market-entity credit repair (信用修复) campaign pipeline.",
        epilog="各命令的帮助：credit-repair 命令 --help / each command's help: "
        "credit-repair COMMAND --help",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}", help="显示版本 / version"
    )
    parser.add_argument(
        "--config",
        metavar="DIR",
        help="配置目录（默认 $CREDIT_REPAIR_CONFIG，否则 ./config） / "
        "config folder (default $CREDIT_REPAIR_CONFIG, else ./config)",
    )
    parser.add_argument(
        "--now",
        metavar="VALUE",
        help="本次运行的业务时间：配置时区的 ISO 日期或日期时间；晚于真实时间时只模拟、不写入 / "
        "business clock for this run: ISO date or date-time in the configured zone; later than "
        "the real clock: a what-if that writes nothing",
    )
    parser.add_argument(
        "--commit",
        action="store_true",
        help="--now 晚于真实时间时仍然写入（测试数据库）/ "
        "with a --now later than the real clock: write for real (test databases)",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help="意外错误时显示完整回溯（可能含个人信息）/ "
        "on an unexpected error, print its traceback (it may hold personal data)",
    )
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, title="命令 / commands"
    )
    for register in REGISTRARS:
        register(commands)
    for _, each in parsers(parser):
        for action in each._actions:  # argparse's own -h: its help in our two languages
            if isinstance(action, argparse._HelpAction):
                action.help = HELP
    return parser


def parsers(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every parser under `parser` with its command path ("" for the top, "ledger show").

    argparse has no public way to list a parser's subcommands: this is the one place that
    reads its private `_actions` and `_SubParsersAction.choices` (also used by the test that
    every command and option has a help text).
    """
    stack: list[tuple[str, argparse.ArgumentParser]] = [("", parser)]
    while stack:
        path, current = stack.pop(0)
        yield path, current
        for action in current._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    stack.append((f"{path} {name}".strip(), sub))


def arguments(parser: argparse.ArgumentParser) -> Iterator[tuple[str, str, str | None]]:
    """(command path, argument, its help) for every argument and subcommand under `parser`:
    what the help of each command lists (private `_actions` read here, as in `parsers`)."""
    for path, current in parsers(parser):
        for action in current._actions:
            if isinstance(action, argparse._SubParsersAction):
                for choice in action._choices_actions:
                    yield path, f"{choice.dest} (command)", choice.help
            else:
                yield path, "/".join(action.option_strings) or action.dest, action.help


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    from pipeline import logs
    from pipeline.app import DRY_RUN, FUTURE, App

    app: App | None = None
    try:
        app = App.load(args.config, args.now, args.commit)
        settings = app.config.settings
        logs.configure(settings.logging.level, settings.logging.format, settings.tz)
        if app.what_if == FUTURE:
            print(what_if_notice(args.now), file=sys.stderr)
        code = handler(app, args)
        if app.what_if == DRY_RUN:
            print(
                "模拟运行（--dry-run）：以上结果未写入数据库，也未发送 / "
                "dry run: nothing above was written or sent",
                file=sys.stderr,
            )
        return code
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


def what_if_notice(now: str) -> str:
    return (
        f"模拟运行：--now {now} 晚于当前真实时间，只计算和显示，不写入数据库、不发送任何通知"
        "（确需写入请加 --commit）/ "
        f"what-if: --now {now} is later than the real clock: computed and printed, nothing is "
        "written or sent (--commit writes)"
    )


def _crashed(exc: Exception, debug: bool, logged: bool) -> int:
    """Say what failed in one masked line (the class and the driver's or the error's first
    line: never SQL parameters); the traceback, which may hold rows, only with --debug."""
    from pipeline import logs

    summary = crash_summary(exc)
    if debug:
        traceback.print_exc()
    if logged:
        logs.get_logger("cli").error("cli.crash", error=type(exc).__name__, message=summary)
    hint = "" if debug else " (run with --debug for the traceback)"
    print(f"credit-repair: internal error: {summary}{hint}", file=sys.stderr)
    return 1


def crash_summary(exc: BaseException) -> str:
    from sqlalchemy.exc import DBAPIError

    from pipeline import logs

    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    first = (str(cause).strip().splitlines() or [""])[0][:300]
    return f"{type(cause).__name__}: {logs.mask_text(first)}"
