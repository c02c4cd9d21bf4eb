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


def receipt_due(order: Order) -> dt.datetime | None:
    """Receipt is confirmed automatically this long after the declared shipment date."""
    if order.shipped_at is None:
        return None
    method = order.shipment_method or order.shipping_method
    days = config.current().auto_receipt_days_for(method)
    return order.shipped_at + dt.timedelta(days=days)


def next_due(order: Order, *, anything_paid: bool, payment_pending: bool) -> dt.datetime | None:
    """When the system must next act on this order, or None if it has nothing to enforce.

    Unpaid (nothing in escrow and no payment on its way): the payment deadline. Paid:
    the shipping deadline. Shipped: automatic receipt. Received: the end of the claim
    window. Anything else (overdue, ended) waits for a party, not for the clock."""
    status = order.status
    if status in AWAITING_PAYMENT:
        return None if anything_paid or payment_pending else order.payment_deadline
    if status == OrderStatus.PAID.value:
        return order.shipping_deadline
    if status == OrderStatus.SHIPPED.value:
        return receipt_due(order)
    if status == OrderStatus.RECEIVED.value:
        return order.claim_window_ends_at
    return None


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
