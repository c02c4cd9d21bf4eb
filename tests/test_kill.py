"""SIGKILL at random moments under a mixed write load, then restart: what the client was
told succeeded is in the database, nothing is half-applied, and a request whose answer was
lost, retried with its idempotency key, moves money once.

A real gateway process on a fixed port is killed KILL_ROUNDS times (20 by default, fewer
with TA_KILL_ROUNDS for a quick local run) while a few HTTP clients create, confirm, pay,
release, cancel and message orders. The summary is printed and, with TA_TEST_ARTIFACTS
set, written to kill.json (a figure of the reliability report)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import os
import random
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import pytest
from strawberry.relay import from_base64

from models.tables import (
    IdempotencyRecord,
    LedgerPosting,
    Order,
    OrderEvent,
    OrderMessage,
    Payment,
)
from server.payments.sandbox import CARD_SUCCEEDS
from tests import factories
from tests.api import Server, bearer, cli_env, free_port, gid, run_cli, start_server, wait_ready
from tests.conftest import ENGINE

KILL_ROUNDS = int(os.environ.get("TA_KILL_ROUNDS", "20"))
CLIENTS = 3
SEED = int(os.environ.get("TA_KILL_SEED", "8"))

CREATE = """mutation($supplier: ID!, $deadline: DateTime!) {
  createOrder(input: {supplierId: $supplier, contract: {currency: "USD",
    lines: [{productName: "LED panel", quantity: 2, unitPrice: "1500.00"}], incoterm: FOB,
    shippingMethod: SEA, destinationCountry: "DE", shippingDeadline: $deadline,
    initialPayment: "1500.00"}}) { order { id status } errors { code } } }"""
CONFIRM = """mutation($id: ID!) {
  confirmOrder(input: {orderId: $id}) { order { status } errors { code } } }"""
CANCEL = """mutation($id: ID!) {
  cancelOrder(input: {orderId: $id, reason: "changed my mind"}) {
    order { status } errors { code } } }"""
PAY = """mutation($id: ID!, $key: String!, $card: String!) {
  payOrder(input: {orderId: $id, amount: {amount: "3000.00", currency: "USD"}, method: CARD,
    paymentSource: $card, idempotencyKey: $key}) {
    payment { id status } errors { code } } }"""
RELEASE = """mutation($id: ID!, $key: String!) {
  releaseFunds(input: {orderId: $id, amount: {amount: "1000.00", currency: "USD"},
    idempotencyKey: $key}) { released { amount } errors { code } } }"""
MESSAGE = """mutation($id: ID!, $key: String!) {
  sendOrderMessage(input: {orderId: $id, body: "when do you ship?", idempotencyKey: $key}) {
    message { id } errors { code } } }"""

# The statuses an order may have moved on to after the one the client last saw
# (a mutation whose answer was lost may have been applied).
LATER: dict[str, set[str]] = {
    "PENDING_CONFIRMATION": {"PENDING_CONFIRMATION", "AWAITING_INITIAL_PAYMENT", "CANCELLED"},
    "AWAITING_INITIAL_PAYMENT": {"AWAITING_INITIAL_PAYMENT", "PAID", "CANCELLED"},
    "PAID": {"PAID"},
    "CANCELLED": {"CANCELLED"},
}


def _pk(global_id: str) -> int:
    return int(from_base64(global_id)[1])


class Lost(Exception):
    """The request may or may not have reached the gateway: its answer never came."""


@dataclasses.dataclass
class Load:
    """The mixed write load and what the gateway acknowledged."""

    port: int  # every process of the test listens here, so clients find the next one
    buyer: factories.Actor
    supplier: factories.Actor
    server: Server | None = None
    up: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    stopping: bool = False
    orders: dict[int, str] = dataclasses.field(default_factory=dict)  # id -> status seen
    payments: dict[str, tuple[int, int, str]] = dataclasses.field(default_factory=dict)
    releases: dict[str, int] = dataclasses.field(default_factory=dict)  # key -> order
    messages: dict[str, tuple[int, int]] = dataclasses.field(default_factory=dict)
    lost: int = 0
    money_retries: int = 0
    ops: int = 0

    async def send(
        self, client: httpx.AsyncClient, query: str, variables: dict[str, Any], token: str
    ) -> dict[str, Any]:
        """One operation's payload; Lost if the connection failed or was cut."""
        await self.up.wait()
        try:
            response = await client.post(
                f"http://127.0.0.1:{self.port}/graphql",
                json={"query": query, "variables": variables},
                headers=bearer(token),
            )
        except httpx.TransportError as e:
            raise Lost from e  # waits for `up`, which the main loop clears before a kill
        assert response.status_code == 200, response.text
        body = response.json()
        assert "errors" not in body, body
        self.ops += 1
        payload: dict[str, Any] = next(iter(body["data"].values()))
        return payload

    async def until_answered(
        self, client: httpx.AsyncClient, query: str, variables: dict[str, Any], token: str
    ) -> dict[str, Any]:
        """An idempotent mutation, resent with the same key until an answer arrives."""
        while True:
            try:
                return await self.send(client, query, variables, token)
            except Lost:
                self.lost += 1
                self.money_retries += 1

    async def status(self, order_id: int) -> str:
        row = await Order.select(Order.status).where(Order.id == order_id).first()
        assert row is not None
        return str(row["status"])

    async def step(self, client: httpx.AsyncClient, order_id: int, query: str, want: str) -> str:
        """A non-idempotent transition: on a lost answer, the database says what happened."""
        try:
            payload = await self.send(
                client, query, {"id": gid("Order", order_id)}, self.token_for(query)
            )
        except Lost:
            self.lost += 1
            await self.up.wait()
            status = await self.status(order_id)
            self.orders[order_id] = status
            return status
        assert payload["errors"] == [], payload
        assert payload["order"]["status"] == want
        self.orders[order_id] = want
        return want

    def token_for(self, query: str) -> str:
        return self.supplier.token if query is CONFIRM else self.buyer.token

    async def one_order(self, client: httpx.AsyncClient, rng: random.Random, tag: str) -> None:
        deadline = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).isoformat()
        variables = {
            "supplier": gid("Supplier", self.supplier.supplier_id or 0),
            "deadline": deadline,
        }
        try:
            created = await self.send(client, CREATE, variables, self.buyer.token)
        except Lost:
            self.lost += 1
            return
        assert created["errors"] == [], created
        order_id = _pk(created["order"]["id"])
        self.orders[order_id] = created["order"]["status"]
        if await self.step(client, order_id, CONFIRM, "AWAITING_INITIAL_PAYMENT") != (
            "AWAITING_INITIAL_PAYMENT"
        ):
            return
        if rng.random() < 0.25:
            await self.step(client, order_id, CANCEL, "CANCELLED")
            return
        key = f"pay-{tag}"
        paid = await self.until_answered(
            client, PAY, {"id": gid("Order", order_id), "key": key, "card": CARD_SUCCEEDS},
            self.buyer.token,
        )  # fmt: skip
        assert paid["payment"] is not None, paid
        payment_id = _pk(paid["payment"]["id"])
        self.payments[key] = (order_id, payment_id, paid["payment"]["status"])
        if paid["payment"]["status"] != "SUCCEEDED":
            return  # killed between committing the payment and charging: still pending
        self.orders[order_id] = "PAID"
        for n in range(2):
            key = f"release-{tag}-{n}"
            released = await self.until_answered(
                client, RELEASE, {"id": gid("Order", order_id), "key": key}, self.buyer.token
            )
            assert released["errors"] == [], released
            self.releases[key] = order_id
        key = f"message-{tag}"
        sent = await self.until_answered(
            client, MESSAGE, {"id": gid("Order", order_id), "key": key}, self.buyer.token
        )
        assert sent["errors"] == [], sent
        self.messages[key] = (order_id, _pk(sent["message"]["id"]))

    async def client(self, n: int) -> None:
        rng = random.Random(SEED * 100 + n)
        async with httpx.AsyncClient(timeout=30) as client:
            serial = 0
            while not self.stopping:
                serial += 1
                await self.one_order(client, rng, f"{n}-{serial}")


async def _kill_rounds(load: Load, port: int, rounds: int, rng: random.Random) -> int:
    kills = 0
    for _ in range(rounds):
        load.server = start_server(cli_env(), port=port)
        assert await asyncio.to_thread(wait_ready, load.server), load.server.stop()
        load.up.set()
        await asyncio.sleep(rng.uniform(0.2, 1.5))  # the load runs for a random moment
        load.up.clear()  # clients whose request fails wait for the next process
        load.server.process.kill()
        await asyncio.to_thread(load.server.process.wait)
        load.server.process.communicate()
        kills += 1
    return kills


@pytest.mark.skipif(KILL_ROUNDS < 1, reason="TA_KILL_ROUNDS=0")
async def test_sigkill_under_load_loses_nothing_acknowledged_and_applies_nothing_half() -> None:
    buyer = await factories.buyer()
    supplier = await factories.supplier(trade_assurance_limit_minor=100_000_000_00)
    port = free_port()
    rng = random.Random(SEED)
    load = Load(port, buyer, supplier)
    clients = [asyncio.create_task(load.client(n)) for n in range(CLIENTS)]
    try:
        kills = await _kill_rounds(load, port, KILL_ROUNDS, rng)
        # A last process: in-flight money mutations are resent with their keys and answered.
        load.server = start_server(cli_env(), port=port)
        assert await asyncio.to_thread(wait_ready, load.server), load.server.stop()
        load.up.set()
        load.stopping = True
        async with asyncio.timeout(120):
            await asyncio.gather(*clients)
        await _check(load)
        resent = await _resend_money_mutations(load)
        # Card payments whose answer died with a process: the sweep asks the provider.
        left_pending = await Payment.count().where(Payment.status == "PENDING")
        sweep = run_cli("run-deadlines", env=cli_env(TA_PAYMENT_RECONCILE_MINUTES="0"))
        assert sweep.returncode == 0, sweep.stdout + sweep.stderr
        assert await Payment.count().where(Payment.status == "PENDING") == 0
        await _check(load)
    finally:
        for task in clients:
            task.cancel()
        if load.server is not None:
            print(load.server.stop())
    summary = {
        "engine": ENGINE,
        "rounds": KILL_ROUNDS,
        "kills": kills,
        "operations_answered": load.ops,
        "answers_lost": load.lost,
        "money_retries": load.money_retries,
        "money_mutations_resent_after_the_last_restart": resent,
        "card_payments_left_pending_then_reconciled": left_pending,
        "acknowledged": {
            "orders": len(load.orders),
            "payments": len(load.payments),
            "releases": len(load.releases),
            "messages": len(load.messages),
        },
    }
    print(json.dumps(summary))
    if artifacts := os.environ.get("TA_TEST_ARTIFACTS"):
        _write_summary(Path(artifacts), summary)


def _write_summary(directory: Path, summary: dict[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    text = json.dumps(summary, indent=2)
    (directory / f"kill-{ENGINE}.json").write_text(text)  # one per engine
    (directory / "kill.json").write_text(text)  # the last run's


async def _resend_money_mutations(load: Load) -> int:
    """Every acknowledged payment and release sent once more with its key: the first
    answer comes back and not a cent moves."""
    postings = await LedgerPosting.count()
    sent = 0
    async with httpx.AsyncClient(timeout=30) as client:
        for key, (order_id, payment_id, _) in load.payments.items():
            variables = {"id": gid("Order", order_id), "key": key, "card": CARD_SUCCEEDS}
            again = await load.send(client, PAY, variables, load.buyer.token)
            assert _pk(again["payment"]["id"]) == payment_id, again
            sent += 1
        for key, order_id in load.releases.items():
            variables = {"id": gid("Order", order_id), "key": key}
            released = await load.send(client, RELEASE, variables, load.buyer.token)
            assert released == {"released": {"amount": "1000.00"}, "errors": []}, released
            sent += 1
    assert await LedgerPosting.count() == postings
    return sent


async def _check(load: Load) -> None:
    # Every acknowledged order is there, as the client saw it or moved on legally.
    rows = await Order.select(Order.id, Order.status)
    status = {r["id"]: r["status"] for r in rows}
    for order_id, seen in load.orders.items():
        assert status.get(order_id) in LATER[seen], (order_id, seen, status.get(order_id))

    # Each order's status is the one its last event set.
    last: dict[int, str] = {}
    for e in await OrderEvent.select(OrderEvent.order, OrderEvent.new_status).order_by(
        OrderEvent.id
    ):
        last[e["order"]] = e["new_status"]
    assert last == status

    # Each acknowledged payment exists as answered; a succeeded payment has exactly one
    # ledger transaction, and no payment transaction lacks its payment.
    payments = {p["id"]: p for p in await Payment.select()}
    for order_id, payment_id, seen in load.payments.values():
        assert payments[payment_id]["order"] == order_id
        assert seen == "PENDING" or payments[payment_id]["status"] == seen
    by_order: dict[int, list[str]] = defaultdict(list)
    amounts: dict[int, int] = defaultdict(int)
    for p in await LedgerPosting.select().where(LedgerPosting.kind == "PAYMENT"):
        if p["txn"] not in by_order[p["order"]]:
            by_order[p["order"]].append(p["txn"])
        if p["account"].startswith("escrow:"):
            amounts[p["order"]] -= p["amount_minor"]
    succeeded: dict[int, list[int]] = defaultdict(list)
    for p in payments.values():
        if p["status"] == "SUCCEEDED":
            succeeded[p["order"]].append(p["amount_minor"])
    assert {o: len(t) for o, t in by_order.items()} == {o: len(a) for o, a in succeeded.items()}
    assert dict(amounts) == {o: sum(a) for o, a in succeeded.items()}
    # One payment per key, however often it was resent.
    assert await Payment.count() == await IdempotencyRecord.count().where(
        IdempotencyRecord.operation == "payOrder"
    )

    # Each acknowledged release moved 1,000.00 once, however often it was resent.
    released: dict[int, int] = defaultdict(int)
    for p in await LedgerPosting.select().where(LedgerPosting.kind == "RELEASE"):
        if p["account"].startswith("escrow:"):
            released[p["order"]] += p["amount_minor"]
    expected: dict[int, int] = defaultdict(int)
    for order_id in load.releases.values():
        expected[order_id] += 1_000_00
    assert dict(released) == dict(expected)

    # Each acknowledged message is there, once per key.
    messages = {m["id"]: m["order"] for m in await OrderMessage.select()}
    for order_id, message_id in load.messages.values():
        assert messages.get(message_id) == order_id
    assert len(messages) == len(load.messages)

    check = run_cli("ledger-check")
    assert check.returncode == 0, check.stdout + check.stderr
    if ENGINE == "sqlite":
        result = await Order.raw("PRAGMA integrity_check")
        assert [next(iter(r.values())) for r in result] == ["ok"]
