"""Live results shared between subscribers alike (resolvers/shared_results.py): one
execution per event, operation and visibility; never across visibilities."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

import pytest
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from models import feed
from models.accounts import Principal
from models.live import Hub
from resolvers.context import Context
from resolvers.schema import build_schema
from tests import factories
from tests.api import gid
from tests.test_live import SUBSCRIBE_ORDER, _note, running_hub, subscribed

QUERY = SUBSCRIBE_ORDER


async def _subscribe(schema: Any, hub: Hub, principal: Principal, order_id: int, after: str) -> Any:
    context = Context(principal=principal, cache=False, live=hub)
    variables = {"id": gid("Order", order_id), "after": after}
    stream = await schema.subscribe(QUERY, variable_values=variables, context_value=context)
    assert isinstance(stream, AsyncGenerator), stream
    return stream


async def _next(stream: Any) -> dict[str, Any]:
    async with asyncio.timeout(30):
        result = await anext(stream)
    assert result.errors is None, result.errors
    data: dict[str, Any] = result.data["orderStatusChanged"]
    return data


async def test_alike_subscribers_share_an_execution_and_others_get_their_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    b, s, order = await factories.confirmed_order()
    runs: list[int] = []
    original = StrawberryGraphQLCoreExecutionContext.execute_operation

    def counted(self: Any, serially: bool | None = None) -> Any:
        runs.append(1)
        return original(self, serially)

    monkeypatch.setattr(StrawberryGraphQLCoreExecutionContext, "execute_operation", counted)
    schema = build_schema()
    async with running_hub() as hub:
        # From a cursor taken now: the note below is theirs whenever each stream starts
        # ("from now on" would race with a stream still starting).
        now = (await feed.head()).cursor()
        buyers = [await _subscribe(schema, hub, b.principal, order.id, now) for _ in range(3)]
        supplier = await _subscribe(schema, hub, s.principal, order.id, now)
        pending = [asyncio.ensure_future(_next(st)) for st in [*buyers, supplier]]
        # Registered with a cursor, a stream awaits the hub at once: the note is live.
        await subscribed(hub, 4)
        await _note(order.id, "shared")
        got = [await p for p in pending]
        for st in [*buyers, supplier]:
            await st.aclose()
    assert got[0] == got[1] == got[2]
    assert got[0]["event"]["reason"] == "shared"
    assert got[0]["order"] == {"id": gid("Order", order.id), "status": "AWAITING_INITIAL_PAYMENT"}
    # Same event, another visibility (the supplier's company): its own execution.
    assert got[3] == got[0]
    assert len(runs) == 2
