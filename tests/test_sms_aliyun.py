"""The Aliyun channel against a real loopback server that checks the ACS3 signature."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import pytest
import requests

from pipeline.channels.base import ChannelError, Message, OutcomeUnknown, Receipt
from pipeline.channels.sms.aliyun import AliyunSms, acs3_authorization
from pipeline.config import SmsSettings
from tests.sms_server import (
    KEY,
    MIDNIGHT,
    NOW,
    PHONE,
    Reply,
    Seen,
    SmsServer,
    json_reply,
    refused_url,
)

KEY_ID = "LTAI5tTestKeyId"
KEY_SECRET = "aliyun-test-secret"


def channel(url: str, session: requests.Session, **overrides: Any) -> AliyunSms:
    values: dict[str, Any] = {
        "provider": "aliyun", "url": url, "access_key_id": KEY_ID,
        "access_key_secret": KEY_SECRET, "sign_name": "宝山区营商环境局", "timeout": 2.0,
        "templates": {"notice": {"id": "SMS_465", "params": ["company", "deadline"]}},
    } | overrides  # fmt: skip
    return AliyunSms(SmsSettings(**values), session, lambda: NOW, nonce=lambda: "nonce-1")


def message(**overrides: Any) -> Message:
    values: dict[str, Any] = {
        "key": KEY, "channel": "sms", "recipient": PHONE, "sms_template": "notice",
        "sms_params": {"company": "上海某某科技有限公司", "deadline": "2026年3月9日"},
    } | overrides  # fmt: skip
    return Message(**values)


def signed(reply: Reply) -> Any:
    """Aliyun's side: answer `reply` only if the request's signature checks out."""

    def respond(seen: Seen) -> Reply:
        auth = seen.headers.get("authorization", "")
        match = re.search(r"SignedHeaders=([^,]+)", auth)
        names = match.group(1).split(";") if match else []
        payload = hashlib.sha256(seen.body).hexdigest()
        expected = acs3_authorization(seen.method, seen.path, seen.query,
                                      {n: seen.headers.get(n, "") for n in names}, payload,
                                      KEY_ID, KEY_SECRET)  # fmt: skip
        if auth != expected or seen.headers.get("x-acs-content-sha256") != payload:
            return json_reply({"Code": "SignatureDoesNotMatch", "Message": "no"}, status=400)
        return reply

    return respond


def ok(biz_id: str = "900619746936498440^0") -> Reply:
    return json_reply({"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": "R-1"})


def refusal(code: str, text: str = "", status: int = 200) -> Reply:
    return json_reply({"Code": code, "Message": text, "RequestId": "R-2"}, status=status)


def test_it_sends_a_signed_sendsms_and_returns_the_bizid(server: SmsServer,
                                                         session: requests.Session) -> None:  # fmt: skip
    server.reply(signed(ok()))
    receipt = channel(server.url, session).send(message())
    assert receipt.provider_id == "900619746936498440^0"
    seen = server.seen[0]
    assert seen.method == "POST" and seen.body == b""
    assert seen.query == {"PhoneNumbers": PHONE, "SignName": "宝山区营商环境局",
                          "TemplateCode": "SMS_465", "OutId": KEY,
                          "TemplateParam": json.dumps(message().sms_params, ensure_ascii=False)}  # fmt: skip
    assert seen.headers["x-acs-action"] == "SendSms"
    assert seen.headers["x-acs-version"] == "2017-05-25"
    assert seen.headers["x-acs-date"] == "2026-03-02T01:30:05Z"
    assert seen.headers["authorization"].startswith(
        f"ACS3-HMAC-SHA256 Credential={KEY_ID},SignedHeaders=host;x-acs-action;"
        "x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature="
    )


@pytest.mark.parametrize(("reply", "wait"), [
    (refusal("isv.BUSINESS_LIMIT_CONTROL", "触发分钟级流控Permits:1"), 60.0),
    (refusal("isv.BUSINESS_LIMIT_CONTROL", "触发天级流控Permits:10"), MIDNIGHT),
    (refusal("isv.DAY_LIMIT_CONTROL", "触发日发送限额"), MIDNIGHT),
    (refusal("Throttling.User", "Request was denied due to user flow control.", 400), None),
    (refusal("isp.SYSTEM_ERROR"), None),
    (Reply(500, b"upstream failed"), None),
    (refusal("ServiceUnavailable", "busy", 503), None),
])  # fmt: skip
def test_rate_limits_and_server_errors_are_retried_later(
    server: SmsServer, session: requests.Session, reply: Reply, wait: float | None
) -> None:
    server.reply(reply)
    with pytest.raises(ChannelError) as caught:
        channel(server.url, session).send(message())
    assert not caught.value.permanent and not caught.value.channel_down
    assert caught.value.retry_after == wait


@pytest.mark.parametrize("code", [
    "isv.MOBILE_NUMBER_ILLEGAL", "isv.BLACK_KEY_CONTROL_LIMIT", "isv.SMS_TEMPLATE_ILLEGAL",
    "isv.TEMPLATE_MISSING_PARAMETERS", "isv.INVALID_PARAMETERS", "isv.PARAM_LENGTH_LIMIT",
])  # fmt: skip
def test_bad_number_blacklist_and_template_errors_are_permanent(
    server: SmsServer, session: requests.Session, code: str
) -> None:
    server.reply(refusal(code, f"号码 {PHONE} 不可用"))
    with pytest.raises(ChannelError) as caught:
        channel(server.url, session).send(message())
    assert caught.value.permanent and not caught.value.channel_down
    assert caught.value.code == code
    assert PHONE not in str(caught.value) and "138****5678" in str(caught.value)


@pytest.mark.parametrize(("code", "status"), [
    ("InvalidAccessKeyId.NotFound", 404), ("SignatureDoesNotMatch", 400),
    ("isv.SMS_SIGNATURE_ILLEGAL", 200), ("isv.AMOUNT_NOT_ENOUGH", 200),
])  # fmt: skip
def test_auth_account_and_signature_failures_disable_the_channel(
    server: SmsServer, session: requests.Session, code: str, status: int
) -> None:
    server.reply(refusal(code, "denied", status))
    with pytest.raises(ChannelError) as caught:
        channel(server.url, session).send(message())
    assert caught.value.permanent and caught.value.channel_down


def test_a_wrong_secret_fails_the_servers_signature_check(server: SmsServer,
                                                          session: requests.Session) -> None:  # fmt: skip
    server.reply(signed(ok()))
    with pytest.raises(ChannelError) as caught:
        channel(server.url, session, access_key_secret="wrong").send(message())
    assert caught.value.code == "SignatureDoesNotMatch" and caught.value.channel_down
    assert "wrong" not in str(caught.value)


def test_a_gateway_timeout_504_is_an_unknown_outcome(server: SmsServer,
                                                     session: requests.Session) -> None:  # fmt: skip
    server.reply(Reply(504))
    with pytest.raises(OutcomeUnknown):
        channel(server.url, session).send(message())


def test_no_answer_within_the_timeout_is_an_unknown_outcome(server: SmsServer,
                                                            session: requests.Session) -> None:  # fmt: skip
    server.reply(Reply(200, delay=1.0))
    with pytest.raises(OutcomeUnknown) as caught:
        channel(server.url, session, timeout=0.2).send(message())
    assert len(server.seen) == 1
    assert PHONE not in str(caught.value)  # the URL holds it; the message must not
    assert caught.value.__cause__ is None


def test_connection_refused_is_retryable(session: requests.Session) -> None:
    with pytest.raises(ChannelError) as caught:
        channel(refused_url(), session).send(message())
    assert not caught.value.permanent and not isinstance(caught.value, OutcomeUnknown)
    assert PHONE not in str(caught.value)


@pytest.mark.parametrize(("params", "match"), [
    ({"company": "上海" * 18, "deadline": "3月9日"}, "'company' is 36 characters; Aliyun allows at most 35"),
    ({"company": "某某", "deadline": "见 https://x.cn/a"}, "'deadline' contains a URL"),
])  # fmt: skip
def test_parameters_beyond_the_limits_are_refused_before_sending(
    server: SmsServer, session: requests.Session, params: dict[str, str], match: str
) -> None:
    with pytest.raises(ChannelError, match=match) as caught:
        channel(server.url, session).send(message(sms_params=params))
    assert caught.value.permanent
    assert server.seen == []


def details(*entries: dict[str, Any]) -> Reply:
    return json_reply({"Code": "OK", "TotalCount": len(entries), "RequestId": "R-3",
                       "SmsSendDetailDTOs": {"SmsSendDetailDTO": list(entries)}})  # fmt: skip


def detail(status: int, out_id: str = KEY, err: str = "DELIVERED") -> dict[str, Any]:
    return {"SendStatus": status, "ErrCode": err, "OutId": out_id, "PhoneNum": PHONE,
            "ReceiveDate": "2026-03-02 09:30:09", "TemplateCode": "SMS_465"}  # fmt: skip


def test_check_queries_send_details_and_reports_delivery(server: SmsServer,
                                                         session: requests.Session) -> None:  # fmt: skip
    server.reply(signed(details(detail(3))))
    receipt = channel(server.url, session).check(message(), "900619746936498440^0")
    assert isinstance(receipt, Receipt) and receipt.provider_id == "900619746936498440^0"
    seen = server.seen[0]
    assert seen.headers["x-acs-action"] == "QuerySendDetails"
    assert seen.query == {"PhoneNumber": PHONE, "BizId": "900619746936498440^0",
                          "SendDate": "20260302", "PageSize": "50", "CurrentPage": "1"}  # fmt: skip


def test_check_raises_a_permanent_error_for_a_failed_delivery(server: SmsServer,
                                                              session: requests.Session) -> None:  # fmt: skip
    server.reply(details(detail(2, err="MK:0001")))
    with pytest.raises(ChannelError) as caught:
        channel(server.url, session).check(message(), "biz")
    assert caught.value.permanent and caught.value.code == "MK:0001"


def test_check_returns_none_while_waiting_for_the_carrier(server: SmsServer,
                                                          session: requests.Session) -> None:  # fmt: skip
    server.reply(details(detail(1, err="")))
    assert channel(server.url, session).check(message(), "biz") is None


def test_check_without_a_bizid_finds_the_message_by_outid_and_looks_at_yesterday(
    server: SmsServer, session: requests.Session
) -> None:
    server.reply(details(detail(3, out_id="someone-else")), details(detail(3)))
    assert channel(server.url, session).check(message(), None) is not None
    assert [s.query["SendDate"] for s in server.seen] == ["20260302", "20260301"]
    assert "BizId" not in server.seen[0].query


def test_check_returns_none_when_the_provider_has_no_record(server: SmsServer,
                                                            session: requests.Session) -> None:  # fmt: skip
    server.reply(details(), details())
    assert channel(server.url, session).check(message(), "biz") is None


@pytest.mark.parametrize(("reply", "down"), [
    (refusal("Throttling.User", "flow control", 400), False),
    (refusal("InvalidAccessKeyId.NotFound", "no such key", 404), True),
    (Reply(503), False),
])  # fmt: skip
def test_a_failed_status_query_leaves_the_outcome_unknown(
    server: SmsServer, session: requests.Session, reply: Reply, down: bool
) -> None:
    server.reply(reply)
    with pytest.raises(OutcomeUnknown) as caught:
        channel(server.url, session).check(message(), "biz")
    assert caught.value.channel_down is down


def test_a_200_without_a_code_is_an_unknown_outcome(server: SmsServer,
                                                    session: requests.Session) -> None:  # fmt: skip
    server.reply(Reply(200, b"<html>proxy page</html>"))
    with pytest.raises(OutcomeUnknown):
        channel(server.url, session).send(message())
