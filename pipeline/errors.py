"""The exception tree of the pipeline.

::

    CreditRepairError                 base; str() is one sentence naming the file/row/key
    ├── UsageError          (exit 2)  bad command-line usage
    ├── ConfigError         (exit 2)  bad or missing configuration; raised at start
    ├── InputError          (exit 2)  an input file cannot be read or lacks a required column
    │   └── SourceError               a source (file or HTTP) could not deliver a snapshot
    ├── CalendarError                 a date falls in a year no working-day data covers
    ├── LedgerError         (exit 2)  a ledger change refused (impossible transition, no record)
    ├── RefusedError        (exit 1)  the work was refused by a guard (nothing changed)
    └── TransientError      (exit 1)  may succeed if retried later (network, lock held)

`Permanent` vs transient matters for channels and sources: a `TransientError` says
"try again later"; anything else will fail the same way again.
"""

from __future__ import annotations


class CreditRepairError(Exception):
    """Base of every error the pipeline raises on purpose."""

    exit_code = 1


class UsageError(CreditRepairError):
    exit_code = 2


class ConfigError(CreditRepairError):
    """Configuration is invalid; the program stops at start. Names file and key."""

    exit_code = 2


class InputError(CreditRepairError):
    """An input file cannot be read, or lacks a required column. Nothing was loaded."""

    exit_code = 2


class SourceError(InputError):
    """A configured source failed to deliver a snapshot (after its retries)."""


class CalendarError(CreditRepairError):
    """A date falls in a year that neither chinesecalendar nor holidays.yaml covers."""

    exit_code = 1

    def __init__(self, year: int) -> None:
        super().__init__(
            f"no working-day data for {year}: add the year to config/holidays.yaml "
            "from the State Council's notice (see the comments in that file)"
        )
        self.year = year


class LedgerError(CreditRepairError):
    """A ledger change was refused; nothing changed."""

    exit_code = 2


class RefusedError(CreditRepairError):
    """A guard refused the work; nothing changed."""

    exit_code = 1


class TransientError(CreditRepairError):
    """May succeed if retried later."""

    exit_code = 1
