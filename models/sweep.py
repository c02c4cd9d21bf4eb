"""The deadline sweep: find orders whose next deadline is due and enforce each one.

Due orders are taken in small batches, each in one short write transaction: the
selection locks the rows it picks (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so
concurrent sweepers in other processes take different orders instead of queueing), then
each order's transition checks again under that lock that its deadline is due. A
sweeper killed midway loses only its open transaction, which rolls back; those orders
are still due and the next sweep takes them. An order whose transition fails is logged
and skipped for the rest of the sweep, so it cannot block the others. On SQLite the
IMMEDIATE write transaction serialises sweepers already.

The selection reads the partial index on `trade_order(next_deadline_at)`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Collection
from typing import Any

from models import clock, disputes, lifecycle, payments, supplier_events
from models.db import is_postgres, write_transaction
from models.enums import ApplicationStatus, RefundStatus
from models.tables import Order, TradeAssuranceApplication

log = logging.getLogger("trade_assurance.sweep")


@dataclasses.dataclass
class SweepReport:
    enforced: Counter[str] = dataclasses.field(default_factory=Counter)  # new status -> n
    skipped: int = 0  # due orders another sweeper had enforced, or deferred
    failed: list[int] = dataclasses.field(default_factory=list)  # left for the next sweep
    applications_flagged: list[int] = dataclasses.field(default_factory=list)
    disputes_escalated: list[int] = dataclasses.field(default_factory=list)
    refunds_retried: list[int] = dataclasses.field(default_factory=list)
    refunds_settled: list[int] = dataclasses.field(default_factory=list)  # of those retried
    refunds_flagged: list[int] = dataclasses.field(default_factory=list)  # late, newly flagged
    # PENDING payments left without the provider's answer, settled by asking it.
    payments_reconciled: list[int] = dataclasses.field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.enforced.values())

    def lines(self) -> list[str]:
        out = [f"{status}: {n}" for status, n in sorted(self.enforced.items())]
        out.append(f"orders enforced: {self.total}, skipped: {self.skipped}")
        if self.failed:
            out.append(f"orders failed (left for the next sweep): {self.failed}")
        out.append(f"applications flagged for review: {len(self.applications_flagged)}")
        out.append(f"disputes escalated: {len(self.disputes_escalated)}")
        out.append(
            f"refunds retried: {len(self.refunds_retried)}, settled: {len(self.refunds_settled)}"
        )
        out.append(f"refunds flagged late: {len(self.refunds_flagged)}")
        out.append(f"payments reconciled with the provider: {len(self.payments_reconciled)}")
        return out

    @property
    def anything(self) -> bool:
        return bool(
            self.total or self.applications_flagged or self.failed or self.disputes_escalated
            or self.refunds_retried or self.refunds_flagged or self.payments_reconciled
        )  # fmt: skip


BATCH = 20  # due orders per transaction: a few milliseconds of row locks, one commit


def due_query(limit: int = BATCH, exclude: Collection[int] = ()) -> Any:
    """The due-order selection, oldest due first, as the sweep runs it (on PostgreSQL
    it locks the rows it returns and skips rows other sweepers hold)."""
    query = (
        Order.select(Order.id, Order.status)
        .where(Order.next_deadline_at.is_not_null() & (Order.next_deadline_at <= clock.now()))
        .order_by(Order.next_deadline_at)
        .limit(limit)
    )
    if exclude:
        query = query.where(Order.id.not_in(list(exclude)))
    return query.lock_rows(skip_locked=True) if is_postgres() else query


async def enforce_next(
    limit: int = BATCH, *, exclude: Collection[int] = (), attempted: list[int] | None = None
) -> list[tuple[int, str | None]]:
    """Take up to `limit` due orders and enforce their deadlines, in one transaction;
    each order's new status (None: nothing to do after all). Empty when nothing is due
    (or every due order is being handled by another sweeper). `attempted` gets each
    order id before its transition runs, so a caller knows which one failed."""
    done: list[tuple[int, str | None]] = []
    async with write_transaction():
        for row in await due_query(limit, exclude):
            order_id = int(row["id"])
            if attempted is not None:
                attempted.append(order_id)
            new_status = await lifecycle.enforce_due(order_id, str(row["status"]))
            if new_status is None:
                # Nothing to enforce after all: make sure the order is not picked again
                # until a transition schedules it anew.
                await _unschedule_if_still_due(order_id)
            done.append((order_id, new_status))
    return done


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
            .returning(TradeAssuranceApplication.id, TradeAssuranceApplication.supplier)
        )
        for row in rows:
            await supplier_events.record(
                int(row["supplier"]), "APPLICATION_OVERDUE",
                detail=f"application {row['id']} is past its review due date",
            )  # fmt: skip
    flagged = sorted(int(r["id"]) for r in rows)
    for application_id in flagged:
        log.warning("application %s is past its review due date: flagged", application_id)
    return flagged


async def _escalate_disputes() -> list[int]:
    """Open disputes past their automatic escalation time, each escalated once."""
    escalated: list[int] = []
    while batch := await disputes.escalate_due():
        escalated.extend(batch)
    return escalated


async def _flag_late_refunds() -> list[int]:
    """Refunds not paid out by their due date, each flagged once."""
    flagged: list[int] = []
    while batch := await payments.flag_late_refunds():
        flagged.extend(batch)
    return flagged


async def run_sweep(*, max_orders: int | None = None, batch: int = BATCH) -> SweepReport:
    """One sweep: every due order (up to `max_orders`), then the application queue, the
    automatic dispute escalations, the refund retries, the late-refund flags and the
    payments to reconcile with the provider.

    An order whose transition fails is logged and left for the next sweep; its batch is
    rolled back and redone one order per transaction, so the others still go through."""
    report = SweepReport()
    seen: set[int] = set()
    failed: set[int] = set()
    size = batch
    while max_orders is None or len(seen) < max_orders:
        limit = size if max_orders is None else min(size, max_orders - len(seen))
        attempted: list[int] = []
        try:
            taken = await enforce_next(limit, exclude=failed, attempted=attempted)
        except Exception:
            if not attempted:
                raise  # the selection itself failed (database unreachable?): stop here
            if size > 1:
                size = 1  # redo that batch order by order, to find the one that fails
                continue
            failed.update(attempted[-1:])
            log.exception("enforcing the deadline of order %s failed", attempted[-1:])
            continue
        if not taken:
            break
        for order_id, new_status in taken:
            seen.add(order_id)
            if new_status is None:
                report.skipped += 1
            else:
                report.enforced[new_status] += 1
    report.failed = sorted(failed)
    report.applications_flagged = await flag_overdue_applications()
    report.disputes_escalated = await _escalate_disputes()
    # Retried before flagging, so a refund that settles on its last day is not flagged.
    retried = await payments.retry_due_refunds()
    report.refunds_retried = [r.id for r in retried]
    report.refunds_settled = [r.id for r in retried if r.status == RefundStatus.SETTLED.value]
    report.refunds_flagged = await _flag_late_refunds()
    report.payments_reconciled = await payments.reconcile_pending_payments()
    if report.anything:
        log.info("deadline sweep: %s", "; ".join(report.lines()))
    return report
