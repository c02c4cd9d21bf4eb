"""graphql-transport-ws as Strawberry speaks it, lighter for thousands of live subscribers:
a shared result's `next` payload is encoded once, and a connection keeps nothing of its
finished connection_init timer."""

from __future__ import annotations

import json
from typing import Any

from starlette.websockets import WebSocketDisconnect
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    Message,
)

from resolvers.context import Context
from server import json_codec

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
        await super().handle_connection_init(message)
        timer = self.connection_init_timeout_task
        if timer is not None:
            # Cancelled above: once done it holds its CancelledError, whose traceback
            # holds two frames, for as long as the connection lives.
            timer.add_done_callback(self._forget_timer)

    def _forget_timer(self, _: Any) -> None:
        self.connection_init_timeout_task = None

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
