"""The SMS channel: one class per gateway, chosen by `sms.provider`.

=========  =====================  ===================================================
provider   class                  module
=========  =====================  ===================================================
webhook    `WebhookSms`           `webhook` — a signed JSON POST to our own gateway
aliyun     `AliyunSms`            `aliyun` — Dysmsapi SendSms, ACS3; also `check`
tencent    `TencentSms`           `tencent` — SendSms 2021-01-11, TC3
=========  =====================  ===================================================

Checks made before sending and the mapping of network failures live in `common`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import requests

from pipeline.channels.base import Channel
from pipeline.channels.sms.aliyun import AliyunSms
from pipeline.channels.sms.tencent import TencentSms
from pipeline.channels.sms.webhook import WebhookSms
from pipeline.config import SmsSettings
from pipeline.errors import ConfigError

__all__ = ["AliyunSms", "TencentSms", "WebhookSms", "make_sms_channel"]


def make_sms_channel(
    settings: SmsSettings, session: requests.Session, clock_now: Callable[[], datetime]
) -> Channel:
    """The channel for `settings.provider`; ConfigError if none is set or a key is missing."""
    if settings.provider == "webhook":
        return WebhookSms(settings, session, clock_now)
    if settings.provider == "aliyun":
        return AliyunSms(settings, session, clock_now)
    if settings.provider == "tencent":
        return TencentSms(settings, session, clock_now)
    raise ConfigError("sms.provider is not set: no SMS channel is configured")
