"""WebSocket admission: how many live connections one principal may hold in this process
(Strawberry's view already checks browser origins and caps subscriptions per connection).
"""

from __future__ import annotations

import collections
import contextlib
import functools
import socket
import struct
from collections.abc import Awaitable
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from models.accounts import Principal
from resolvers.live import ABORT_SCOPE_KEY
from server.ws_handler import CLOSE_TOO_MANY_CONNECTIONS, Refused

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
        """Count a newly authenticated connection; refuse one over the cap (a close code
        of its own: unlike a refused credential, it is worth trying again later)."""
        key = _principal_key(principal)
        if self.open[key] >= self.per_principal:
            raise Refused(
                CLOSE_TOO_MANY_CONNECTIONS,
                "TOO_MANY_CONNECTIONS",
                f"at most {self.per_principal} live connections per account",
            )
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


class ExposeAbort:
    """ASGI middleware: a WebSocket connection's scope gets a callable that resets the
    TCP connection at once (resolvers.live uses it on a subscriber that stopped reading,
    whose close frame would never be flushed). uvicorn's `send` is a method of its
    protocol object, which holds the asyncio transport; under another server nothing is
    set."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Not a coroutine: no frame of ours kept for a connection's lifetime.
        if scope["type"] == "websocket":
            transport = getattr(getattr(send, "__self__", None), "transport", None)
            # Duck-typed: uvloop's transports are not asyncio.Transport subclasses.
            if callable(getattr(transport, "abort", None)):
                scope[ABORT_SCOPE_KEY] = functools.partial(_reset, transport)
        return self.app(scope, receive, send)


def _reset(transport: Any) -> None:
    """Drop the connection with a reset. A plain abort closes the socket, but the kernel
    still holds the unsent data (up to the send buffer, megabytes) and sends FIN only
    once a peer that reads nothing has taken it all: never. SO_LINGER 0 makes close()
    discard it and reset the connection."""
    sock = transport.get_extra_info("socket")
    if sock is not None and not transport.is_closing():
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
