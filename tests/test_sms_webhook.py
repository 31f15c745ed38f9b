"""The webhook SMS channel against a real loopback gateway that checks the signature."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest
import requests

from pipeline.channels.base import ChannelError, Message, OutcomeUnknown
from pipeline.channels.sms.webhook import WebhookSms
from pipeline.config import SmsSettings
from tests.sms_server import (
    NOW,
    PHONE,
    Reply,
    Seen,
    SmsServer,
    json_reply,
    refused_url,
    unanswered_url,
)

SECRET = "webhook-s3cret"


def settings(url: str, **overrides: Any) -> SmsSettings:
    values: dict[str, Any] = {
        "provider": "webhook", "url": url, "secret": SECRET, "timeout": 2.0,
        "templates": {"notice": {"id": "N1", "params": ["company", "deadline"]}},
    } | overrides  # fmt: skip
    return SmsSettings(**values)


def message(**overrides: Any) -> Message:
    values: dict[str, Any] = {
        "key": "rec-1/notice/1/sms/x", "channel": "sms", "recipient": PHONE,
        "text": "请于3月9日前办理信用修复", "sms_template": "notice",
        "sms_params": {"company": "某某科技", "deadline": "3月9日"},
    } | overrides  # fmt: skip
    return Message(**values)


def channel(server_url: str, session: requests.Session, **overrides: Any) -> WebhookSms:
    return WebhookSms(settings(server_url, **overrides), session, lambda: NOW)


def verified(reply: Reply) -> Any:
    """A gateway that answers `reply` only when X-Signature matches the body."""

    def respond(seen: Seen) -> Reply:
        expected = hmac.new(SECRET.encode(), seen.body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, seen.headers.get("x-signature", "")):
            return json_reply({"error": "bad signature"}, status=401)
        return reply

    return respond


def test_it_posts_the_signed_json_and_returns_the_gateway_id(server: SmsServer,
                                                             session: requests.Session) -> None:  # fmt: skip
    server.reply(verified(json_reply({"id": "gw-42"})))
    receipt = channel(server.url, session).send(message())
    assert receipt.provider_id == "gw-42"
    body = server.seen[0].json()
    assert body == {"id": "rec-1/notice/1/sms/x", "phone": PHONE, "template": "notice",
                    "params": {"company": "某某科技", "deadline": "3月9日"},
                    "text": "请于3月9日前办理信用修复"}  # fmt: skip


def test_it_reads_message_id_and_accepts_an_empty_2xx(server: SmsServer,
                                                      session: requests.Session) -> None:  # fmt: skip
    server.reply(verified(json_reply({"message_id": 7}, status=201)), verified(Reply(204)))
    assert channel(server.url, session).send(message()).provider_id == "7"
    assert channel(server.url, session).send(message()).provider_id is None


def test_a_wrong_secret_is_refused_by_the_gateway_and_disables_the_channel(
    server: SmsServer, session: requests.Session
) -> None:
    server.reply(verified(json_reply({"id": "never"})))
    with pytest.raises(ChannelError) as caught:
        channel(server.url, session, secret="wrong").send(message())
    assert caught.value.permanent and caught.value.channel_down
    assert caught.value.code == "http-401"


def test_429_is_retried_after_the_retry_after_header(server: SmsServer,
                                                     session: requests.Session) -> None:  # fmt: skip
    server.reply(Reply(429, headers={"Retry-After": "30"}))
    with pytest.raises(ChannelError) as caught:
        channel(server.url, session).send(message())
    assert not caught.value.permanent and caught.value.retry_after == 30.0


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_retryable(server: SmsServer, session: requests.Session, status: int) -> None:
    server.reply(Reply(status))
    with pytest.raises(ChannelError) as caught:
        channel(server.url, session).send(message())
    assert not caught.value.permanent and not isinstance(caught.value, OutcomeUnknown)


def test_a_gateway_timeout_504_is_an_unknown_outcome(server: SmsServer,
                                                     session: requests.Session) -> None:  # fmt: skip
    server.reply(Reply(504))
    with pytest.raises(OutcomeUnknown):
        channel(server.url, session).send(message())


def test_other_4xx_is_permanent(server: SmsServer, session: requests.Session) -> None:
    server.reply(Reply(422))
    with pytest.raises(ChannelError) as caught:
        channel(server.url, session).send(message())
    assert caught.value.permanent and not caught.value.channel_down
    assert not isinstance(caught.value, OutcomeUnknown)


def test_no_answer_within_the_timeout_is_an_unknown_outcome(server: SmsServer,
                                                            session: requests.Session) -> None:  # fmt: skip
    server.reply(Reply(200, delay=1.0))
    with pytest.raises(OutcomeUnknown) as caught:
        channel(server.url, session, timeout=0.2).send(message())
    assert len(server.seen) == 1  # it did go out
    assert PHONE not in str(caught.value)


def test_a_connection_closed_after_sending_is_an_unknown_outcome(
    server: SmsServer, session: requests.Session
) -> None:
    server.reply(Reply(reset=True))
    with pytest.raises(OutcomeUnknown):
        channel(server.url, session).send(message())


def test_a_connect_timeout_is_retryable_because_nothing_was_sent(
    session: requests.Session,
) -> None:
    with unanswered_url() as url, pytest.raises(ChannelError) as caught:
        channel(url, session, timeout=0.2).send(message())
    assert not caught.value.permanent and not isinstance(caught.value, OutcomeUnknown)
    assert caught.value.code == "unreachable"


def test_connection_refused_is_retryable(session: requests.Session) -> None:
    with pytest.raises(ChannelError) as caught:
        channel(refused_url(), session).send(message())
    assert not caught.value.permanent and caught.value.code == "unreachable"


def test_a_missing_parameter_is_refused_before_sending(server: SmsServer,
                                                       session: requests.Session) -> None:  # fmt: skip
    with pytest.raises(ChannelError, match="'deadline' has no value") as caught:
        channel(server.url, session).send(message(sms_params={"company": "某某科技"}))
    assert caught.value.permanent
    assert server.seen == []
