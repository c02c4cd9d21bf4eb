"""The one clock the domain reads. Tests replace it to move time."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

UTC = dt.UTC

_now: Callable[[], dt.datetime] = lambda: dt.datetime.now(UTC)  # noqa: E731


def now() -> dt.datetime:
    """Current time, timezone-aware UTC, truncated to microseconds both engines keep."""
    return _now()


def set_clock(fn: Callable[[], dt.datetime]) -> None:
    global _now
    _now = fn


def reset_clock() -> None:
    set_clock(lambda: dt.datetime.now(UTC))


class FrozenClock:
    """A clock that only moves when told to; install it with `set_clock(clock)`."""

    def __init__(self, start: dt.datetime) -> None:
        self.current = start

    def __call__(self) -> dt.datetime:
        return self.current

    def advance(self, **delta: float) -> dt.datetime:
        self.current += dt.timedelta(**delta)
        return self.current
