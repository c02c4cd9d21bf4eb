"""Disputes (issue 5): the buyer opens one, the system assesses it against the published
rejection rules, the supplier answers (accept, offer, reject), the buyer accepts an offer
or escalates (the sweep escalates by itself), a mediator decides.

One function per transition, each one transaction that locks the order first (then the
dispute), checks, writes the change, any ledger posting (through `payments` and
`lifecycle`) and the order event. Refunds are committed with the change and paid out by
the provider after commit (`payments.execute_refund`). While a dispute is open or
escalated the automatic release at the end of the claim window is frozen
(`lifecycle.has_open_dispute`); when it ends the order's next deadline is scheduled again.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
from collections.abc import Sequence
from typing import Any

from models import (
    clock,
    config,
    deadlines,
    events,
    idempotency,
    investigations,
    ledger,
    lifecycle,
    messages,
    payments,
    sql,
)
from models.accounts import Principal
from models.db import write_transaction
from models.enums import (
    ActorKind,
    AssessmentEffect,
    AssessmentRule,
    DisputeDecision,
    DisputeOutcome,
    DisputeReason,
    DisputeResponse,
    DisputeStatus,
    InspectionStatus,
    OrderStatus,
    Role,
    Scope,
)
from models.errors import DomainError, ErrorCode
from models.inspections import AttachmentUpload, check_attachments, read_verified, store_file
from models.money import Money
from models.orders import coverage, lock_order, require_scope, succeeded_minor, visible_orders
from models.sql import get as get_row
from models.tables import (
    Dispute,
    DisputeEvidence,
    Inspection,
    Order,
    OrderEvent,
    QualityRequirement,
    Refund,
)

log = logging.getLogger("trade_assurance.disputes")

MAX_TEXT = 20_000
OPEN_STATUSES = (DisputeStatus.OPEN.value, DisputeStatus.ESCALATED.value)
QUALITY_REASONS = frozenset({DisputeReason.QUALITY_NOT_AS_AGREED, DisputeReason.NOT_AS_DESCRIBED})
# An inspection that was (or is being) carried out: booked and not called off.
_BOOKED = [
    InspectionStatus.AWAITING_FEE.value,
    InspectionStatus.REQUESTED.value,
    InspectionStatus.ACCEPTED.value,
    InspectionStatus.PASSED.value,
    InspectionStatus.FAILED.value,
]
_ENDED = frozenset(
    {OrderStatus.PENDING_CONFIRMATION.value, OrderStatus.CANCELLED.value,
     OrderStatus.REFUNDED.value}
)  # fmt: skip


@dataclasses.dataclass(frozen=True, slots=True)
class Evidence:
    """Text, a file (checked like an inspection report's attachments), a message of the
    order's conversation (checked under the order's lock), or several of them."""

    text: str = ""
    file: AttachmentUpload | None = None
    message_id: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Finding:
    rule: AssessmentRule
    effect: AssessmentEffect
    reason: str


def findings_of(dispute: Dispute) -> list[Finding]:
    return [
        Finding(AssessmentRule(f["rule"]), AssessmentEffect(f["effect"]), f["reason"])
        for f in json.loads(dispute.assessment or "[]")
    ]


def _check_text(text: str, field: str, *, required: bool) -> str:
    text = text.strip()
    if (required and not text) or len(text) > MAX_TEXT:
        low = 1 if required else 0
        raise DomainError(ErrorCode.INVALID_INPUT, f"{low} to {MAX_TEXT} characters", field)
    return text


def _check_evidence(evidence: Sequence[Evidence]) -> list[tuple[str, Any, int | None]]:
    """Each item's text, checked file (or None) and cited message (or None); nothing is
    stored unless all pass."""
    files = [e.file for e in evidence if e.file is not None]
    checked = iter(check_attachments(files))
    out: list[tuple[str, Any, int | None]] = []
    for n, e in enumerate(evidence):
        text = _check_text(e.text, f"evidence.{n}.text", required=False)
        if not text and e.file is None and e.message_id is None:
            raise DomainError(
                ErrorCode.INVALID_INPUT,
                "evidence needs a text, a file or a message",
                f"evidence.{n}",
            )
        out.append((text, next(checked) if e.file is not None else None, e.message_id))
    return out


def _evidence_key(text: str, f: Any, message_id: int | None) -> list[Any]:
    """An evidence item in an idempotency request (unchanged for items citing no message,
    so keys recorded before messages could be cited still replay)."""
    key = [text, f.sha256 if f else None]
    return key if message_id is None else [*key, message_id]


async def _store_evidence(
    dispute_id: int, party: Role, principal: Principal, items: list[tuple[str, Any, int | None]]
) -> None:
    now = clock.now()
    for text, f, message_id in items:
        if f is not None:
            await store_file(f)
        await DisputeEvidence.insert(
            DisputeEvidence(
                dispute=dispute_id,
                party=party.value,
                added_by=principal.user_id,
                text=text,
                filename=f.filename if f else None,
                content_type=f.content_type if f else None,
                size_bytes=len(f.data) if f else None,
                sha256=f.sha256 if f else None,
                message=message_id,
                created_at=now,
            )
        )


async def _open_dispute_of(order_id: int) -> Dispute | None:
    return (
        await Dispute.objects()
        .where((Dispute.order == order_id) & Dispute.status.is_in(list(OPEN_STATUSES)))
        .first()
    )


async def _grounds(order: Order, now: dt.datetime) -> None:
    """The blocking rules, and the three ways a dispute may be opened."""
    if order.status in _ENDED:
        raise DomainError(
            ErrorCode.INVALID_TRANSITION,
            f"cannot open a dispute on an order that is {order.status}",
            "orderId",
        )
    if await succeeded_minor(order.id) <= 0:
        raise DomainError(
            ErrorCode.DISPUTE_BEFORE_PAYMENT,
            "nothing has been paid into escrow for this order",
            "orderId",
        )
    ends = order.claim_window_ends_at
    if order.status == OrderStatus.COMPLETED.value or (
        order.status == OrderStatus.RECEIVED.value and (ends is None or ends <= now)
    ):
        raise DomainError(
            ErrorCode.OUTSIDE_CLAIM_WINDOW,
            "the claim window after receipt has ended",
            "orderId",
        )
    # The same test as the sweep's and the late-shipment claim's (a deposit-only order
    # misses its deadline too), so a dispute need not wait for the sweep.
    late = deadlines.shipping_deadline_missed(order, now) or order.shipped_late
    in_window = order.status == OrderStatus.RECEIVED.value
    failed = await Inspection.exists().where(
        (Inspection.order == order.id) & (Inspection.status == InspectionStatus.FAILED.value)
    )
    if not (late or in_window or failed):
        raise DomainError(
            ErrorCode.NO_GROUNDS_FOR_DISPUTE,
            "a dispute is opened after a missed shipping deadline, a failed inspection, "
            "or within the claim window after receipt",
            "orderId",
        )


async def _assess(
    order: Order,
    reason: DisputeReason,
    *,
    delay_accepted_in_writing: bool,
    concerns_freight_or_after_sales: bool,
) -> list[Finding]:
    """The weighing rules (the blocking ones refused the dispute already)."""
    found: list[Finding] = []
    weighs = AssessmentEffect.WEIGHS_AGAINST
    if reason in QUALITY_REASONS:
        if not await QualityRequirement.exists().where(QualityRequirement.order == order.id):
            found.append(
                Finding(
                    AssessmentRule.NO_QUALITY_STANDARD,
                    weighs,
                    "the contract has no measurable quality requirement",
                )
            )
        inspections = await Inspection.select(Inspection.status).where(
            (Inspection.order == order.id) & Inspection.status.is_in(_BOOKED)
        )
        if order.received_at is not None and not inspections:
            found.append(
                Finding(
                    AssessmentRule.RAISED_AFTER_ARRIVAL_WITHOUT_INSPECTION,
                    weighs,
                    "the quality issue is raised after arrival and no inspection was booked",
                )
            )
        if any(i["status"] == InspectionStatus.PASSED.value for i in inspections):
            found.append(
                Finding(
                    AssessmentRule.INSPECTION_PASSED,
                    weighs,
                    "an inspection report says the goods conform",
                )
            )
    if reason is DisputeReason.LATE_SHIPMENT and delay_accepted_in_writing:
        found.append(
            Finding(
                AssessmentRule.DELAY_ACCEPTED_IN_WRITING,
                weighs,
                "the buyer accepted the delay in writing",
            )
        )
    if concerns_freight_or_after_sales:
        found.append(
            Finding(
                AssessmentRule.FREIGHT_OR_AFTER_SALES,
                weighs,
                "freight, port cost and after-sales complaints are not covered",
            )
        )
    return found


async def _dispute(dispute_id: int) -> Dispute:
    found = await get_row(Dispute, dispute_id)
    assert found is not None
    return found


async def open_dispute(
    principal: Principal,
    order_id: int,
    *,
    reason: DisputeReason,
    requested: Money,
    description: str,
    evidence: Sequence[Evidence] = (),
    delay_accepted_in_writing: bool = False,
    concerns_freight_or_after_sales: bool = False,
    idempotency_key: str,
) -> Dispute:
    """The buyer opens a dispute, assessed at once; the supplier has
    `dispute_response_days` to answer. Freezes the automatic release."""
    key = idempotency.check_key(idempotency_key)
    scope = idempotency.scope_of(principal)
    description = _check_text(description, "description", required=True)
    items = _check_evidence(evidence)
    request = {
        "order": order_id, "reason": reason.value, "amount": requested.minor,
        "currency": requested.currency, "description": description,
        "evidence": [_evidence_key(t, f, m) for t, f, m in items],
        "delay": delay_accepted_in_writing, "freight": concerns_freight_or_after_sales,
    }  # fmt: skip
    async with idempotency.first_claim(), write_transaction():
        order, role = await lock_order(principal, order_id)
        previous = await idempotency.replay(scope, key, "openDispute", request)
        if previous is not None:
            return await _dispute(previous["dispute"])
        if role is not Role.BUYER:
            raise DomainError(
                ErrorCode.NOT_DISPUTE_BUYER, "only the order's buyer opens a dispute", "orderId"
            )
        require_scope(principal, Scope.PAYMENTS)
        now = clock.now()
        await _grounds(order, now)
        if await _open_dispute_of(order.id) is not None:
            raise DomainError(
                ErrorCode.DISPUTE_ALREADY_OPEN, "this order already has an open dispute", "orderId"
            )
        if requested.currency != order.currency:
            raise DomainError(
                ErrorCode.INVALID_CURRENCY,
                f"this order is paid in {order.currency}",
                "requestedRefund.currency",
            )
        paid = await succeeded_minor(order.id)
        held = await ledger.held(order.id)
        # The coverage is the order's, not each dispute's: what earlier disputes refunded
        # is spent (three disputes of 1,000 each refunded 3,000 under a cap of 1,000).
        spent = await sql.fetch(
            'SELECT COALESCE(SUM(refunded_minor), 0) AS spent FROM dispute WHERE "order" = {}',
            order.id,
        )
        covered = max(0, min(coverage(order, paid).post_delivery - int(spent[0]["spent"]), held))
        if requested.minor <= 0:
            raise DomainError(
                ErrorCode.INVALID_AMOUNT, "the refund asked for is positive", "requestedRefund"
            )
        if requested.minor > covered:
            raise DomainError(
                ErrorCode.REFUND_ABOVE_COVERED,
                f"at most {Money(covered, order.currency)} can be asked back: what was paid "
                "and is covered, less what earlier disputes refunded, and escrow still holds",
                "requestedRefund",
            )
        findings = await _assess(
            order,
            reason,
            delay_accepted_in_writing=delay_accepted_in_writing,
            concerns_freight_or_after_sales=concerns_freight_or_after_sales,
        )
        cfg = config.current()
        day = dt.timedelta(days=1)
        auto_at = now + cfg.dispute_auto_escalation_days * day
        dispute = Dispute(
            order=order.id,
            opened_by=principal.user_id,
            status=DisputeStatus.OPEN.value,
            reason=reason.value,
            description=description,
            currency=order.currency,
            requested_minor=requested.minor,
            delay_accepted_in_writing=delay_accepted_in_writing,
            concerns_freight_or_after_sales=concerns_freight_or_after_sales,
            assessment=json.dumps(
                [
                    {"rule": f.rule.value, "effect": f.effect.value, "reason": f.reason}
                    for f in findings
                ]
            ),
            opened_at=now,
            response_due_at=now + cfg.dispute_response_days * day,
            escalation_allowed_at=now + cfg.dispute_escalation_after_days * day,
            auto_escalation_at=auto_at,
            dispute_due_at=auto_at,
        )
        await dispute.save()
        await messages.check_cited(order.id, [m for _, _, m in items])
        await _store_evidence(dispute.id, Role.BUYER, principal, items)
        await events.record(
            order.id, "DISPUTE_OPENED", old_status=order.status, new_status=order.status,
            actor=events.Actor.of(principal), at=now,
            reason=f"dispute {dispute.id}: {reason.value}, {requested} asked back; "
            f"{len(findings)} finding(s) weigh against it",
        )  # fmt: skip
        await idempotency.remember(scope, key, "openDispute", request, {"dispute": dispute.id})
    return dispute


async def _lock_dispute(
    principal: Principal | None, dispute_id: int
) -> tuple[Dispute, Order, Role | None]:
    """The dispute and its order, both locked (the order first); NOT_FOUND for anyone
    who may not see the order."""
    row = await Dispute.select(Dispute.order).where(Dispute.id == dispute_id).first()
    if row is None:
        raise DomainError(ErrorCode.NOT_FOUND, "no such dispute", "disputeId")
    try:
        order, role = await lock_order(principal, int(row["order"]))
    except DomainError as e:
        if e.code is ErrorCode.NOT_FOUND:
            raise DomainError(ErrorCode.NOT_FOUND, "no such dispute", "disputeId") from None
        raise
    dispute = await get_row(Dispute, dispute_id, lock=True)
    assert dispute is not None
    return dispute, order, role


def _require_open(dispute: Dispute) -> None:
    if dispute.status != DisputeStatus.OPEN.value:
        raise DomainError(
            ErrorCode.DISPUTE_NOT_OPEN,
            f"this dispute is {dispute.status.lower()}",
            "disputeId",
        )


async def _refund_and_settle(
    dispute: Dispute,
    order: Order,
    amount: int,
    *,
    outcome: DisputeOutcome,
    actor: events.Actor,
    kind: str,
    why: str,
) -> list[Refund]:
    """Commit `amount` back to the buyer, end the dispute, and end the order if nothing
    is left in escrow (REFUNDED) or schedule its next deadline again (a RECEIVED order's
    held rest is released when the claim window ends). The refunds, one per payment
    returned (`payments.start_refund`), to pay out after commit."""
    refunds = await payments.start_refund(
        order.id, amount, actor=actor, reason=f"dispute {dispute.id}: {why}",
        dispute_id=dispute.id,
    )  # fmt: skip
    now = clock.now()
    dispute.status = DisputeStatus.RESOLVED.value
    dispute.outcome = outcome.value
    dispute.refunded_minor = amount
    dispute.dispute_due_at = None
    dispute.resolved_at = now
    await dispute.save()
    old = order.status
    if await ledger.held(order.id) == 0:
        order.status = OrderStatus.REFUNDED.value
        order.next_deadline_at = None
    else:
        order.next_deadline_at = deadlines.next_due(
            order, anything_paid=True, payment_pending=False
        )
    order.updated_at = now
    await order.save([Order.status, Order.next_deadline_at, Order.updated_at])
    await events.record(
        order.id, kind, old_status=old, new_status=order.status, actor=actor, at=now,
        reason=f"dispute {dispute.id}: {Money(amount, order.currency)} back to the buyer ({why})",
    )  # fmt: skip
    return refunds


async def respond_to_dispute(
    principal: Principal,
    dispute_id: int,
    response: DisputeResponse,
    *,
    offered: Money | None = None,
    text: str = "",
    evidence: Sequence[Evidence] = (),
    idempotency_key: str,
) -> Dispute:
    """The supplier answers within `dispute_response_days`: ACCEPT refunds what was asked
    and resolves the dispute; OFFER proposes another refund for the buyer to accept;
    REJECT leaves it open for escalation."""
    key = idempotency.check_key(idempotency_key)
    scope = idempotency.scope_of(principal)
    text = _check_text(text, "text", required=False)
    items = _check_evidence(evidence)
    request = {
        "dispute": dispute_id, "response": response.value, "text": text,
        "offered": [offered.minor, offered.currency] if offered else None,
        "evidence": [_evidence_key(t, f, m) for t, f, m in items],
    }  # fmt: skip
    refunds: list[Refund] = []
    async with idempotency.first_claim(), write_transaction():
        dispute, order, role = await _lock_dispute(principal, dispute_id)
        previous = await idempotency.replay(scope, key, "respondToDispute", request)
        if previous is not None:
            return await _dispute(dispute_id)
        if role is not Role.SUPPLIER:
            raise DomainError(
                ErrorCode.NOT_DISPUTE_SUPPLIER,
                "only the order's supplier answers a dispute",
                "disputeId",
            )
        require_scope(principal, Scope.PAYMENTS)
        _require_open(dispute)
        if dispute.responded_at is not None:
            raise DomainError(
                ErrorCode.DISPUTE_ALREADY_ANSWERED, "this dispute is already answered", "disputeId"
            )
        now = clock.now()
        if now > dispute.response_due_at:
            raise DomainError(
                ErrorCode.DISPUTE_RESPONSE_LATE,
                f"the answer was due by {dispute.response_due_at.isoformat()}",
                "disputeId",
            )
        if response is DisputeResponse.OFFER:
            if offered is None:
                raise DomainError(
                    ErrorCode.INVALID_AMOUNT, "an offer names a refund", "offeredRefund"
                )
            if offered.currency != order.currency:
                raise DomainError(
                    ErrorCode.INVALID_CURRENCY, f"this order is paid in {order.currency}",
                    "offeredRefund.currency",
                )  # fmt: skip
            if not 0 < offered.minor < dispute.requested_minor:
                raise DomainError(
                    ErrorCode.INVALID_AMOUNT,
                    "an offer is more than nothing and less than the refund asked for",
                    "offeredRefund",
                )
        elif offered is not None:
            raise DomainError(
                ErrorCode.INVALID_INPUT, "only an OFFER names a refund", "offeredRefund"
            )
        actor = events.Actor.of(principal)
        dispute.supplier_response = response.value
        dispute.supplier_response_text = text
        dispute.offered_minor = offered.minor if offered else None
        dispute.responded_at = now
        await dispute.save()
        await messages.check_cited(order.id, [m for _, _, m in items])
        await _store_evidence(dispute.id, Role.SUPPLIER, principal, items)
        what = {
            DisputeResponse.ACCEPT: "accepted the refund asked for",
            DisputeResponse.OFFER: f"offered {offered} back",
            DisputeResponse.REJECT: "rejected the claim",
        }[response]
        await events.record(
            order.id, f"DISPUTE_{response.value}ED" if response is not DisputeResponse.OFFER
            else "DISPUTE_OFFER_MADE", old_status=order.status, new_status=order.status,
            actor=actor, at=now, reason=f"dispute {dispute.id}: the supplier {what}",
        )  # fmt: skip
        if response is DisputeResponse.ACCEPT:
            refunds.extend(
                await _refund_and_settle(
                    dispute,
                    order,
                    dispute.requested_minor,
                    outcome=DisputeOutcome.SUPPLIER_ACCEPTED,
                    actor=actor,
                    kind="DISPUTE_RESOLVED",
                    why="accepted by the supplier",
                )
            )
        await idempotency.remember(scope, key, "respondToDispute", request, {"dispute": dispute.id})
    await payments.execute_refunds(refunds)
    return dispute


async def accept_dispute_offer(
    principal: Principal, dispute_id: int, *, idempotency_key: str
) -> Dispute:
    """The buyer accepts the supplier's offer: that refund, and the dispute is resolved."""
    key = idempotency.check_key(idempotency_key)
    scope = idempotency.scope_of(principal)
    request = {"dispute": dispute_id}
    async with idempotency.first_claim(), write_transaction():
        dispute, order, role = await _lock_dispute(principal, dispute_id)
        previous = await idempotency.replay(scope, key, "acceptDisputeOffer", request)
        if previous is not None:
            return await _dispute(dispute_id)
        if role is not Role.BUYER:
            raise DomainError(
                ErrorCode.NOT_DISPUTE_BUYER, "only the order's buyer accepts an offer", "disputeId"
            )
        require_scope(principal, Scope.PAYMENTS)
        _require_open(dispute)
        if dispute.supplier_response != DisputeResponse.OFFER.value or not dispute.offered_minor:
            raise DomainError(
                ErrorCode.NO_DISPUTE_OFFER, "the supplier has made no offer", "disputeId"
            )
        refunds = await _refund_and_settle(
            dispute, order, dispute.offered_minor, outcome=DisputeOutcome.OFFER_ACCEPTED,
            actor=events.Actor.of(principal), kind="DISPUTE_RESOLVED",
            why="the supplier's offer, accepted by the buyer",
        )  # fmt: skip
        await idempotency.remember(
            scope, key, "acceptDisputeOffer", request, {"dispute": dispute.id}
        )
    await payments.execute_refunds(refunds)
    return dispute


async def _escalate(
    dispute: Dispute, order: Order, *, actor: events.Actor, automatic: bool
) -> None:
    now = clock.now()
    dispute.status = DisputeStatus.ESCALATED.value
    dispute.escalated_at = now
    dispute.escalated_automatically = automatic
    dispute.supplier_cooperated = dispute.responded_at is not None
    dispute.dispute_due_at = None
    await dispute.save()
    cooperation = (
        "" if dispute.supplier_cooperated else "; the supplier did not answer (not cooperating)"
    )
    await events.record(
        order.id, "DISPUTE_ESCALATED", old_status=order.status, new_status=order.status,
        actor=actor, at=now,
        reason=f"dispute {dispute.id}: "
        + ("escalated automatically" if automatic else "escalated by the buyer")
        + f", a mediator decides{cooperation}",
    )  # fmt: skip


async def escalate_dispute(principal: Principal, dispute_id: int) -> Dispute:
    """The buyer hands an open dispute to a mediator, from `dispute_escalation_after_days`
    after opening."""
    require_scope(principal, Scope.ORDERS)
    async with write_transaction():
        dispute, order, role = await _lock_dispute(principal, dispute_id)
        if role is not Role.BUYER:
            raise DomainError(
                ErrorCode.NOT_DISPUTE_BUYER, "only the order's buyer escalates", "disputeId"
            )
        _require_open(dispute)
        if clock.now() < dispute.escalation_allowed_at:
            raise DomainError(
                ErrorCode.ESCALATION_TOO_EARLY,
                f"the buyer may escalate from {dispute.escalation_allowed_at.isoformat()}",
                "disputeId",
            )
        await _escalate(dispute, order, actor=events.Actor.of(principal), automatic=False)
    return dispute


async def auto_escalate(dispute_id: int) -> bool:
    """The sweep: an open dispute past its automatic escalation time is escalated (its
    due time checked again under the locks, so it happens once)."""
    async with write_transaction():
        dispute, order, _ = await _lock_dispute(None, dispute_id)
        if dispute.status != DisputeStatus.OPEN.value or dispute.auto_escalation_at > clock.now():
            if dispute.status != DisputeStatus.OPEN.value and dispute.dispute_due_at is not None:
                dispute.dispute_due_at = None
                await dispute.save([Dispute.dispute_due_at])
            return False
        await _escalate(dispute, order, actor=events.SCHEDULER, automatic=True)
    return True


async def escalate_due(limit: int = 100) -> list[int]:
    """Escalate every open dispute whose automatic escalation is due; the ids escalated.
    Each in its own short transaction (the selection reads the index on
    `dispute_due_at`); one that fails is logged and left for the next sweep."""
    rows = await (
        Dispute.select(Dispute.id)
        .where(Dispute.dispute_due_at.is_not_null() & (Dispute.dispute_due_at <= clock.now()))
        .order_by(Dispute.dispute_due_at)
        .limit(limit)
    )
    done = []
    for row in rows:
        try:
            if await auto_escalate(int(row["id"])):
                done.append(int(row["id"]))
        except Exception:
            log.exception("escalating dispute %s failed", row["id"])
    return done


async def _on_decided_against_supplier(dispute: Dispute, *, cooperated: bool) -> None:
    """A dispute decided against the supplier carries penalty points (which may open an
    investigation), and the order's timeline says so. Call inside the decision's
    transaction."""
    cfg = config.current()
    points = cfg.penalty_points_resolved if cooperated else cfg.penalty_points_uncooperative
    status = (
        await Order.select(Order.status, Order.supplier).where(Order.id == dispute.order).first()
    )
    assert status is not None
    await investigations.add_penalty_points(
        int(status["supplier"]), points,
        reason=f"dispute {dispute.id} decided against the supplier"
        + ("" if cooperated else " (did not cooperate)"),
        dispute_id=dispute.id,
    )  # fmt: skip
    actor = (
        events.Actor(ActorKind.USER, user_id=dispute.decided_by)
        if dispute.decided_by is not None
        else events.SCHEDULER
    )
    await events.record(
        dispute.order, "DISPUTE_LOST_BY_SUPPLIER", old_status=status["status"],
        new_status=status["status"], actor=actor, at=clock.now(),
        reason=f"dispute {dispute.id}: {points} penalty points"
        + ("" if cooperated else " (the supplier did not cooperate)"),
    )  # fmt: skip


async def resolve_dispute(
    principal: Principal,
    dispute_id: int,
    decision: DisputeDecision,
    *,
    amount: Money | None = None,
    refund_inspection_fee: bool = False,
    reason: str,
    idempotency_key: str,
) -> Dispute:
    """A mediator decides an escalated dispute: a full refund of what escrow holds, a
    partial refund of `amount`, or release to the supplier (the order completes); and
    whether the inspection fees still held go back to the buyer."""
    key = idempotency.check_key(idempotency_key)
    scope = idempotency.scope_of(principal)
    reason = _check_text(reason, "reason", required=True)
    request = {
        "dispute": dispute_id, "decision": decision.value, "fee": refund_inspection_fee,
        "amount": [amount.minor, amount.currency] if amount else None, "reason": reason,
    }  # fmt: skip
    refunds: list[Refund] = []
    async with idempotency.first_claim(), write_transaction():
        if principal.role is not Role.MEDIATOR:
            raise DomainError(ErrorCode.NOT_A_MEDIATOR, "a mediator decides disputes", "disputeId")
        dispute, order, _ = await _lock_dispute(principal, dispute_id)
        previous = await idempotency.replay(scope, key, "resolveDispute", request)
        if previous is not None:
            return await _dispute(dispute_id)
        if dispute.status != DisputeStatus.ESCALATED.value:
            raise DomainError(
                ErrorCode.DISPUTE_NOT_ESCALATED,
                f"a mediator decides escalated disputes; this one is {dispute.status.lower()}",
                "disputeId",
            )
        held = await ledger.held(order.id)
        actor = events.Actor.of(principal)
        dispute.decided_by = principal.user_id
        dispute.decision_reason = reason
        if decision is DisputeDecision.RELEASE_TO_SUPPLIER:
            if amount is not None:
                raise DomainError(
                    ErrorCode.INVALID_INPUT, "only a partial refund names an amount", "amount"
                )
        else:
            wanted = held
            if decision is DisputeDecision.PARTIAL_REFUND:
                if amount is None or amount.minor <= 0:
                    raise DomainError(
                        ErrorCode.INVALID_AMOUNT, "a partial refund names an amount", "amount"
                    )
                if amount.currency != order.currency:
                    raise DomainError(
                        ErrorCode.INVALID_CURRENCY, f"this order is paid in {order.currency}",
                        "amount.currency",
                    )  # fmt: skip
                wanted = amount.minor
            elif amount is not None:
                raise DomainError(
                    ErrorCode.INVALID_INPUT, "only a partial refund names an amount", "amount"
                )
            if wanted <= 0 or wanted > held:
                raise DomainError(
                    ErrorCode.INSUFFICIENT_HELD_FUNDS,
                    f"escrow holds {Money(held, order.currency)} for this order",
                    "amount",
                )
        if refund_inspection_fee:
            # Imported here: models.inspections is imported by the module already, but
            # its fee refund is only needed on this path.
            from models.inspections import refund_inspection_fee as refund_fee

            fee_ids = await Inspection.select(Inspection.id).where(Inspection.order == order.id)
            for row in fee_ids:
                if await ledger.fee_held(int(row["id"])) > 0:
                    refunds += await refund_fee(
                        int(row["id"]),
                        actor=actor,
                        reason=f"dispute {dispute.id}: the mediator's decision",
                        dispute_id=dispute.id,
                    )
            if not refunds:  # it used to be ignored without a word
                raise DomainError(
                    ErrorCode.INSUFFICIENT_HELD_FUNDS,
                    "escrow holds no inspection fee for this order (a PASSED report paid "
                    "it to the inspector); decide without refundInspectionFee",
                    "refundInspectionFee",
                )
            dispute.inspection_fee_refunded = True
        if decision is DisputeDecision.RELEASE_TO_SUPPLIER:
            now = clock.now()
            dispute.status = DisputeStatus.RESOLVED.value
            dispute.outcome = DisputeOutcome.RELEASE_TO_SUPPLIER.value
            dispute.refunded_minor = 0
            dispute.resolved_at = now
            await dispute.save()
            await lifecycle.release_held_and_complete(
                order, kind="DISPUTE_RESOLVED", actor=actor,
                why=f"dispute {dispute.id} decided for the supplier: ",
            )  # fmt: skip
        else:
            outcome = DisputeOutcome(decision.value)
            refunds.extend(
                await _refund_and_settle(
                    dispute,
                    order,
                    wanted,
                    outcome=outcome,
                    actor=actor,
                    kind="DISPUTE_RESOLVED",
                    why=f"the mediator's decision: {reason}",
                )
            )
            await _on_decided_against_supplier(
                dispute, cooperated=dispute.supplier_cooperated is not False
            )
        await idempotency.remember(scope, key, "resolveDispute", request, {"dispute": dispute.id})
    await payments.execute_refunds(refunds)
    return dispute


# --- reads -----------------------------------------------------------------------------


def _visible(principal: Principal) -> Any:
    visible = visible_orders(principal)
    return None if visible is None else Dispute.order.is_in(visible)


async def get_disputes(principal: Principal, ids: Sequence[int]) -> dict[int, Dispute]:
    if not ids:
        return {}
    query = Dispute.objects().where(Dispute.id.is_in(list(ids)))
    condition = _visible(principal)
    if condition is not None:
        query = query.where(condition)
    return {d.id: d for d in await query}


async def open_attachment(principal: Principal, evidence_id: int) -> tuple[DisputeEvidence, bytes]:
    """An evidence file for the order's buyer and supplier and mediators (NOT_FOUND for
    anyone else, and for text-only evidence), its bytes checked against the SHA-256
    recorded at upload first, as inspection files are."""
    evidence = await get_row(DisputeEvidence, evidence_id)
    if (
        evidence is None
        or evidence.sha256 is None
        or not await get_disputes(principal, [evidence.dispute])
    ):
        raise DomainError(ErrorCode.NOT_FOUND, "no such evidence file", "attachmentId")
    return evidence, await read_verified(evidence.sha256)


async def latest_of(order_ids: Sequence[int]) -> dict[int, Dispute | None]:
    """Each order's latest dispute (for DataLoaders)."""
    out: dict[int, Dispute | None] = {i: None for i in order_ids}
    if order_ids:
        rows = (
            await Dispute.objects().where(Dispute.order.is_in(list(order_ids))).order_by(Dispute.id)
        )
        for d in rows:
            out[d.order] = d
    return out


async def evidence_of(dispute_ids: Sequence[int]) -> dict[int, list[DisputeEvidence]]:
    out: dict[int, list[DisputeEvidence]] = {i: [] for i in dispute_ids}
    if dispute_ids:
        rows = (
            await DisputeEvidence.objects()
            .where(DisputeEvidence.dispute.is_in(list(dispute_ids)))
            .order_by(DisputeEvidence.id)
        )
        for e in rows:
            out[e.dispute].append(e)
    return out


async def list_disputes(
    principal: Principal,
    *,
    status: DisputeStatus | None = None,
    escalated: bool | None = None,
    overdue: bool = False,
    first: int,
    after_id: int | None,
) -> tuple[list[Dispute], bool]:
    """Disputes newest first, keyset-paginated by id: mediators see all, the parties
    those of their orders. `escalated`: escalated at some point (or never); `overdue`:
    open and either unanswered past the response due time or past automatic escalation."""
    query = Dispute.objects()
    condition = _visible(principal)
    if condition is not None:
        query = query.where(condition)
    if status is not None:
        query = query.where(Dispute.status == status.value)
    if escalated is not None:
        query = query.where(
            Dispute.escalated_at.is_not_null() if escalated else Dispute.escalated_at.is_null()
        )
    if overdue:
        now = clock.now()
        query = query.where(
            (Dispute.status == DisputeStatus.OPEN.value)
            & (
                (Dispute.responded_at.is_null() & (Dispute.response_due_at <= now))
                | (Dispute.auto_escalation_at <= now)
            )
        )
    if after_id is not None:
        query = query.where(Dispute.id < after_id)
    rows = await query.order_by(Dispute.id, ascending=False).limit(first + 1)
    return rows[:first], len(rows) > first


async def dispute_events(order_id: int) -> list[OrderEvent]:
    """The order's dispute events, oldest first (tests and views)."""
    return list(
        await OrderEvent.objects()
        .where((OrderEvent.order == order_id) & OrderEvent.kind.like("DISPUTE_%"))
        .order_by(OrderEvent.id)
    )
