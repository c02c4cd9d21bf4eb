"""The deadline sweep: find orders whose next deadline is due and enforce each one.

Each due order is taken in its own short write transaction: the selection locks the row
it picks (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so concurrent sweepers in other
processes take different orders instead of queueing), then the order's transition checks
again under that lock that its deadline is due. A sweeper killed midway loses only its
open transaction, which rolls back; the order is still due and the next sweep takes it.
On SQLite the IMMEDIATE write transaction serialises sweepers already.

The selection reads the partial index on `trade_order(next_deadline_at)`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter

from models import clock, lifecycle
from models.db import is_postgres, write_transaction
from models.enums import ApplicationStatus
from models.tables import Order, TradeAssuranceApplication

log = logging.getLogger("trade_assurance.sweep")


@dataclasses.dataclass
class SweepReport:
    enforced: Counter[str] = dataclasses.field(default_factory=Counter)  # new status -> n
    skipped: int = 0  # due orders another sweeper had enforced, or deferred
    applications_flagged: list[int] = dataclasses.field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.enforced.values())

    def lines(self) -> list[str]:
        out = [f"{status}: {n}" for status, n in sorted(self.enforced.items())]
        out.append(f"orders enforced: {self.total}, skipped: {self.skipped}")
        out.append(f"applications flagged for review: {len(self.applications_flagged)}")
        return out


def due_query() -> object:
    """The due-order selection (one row, oldest due first), as the sweep runs it."""
    query = (
        Order.select(Order.id, Order.status)
        .where(Order.next_deadline_at.is_not_null() & (Order.next_deadline_at <= clock.now()))
        .order_by(Order.next_deadline_at)
        .limit(1)
    )
    return query.lock_rows(skip_locked=True) if is_postgres() else query


async def enforce_next() -> tuple[int, str | None] | None:
    """Take one due order and enforce its deadline, in one transaction. None when
    nothing is due (or every due order is being handled by another sweeper)."""
    async with write_transaction():
        rows = await due_query()  # type: ignore[misc]
        if not rows:
            return None
        order_id, status = int(rows[0]["id"]), str(rows[0]["status"])
        new_status = await lifecycle.enforce_due(order_id, status)
        if new_status is None:
            # Nothing to enforce after all: make sure the order is not picked again
            # until a transition schedules it anew.
            await _unschedule_if_still_due(order_id)
        return order_id, new_status


async def _unschedule_if_still_due(order_id: int) -> None:
    await Order.update({Order.next_deadline_at: None}).where(
        (Order.id == order_id) & (Order.next_deadline_at <= clock.now())
    )


async def flag_overdue_applications() -> list[int]:
    """Pending Trade Assurance applications past their review due date are flagged for
    the mediators, once each (the WHERE re-checks `flagged_at` under the row locks)."""
    now = clock.now()
    async with write_transaction():
        rows = await (
            TradeAssuranceApplication.update({TradeAssuranceApplication.flagged_at: now})
            .where(
                (TradeAssuranceApplication.status == ApplicationStatus.PENDING.value)
                & TradeAssuranceApplication.flagged_at.is_null()
                & (TradeAssuranceApplication.review_due_at <= now)
            )
            .returning(TradeAssuranceApplication.id)
        )
    flagged = sorted(int(r["id"]) for r in rows)
    for application_id in flagged:
        log.warning("application %s is past its review due date: flagged", application_id)
    return flagged


async def run_sweep(*, max_orders: int | None = None) -> SweepReport:
    """One sweep: every due order (up to `max_orders`), then the application queue."""
    report = SweepReport()
    seen: set[int] = set()
    while max_orders is None or len(seen) < max_orders:
        taken = await enforce_next()
        if taken is None:
            break
        order_id, new_status = taken
        if order_id in seen and new_status is None:
            break  # defensive: never spin on one order
        seen.add(order_id)
        if new_status is None:
            report.skipped += 1
        else:
            report.enforced[new_status] += 1
    report.applications_flagged = await flag_overdue_applications()
    if report.total or report.applications_flagged:
        log.info("deadline sweep: %s", "; ".join(report.lines()))
    return report
