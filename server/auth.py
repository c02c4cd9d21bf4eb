"""Credentials on the wire: `Authorization: Bearer …` on HTTP, the same in `connection_init`."""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from models.accounts import AuthError, Principal, authenticate
from models.db import is_transient
from server.rate_limit import RateLimiter, over_limit
from server.responses import DATABASE_AWAY, send_error


def bearer(value: str | None) -> str | None:
    """The secret from an Authorization value; `Bearer` is optional in connection_init."""
    if not value:
        return None
    scheme, _, rest = value.strip().partition(" ")
    if rest and scheme.lower() == "bearer":
        return rest.strip() or None
    return None if rest else scheme


def token_from_connection_params(params: dict[str, Any] | None) -> str | None:
    """The secret from a connection_init payload; None if it carries no credential. One
    that is there but unusable (another scheme, not a string) raises AuthError
    MALFORMED_AUTHORIZATION, as HTTP answers 401, rather than connecting anonymously."""
    if not isinstance(params, dict):
        return None
    for key in ("Authorization", "authorization", "token"):
        if key in params:
            value = params[key]
            secret = bearer(value) if isinstance(value, str) else None
            if secret is None:
                raise AuthError("MALFORMED_AUTHORIZATION", "expected 'Bearer <token>'")
            return secret
    return None


class AuthGate:
    """Resolve the HTTP caller once, before GraphQL runs. A presented but invalid credential
    is refused with 401 and a coded error rather than silently treated as anonymous; a
    caller over its request rate (`limiter`) with 429."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter | None = None) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        principal: Principal | None = None
        if scope["type"] == "http":
            header = next(
                (v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"),
                None,
            )
            secret = bearer(header)
            if header is not None and secret is None:
                await _unauthorized(send, "MALFORMED_AUTHORIZATION", "expected 'Bearer <token>'")
                return
            if secret is not None:
                try:
                    principal = await authenticate(secret)
                except AuthError as e:
                    await _unauthorized(send, e.code, str(e))
                    return
                except Exception as e:
                    if not is_transient(e):
                        raise
                    await _unavailable(send)  # the database is away: a restart, a failover
                    return
            if self.limiter is not None:
                client = scope.get("client")
                wait = self.limiter.take(principal, client[0] if client else None)
                if wait:
                    await _rate_limited(send, wait)
                    return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)


async def _unauthorized(send: Send, code: str, message: str) -> None:
    challenge = ((b"www-authenticate", b'Bearer realm="trade-assurance"'),)
    await send_error(send, 401, code, message, challenge)


async def _unavailable(send: Send) -> None:
    """The credential could not be looked up because the database is away for a moment:
    503 and TRY_AGAIN, as a request caught later in the same outage gets."""
    await send_error(send, 503, "TRY_AGAIN", DATABASE_AWAY, ((b"retry-after", b"1"),))


async def _rate_limited(send: Send, wait: float) -> None:
    seconds, message = over_limit(wait)
    await send_error(
        send,
        429,
        "RATE_LIMITED",
        message,
        ((b"retry-after", str(seconds).encode()),),
        retryAfterSeconds=seconds,
    )
