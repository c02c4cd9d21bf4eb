"""PostgreSQL going away under load: every connection of the gateway's database cut (what
a failover looks like to the gateway), and the server itself restarted. Requests caught
in it are told TRY_AGAIN, the pool reconnects by itself, and live subscriptions go on
from where they were.

The restart is of the whole local PostgreSQL server, so it runs only when asked:
`TA_RESTART_POSTGRES=1` (CI sets it; it needs `pg_ctlcluster` and the rights to use it)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
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
RESTART = os.environ.get("TA_RESTART_POSTGRES") == "1"

ORDER = "query($id: ID!) { order(id: $id) { status } }"


async def _cut_every_connection_but_ours() -> None:
    holder = await asyncpg.connect(TEST_DATABASE_URL)
    try:
        cut = await holder.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await holder.close()
    assert cut >= 1


def _restart_postgresql() -> None:
    """`pg_ctlcluster … restart` (fast: active transactions are rolled back, clients are
    disconnected), then wait until it accepts connections again."""
    version = next(Path("/etc/postgresql").iterdir()).name
    subprocess.run(  # noqa: S603
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],  # noqa: S607
        check=True,
        timeout=120,
    )
    subprocess.run(["pg_isready", "-h", "127.0.0.1", "-t", "60"], check=True, timeout=90)  # noqa: S607


async def _note_when_back(order_id: int, reason: str) -> None:
    """Write an event as soon as the database takes writes again."""
    async with asyncio.timeout(60):
        while True:
            try:
                await _note(order_id, reason)
                return
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                await asyncio.sleep(0.2)


async def _survives(disrupt: Callable[[], Awaitable[None]]) -> None:
    """Load on the gateway and a live subscription while `disrupt` runs: the load goes on
    afterwards, the failures are all TRY_AGAIN, the subscription sees what came before and
    after."""
    b, _, order = await factories.confirmed_order()
    body = {"query": ORDER, "variables": {"id": gid("Order", order.id)}}
    with serving(TA_LIVE_POLL_SECONDS="0.05", TA_PG_POOL_MIN="4") as server:
        answers: list[dict[str, Any]] = []
        stop = asyncio.Event()

        async def load(client: httpx.AsyncClient) -> None:
            while not stop.is_set():
                response = await client.post("/graphql", json=body, headers=bearer(b.token))
                # 503: the credential's look-up itself met the outage (before GraphQL).
                assert response.status_code in (200, 503), response.text
                answers.append(response.json())

        async with httpx.AsyncClient(base_url=server.base, timeout=20) as client:
            variables = {"id": gid("Order", order.id), "after": (await feed.head()).cursor()}
            follower = asyncio.create_task(
                _collect(server, b.token, SUBSCRIBE_ORDER, variables, 2, within=90)
            )
            workers = [asyncio.create_task(load(client)) for _ in range(4)]
            while len(answers) < 20:  # noqa: ASYNC110 - counting answers
                await asyncio.sleep(0.05)
            await _note(order.id, "before")
            await disrupt()
            seen = len(answers)
            async with asyncio.timeout(60):
                while len(answers) < seen + 50:  # noqa: ASYNC110 - the load goes on after
                    await asyncio.sleep(0.05)
            await _note_when_back(order.id, "after")
            try:
                events = [e["orderStatusChanged"]["event"]["reason"] for e in await follower]
            except TimeoutError:
                raise AssertionError(server.output()[-4000:]) from None
            stop.set()
            await asyncio.gather(*workers)
    failed = [a for a in answers if "errors" in a]
    codes = [a["errors"][0].get("extensions", {}).get("code") for a in failed]
    assert all(code == "TRY_AGAIN" for code in codes), failed[:3]
    assert answers[-1] == {"data": {"order": {"status": "AWAITING_INITIAL_PAYMENT"}}}
    assert events == ["before", "after"]


async def test_the_gateway_survives_its_database_connections_being_cut() -> None:
    await _survives(_cut_every_connection_but_ours)


@pytest.mark.skipif(
    not (RESTART and shutil.which("pg_ctlcluster")), reason="TA_RESTART_POSTGRES=1 restarts it"
)
async def test_the_gateway_survives_a_postgresql_restart() -> None:
    await _survives(lambda: asyncio.to_thread(_restart_postgresql))
