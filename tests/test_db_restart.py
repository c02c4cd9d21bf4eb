"""PostgreSQL going away under load (every connection of the gateway's database cut, as
a restart or a failover does): requests caught in it are told TRY_AGAIN, the pool
reconnects by itself, and live subscriptions go on from where they were."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import httpx
import pytest

from models import feed
from tests import factories
from tests.api import bearer, gid, serving
from tests.conftest import ENGINE, TEST_DATABASE_URL
from tests.test_live import SUBSCRIBE_ORDER, _collect, _note

pytestmark = pytest.mark.skipif(ENGINE != "postgres", reason="PostgreSQL's connections")

ORDER = "query($id: ID!) { order(id: $id) { status } }"


async def _cut_every_connection_but_ours(holder: asyncpg.Connection) -> int:
    cut: int = await holder.fetchval(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    return cut


async def test_the_gateway_survives_its_database_connections_being_cut() -> None:
    b, _, order = await factories.confirmed_order()
    body = {"query": ORDER, "variables": {"id": gid("Order", order.id)}}
    with serving(TA_LIVE_POLL_SECONDS="0.05", TA_PG_POOL_MIN="4") as server:
        answers: list[dict[str, Any]] = []
        stop = asyncio.Event()

        async def load(client: httpx.AsyncClient) -> None:
            while not stop.is_set():
                response = await client.post("/graphql", json=body, headers=bearer(b.token))
                assert response.status_code == 200, response.text
                answers.append(response.json())

        holder = await asyncpg.connect(TEST_DATABASE_URL)
        try:
            async with httpx.AsyncClient(base_url=server.base, timeout=20) as client:
                variables = {"id": gid("Order", order.id), "after": (await feed.head()).cursor()}
                follower = asyncio.create_task(
                    _collect(server, b.token, SUBSCRIBE_ORDER, variables, 2)
                )
                workers = [asyncio.create_task(load(client)) for _ in range(4)]
                while len(answers) < 20:  # noqa: ASYNC110 - counting answers
                    await asyncio.sleep(0.05)
                await _note(order.id, "before")
                cut = await _cut_every_connection_but_ours(holder)
                assert cut >= 1
                seen = len(answers)
                while len(answers) < seen + 50:  # noqa: ASYNC110 - the load goes on after the cut
                    await asyncio.sleep(0.05)
                await _note(order.id, "after")
                events = [e["orderStatusChanged"]["event"]["reason"] for e in await follower]
                stop.set()
                await asyncio.gather(*workers)
        finally:
            await holder.close()
    failed = [a for a in answers if "errors" in a]
    codes = [a["errors"][0].get("extensions", {}).get("code") for a in failed]
    assert all(code == "TRY_AGAIN" for code in codes), failed[:3]
    assert answers[-1] == {"data": {"order": {"status": "AWAITING_INITIAL_PAYMENT"}}}
    assert events == ["before", "after"]
