"""Requests per minute per caller: a token bucket per principal (its user, or its partner
key), and per client address for anonymous requests.

The buckets live in each gateway process: with N processes behind a balancer a caller
gets up to N times the rate, which is what a per-process limit can promise; the point is
that no single caller can take a process's whole capacity. Over the limit the request is
refused before any work, with 429, `Retry-After` and the code `RATE_LIMITED`.
"""

from __future__ import annotations

import math
import time

from models.accounts import Principal

MAX_BUCKETS = 100_000  # beyond this, full (idle) buckets are dropped


class RateLimiter:
    def __init__(self, per_minute: int, anonymous_per_minute: int) -> None:
        self.per_minute = per_minute
        self.anonymous_per_minute = anonymous_per_minute
        # key -> (tokens left, when they were counted)
        self._buckets: dict[tuple[str, object], tuple[float, float]] = {}

    @staticmethod
    def key(principal: Principal | None, address: str | None) -> tuple[str, object]:
        if principal is None:
            return ("address", address)
        if principal.api_key_id is not None:
            return ("key", principal.api_key_id)
        return ("user", principal.user_id)

    def take(self, principal: Principal | None, address: str | None) -> float:
        """0 if this request may go ahead, else the seconds until one may."""
        rate = self.per_minute if principal is not None else self.anonymous_per_minute
        if rate <= 0:
            return 0.0
        key = self.key(principal, address)
        now = time.monotonic()
        tokens, then = self._buckets.get(key, (float(rate), now))
        tokens = min(float(rate), tokens + (now - then) * rate / 60)
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            return (1 - tokens) * 60 / rate
        if len(self._buckets) >= MAX_BUCKETS and key not in self._buckets:
            self._drop_full(now)
        self._buckets[key] = (tokens - 1, now)
        return 0.0

    def _drop_full(self, now: float) -> None:
        for key, (tokens, then) in list(self._buckets.items()):
            rate = self.anonymous_per_minute if key[0] == "address" else self.per_minute
            if tokens + (now - then) * rate / 60 >= rate:
                del self._buckets[key]


def over_limit(wait: float) -> tuple[int, str]:
    """A refusal after `limiter.take` said to wait: the whole seconds (at least 1) and
    the message, the same over HTTP (429) and a WebSocket (an `error` for the operation)."""
    seconds = max(1, math.ceil(wait))
    return seconds, f"too many requests; try again in {seconds} s"
