"""The order conversation live (`orderMessages`) over graphql-transport-ws against real
uvicorn processes: only messages, the status streams without them, resuming from a
cursor, another buyer refused, and a message sent through a second process."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from gql.transport.exceptions import TransportQueryError

from models import messages
from tests import factories
from tests.api import Server, gid, start_server, wait_ready
from tests.test_live import (
    SUBSCRIBE_ORDER,
    _collect,
    _note,
    _subscribed,
    postgres_only,
    quick_server,
)

pytest_plugins = ("tests.api_plugin",)
__all__ = ["quick_server"]  # the fixture, shared with test_live

SUBSCRIBE_MESSAGES = """subscription($id: ID!, $after: String) {
  orderMessages(orderId: $id, after: $after) {
    cursor message { body authorRole order { id } } } }"""
SEND = """mutation($id: ID!, $body: String!) {
  sendOrderMessage(input: {orderId: $id, body: $body}) { errors { code } } }"""


def bodies(got: list[dict[str, Any]]) -> list[str]:
    return [g["orderMessages"]["message"]["body"] for g in got]


async def test_messages_from_the_other_party_arrive_and_no_status_events(
    quick_server: Server,
) -> None:
    b, s, order = await factories.confirmed_order()
    variables = {"id": gid("Order", order.id)}
    task = asyncio.create_task(_collect(quick_server, b.token, SUBSCRIBE_MESSAGES, variables, 2))
    await _subscribed(quick_server, task)
    await messages.send_message(s.principal, order.id, "Shipping Friday")
    await _note(order.id, "a status event")
    await messages.send_message(s.principal, order.id, "Tracking to follow")
    got = await task
    assert bodies(got) == ["Shipping Friday", "Tracking to follow"]
    assert got[0]["orderMessages"]["message"]["authorRole"] == "SUPPLIER"
    assert got[0]["orderMessages"]["message"]["order"] == {"id": gid("Order", order.id)}


async def test_order_status_streams_do_not_carry_messages(quick_server: Server) -> None:
    b, s, order = await factories.confirmed_order()
    variables = {"id": gid("Order", order.id)}
    task = asyncio.create_task(_collect(quick_server, b.token, SUBSCRIBE_ORDER, variables, 2))
    await _subscribed(quick_server, task)
    await messages.send_message(s.principal, order.id, "not an event")
    await _note(order.id, "first")
    await messages.send_message(b.principal, order.id, "nor this")
    await _note(order.id, "second")
    got = await task
    assert [g["orderStatusChanged"]["event"]["reason"] for g in got] == ["first", "second"]


async def test_reconnecting_with_the_last_cursor_gets_exactly_what_was_missed(
    quick_server: Server,
) -> None:
    b, s, order = await factories.confirmed_order()
    variables: dict[str, Any] = {"id": gid("Order", order.id)}
    task = asyncio.create_task(_collect(quick_server, b.token, SUBSCRIBE_MESSAGES, variables, 2))
    await _subscribed(quick_server, task)
    for n in range(2):
        await messages.send_message(s.principal, order.id, str(n))
    first = await task
    for n in range(2, 5):  # while the buyer is away (a status event among them)
        await messages.send_message(s.principal, order.id, str(n))
        await _note(order.id, f"event {n}")
    variables["after"] = first[-1]["orderMessages"]["cursor"]
    task = asyncio.create_task(_collect(quick_server, b.token, SUBSCRIBE_MESSAGES, variables, 4))
    await _subscribed(quick_server, task)
    await messages.send_message(s.principal, order.id, "5")
    again = await task
    assert bodies(first + again) == [str(n) for n in range(6)]


async def test_another_buyer_gets_an_error_and_nothing(quick_server: Server) -> None:
    _, s, order = await factories.confirmed_order()
    stranger = await factories.buyer()
    variables = {"id": gid("Order", order.id)}
    task = asyncio.create_task(
        _collect(quick_server, stranger.token, SUBSCRIBE_MESSAGES, variables, 1)
    )
    await asyncio.sleep(0.5)
    await messages.send_message(s.principal, order.id, "private")
    with pytest.raises(TransportQueryError) as e:
        await task
    assert e.value.errors and e.value.errors[0]["extensions"]["code"] == "NOT_FOUND"
    assert "private" not in str(e.value)


@postgres_only
async def test_a_message_sent_through_another_process_arrives(quick_server: Server) -> None:
    other = start_server()
    try:
        assert wait_ready(other), other.stop()
        b, s, order = await factories.confirmed_order()
        variables = {"id": gid("Order", order.id)}
        task = asyncio.create_task(
            _collect(quick_server, b.token, SUBSCRIBE_MESSAGES, variables, 2)
        )
        await _subscribed(quick_server, task)
        async with httpx.AsyncClient(base_url=other.base) as client:
            for body in ("first", "second"):
                response = await client.post(
                    "/graphql",
                    json={"query": SEND, "variables": {"id": gid("Order", order.id), "body": body}},
                    headers={"Authorization": f"Bearer {s.token}"},
                )
                assert response.json()["data"]["sendOrderMessage"]["errors"] == [], response.text
        got = await task
        assert bodies(got) == ["first", "second"]
        assert len({g["orderMessages"]["cursor"] for g in got}) == 2
    finally:
        other.stop()
