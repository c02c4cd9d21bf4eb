"""Money in and out of escrow: payments, releases and refunds.

A payment or refund is first recorded PENDING and committed; the provider is called
outside any transaction; its answer (now, or later through a signed callback) is then
recorded with the ledger postings and the order event in one transaction. So a provider
failure never leaves the ledger claiming money moved, and a crash between the steps
leaves a PENDING record that the callback or a retry completes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

from models import clock, config, deadlines, events, idempotency, ledger, sql
from models.accounts import Principal
from models.db import for_update, is_postgres, is_unique_violation, write_transaction
from models.enums import OrderStatus, PaymentMethod, PaymentStatus, RefundStatus, Role, Scope
from models.errors import DomainError, ErrorCode
from models.money import Money
from models.orders import (
    awaiting_status,
    check_status,
    lock_order,
    locked_order,
    require_scope,
    rows_by_order,
    succeeded_minor,
    visible_orders,
)
from models.provider import (
    ChargeOutcome,
    ChargeRequest,
    ProviderUnavailable,
    RefundRequest,
    provider,
)
from models.tables import Inspection, Order, Payment, ProviderEvent, Refund
from models.trade_assurance import add_business_days

log = logging.getLogger("trade_assurance.payments")

# Methods a buyer can use, by the buyer company's country (None: everywhere).
METHOD_COUNTRIES: dict[PaymentMethod, frozenset[str] | None] = {
    PaymentMethod.CARD: None,
    PaymentMethod.TT: None,
    PaymentMethod.E_CHECKING: frozenset({"US"}),
    PaymentMethod.BOLETO: frozenset({"BR"}),
    PaymentMethod.PAY_LATER: frozenset({"US"}),
}
# The callbacks a payment provider sends us.
PROVIDER_EVENT_TYPES = frozenset(
    {"payment.succeeded", "payment.failed", "refund.settled", "refund.failed"}
)
PAYABLE = [OrderStatus.AWAITING_INITIAL_PAYMENT, OrderStatus.AWAITING_BALANCE]
# Where an order can end while a payment for it is still pending (a dispute's decision).
_ENDED = frozenset({OrderStatus.COMPLETED, OrderStatus.REFUNDED, OrderStatus.CANCELLED})


@dataclasses.dataclass(frozen=True, slots=True)
class Quote:
    amount: Money
    fee: Money
    total_charge: Money


def fee_minor(method: PaymentMethod, amount_minor: int) -> int:
    """The card fee, rounded half up to the minor unit; other methods carry none."""
    if method is not PaymentMethod.CARD:
        return 0
    return (amount_minor * config.current().card_fee_bps + 5_000) // 10_000


def quote(method: PaymentMethod, amount: Money) -> Quote:
    if amount.minor <= 0:
        raise DomainError(ErrorCode.INVALID_AMOUNT, "a payment is positive", "amount")
    fee = Money(fee_minor(method, amount.minor), amount.currency)
    return Quote(amount, fee, Money(amount.minor + fee.minor, amount.currency))


def payment_reference(payment_id: int) -> str:
    return f"pay_{payment_id}"


def refund_reference(refund_id: int) -> str:
    return f"ref_{refund_id}"


def check_method(method: PaymentMethod, country: str) -> None:
    allowed = METHOD_COUNTRIES[method]
    if allowed is not None and country not in allowed:
        raise DomainError(
            ErrorCode.PAYMENT_METHOD_NOT_AVAILABLE,
            f"{method.value} is only for buyers in {', '.join(sorted(allowed))}",
            "method",
        )


def _due_amounts(order: Order, paid: int) -> set[int]:
    """What may be paid now: the next installment, or everything that is outstanding."""
    outstanding = order.total_minor - paid
    if order.status == OrderStatus.AWAITING_INITIAL_PAYMENT.value:
        return {order.initial_minor - paid, outstanding}
    return {outstanding}


def _require_buyer(principal: Principal, role: Role | None, action: str) -> None:
    if role is not Role.BUYER:
        raise DomainError(ErrorCode.FORBIDDEN, f"only the order's buyer may {action}")
    require_scope(principal, Scope.PAYMENTS)


@dataclasses.dataclass(frozen=True, slots=True)
class PaymentResult:
    payment: Payment
    error: DomainError | None = None  # a decline is a result, reported beside the payment
    order: Order | None = None  # as the payment left it; None: read it afresh


async def pay_order(
    principal: Principal,
    order_id: int,
    amount: Money,
    method: PaymentMethod,
    *,
    idempotency_key: str,
    source: str | None = None,
) -> PaymentResult:
    """Pay the initial payment, the balance, or both, into escrow."""
    key = idempotency.check_key(idempotency_key)
    scope = idempotency.scope_of(principal)
    request = {"order": order_id, "amount": amount.minor, "currency": amount.currency,
               "method": method.value, "source": source}  # fmt: skip
    async with idempotency.first_claim(), write_transaction():
        locked = await locked_order(principal, order_id)
        order, role = locked.order, locked.role
        previous = await idempotency.replay(scope, key, "payOrder", request)
        if previous is not None:
            return await payment_result(previous)
        _require_buyer(principal, role, "pay")
        check_status(order, PAYABLE, "pay")
        if amount.minor <= 0:  # nothing to charge; the ledger refuses a posting of 0
            raise DomainError(ErrorCode.INVALID_AMOUNT, "a payment is positive", "amount")
        if amount.currency != order.currency:
            raise DomainError(
                ErrorCode.INVALID_CURRENCY, f"this order is paid in {order.currency}",
                "amount.currency",
            )  # fmt: skip
        earlier = await sql.fetch(
            "SELECT status, amount_minor FROM payment"
            ' WHERE "order" = {} AND status IN ({}, {}) AND inspection IS NULL',
            order.id, PaymentStatus.PENDING.value, PaymentStatus.SUCCEEDED.value,
        )  # fmt: skip
        if any(p["status"] == PaymentStatus.PENDING.value for p in earlier):
            raise DomainError(
                ErrorCode.PAYMENT_IN_PROGRESS,
                "a payment for this order is still pending; wait for its outcome",
                "orderId",
            )
        due = _due_amounts(order, sum(int(p["amount_minor"]) for p in earlier))
        if amount.minor not in due:
            raise DomainError(
                ErrorCode.AMOUNT_NOT_DUE,
                "the amount due is "
                + " or ".join(str(Money(d, order.currency)) for d in sorted(due)),
                "amount",
            )
        country = locked.buyer_country
        check_method(method, country)
        now = clock.now()
        payment = Payment(
            order=order.id,
            method=method.value,
            status=PaymentStatus.PENDING.value,
            currency=order.currency,
            amount_minor=amount.minor,
            fee_minor=fee_minor(method, amount.minor),
            created_at=now,
        )
        await sql.save_new(payment)
        await idempotency.remember(scope, key, "payOrder", request, {"payment": payment.id})
        await events.record(
            order.id, "PAYMENT_STARTED", old_status=order.status, new_status=order.status,
            actor=events.Actor.of(principal), at=now,
            reason=f"{method.value} {amount} (fee {Money(payment.fee_minor, order.currency)})",
        )  # fmt: skip
    return await charge(payment, source=source, buyer_country=country, order=order)


async def charge(
    payment: Payment, *, source: str | None, buyer_country: str, order: Order | None = None
) -> PaymentResult:
    """Ask the provider to charge a committed PENDING payment (outside any transaction)
    and record its answer; a pending answer waits for the callback. Inspection fees are
    charged the same way (`models.inspections`). Returns the payment as it now stands and
    the order as its outcome left it (`order`, as locked before, while still pending)."""
    try:
        result = await provider().charge(
            ChargeRequest(
                reference=payment_reference(payment.id),
                method=PaymentMethod(payment.method),
                currency=payment.currency,
                amount_minor=payment.amount_minor,
                fee_minor=payment.fee_minor,
                source=source,
                buyer_country=buyer_country,
            )
        )
    except ProviderUnavailable:
        # Never reached the provider: nothing moved. The attempt fails; the buyer retries.
        settled = await _settle(payment.id, succeeded=False, reason="provider_unavailable")
    else:
        if result.outcome is ChargeOutcome.PENDING:
            payment.provider_reference = result.provider_reference
            await sql.save_columns(payment, [Payment.provider_reference])
            return PaymentResult(payment, order=order)
        settled = await _settle(
            payment.id,
            succeeded=result.outcome is ChargeOutcome.SUCCEEDED,
            provider_reference=result.provider_reference,
            reason=result.failure_reason,
        )
    if settled is None:  # a provider callback settled it first
        return await payment_result({"payment": payment.id})
    return _result_of(*settled)


async def payment_result(stored: dict[str, Any]) -> PaymentResult:
    payment = await Payment.objects().get(Payment.id == stored["payment"])
    assert payment is not None
    return _result_of(payment, None)


def _result_of(payment: Payment, order: Order | None) -> PaymentResult:
    error = None
    if payment.status == PaymentStatus.FAILED.value:
        code = (
            ErrorCode.PAYMENT_PROVIDER_UNAVAILABLE
            if payment.failure_reason == "provider_unavailable"
            else ErrorCode.PAYMENT_DECLINED
        )
        error = DomainError(code, f"the payment failed: {payment.failure_reason}", "method")
    return PaymentResult(payment, error, order)


async def record_charge_outcome(
    payment_id: int,
    *,
    succeeded: bool,
    provider_reference: str | None = None,
    reason: str | None = None,
) -> bool:
    """Settle or fail a PENDING payment: ledger, status and event in one transaction.
    Returns False (and changes nothing) if the payment is no longer pending."""
    settled = await _settle(
        payment_id, succeeded=succeeded, provider_reference=provider_reference, reason=reason
    )
    return settled is not None


async def _settle(
    payment_id: int,
    *,
    succeeded: bool,
    provider_reference: str | None = None,
    reason: str | None = None,
) -> tuple[Payment, Order] | None:
    """`record_charge_outcome`, giving back the payment and order as it left them."""
    async with write_transaction():
        payment = await sql.get(Payment, payment_id, lock=True)
        if payment is None:
            raise DomainError(ErrorCode.UNKNOWN_REFERENCE, "no such payment", "reference")
        order, _ = await lock_order(None, payment.order)
        if payment.status != PaymentStatus.PENDING.value:
            if succeeded and payment.status == PaymentStatus.FAILED.value:
                # We failed it (the provider seemed unreachable) and yet it charged: money
                # at the provider that the books do not hold. For a person to reconcile.
                log.error(
                    "payment %s (%s) succeeded at the provider after it was marked failed",
                    payment.id, provider_reference or payment.provider_reference,
                )  # fmt: skip
            return None
        now = clock.now()
        payment.provider_reference = provider_reference or payment.provider_reference
        payment.settled_at = now
        if payment.inspection is not None:  # an inspection fee, not the goods money
            # Imported here: models.inspections builds on this module.
            from models.inspections import record_fee_outcome

            payment.status = (PaymentStatus.SUCCEEDED if succeeded else PaymentStatus.FAILED).value
            payment.failure_reason = None if succeeded else reason or "failed"
            await sql.save_columns(payment, _SETTLED_COLUMNS)
            await record_fee_outcome(order, payment, at=now)
            return payment, order
        old = order.status
        if not succeeded:
            payment.status = PaymentStatus.FAILED.value
            payment.failure_reason = reason or "failed"
            await sql.save_columns(payment, _SETTLED_COLUMNS)
            # Nothing arrived: if nothing else was paid, the payment deadline applies again.
            due = deadlines.next_due(
                order,
                anything_paid=await succeeded_minor(order.id) > 0,
                payment_pending=False,
            )
            if due != order.next_deadline_at:
                order.next_deadline_at = due
                await sql.save_columns(order, [Order.next_deadline_at])
            await events.record(
                order.id, "PAYMENT_FAILED", old_status=old, new_status=old,
                actor=events.PAYMENT_PROVIDER, at=now, reason=payment.failure_reason,
            )  # fmt: skip
            return payment, order
        payment.status = PaymentStatus.SUCCEEDED.value
        await sql.save_columns(payment, _SETTLED_COLUMNS)
        await ledger.post_payment(
            order.id, PaymentMethod(payment.method), order.currency, payment.amount_minor,
            payment.fee_minor, now,
        )  # fmt: skip
        amount = Money(payment.amount_minor, order.currency)
        if order.status in _ENDED:
            # The order ended while this payment was pending (a dispute decided it, say):
            # the money is booked into escrow and sent straight back, and the order stays
            # as it ended. The refund is paid out by the sweep (`retry_due_refunds`).
            await events.record(
                order.id, "PAYMENT_SUCCEEDED", old_status=old, new_status=old,
                actor=events.PAYMENT_PROVIDER, at=now,
                reason=f"{payment.method} {amount} arrived after the order ended; refunded",
            )  # fmt: skip
            await start_refund(
                order.id, payment.amount_minor, actor=events.PAYMENT_PROVIDER,
                reason="the payment arrived after the order ended",
            )  # fmt: skip
            return payment, order
        if order.status in PAYABLE:  # else (OVERDUE) the money is held; the status stays
            order.status = awaiting_status(order, await succeeded_minor(order.id))
            order.next_deadline_at = deadlines.next_due(
                order, anything_paid=True, payment_pending=False
            )
            order.updated_at = now
            await sql.save_columns(order, [Order.status, Order.next_deadline_at, Order.updated_at])
        await events.record(
            order.id, "PAYMENT_SUCCEEDED", old_status=old, new_status=order.status,
            actor=events.PAYMENT_PROVIDER, at=now, reason=f"{payment.method} {amount} in escrow",
        )  # fmt: skip
        return payment, order


# What settling changes on a payment.
_SETTLED_COLUMNS = [
    Payment.status, Payment.provider_reference, Payment.settled_at, Payment.failure_reason,
]  # fmt: skip


def _reference_id(reference: str, prefix: str) -> int:
    number = reference.removeprefix(prefix)
    if not reference.startswith(prefix) or not number.isdigit():
        raise DomainError(ErrorCode.UNKNOWN_REFERENCE, f"unknown reference {reference!r}")
    return int(number)


async def handle_provider_event(
    event_id: str,
    event_type: str,
    reference: str,
    provider_reference: str | None,
    reason: str | None,
) -> bool:
    """Apply a verified provider callback once; False if this event id was seen before.

    The event id is recorded in the same transaction as its effect (the outcome functions
    join it), so a crash loses neither, and a concurrent duplicate delivery fails on the
    unique id and changes nothing."""
    if event_type not in PROVIDER_EVENT_TYPES:
        raise DomainError(ErrorCode.INVALID_INPUT, f"unknown event type {event_type!r}")
    try:
        async with write_transaction():
            if await ProviderEvent.exists().where(ProviderEvent.provider_event_id == event_id):
                return False
            await ProviderEvent.insert(
                ProviderEvent(provider_event_id=event_id, kind=event_type, received_at=clock.now())
            )
            if event_type.startswith("payment."):
                await record_charge_outcome(
                    _reference_id(reference, "pay_"),
                    succeeded=event_type == "payment.succeeded",
                    provider_reference=provider_reference,
                    reason=reason,
                )
            else:
                await record_refund_outcome(
                    _reference_id(reference, "ref_"),
                    settled=event_type == "refund.settled",
                    provider_reference=provider_reference,
                    reason=reason,
                )
    except Exception as e:
        if is_unique_violation(e):
            return False
        raise
    return True


@dataclasses.dataclass(frozen=True, slots=True)
class Release:
    order: Order
    amount: Money


async def release_funds(
    principal: Principal,
    order_id: int,
    amount: Money | None,
    *,
    idempotency_key: str,
) -> Release:
    """The buyer releases all (amount None) or part of what escrow holds to the supplier."""
    key = idempotency.check_key(idempotency_key)
    scope = idempotency.scope_of(principal)
    request = {"order": order_id, "amount": None if amount is None else amount.minor,
               "currency": None if amount is None else amount.currency}  # fmt: skip
    async with idempotency.first_claim(), write_transaction():
        locked = await locked_order(principal, order_id)
        order, role = locked.order, locked.role
        previous = await idempotency.replay(scope, key, "releaseFunds", request)
        if previous is not None:
            return Release(order, Money(previous["amount"], order.currency))
        _require_buyer(principal, role, "release funds")
        if amount is not None and amount.currency != order.currency:
            raise DomainError(
                ErrorCode.INVALID_CURRENCY, f"this order is in {order.currency}",
                "amount.currency",
            )  # fmt: skip
        held = await ledger.held(order.id)
        wanted = held if amount is None else amount.minor
        if wanted <= 0 or wanted > held:
            raise DomainError(
                ErrorCode.INSUFFICIENT_HELD_FUNDS,
                f"escrow holds {Money(held, order.currency)} for this order",
                "amount",
            )
        now = clock.now()
        await ledger.post_release(order.id, locked.supplier_company, order.currency, wanted, now)
        await events.record(
            order.id, "FUNDS_RELEASED", old_status=order.status, new_status=order.status,
            actor=events.Actor.of(principal), at=now,
            reason=f"{Money(wanted, order.currency)} released to the supplier",
        )  # fmt: skip
        await idempotency.remember(scope, key, "releaseFunds", request, {"amount": wanted})
    return Release(order, Money(wanted, order.currency))


async def start_refund(
    order_id: int,
    amount_minor: int,
    *,
    actor: events.Actor,
    reason: str,
    inspection_id: int | None = None,
    dispute_id: int | None = None,
) -> list[Refund]:
    """Commit part of what escrow holds back to the buyer (the rules of later issues call
    this: late shipment, failed inspection, dispute decisions). With `inspection_id`, the
    money is that inspection's fee, held in its own account; `dispute_id` names the
    dispute whose outcome it is. Runs in the caller's transaction if there is one; the
    provider is called afterwards by `execute_refunds` (and by the sweep if that never
    happens: `retry_due_refunds`).

    A refund goes back the way the money came, so it is split over the payments it
    returns, newest first, each part at most what is left of its payment: a deposit paid
    with Pay Later and a balance by card get two refunds, to the loan and to the card
    (one refund of both to the card would exceed that charge, and leave the loan unpaid)."""
    async with write_transaction():
        order, _ = await lock_order(None, order_id)
        if inspection_id is None:
            held = await ledger.held(order.id)
        else:
            if not await Inspection.exists().where(
                (Inspection.id == inspection_id) & (Inspection.order == order.id)
            ):
                raise DomainError(ErrorCode.NOT_FOUND, "no such inspection", "inspectionId")
            held = await ledger.fee_held(inspection_id)
        if amount_minor <= 0 or amount_minor > held:
            what = "for this order" if inspection_id is None else "of this inspection's fee"
            raise DomainError(
                ErrorCode.INSUFFICIENT_HELD_FUNDS,
                f"escrow holds {Money(held, order.currency)} {what}",
                "amount",
            )
        now = clock.now()
        what = "" if inspection_id is None else " (inspection fee)"
        refunds = []
        for payment, part in await _refund_parts(order.id, inspection_id, amount_minor):
            refund = Refund(
                order=order.id,
                payment=payment,
                inspection=inspection_id,
                status=RefundStatus.PENDING.value,
                currency=order.currency,
                amount_minor=part,
                reason=reason,
                due_at=add_business_days(now, config.current().refund_start_business_days),
                created_at=now,
                dispute=dispute_id,
                # The caller pays it out right after commit; the sweep only steps in later.
                next_attempt_at=now + retry_delay(0),
            )
            await refund.save()
            await ledger.post_refund_started(
                order.id, order.currency, part, now, inspection_id=inspection_id
            )
            await events.record(
                order.id, "REFUND_STARTED", old_status=order.status, new_status=order.status,
                actor=actor, at=now, reason=f"{Money(part, order.currency)}{what}: {reason}",
            )  # fmt: skip
            refunds.append(refund)
    return refunds


async def _refund_parts(
    order_id: int, inspection_id: int | None, amount: int
) -> list[tuple[int | None, int]]:
    """(payment, amount) for each part of a refund of `amount`: the order's goods payments
    (or the inspection's fee payments), newest first, each for what earlier refunds left
    of it."""
    rows = await sql.fetch(
        "SELECT p.id, p.amount_minor - COALESCE((SELECT SUM(r.amount_minor) FROM refund r"
        " WHERE r.payment = p.id), 0) AS unrefunded FROM payment p"
        ' WHERE p."order" = {} AND p.status = {} AND COALESCE(p.inspection, 0) = {}'
        " ORDER BY p.id DESC",
        order_id, PaymentStatus.SUCCEEDED.value, inspection_id or 0,  # 0: the goods money
    )  # fmt: skip
    parts: list[tuple[int | None, int]] = []
    for row in rows:
        take = min(amount, max(int(row["unrefunded"]), 0))
        if take:
            parts.append((int(row["id"]), take))
            amount -= take
    if amount:  # more than the payments have left (refunds made before refunds were split)
        newest = int(rows[0]["id"]) if rows else None
        if parts and parts[0][0] == newest:
            parts[0] = (newest, parts[0][1] + amount)
        else:
            parts.insert(0, (newest, amount))
    return parts


async def _refund_route(refund: Refund) -> tuple[PaymentMethod, str | None]:
    """A refund goes back the way the money came: the method and provider reference of
    the payment it refunds (bank transfer when it names none)."""
    if refund.payment is not None:
        payment = await Payment.objects().get(Payment.id == refund.payment)
        if payment is not None:
            return PaymentMethod(payment.method), payment.provider_reference
    return PaymentMethod.TT, None


async def execute_refund(refund_id: int) -> Refund:
    """Ask the provider to pay a PENDING or FAILED refund out; record what it says."""
    refund = await Refund.objects().get(Refund.id == refund_id)
    if refund is None:
        raise DomainError(ErrorCode.NOT_FOUND, "no such refund", "refundId")
    if refund.status == RefundStatus.SETTLED.value:
        return refund
    method, payment_reference_ = await _refund_route(refund)
    try:
        result = await provider().refund(
            RefundRequest(
                reference=refund_reference(refund.id),
                method=method,
                currency=refund.currency,
                amount_minor=refund.amount_minor,
                payment_provider_reference=payment_reference_,
            )
        )
    except ProviderUnavailable:
        await record_refund_outcome(refund.id, settled=False, reason="provider_unavailable")
    else:
        await record_refund_outcome(
            refund.id,
            settled=result.settled,
            provider_reference=result.provider_reference,
            reason=result.failure_reason,
        )
    refreshed = await Refund.objects().get(Refund.id == refund.id)
    assert refreshed is not None
    return refreshed


async def execute_refunds(refunds: Sequence[Refund]) -> list[Refund]:
    """`execute_refund` for each part of a refund, after commit."""
    return [await execute_refund(refund.id) for refund in refunds]


async def record_refund_outcome(
    refund_id: int,
    *,
    settled: bool,
    provider_reference: str | None = None,
    reason: str | None = None,
) -> bool:
    """A refund attempt's outcome. Settled: the money left (posted once). Failed: it stays
    committed to the buyer, is retried, and is never counted as paid out."""
    async with write_transaction():
        found = await for_update(Refund.objects().where(Refund.id == refund_id))
        if not found:
            raise DomainError(ErrorCode.UNKNOWN_REFERENCE, "no such refund", "reference")
        refund: Refund = found[0]
        order, _ = await lock_order(None, refund.order)
        if refund.status == RefundStatus.SETTLED.value:
            return False
        now = clock.now()
        refund.attempts += 1
        refund.provider_reference = provider_reference or refund.provider_reference
        if settled:
            method, _ = await _refund_route(refund)
            refund.status = RefundStatus.SETTLED.value
            refund.settled_at = now
            refund.next_attempt_at = None
            await refund.save()
            await ledger.post_refund_settled(
                order.id, method, order.currency, refund.amount_minor, now,
                inspection_id=refund.inspection,
            )  # fmt: skip
            kind, why = "REFUND_SETTLED", f"{Money(refund.amount_minor, order.currency)} paid out"
        else:
            refund.status = RefundStatus.FAILED.value
            refund.last_error = reason or "failed"
            refund.next_attempt_at = now + retry_delay(refund.attempts)
            await refund.save()
            kind, why = "REFUND_FAILED", f"{refund.last_error}; will be retried"
        await events.record(
            order.id, kind, old_status=order.status, new_status=order.status,
            actor=events.PAYMENT_PROVIDER, at=now, reason=why,
        )  # fmt: skip
    return True


# The longest wait between two attempts at a refund the provider keeps refusing.
RETRY_CAP = dt.timedelta(hours=6)
_WAITING = [RefundStatus.PENDING.value, RefundStatus.FAILED.value]


def retry_delay(attempts: int) -> dt.timedelta:
    """How long to wait before trying a refund again after `attempts` attempts: the
    configured minutes, doubled after each failure, at most `RETRY_CAP`. A provider that
    is down for a while is not asked every sweep, and a refund it keeps refusing is
    still tried a few times a day until it settles or someone steps in."""
    base = dt.timedelta(minutes=config.current().refund_retry_minutes)
    wait: dt.timedelta = base * 2 ** min(max(attempts - 1, 0), 16)
    return min(wait, RETRY_CAP)


async def claim_due_refunds(limit: int = 20) -> list[int]:
    """Refunds not yet paid out whose retry time has come, oldest due first; each one's
    retry time is pushed out in the same transaction, under its row lock (`SKIP LOCKED` on
    PostgreSQL), so concurrent sweepers take different refunds and a refund is tried once
    per back-off period even if the attempt then crashes."""
    now = clock.now()
    async with write_transaction():
        query = (
            Refund.objects()
            .where(
                Refund.status.is_in(_WAITING)
                & Refund.next_attempt_at.is_not_null()
                & (Refund.next_attempt_at <= now)
            )
            .order_by(Refund.next_attempt_at)
            .limit(limit)
        )
        due: list[Refund] = await (query.lock_rows(skip_locked=True) if is_postgres() else query)
        for refund in due:
            refund.next_attempt_at = now + retry_delay(refund.attempts + 1)
            await refund.save([Refund.next_attempt_at])
    return [r.id for r in due]


async def retry_due_refunds() -> list[Refund]:
    """The sweep: pay out every refund whose retry time has come (PENDING after a crash
    before its payout, or FAILED), each after its claim has committed; what each attempt
    left. One that raises is logged and waits for its next retry time."""
    done: list[Refund] = []
    while claimed := await claim_due_refunds():
        for refund_id in claimed:
            try:
                done.append(await execute_refund(refund_id))
            except Exception:
                log.exception("paying out refund %s failed", refund_id)
    return done


async def claim_unanswered_payments(limit: int = 20) -> list[int]:
    """PENDING payments older than `payment_reconcile_minutes` and not asked about for as
    long, oldest first; each is marked asked in the same transaction, under its row lock
    (`SKIP LOCKED` on PostgreSQL), so concurrent sweepers ask about different ones. The
    age keeps the sweep away from a payment whose request is still talking to the
    provider: "never arrived" must mean it never will."""
    now = clock.now()
    before = now - dt.timedelta(minutes=config.current().payment_reconcile_minutes)
    async with write_transaction():
        query = (
            Payment.objects()
            .where(
                (Payment.status == PaymentStatus.PENDING.value)
                & (Payment.created_at <= before)
                & (Payment.checked_at.is_null() | (Payment.checked_at <= before))
            )
            .order_by(Payment.created_at)
            .limit(limit)
        )
        due: list[Payment] = await (query.lock_rows(skip_locked=True) if is_postgres() else query)
        for payment in due:
            payment.checked_at = now
            await sql.save_columns(payment, [Payment.checked_at])
    return [p.id for p in due]


async def reconcile_payment(payment_id: int) -> str | None:
    """Ask the provider what became of a PENDING payment and record it as its answer or
    callback would have: charged (into escrow), declined, or never arrived (failed as
    `provider_unavailable`: nothing moved, the buyer pays again). Still pending (a bank
    transfer on its way) is left for its callback. The status it now has, None if the
    provider could not be asked."""
    try:
        answer = await provider().charge_status(payment_reference(payment_id))
    except ProviderUnavailable:
        return None
    if answer is None:
        settled = await _settle(payment_id, succeeded=False, reason="provider_unavailable")
    elif answer.outcome is ChargeOutcome.PENDING:
        return PaymentStatus.PENDING.value
    else:
        settled = await _settle(
            payment_id,
            succeeded=answer.outcome is ChargeOutcome.SUCCEEDED,
            provider_reference=answer.provider_reference,
            reason=answer.failure_reason,
        )
    if settled is None:  # settled meanwhile, by its request or a callback
        return None
    log.warning("payment %s had no recorded answer: the provider says %s", payment_id,
                settled[0].status)  # fmt: skip
    return str(settled[0].status)


async def reconcile_pending_payments() -> list[int]:
    """The sweep: every PENDING payment left without the provider's answer (its process
    died between the two), asked about and settled; the ids it settled."""
    settled: list[int] = []
    while claimed := await claim_unanswered_payments():
        for payment_id in claimed:
            try:
                status = await reconcile_payment(payment_id)
            except Exception:
                log.exception("reconciling payment %s failed", payment_id)
                continue
            if status not in (None, PaymentStatus.PENDING.value):
                settled.append(payment_id)
    return settled


async def flag_late(refund_id: int) -> bool:
    """The sweep: a refund not paid out by its due date is flagged for the mediators,
    once, with an order event (the due date and the flag are checked again under the
    refund's row lock, taken before the order's as `record_refund_outcome` does)."""
    async with write_transaction():
        found = await for_update(Refund.objects().where(Refund.id == refund_id))
        now = clock.now()
        if not found or found[0].status not in _WAITING:
            return False
        refund: Refund = found[0]
        if refund.flagged_at is not None or refund.due_at > now:
            return False
        order, _ = await lock_order(None, refund.order)
        refund.flagged_at = now
        await refund.save([Refund.flagged_at])
        await events.record(
            order.id, "REFUND_OVERDUE", old_status=order.status, new_status=order.status,
            actor=events.SCHEDULER, at=now,
            reason=f"{refund_reference(refund.id)}: {Money(refund.amount_minor, refund.currency)}"
            f" not paid out by {refund.due_at.isoformat()} ({refund.attempts} attempt(s)"
            + (f", last error: {refund.last_error})" if refund.last_error else ")"),
        )  # fmt: skip
    log.warning(
        "refund %s of order %s is past its due date and not paid out: flagged",
        refund.id, refund.order,
    )  # fmt: skip
    return True


def _late(now: dt.datetime) -> Any:
    return Refund.status.is_in(_WAITING) & (Refund.due_at <= now)


async def flag_late_refunds(limit: int = 100) -> list[int]:
    """Flag every refund past its due date that is not flagged yet; the ids flagged.
    Each in its own short transaction; one that fails is logged and left for the next
    sweep."""
    rows = await (
        Refund.select(Refund.id)
        .where(_late(clock.now()) & Refund.flagged_at.is_null())
        .order_by(Refund.due_at)
        .limit(limit)
    )
    flagged = []
    for row in rows:
        try:
            if await flag_late(int(row["id"])):
                flagged.append(int(row["id"]))
        except Exception:
            log.exception("flagging refund %s failed", row["id"])
    return flagged


def is_late(refund: Refund, now: dt.datetime | None = None) -> bool:
    """Not paid out and past its due date (whether or not the sweep flagged it yet)."""
    return refund.status in _WAITING and refund.due_at <= (now or clock.now())


def _visible(principal: Principal, query: Any) -> Any:
    """Only the refunds of the orders the caller may see (all for mediators)."""
    visible = visible_orders(principal)
    return query if visible is None else query.where(Refund.order.is_in(visible))


async def get_refunds(principal: Principal, ids: list[int]) -> dict[int, Refund]:
    if not ids:
        return {}
    rows = await _visible(principal, Refund.objects().where(Refund.id.is_in(ids)))
    return {r.id: r for r in rows}


async def list_refunds(
    principal: Principal,
    *,
    status: RefundStatus | None = None,
    overdue: bool = False,
    first: int,
    after_id: int | None,
) -> tuple[list[Refund], bool]:
    """Refunds oldest first, keyset-paginated by id: mediators see all, the parties
    those of their orders; `overdue`: not paid out and past the due date."""
    query = _visible(principal, Refund.objects())
    if status is not None:
        query = query.where(Refund.status == status.value)
    if overdue:
        query = query.where(_late(clock.now()))
    if after_id is not None:
        query = query.where(Refund.id > after_id)
    rows = await query.order_by(Refund.id).limit(first + 1)
    return rows[:first], len(rows) > first


async def refunds_of_disputes(dispute_ids: list[int]) -> dict[int, list[Refund]]:
    """Each dispute's refunds, oldest first (for DataLoaders)."""
    out: dict[int, list[Refund]] = {i: [] for i in dispute_ids}
    if dispute_ids:
        rows = await Refund.objects().where(Refund.dispute.is_in(dispute_ids)).order_by(Refund.id)
        for r in rows:
            assert r.dispute is not None
            out[r.dispute].append(r)
    return out


async def payments_of(order_ids: list[int]) -> dict[int, list[Payment]]:
    """The orders' goods payments (an inspection shows its own fee payment)."""
    return await rows_by_order(Payment, order_ids, '"id"', ' AND "inspection" IS NULL')
