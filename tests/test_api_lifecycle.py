"""Shipment, receipt and late-shipment refunds over the API; the deadline views and
filters; `trade-assurance run-deadlines`; the scheduler inside a real server process."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from models import clock, ledger, payments, sweep
from models.enums import OrderStatus, PaymentMethod
from models.money import Money
from models.tables import Order, OrderEvent
from server.payments.sandbox import CARD_SUCCEEDS
from tests import factories
from tests.api import Api, cli_env, gid, run_cli, start_server, wait_ready

pytest_plugins = ("tests.api_plugin",)

MONEY = "{ amount currency }"
ERRORS = "errors { code field }"
ORDER = f"""id status nextDeadlineAt completedAt
  shipment {{ carrier trackingNumber method shippedAt late }}
  receipt {{ receivedAt automatic claimWindowEndsAt }}
  deadlines {{ kind dueAt passed met }}
  money {{ paid {MONEY} held {MONEY} released {MONEY} refunded {MONEY} }}"""
SHIP = f"""mutation($id: ID!, $at: DateTime!, $method: ShippingMethod) {{
  shipOrder(input: {{orderId: $id, carrier: "Maersk", trackingNumber: "MAEU1234567",
    shippedAt: $at, method: $method}}) {{ order {{ {ORDER} }} {ERRORS} }} }}"""
RECEIPT = f"""mutation($id: ID!) {{
  confirmReceipt(input: {{orderId: $id}}) {{ order {{ {ORDER} }} {ERRORS} }} }}"""
CLAIM = f"""mutation($id: ID!, $key: String!) {{
  claimLateShipmentRefund(input: {{orderId: $id, idempotencyKey: $key}}) {{
    refund {{ reference status amount {MONEY} reason }}
    refunds {{ reference status amount {MONEY} reason }} order {{ {ORDER} }} {ERRORS} }} }}"""
ORDER_QUERY = f"query($id: ID!) {{ order(id: $id) {{ {ORDER} }} }}"
ORDERS = """query($filter: OrderFilter) { orders(filter: $filter, first: 50) {
  edges { node { id status } } } }"""


@pytest.fixture(autouse=True)
def long_lived_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests move the clock by weeks; logins must outlive that (read by make_app)."""
    monkeypatch.setenv("TA_TOKEN_TTL_HOURS", str(24 * 365))


@pytest.fixture(autouse=True)
async def books_balance() -> AsyncIterator[None]:
    yield
    assert await ledger.check() == []


async def _paid() -> tuple[factories.Actor, factories.Actor, Order]:
    b, s, order = await factories.confirmed_order()
    result = await payments.pay_order(
        b.principal, order.id, Money(3_000_00, "USD"), PaymentMethod.CARD,
        idempotency_key="pay", source=CARD_SUCCEEDS,
    )  # fmt: skip
    assert result.error is None
    return b, s, order


def _iso(at: dt.datetime) -> str:
    return at.isoformat()


async def test_ship_receive_and_complete_over_the_api(
    api: Api, frozen_clock: clock.FrozenClock
) -> None:
    b, s, order = await _paid()
    oid = gid("Order", order.id)
    stranger_buyer = await factories.buyer()
    stranger_supplier = await factories.supplier()
    ship = {"id": oid, "at": _iso(clock.now()), "method": "AIR"}

    for token, code in [
        (b.token, "FORBIDDEN"),
        (stranger_buyer.token, "NOT_FOUND"),
        (stranger_supplier.token, "NOT_FOUND"),
    ]:
        refused = (await api.data(SHIP, ship, token))["shipOrder"]
        assert refused == {
            "order": None,
            "errors": [{"code": code, "field": refused["errors"][0]["field"]}],
        }
    shipped = (await api.data(SHIP, ship, s.token))["shipOrder"]
    assert shipped["errors"] == []
    o = shipped["order"]
    assert o["status"] == "SHIPPED"
    assert o["shipment"] == {
        "carrier": "Maersk", "trackingNumber": "MAEU1234567", "method": "AIR",
        "shippedAt": _iso(clock.now()), "late": False,
    }  # fmt: skip
    assert o["nextDeadlineAt"] == _iso(clock.now() + dt.timedelta(days=15))  # air: 15 days
    kinds = {d["kind"]: d for d in o["deadlines"]}
    assert set(kinds) == {"PAYMENT", "SHIPPING", "RECEIPT"}
    assert kinds["SHIPPING"]["met"] and not kinds["SHIPPING"]["passed"]
    assert kinds["RECEIPT"] == {
        "kind": "RECEIPT", "dueAt": o["nextDeadlineAt"], "passed": False, "met": False,
    }  # fmt: skip
    again = (await api.data(SHIP, ship, s.token))["shipOrder"]
    assert again["errors"][0]["code"] == "ALREADY_SHIPPED"

    frozen_clock.advance(days=2)
    for token, code in [(s.token, "FORBIDDEN"), (stranger_buyer.token, "NOT_FOUND")]:
        refused = (await api.data(RECEIPT, {"id": oid}, token))["confirmReceipt"]
        assert refused["order"] is None and refused["errors"][0]["code"] == code
    received = (await api.data(RECEIPT, {"id": oid}, b.token))["confirmReceipt"]
    assert received["errors"] == []
    assert received["order"]["status"] == "RECEIVED"
    assert received["order"]["receipt"] == {
        "receivedAt": _iso(clock.now()), "automatic": False,
        "claimWindowEndsAt": _iso(clock.now() + dt.timedelta(days=30)),
    }  # fmt: skip

    frozen_clock.advance(days=30)
    await sweep.run_sweep()
    done = (await api.data(ORDER_QUERY, {"id": oid}, b.token))["order"]
    assert done["status"] == "COMPLETED" and done["completedAt"] == _iso(clock.now())
    assert done["money"]["held"]["amount"] == "0.00"
    assert done["money"]["released"]["amount"] == "3000.00"
    assert all(d["passed"] and d["met"] for d in done["deadlines"])


async def test_late_shipment_claim_over_the_api(api: Api, frozen_clock: clock.FrozenClock) -> None:
    b, s, order = await _paid()
    oid = gid("Order", order.id)
    early = (await api.data(CLAIM, {"id": oid, "key": "c1"}, b.token))["claimLateShipmentRefund"]
    assert early["errors"] == [{"code": "SHIPPING_DEADLINE_NOT_PASSED", "field": "orderId"}]
    frozen_clock.advance(days=30)
    await sweep.run_sweep()
    overdue = (await api.data(ORDER_QUERY, {"id": oid}, b.token))["order"]
    assert overdue["status"] == "OVERDUE"
    shipping = next(d for d in overdue["deadlines"] if d["kind"] == "SHIPPING")
    assert shipping["passed"] and not shipping["met"]
    listed = (await api.data(ORDERS, {"filter": {"overdue": True}}, b.token))["orders"]
    assert [e["node"]["id"] for e in listed["edges"]] == [oid]

    other = await factories.buyer()
    for token, code in [(s.token, "FORBIDDEN"), (other.token, "NOT_FOUND")]:
        refused = await api.data(CLAIM, {"id": oid, "key": "c2"}, token)
        assert refused["claimLateShipmentRefund"]["errors"][0]["code"] == code
    claim = (await api.data(CLAIM, {"id": oid, "key": "c3"}, b.token))["claimLateShipmentRefund"]
    assert claim["errors"] == []
    assert claim["refund"]["status"] == "SETTLED"
    assert claim["refund"]["amount"] == {"amount": "3000.00", "currency": "USD"}
    assert claim["refunds"] == [claim["refund"]]  # one payment, one refund
    assert claim["order"]["status"] == "REFUNDED"
    assert claim["order"]["money"]["refunded"]["amount"] == "3000.00"
    replay = (await api.data(CLAIM, {"id": oid, "key": "c3"}, b.token))["claimLateShipmentRefund"]
    assert (replay["refund"], replay["refunds"]) == (claim["refund"], claim["refunds"])
    assert (await ledger.order_money([order.id]))[order.id].refunded == 3_000_00


async def test_shipping_needs_the_balance_and_receipt_needs_a_shipment(
    api: Api, frozen_clock: clock.FrozenClock
) -> None:
    b, s, order = await factories.confirmed_order()
    oid = gid("Order", order.id)
    ship = {"id": oid, "at": _iso(clock.now()), "method": None}
    assert (await api.data(SHIP, ship, s.token))["shipOrder"]["errors"] == [
        {"code": "BALANCE_NOT_PAID", "field": "orderId"}
    ]
    assert (await api.data(RECEIPT, {"id": oid}, b.token))["confirmReceipt"]["errors"] == [
        {"code": "NOT_SHIPPED", "field": "orderId"}
    ]
    b2, s2, paid = await _paid()
    pid = gid("Order", paid.id)
    (await api.data(SHIP, {**ship, "id": pid}, s2.token))["shipOrder"]
    frozen_clock.advance(days=40)
    claim = (await api.data(CLAIM, {"id": pid, "key": "k"}, b2.token))["claimLateShipmentRefund"]
    assert claim["errors"] == [{"code": "SHIPPED_ON_TIME", "field": "orderId"}]
    assert (await Order.objects().get(Order.id == paid.id)).status == OrderStatus.SHIPPED  # type: ignore[union-attr]


async def test_due_within_days_filter(api: Api, frozen_clock: clock.FrozenClock) -> None:
    b, s, _ = await _paid()  # shipping deadline in 30 days
    await factories.confirmed_order(b, s)  # payment deadline in 7 days

    async def listed(token: str, days: int) -> list[str]:
        data = await api.data(ORDERS, {"filter": {"dueWithinDays": days}}, token)
        return [e["node"]["status"] for e in data["orders"]["edges"]]

    assert await listed(s.token, 10) == []
    assert await listed(s.token, 30) == ["PAID"]
    assert await listed(b.token, 10) == ["AWAITING_INITIAL_PAYMENT"]
    assert sorted(await listed(b.token, 30)) == ["AWAITING_INITIAL_PAYMENT", "PAID"]
    errors = await api.errors(ORDERS, {"filter": {"dueWithinDays": -1}}, b.token)
    assert errors[0]["extensions"]["code"] == "INVALID_INPUT"


async def test_run_deadlines_command_sweeps_once_and_says_what_it_did() -> None:
    _, _, order = await factories.confirmed_order()
    later = (clock.now() + dt.timedelta(days=8)).isoformat()
    first = run_cli("run-deadlines", "--now", later)
    assert first.returncode == 0, first.stderr
    assert "CANCELLED: 1" in first.stdout and "orders enforced: 1" in first.stdout
    second = run_cli("run-deadlines", env=cli_env(TA_CLOCK_NOW=later))
    assert second.returncode == 0, second.stderr
    assert "orders enforced: 0" in second.stdout
    events = await OrderEvent.count().where(
        (OrderEvent.order == order.id) & (OrderEvent.kind == "PAYMENT_DEADLINE_PASSED")
    )
    assert events == 1
    refused = run_cli("run-deadlines", "--now", later, env=cli_env(TA_ENV="production",
                      TA_PAYMENT_WEBHOOK_SECRET="whsec_test_only"))  # fmt: skip
    assert refused.returncode != 0 and "production" in refused.stderr + refused.stdout


async def test_every_server_process_runs_the_scheduler() -> None:
    # An order confirmed 8 days ago (by the test's clock): its payment deadline has passed.
    past = clock.FrozenClock(clock.now() - dt.timedelta(days=8))
    clock.set_clock(past)
    _, _, order = await factories.confirmed_order()
    clock.reset_clock()
    server = start_server(cli_env(TA_SCHEDULER_INTERVAL_SECONDS="0.2"))
    try:
        assert wait_ready(server), server.stop()
        deadline = time.monotonic() + 20
        status: Any = None
        while time.monotonic() < deadline:
            row = await Order.select(Order.status).where(Order.id == order.id).first()
            status = row["status"] if row else None
            if status == OrderStatus.CANCELLED:
                break
            time.sleep(0.1)  # noqa: ASYNC251 - the server is another process
        assert status == OrderStatus.CANCELLED
    finally:
        server.stop()
    kinds = await OrderEvent.select(OrderEvent.kind, OrderEvent.actor_kind).where(
        OrderEvent.order == order.id
    )
    assert {"kind": "PAYMENT_DEADLINE_PASSED", "actor_kind": "SCHEDULER"} in kinds


async def test_mediators_see_flagged_application_reviews(
    api: Api, frozen_clock: clock.FrozenClock
) -> None:
    from models import trade_assurance

    s = await factories.supplier()
    await trade_assurance.apply(s.principal, None)
    mediator = await factories.staff()
    frozen_clock.advance(days=5)
    await sweep.run_sweep()
    query = (
        "{ tradeAssuranceApplications(overdueOnly: true) { edges { node { overdue flaggedAt } } } }"
    )
    data = await api.data(query, None, mediator.token)
    assert data["tradeAssuranceApplications"]["edges"] == [
        {"node": {"overdue": True, "flaggedAt": clock.now().isoformat()}}
    ]


def test_deadline_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from server.settings import Settings

    monkeypatch.setenv("TA_AUTO_RECEIPT_DAYS", "sea=40")
    monkeypatch.setenv("TA_CLAIM_WINDOW_DAYS", "14")
    monkeypatch.setenv("TA_SCHEDULER_INTERVAL_SECONDS", "0")
    settings = Settings.from_env()
    assert settings.domain.auto_receipt_days_for("SEA") == 40
    assert settings.domain.auto_receipt_days_for("AIR") == 15
    assert settings.domain.claim_window_days == 14
    assert settings.scheduler_interval_seconds == 0
    monkeypatch.setenv("TA_AUTO_RECEIPT_DAYS", "TRAIN=3")
    with pytest.raises(ValueError, match="TA_AUTO_RECEIPT_DAYS"):
        Settings.from_env()
