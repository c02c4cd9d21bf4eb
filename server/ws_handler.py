"""graphql-transport-ws as Strawberry speaks it, with the gateway's rules and lighter for
thousands of live subscribers: a refused connection is closed with its reason; every
operation is charged to the caller's rate limit and runs only while the connection's
credential still holds; a shared result's `next` payload is encoded once, and a
connection keeps nothing of its finished connection_init timer."""

from __future__ import annotations

import json
from typing import Any, Protocol, cast

from graphql import GraphQLError, GraphQLFormattedError
from starlette.websockets import WebSocketDisconnect
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    Message,
    SubscribeMessage,
)

from models import accounts, db
from resolvers.context import Context
from server import json_codec
from server.rate_limit import RateLimiter, over_limit
from server.responses import DATABASE_AWAY

# Close codes (README, "Live order events"); the reason is the error code.
CLOSE_TRY_AGAIN = 1013  # the database is away for a moment
CLOSE_FORBIDDEN = 4403  # the protocol's Forbidden: the credential is refused
# Not 4429: graphql-transport-ws uses that for a second connection_init (its codes are
# 44xx; 4000-4999 are otherwise the application's, as resolvers.live's 4008).
CLOSE_TOO_MANY_CONNECTIONS = 4029
MAX_REASON_BYTES = 123  # a close frame's reason (RFC 6455)


class Refused(Exception):
    """Ends a connection with `close_code` and `code` (TOKEN_EXPIRED, TOO_MANY_CONNECTIONS,
    ...) as the close reason. Not a ConnectionRejectionError: Strawberry's handler catches
    those and closes with a bare 4403 "Forbidden", so every refusal looked alike."""

    def __init__(self, close_code: int, code: str, message: str) -> None:
        super().__init__(message)
        self.close_code = close_code
        self.code = code


class _Gateway(Protocol):
    limiter: RateLimiter | None  # server.app.GatewayGraphQL's, shared with HTTP's AuthGate


def _error(message: str, code: str, **details: object) -> list[GraphQLFormattedError]:
    """An `error` message's payload: the shape of an HTTP refusal's `errors`."""
    return [GraphQLError(message, extensions={"code": code, **details}).formatted]


# Subscribers of one event with equal share keys get the very same `data` object
# (resolvers/shared_results.py): its JSON is kept here, by identity, for the last few
# results (holding the object, so its id is not reused meanwhile). Few: a fan-out's
# recipients are sent one event's few shared results in a burst, and a payload can be
# large (an order with its whole timeline); 256 held about 30 MB in
# tests/test_live_backpressure.py.
_RECENT = 16
_encoded: dict[int, tuple[object, str]] = {}


def _payload_json(data: object) -> str:
    hit = _encoded.get(id(data))
    if hit is not None and hit[0] is data:
        return hit[1]
    text = json_codec.dumps({"data": data}).decode()
    _encoded[id(data)] = (data, text)
    if len(_encoded) > _RECENT:
        del _encoded[next(iter(_encoded))]  # the oldest
    return text


class TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        try:
            await super().handle_connection_init(message)  # the view's on_ws_connect
        except Refused as refusal:
            await self._close(refusal)
            return
        timer = self.connection_init_timeout_task
        if timer is not None:
            # Cancelled above: once done it holds its CancelledError, whose traceback
            # holds two frames, for as long as the connection lives.
            timer.add_done_callback(self._forget_timer)

    def _forget_timer(self, _: Any) -> None:
        self.connection_init_timeout_task = None

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        # Strawberry's own refusals (no connection_ack yet, a duplicate id) go first.
        if self.connection_acknowledged and message["id"] not in self.operations:
            if not await self._admit(message["id"]):
                return
        await super().handle_subscribe(message)

    async def _admit(self, operation_id: str) -> bool:
        """Whether the operation may run: within the caller's request rate (the HTTP
        gate's budget), and the connection's credential still good. connection_init
        checked it once; a socket lives on past a logout, a revoked key, an expiry or a
        disabled user. Refused: an `error` for the operation; a bad credential also ends
        the connection, since every later operation would be refused too."""
        principal = self.context.principal
        limiter = cast(_Gateway, self.view).limiter
        if limiter is not None:
            client = self.context.request.scope.get("client")
            wait = limiter.take(principal, client[0] if client else None)
            if wait:
                seconds, message = over_limit(wait)
                await self._refuse(
                    operation_id, _error(message, "RATE_LIMITED", retryAfterSeconds=seconds)
                )
                return False
        if principal is None:
            return True
        try:
            failed = (await accounts.recheck([principal])).get(principal)
        except Exception as e:
            if not db.is_transient(e):
                raise
            await self._refuse(operation_id, _error(DATABASE_AWAY, "TRY_AGAIN"))
            return False
        if failed is None:
            return True
        # What a subscription gets when its credential goes bad mid-stream (resolvers.live),
        # then the close a connection_init with this credential gets.
        await self._refuse(operation_id, _error(str(failed), failed.code))
        await self._close(Refused(CLOSE_FORBIDDEN, failed.code, str(failed)))
        return False

    async def _refuse(self, operation_id: str, errors: list[GraphQLFormattedError]) -> None:
        await self.send_message({"id": operation_id, "type": "error", "payload": errors})

    async def _close(self, refusal: Refused) -> None:
        reason = refusal.code.encode()[:MAX_REASON_BYTES].decode(errors="ignore")
        await self.websocket.close(code=refusal.close_code, reason=reason)

    async def send_message(self, message: Message) -> None:
        payload: Any = message.get("payload")
        if message["type"] != "next" or not isinstance(payload, dict) or payload.keys() != {"data"}:
            await super().send_message(message)
            return
        # The same bytes as json.dumps(message, separators=(",", ":")) (the view's
        # encode_json), with the payload's part shared.
        text = (
            f'{{"id":{json.dumps(message["id"])},"type":"next",'
            f'"payload":{_payload_json(payload["data"])}}}'
        )
        try:
            await self.websocket.ws.send_text(text)  # type: ignore[attr-defined]
        except WebSocketDisconnect as exc:
            raise WebSocketDisconnected from exc
