"""Disputes without HTTP: opening and its assessment, the supplier's answer, the buyer's
acceptance of an offer, escalation (by the buyer, by the sweep), the mediator's decision,
and the claim-window release frozen while a dispute is open. Every test ends with a clean
`ledger.check()`."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
from typing import Any

import pytest

from models import (
    clock,
    disputes,
    events,
    inspections,
    ledger,
    lifecycle,
    payments,
    sweep,
)
from models.disputes import Evidence
from models.enums import (
    ActorKind,
    AssessmentEffect,
    AssessmentRule,
    DisputeDecision,
    DisputeReason,
    DisputeResponse,
    DisputeStatus,
    InspectionResult,
    OrderStatus,
    PaymentMethod,
)
from models.errors import DomainError, ErrorCode
from models.inspections import AttachmentUpload
from models.money import Money
from models.tables import (
    Dispute,
    DisputeEvidence,
    IdempotencyRecord,
    LedgerPosting,
    Order,
    OrderEvent,
    Refund,
)
from server.payments.sandbox import CARD_SUCCEEDS, SandboxProvider
from tests import factories

USD = "USD"
TOTAL = 3_000_00
PDF = b"%PDF-1.7\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"


# The sandbox provider for every test, and a sound ledger after each (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("sandbox")


def usd(minor: int) -> Money:
    return Money(minor, USD)


async def _order(order_id: int) -> Order:
    found = await Order.objects().get(Order.id == order_id)
    assert found is not None
    return found


async def _dispute(dispute_id: int) -> Dispute:
    found = await Dispute.objects().get(Dispute.id == dispute_id)
    assert found is not None
    return found


async def paid_order(
    terms: Any = None,
) -> tuple[factories.Actor, factories.Actor, Order]:
    b, s, order = await factories.confirmed_order(terms=terms)
    result = await payments.pay_order(
        b.principal, order.id, usd(TOTAL), PaymentMethod.CARD,
        idempotency_key=f"pay-{order.id}", source=CARD_SUCCEEDS,
    )  # fmt: skip
    assert result.error is None
    return b, s, await _order(order.id)


async def received_order(terms: Any = None) -> tuple[factories.Actor, factories.Actor, Order]:
    b, s, order = await paid_order(terms)
    shipment = lifecycle.Shipment("Maersk", "MAEU1234567", clock.now())
    await lifecycle.ship_order(s.principal, order.id, shipment)
    await lifecycle.confirm_receipt(b.principal, order.id)
    return b, s, await _order(order.id)


async def open_(
    b: factories.Actor,
    order: Order,
    *,
    reason: DisputeReason = DisputeReason.QUALITY_NOT_AS_AGREED,
    amount: int = 1_000_00,
    key: str = "open",
    **kw: Any,
) -> Dispute:
    return await disputes.open_dispute(
        b.principal, order.id, reason=reason, requested=usd(amount),
        description=kw.pop("description", "Luminous flux 2900 lm, 3600 lm agreed"),
        evidence=kw.pop("evidence", [Evidence("Measured with a calibrated sphere")]),
        idempotency_key=key, **kw,
    )  # fmt: skip


async def snapshot() -> tuple[object, ...]:
    """Everything a refused request must leave as it was."""
    return (
        await Order.select().order_by(Order.id),
        await Dispute.select().order_by(Dispute.id),
        await DisputeEvidence.count(),
        await OrderEvent.count(),
        await LedgerPosting.count(),
        await Refund.count(),
        await IdempotencyRecord.count(),
    )


async def refused(code: ErrorCode, action: Any) -> None:
    before = await snapshot()
    with pytest.raises(DomainError) as failure:
        await action
    assert failure.value.code is code, failure.value.message
    assert await snapshot() == before


async def money(order_id: int) -> ledger.OrderMoney:
    return (await ledger.order_money([order_id]))[order_id]


async def kinds(order_id: int) -> list[str]:
    return [e.kind for e in await disputes.dispute_events(order_id)]


async def lost_events(order_id: int) -> list[str]:
    rows = await OrderEvent.select(OrderEvent.reason).where(
        (OrderEvent.order == order_id) & (OrderEvent.kind == "DISPUTE_LOST_BY_SUPPLIER")
    )
    return [r["reason"] for r in rows]


async def escalated(
    frozen_clock: clock.FrozenClock, *, reject: bool = True
) -> tuple[factories.Actor, factories.Actor, Order, Dispute]:
    b, s, order = await received_order()
    d = await open_(b, order)
    if reject:
        await disputes.respond_to_dispute(
            s.principal, d.id, DisputeResponse.REJECT, text="They conform", idempotency_key="r"
        )
    frozen_clock.advance(days=3)
    d = await disputes.escalate_dispute(b.principal, d.id)
    return b, s, order, d


# --- opening and the assessment ----------------------------------------------------------


async def test_open_within_the_claim_window_freezes_the_release(
    frozen_clock: clock.FrozenClock,
) -> None:
    b, s, order = await received_order()
    d = await open_(b, order, amount=1_000_00)
    assert d.status == DisputeStatus.OPEN and d.requested_minor == 1_000_00
    assert d.response_due_at == clock.now() + dt.timedelta(days=3)
    assert d.escalation_allowed_at == clock.now() + dt.timedelta(days=3)
    assert d.auto_escalation_at == clock.now() + dt.timedelta(days=7)
    assert await lifecycle.has_open_dispute(order.id)
    # The order has quality requirements, was received, and no inspection was booked.
    assert [f.rule for f in disputes.findings_of(d)] == [
        AssessmentRule.RAISED_AFTER_ARRIVAL_WITHOUT_INSPECTION
    ]
    evidence = (await disputes.evidence_of([d.id]))[d.id]
    assert [(e.party, e.text) for e in evidence] == [("BUYER", "Measured with a calibrated sphere")]
    # The claim window ends with the dispute open (escalated by now): nothing is released.
    frozen_clock.advance(days=30)
    report = await sweep.run_sweep()
    assert report.enforced == {} and report.disputes_escalated == [d.id]
    frozen = await _order(order.id)
    assert frozen.status == OrderStatus.RECEIVED and frozen.next_deadline_at is None
    assert (await money(order.id)).held == TOTAL
    assert (await sweep.run_sweep()).total == 0
    # Decided: the release goes ahead at the next sweep.
    mediator = await factories.staff()
    await disputes.resolve_dispute(
        mediator.principal, d.id, DisputeDecision.PARTIAL_REFUND, amount=usd(1_000_00),
        reason="A third of the panels fail", idempotency_key="decide",
    )  # fmt: skip
    assert (await sweep.run_sweep()).enforced == {OrderStatus.COMPLETED.value: 1}
    m = await money(order.id)
    assert (m.refunded, m.released, m.held) == (1_000_00, 2_000_00, 0)
    del s


async def test_opening_is_idempotent_and_one_at_a_time() -> None:
    b, _, order = await received_order()
    d = await open_(b, order, key="k")
    before = await snapshot()
    assert (await open_(b, order, key="k")).id == d.id
    assert await snapshot() == before
    await refused(ErrorCode.IDEMPOTENCY_KEY_REUSED, open_(b, order, key="k", amount=5_00))
    await refused(ErrorCode.DISPUTE_ALREADY_OPEN, open_(b, order, key="k2"))


async def test_opening_refusals_change_nothing(frozen_clock: clock.FrozenClock) -> None:
    b, s, order = await received_order()
    stranger = await factories.buyer()
    await refused(ErrorCode.NOT_FOUND, open_(stranger, order))
    await refused(ErrorCode.NOT_DISPUTE_BUYER, open_(s, order))
    await refused(ErrorCode.REFUND_ABOVE_COVERED, open_(b, order, amount=TOTAL + 1))
    await refused(ErrorCode.INVALID_AMOUNT, open_(b, order, amount=0))
    await refused(ErrorCode.INVALID_INPUT, open_(b, order, description="  "))
    # Unpaid: blocked before any payment.
    b2, _, unpaid = await factories.confirmed_order()
    await refused(ErrorCode.DISPUTE_BEFORE_PAYMENT, open_(b2, unpaid))
    # Shipped on time, not yet received, no failed inspection: no grounds yet.
    b3, s3, shipped = await paid_order()
    await lifecycle.ship_order(
        s3.principal, shipped.id, lifecycle.Shipment("DHL", "1Z", clock.now())
    )
    await refused(ErrorCode.NO_GROUNDS_FOR_DISPUTE, open_(b3, shipped))
    # The claim window has ended (the sweep has not released yet): blocked.
    frozen_clock.advance(days=30)
    await refused(ErrorCode.OUTSIDE_CLAIM_WINDOW, open_(b, order))


async def test_a_file_with_a_wrong_checksum_refuses_the_dispute() -> None:
    b, _, order = await received_order()
    bad = AttachmentUpload("photo.pdf", PDF, "0" * 64)
    await refused(ErrorCode.FILE_CHECKSUM_MISMATCH, open_(b, order, evidence=[Evidence("x", bad)]))
    good = AttachmentUpload("photo.pdf", PDF, hashlib.sha256(PDF).hexdigest())
    d = await open_(b, order, evidence=[Evidence("", good)])
    [e] = (await disputes.evidence_of([d.id]))[d.id]
    assert (e.content_type, e.sha256) == ("application/pdf", hashlib.sha256(PDF).hexdigest())


async def test_assessment_no_quality_standard_and_freight() -> None:
    terms = dataclasses.replace(factories.contract(), quality=())
    b, _, order = await received_order(terms)
    d = await open_(
        b, order, reason=DisputeReason.NOT_AS_DESCRIBED, concerns_freight_or_after_sales=True
    )
    found = disputes.findings_of(d)
    assert [f.rule for f in found] == [
        AssessmentRule.NO_QUALITY_STANDARD,
        AssessmentRule.RAISED_AFTER_ARRIVAL_WITHOUT_INSPECTION,
        AssessmentRule.FREIGHT_OR_AFTER_SALES,
    ]
    assert {f.effect for f in found} == {AssessmentEffect.WEIGHS_AGAINST}
    # A quantity claim is not a quality claim: only the freight rule applies.
    b2, _, order2 = await received_order(terms)
    d2 = await open_(
        b2, order2, reason=DisputeReason.QUANTITY_SHORT, concerns_freight_or_after_sales=True
    )
    assert [f.rule for f in disputes.findings_of(d2)] == [AssessmentRule.FREIGHT_OR_AFTER_SALES]


async def _inspected(
    b: factories.Actor, order: Order, result: InspectionResult | None
) -> factories.Actor:
    """An inspection booked (and accepted); reported with `result` unless None."""
    insp = await factories.inspector()
    booking = await inspections.book_inspection(
        b.principal, order.id, insp.principal.company_id,
        (clock.now() + dt.timedelta(days=1)).date(), PaymentMethod.CARD,
        idempotency_key=f"insp-{order.id}", source=CARD_SUCCEEDS,
    )  # fmt: skip
    await inspections.accept_inspection(insp.principal, booking.inspection.id)
    if result is not None:
        await inspections.submit_report(
            insp.principal, booking.inspection.id, result, "Measured 12 panels"
        )
    return insp


async def test_assessment_inspection_passed(frozen_clock: clock.FrozenClock) -> None:
    b, s, order = await paid_order()
    await _inspected(b, order, InspectionResult.PASSED)
    await lifecycle.ship_order(s.principal, order.id, lifecycle.Shipment("DHL", "1Z", clock.now()))
    await lifecycle.confirm_receipt(b.principal, order.id)
    d = await open_(b, order)
    assert [f.rule for f in disputes.findings_of(d)] == [AssessmentRule.INSPECTION_PASSED]


async def test_failed_inspection_opens_before_shipment() -> None:
    b, _, order = await paid_order()
    await _inspected(b, order, InspectionResult.FAILED)
    d = await open_(b, order, amount=TOTAL)
    assert disputes.findings_of(d) == []


async def test_late_shipment_and_a_delay_accepted_in_writing(
    frozen_clock: clock.FrozenClock,
) -> None:
    b, _, order = await paid_order()
    frozen_clock.advance(days=31)
    await sweep.run_sweep()
    assert (await _order(order.id)).status == OrderStatus.OVERDUE
    d = await open_(
        b, order, reason=DisputeReason.LATE_SHIPMENT, amount=TOTAL, delay_accepted_in_writing=True
    )
    [finding] = disputes.findings_of(d)
    assert finding.rule is AssessmentRule.DELAY_ACCEPTED_IN_WRITING
    assert finding.effect is AssessmentEffect.WEIGHS_AGAINST


# --- negotiation --------------------------------------------------------------------------


async def test_supplier_accepts_everything_and_the_order_is_refunded() -> None:
    b, s, order = await received_order()
    d = await open_(b, order, amount=TOTAL)
    d = await disputes.respond_to_dispute(
        s.principal, d.id, DisputeResponse.ACCEPT, idempotency_key="acc"
    )
    assert (d.status, d.outcome, d.refunded_minor) == ("RESOLVED", "SUPPLIER_ACCEPTED", TOTAL)
    done = await _order(order.id)
    assert done.status == OrderStatus.REFUNDED and done.next_deadline_at is None
    m = await money(order.id)
    assert (m.refunded, m.held, m.released) == (TOTAL, 0, 0)
    assert await kinds(order.id) == ["DISPUTE_OPENED", "DISPUTE_ACCEPTED", "DISPUTE_RESOLVED"]
    refund = await Refund.objects().first()
    assert refund is not None and refund.due_at > refund.created_at
    assert not await lifecycle.has_open_dispute(order.id)
    assert await lost_events(order.id) == []  # not a decision against the supplier


async def test_offer_accepted_by_the_buyer(frozen_clock: clock.FrozenClock) -> None:
    b, s, order = await received_order()
    d = await open_(b, order, amount=1_000_00)
    await refused(
        ErrorCode.NO_DISPUTE_OFFER,
        disputes.accept_dispute_offer(b.principal, d.id, idempotency_key="o"),
    )
    await refused(
        ErrorCode.INVALID_AMOUNT,
        disputes.respond_to_dispute(
            s.principal, d.id, DisputeResponse.OFFER, offered=usd(1_000_00), idempotency_key="x"
        ),
    )
    d = await disputes.respond_to_dispute(
        s.principal, d.id, DisputeResponse.OFFER, offered=usd(400_00),
        text="Four panels were fine", idempotency_key="offer",
    )  # fmt: skip
    assert (d.status, d.supplier_response, d.offered_minor) == ("OPEN", "OFFER", 400_00)
    await refused(
        ErrorCode.DISPUTE_ALREADY_ANSWERED,
        disputes.respond_to_dispute(
            s.principal, d.id, DisputeResponse.ACCEPT, idempotency_key="again"
        ),
    )
    await refused(
        ErrorCode.NOT_DISPUTE_BUYER,
        disputes.accept_dispute_offer(s.principal, d.id, idempotency_key="o"),
    )
    d = await disputes.accept_dispute_offer(b.principal, d.id, idempotency_key="o")
    assert (d.status, d.outcome, d.refunded_minor) == ("RESOLVED", "OFFER_ACCEPTED", 400_00)
    assert (await _order(order.id)).status == OrderStatus.RECEIVED  # the rest waits the window
    before = await snapshot()
    assert (await disputes.accept_dispute_offer(b.principal, d.id, idempotency_key="o")).id == d.id
    assert await snapshot() == before
    frozen_clock.advance(days=30)
    assert (await sweep.run_sweep()).enforced == {OrderStatus.COMPLETED.value: 1}
    m = await money(order.id)
    assert (m.refunded, m.released) == (400_00, TOTAL - 400_00)


async def test_response_refusals(frozen_clock: clock.FrozenClock) -> None:
    b, s, order = await received_order()
    d = await open_(b, order)
    other_supplier = await factories.supplier()
    respond = disputes.respond_to_dispute
    await refused(
        ErrorCode.NOT_FOUND,
        respond(other_supplier.principal, d.id, DisputeResponse.ACCEPT, idempotency_key="a"),
    )
    await refused(
        ErrorCode.NOT_DISPUTE_SUPPLIER,
        respond(b.principal, d.id, DisputeResponse.ACCEPT, idempotency_key="a"),
    )
    await refused(
        ErrorCode.INVALID_AMOUNT,
        respond(s.principal, d.id, DisputeResponse.OFFER, idempotency_key="a"),
    )
    frozen_clock.advance(days=3, seconds=1)
    await refused(
        ErrorCode.DISPUTE_RESPONSE_LATE,
        respond(s.principal, d.id, DisputeResponse.ACCEPT, idempotency_key="a"),
    )


# --- escalation -----------------------------------------------------------------------


async def test_escalation_by_the_buyer_from_day_4(frozen_clock: clock.FrozenClock) -> None:
    b, s, order = await received_order()
    d = await open_(b, order)
    await disputes.respond_to_dispute(
        s.principal, d.id, DisputeResponse.REJECT, idempotency_key="r"
    )
    frozen_clock.advance(days=3, seconds=-1)
    await refused(ErrorCode.ESCALATION_TOO_EARLY, disputes.escalate_dispute(b.principal, d.id))
    await refused(ErrorCode.NOT_DISPUTE_BUYER, disputes.escalate_dispute(s.principal, d.id))
    frozen_clock.advance(seconds=1)
    d = await disputes.escalate_dispute(b.principal, d.id)
    assert (d.status, d.escalated_automatically, d.supplier_cooperated) == (
        "ESCALATED", False, True
    )  # fmt: skip
    assert d.dispute_due_at is None
    await refused(ErrorCode.DISPUTE_NOT_OPEN, disputes.escalate_dispute(b.principal, d.id))
    frozen_clock.advance(days=10)
    assert (await sweep.run_sweep()).disputes_escalated == []


async def test_automatic_escalation_by_the_sweep(frozen_clock: clock.FrozenClock) -> None:
    b, _, order = await received_order()
    d = await open_(b, order)
    frozen_clock.advance(days=7, seconds=-1)
    assert (await sweep.run_sweep()).disputes_escalated == []
    frozen_clock.advance(seconds=1)
    report = await sweep.run_sweep()
    assert report.disputes_escalated == [d.id]
    assert "disputes escalated: 1" in report.lines()
    d = await _dispute(d.id)
    assert (d.status, d.escalated_automatically, d.supplier_cooperated) == (
        "ESCALATED", True, False
    )  # fmt: skip
    [event] = [e for e in await disputes.dispute_events(order.id) if e.kind == "DISPUTE_ESCALATED"]
    assert event.actor_kind == ActorKind.SCHEDULER and "not cooperating" in event.reason
    assert (await sweep.run_sweep()).disputes_escalated == []  # once


# --- the mediator's decision --------------------------------------------------------------


async def test_decision_refusals(frozen_clock: clock.FrozenClock) -> None:
    b, _s, order = await received_order()
    d = await open_(b, order)
    mediator = await factories.staff()
    resolve = disputes.resolve_dispute
    await refused(
        ErrorCode.DISPUTE_NOT_ESCALATED,
        resolve(mediator.principal, d.id, DisputeDecision.FULL_REFUND, reason="r",
                idempotency_key="d"),
    )  # fmt: skip
    frozen_clock.advance(days=3)
    await disputes.escalate_dispute(b.principal, d.id)
    await refused(
        ErrorCode.NOT_A_MEDIATOR,
        resolve(b.principal, d.id, DisputeDecision.FULL_REFUND, reason="r", idempotency_key="d"),
    )
    await refused(
        ErrorCode.INSUFFICIENT_HELD_FUNDS,
        resolve(mediator.principal, d.id, DisputeDecision.PARTIAL_REFUND,
                amount=usd(TOTAL + 1), reason="r", idempotency_key="d"),
    )  # fmt: skip
    await refused(
        ErrorCode.INVALID_AMOUNT,
        resolve(mediator.principal, d.id, DisputeDecision.PARTIAL_REFUND, reason="r",
                idempotency_key="d"),
    )  # fmt: skip
    await refused(
        ErrorCode.INVALID_INPUT,
        resolve(mediator.principal, d.id, DisputeDecision.FULL_REFUND, reason=" ",
                idempotency_key="d"),
    )  # fmt: skip


async def test_full_refund_after_automatic_escalation_with_the_inspection_fee(
    frozen_clock: clock.FrozenClock,
) -> None:
    b, _, order = await paid_order()
    insp = await _inspected(b, order, None)  # booked and accepted: the fee is held
    frozen_clock.advance(days=31)
    await sweep.run_sweep()  # overdue
    d = await open_(b, order, reason=DisputeReason.LATE_SHIPMENT, amount=TOTAL)
    frozen_clock.advance(days=7)
    assert (await sweep.run_sweep()).disputes_escalated == [d.id]
    mediator = await factories.staff()
    d = await disputes.resolve_dispute(
        mediator.principal, d.id, DisputeDecision.FULL_REFUND, refund_inspection_fee=True,
        reason="Not shipped at all", idempotency_key="decide",
    )  # fmt: skip
    assert (d.status, d.outcome, d.refunded_minor, d.inspection_fee_refunded) == (
        "RESOLVED", "FULL_REFUND", TOTAL, True
    )  # fmt: skip
    assert (await _order(order.id)).status == OrderStatus.REFUNDED
    m = await money(order.id)
    assert (m.refunded, m.held) == (TOTAL, 0)
    fee_refunds = await Refund.objects().where(Refund.inspection.is_not_null())
    assert [r.status for r in fee_refunds] == ["SETTLED"]
    del insp
    # Not cooperating: 48 points.
    assert await lost_events(order.id) == [
        f"dispute {d.id}: 48 penalty points (the supplier did not cooperate)"
    ]


async def test_partial_refund_after_escalation_by_the_buyer(
    frozen_clock: clock.FrozenClock,
) -> None:
    _b, _s, order, d = await escalated(frozen_clock)
    mediator = await factories.staff()
    d = await disputes.resolve_dispute(
        mediator.principal, d.id, DisputeDecision.PARTIAL_REFUND, amount=usd(600_00),
        reason="Two panels below spec", idempotency_key="decide",
    )  # fmt: skip
    assert (d.outcome, d.refunded_minor) == ("PARTIAL_REFUND", 600_00)
    assert await lost_events(order.id) == [f"dispute {d.id}: 6 penalty points"]
    before = await snapshot()
    again = await disputes.resolve_dispute(
        mediator.principal, d.id, DisputeDecision.PARTIAL_REFUND, amount=usd(600_00),
        reason="Two panels below spec", idempotency_key="decide",
    )  # fmt: skip
    assert again.id == d.id and await snapshot() == before
    # The claim window ends: the rest goes to the supplier.
    frozen_clock.advance(days=30)
    assert (await sweep.run_sweep()).enforced == {OrderStatus.COMPLETED.value: 1}
    m = await money(order.id)
    assert (m.refunded, m.released, m.held) == (600_00, TOTAL - 600_00, 0)


async def test_release_to_the_supplier(frozen_clock: clock.FrozenClock) -> None:
    _b, _s, order, d = await escalated(frozen_clock)
    mediator = await factories.staff()
    d = await disputes.resolve_dispute(
        mediator.principal, d.id, DisputeDecision.RELEASE_TO_SUPPLIER,
        reason="The goods conform", idempotency_key="decide",
    )  # fmt: skip
    assert (d.status, d.outcome, d.refunded_minor) == ("RESOLVED", "RELEASE_TO_SUPPLIER", 0)
    done = await _order(order.id)
    assert done.status == OrderStatus.COMPLETED and done.completed_at == clock.now()
    m = await money(order.id)
    assert (m.released, m.held, m.refunded) == (TOTAL, 0, 0)
    assert await lost_events(order.id) == []
    assert await kinds(order.id) == [
        "DISPUTE_OPENED", "DISPUTE_REJECTED", "DISPUTE_ESCALATED", "DISPUTE_RESOLVED"
    ]  # fmt: skip


async def test_views_list_and_filter(frozen_clock: clock.FrozenClock) -> None:
    b, _s, order = await received_order()
    d1 = await open_(b, order)
    b2, _, order2 = await received_order()
    d2 = await open_(b2, order2)
    mediator = await factories.staff()
    rows, more = await disputes.list_disputes(mediator.principal, first=10, after_id=None)
    assert [r.id for r in rows] == [d2.id, d1.id] and not more
    rows, more = await disputes.list_disputes(mediator.principal, first=1, after_id=None)
    assert [r.id for r in rows] == [d2.id] and more
    rows, _ = await disputes.list_disputes(b.principal, first=10, after_id=None)
    assert [r.id for r in rows] == [d1.id]
    frozen_clock.advance(days=3, seconds=1)
    rows, _ = await disputes.list_disputes(
        mediator.principal, overdue=True, first=10, after_id=None
    )
    assert {r.id for r in rows} == {d1.id, d2.id}
    await disputes.escalate_dispute(b.principal, d1.id)
    rows, _ = await disputes.list_disputes(
        mediator.principal, escalated=True, first=10, after_id=None
    )
    assert [r.id for r in rows] == [d1.id]
    rows, _ = await disputes.list_disputes(
        mediator.principal, status=DisputeStatus.OPEN, first=10, after_id=None
    )
    assert [r.id for r in rows] == [d2.id]
    assert (await disputes.latest_of([order.id]))[order.id] is not None
    assert await disputes.get_disputes(b2.principal, [d1.id]) == {}


# --- the decision's refund: due date, retries, late flag (the sweep) --------------------


async def _refund_of(dispute_id: int) -> Refund:
    [refund] = await Refund.objects().where(Refund.dispute == dispute_id)
    return refund


async def _overdue_events(order_id: int) -> list[OrderEvent]:
    return list(
        await OrderEvent.objects().where(
            (OrderEvent.order == order_id) & (OrderEvent.kind == "REFUND_OVERDUE")
        )
    )


async def test_a_failing_refund_is_retried_with_back_off_and_flagged_late_once(
    frozen_clock: clock.FrozenClock, sandbox: SandboxProvider
) -> None:
    _b, _s, order, d = await escalated(frozen_clock)  # decided on a Monday
    mediator = await factories.staff()
    sandbox.fail_refunds = True
    decided_at = clock.now()
    d = await disputes.resolve_dispute(
        mediator.principal, d.id, DisputeDecision.PARTIAL_REFUND, amount=usd(600_00),
        reason="Two panels below spec", idempotency_key="decide",
    )  # fmt: skip
    refund = await _refund_of(d.id)
    # Seven business days: Monday 30 Nov to Wednesday 9 Dec.
    assert refund.due_at == decided_at + dt.timedelta(days=9)
    assert (refund.status, refund.attempts, refund.last_error) == (
        "FAILED", 1, "sandbox_forced_failure"
    )  # fmt: skip
    assert refund.next_attempt_at == decided_at + dt.timedelta(minutes=5)
    assert (await sweep.run_sweep()).refunds_retried == []  # backing off

    # Each failure doubles the wait: 5, 10, 20 minutes...
    waits = []
    for _ in range(3):
        frozen_clock.current = (await _refund_of(d.id)).next_attempt_at or clock.now()
        report = await sweep.run_sweep()
        assert (report.refunds_retried, report.refunds_settled) == ([refund.id], [])
        after = await _refund_of(d.id)
        assert after.next_attempt_at is not None
        waits.append(after.next_attempt_at - clock.now())
        assert (await sweep.run_sweep()).refunds_retried == []  # not again this tick
    assert waits == [dt.timedelta(minutes=m) for m in (10, 20, 40)]
    assert (await _refund_of(d.id)).attempts == 4
    assert payments.retry_delay(30) == payments.RETRY_CAP  # ...up to six hours

    # Past the due date and still not paid out: flagged once, an order event by the sweep.
    frozen_clock.current = refund.due_at - dt.timedelta(seconds=1)
    assert (await sweep.run_sweep()).refunds_flagged == []
    assert not payments.is_late(await _refund_of(d.id))
    frozen_clock.current = refund.due_at
    report = await sweep.run_sweep()
    assert report.refunds_flagged == [refund.id]
    assert "refunds flagged late: 1" in report.lines()
    late = await _refund_of(d.id)
    assert late.flagged_at == refund.due_at and payments.is_late(late)
    frozen_clock.advance(hours=7)
    assert (await sweep.run_sweep()).refunds_flagged == []
    [event] = await _overdue_events(order.id)
    assert (event.actor_kind, event.old_status, event.new_status) == (
        ActorKind.SCHEDULER.value, OrderStatus.RECEIVED.value, OrderStatus.RECEIVED.value
    )  # fmt: skip
    assert "ref_" in event.reason and "sandbox_forced_failure" in event.reason
    queue, _ = await payments.list_refunds(
        mediator.principal, overdue=True, first=10, after_id=None
    )
    assert [r.id for r in queue] == [refund.id]

    # The provider recovers: the next retry pays it out; it stays flagged (it was late).
    sandbox.fail_refunds = False
    frozen_clock.advance(hours=6)
    report = await sweep.run_sweep()
    assert report.refunds_settled == [refund.id]
    settled = await _refund_of(d.id)
    assert (settled.status, settled.flagged_at) == ("SETTLED", refund.due_at)
    assert settled.next_attempt_at is None
    assert not payments.is_late(settled)
    assert (await money(order.id)).refunded == 600_00
    queue, _ = await payments.list_refunds(
        mediator.principal, overdue=True, first=10, after_id=None
    )
    assert queue == []
    assert len(await _overdue_events(order.id)) == 1


async def test_a_refund_left_pending_by_a_crash_is_paid_out_once_by_the_sweep(
    frozen_clock: clock.FrozenClock,
) -> None:
    _b, _s, order = await received_order()
    # Committed, then the process died before asking the provider.
    [refund] = await payments.start_refund(
        order.id, 500_00, actor=events.SCHEDULER, reason="late shipment"
    )
    assert (refund.status, refund.next_attempt_at) == (
        "PENDING", clock.now() + dt.timedelta(minutes=5)
    )  # fmt: skip
    # The request path's own attempt gets its grace period: the sweep leaves it alone.
    assert (await sweep.run_sweep()).refunds_retried == []
    frozen_clock.advance(minutes=5)
    # Two sweepers at once: each refund is claimed by one of them.
    first, second = await asyncio.gather(payments.retry_due_refunds(), payments.retry_due_refunds())
    assert sorted(r.id for r in first + second) == [refund.id]
    done = await Refund.objects().get(Refund.id == refund.id)
    assert done is not None and (done.status, done.attempts) == ("SETTLED", 1)
    assert (await money(order.id)).refunded == 500_00


async def test_a_refund_settled_in_time_is_never_flagged(
    frozen_clock: clock.FrozenClock,
) -> None:
    _b, _s, order, d = await escalated(frozen_clock)
    mediator = await factories.staff()
    d = await disputes.resolve_dispute(
        mediator.principal, d.id, DisputeDecision.FULL_REFUND, reason="Unusable",
        idempotency_key="decide",
    )  # fmt: skip
    refund = await _refund_of(d.id)
    assert (refund.status, refund.dispute) == ("SETTLED", d.id)
    assert refund.next_attempt_at is None
    frozen_clock.advance(days=30)
    report = await sweep.run_sweep()
    assert (report.refunds_retried, report.refunds_flagged) == ([], [])
    assert await _overdue_events(order.id) == []


# --- money that arrives after the order ended ---------------------------------------------


async def _deposit_paid_and_balance_pending() -> tuple[
    factories.Actor, factories.Actor, Order, int
]:
    """Deposit (1,500) by card, a failed inspection, the balance (1,500) by bank transfer,
    still pending."""
    b, s, order = await factories.confirmed_order()
    paid = await payments.pay_order(
        b.principal, order.id, usd(1_500_00), PaymentMethod.CARD,
        idempotency_key="deposit", source=CARD_SUCCEEDS,
    )  # fmt: skip
    assert paid.error is None
    await _inspected(b, order, InspectionResult.FAILED)
    pending = await payments.pay_order(
        b.principal, order.id, usd(1_500_00), PaymentMethod.TT, idempotency_key="balance"
    )
    assert pending.payment.status == "PENDING"
    return b, s, await _order(order.id), pending.payment.id


@pytest.mark.parametrize("ended_by", ["supplier accepts", "mediator releases"])
async def test_a_payment_settling_after_the_order_ended_is_refunded_not_reopened(
    frozen_clock: clock.FrozenClock, ended_by: str
) -> None:
    # It used to move a REFUNDED or COMPLETED order back to PAID, with the money held.
    b, s, order, payment_id = await _deposit_paid_and_balance_pending()
    d = await open_(b, order, amount=1_500_00)
    if ended_by == "supplier accepts":
        await disputes.respond_to_dispute(
            s.principal, d.id, DisputeResponse.ACCEPT, idempotency_key="acc"
        )
        ended = OrderStatus.REFUNDED
    else:
        frozen_clock.advance(days=3)
        await disputes.escalate_dispute(b.principal, d.id)
        mediator = await factories.staff()
        await disputes.resolve_dispute(
            mediator.principal, d.id, DisputeDecision.RELEASE_TO_SUPPLIER,
            reason="within tolerance", idempotency_key="decide",
        )  # fmt: skip
        ended = OrderStatus.COMPLETED
    assert (await _order(order.id)).status == ended
    before = await money(order.id)
    assert await payments.record_charge_outcome(payment_id, succeeded=True)
    assert (await _order(order.id)).status == ended
    assert ((await money(order.id)).paid, (await money(order.id)).held) == (
        before.paid + 1_500_00, 0
    )  # fmt: skip
    refund = await Refund.objects().order_by(Refund.id, ascending=False).first()
    assert refund is not None and (refund.payment, refund.amount_minor) == (payment_id, 1_500_00)
    # Paid out by the sweep, as any refund whose first attempt did not happen.
    frozen_clock.advance(minutes=5)
    await sweep.run_sweep()
    done = await Refund.objects().get(Refund.id == refund.id)
    assert done is not None and done.status == "SETTLED"
    assert (await money(order.id)).refunded == before.refunded + 1_500_00
    assert (await _order(order.id)).status == ended


async def test_the_coverage_is_the_orders_across_its_disputes() -> None:
    # Each dispute used to be capped on its own: three of 1,000 refunded 3,000 under 1,000.
    supplier = await factories.supplier(trade_assurance_limit_minor=1_000_00)
    b, s, order = await factories.confirmed_order(supplier_actor=supplier)
    assert order.coverage_cap_minor == 1_000_00
    await payments.pay_order(
        b.principal, order.id, usd(TOTAL), PaymentMethod.CARD, idempotency_key="pay",
        source=CARD_SUCCEEDS,
    )  # fmt: skip
    await lifecycle.ship_order(s.principal, order.id, lifecycle.Shipment("DHL", "1Z", clock.now()))
    await lifecycle.confirm_receipt(b.principal, order.id)
    first = await open_(b, order, reason=DisputeReason.QUANTITY_SHORT, amount=600_00, key="1")
    await disputes.respond_to_dispute(
        s.principal, first.id, DisputeResponse.ACCEPT, idempotency_key="accept"
    )
    await refused(
        ErrorCode.REFUND_ABOVE_COVERED,
        open_(b, order, reason=DisputeReason.QUANTITY_SHORT, amount=400_01, key="2"),
    )
    await open_(b, order, reason=DisputeReason.QUANTITY_SHORT, amount=400_00, key="3")


async def test_a_fee_refund_with_no_fee_held_is_refused_not_ignored(
    frozen_clock: clock.FrozenClock,
) -> None:
    # The PASSED report paid the fee to the inspector: the flag used to do nothing.
    b, s, order = await paid_order()
    await _inspected(b, order, InspectionResult.PASSED)
    await lifecycle.ship_order(s.principal, order.id, lifecycle.Shipment("DHL", "1Z", clock.now()))
    await lifecycle.confirm_receipt(b.principal, order.id)
    d = await open_(b, order)
    frozen_clock.advance(days=3)
    await disputes.escalate_dispute(b.principal, d.id)
    mediator = await factories.staff()
    await refused(
        ErrorCode.INSUFFICIENT_HELD_FUNDS,
        disputes.resolve_dispute(
            mediator.principal, d.id, DisputeDecision.FULL_REFUND, refund_inspection_fee=True,
            reason="Not as agreed", idempotency_key="decide",
        ),
    )  # fmt: skip
    decided = await disputes.resolve_dispute(
        mediator.principal, d.id, DisputeDecision.FULL_REFUND, reason="Not as agreed",
        idempotency_key="decide-2",
    )  # fmt: skip
    assert (decided.status, decided.inspection_fee_refunded) == ("RESOLVED", False)
