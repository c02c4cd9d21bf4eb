"""Ids and cursors past the database's key range, and errors inside subscriptions.

Keys are `integer` on PostgreSQL (models.tables.MAX_DB_ID): a larger id from a client must
be answered like any id that names no row (null, NOT_FOUND, INVALID_CURSOR, 404), never
reach the database. An unexpected failure inside a subscription's stream must be masked
as "Internal error." like a resolver's, while coded and input errors stay readable.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from typing import Any

import pytest
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from gql.transport.websockets import WebsocketsTransport
from strawberry import relay
from strawberry.relay import to_base64

from models import feed, live, orders
from models.errors import DomainError, ErrorCode
from models.feed import Position
from models.tables import MAX_DB_ID
from resolvers.context import Context
from resolvers.errors import decode_id, row_id
from resolvers.pagination import decode_cursor
from resolvers.schema import build_schema
from tests import factories
from tests.api import Api, Server, bearer, codes, gid

pytest_plugins = ("tests.api_plugin",)

# Past the key range (int4), past SQLite's INTEGER, and past any 64-bit integer.
TOO_LARGE = [MAX_DB_ID + 1, 2**63, 10**20]
DOWNLOADS = [
    "/inspections/attachments/{}",
    "/complaints/attachments/{}",
    "/disputes/evidence/{}",
    "/orders/messages/attachments/{}",
]
SUBSCRIBE_ORDER = """subscription($id: ID!, $after: String) {
  orderStatusChanged(orderId: $id, after: $after) { cursor event { id } } }"""
SUBSCRIBE_MESSAGES = """subscription($id: ID!) {
  orderMessages(orderId: $id) { cursor message { id } } }"""
SUBSCRIBE_ALL = "subscription($after: String) { orderEvents(after: $after) { cursor } }"
SCHEMA = build_schema()


def evt(tx: int, event_id: int) -> str:
    """A feed cursor as Position.cursor writes it, with any numbers."""
    return base64.urlsafe_b64encode(f"evt:{tx}:{event_id}".encode()).decode()


# --- the bound itself -------------------------------------------------------------------


def test_global_ids_and_cursors_past_the_key_range_name_nothing() -> None:
    assert row_id(str(MAX_DB_ID)) == MAX_DB_ID
    for n in TOO_LARGE:
        assert row_id(str(n)) == -1
        with pytest.raises(DomainError) as e:
            decode_id(relay.GlobalID("Order", str(n)), "Order", "orderId")
        assert (e.value.code, e.value.field) == (ErrorCode.NOT_FOUND, "orderId")
    assert decode_cursor("order", to_base64("order", MAX_DB_ID)) == MAX_DB_ID
    assert Position.parse(evt(2**63 - 1, MAX_DB_ID)) == Position(2**63 - 1, MAX_DB_ID)
    assert Position.parse(feed.START.cursor()) == feed.START


@pytest.mark.parametrize(
    "cursor",
    [evt(-1, 0), evt(0, -1), evt(-(10**20), 0), evt(0, -(10**20)), evt(2**63, 1)]
    + [evt(0, n) for n in TOO_LARGE],
)
def test_feed_positions_out_of_range_are_malformed(cursor: str) -> None:
    with pytest.raises(DomainError) as e:
        Position.parse(cursor)
    assert (e.value.code, e.value.field) == (ErrorCode.INVALID_CURSOR, "after")


# --- over HTTP --------------------------------------------------------------------------


async def test_queries_answer_null_for_ids_past_the_range(api: Api) -> None:
    buyer = await factories.buyer()
    for n in [MAX_DB_ID, *TOO_LARGE]:
        query = """query($order: ID!, $dispute: ID!, $supplier: ID!) {
          order(id: $order) { id } node(id: $dispute) { id } supplier(id: $supplier) { id } }"""
        variables = {
            "order": gid("Order", n),
            "dispute": gid("Dispute", n),
            "supplier": gid("Supplier", n),
        }
        assert await api.data(query, variables, buyer.token) == {
            "order": None,
            "node": None,
            "supplier": None,
        }
        anonymous = "query($id: ID!) { supplier(id: $id) { id } }"
        assert await api.data(anonymous, {"id": gid("Supplier", n)}) == {"supplier": None}


async def test_mutations_answer_not_found_for_ids_past_the_range(api: Api) -> None:
    seller = await factories.supplier()
    confirm = """mutation($id: ID!) {
      confirmOrder(input: {orderId: $id}) { order { id } errors { code field } } }"""
    for n in TOO_LARGE:
        data = await api.data(confirm, {"id": gid("Order", n)}, seller.token)
        assert data["confirmOrder"] == {
            "order": None,
            "errors": [{"code": "NOT_FOUND", "field": "orderId"}],
        }


async def test_id_cursors_past_the_range_are_invalid(api: Api) -> None:
    buyer = await factories.buyer()
    query = "query($after: String) { orders(after: $after) { edges { cursor } } }"
    last = to_base64("order", MAX_DB_ID)
    assert await api.data(query, {"after": last}, buyer.token) == {"orders": {"edges": []}}
    for n in TOO_LARGE:
        errors = await api.errors(query, {"after": to_base64("order", n)}, buyer.token)
        assert codes(errors) == ["INVALID_CURSOR"]


@pytest.mark.parametrize("route", DOWNLOADS)
async def test_downloads_past_the_range_are_not_found(api: Api, route: str) -> None:
    buyer = await factories.buyer()
    missing = await api.http("GET", route.format(12345), headers=bearer(buyer.token))
    assert missing.status_code == 404
    # Past 4,300 digits Python refuses to read the number: that was a 500 from routing.
    for n in [MAX_DB_ID, *TOO_LARGE, "9" * 5000, "12a", "-1", "\u00b2"]:
        got = await api.http("GET", route.format(n), headers=bearer(buyer.token))
        assert (got.status_code, got.json()) == (404, missing.json())


# --- subscriptions, in process ----------------------------------------------------------


async def _first(
    principal: Any, query: str, variables: dict[str, Any], *, hub_at: Position | None = None
) -> Any:
    """The first result of a subscription run in process; None if nothing came soon."""
    hub = live.Hub(dsn=None)
    hub.position = await feed.head() if hub_at is None else hub_at
    context = Context(principal=principal, cache=False, live=hub)
    stream: Any = await SCHEMA.subscribe(query, variables, context_value=context)
    if not hasattr(stream, "__anext__"):
        return stream  # refused before the stream started
    try:
        async with asyncio.timeout(1):
            return await anext(stream)
    except TimeoutError:
        return None
    finally:
        await stream.aclose()


def _errors(result: Any) -> list[tuple[str, str | None]]:
    return [(e.message, (e.extensions or {}).get("code")) for e in result.errors or []]


async def test_subscribing_to_an_order_past_the_range_is_not_found() -> None:
    buyer = await factories.buyer()
    for query in (SUBSCRIBE_ORDER, SUBSCRIBE_MESSAGES):
        for n in TOO_LARGE:
            result = await _first(buyer.principal, query, {"id": gid("Order", n)})
            assert _errors(result) == [("not a Order id", "NOT_FOUND")]


async def test_feed_cursors_out_of_range_or_ahead_of_the_feed_are_invalid() -> None:
    buyer, _, order = await factories.confirmed_order()
    head = await feed.head()
    ahead = [Position(head.tx, head.id + 1), Position(2**63 - 1, 1)]
    refused = [evt(-1, 0), evt(-(10**20), 0), evt(0, -(10**20)), evt(0, MAX_DB_ID + 1)]
    for cursor in refused + [p.cursor() for p in ahead]:
        for query, variables in [
            (SUBSCRIBE_ALL, {"after": cursor}),
            (SUBSCRIBE_ORDER, {"id": gid("Order", order.id), "after": cursor}),
        ]:
            result = await _first(buyer.principal, query, variables)
            assert _errors(result) == [("not a cursor this feed handed out", "INVALID_CURSOR")]


async def test_cursors_handed_out_are_accepted_even_ahead_of_this_processs_reader() -> None:
    buyer, _, order = await factories.confirmed_order()
    head = await feed.head()
    variables = {"id": gid("Order", order.id), "after": head.cursor()}
    # Another process handed out `head` before this one's reader got there.
    assert await _first(buyer.principal, SUBSCRIBE_ORDER, variables, hub_at=feed.START) is None
    variables["after"] = feed.START.cursor()  # from the start: the order's history
    replayed = await _first(buyer.principal, SUBSCRIBE_ORDER, variables)
    assert replayed.errors is None and replayed.data["orderStatusChanged"]["cursor"]


async def test_unexpected_errors_in_a_subscription_are_masked_and_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    buyer, _, order = await factories.confirmed_order()

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("value out of int32 range: internal detail")

    monkeypatch.setattr(orders, "get_orders", broken)
    with caplog.at_level(logging.ERROR):
        result = await _first(buyer.principal, SUBSCRIBE_ORDER, {"id": gid("Order", order.id)})
    assert _errors(result) == [("Internal error.", "INTERNAL_SERVER_ERROR")]
    assert "internal detail" in caplog.text  # kept for the operator


async def test_input_and_coded_errors_of_subscriptions_stay_readable() -> None:
    buyer = await factories.buyer()
    no_id = await _first(buyer.principal, SUBSCRIBE_ORDER, {"id": None})
    assert "'$id'" in no_id.errors[0].message  # variable coercion
    unknown = await _first(buyer.principal, "subscription { orderEvents { nope } }", {})
    assert "nope" in unknown.errors[0].message  # validation
    anonymous = await _first(None, SUBSCRIBE_ALL, {})
    assert [code for _, code in _errors(anonymous)] == ["UNAUTHENTICATED"]


# --- over a real WebSocket --------------------------------------------------------------


async def _ws_errors(server: Server, token: str, query: str, variables: dict[str, Any]) -> Any:
    transport = WebsocketsTransport(
        url=server.ws_url,
        init_payload={"Authorization": f"Bearer {token}"},
        connect_timeout=5,
        ack_timeout=5,
    )
    with pytest.raises(TransportQueryError) as refused:
        async with Client(transport=transport) as session, asyncio.timeout(10):
            async for _ in session.subscribe(GraphQLRequest(query, variable_values=variables)):
                break
    return refused.value.errors


async def test_over_a_websocket_ids_and_cursors_past_the_range_are_refused_by_code(
    live_server: Server,
) -> None:
    buyer = await factories.buyer()
    for n in TOO_LARGE:
        variables = {"id": gid("Order", n)}
        for query in (SUBSCRIBE_ORDER, SUBSCRIBE_MESSAGES):
            errors = await _ws_errors(live_server, buyer.token, query, variables)
            assert [(e["message"], e["extensions"]["code"]) for e in errors] == [
                ("not a Order id", "NOT_FOUND")
            ]
    for cursor in (evt(-(10**20), 0), evt(0, -(10**20)), evt(0, MAX_DB_ID + 1)):
        errors = await _ws_errors(live_server, buyer.token, SUBSCRIBE_ALL, {"after": cursor})
        assert [e["extensions"]["code"] for e in errors] == ["INVALID_CURSOR"]
