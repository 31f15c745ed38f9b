"""A fake channel for tests and demonstrations: records what it was given, fails on cue."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

from pipeline.channels.base import ChannelError, Message, Receipt

Script = Callable[[Message, int], Exception | None]


class FakeChannel:
    def __init__(self, name: str, script: Script | None = None) -> None:
        self.name = name
        self.script = script
        self.sent: list[Message] = []
        self.calls = 0
        self.opened = 0

    def send(self, message: Message) -> Receipt:
        self.calls += 1
        failure = self.script(message, self.calls) if self.script else None
        if failure is not None:
            raise failure
        self.sent.append(message)
        return Receipt(provider_id=f"fake-{self.calls}")

    def __enter__(self) -> FakeChannel:
        self.opened += 1
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None


def fail_with(error: ChannelError, times: int = 1) -> Script:
    """A script failing the first `times` calls with `error`."""
    return lambda _message, call: error if call <= times else None
