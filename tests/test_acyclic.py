"""A request leaves nothing for the cyclic garbage collector (resolvers/acyclic.py): its
executor, context, DataLoaders and result are freed by reference counting when it ends.
Before, graphql-core's executor held its own bound methods (`info.async_helpers`), so each
order status left 76 objects in a cycle, and the collector's young collections under load
stalled every hundredth request for 6-7 ms."""

from __future__ import annotations

import asyncio
import collections
import gc
import json
from collections.abc import Iterator, MutableMapping
from typing import Any

import pytest
import strawberry
from starlette.applications import Starlette

from resolvers.acyclic import AcyclicExecutionContext
from tests import factories
from tests.api import gid, make_app

STATUS = """query($id: ID!) { order(id: $id) { status supplier { id legalName country }
  money { paid { amount currency } held { amount currency } }
  events { kind oldStatus newStatus actorKind reason at } } }"""
LIST = """query { orders(first: 10) { edges { node { id status buyer { legalName }
  supplier { legalName } payments { amount { amount currency } } } } } }"""
# The first cancels; the ones after it answer a business error (as data).
CANCEL = """mutation($id: ID!) { cancelOrder(input: {orderId: $id, reason: "changed plans"}) {
  order { status } errors { code message } } }"""


async def _post(app: Starlette, token: str, query: str, variables: dict[str, Any]) -> bytes:
    """One POST through the whole ASGI app, with nothing around it that makes cycles of
    its own (an HTTP client would)."""
    raw = json.dumps({"query": query, "variables": variables}).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"gateway.test"),
            (b"content-type", b"application/json"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-length", str(len(raw)).encode()),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("gateway.test", 80),
    }
    body: list[bytes] = []
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}
        await asyncio.Event().wait()  # the client stays connected
        raise AssertionError

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.body":
            body.append(message.get("body", b""))

    await app(scope, receive, send)
    return b"".join(body)


@pytest.fixture
def collector_off() -> Iterator[None]:
    """The cyclic collector off for the test: what it would find is left in place."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.collect()
        gc.enable()


def _forget_cycles() -> None:
    """Free what is in cycles so far (the warm-up's)."""
    gc.set_debug(0)
    gc.garbage.clear()
    gc.collect()


def _cycles_since() -> collections.Counter[str]:
    """What became cyclic garbage since `_forget_cycles`, by type."""
    gc.set_debug(gc.DEBUG_SAVEALL)  # keep what is found, to name it
    gc.collect()
    found = collections.Counter(type(o).__qualname__ for o in gc.garbage)
    _forget_cycles()
    return found


@pytest.mark.usefixtures("collector_off")
async def test_queries_and_mutations_leave_no_cycles() -> None:
    buyer, _, order = await factories.confirmed_order()
    _, _, other = await factories.confirmed_order(buyer_actor=buyer)
    # Without its lifespan, as the other API tests: start-up would open a second database
    # pool (and close the test session's at the end) and freeze the heap.
    app = make_app()
    operations = [
        (STATUS, {"id": gid("Order", order.id)}),
        (LIST, {}),
        (CANCEL, {"id": gid("Order", other.id)}),
    ]
    for query, variables in operations:  # the first time fills caches and plans
        answer = await _post(app, buyer.token, query, variables)
        assert "errors" not in json.loads(answer), answer
    for query, variables in operations:
        _forget_cycles()
        for _ in range(3):
            await _post(app, buyer.token, query, variables)
        assert _cycles_since() == {}, query


@strawberry.type
class _Query:
    @strawberry.field
    async def both(self, info: strawberry.Info) -> list[int]:
        async def one(n: int) -> int:
            await asyncio.sleep(0)
            return n

        helpers = info._raw_info.async_helpers
        kept.append(helpers)
        return await helpers.gather([one(1), one(2)])


kept: list[Any] = []


async def test_the_async_helpers_work_during_the_execution_and_after_it() -> None:
    schema = strawberry.Schema(query=_Query, execution_context_class=AcyclicExecutionContext)
    result = await schema.execute("{ both }")
    assert result.errors is None and result.data == {"both": [1, 2]}
    helpers = kept.pop()  # an Info's helpers keep their executor: they still work
    helpers.track([])
    assert await helpers.gather([asyncio.sleep(0, result=3)]) == [3]
