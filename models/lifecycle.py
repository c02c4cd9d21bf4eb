"""After payment: shipment, receipt, the claim window, and the deadlines the system
enforces (issue 4). One function per transition, each one transaction that locks the
order, checks the transition, writes the change, any ledger posting and its event.

The scheduler's transitions take only an order id and act as `events.SCHEDULER`; each
checks again, under the order's row lock, that its deadline is due, so however many
sweeps reach the same order, the first one enforces it and the others find nothing to do.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging

from models import clock, config, deadlines, events, idempotency, ledger, payments
from models.accounts import Principal
from models.db import write_transaction
from models.enums import DisputeStatus, OrderStatus, PaymentStatus, Role, Scope, ShippingMethod
from models.errors import DomainError, ErrorCode
from models.money import Money
from models.orders import (
    check_status,
    goods_payment_pending,
    lock_order,
    move_to,
    refuse_while_payment_pending,
    require_scope,
    succeeded_minor,
    supplier_company,
)
from models.tables import Dispute, Order, Payment, Refund

log = logging.getLogger("trade_assurance.lifecycle")

MAX_SHIPMENT_TEXT = 100
# A client's clock a little ahead of ours does not make "now" a date in the future.
CLOCK_SKEW = dt.timedelta(minutes=5)
UNPAID = [
    OrderStatus.PENDING_CONFIRMATION,
    OrderStatus.AWAITING_INITIAL_PAYMENT,
    OrderStatus.AWAITING_BALANCE,
]
SHIPPED_STATUSES = frozenset(
    {OrderStatus.SHIPPED.value, OrderStatus.RECEIVED.value, OrderStatus.COMPLETED.value}
)


@dataclasses.dataclass(frozen=True, slots=True)
class Shipment:
    carrier: str
    tracking_number: str
    shipped_at: dt.datetime  # the shipment date the supplier declares
    method: ShippingMethod | None = None  # None: the contract's shipping method


def _check_shipment(shipment: Shipment) -> Shipment:
    carrier = shipment.carrier.strip()
    tracking = shipment.tracking_number.strip()
    for value, field in ((carrier, "carrier"), (tracking, "trackingNumber")):
        if not value or len(value) > MAX_SHIPMENT_TEXT:
            raise DomainError(
                ErrorCode.INVALID_INPUT, f"{field} has 1 to {MAX_SHIPMENT_TEXT} characters", field
            )
    if shipment.shipped_at.tzinfo is None:
        raise DomainError(ErrorCode.INVALID_INPUT, "the date needs a time zone", "shippedAt")
    now = clock.now()
    if shipment.shipped_at > now + CLOCK_SKEW:
        raise DomainError(
            ErrorCode.INVALID_INPUT,
            f"shippedAt {shipment.shipped_at.isoformat()} is in the future (server time "
            f"{now.isoformat(timespec='seconds')}); a shipment is recorded once it has left",
            "shippedAt",
        )
    return dataclasses.replace(shipment, carrier=carrier, tracking_number=tracking)


def _schedule(order: Order, *, anything_paid: bool = True) -> None:
    order.next_deadline_at = deadlines.next_due(
        order, anything_paid=anything_paid, payment_pending=False
    )


async def ship_order(principal: Principal, order_id: int, shipment: Shipment) -> Order:
    """The supplier records the shipment once the balance is paid. After the shipping
    deadline (or once the order is overdue) it is recorded as late, which lets the buyer
    claim a full refund. An order that went overdue with only its deposit paid never
    ships: its balance can no longer be paid."""
    require_scope(principal, Scope.ORDERS)
    shipment = _check_shipment(shipment)
    async with write_transaction():
        order, role = await lock_order(principal, order_id)
        if role is not Role.SUPPLIER:
            raise DomainError(ErrorCode.FORBIDDEN, "only the order's supplier ships it")
        if order.status in SHIPPED_STATUSES or order.shipped_at is not None:
            raise DomainError(
                ErrorCode.ALREADY_SHIPPED, "this order's shipment is already recorded", "orderId"
            )
        if order.status in {s.value for s in UNPAID}:
            raise DomainError(
                ErrorCode.BALANCE_NOT_PAID,
                "the goods ship once the whole order is paid into escrow",
                "orderId",
            )
        check_status(order, [OrderStatus.PAID, OrderStatus.OVERDUE], "ship")
        if (
            order.status == OrderStatus.OVERDUE.value
            and await succeeded_minor(order.id) < order.total_minor
        ):
            raise DomainError(
                ErrorCode.BALANCE_NOT_PAID,
                "the balance was not paid by the shipping deadline; the goods ship once the "
                "whole order is paid into escrow",
                "orderId",
            )
        # By calendar day: a date picker sends midnight of the day the goods left.
        shipped_day = shipment.shipped_at.astimezone(dt.UTC).date()
        if order.confirmed_at is not None and shipped_day < order.confirmed_at.date():
            raise DomainError(
                ErrorCode.INVALID_INPUT,
                f"the shipment date ({shipped_day}) is before the order was confirmed "
                f"({order.confirmed_at.date()})",
                "shippedAt",
            )
        now = clock.now()
        old = order.status
        late = old == OrderStatus.OVERDUE.value or shipment.shipped_at > order.shipping_deadline
        order.status = OrderStatus.SHIPPED.value
        order.shipped_at = shipment.shipped_at
        order.shipment_recorded_at = now
        order.carrier = shipment.carrier
        order.tracking_number = shipment.tracking_number
        order.shipment_method = (shipment.method or ShippingMethod(order.shipping_method)).value
        order.shipped_late = late
        _schedule(order)
        order.updated_at = now
        await order.save()
        await events.record(
            order.id, "SHIPPED", old_status=old, new_status=order.status,
            actor=events.Actor.of(principal), at=now,
            reason=f"{order.shipment_method} by {order.carrier}, tracking {order.tracking_number}"
            + (" (late: after the shipping deadline)" if late else ""),
        )  # fmt: skip
    return order


async def _receive(order: Order, *, actor: events.Actor, automatic: bool) -> None:
    now = clock.now()
    old = order.status
    order.status = OrderStatus.RECEIVED.value
    order.received_at = now
    order.receipt_auto = automatic
    order.claim_window_ends_at = now + dt.timedelta(days=config.current().claim_window_days)
    _schedule(order)
    order.updated_at = now
    await order.save()
    await events.record(
        order.id, "RECEIPT_AUTO_CONFIRMED" if automatic else "RECEIPT_CONFIRMED",
        old_status=old, new_status=order.status, actor=actor, at=now,
        reason=f"claim window until {order.claim_window_ends_at.isoformat()}",
    )  # fmt: skip


async def confirm_receipt(principal: Principal, order_id: int) -> Order:
    """The buyer confirms the goods arrived; the claim window starts."""
    require_scope(principal, Scope.ORDERS)
    async with write_transaction():
        order, role = await lock_order(principal, order_id)
        if role is not Role.BUYER:
            raise DomainError(ErrorCode.FORBIDDEN, "only the order's buyer confirms receipt")
        if order.shipped_at is None:
            raise DomainError(ErrorCode.NOT_SHIPPED, "the order has not been shipped", "orderId")
        check_status(order, [OrderStatus.SHIPPED], "confirm receipt of")
        await _receive(order, actor=events.Actor.of(principal), automatic=False)
    return order


@dataclasses.dataclass(frozen=True, slots=True)
class Claim:
    order: Order
    refunds: list[Refund]  # one per payment it returns (`payments.start_refund`)


def _check_late(order: Order, now: dt.datetime) -> None:
    """On-time shipment protection is broken: overdue, or shipped after the deadline."""
    status = order.status
    if status in SHIPPED_STATUSES:
        if order.shipped_late and status != OrderStatus.COMPLETED.value:
            return
        if not order.shipped_late:
            raise DomainError(
                ErrorCode.SHIPPED_ON_TIME,
                "the order shipped by its shipping deadline; there is no late-shipment claim",
                "orderId",
            )
    if deadlines.shipping_deadline_missed(order, now):
        return  # OVERDUE, or past it (paid, or a deposit) before the sweep marked it
    if status in {s.value for s in UNPAID} | {OrderStatus.PAID.value} and (
        now < order.shipping_deadline
    ):
        raise DomainError(
            ErrorCode.SHIPPING_DEADLINE_NOT_PASSED,
            f"the shipping deadline ({order.shipping_deadline.isoformat()}) has not passed",
            "orderId",
        )
    check_status(order, [OrderStatus.OVERDUE], "claim a late-shipment refund on")


async def claim_late_shipment_refund(
    principal: Principal, order_id: int, *, idempotency_key: str
) -> Claim:
    """The buyer claims a full refund of what escrow holds for an order that was not
    shipped by its shipping deadline (or was shipped after it). The order ends REFUNDED;
    the refund goes through `payments.start_refund` and then the provider."""
    key = idempotency.check_key(idempotency_key)
    scope = idempotency.scope_of(principal)
    request = {"order": order_id}
    async with idempotency.first_claim(), write_transaction():
        order, role = await lock_order(principal, order_id)
        previous = await idempotency.replay(scope, key, "claimLateShipmentRefund", request)
        if previous is not None:
            # Stored before refunds were split: one "refund".
            ids = previous.get("refunds") or [previous["refund"]]
            return Claim(
                order, await Refund.objects().where(Refund.id.is_in(ids)).order_by(Refund.id)
            )
        if role is not Role.BUYER:
            raise DomainError(ErrorCode.FORBIDDEN, "only the order's buyer may claim a refund")
        require_scope(principal, Scope.PAYMENTS)
        now = clock.now()
        _check_late(order, now)
        await refuse_while_disputed(order.id)
        if order.status in deadlines.AWAITING_PAYMENT:
            # Ending the order now would leave that money arriving at a refunded order;
            # the sweep waits for the outcome as well.
            await refuse_while_payment_pending(order.id)
        held = await ledger.held(order.id)
        if held <= 0:
            raise DomainError(
                ErrorCode.INSUFFICIENT_HELD_FUNDS, "escrow holds nothing for this order", "orderId"
            )
        await move_to(
            order, OrderStatus.REFUNDED, "LATE_SHIPMENT_REFUND_CLAIMED",
            actor=events.Actor.of(principal), at=now,
            reason=f"on-time shipment protection: {Money(held, order.currency)} back to the buyer",
        )  # fmt: skip
        refunds = await payments.start_refund(
            order.id, held, actor=events.Actor.of(principal), reason="late shipment"
        )
        await idempotency.remember(
            scope, key, "claimLateShipmentRefund", request, {"refunds": [r.id for r in refunds]}
        )
    # Committed: the provider pays it out now (a failure is retried, never lost).
    return Claim(order, await payments.execute_refunds(refunds))


# --- the scheduler's transitions ------------------------------------------------------


async def has_open_dispute(order_id: int) -> bool:
    """Whether a dispute on the order is open or escalated (it stops the automatic
    release: the dispute's outcome decides the money)."""
    return bool(
        await Dispute.exists().where(
            (Dispute.order == order_id)
            & Dispute.status.is_in([DisputeStatus.OPEN.value, DisputeStatus.ESCALATED.value])
        )
    )


async def refuse_while_disputed(order_id: int) -> None:
    """A refund claim on an order with an open dispute is refused: the dispute's outcome
    decides the money. (Claiming emptied escrow and ended the order REFUNDED under the
    open dispute, which a mediator could then decide for the supplier: REFUNDED ->
    COMPLETED, found by tests/test_escrow_model.py.)"""
    if await has_open_dispute(order_id):
        raise DomainError(
            ErrorCode.DISPUTE_ALREADY_OPEN,
            "this order has an open dispute; its outcome decides the refund",
            "orderId",
        )


async def release_held_and_complete(
    order: Order, *, kind: str, actor: events.Actor, why: str = ""
) -> int:
    """Release what escrow still holds for the (locked) order to its supplier and complete
    it, with its event; the amount released. Call inside the write transaction."""
    now = clock.now()
    held = await ledger.held(order.id)
    if held > 0:
        supplier = await supplier_company(order.supplier)
        await ledger.post_release(order.id, supplier, order.currency, held, now)
    old = order.status
    order.status = OrderStatus.COMPLETED.value
    order.completed_at = now
    order.next_deadline_at = None
    order.updated_at = now
    await order.save([Order.status, Order.completed_at, Order.next_deadline_at, Order.updated_at])
    await events.record(
        order.id, kind, old_status=old, new_status=order.status, actor=actor, at=now,
        reason=f"{why}{Money(held, order.currency)} released to the supplier",
    )  # fmt: skip
    return held


async def cancel_unpaid(order_id: int) -> str | None:
    """Payment deadline passed with nothing paid: cancelled, coverage given back."""
    async with write_transaction():
        order, _ = await lock_order(None, order_id)
        return await _cancel_unpaid(order, await succeeded_minor(order.id))


async def _cancel_unpaid(order: Order, paid_minor: int) -> str | None:
    now = clock.now()
    if (
        order.status not in deadlines.AWAITING_PAYMENT
        or order.payment_deadline is None
        or order.payment_deadline > now
    ):
        return None
    paid = paid_minor > 0
    pending = await Payment.exists().where(
        (Payment.order == order.id) & (Payment.status == PaymentStatus.PENDING.value)
    )
    if paid or pending:
        # Money arrived (the shipping deadline applies now) or is on its way (a pending
        # payment that fails puts the deadline back: payments.record_charge_outcome).
        order.next_deadline_at = deadlines.next_due(
            order, anything_paid=paid, payment_pending=pending
        )
        await order.save([Order.next_deadline_at])
        return None
    await move_to(
        order, OrderStatus.CANCELLED, "PAYMENT_DEADLINE_PASSED",
        actor=events.SCHEDULER, at=now,
        reason="nothing was paid by the payment deadline; coverage returned to the limit",
    )  # fmt: skip
    return order.status


async def mark_overdue(order_id: int) -> str | None:
    """Shipping deadline passed without a shipment: overdue; the buyer may claim a refund
    of what was paid. A PAID order, or one with its deposit paid and the balance not (the
    balance is due before shipment, so an unpaid one does not excuse the deadline)."""
    async with write_transaction():
        order, _ = await lock_order(None, order_id)
        return await _mark_overdue(order, await succeeded_minor(order.id))


async def _mark_overdue(order: Order, paid_minor: int) -> str | None:
    now = clock.now()
    if order.shipping_deadline > now:
        return None
    why = "not shipped by the shipping deadline; the buyer may claim a full refund"
    if order.status in deadlines.AWAITING_PAYMENT:
        if paid_minor <= 0:
            return None  # nothing to protect: the payment deadline applies (cancel_unpaid)
        if await goods_payment_pending(order.id):
            # The balance is on its way: parked until its outcome, which schedules the
            # order again (payments.record_charge_outcome), due at once.
            order.next_deadline_at = None
            await order.save([Order.next_deadline_at])
            return None
        why = (
            "the balance was not paid and nothing shipped by the shipping deadline; the "
            "buyer may claim back what was paid"
        )
    elif order.status != OrderStatus.PAID.value:
        return None
    await move_to(
        order, OrderStatus.OVERDUE, "SHIPPING_DEADLINE_PASSED",
        actor=events.SCHEDULER, at=now, reason=why,
    )  # fmt: skip
    return order.status


async def enforce_awaiting_payment(order_id: int) -> str | None:
    """The deadline of an order waiting for a payment: with nothing paid, the payment
    deadline cancels it; with the deposit paid, the shipping deadline makes it overdue."""
    async with write_transaction():
        order, _ = await lock_order(None, order_id)
        paid = await succeeded_minor(order.id)
        if paid > 0:
            return await _mark_overdue(order, paid)
        return await _cancel_unpaid(order, paid)


async def auto_confirm_receipt(order_id: int) -> str | None:
    """No receipt confirmed within the shipping method's days: confirmed automatically."""
    async with write_transaction():
        order, _ = await lock_order(None, order_id)
        due = deadlines.receipt_due(order)
        if order.status != OrderStatus.SHIPPED.value or due is None or due > clock.now():
            return None
        await _receive(order, actor=events.SCHEDULER, automatic=True)
    return order.status


async def release_after_claim_window(order_id: int) -> str | None:
    """The claim window ended with no open dispute: what escrow still holds goes to the
    supplier and the order completes."""
    async with write_transaction():
        order, _ = await lock_order(None, order_id)
        now = clock.now()
        ends = order.claim_window_ends_at
        if order.status != OrderStatus.RECEIVED.value or ends is None or ends > now:
            return None
        if await has_open_dispute(order.id):
            # Frozen: the dispute's outcome decides the money; resolving it schedules
            # the release again (models/disputes.py).
            order.next_deadline_at = None
            await order.save([Order.next_deadline_at])
            return None
        await release_held_and_complete(order, kind="CLAIM_WINDOW_ENDED", actor=events.SCHEDULER)
    return order.status


# Which transition enforces the deadline an order in each status waits for.
ENFORCERS = {
    OrderStatus.AWAITING_INITIAL_PAYMENT.value: enforce_awaiting_payment,
    OrderStatus.AWAITING_BALANCE.value: enforce_awaiting_payment,
    OrderStatus.PAID.value: mark_overdue,
    OrderStatus.SHIPPED.value: auto_confirm_receipt,
    OrderStatus.RECEIVED.value: release_after_claim_window,
}


async def enforce_due(order_id: int, status: str) -> str | None:
    """Enforce the deadline the order is waiting for; the new status, or None when there
    was nothing to do (another sweep got there first, or the deadline was deferred)."""
    enforcer = ENFORCERS.get(status)
    return await enforcer(order_id) if enforcer else None
