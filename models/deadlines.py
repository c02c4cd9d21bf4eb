"""The deadlines the system enforces on an order, and when each falls due.

Pure functions of the order's row: no queries. `next_due` gives the one the sweep
waits for next (kept in `Order.next_deadline_at` by every transition); `of_order`
lists every deadline that applies to an order, for the views.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from models import clock, config
from models.enums import DeadlineKind, OrderStatus
from models.tables import Order

AWAITING_PAYMENT = frozenset(
    {OrderStatus.AWAITING_INITIAL_PAYMENT.value, OrderStatus.AWAITING_BALANCE.value}
)
# Confirmed and not shipped: the statuses the shipping deadline can pass in.
UNSHIPPED = AWAITING_PAYMENT | {OrderStatus.PAID.value}


def receipt_due(order: Order) -> dt.datetime | None:
    """Receipt is confirmed automatically this long (by the method shipped) after
    shipment. The date is the supplier's word, so a back-dated one does not bring the
    buyer's deadline forward: the clock starts when the shipment was recorded if that is
    later (a shipment recorded on day 20 as of day 0 once completed at once)."""
    if order.shipped_at is None:
        return None
    method = order.shipment_method or order.shipping_method
    days = config.current().auto_receipt_days_for(method)
    start = max(order.shipped_at, order.shipment_recorded_at or order.shipped_at)
    return start + dt.timedelta(days=days)


def next_due(order: Order, *, anything_paid: bool, payment_pending: bool) -> dt.datetime | None:
    """When the system must next act on this order, or None if it has nothing to enforce.

    Unpaid (nothing in escrow): the payment deadline. Paid, or only the deposit paid: the
    shipping deadline (the balance is due before shipment, so an unpaid balance does not
    move it). A payment on its way: None; its outcome schedules the order again. Shipped:
    automatic receipt. Received: the end of the claim window. Anything else (overdue,
    ended) waits for a party, not for the clock."""
    status = order.status
    if status in AWAITING_PAYMENT:
        if payment_pending:
            return None
        return order.shipping_deadline if anything_paid else order.payment_deadline
    if status == OrderStatus.PAID.value:
        return order.shipping_deadline
    if status == OrderStatus.SHIPPED.value:
        return receipt_due(order)
    if status == OrderStatus.RECEIVED.value:
        return order.claim_window_ends_at
    return None


def shipping_deadline_missed(order: Order, now: dt.datetime) -> bool:
    """The shipping deadline passed with nothing shipped: OVERDUE, or past it unshipped
    and not yet marked by the sweep (a claim or dispute must not wait for the sweep).
    Whether anything was paid to protect is the caller's check."""
    if order.status == OrderStatus.OVERDUE.value:
        return True
    return order.status in UNSHIPPED and order.shipping_deadline <= now


@dataclasses.dataclass(frozen=True, slots=True)
class Deadline:
    kind: DeadlineKind
    due_at: dt.datetime
    passed: bool  # the due time has come
    met: bool  # what was due happened (payment made, shipped on time, receipt, release)


def of_order(order: Order, *, paid_minor: int) -> list[Deadline]:
    """Every deadline that applies to the order so far, in the order they fall due."""
    now = clock.now()
    found: list[tuple[DeadlineKind, dt.datetime, bool]] = []
    if order.payment_deadline is not None:
        found.append((DeadlineKind.PAYMENT, order.payment_deadline, paid_minor > 0))
    found.append(
        (
            DeadlineKind.SHIPPING,
            order.shipping_deadline,
            order.shipped_at is not None and not order.shipped_late,
        )
    )
    receipt = receipt_due(order)
    if receipt is not None:
        found.append((DeadlineKind.RECEIPT, receipt, order.received_at is not None))
    if order.claim_window_ends_at is not None:
        found.append(
            (
                DeadlineKind.CLAIM_WINDOW,
                order.claim_window_ends_at,
                order.status == OrderStatus.COMPLETED.value,
            )
        )
    return [Deadline(kind, due, due <= now, met) for kind, due, met in found]
