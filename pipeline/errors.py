"""The exception tree of the pipeline: every error it raises on purpose.

::

    CreditRepairError             exit 1  base; str() is one sentence naming the file/row/key
    ├── UsageError                exit 2  bad command-line usage
    ├── ConfigError               exit 2  bad or missing configuration; raised at start
    ├── InputError                exit 2  an input file cannot be read or lacks a required column
    ├── SourceError               exit 2  a configured source answered, but gave no usable
    │   │                                 snapshot (HTTP 4xx: check the url and credentials;
    │   │                                 HTML or bad JSON; a download that cannot be read)
    │   └── SourceUnavailable     exit 1  it could not deliver: network failure, timeout,
    │                                     HTTP 5xx or 429 after its retries; a later run may work
    ├── ChannelError              exit 1  one send failed; `permanent` says whether retrying can
    │   │                                 help (False: retry later; True: fails the same again)
    │   ├── ChannelDown                   every send would fail (authentication, account,
    │   │                                 signature, certificate): the channel is taken out of
    │   │                                 service for a while instead of failing each message
    │   └── OutcomeUnknown                the request went out, whether it arrived is unknown
    │                                     (timeout after DATA / after the body was sent):
    │                                     never resent by itself; a person or a status query decides
    ├── CalendarError             exit 1  a date falls in a year no working-day data covers
    ├── LedgerError               exit 2  a ledger change refused (impossible transition, no record)
    ├── RefusedError              exit 1  a guard refused the work (nothing changed)
    └── DatabaseFailure           exit 1  the database refused the work (its real cause named;
                                          nothing changed): locked by another job past the
                                          busy timeout, or a value it would not store

Exit codes follow the CLI contract (0 success, 1 the work failed or a guard refused it,
2 bad usage, config or input) and are mapped in one place, `EXIT_CODES`: an error takes
the code of its nearest class there. Whether retrying can help is a fact an error is
constructed with, never set afterwards: a channel error's `permanent` (and `channel_down`
for `ChannelDown`, or for an `OutcomeUnknown` whose status query was refused for bad
credentials), and `SourceUnavailable` — the only source failure a later run may cure.
"""

from __future__ import annotations


class CreditRepairError(Exception):
    """Base of every error the pipeline raises on purpose."""

    @property
    def exit_code(self) -> int:
        """The process exit status for this error (see `EXIT_CODES`)."""
        return exit_code_of(self)


class UsageError(CreditRepairError):
    """The command line asks for something impossible."""


class ConfigError(CreditRepairError):
    """Configuration is invalid; the program stops at start. Names file and key."""


class InputError(CreditRepairError):
    """An input file cannot be read, or lacks a required column. Nothing was loaded."""


class SourceError(CreditRepairError):
    """A configured source answered, but not with a usable snapshot. Nothing was loaded."""


class SourceUnavailable(SourceError):
    """A configured source could not deliver (network, HTTP 5xx/429) after its retries."""


class ChannelError(CreditRepairError):
    """A send that failed; `permanent` says whether retrying can help."""

    channel_down = False
    """True for errors that disable the whole channel (see `ChannelDown`)."""

    def __init__(
        self,
        message: str,
        *,
        permanent: bool,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.code = code
        self.retry_after = retry_after
        """Seconds the provider asked us to wait (rate limits), if it said."""


class ChannelDown(ChannelError):
    """Every send on this channel would fail the same way (credentials, account, signature)."""

    channel_down = True

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message, permanent=True, code=code)


class OutcomeUnknown(ChannelError):
    """The request was sent but its outcome is not known; a person (or a status query) decides.

    Permanent in the sense that it is never resent by itself. `channel_down` is set when
    the status query that could have resolved it was refused for the channel's credentials.
    """

    def __init__(
        self,
        message: str,
        code: str | None = None,
        *,
        channel_down: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, permanent=True, code=code, retry_after=retry_after)
        self.channel_down = channel_down


class CalendarError(CreditRepairError):
    """A date falls in a year that neither chinesecalendar nor holidays.yaml covers."""

    def __init__(self, year: int) -> None:
        super().__init__(
            f"no working-day data for {year}: add the year to config/holidays.yaml "
            "from the State Council's notice (see the comments in that file)"
        )
        self.year = year


class LedgerError(CreditRepairError):
    """A ledger change was refused; nothing changed."""


class RefusedError(CreditRepairError):
    """A guard refused the work; nothing changed."""


class DatabaseFailure(CreditRepairError):
    """The database refused the work (the transaction was rolled back): names the cause."""


EXIT_CODES: dict[type[CreditRepairError], int] = {
    CreditRepairError: 1,
    UsageError: 2,
    ConfigError: 2,
    InputError: 2,
    SourceError: 2,
    SourceUnavailable: 1,
    ChannelError: 1,
    CalendarError: 1,
    LedgerError: 2,
    RefusedError: 1,
    DatabaseFailure: 1,
}
"""The exit status of each branch; a subclass not listed takes its nearest listed base's."""


def exit_code_of(error: CreditRepairError) -> int:
    return next(EXIT_CODES[cls] for cls in type(error).__mro__ if cls in EXIT_CODES)
