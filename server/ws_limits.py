"""WebSocket admission: how many live connections one principal may hold in this process
(Strawberry's view already checks browser origins and caps subscriptions per connection).
"""

from __future__ import annotations

import collections
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send
from strawberry.exceptions import ConnectionRejectionError

from models.accounts import Principal

_PRINCIPAL_KEY = "ta.principal_key"


def _principal_key(principal: Principal) -> str:
    if principal.api_key_id is not None:
        return f"key:{principal.api_key_id}"
    return f"user:{principal.user_id}"


class WebSocketLimits:
    def __init__(self, *, per_principal: int) -> None:
        self.per_principal = per_principal
        self.open: collections.Counter[str] = collections.Counter()

    def admit(self, principal: Principal, scope: Scope) -> None:
        """Count a newly authenticated connection; refuse one over the cap."""
        key = _principal_key(principal)
        if self.open[key] >= self.per_principal:
            raise ConnectionRejectionError(
                {"code": "TOO_MANY_CONNECTIONS",
                 "message": f"at most {self.per_principal} live connections per account"}
            )  # fmt: skip
        self.open[key] += 1
        scope[_PRINCIPAL_KEY] = key

    def wrap(self, app: ASGIApp) -> ASGIApp:
        """The WebSocket endpoint, giving a connection's slot back however it ends."""
        return _Admitted(self, app)

    def release(self, scope: Scope) -> None:
        key: Any = scope.get(_PRINCIPAL_KEY)
        if key is not None:
            self.open[key] -= 1
            if self.open[key] <= 0:
                del self.open[key]


class _Admitted:
    """An ASGI app (a class, so Starlette's router passes scope, receive, send)."""

    def __init__(self, limits: WebSocketLimits, app: ASGIApp) -> None:
        self.limits = limits
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            self.limits.release(scope)
