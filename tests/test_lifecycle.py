"""After payment, without HTTP: shipment, receipt, the claim window and the deadlines the
system enforces, driven by a frozen clock. Every test ends with a clean `ledger.check()`."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest

from models import clock, deadlines, ledger, lifecycle, orders, payments, sweep
from models.enums import ActorKind, DeadlineKind, OrderStatus, PaymentMethod, ShippingMethod
from models.errors import DomainError, ErrorCode
from models.money import Money
from models.tables import (
    LedgerPosting,
    Order,
    OrderEvent,
    Refund,
    SupplierProfile,
    TradeAssuranceApplication,
)
from server.payments.sandbox import CARD_SUCCEEDS
from tests import factories

USD = "USD"
TOTAL = 3_000_00


# The sandbox provider for every test, and a sound ledger after each (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("sandbox")


async def _paid_order(
    method: PaymentMethod = PaymentMethod.CARD,
) -> tuple[factories.Actor, factories.Actor, Order]:
    b, s, order = await factories.confirmed_order()
    result = await payments.pay_order(
        b.principal, order.id, Money(TOTAL, USD), method,
        idempotency_key=f"pay-{order.id}", source=CARD_SUCCEEDS,
    )  # fmt: skip
    assert result.error is None
    return b, s, await _order(order.id)


async def _order(order_id: int) -> Order:
    found = await Order.objects().get(Order.id == order_id)
    assert found is not None
    return found


async def snapshot(order_id: int) -> dict[str, Any]:
    """Everything a refused transition must leave as it was."""
    row = await Order.select().where(Order.id == order_id).first()
    return {
        "order": row,
        "events": await OrderEvent.count().where(OrderEvent.order == order_id),
        "postings": await LedgerPosting.count(),
        "refunds": await Refund.count(),
    }


async def _refused(code: ErrorCode, order_id: int, action: Any) -> None:
    before = await snapshot(order_id)
    with pytest.raises(DomainError) as failure:
        await action
    assert failure.value.code is code, failure.value.message
    assert await snapshot(order_id) == before


def _shipment(at: dt.datetime | None = None, **kw: Any) -> lifecycle.Shipment:
    return lifecycle.Shipment(
        carrier=kw.get("carrier", "Maersk"),
        tracking_number=kw.get("tracking_number", "MAEU1234567"),
        shipped_at=at or clock.now(),
        method=kw.get("method"),
    )


async def _scheduler_events(order_id: int) -> list[str]:
    rows = await OrderEvent.select(OrderEvent.kind).where(
        (OrderEvent.order == order_id) & (OrderEvent.actor_kind == ActorKind.SCHEDULER.value)
    )
    return [r["kind"] for r in rows]


async def _remaining_limit(supplier_id: int) -> int:
    profile = await SupplierProfile.objects().get(SupplierProfile.id == supplier_id)
    assert profile is not None
    return await orders.remaining_limit_minor(profile)


async def test_whole_lifecycle_driven_by_the_clock(frozen_clock: clock.FrozenClock) -> None:
    _, s, order = await _paid_order()
    assert s.supplier_id is not None
    assert order.status == OrderStatus.PAID and order.next_deadline_at == order.shipping_deadline
    assert await _remaining_limit(s.supplier_id) == 100_000_00 - TOTAL

    frozen_clock.advance(days=5)
    shipped = await lifecycle.ship_order(s.principal, order.id, _shipment())
    assert shipped.status == OrderStatus.SHIPPED and not shipped.shipped_late
    assert shipped.shipment_method == ShippingMethod.SEA
    assert shipped.next_deadline_at == clock.now() + dt.timedelta(days=45)

    frozen_clock.advance(days=45, seconds=-1)  # a second before automatic receipt
    assert (await sweep.run_sweep()).total == 0
    frozen_clock.advance(seconds=1)
    report = await sweep.run_sweep()
    assert report.enforced == {OrderStatus.RECEIVED.value: 1}
    received = await _order(order.id)
    assert received.receipt_auto and received.received_at == clock.now()
    assert received.claim_window_ends_at == clock.now() + dt.timedelta(days=30)

    frozen_clock.advance(days=30)
    assert (await sweep.run_sweep()).enforced == {OrderStatus.COMPLETED.value: 1}
    done = await _order(order.id)
    assert done.status == OrderStatus.COMPLETED and done.next_deadline_at is None
    money = (await ledger.order_money([order.id]))[order.id]
    assert (money.paid, money.held, money.released) == (TOTAL, 0, TOTAL)
    assert await _scheduler_events(order.id) == ["RECEIPT_AUTO_CONFIRMED", "CLAIM_WINDOW_ENDED"]
    assert await _remaining_limit(s.supplier_id) == 100_000_00  # coverage given back
    assert await ledger.check() == []
    # Nothing is left to do, however often the sweep runs.
    frozen_clock.advance(days=365)
    assert (await sweep.run_sweep()).total == 0
    assert [d.kind for d in deadlines.of_order(done, paid_minor=TOTAL)] == [
        DeadlineKind.PAYMENT, DeadlineKind.SHIPPING, DeadlineKind.RECEIPT,
        DeadlineKind.CLAIM_WINDOW,
    ]  # fmt: skip
    assert all(d.passed and d.met for d in deadlines.of_order(done, paid_minor=TOTAL))


async def test_buyer_confirms_receipt_and_the_rest_is_released(
    frozen_clock: clock.FrozenClock,
) -> None:
    b, s, order = await _paid_order()
    await payments.release_funds(
        b.principal, order.id, Money(1_000_00, USD), idempotency_key="deposit"
    )
    await lifecycle.ship_order(s.principal, order.id, _shipment(method=ShippingMethod.AIR))
    frozen_clock.advance(days=3)
    received = await lifecycle.confirm_receipt(b.principal, order.id)
    assert received.status == OrderStatus.RECEIVED and not received.receipt_auto
    frozen_clock.advance(days=30)
    assert (await sweep.run_sweep()).enforced == {OrderStatus.COMPLETED.value: 1}
    money = (await ledger.order_money([order.id]))[order.id]
    assert (money.held, money.released) == (0, TOTAL)


async def test_late_shipment_path_refunds_everything_paid(
    frozen_clock: clock.FrozenClock,
) -> None:
    b, s, order = await _paid_order()
    assert s.supplier_id is not None
    frozen_clock.advance(days=30)  # the shipping deadline
    assert (await sweep.run_sweep()).enforced == {OrderStatus.OVERDUE.value: 1}
    assert await _scheduler_events(order.id) == ["SHIPPING_DEADLINE_PASSED"]
    claim = await lifecycle.claim_late_shipment_refund(
        b.principal, order.id, idempotency_key="late-1"
    )
    assert claim.order.status == OrderStatus.REFUNDED
    [refund] = claim.refunds
    assert refund.status == "SETTLED" and refund.amount_minor == TOTAL
    money = (await ledger.order_money([order.id]))[order.id]
    assert (money.paid, money.held, money.refunded) == (TOTAL, 0, TOTAL)
    assert await _remaining_limit(s.supplier_id) == 100_000_00
    # The same key again: the same refund, nothing moves.
    again = await lifecycle.claim_late_shipment_refund(
        b.principal, order.id, idempotency_key="late-1"
    )
    assert [r.id for r in again.refunds] == [refund.id] and await Refund.count() == 1
    with pytest.raises(DomainError) as reused:
        await lifecycle.claim_late_shipment_refund(
            b.principal, order.id + 1, idempotency_key="late-1"
        )
    assert reused.value.code in (ErrorCode.IDEMPOTENCY_KEY_REUSED, ErrorCode.NOT_FOUND)
    # An ended order is never swept again, and the supplier can no longer ship.
    frozen_clock.advance(days=100)
    assert (await sweep.run_sweep()).total == 0
    await _refused(
        ErrorCode.INVALID_TRANSITION,
        order.id,
        lifecycle.ship_order(s.principal, order.id, _shipment()),
    )


async def test_a_shipment_after_the_deadline_is_late_and_may_be_claimed(
    frozen_clock: clock.FrozenClock,
) -> None:
    b, s, order = await _paid_order()
    frozen_clock.advance(days=31)
    # Not yet swept: the supplier ships a day late.
    shipped = await lifecycle.ship_order(s.principal, order.id, _shipment())
    assert shipped.shipped_late and shipped.status == OrderStatus.SHIPPED
    deadline = {d.kind: d for d in deadlines.of_order(shipped, paid_minor=TOTAL)}
    assert deadline[DeadlineKind.SHIPPING].passed and not deadline[DeadlineKind.SHIPPING].met
    await lifecycle.confirm_receipt(b.principal, order.id)
    claim = await lifecycle.claim_late_shipment_refund(b.principal, order.id, idempotency_key="k")
    assert claim.order.status == OrderStatus.REFUNDED
    # Overdue, then shipped: late as well.
    _, s2, order2 = await _paid_order()
    frozen_clock.advance(days=31)
    await sweep.run_sweep()
    assert (await _order(order2.id)).status == OrderStatus.OVERDUE
    late = await lifecycle.ship_order(s2.principal, order2.id, _shipment())
    assert late.shipped_late


async def test_payment_deadline_cancels_an_unpaid_order(frozen_clock: clock.FrozenClock) -> None:
    _, s, order = await factories.confirmed_order()
    assert s.supplier_id is not None
    assert order.next_deadline_at == order.payment_deadline
    assert await _remaining_limit(s.supplier_id) == 100_000_00 - TOTAL
    frozen_clock.advance(days=7)
    assert (await sweep.run_sweep()).enforced == {OrderStatus.CANCELLED.value: 1}
    assert await _scheduler_events(order.id) == ["PAYMENT_DEADLINE_PASSED"]
    assert await _remaining_limit(s.supplier_id) == 100_000_00


async def test_a_paid_deposit_is_not_cancelled(frozen_clock: clock.FrozenClock) -> None:
    b, _, order = await factories.confirmed_order()
    await payments.pay_order(
        b.principal, order.id, Money(1_500_00, USD), PaymentMethod.CARD,
        idempotency_key="deposit", source=CARD_SUCCEEDS,
    )  # fmt: skip
    # What the deposit waits for now is the shipping deadline (tests/test_balance_deadline.py).
    assert (await _order(order.id)).next_deadline_at == order.shipping_deadline
    frozen_clock.advance(days=8)
    assert (await sweep.run_sweep()).total == 0
    assert (await _order(order.id)).status == OrderStatus.AWAITING_BALANCE


async def test_a_pending_transfer_defers_the_payment_deadline(
    frozen_clock: clock.FrozenClock,
) -> None:
    b, _, order = await factories.confirmed_order()
    result = await payments.pay_order(
        b.principal, order.id, Money(TOTAL, USD), PaymentMethod.TT, idempotency_key="tt"
    )
    assert result.payment.status == "PENDING"
    frozen_clock.advance(days=8)
    report = await sweep.run_sweep()
    assert report.total == 0 and report.skipped == 1
    assert (await _order(order.id)).next_deadline_at is None  # parked, not spinning
    # The transfer fails: the deadline applies again, and the next sweep cancels.
    await payments.record_charge_outcome(result.payment.id, succeeded=False, reason="returned")
    assert (await _order(order.id)).next_deadline_at is not None
    assert (await sweep.run_sweep()).enforced == {OrderStatus.CANCELLED.value: 1}


async def test_bad_input_is_refused_and_changes_nothing(frozen_clock: clock.FrozenClock) -> None:
    b, s, unpaid = await factories.confirmed_order()
    ship = lifecycle.ship_order
    await _refused(ErrorCode.BALANCE_NOT_PAID, unpaid.id, ship(s.principal, unpaid.id, _shipment()))
    await _refused(
        ErrorCode.NOT_SHIPPED, unpaid.id, lifecycle.confirm_receipt(b.principal, unpaid.id)
    )
    await _refused(
        ErrorCode.SHIPPING_DEADLINE_NOT_PASSED,
        unpaid.id,
        lifecycle.claim_late_shipment_refund(b.principal, unpaid.id, idempotency_key="x"),
    )
    b, s, order = await _paid_order()
    await _refused(
        ErrorCode.SHIPPING_DEADLINE_NOT_PASSED,
        order.id,
        lifecycle.claim_late_shipment_refund(b.principal, order.id, idempotency_key="early"),
    )
    await _refused(ErrorCode.FORBIDDEN, order.id, ship(b.principal, order.id, _shipment()))
    await _refused(
        ErrorCode.INVALID_INPUT,
        order.id,
        ship(s.principal, order.id, _shipment(clock.now() + dt.timedelta(hours=1))),
    )
    await _refused(
        ErrorCode.INVALID_INPUT, order.id, ship(s.principal, order.id, _shipment(carrier=" "))
    )
    await _refused(
        ErrorCode.NOT_SHIPPED, order.id, lifecycle.confirm_receipt(b.principal, order.id)
    )
    await ship(s.principal, order.id, _shipment())
    await _refused(ErrorCode.ALREADY_SHIPPED, order.id, ship(s.principal, order.id, _shipment()))
    await _refused(ErrorCode.FORBIDDEN, order.id, lifecycle.confirm_receipt(s.principal, order.id))
    frozen_clock.advance(days=40)  # past the deadline, but it shipped on time
    await _refused(
        ErrorCode.SHIPPED_ON_TIME,
        order.id,
        lifecycle.claim_late_shipment_refund(b.principal, order.id, idempotency_key="on-time"),
    )
    await lifecycle.confirm_receipt(b.principal, order.id)
    await _refused(
        ErrorCode.INVALID_TRANSITION, order.id, lifecycle.confirm_receipt(b.principal, order.id)
    )
    stranger = await factories.buyer()
    await _refused(
        ErrorCode.NOT_FOUND, order.id, lifecycle.confirm_receipt(stranger.principal, order.id)
    )


async def test_concurrent_sweeps_enforce_each_deadline_once(
    frozen_clock: clock.FrozenClock,
) -> None:
    paid = [await _paid_order() for _ in range(4)]
    unpaid = [await factories.confirmed_order() for _ in range(3)]
    frozen_clock.advance(days=31)
    reports = await asyncio.gather(*[sweep.run_sweep() for _ in range(3)])
    enforced = sum((r.enforced for r in reports), start=type(reports[0].enforced)())
    assert enforced == {OrderStatus.OVERDUE.value: 4, OrderStatus.CANCELLED.value: 3}
    for _, _, order in paid + unpaid:
        assert len(await _scheduler_events(order.id)) == 1


async def test_the_transitions_check_their_deadline_themselves(
    frozen_clock: clock.FrozenClock,
) -> None:
    _, _, order = await _paid_order()
    assert await lifecycle.mark_overdue(order.id) is None  # not due yet
    assert await lifecycle.cancel_unpaid(order.id) is None  # not its deadline
    frozen_clock.advance(days=30)
    assert await lifecycle.mark_overdue(order.id) == OrderStatus.OVERDUE
    assert await lifecycle.mark_overdue(order.id) is None  # once
    assert await _scheduler_events(order.id) == ["SHIPPING_DEADLINE_PASSED"]


async def test_overdue_application_reviews_are_flagged_once(
    frozen_clock: clock.FrozenClock,
) -> None:
    from models import trade_assurance

    s = await factories.supplier()
    application = await trade_assurance.apply(s.principal, None)
    assert (await sweep.run_sweep()).applications_flagged == []
    frozen_clock.advance(days=4)  # Friday + 2 business days = Tuesday
    assert (await sweep.run_sweep()).applications_flagged == [application.id]
    assert (await sweep.run_sweep()).applications_flagged == []
    row = await TradeAssuranceApplication.objects().get(
        TradeAssuranceApplication.id == application.id
    )
    assert row is not None and row.flagged_at == clock.now()


async def test_orders_due_within_days_and_overdue(frozen_clock: clock.FrozenClock) -> None:
    b, s, soon = await _paid_order()  # ships within 30 days
    await factories.confirmed_order(b, s)  # payment due within 7 days
    mediator = await factories.staff()

    async def ids(who: factories.Actor, **kw: Any) -> set[int]:
        rows, _ = await orders.list_orders(who.principal, first=50, after_id=None, **kw)
        return {o.id for o in rows}

    assert await ids(s, due_within_days=29) == set()
    assert await ids(s, due_within_days=30) == {soon.id}
    assert len(await ids(b, due_within_days=7)) == 1  # the payment deadline
    assert len(await ids(b, due_within_days=30)) == 2
    assert await ids(mediator, overdue_only=True) == set()
    frozen_clock.advance(days=31)
    assert len(await ids(mediator, overdue_only=True)) == 2  # both past due, unswept
    await sweep.run_sweep()
    assert await ids(b, overdue_only=True) == {soon.id}  # OVERDUE; the other is cancelled
    with pytest.raises(DomainError):
        await ids(b, due_within_days=-1)


async def test_a_failing_order_does_not_block_the_sweep(
    frozen_clock: clock.FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    paid = [await _paid_order() for _ in range(3)]
    broken = paid[0][2].id
    real = lifecycle.mark_overdue

    async def flaky(order_id: int) -> str | None:
        if order_id == broken:
            raise RuntimeError("boom")
        return await real(order_id)

    monkeypatch.setitem(lifecycle.ENFORCERS, OrderStatus.PAID.value, flaky)
    frozen_clock.advance(days=31)
    report = await sweep.run_sweep()
    assert report.enforced == {OrderStatus.OVERDUE.value: 2} and report.failed == [broken]
    assert (await _order(broken)).status == OrderStatus.PAID  # still due: next sweep
    monkeypatch.setitem(lifecycle.ENFORCERS, OrderStatus.PAID.value, real)
    assert (await sweep.run_sweep()).enforced == {OrderStatus.OVERDUE.value: 1}


async def test_a_failing_selection_ends_the_sweep(monkeypatch: pytest.MonkeyPatch) -> None:
    def unreachable(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("database unreachable")

    monkeypatch.setattr(sweep, "due_query", unreachable)
    with pytest.raises(ConnectionError):  # the scheduler logs it and tries at the next tick
        await sweep.run_sweep()


async def test_the_shipment_date_allows_a_clock_a_little_ahead_and_a_date_of_the_day(
    frozen_clock: clock.FrozenClock,
) -> None:
    _, s, order = await _paid_order()
    confirmed = (await Order.objects().get(Order.id == order.id)).confirmed_at  # type: ignore[union-attr]
    assert confirmed is not None
    frozen_clock.advance(hours=1)
    with pytest.raises(DomainError) as future:
        await lifecycle.ship_order(
            s.principal, order.id, _shipment(clock.now() + dt.timedelta(hours=1))
        )
    assert "is in the future (server time" in future.value.message
    with pytest.raises(DomainError) as before:
        await lifecycle.ship_order(
            s.principal, order.id, _shipment(confirmed - dt.timedelta(days=1))
        )
    assert "before the order was confirmed" in before.value.message
    # Midnight of the day it was confirmed, as a date picker sends it: accepted; as is a
    # phone's clock a minute ahead of ours.
    midnight = dt.datetime.combine(confirmed.date(), dt.time(), tzinfo=dt.UTC)
    shipped = await lifecycle.ship_order(s.principal, order.id, _shipment(midnight))
    assert shipped.shipped_at == midnight
    _, s2, other = await _paid_order()
    ahead = clock.now() + dt.timedelta(minutes=1)
    assert (
        await lifecycle.ship_order(s2.principal, other.id, _shipment(ahead))
    ).shipped_at == ahead


async def test_a_back_dated_shipment_does_not_bring_automatic_receipt_forward(
    frozen_clock: clock.FrozenClock,
) -> None:
    # Recorded on day 20 as shipped on day 0, it was received automatically at once (day
    # 0 + 15 days of express had passed) and the money released 30 days later.
    _, s, order = await _paid_order()
    shipped_on = clock.now()
    frozen_clock.advance(days=20)
    shipped = await lifecycle.ship_order(
        s.principal, order.id, _shipment(shipped_on, method=ShippingMethod.EXPRESS)
    )
    assert shipped.next_deadline_at == clock.now() + dt.timedelta(days=15)
    assert (await sweep.run_sweep()).total == 0
