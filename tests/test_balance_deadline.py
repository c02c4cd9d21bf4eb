"""The shipping deadline of an order whose deposit is paid but whose balance is not
(AWAITING_BALANCE), without HTTP. The balance is due before shipment, so the deadline
protects the deposit exactly as it protects a PAID order's money: the sweep marks the
order OVERDUE, the buyer may claim back what was paid or open a LATE_SHIPMENT dispute.
(It had no deadline at all: the deposit and the supplier's coverage were held for ever.)
Every test ends with a clean `ledger.check()`."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest

from models import clock, deadlines, disputes, ledger, lifecycle, orders, payments, sweep
from models.disputes import Evidence
from models.enums import ActorKind, DeadlineKind, DisputeReason, OrderStatus, PaymentMethod
from models.errors import DomainError, ErrorCode
from models.money import Money
from models.tables import LedgerPosting, Order, OrderEvent, Payment, Refund, SupplierProfile
from server.payments.sandbox import CARD_SUCCEEDS
from tests import factories

USD = "USD"
TOTAL = 3_000_00
DEPOSIT = 1_500_00  # factories.contract(): 2 x 1,500.00 USD, 1,500.00 up front
LIMIT = 100_000_00


# The sandbox provider for every test, and a sound ledger after each (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("sandbox")


async def _deposit_paid(
    buyer: factories.Actor | None = None,
) -> tuple[factories.Actor, factories.Actor, Order]:
    b, s, order = await factories.confirmed_order(buyer)
    result = await payments.pay_order(
        b.principal, order.id, Money(DEPOSIT, USD), PaymentMethod.CARD,
        idempotency_key=f"deposit-{order.id}", source=CARD_SUCCEEDS,
    )  # fmt: skip
    assert result.error is None
    order = await _order(order.id)
    assert order.status == OrderStatus.AWAITING_BALANCE
    return b, s, order


async def _order(order_id: int) -> Order:
    found = await Order.objects().get(Order.id == order_id)
    assert found is not None
    return found


async def _scheduler_events(order_id: int) -> list[tuple[str, str | None, str | None]]:
    rows = await OrderEvent.select(
        OrderEvent.kind, OrderEvent.old_status, OrderEvent.new_status
    ).where((OrderEvent.order == order_id) & (OrderEvent.actor_kind == ActorKind.SCHEDULER.value))
    return [(r["kind"], r["old_status"], r["new_status"]) for r in rows]


async def _remaining_limit(supplier_id: int | None) -> int:
    profile = await SupplierProfile.objects().get(SupplierProfile.id == supplier_id)
    assert profile is not None
    return await orders.remaining_limit_minor(profile)


async def _overdue_ids(who: factories.Actor) -> set[int]:
    rows, _ = await orders.list_orders(who.principal, overdue_only=True, first=50, after_id=None)
    return {o.id for o in rows}


async def _snapshot(order_id: int) -> dict[str, Any]:
    return {
        "order": await Order.select().where(Order.id == order_id).first(),
        "events": await OrderEvent.count().where(OrderEvent.order == order_id),
        "payments": await Payment.count().where(Payment.order == order_id),
        "postings": await LedgerPosting.count(),
        "refunds": await Refund.count(),
    }


async def _refused(code: ErrorCode, order_id: int, action: Any, words: str = "") -> None:
    before = await _snapshot(order_id)
    with pytest.raises(DomainError) as failure:
        await action
    assert failure.value.code is code, failure.value.message
    assert words in failure.value.message
    assert await _snapshot(order_id) == before


def _refunded(claim: lifecycle.Claim) -> int:
    """What a late-shipment claim paid back (one refund per payment it returns)."""
    assert all(r.status == "SETTLED" for r in claim.refunds)
    return sum(r.amount_minor for r in claim.refunds)


def _late_dispute(b: factories.Actor, order: Order, key: str) -> Any:
    return disputes.open_dispute(
        b.principal, order.id, reason=DisputeReason.LATE_SHIPMENT, requested=Money(DEPOSIT, USD),
        description="Not shipped by the shipping deadline",
        evidence=[Evidence("No shipment recorded")], idempotency_key=key,
    )  # fmt: skip


def test_next_due_of_an_order_waiting_for_money() -> None:
    """Nothing paid: the payment deadline; something paid: the shipping deadline; a
    payment on its way: nothing until its outcome (settling it schedules the order)."""
    now = dt.datetime(2026, 11, 27, 12, tzinfo=dt.UTC)
    order = Order(
        _ignore_missing=True,
        payment_deadline=now + dt.timedelta(days=7),
        shipping_deadline=now + dt.timedelta(days=30),
    )
    for status in (OrderStatus.AWAITING_INITIAL_PAYMENT, OrderStatus.AWAITING_BALANCE):
        order.status = status.value

        def due(paid: bool, pending: bool) -> dt.datetime | None:
            return deadlines.next_due(order, anything_paid=paid, payment_pending=pending)

        assert due(False, False) == order.payment_deadline
        assert due(True, False) == order.shipping_deadline
        assert due(False, True) is None and due(True, True) is None
    order.status = OrderStatus.PAID.value
    assert deadlines.next_due(order, anything_paid=True, payment_pending=False) == (
        order.shipping_deadline
    )


async def test_the_sweep_marks_an_unshipped_deposit_overdue_and_the_buyer_is_refunded(
    frozen_clock: clock.FrozenClock,
) -> None:
    b, s, order = await _deposit_paid()
    mediator = await factories.staff()
    assert order.next_deadline_at == order.shipping_deadline  # was None: no deadline at all
    frozen_clock.advance(days=8)  # past the payment deadline: a deposit is not cancelled
    assert (await sweep.run_sweep()).total == 0
    frozen_clock.advance(days=22, seconds=-1)  # a second before the shipping deadline
    assert (await sweep.run_sweep()).total == 0
    assert await _overdue_ids(mediator) == set()
    frozen_clock.advance(seconds=1)
    assert await _overdue_ids(mediator) == {order.id}  # due, not yet swept
    assert (await sweep.run_sweep()).enforced == {OrderStatus.OVERDUE.value: 1}
    assert (await sweep.run_sweep()).total == 0  # once
    overdue = await _order(order.id)
    assert overdue.status == OrderStatus.OVERDUE and overdue.next_deadline_at is None
    assert await _scheduler_events(order.id) == [
        ("SHIPPING_DEADLINE_PASSED", OrderStatus.AWAITING_BALANCE, OrderStatus.OVERDUE)
    ]
    assert await _overdue_ids(b) == {order.id}
    shipping = {d.kind: d for d in deadlines.of_order(overdue, paid_minor=DEPOSIT)}
    assert shipping[DeadlineKind.SHIPPING].passed and not shipping[DeadlineKind.SHIPPING].met

    claim = await lifecycle.claim_late_shipment_refund(b.principal, order.id, idempotency_key="k")
    assert claim.order.status == OrderStatus.REFUNDED
    assert [(r.status, r.amount_minor) for r in claim.refunds] == [("SETTLED", DEPOSIT)]
    money = (await ledger.order_money([order.id]))[order.id]
    assert (money.paid, money.held, money.refunded) == (DEPOSIT, 0, DEPOSIT)
    assert await _remaining_limit(s.supplier_id) == LIMIT  # coverage given back


async def test_an_overdue_deposit_takes_no_balance_and_cannot_ship(
    frozen_clock: clock.FrozenClock,
) -> None:
    b, s, order = await _deposit_paid()
    frozen_clock.advance(days=30)
    await sweep.run_sweep()
    assert (await _order(order.id)).status == OrderStatus.OVERDUE
    await _refused(
        ErrorCode.INVALID_TRANSITION,
        order.id,
        payments.pay_order(
            b.principal, order.id, Money(TOTAL - DEPOSIT, USD), PaymentMethod.CARD,
            idempotency_key="late-balance", source=CARD_SUCCEEDS,
        ),
    )  # fmt: skip
    # OVERDUE ships late only when the whole order was paid; the balance never was.
    shipment = lifecycle.Shipment("Maersk", "MAEU1234567", clock.now())
    await _refused(
        ErrorCode.BALANCE_NOT_PAID, order.id, lifecycle.ship_order(s.principal, order.id, shipment)
    )
    # What is left: the buyer's claim (or a dispute).
    claim = await lifecycle.claim_late_shipment_refund(b.principal, order.id, idempotency_key="k")
    assert _refunded(claim) == DEPOSIT


async def test_before_the_sweep_the_deadline_has_passed_all_the_same(
    frozen_clock: clock.FrozenClock,
) -> None:
    """A claim or a dispute judges the deadline itself, like the sweep: no false "has not
    passed" while the sweep has not reached the order yet."""
    b, _, claimed = await _deposit_paid()
    _, _, disputed = await _deposit_paid(b)
    await _refused(
        ErrorCode.SHIPPING_DEADLINE_NOT_PASSED,
        claimed.id,
        lifecycle.claim_late_shipment_refund(b.principal, claimed.id, idempotency_key="early"),
        "has not passed",
    )
    await _refused(ErrorCode.NO_GROUNDS_FOR_DISPUTE, disputed.id, _late_dispute(b, disputed, "e"))
    frozen_clock.advance(days=30)
    claim = await lifecycle.claim_late_shipment_refund(
        b.principal, claimed.id, idempotency_key="late"
    )
    assert claim.order.status == OrderStatus.REFUNDED and _refunded(claim) == DEPOSIT
    dispute = await _late_dispute(b, disputed, "late-dispute")
    assert dispute.status == "OPEN" and dispute.requested_minor == DEPOSIT
    # The sweep still enforces the disputed order's deadline (the dispute decides the money).
    assert (await sweep.run_sweep()).enforced == {OrderStatus.OVERDUE.value: 1}
    assert await _scheduler_events(claimed.id) == []


@pytest.mark.parametrize("arrives", [True, False], ids=["arrives", "fails"])
async def test_a_balance_transfer_pending_at_the_deadline_is_waited_for(
    frozen_clock: clock.FrozenClock, arrives: bool
) -> None:
    b, _, order = await _deposit_paid()
    transfer = await payments.pay_order(
        b.principal, order.id, Money(TOTAL - DEPOSIT, USD), PaymentMethod.TT,
        idempotency_key="tt",
    )  # fmt: skip
    assert transfer.payment.status == "PENDING"
    frozen_clock.advance(days=30)
    report = await sweep.run_sweep()
    assert report.total == 0 and report.skipped == 1
    parked = await _order(order.id)
    assert parked.status == OrderStatus.AWAITING_BALANCE and parked.next_deadline_at is None
    # Claiming now would end the order with the transfer still on its way.
    await _refused(
        ErrorCode.PAYMENT_IN_PROGRESS,
        order.id,
        lifecycle.claim_late_shipment_refund(b.principal, order.id, idempotency_key="early"),
    )
    await payments.record_charge_outcome(transfer.payment.id, succeeded=arrives, reason="returned")
    settled = await _order(order.id)
    assert settled.status == (OrderStatus.PAID if arrives else OrderStatus.AWAITING_BALANCE)
    assert settled.next_deadline_at == order.shipping_deadline  # due again, at once
    assert (await sweep.run_sweep()).enforced == {OrderStatus.OVERDUE.value: 1}
    claim = await lifecycle.claim_late_shipment_refund(b.principal, order.id, idempotency_key="k")
    assert _refunded(claim) == (TOTAL if arrives else DEPOSIT)


async def test_the_transitions_check_the_deposit_deadline_themselves(
    frozen_clock: clock.FrozenClock,
) -> None:
    _, _, order = await _deposit_paid()
    _, _, unpaid = await factories.confirmed_order()
    assert await lifecycle.mark_overdue(order.id) is None  # not due yet
    frozen_clock.advance(days=8)
    assert await lifecycle.cancel_unpaid(order.id) is None  # a deposit is not cancelled
    assert (await _order(order.id)).next_deadline_at == order.shipping_deadline  # still due
    assert await lifecycle.mark_overdue(unpaid.id) is None  # nothing paid: not its deadline
    frozen_clock.advance(days=22)
    assert await lifecycle.mark_overdue(order.id) == OrderStatus.OVERDUE
    assert await lifecycle.mark_overdue(order.id) is None  # once
    assert [kind for kind, _, _ in await _scheduler_events(order.id)] == [
        "SHIPPING_DEADLINE_PASSED"
    ]


async def test_concurrent_sweeps_enforce_each_deposit_deadline_once(
    frozen_clock: clock.FrozenClock,
) -> None:
    deposits = [(await _deposit_paid())[2] for _ in range(4)]
    unpaid = [(await factories.confirmed_order())[2] for _ in range(3)]
    frozen_clock.advance(days=31)
    reports = await asyncio.gather(*[sweep.run_sweep() for _ in range(3)])
    enforced = sum((r.enforced for r in reports), start=type(reports[0].enforced)())
    assert enforced == {OrderStatus.OVERDUE.value: 4, OrderStatus.CANCELLED.value: 3}
    for order in deposits + unpaid:
        assert len(await _scheduler_events(order.id)) == 1
    assert all(r.failed == [] for r in reports)


async def test_the_migration_schedules_deposit_orders_the_old_rule_left_unscheduled() -> None:
    import importlib

    migration = importlib.import_module("models.migrations.models_2026_11_27t17_00_00_000000")
    _, _, order = await _deposit_paid()
    _, _, unpaid = await factories.confirmed_order()
    await Order.update({Order.next_deadline_at: None}).where(Order.id == order.id)
    before = (await _order(unpaid.id)).next_deadline_at
    await Order.raw(migration.BACKFILL)
    assert (await _order(order.id)).next_deadline_at == order.shipping_deadline
    assert (await _order(unpaid.id)).next_deadline_at == before  # its payment deadline
