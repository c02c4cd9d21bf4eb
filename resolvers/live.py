"""Subscriptions: order events and the order conversation live, resumable from a cursor
without gap or duplicate. Messages travel the same feed as events (models.messages): one
stream takes only them, the others leave them out."""

import asyncio
import contextlib
import functools
from collections.abc import AsyncGenerator, Hashable
from typing import Annotated, Any

import strawberry
from graphql import GraphQLError
from strawberry import relay
from strawberry.types.nodes import SelectedField

from models import db, feed, messages, orders
from models.accounts import AuthError, Principal
from models.errors import DomainError
from models.feed import FeedEvent, Position
from models.live import Hub, TooFarBehind
from resolvers.context import Info
from resolvers.errors import decode_id
from resolvers.messages import OrderMessage
from resolvers.orders import Order, OrderEvent

# WebSocket close code for a subscriber cut off for falling too far behind (4000-4999 are
# the application's; graphql-transport-ws uses 44xx for its own).
CLOSE_TOO_SLOW = 4008


@strawberry.type(description="An order event as it happens. Resume with `after: cursor`.")
class LiveOrderEvent:
    cursor: str = strawberry.field(
        description="This event's place in the feed: subscribe with `after` set to it to "
        "get only what came after."
    )
    event: OrderEvent = strawberry.field(
        description="What happened, as in the order's `events` timeline."
    )
    # The order, or why it could not be read (a field error, as from any resolver).
    fresh_order: strawberry.Private[Order | Exception | None]
    # Subscribers with equal keys get one shared result (resolvers/shared_results.py).
    share_key: strawberry.Private[Hashable]

    @strawberry.field(description="The order as it is now (read when the event is sent).")
    def order(self) -> Order | None:
        # Read before the event is yielded (`_event`), so that this field resolves
        # synchronously: an async resolver sends every subscriber's result down
        # graphql-core's much slower awaitable path.
        if isinstance(self.fresh_order, Exception):  # shared: raise a new one per result
            raise RuntimeError("reading the order failed") from self.fresh_order
        return self.fresh_order


async def _event(e: FeedEvent, principal: Principal, with_order: bool) -> LiveOrderEvent:
    key = (e.position, orders.visibility_key(principal), with_order)
    made = _events.get(key)
    if made is None:
        made = asyncio.ensure_future(_make_event(e, principal, with_order))
        _events[key] = made
        asyncio.get_running_loop().call_later(SHARE_ORDER_READ_S, _events.pop, key, None)
    if made.done():
        return made.result()
    # shield: a subscriber that leaves must not cancel the read the others wait for.
    return await asyncio.shield(made)


async def _make_event(e: FeedEvent, principal: Principal, with_order: bool) -> LiveOrderEvent:
    order: Order | Exception | None = None
    if with_order:
        try:
            order = await db.riding_out_outages(
                lambda: _read_order(principal, e.event.order), patience=LIVE_READ_PATIENCE_S
            )
        except Exception as error:
            order = error
    return LiveOrderEvent(
        cursor=e.position.cursor(),
        event=OrderEvent.of(e.event),
        fresh_order=order,
        share_key=(e.position, orders.visibility_key(principal)),
    )


def _selects_order(info: Info) -> bool:
    """Whether the subscription asks for `order` (fragments: assumed so)."""
    selects = any(
        not isinstance(field, SelectedField) or field.name == "order"
        for root in info.selected_fields
        for field in root.selections
    )
    # `info` lives as long as the subscription: drop the cached selections (about 1 KiB,
    # times thousands of subscribers).
    vars(info).pop("selected_fields", None)
    return selects


# One event goes to thousands of subscribers at once, mostly of the same companies: they
# share one read of the order and one LiveOrderEvent per event and per visibility (what
# `orders.visibility` depends on), made after the event committed. It is shared for
# SHARE_ORDER_READ_S at most, so no subscriber gets an order older than that.
SHARE_ORDER_READ_S = 1.0
# An event is sent once: a payload read that meets the database away (a failover, a
# restart) is tried again this long before the event goes out with a TRY_AGAIN field error.
LIVE_READ_PATIENCE_S = 10.0
_events: dict[Hashable, asyncio.Future[LiveOrderEvent]] = {}


async def _read_order(principal: Principal, order_id: int) -> Order | None:
    found = (await orders.get_orders(principal, [order_id])).get(order_id)
    return Order.of(found) if found is not None else None


@strawberry.type(description="A message of an order's conversation as it is sent.")
class LiveOrderMessage:
    cursor: str = strawberry.field(
        description="Its place in the feed: subscribe with `after` set to it to get only "
        "what came after."
    )
    event_id: strawberry.Private[int]
    share_key: strawberry.Private[Hashable]

    @strawberry.field(description="The message.")
    async def message(self, info: Info) -> OrderMessage:
        found = await db.riding_out_outages(
            lambda: messages.by_events([self.event_id]), patience=LIVE_READ_PATIENCE_S
        )
        return OrderMessage.of(found[self.event_id])  # written with its event

    @classmethod
    def of(cls, e: FeedEvent, principal: Principal) -> "LiveOrderMessage":
        return cls(
            cursor=e.position.cursor(),
            event_id=e.event.id,
            share_key=(e.position, orders.visibility_key(principal)),
        )


def _error(message: str, code: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code})


def _cut_off(websocket: Any) -> None:
    """Close the connection of a subscriber that stopped reading (in the background: the
    hub must not wait on a slow client)."""
    if websocket is not None and hasattr(websocket, "close"):
        task = asyncio.get_running_loop().create_task(_close_or_drop(websocket))
        _closing.add(task)
        task.add_done_callback(_closing.discard)


# The server's ASGI layer puts a callable here that drops the TCP connection at once
# (server.ws_limits.ExposeAbort); ASGI itself has no such message.
ABORT_SCOPE_KEY = "ta.abort_connection"
CUT_OFF_GRACE_S = 5.0


async def _close_or_drop(websocket: Any) -> None:
    """Send close 4008; drop the connection if it is still there after CUT_OFF_GRACE_S.
    The close frame queues behind everything the client has not read: one that stopped
    reading never takes it, the send waits for the socket to drain, and a plain close
    would wait to flush forever, holding the connection and its buffers."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CUT_OFF_GRACE_S
    with contextlib.suppress(Exception):
        async with asyncio.timeout_at(deadline):
            await websocket.close(
                code=CLOSE_TOO_SLOW, reason="too far behind; resume from your cursor"
            )
    await asyncio.sleep(max(0.0, deadline - loop.time()))  # time to read up to the close
    abort = getattr(websocket, "scope", {}).get(ABORT_SCOPE_KEY)
    if abort is not None:
        abort()  # a no-op if the connection has ended meanwhile


_closing: set[asyncio.Task[None]] = set()


async def _stream(
    info: Info, order_id: int | None, after: str | None, *, messages: bool = False
) -> AsyncGenerator[FeedEvent, None]:
    """The feed's events (or, with `messages`, only the conversation's) for one order or
    all the viewer may see (models.live.Hub.stream); how they end: `_ended`. Returned,
    not wrapped in a generator of ours: one more per subscriber costs 0.5 KiB at 10,000
    (bench fanout)."""
    principal = info.context.require_principal()
    hub: Hub | None = info.context.live
    if hub is None:
        raise _error("subscriptions are not available on this server", "UNAVAILABLE")
    try:
        start = Position.parse(after) if after is not None else None
        if start is not None and start > hub.position:  # rare: no read for a usual resume
            await feed.refuse_ahead(start)
    except DomainError as error:
        raise _error(error.message, error.code.value) from error
    if order_id is not None and order_id not in await orders.get_orders(principal, [order_id]):
        raise _error("no such order", "NOT_FOUND")
    on_overflow = functools.partial(_cut_off, info.context.request)
    return hub.stream(principal, order_id, start, messages=messages, on_overflow=on_overflow)


_ENDINGS = (AuthError, TooFarBehind)


def _ended(error: AuthError | TooFarBehind) -> GraphQLError:
    """A stream's end (its credential went bad, or it fell behind) as a GraphQL error."""
    if isinstance(error, AuthError):
        return _error(str(error), error.code)
    return _error("too far behind: resume from your last cursor", "TOO_SLOW")


# A stream's `after`: not a page's (resolvers.conventions.AFTER), where null is the start.
LIVE_AFTER = (
    "The `cursor` of the last item you received: first what you missed after it, then live "
    "ones. Null: only what happens from now on (to show an order and follow it without a "
    "gap, subscribe first, then query it; an item may then come in both: match them by `id`)."
)
After = Annotated[str | None, strawberry.argument(description=LIVE_AFTER)]


@strawberry.type
class LiveSubscriptions:
    @strawberry.subscription(
        description="Every event of one order from now on, or after the cursor `after`."
    )
    async def order_status_changed(
        self, info: Info, order_id: relay.GlobalID, after: After = None
    ) -> AsyncGenerator[LiveOrderEvent, None]:
        try:
            order = decode_id(order_id, "Order", "orderId")
        except DomainError as e:
            raise _error(e.message, e.code.value) from e
        principal, with_order = info.context.require_principal(), _selects_order(info)
        try:
            async for event in await _stream(info, order, after):
                yield await _event(event, principal, with_order)
        except _ENDINGS as error:
            raise _ended(error) from error

    @strawberry.subscription(
        description="Every event of every order you may see (mediators: all), from now on "
        "or after the cursor `after`."
    )
    async def order_events(
        self, info: Info, after: After = None
    ) -> AsyncGenerator[LiveOrderEvent, None]:
        principal, with_order = info.context.require_principal(), _selects_order(info)
        try:
            async for event in await _stream(info, None, after):
                yield await _event(event, principal, with_order)
        except _ENDINGS as error:
            raise _ended(error) from error

    @strawberry.subscription(
        description="The messages of one order's conversation from now on, or after the "
        "cursor `after`; no other order events. The order's buyer, supplier and mediators."
    )
    async def order_messages(
        self, info: Info, order_id: relay.GlobalID, after: After = None
    ) -> AsyncGenerator[LiveOrderMessage, None]:
        try:
            order = decode_id(order_id, "Order", "orderId")
        except DomainError as e:
            raise _error(e.message, e.code.value) from e
        principal = info.context.require_principal()
        try:
            async for event in await _stream(info, order, after, messages=True):
                yield LiveOrderMessage.of(event, principal)
        except _ENDINGS as error:
            raise _ended(error) from error
