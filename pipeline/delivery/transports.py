"""Which transport carries each logical channel (built once, at the edge).

Email goes through SMTP when ``email.host`` is set, SMS through the gateway when
``sms.provider`` is set; otherwise both are written as files under ``var/outbox``
(the quick start). Manual deliveries always become tasks on disk.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import requests

from pipeline.channels.base import Channel
from pipeline.channels.email import EmailChannel
from pipeline.channels.file import FileChannel, ManualChannel
from pipeline.channels.sms import make_sms_channel
from pipeline.config import Config


def build_transports(
    config: Config, session: requests.Session, now: Callable[[], dt.datetime]
) -> dict[str, Channel]:
    settings = config.settings
    folder = Path(settings.paths.outbox_dir)
    sender = settings.email.sender or settings.email.user or "credit-repair@localhost"
    email: Channel = (
        EmailChannel(settings.email)
        if settings.email.host
        else FileChannel("email", folder, sender, settings.email.sender_name)
    )
    sms: Channel = (
        make_sms_channel(settings.sms, session, now)
        if settings.sms.provider
        else FileChannel("sms", folder)
    )
    return {"email": email, "sms": sms, "manual": ManualChannel("manual", folder)}


def describe(transports: dict[str, Channel]) -> dict[str, str]:
    return {name: type(channel).__name__ for name, channel in transports.items()}
