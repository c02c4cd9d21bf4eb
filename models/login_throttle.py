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
    now = clock.now()
    async with write_transaction():
        for key, rule in keyed:
            found = await sql.select(LoginThrottle, '"key" = {}', key)
            row = found[0] if found else None
            stale = row is None or now - row.last_failure_at > rule.forget_after
            failures = 1 if stale or row is None else row.failures + 1
            wait = rule.wait(failures)
            values = {
                "failures": failures,
                "last_failure_at": now,
                "blocked_until": now + wait if wait else None,
            }
            if row is None:
                await sql.insert(LoginThrottle, {"key": key, **values})
            else:
                await sql.update(LoginThrottle, row.id, values)


async def clear(key: str) -> None:
    await LoginThrottle.delete().where(LoginThrottle.key == key)
