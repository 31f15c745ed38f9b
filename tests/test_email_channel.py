"""EmailChannel against a real SMTP server (aiosmtpd on 127.0.0.1, a fresh port per test)."""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest

from pipeline.channels.base import Attachment, ChannelError, Message, OutcomeUnknown
from pipeline.channels.email import DOCX, EmailChannel, message_id, render_eml, sender_address
from pipeline.config import EmailSettings
from pipeline.errors import ConfigError
from tests.smtp_server import Recorder, free_port, parse, rejecting, smtp_server, smtp_server_on

SUBJECT = "关于信用修复的告知书（双鸭山市测试1有限公司）"
SENDER_NAME = "宝山区营商环境局"
TEXT = "您好：\n贵单位的行政处罚信息已满足信用修复条件。\n.\n请于十个工作日内办理。"
HTML = "<p>您好：</p><p>贵单位的行政处罚信息已满足<b>信用修复</b>条件。</p>"
NOTICE = Attachment("告知书.docx", b"PK\x03\x04" + bytes(range(256)) * 8, DOCX)


@pytest.fixture
def port(recorder: Recorder) -> Iterator[int]:
    with smtp_server(recorder) as port:
        yield port


def settings(port: int, **overrides: Any) -> EmailSettings:
    values: dict[str, Any] = dict(
        host="127.0.0.1",
        port=port,
        ssl=False,
        starttls=False,
        sender="notice@example.gov.cn",
        sender_name=SENDER_NAME,
        timeout=5.0,
    )
    return EmailSettings(**{**values, **overrides})


def notice(n: int = 1, **overrides: Any) -> Message:
    values: dict[str, Any] = dict(
        key=f"rec{n}:notice:1:email:contact{n}@example.com",
        channel="email",
        recipient=f"contact{n}@example.com",
        recipient_name="张三",
        subject=SUBJECT,
        text=TEXT,
        html=HTML,
        attachments=(NOTICE,),
    )
    return Message(**{**values, **overrides})


def body(message: EmailMessage, kind: str) -> str:
    """The text of the plain or html part; MIME text travels with CRLF line ends (canonical
    form), compared here without them."""
    part = message.get_body((kind,))
    assert part is not None, f"no text/{kind} part"
    text: str = part.get_content()
    return text.replace("\r\n", "\n").rstrip("\n")


# --------------------------------------------------------------------------- content


def test_it_delivers_chinese_subject_sender_body_and_attachment(
    port: int, recorder: Recorder
) -> None:
    EmailChannel(settings(port)).send(notice())

    [(mail_from, rcpt_tos, _)] = recorder.received
    assert (mail_from, rcpt_tos) == ("notice@example.gov.cn", ["contact1@example.com"])
    [received] = recorder.parsed()
    assert received["Subject"] == SUBJECT
    assert received["From"].addresses[0].display_name == SENDER_NAME
    assert received["To"].addresses[0].display_name == "张三"
    assert received.get_content_type() == "multipart/mixed"
    assert body(received, "plain") == TEXT
    assert body(received, "html") == HTML


def test_the_text_part_is_the_text_not_html(port: int, recorder: Recorder) -> None:
    EmailChannel(settings(port)).send(notice())

    [received] = recorder.parsed()
    [alternative] = [
        p for p in received.iter_parts() if p.get_content_type() == "multipart/alternative"
    ]
    types = [p.get_content_type() for p in alternative.iter_parts()]
    assert types == ["text/plain", "text/html"]
    assert "<br>" not in body(received, "plain")


def test_the_docx_notice_is_an_attachment_with_its_chinese_name(
    port: int, recorder: Recorder
) -> None:
    EmailChannel(settings(port)).send(notice())

    [received] = recorder.parsed()
    [attachment] = received.iter_attachments()
    assert attachment.get_content_disposition() == "attachment"
    assert attachment.get_content_type() == DOCX
    assert attachment.get_filename() == "告知书.docx"
    assert "filename*=utf-8''%E5%91%8A%E7%9F%A5%E4%B9%A6.docx" in str(attachment)  # RFC 2231
    assert attachment.get_content() == NOTICE.content


def test_text_only_message_is_a_single_plain_part(port: int, recorder: Recorder) -> None:
    EmailChannel(settings(port)).send(notice(html=None, attachments=()))

    [received] = recorder.parsed()
    assert received.get_content_type() == "text/plain"
    assert received.get_content().replace("\r\n", "\n").rstrip("\n") == TEXT


def test_message_id_comes_from_the_outbox_key(port: int, recorder: Recorder) -> None:
    channel = EmailChannel(settings(port), domain_for_ids="notices.example.gov.cn")
    message = notice()

    first = channel.send(message)
    again = channel.send(message)

    digest = hashlib.sha256(message.key.encode()).hexdigest()[:32]
    expected = f"<{digest}@notices.example.gov.cn>"
    assert first.provider_id == again.provider_id == expected
    assert [m["Message-ID"] for m in recorder.parsed()] == [expected, expected]
    assert message_id("another key") != message_id(message.key)


def test_cr_lf_in_name_or_subject_cannot_inject_headers(port: int, recorder: Recorder) -> None:
    evil = notice(
        recipient_name="张三\r\nBcc: victim@example.net",
        subject="告知书\nX-Injected: yes",
        html="<p>&lt;b&gt;张三&lt;/b&gt;</p>",
    )

    EmailChannel(settings(port)).send(evil)

    [(_, rcpt_tos, content)] = recorder.received
    assert rcpt_tos == ["contact1@example.com"]
    [received] = recorder.parsed()
    assert received["Bcc"] is None and received["X-Injected"] is None
    assert received["Subject"] == "告知书 X-Injected: yes"
    assert received["To"].addresses[0].addr_spec == "contact1@example.com"
    header_block = content.split(b"\r\n\r\n", 1)[0]
    assert b"victim@example.net" not in header_block  # it is inside an encoded-word, not a header


@pytest.mark.parametrize(
    "recipient", ["a@b.com\r\nRCPT TO:<x@y.com>", "not-an-address", "张三@例子.中国"]
)
def test_an_unusable_address_is_permanent_and_nothing_is_sent(
    port: int, recorder: Recorder, recipient: str
) -> None:
    with pytest.raises(ChannelError) as caught:
        EmailChannel(settings(port)).send(notice(recipient=recipient))

    assert caught.value.permanent and not caught.value.channel_down
    assert caught.value.code == "bad_address"
    assert recorder.mails == 0


def test_render_eml_is_the_same_mime(port: int, recorder: Recorder) -> None:
    eml = parse(render_eml(notice(), "notice@example.gov.cn"))

    assert eml["Subject"] == SUBJECT
    assert eml["Message-ID"] == message_id(notice().key)
    assert [a.get_filename() for a in eml.iter_attachments()] == ["告知书.docx"]
    assert body(eml, "plain") == TEXT


# --------------------------------------------------------------------------- connections


def test_a_batch_of_20_uses_one_connection(port: int, recorder: Recorder) -> None:
    with EmailChannel(settings(port)) as channel:
        for n in range(20):
            channel.send(notice(n))

    assert len(recorder.received) == 20
    assert recorder.connections == 1


def test_outside_a_batch_each_send_has_its_own_connection(port: int, recorder: Recorder) -> None:
    channel = EmailChannel(settings(port))
    for n in range(3):
        channel.send(notice(n))

    assert recorder.connections == 3


class DropsOnMail(Recorder):
    """Closes the connection, without a reply, when the Nth MAIL FROM arrives."""

    def __init__(self, nth: int, reply: str | None = None) -> None:
        super().__init__()
        self.nth = nth
        self.reply = reply

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.mails + 1 == self.nth:
            self.mails += 1
            if self.reply:
                return self.reply
            server.transport.close()
            return "421 closing"  # never reaches the client: the transport is closed
        return await super().handle_MAIL(server, session, envelope, address, options)


@pytest.mark.parametrize("reply", [None, "421 4.7.0 Too many messages, closing connection"])
def test_a_dropped_connection_mid_batch_is_reopened_and_nothing_is_sent_twice(
    reply: str | None,
) -> None:
    handler = DropsOnMail(nth=8, reply=reply)
    with smtp_server(handler) as port, EmailChannel(settings(port)) as channel:
        receipts = [channel.send(notice(n)) for n in range(20)]

    assert len(receipts) == 20
    keys = [m["Message-ID"] for m in handler.parsed()]
    assert sorted(keys) == sorted(message_id(notice(n).key) for n in range(20))
    assert len(set(keys)) == 20
    assert handler.connections == 2


def test_a_connection_that_drops_again_after_reconnecting_is_retryable() -> None:
    class DropsAlways(Recorder):
        async def handle_MAIL(self, server: Any, *args: Any) -> str:
            server.transport.close()
            return "421 closing"

    handler = DropsAlways()
    with smtp_server(handler) as port, pytest.raises(ChannelError) as caught:
        EmailChannel(settings(port)).send(notice())

    assert not caught.value.permanent
    assert handler.connections == 2


# --------------------------------------------------------------------------- errors


def test_smtp_down_is_retryable() -> None:
    with pytest.raises(ChannelError) as caught:
        EmailChannel(settings(free_port())).send(notice())  # nothing listens there

    assert not caught.value.permanent and not caught.value.channel_down
    assert not isinstance(caught.value, OutcomeUnknown)


def test_authentication_failure_is_permanent_and_takes_the_channel_down(recorder: Recorder) -> None:
    # AUTH is offered on loopback without TLS (auth_require_tls=False) and always fails
    with smtp_server(recorder, authenticator=rejecting, auth_require_tls=False) as port:
        channel = EmailChannel(settings(port, user="notice", password="wrong"))
        with pytest.raises(ChannelError) as caught:
            channel.send(notice())

    assert caught.value.permanent and caught.value.channel_down
    assert caught.value.code == "535"
    assert "wrong" not in str(caught.value)
    assert recorder.received == []


# aiosmtpd warns (UserWarning) that AUTH without TLS is unsafe; on loopback in a test it is what
# we want, and the warning is raised inside the server thread's factory, where it would fail it.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
def test_a_server_requiring_auth_we_do_not_have_takes_the_channel_down(recorder: Recorder) -> None:
    server = smtp_server(
        recorder, auth_required=True, auth_require_tls=False, authenticator=rejecting
    )
    with server as port, pytest.raises(ChannelError) as caught:
        EmailChannel(settings(port)).send(notice())

    assert caught.value.permanent and caught.value.channel_down
    assert caught.value.code == "530"


class RefusesRecipient(Recorder):
    def __init__(self, refused: str, reply: str) -> None:
        super().__init__()
        self.refused = refused
        self.reply = reply

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address == self.refused:
            return self.reply
        envelope.rcpt_tos.append(address)
        return "250 OK"


@pytest.mark.parametrize(
    ("reply", "permanent"),
    [
        ("550 5.1.1 <contact2@example.com>: user unknown", True),
        ("450 4.2.1 mailbox busy, try later", False),
    ],
)
def test_a_refused_recipient_fails_only_that_message(reply: str, permanent: bool) -> None:
    handler = RefusesRecipient("contact2@example.com", reply)
    with smtp_server(handler) as port, EmailChannel(settings(port)) as channel:
        channel.send(notice(1))
        with pytest.raises(ChannelError) as caught:
            channel.send(notice(2))
        channel.send(notice(3))

    assert caught.value.permanent is permanent and not caught.value.channel_down
    assert caught.value.code == reply[:3]
    assert "contact2@example.com" not in str(caught.value)  # masked
    assert [rcpt for _, rcpt, _ in handler.received] == [
        ["contact1@example.com"],
        ["contact3@example.com"],
    ]
    assert handler.connections == 1


class SlowAfterData(Recorder):
    """Receives the whole message, then answers after the client has given up."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        await asyncio.sleep(self.delay)
        return reply


def test_a_timeout_after_the_message_was_sent_is_an_unknown_outcome() -> None:
    handler = SlowAfterData(delay=1.0)
    with smtp_server(handler) as port:
        with pytest.raises(OutcomeUnknown) as caught:
            EmailChannel(settings(port, timeout=0.3)).send(notice())
        assert handler.received  # the server did get it: resending would duplicate it

    assert "may have delivered" in str(caught.value)


def test_a_rejected_message_after_data_is_not_unknown() -> None:
    class RejectsContent(Recorder):
        async def handle_DATA(self, *args: Any) -> str:
            return "554 5.7.1 message rejected as spam"

    with smtp_server(RejectsContent()) as port, pytest.raises(ChannelError) as caught:
        EmailChannel(settings(port)).send(notice())

    assert caught.value.permanent and not isinstance(caught.value, OutcomeUnknown)
    assert caught.value.code == "554"


# --------------------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def server_tls(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    """A server context with a fresh self-signed certificate for 127.0.0.1."""
    pytest.importorskip("cryptography")
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return context


def test_implicit_tls_delivers_when_verification_is_off(
    server_tls: ssl.SSLContext, recorder: Recorder
) -> None:
    with smtp_server(recorder, ssl_context=server_tls) as port:
        EmailChannel(settings(port, ssl=True, verify_certificate=False)).send(notice())

    assert len(recorder.received) == 1


def test_starttls_delivers_when_verification_is_off(
    server_tls: ssl.SSLContext, recorder: Recorder
) -> None:
    with smtp_server(recorder, tls_context=server_tls, require_starttls=True) as port:
        EmailChannel(settings(port, starttls=True, verify_certificate=False)).send(notice())

    assert len(recorder.received) == 1


@pytest.mark.parametrize("mode", ["ssl", "starttls"])
def test_an_untrusted_certificate_takes_the_channel_down(
    server_tls: ssl.SSLContext, recorder: Recorder, mode: str
) -> None:
    tls = {"ssl_context": server_tls} if mode == "ssl" else {"tls_context": server_tls}
    with smtp_server(recorder, **tls) as port, pytest.raises(ChannelError) as caught:
        EmailChannel(settings(port, ssl=mode == "ssl", starttls=mode == "starttls")).send(notice())

    assert caught.value.permanent and caught.value.channel_down
    assert recorder.received == []


def test_after_a_failed_login_the_rest_of_the_batch_fails_without_logging_in_again(
    recorder: Recorder,
) -> None:
    errors = []
    with smtp_server(recorder, authenticator=rejecting, auth_require_tls=False) as port:
        channel = EmailChannel(settings(port, user="notice", password="wrong"))
        with channel:
            for n in range(5):
                with pytest.raises(ChannelError) as caught:
                    channel.send(notice(n))
                errors.append(caught.value)

    assert all(e.permanent and e.channel_down for e in errors)
    assert recorder.connections == 1


def test_a_new_batch_tries_to_connect_again() -> None:
    port = free_port()
    channel = EmailChannel(settings(port))
    with channel, pytest.raises(ChannelError):
        channel.send(notice())  # nothing listening yet
    recorder = Recorder()
    with smtp_server_on(port, recorder), channel:
        channel.send(notice())

    assert len(recorder.received) == 1


def test_render_eml_takes_the_file_channels_default_sender() -> None:
    eml = parse(render_eml(notice(), sender_address("credit-repair@localhost", SENDER_NAME)))

    [sender] = eml["From"].addresses
    assert (sender.display_name, sender.addr_spec) == (SENDER_NAME, "credit-repair@localhost")


@pytest.mark.parametrize(
    "overrides", [{"host": None}, {"sender": None, "user": None}, {"sender": "宝山区营商环境局"}]
)
def test_a_channel_without_host_or_sender_address_is_a_config_error(
    overrides: dict[str, Any],
) -> None:
    with pytest.raises(ConfigError):
        EmailChannel(settings(25, **overrides))
