"""One exception tree rooted in CreditRepairError; exit codes mapped in one place."""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

import pytest
import requests

from pipeline.channels.sms import aliyun, tencent
from pipeline.channels.sms.common import http_error, transport_error
from pipeline.errors import (
    EXIT_CODES,
    CalendarError,
    ChannelDown,
    ChannelError,
    ConfigError,
    CreditRepairError,
    InputError,
    LedgerError,
    OutcomeUnknown,
    RefusedError,
    SourceError,
    SourceUnavailable,
    UsageError,
)

NOW = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)
REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (UsageError("--kind goes with --file"), 2),
        (ConfigError("settings.yaml: sync.batch_size"), 2),
        (InputError("file p.csv is empty"), 2),
        (SourceError("source 'province': HTTP 404 Not Found"), 2),
        (SourceUnavailable("source 'province': failed 3 times; last: HTTP 503"), 1),
        (ChannelError("550 no such user", permanent=True), 1),
        (ChannelDown("535 authentication failed"), 1),
        (OutcomeUnknown("lost after DATA"), 1),
        (CalendarError(2031), 1),
        (LedgerError("cannot go back"), 2),
        (RefusedError("would vanish 40 %"), 1),
    ],
)
def test_every_error_has_its_exit_code_from_the_one_table(
    error: CreditRepairError, code: int
) -> None:
    assert isinstance(error, CreditRepairError)
    assert error.exit_code == code


def test_an_unlisted_subclass_takes_its_nearest_listed_base_s_code() -> None:
    class ProxyPage(SourceError):
        pass

    class Maintenance(SourceUnavailable):
        pass

    assert (ProxyPage("x").exit_code, Maintenance("x").exit_code) == (2, 1)
    assert all(issubclass(cls, CreditRepairError) for cls in EXIT_CODES)


def test_a_source_that_could_not_deliver_is_not_an_input_error() -> None:
    assert issubclass(SourceUnavailable, SourceError)
    assert not issubclass(SourceError, InputError)


def test_channel_errors_are_part_of_the_tree_and_say_whether_retrying_can_help() -> None:
    retry = ChannelError("421 try later", permanent=False, code="421", retry_after=60.0)
    assert isinstance(retry, CreditRepairError)
    assert (retry.permanent, retry.channel_down, retry.code, retry.retry_after) == (
        False,
        False,
        "421",
        60.0,
    )
    down = ChannelDown("535 authentication failed", code="535")
    assert (down.permanent, down.channel_down, down.code) == (True, True, "535")
    unknown = OutcomeUnknown("lost after DATA", "no-answer")
    assert (unknown.permanent, unknown.channel_down, unknown.code) == (True, False, "no-answer")
    refused_query = OutcomeUnknown("status query refused", "InvalidAccessKeyId", channel_down=True)
    assert refused_query.channel_down and not isinstance(refused_query, ChannelDown)


@pytest.mark.parametrize(
    ("error", "kind", "permanent"),
    [
        (aliyun.classify("InvalidAccessKeyId.NotFound", "no such key", NOW), ChannelDown, True),
        (aliyun.classify("isv.AMOUNT_NOT_ENOUGH", "no balance", NOW), ChannelDown, True),
        (aliyun.classify("isv.MOBILE_NUMBER_ILLEGAL", "bad number", NOW), ChannelError, True),
        (aliyun.classify("Throttling.User", "flow control", NOW), ChannelError, False),
        (tencent.classify("AuthFailure.SignatureFailure", "bad signature", NOW), ChannelDown, True),
        (tencent.classify("InternalError.Timeout", "timeout", NOW), OutcomeUnknown, True),
        (tencent.classify("LimitExceeded.PhoneNumberDailyLimit", "cap", NOW), ChannelError, False),
        (transport_error(requests.ReadTimeout("Read timed out."), "x"), OutcomeUnknown, True),
        (transport_error(requests.ConnectTimeout("timed out"), "x"), ChannelError, False),
    ],
)
def test_provider_failures_are_classified_when_constructed(
    error: ChannelError, kind: type[ChannelError], permanent: bool
) -> None:
    assert type(error) is kind
    assert error.permanent is permanent
    assert error.channel_down is (kind is ChannelDown)


@pytest.mark.parametrize(
    ("status", "kind", "permanent"),
    [
        (429, ChannelError, False),
        (500, ChannelError, False),
        (504, OutcomeUnknown, True),
        (400, ChannelError, True),
    ],
)
def test_http_statuses_are_classified(
    status: int, kind: type[ChannelError], permanent: bool
) -> None:
    response = requests.Response()
    response.status_code = status
    error = http_error(response, "the SMS webhook", NOW)
    assert (type(error), error.permanent, error.channel_down) == (kind, permanent, False)


def test_no_error_is_changed_after_it_was_constructed() -> None:
    """`permanent`, `channel_down` and `retry_after` are constructor facts, never set later."""
    facts = {"permanent", "channel_down", "retry_after", "exit_code"}
    mutated = []
    for path in sorted((REPO / "pipeline").rglob("*.py")):
        if path.name == "errors.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = node.targets if isinstance(node, ast.Assign) else []
            if isinstance(node, ast.AugAssign | ast.AnnAssign):
                targets = [node.target]
            mutated += [
                f"{path.relative_to(REPO)}:{node.lineno}"
                for t in targets
                if isinstance(t, ast.Attribute) and t.attr in facts
            ]
    assert mutated == []
