"""E-mail over SMTP: the MIME built with the standard library, one connection per batch.

::

    with EmailChannel(settings) as channel:     # one connection, opened on the first send
        receipt = channel.send(message)          # Receipt(provider_id=Message-ID)

Why the standard library and not yagmail (0.16.0, measured; docs/domain.md §8). yagmail
was asked for, and every part of it was weighed; none survives what this channel must do:

- its message builder turns each newline of the body into ``<br>``, wraps parts in
  ``<div>``, inlines CSS with premailer, sends the raw HTML as the "plain text" part,
  gives ``Content-Disposition: attachment`` only to ``application/*`` parts, takes
  attachments only as files, and derives the Message-ID from from/to/subject — so the
  MIME is built here with `email.message.EmailMessage` (`build_mime`);
- its connection: ``send()`` opens a new connection and logs in on every call (never
  QUITs the previous one), appends ``@gmail.com`` to a user name without ``@``, falls back
  to keyring and an interactive prompt without a password, verifies no certificate unless
  given a context, and wraps ``sendmail()`` in three attempts with sleeps of 3, 6 and 9 s
  that end in ``return False``. ``sendmail()`` cannot tell "refused before DATA" (safe to
  retry) from "lost after the body was sent" (may have been delivered). So the
  connection is smtplib's, driven at the level of MAIL / RCPT / DATA.

yagmail stays a dependency for the comparison in ``bench/bench_email.py``.

Errors (see `pipeline.channels.base`)::

    refused / timeout / dropped while connecting or before DATA   ChannelError(permanent=False)
    4xx reply                                                      ChannelError(permanent=False)
    5xx reply (550 unknown recipient …)                            ChannelError(permanent=True)
    authentication failed, AUTH or STARTTLS missing, bad cert      … permanent, channel_down
    lost after the body was sent, before the final reply           OutcomeUnknown
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import smtplib
import ssl
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, localtime
from types import TracebackType

from pipeline.channels.base import ChannelError, Message, OutcomeUnknown, Receipt
from pipeline.config import EmailSettings
from pipeline.errors import ConfigError
from pipeline.logs import get_logger, mask_text

log = get_logger("channels.email")

DEFAULT_DOMAIN = "credit-repair.local"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

POLICY = SMTP_POLICY.clone(cte_type="7bit")
"""CRLF line ends; non-ASCII bodies as base64/quoted-printable, so no server needs 8BITMIME."""

LINE_BREAKS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")
ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")
"""ASCII addresses only: a non-ASCII one needs SMTPUTF8, which we do not negotiate.
(A domain without a dot passes: ``credit-repair@localhost`` is the file channel's sender.)"""
AUTH_CODES = frozenset({530, 534, 535, 538})
"""Replies that mean "not authenticated": every message would fail the same way."""


# --------------------------------------------------------------------------- MIME


def message_id(key: str, domain: str = DEFAULT_DOMAIN) -> str:
    """``<sha256(key)[:32]@domain>``: the same outbox key always gets the same Message-ID."""
    return f"<{hashlib.sha256(key.encode('utf-8')).hexdigest()[:32]}@{domain}>"


def one_line(value: str) -> str:
    """Control characters (CR, LF, …) become one space: a value cannot start a new header."""
    return LINE_BREAKS.sub(" ", value).strip()


def recipient(message: Message) -> Address:
    addr = message.recipient.strip()
    if not ADDRESS.fullmatch(addr):
        raise ChannelError(
            f"not a usable e-mail address: {mask_text(one_line(addr))!r}",
            permanent=True,
            code="bad_address",
        )
    return Address(display_name=one_line(message.recipient_name or ""), addr_spec=addr)


def build_mime(
    message: Message, sender: Address, domain: str = DEFAULT_DOMAIN, date: dt.datetime | None = None
) -> EmailMessage:
    """text/plain (+ text/html as multipart/alternative) + attachments, headers RFC 2047."""
    mime = EmailMessage(policy=POLICY)
    mime["Subject"] = one_line(message.subject)
    mime["From"] = sender
    mime["To"] = recipient(message)
    mime["Date"] = format_datetime(date or localtime())
    mime["Message-ID"] = message_id(message.key, domain)
    mime.set_content(message.text)
    if message.html is not None:
        mime.add_alternative(message.html, subtype="html")
    for attachment in message.attachments:
        maintype, _, subtype = attachment.mime_type.partition("/")
        if not subtype:
            maintype, subtype = "application", "octet-stream"
        # filename with non-ASCII characters → filename*=utf-8''… (RFC 2231)
        mime.add_attachment(attachment.content, maintype=maintype, subtype=subtype,
                            filename=one_line(attachment.filename))  # fmt: skip
    return mime


def sender_address(sender: str | Address, name: str | None = None) -> Address:
    """The From address with its display name (e.g. ``宝山区营商环境局``); ConfigError if unusable."""
    if isinstance(sender, Address):
        return sender
    if not ADDRESS.fullmatch(sender.strip()):
        raise ConfigError(f"email.sender: not an e-mail address: {mask_text(sender)!r}")
    return Address(display_name=one_line(name or ""), addr_spec=sender.strip())


def render_eml(
    message: Message,
    sender: str | Address,
    *,
    domain_for_ids: str = DEFAULT_DOMAIN,
    date: dt.datetime | None = None,
) -> bytes:
    """The message as an .eml file (CRLF line ends): exactly the bytes SMTP would carry."""
    return build_mime(message, sender_address(sender), domain_for_ids, date).as_bytes()


# --------------------------------------------------------------------------- SMTP


class _Dropped(Exception):
    """The connection was lost (or the server said 421) before the body was sent."""


def _reply_error(stage: str, code: int, reply: bytes | str) -> ChannelError:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    error = ChannelError(
        f"SMTP {stage} refused: {code} {mask_text(one_line(text))}",
        permanent=500 <= code < 600,
        code=str(code),
    )
    error.channel_down = code in AUTH_CODES
    return error


def _channel_down(reason: str, exc: BaseException) -> ChannelError:
    code = getattr(exc, "smtp_code", None)
    error = ChannelError(f"{reason}: {mask_text(str(exc))}", permanent=True,
                         code=str(code) if code else reason.split()[0])  # fmt: skip
    error.channel_down = True
    return error


def _again(first: ChannelError) -> ChannelError:
    error = ChannelError(f"not tried again in this batch: {first}", permanent=first.permanent,
                         code=first.code)  # fmt: skip
    error.channel_down = first.channel_down
    return error


def _expect(stage: str, reply: tuple[int, bytes], ok: tuple[int, ...]) -> None:
    code, text = reply
    if code in ok:
        return
    if code == 421:  # the server is closing the connection: nothing was accepted
        raise _Dropped(f"{stage}: 421")
    raise _reply_error(stage, code, text)


def _dot_stuffed(data: bytes) -> bytes:
    """The DATA payload: leading dots doubled, CRLF-terminated, then the lone dot."""
    data = re.sub(rb"(?m)^\.", b"..", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


def transfer(conn: smtplib.SMTP, sender: str, to: str, data: bytes) -> None:
    """MAIL, RCPT, DATA by hand, so a failure is known to be before or after the body."""
    try:
        conn.ehlo_or_helo_if_needed()  # sendmail() does this; mail() does not
        _expect("MAIL FROM", conn.mail(sender), (250,))
        _expect("RCPT TO", conn.rcpt(to), (250, 251))
        conn.putcmd("data")
        _expect("DATA", conn.getreply(), (354,))
    except smtplib.SMTPServerDisconnected as exc:  # also every socket error and timeout
        raise _Dropped(str(exc)) from exc
    except smtplib.SMTPResponseException as exc:  # EHLO refused
        raise _reply_error("EHLO", exc.smtp_code, exc.smtp_error) from exc
    try:
        conn.send(_dot_stuffed(data))
        reply = conn.getreply()
    except OSError as exc:
        raise OutcomeUnknown(
            f"the connection failed after the message was sent ({exc}); "
            "the server may have delivered it"
        ) from exc
    if reply[0] != 250:
        raise _reply_error("message", *reply)


class EmailChannel:
    """SMTP (implicit TLS, STARTTLS or plain); `with` keeps one connection for a batch."""

    name = "email"

    def __init__(self, settings: EmailSettings, domain_for_ids: str = DEFAULT_DOMAIN) -> None:
        if not settings.host:
            raise ConfigError("email.host is not set")
        self.settings = settings
        self.sender = sender_address(settings.sender or settings.user or "", settings.sender_name)
        self.domain_for_ids = domain_for_ids
        self._conn: smtplib.SMTP | None = None
        self._batch = False
        self._open_failed: ChannelError | None = None
        """Within a batch, why the connection could not be opened: not tried again."""

    def __enter__(self) -> EmailChannel:
        """Start a batch; the connection opens on the first send (its errors are that send's)."""
        self._batch = True
        self._open_failed = None
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:  # fmt: skip
        self._batch = False
        self._open_failed = None
        self._quit()

    def send(self, message: Message) -> Receipt:
        data = build_mime(message, self.sender, self.domain_for_ids).as_bytes()
        try:
            self._deliver(message.recipient.strip(), data)  # validated by build_mime
        finally:
            if not self._batch:
                self._quit()
        return Receipt(provider_id=message_id(message.key, self.domain_for_ids))

    def _deliver(self, to: str, data: bytes) -> None:
        for attempt in (1, 2):
            try:
                return transfer(self._connection(), self.sender.addr_spec, to, data)
            except _Dropped as exc:
                self._discard()
                if attempt == 2:
                    raise ChannelError(f"SMTP connection lost before the message was sent: {exc}",
                                       permanent=False, code="disconnected") from exc  # fmt: skip
                log.info("email.reconnect", reason=mask_text(str(exc)))
            except OutcomeUnknown:
                self._discard()
                raise
            except ChannelError:
                self._reset()
                raise

    # ----------------------------------------------------------------------- connection

    def _connection(self) -> smtplib.SMTP:
        """The open connection, or a new one. Once opening failed in a batch, the rest of the
        batch fails at once the same way: no wait for a timeout per message, and no login
        retried per message (mail servers lock accounts after repeated failed logins)."""
        if self._conn is not None:
            return self._conn
        if self._open_failed is not None:
            raise _again(self._open_failed)
        try:
            self._conn = self._open()
        except ChannelError as exc:
            self._open_failed = exc if self._batch else None
            raise
        return self._conn

    def tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if not self.settings.verify_certificate:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _open(self) -> smtplib.SMTP:
        s = self.settings
        assert s.host is not None
        try:
            conn = (smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=self.tls_context())
                    if s.ssl else smtplib.SMTP(s.host, s.port, timeout=s.timeout))  # fmt: skip
        except ssl.SSLCertVerificationError as exc:
            raise _channel_down("certificate not trusted", exc) from exc
        except smtplib.SMTPResponseException as exc:  # a 4xx/5xx greeting
            raise _reply_error("connect", exc.smtp_code, exc.smtp_error) from exc
        except OSError as exc:  # refused, timed out, name not found, dropped
            raise ChannelError(f"cannot connect to {s.host}:{s.port}: {exc}",
                               permanent=False, code="connect") from exc  # fmt: skip
        try:
            self._start(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _start(self, conn: smtplib.SMTP) -> None:
        """STARTTLS and AUTH, when configured; no keyring, no prompt."""
        s = self.settings
        try:
            if s.starttls and not s.ssl:
                conn.starttls(context=self.tls_context())
            if s.user and s.password:
                conn.login(s.user, s.password)
        except smtplib.SMTPAuthenticationError as exc:
            raise _channel_down("authentication failed", exc) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise _channel_down("server lacks a required extension", exc) from exc
        except ssl.SSLCertVerificationError as exc:
            raise _channel_down("certificate not trusted", exc) from exc
        except smtplib.SMTPResponseException as exc:
            raise _reply_error("STARTTLS/AUTH", exc.smtp_code, exc.smtp_error) from exc
        except OSError as exc:
            raise ChannelError(f"SMTP connection failed while starting: {exc}",
                               permanent=False, code="connect") from exc  # fmt: skip

    def _reset(self) -> None:
        """After a refused MAIL/RCPT/DATA: RSET so the connection serves the next message."""
        if self._conn is None:
            return
        try:
            self._conn.rset()
        except OSError:
            self._discard()

    def _discard(self) -> None:
        """Drop the connection without QUIT (its state is unknown)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _quit(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.quit()
        except OSError:  # smtplib errors are OSErrors too
            conn.close()
