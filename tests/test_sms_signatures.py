"""Our ACS3 and TC3 signers against the providers' official SDK signers.

The SDKs are test-only dependencies (`alibabacloud-openapi-util`, the signer of the
Aliyun Tea SDK; `tencentcloud-sdk-python-common`). Three layers:

- known answers, computed once with the SDKs and pinned (run even without the SDKs);
- the same inputs through both signers, for many generated parameter values;
- a request captured on the wire by the loopback server, re-signed by the SDK from what
  arrived (so a header or query the HTTP client rewrote would show up here).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.channels.base import Message
from pipeline.channels.sms.aliyun import AliyunSms, acs3_authorization
from pipeline.channels.sms.tencent import TencentSms, tc3_authorization
from pipeline.config import SmsSettings
from tests.sms_server import NOW, PHONE, SmsServer, json_reply

EMPTY = hashlib.sha256(b"").hexdigest()
ALIYUN_QUERY = {
    "PhoneNumbers": PHONE,
    "SignName": "宝山区营商环境局",
    "TemplateCode": "SMS_465",
    "TemplateParam": '{"company": "上海 某某*~+/"}',
    "OutId": "rec-1/notice 1",
}
ALIYUN_HEADERS = {
    "host": "dysmsapi.aliyuncs.com",
    "x-acs-action": "SendSms",
    "x-acs-version": "2017-05-25",
    "x-acs-date": "2026-03-02T01:30:05Z",
    "x-acs-signature-nonce": "3156853299f313e23d1673dc12e1703d",
    "x-acs-content-sha256": EMPTY,
}
TENCENT_BODY = '{"PhoneNumberSet": ["+8613812345678"], "TemplateParamSet": ["某某科技"]}'
text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)


class _TeaRequest:
    """The fields of a Tea request that the Aliyun SDK signer reads."""

    def __init__(self, query: dict[str, str], headers: dict[str, str], path: str = "/") -> None:
        self.method, self.pathname, self.query, self.headers = "POST", path, query, headers


def aliyun_sdk(
    query: dict[str, str],
    headers: dict[str, str],
    payload: str,
    key_id: str,
    secret: str,
    path: str = "/",
) -> str:
    util = pytest.importorskip("alibabacloud_openapi_util.client")
    request = _TeaRequest(query, headers, path)
    return str(util.Client.get_authorization(request, "ACS3-HMAC-SHA256", payload, key_id, secret))


def tencent_sdk(
    secret_id: str,
    secret_key: str,
    host: str,
    body: str,
    timestamp: int,
    content_type: str = "application/json; charset=utf-8",
) -> str:
    client = pytest.importorskip("tencentcloud.common.abstract_client")
    http = pytest.importorskip("tencentcloud.common.http.request")
    day = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")  # as the SDK dates it
    request = http.RequestInternal(
        host,
        "POST",
        "/",
        {"Content-Type": content_type, "Host": host, "X-TC-Timestamp": str(timestamp)},
        body,
    )
    signature = client.AbstractClient._get_tc3_signature(None, {}, request, day, "sms", secret_key)
    return (
        f"TC3-HMAC-SHA256 Credential={secret_id}/{day}/sms/tc3_request, "
        f"SignedHeaders=content-type;host, Signature={signature}"
    )


def test_acs3_matches_the_known_answer_of_the_aliyun_sdk() -> None:
    assert acs3_authorization(
        "POST", "/", ALIYUN_QUERY, ALIYUN_HEADERS, EMPTY, "LTAI5tTestKeyId", "aliyun-test-secret"
    ) == (
        "ACS3-HMAC-SHA256 Credential=LTAI5tTestKeyId,SignedHeaders=host;x-acs-action;"
        "x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,"
        "Signature=65ad923d41de43a51d701cf1999f7da88eb124d22b8b330049254af39d615d8f"
    )


def test_tc3_matches_the_known_answer_of_the_tencent_sdk() -> None:
    assert tc3_authorization(
        "AKIDTestSecretId",
        "tencent-test-key",
        "sms.tencentcloudapi.com",
        TENCENT_BODY.encode(),
        1772415005,
    ) == (
        "TC3-HMAC-SHA256 Credential=AKIDTestSecretId/2026-03-02/sms/tc3_request, "
        "SignedHeaders=content-type;host, "
        "Signature=b1827e7835376e9f59d6b4b1e2bf5d82ee5afe01d8a3760bc7242c7a0cfd2b32"
    )


# names are API identifiers (the SDK leaves names unencoded; the documentation encodes
# them too, which is the same for identifiers); values are anything
@settings(max_examples=60, deadline=None)
@given(
    values=st.dictionaries(
        st.sampled_from(["TemplateParam", "OutId", "SignName", "BizId"]), text, min_size=1
    ),
    secret=text.filter(bool),
)
def test_acs3_agrees_with_the_aliyun_sdk(values: dict[str, str], secret: str) -> None:
    ours = acs3_authorization("POST", "/", values, ALIYUN_HEADERS, EMPTY, "AK", secret)
    assert ours == aliyun_sdk(values, ALIYUN_HEADERS, EMPTY, "AK", secret)


@settings(max_examples=60, deadline=None)
@given(body=text, secret=text.filter(bool), timestamp=st.integers(0, 4_000_000_000))
def test_tc3_agrees_with_the_tencent_sdk(body: str, secret: str, timestamp: int) -> None:
    ours = tc3_authorization("AKID", secret, "sms.tencentcloudapi.com", body.encode(), timestamp)
    assert ours == tencent_sdk("AKID", secret, "sms.tencentcloudapi.com", body, timestamp)


def _message() -> Message:
    return Message(
        key="rec-1/notice/1/sms/x",
        channel="sms",
        recipient=PHONE,
        sms_template="notice",
        sms_params={"company": "某某 科技*+", "deadline": "3月9日"},
    )


def _settings(provider: str, url: str, **values: Any) -> SmsSettings:
    return SmsSettings(
        provider=provider,
        url=url,
        timeout=2.0,
        templates={  # type: ignore[arg-type]
            "notice": {"id": "SMS_465", "params": ["company", "deadline"]}
        },
        **values,
    )


def test_the_sendsms_request_on_the_wire_verifies_with_the_aliyun_sdk(server: SmsServer) -> None:
    server.reply(json_reply({"Code": "OK", "BizId": "b"}))
    settings_ = _settings("aliyun", server.url, access_key_id="AK", access_key_secret="SK")
    with requests.Session() as session:
        AliyunSms(settings_, session, lambda: NOW).send(_message())
    seen = server.seen[0]
    signed = [n for n in seen.headers if n == "host" or n.startswith("x-acs-")]
    expected = aliyun_sdk(
        seen.query,
        {n: seen.headers[n] for n in signed},
        hashlib.sha256(seen.body).hexdigest(),
        "AK",
        "SK",
        seen.path,
    )
    assert seen.headers["authorization"] == expected


def test_the_sendsms_request_on_the_wire_verifies_with_the_tencent_sdk(server: SmsServer) -> None:
    reply = {"Response": {"SendStatusSet": [{"Code": "Ok", "SerialNo": "s"}], "RequestId": "r"}}
    server.reply(json_reply(reply))
    settings_ = _settings(
        "tencent", server.url, secret_id="AKID", secret_key="SK", sdk_app_id="1400006666"
    )
    with requests.Session() as session:
        TencentSms(settings_, session, lambda: NOW).send(_message())
    seen = server.seen[0]
    expected = tencent_sdk(
        "AKID",
        "SK",
        seen.headers["host"],
        seen.body.decode(),
        int(seen.headers["x-tc-timestamp"]),
        seen.headers["content-type"],
    )
    assert seen.headers["authorization"] == expected
