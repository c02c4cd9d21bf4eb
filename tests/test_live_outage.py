"""A live event's payload read meeting the database away (a failover, a restart): it is
tried again, and only an outage longer than the patience leaves the event's `order` null,
with TRY_AGAIN rather than "Internal error." (a CI run caught this against a real cut,
tests/test_db_restart.py; here the failure is injected, so it lands on that read)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from models import feed
from resolvers import live as live_resolvers
from resolvers import shared_results
from resolvers.schema import build_schema
from tests import factories
from tests.api import gid
from tests.test_live import _note, running_hub, subscribed
from tests.test_live_sharing import _subscribe


def _away_for(reads: int, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The next `reads` order reads of live payloads fail as a cut connection does."""
    real, failed = live_resolvers._read_order, list[int]()

    async def cut(*args: Any) -> Any:
        if len(failed) < reads:
            failed.append(1)
            raise ConnectionResetError("the database connection was cut")
        return await real(*args)

    monkeypatch.setattr(live_resolvers, "_read_order", cut)
    # Nothing shared from an earlier test (SQLite's positions repeat once it is emptied).
    monkeypatch.setattr(live_resolvers, "_events", {})
    monkeypatch.setattr(shared_results, "_shared", {})
    return failed


async def _first_event(order_id: int, principal: Any) -> Any:
    async with running_hub() as hub:
        now = (await feed.head()).cursor()
        stream = await _subscribe(build_schema(), hub, principal, order_id, now)
        first = asyncio.ensure_future(anext(stream))
        await subscribed(hub, 1)
        await _note(order_id, "during")
        async with asyncio.timeout(30):
            result = await first
        await stream.aclose()
    return result


async def test_an_order_read_meeting_the_database_away_is_tried_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    b, _, order = await factories.confirmed_order()
    failed = _away_for(2, monkeypatch)
    result = await _first_event(order.id, b.principal)
    assert result.errors is None, result.errors
    event = result.data["orderStatusChanged"]
    assert event["event"]["reason"] == "during"
    assert event["order"] == {"id": gid("Order", order.id), "status": "AWAITING_INITIAL_PAYMENT"}
    assert len(failed) == 2


async def test_an_outage_longer_than_the_patience_sends_the_event_with_try_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    b, _, order = await factories.confirmed_order()
    monkeypatch.setattr(live_resolvers, "LIVE_READ_PATIENCE_S", 0.3)
    _away_for(1000, monkeypatch)
    result = await _first_event(order.id, b.principal)
    assert result.data["orderStatusChanged"]["event"]["reason"] == "during"
    assert result.data["orderStatusChanged"]["order"] is None
    [error] = result.errors
    assert error.path == ["orderStatusChanged", "order"]
    assert error.extensions["code"] == "TRY_AGAIN", error
