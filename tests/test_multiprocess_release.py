"""A hundred concurrent full releases of one order's escrow, over HTTP against real gateway
processes: exactly one moves the money, the other 99 are told nothing is held.

PostgreSQL: two gateway processes share the database, so only the order's row lock (not
anything in one process's memory) can serialise the releases. SQLite: one process (a
SQLite file has one writer at a time; the multi-process deployment is PostgreSQL's)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from models import ledger, payments, provider
from models.enums import PaymentMethod
from models.money import Money
from models.tables import IdempotencyRecord, LedgerPosting, OrderEvent, Payment
from server.payments.sandbox import CARD_SUCCEEDS, SandboxProvider
from tests import factories
from tests.api import Server, bearer, gid, start_server, wait_ready
from tests.conftest import ENGINE

REQUESTS = 100
RELEASE = """mutation($id: ID!, $amount: MoneyInput, $key: String!) {
  releaseFunds(input: {orderId: $id, amount: $amount, idempotencyKey: $key}) {
    released { amount currency } errors { code field } } }"""


@pytest.fixture(scope="module")
def gateways(database: None) -> Iterator[list[Server]]:
    """Two gateway processes on PostgreSQL, one on SQLite, all on the test database."""
    started = [start_server() for _ in range(2 if ENGINE == "postgres" else 1)]
    try:
        for server in started:
            assert wait_ready(server), server.stop()
        yield started
    finally:
        for server in started:
            print(server.stop())  # the gateways' logs, shown when a test fails


@pytest.fixture(autouse=True)
def sandbox() -> None:
    """This process pays the order through the domain, so it needs the provider too."""
    provider.set_provider(SandboxProvider())


async def _fully_paid_order() -> tuple[factories.Actor, int]:
    buyer, _, order = await factories.confirmed_order()
    result = await payments.pay_order(
        buyer.principal,
        order.id,
        Money(3_000_00, "USD"),
        PaymentMethod.CARD,
        idempotency_key="pay-all",
        source=CARD_SUCCEEDS,
    )
    assert result.error is None and result.payment.status == "SUCCEEDED"
    money = (await ledger.order_money([order.id]))[order.id]
    assert (money.paid, money.held) == (3_000_00, 3_000_00)
    return buyer, order.id


async def _release_concurrently(servers: list[Server]) -> None:
    buyer, order_id = await _fully_paid_order()
    postings_before = await LedgerPosting.count()

    async def release(client: httpx.AsyncClient, n: int) -> tuple[int, dict[str, Any]]:
        server = servers[n % len(servers)]
        variables = {
            "id": gid("Order", order_id),
            "amount": {"amount": "3000.00", "currency": "USD"},
            "key": f"release-{n}",
        }
        response = await client.post(
            f"{server.base}/graphql",
            json={"query": RELEASE, "variables": variables},
            headers=bearer(buyer.token),
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert "errors" not in body, body
        return server.port, body["data"]["releaseFunds"]

    limits = httpx.Limits(max_connections=REQUESTS, max_keepalive_connections=REQUESTS)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        answers = await asyncio.gather(*[release(client, n) for n in range(REQUESTS)])

    # Split evenly across the processes.
    ports = [port for port, _ in answers]
    assert sorted({ports.count(s.port) for s in servers}) == [REQUESTS // len(servers)]
    ok = [a for _, a in answers if not a["errors"]]
    refused = [a for _, a in answers if a["errors"]]
    assert ok == [{"released": {"amount": "3000.00", "currency": "USD"}, "errors": []}]
    assert len(refused) == REQUESTS - 1
    assert all(
        a == {"released": None, "errors": [{"code": "INSUFFICIENT_HELD_FUNDS", "field": "amount"}]}
        for a in refused
    ), refused

    # The ledger moved the amount exactly once.
    money = (await ledger.order_money([order_id]))[order_id]
    assert (money.paid, money.held, money.released) == (3_000_00, 0, 3_000_00)
    assert await LedgerPosting.count() == postings_before + 2  # one release, two legs
    assert await ledger.check() == []
    assert (
        await OrderEvent.count().where(
            (OrderEvent.order == order_id) & (OrderEvent.kind == "FUNDS_RELEASED")
        )
        == 1
    )
    assert await IdempotencyRecord.count().where(IdempotencyRecord.operation == "releaseFunds") == 1
    assert await Payment.count() == 1


@pytest.mark.skipif(
    ENGINE != "postgres",
    reason="several gateway processes share one database only on PostgreSQL "
    "(set TEST_DATABASE_URL=postgres://…/<test db>)",
)
async def test_two_processes_release_the_money_once(gateways: list[Server]) -> None:
    assert len(gateways) == 2
    await _release_concurrently(gateways)


async def test_one_process_releases_the_money_once(gateways: list[Server]) -> None:
    await _release_concurrently(gateways[:1])
