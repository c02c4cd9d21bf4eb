"""Graceful shutdown: on SIGTERM a gateway finishes the requests in flight, closes its
WebSocket clients with a proper close code, and exits 0; a subscriber resumes from its
last cursor on another process and misses nothing, repeats nothing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sqlite3
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import websockets

from models import db, orders
from tests import factories
from tests.api import Server, bearer, cli_env, gid, start_server, wait_ready
from tests.conftest import ENGINE
from tests.test_live import SUBSCRIBE_ORDER, _note

CONFIRM = """mutation($id: ID!) {
  confirmOrder(input: {orderId: $id}) { order { status } errors { code } } }"""
# Going away / service restart: the client knows to reconnect (1006 would be a crash).
PROPER_CLOSE = {1001, 1012}
# A clean exit: uvicorn (since 0.29) ends a graceful shutdown by raising the signal it
# caught again, so the process reports "terminated by SIGTERM", as supervisors expect.
CLEAN_EXIT = {0, -signal.SIGTERM}


def _server() -> Server:
    # The reader polls often (on SQLite this test process writes the events); a request
    # waiting for the lock this test holds waits long enough for the test to let go.
    server = start_server(
        cli_env(
            TA_LIVE_POLL_SECONDS="0.05",
            TA_SQLITE_BUSY_TIMEOUT_MS="60000",
            TA_PG_LOCK_TIMEOUT_MS="60000",
        )
    )
    assert wait_ready(server), server.stop()
    return server


@contextlib.asynccontextmanager
async def _locked_database() -> AsyncIterator[None]:
    """Hold the order's lock (PostgreSQL: every row of trade_order; SQLite: the write lock)
    from outside the gateway, so that a write request stays in flight until we let go."""
    if ENGINE == "postgres":
        dsn = str(db.engine().config["dsn"])  # type: ignore[attr-defined]
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("BEGIN")
            await conn.execute("SELECT id FROM trade_order FOR UPDATE")
            yield
            await conn.execute("ROLLBACK")
        finally:
            await conn.close()
    else:
        writer = sqlite3.connect(db.default_sqlite_path(), isolation_level=None)
        try:
            writer.execute("BEGIN IMMEDIATE")
            yield
            writer.execute("ROLLBACK")
        finally:
            writer.close()


async def _waiting_on_lock() -> None:
    """Until the gateway's request waits for the lock (PostgreSQL shows it; SQLite's busy
    wait is invisible from outside, so there a moment has to do)."""
    if ENGINE != "postgres":
        await asyncio.sleep(2.0)
        return
    dsn = str(db.engine().config["dsn"])  # type: ignore[attr-defined]
    conn = await asyncpg.connect(dsn)
    try:
        for _ in range(400):
            if await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND datname = current_database()"
            ):
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the request never waited for the lock")
    finally:
        await conn.close()


async def test_sigterm_finishes_the_request_in_flight_then_exits() -> None:
    buyer, supplier = (
        await factories.buyer(),
        await factories.supplier(trade_assurance_limit_minor=100_000_00),
    )
    order = await orders.create_order(
        buyer.principal, factories.contract(), supplier_id=supplier.supplier_id
    )
    server = _server()
    try:
        async with httpx.AsyncClient(timeout=60) as client:
            async with _locked_database():
                request = asyncio.create_task(
                    client.post(
                        f"{server.base}/graphql",
                        json={"query": CONFIRM, "variables": {"id": gid("Order", order.id)}},
                        headers=bearer(supplier.token),
                    )
                )
                await _waiting_on_lock()
                server.process.terminate()
                await asyncio.sleep(0.5)
                assert server.process.poll() is None  # still finishing the request
            response = await request
        assert response.status_code == 200, response.text
        assert response.json()["data"]["confirmOrder"] == {
            "order": {"status": "AWAITING_INITIAL_PAYMENT"},
            "errors": [],
        }
        assert await asyncio.to_thread(server.process.wait, 30) in CLEAN_EXIT
    finally:
        print(server.stop())


async def _subscribe(server: Server, token: str, variables: dict[str, Any]) -> Any:
    conn = await websockets.connect(
        server.ws_url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")]
    )
    await conn.send(json.dumps({"type": "connection_init", "payload": bearer(token)}))
    assert json.loads(await conn.recv())["type"] == "connection_ack"
    await conn.send(
        json.dumps(
            {"id": "1", "type": "subscribe",
             "payload": {"query": SUBSCRIBE_ORDER, "variables": variables}}
        )
    )  # fmt: skip
    return conn


async def _events(conn: Any, count: int) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    async with asyncio.timeout(20):
        while len(got) < count:
            message = json.loads(await conn.recv())
            assert message["type"] == "next", message
            got.append(message["payload"]["data"]["orderStatusChanged"])
    return got


async def test_sigterm_closes_subscribers_properly_and_they_resume_elsewhere() -> None:
    b, _, order = await factories.confirmed_order()
    variables: dict[str, Any] = {"id": gid("Order", order.id)}
    first = _server()
    try:
        conn = await _subscribe(first, b.token, variables)
        await asyncio.sleep(0.5)  # the subscription is registered with the hub
        await _note(order.id, "0")
        await _note(order.id, "1")
        seen = await _events(conn, 2)
        first.process.terminate()
        async with asyncio.timeout(20):
            with contextlib.suppress(websockets.ConnectionClosed):
                while True:
                    message = json.loads(await conn.recv())
                    assert message["type"] == "complete", message
        assert conn.close_code in PROPER_CLOSE, (conn.close_code, conn.close_reason)
        assert await asyncio.to_thread(first.process.wait, 30) in CLEAN_EXIT
    finally:
        print(first.stop())
    for n in (2, 3):  # while the client is away
        await _note(order.id, str(n))
    second = _server()
    try:
        variables["after"] = seen[-1]["cursor"]
        conn = await _subscribe(second, b.token, variables)
        await asyncio.sleep(0.5)
        await _note(order.id, "4")
        again = await _events(conn, 3)
        await conn.close()
    finally:
        print(second.stop())
    reasons = [e["event"]["reason"] for e in seen + again]
    assert reasons == ["0", "1", "2", "3", "4"]
