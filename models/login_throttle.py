"""Back-off for failed log-ins, per account and per client address.

Each failed log-in counts against the account (`account:<e-mail>`) and the address it
came from (`address:<ip>`). Past a threshold (5 for an account, 20 for an address) the
key waits before any further attempt is even checked: 30 s, doubling with every further
failure, at most an hour. A quiet quarter of an hour forgets the count; a successful
log-in clears the account's (not the address's: an attacker could reset it with an
account of their own). The counts are rows, so every gateway process sees them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math

from models import clock, sql
from models.db import write_transaction
from models.errors import DomainError, ErrorCode
from models.tables import LoginThrottle


@dataclasses.dataclass(frozen=True)
class Rule:
    threshold: int  # failures before the first wait
    first_wait: dt.timedelta = dt.timedelta(seconds=30)
    longest_wait: dt.timedelta = dt.timedelta(hours=1)
    forget_after: dt.timedelta = dt.timedelta(minutes=15)

    def wait(self, failures: int) -> dt.timedelta | None:
        over = failures - self.threshold
        if over < 0:
            return None
        wait: dt.timedelta = self.first_wait * 2 ** min(over, 20)
        return min(wait, self.longest_wait)


ACCOUNT = Rule(threshold=5)
ADDRESS = Rule(threshold=20)


def keys(email: str, address: str | None) -> list[tuple[str, Rule]]:
    found = [(f"account:{email}", ACCOUNT)]
    return [*found, (f"address:{address}", ADDRESS)] if address else found


async def refuse_if_waiting(keyed: list[tuple[str, Rule]]) -> None:
    """TOO_MANY_ATTEMPTS while any key waits: the password is not even checked."""
    names = [key for key, _ in keyed]
    rows = await sql.select(LoginThrottle, sql.among("key", len(names)), *names)
    now = clock.now()
    until = max(
        (r.blocked_until for r in rows if r.blocked_until and r.blocked_until > now), default=None
    )
    if until is not None:
        seconds = math.ceil((until - now).total_seconds())
        raise DomainError(
            ErrorCode.TOO_MANY_ATTEMPTS,
            f"too many failed log-ins; try again in {seconds} s",
        )


async def count_failure(keyed: list[tuple[str, Rule]]) -> None:
    """One more failure for each key, counted in one statement: read and written back in
    two, concurrent failures on PostgreSQL overwrote each other's counts (40 wrong guesses
    at once across two processes counted 5)."""
    now = clock.now()
    async with write_transaction():
        for key, rule in keyed:
            counted = await sql.fetch(_COUNT, key, now, now - rule.forget_after)
            wait = rule.wait(int(counted[0]["failures"]))
            await sql.fetch(
                "UPDATE login_throttle SET blocked_until = {} WHERE key = {}",
                now + wait if wait else None, key,
            )  # fmt: skip


# A quiet `forget_after` since the last failure starts the count again.
_COUNT = (
    "INSERT INTO login_throttle (key, failures, last_failure_at) VALUES ({}, 1, {})"
    " ON CONFLICT (key) DO UPDATE SET last_failure_at = excluded.last_failure_at,"
    " failures = CASE WHEN login_throttle.last_failure_at < {} THEN 1"
    " ELSE login_throttle.failures + 1 END"
    " RETURNING failures"
)


async def clear(key: str) -> None:
    await LoginThrottle.delete().where(LoginThrottle.key == key)
