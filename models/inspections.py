"""Pre-shipment inspections: booking (the buyer pays the inspector's fee through the
ordinary payment path), the inspector's answer, the report with its files, where the fee
goes (to the inspector on PASSED; back to the buyer on FAILED, when the supplier is at
fault, or when the inspector declines), and the buyer's refund claim after a failed
inspection.

Each transition is one function and one transaction that locks the order (always the
order first, then the inspection: one lock order for every money path), checks, writes
the change, any ledger posting and the order event. The fee is held in escrow in its own
account per inspection (`ledger.fee_escrow`), so the buyer's `releaseFunds` of the goods
money can never pay it out and the order's money figures never include it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import hmac
import os
import re
import tempfile
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from piccolo.table import Table

from models import clock, config, events, idempotency, ledger, payments, sql
from models.accounts import Principal
from models.db import for_update, write_transaction
from models.enums import (
    CompanyKind,
    InspectionResult,
    InspectionStatus,
    OrderStatus,
    PaymentMethod,
    PaymentStatus,
    Role,
    Scope,
)
from models.errors import DomainError, ErrorCode
from models.lifecycle import refuse_while_disputed
from models.money import Money
from models.orders import (
    check_status,
    convert,
    exchange_rate,
    lock_order,
    locked_order,
    move_to,
    refuse_while_payment_pending,
    require_scope,
    supplier_company,
    visible_orders,
)
from models.tables import (
    Company,
    Inspection,
    InspectionAttachment,
    InspectorProfile,
    Order,
    Payment,
    Refund,
)

# Confirmed and not yet shipped: an inspection can be booked, and a failed one lets the
# buyer take the goods money back. (Shipment statuses come with the shipment issue; any
# status outside these and the end states counts as shipped.)
PRE_SHIPMENT = [
    OrderStatus.AWAITING_INITIAL_PAYMENT,
    OrderStatus.AWAITING_BALANCE,
    OrderStatus.PAID,
]
_NOT_SHIPPED = frozenset(
    {OrderStatus.PENDING_CONFIRMATION, OrderStatus.CANCELLED, OrderStatus.REFUNDED}
    | set(PRE_SHIPMENT)
)
MAX_FINDINGS = 20_000
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# What a report may attach, recognised by the file's first bytes (magic numbers); the
# content type the client claims is never trusted.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
)
ALLOWED_TYPES = tuple(t for _, t in _MAGIC)


# --- fees ------------------------------------------------------------------------------


async def inspector_fee(inspector_company_id: int, currency: str) -> int:
    """The inspector's fee in `currency` (minor units). Raises NOT_AN_INSPECTOR unless the
    company is an inspection company with a fee. A fee in another currency is converted
    through the configured limit-currency rates, rounded down (never overcharges)."""
    company = await Company.select(Company.kind).where(Company.id == inspector_company_id).first()
    profile = (
        await InspectorProfile.select(InspectorProfile.fee_minor, InspectorProfile.fee_currency)
        .where(InspectorProfile.company == inspector_company_id)
        .first()
    )
    if company is None or company["kind"] != CompanyKind.INSPECTOR.value or profile is None:
        raise DomainError(
            ErrorCode.NOT_AN_INSPECTOR, "this company is not an inspection company", "inspectorId"
        )
    fee, fee_currency = int(profile["fee_minor"]), str(profile["fee_currency"])
    if fee_currency != currency:
        limit = config.current().limit_currency
        in_limit = convert(fee, fee_currency, limit, exchange_rate(fee_currency, limit))
        fee = convert(in_limit, limit, currency, Decimal(1) / exchange_rate(currency, limit))
    if fee <= 0:
        raise DomainError(
            ErrorCode.INVALID_AMOUNT, f"the inspector's fee is nothing in {currency}", "inspectorId"
        )
    return fee


# --- attachments -----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class AttachmentUpload:
    """A file as the client sent it, with the SHA-256 (hex) the client computed."""

    filename: str
    data: bytes
    sha256: str


@dataclasses.dataclass(frozen=True, slots=True)
class CheckedFile:
    filename: str
    content_type: str
    data: bytes
    sha256: str


def sniff(data: bytes) -> str | None:
    """The content type the bytes show, if it is one a report may attach."""
    return next((kind for magic, kind in _MAGIC if data.startswith(magic)), None)


def _clean_filename(name: str) -> str:
    """The last path component, printable, at most 200 characters."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = "".join(c for c in base if c.isprintable() and c not in '"').strip()
    return base[-200:] or "attachment"


def check_attachments(files: Sequence[AttachmentUpload]) -> list[CheckedFile]:
    """Refuse any file that is too large, not what its checksum says, or not an allowed
    type; nothing is stored unless every file passes."""
    cfg = config.current()
    if len(files) > cfg.attachment_max_files:
        raise DomainError(
            ErrorCode.INVALID_INPUT,
            f"at most {cfg.attachment_max_files} files per report",
            "attachments",
        )
    checked = []
    for n, f in enumerate(files):
        if len(f.data) > cfg.attachment_max_bytes:
            raise DomainError(
                ErrorCode.FILE_TOO_LARGE,
                f"{_clean_filename(f.filename)}: larger than {cfg.attachment_max_bytes} bytes",
                f"attachments.{n}.file",
            )
        claimed = f.sha256.strip().lower()
        if not _SHA256.match(claimed):
            raise DomainError(
                ErrorCode.INVALID_INPUT,
                "sha256 is the file's SHA-256 as 64 hex digits",
                f"attachments.{n}.sha256",
            )
        actual = hashlib.sha256(f.data).hexdigest()
        if not hmac.compare_digest(actual, claimed):
            raise DomainError(
                ErrorCode.FILE_CHECKSUM_MISMATCH,
                f"{_clean_filename(f.filename)}: the file's SHA-256 is not the one sent; "
                "it was changed or damaged on the way",
                f"attachments.{n}.sha256",
            )
        kind = sniff(f.data)
        if kind is None:
            raise DomainError(
                ErrorCode.FILE_TYPE_NOT_ALLOWED,
                f"{_clean_filename(f.filename)}: only PDF, JPEG and PNG files are accepted",
                f"attachments.{n}.file",
            )
        checked.append(CheckedFile(_clean_filename(f.filename), kind, f.data, actual))
    return checked


def attachment_path(sha256: str) -> Path:
    """Content-addressed: the same bytes are stored once, whoever uploads them."""
    if not _SHA256.match(sha256):
        raise ValueError(f"not a SHA-256: {sha256!r}")
    return Path(config.current().attachment_dir) / sha256[:2] / sha256


def _store_sync(data: bytes, sha256: str) -> None:
    path = attachment_path(sha256)
    if path.exists() and hashlib.sha256(path.read_bytes()).hexdigest() == sha256:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written aside and renamed, so a reader never sees half a file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_sync(sha256: str) -> bytes | None:
    try:
        return attachment_path(sha256).read_bytes()
    except FileNotFoundError:
        return None


# --- transitions -----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Booking:
    inspection: Inspection
    payment: Payment
    error: DomainError | None = None  # a declined fee payment, reported beside the booking


async def _booking(stored: dict[str, Any]) -> Booking:
    result = await payments.payment_result({"payment": stored["payment"]})
    inspection = await Inspection.objects().get(Inspection.id == stored["inspection"])
    assert inspection is not None
    return Booking(inspection, result.payment, result.error)


def _check_date(order: Order, scheduled_on: dt.date) -> None:
    if scheduled_on < clock.now().date():
        raise DomainError(
            ErrorCode.INSPECTION_DATE_IN_PAST, "the inspection date is in the past", "date"
        )
    deadline = order.shipping_deadline.astimezone(dt.UTC).date()
    if scheduled_on >= deadline:
        raise DomainError(
            ErrorCode.INSPECTION_DATE_NOT_BEFORE_DEADLINE,
            f"the inspection must take place before the shipping deadline ({deadline})",
            "date",
        )


async def book_inspection(
    principal: Principal,
    order_id: int,
    inspector_company_id: int,
    scheduled_on: dt.date,
    method: PaymentMethod,
    *,
    idempotency_key: str,
    source: str | None = None,
) -> Booking:
    """The buyer books an inspection for a date before the shipping deadline and pays
    the inspector's fee, which escrow holds until the report (or a refund)."""
    key = idempotency.check_key(idempotency_key)
    scope = idempotency.scope_of(principal)
    request = {
        "order": order_id,
        "inspector": inspector_company_id,
        "date": scheduled_on.isoformat(),
        "method": method.value,
        "source": source,
    }
    async with idempotency.first_claim(), write_transaction():
        locked = await locked_order(principal, order_id)
        order, role = locked.order, locked.role
        previous = await idempotency.replay(scope, key, "bookInspection", request)
        if previous is not None:
            return await _booking(previous)
        if role is not Role.BUYER:
            raise DomainError(
                ErrorCode.NOT_ORDER_BUYER, "only the order's buyer books an inspection", "orderId"
            )
        require_scope(principal, Scope.PAYMENTS)
        check_status(order, PRE_SHIPMENT, "book an inspection for")
        fee = await inspector_fee(inspector_company_id, order.currency)
        _check_date(order, scheduled_on)
        country = locked.buyer_country
        payments.check_method(method, country)
        now = clock.now()
        inspection = Inspection(
            order=order.id,
            inspector=inspector_company_id,
            booked_by=principal.user_id,
            status=InspectionStatus.AWAITING_FEE.value,
            scheduled_on=scheduled_on,
            currency=order.currency,
            fee_minor=fee,
            created_at=now,
        )
        await inspection.save()
        payment = Payment(
            order=order.id,
            inspection=inspection.id,
            method=method.value,
            status=PaymentStatus.PENDING.value,
            currency=order.currency,
            amount_minor=fee,
            fee_minor=payments.fee_minor(method, fee),
            created_at=now,
        )
        await payment.save()
        stored = {"inspection": inspection.id, "payment": payment.id}
        await idempotency.remember(scope, key, "bookInspection", request, stored)
        await events.record(
            order.id, "INSPECTION_BOOKED", old_status=order.status, new_status=order.status,
            actor=events.Actor.of(principal), at=now,
            reason=f"inspection {inspection.id} on {scheduled_on}, fee "
            f"{Money(fee, order.currency)} by {method.value}",
        )  # fmt: skip
    await payments.charge(payment, source=source, buyer_country=country)
    return await _booking(stored)


async def record_fee_outcome(order: Order, payment: Payment, *, at: dt.datetime) -> None:
    """The fee payment of a booking settled or failed (called by
    `payments.record_charge_outcome`, inside its transaction, with the order locked)."""
    found = await for_update(Inspection.objects().where(Inspection.id == payment.inspection))
    inspection: Inspection = found[0]
    if inspection.status != InspectionStatus.AWAITING_FEE.value:
        return
    fee = Money(payment.amount_minor, order.currency)
    if payment.status == PaymentStatus.SUCCEEDED.value:
        await ledger.post_fee_payment(
            order.id, inspection.id, PaymentMethod(payment.method), order.currency,
            payment.amount_minor, payment.fee_minor, at,
        )  # fmt: skip
        inspection.status = InspectionStatus.REQUESTED.value
        kind, why = "INSPECTION_FEE_PAID", f"inspection {inspection.id}: fee {fee} in escrow"
    else:
        inspection.status = InspectionStatus.CANCELLED.value
        kind = "INSPECTION_FEE_FAILED"
        why = f"inspection {inspection.id}: fee payment failed ({payment.failure_reason})"
    await inspection.save([Inspection.status])
    await events.record(
        order.id, kind, old_status=order.status, new_status=order.status,
        actor=events.PAYMENT_PROVIDER, at=at, reason=why,
    )  # fmt: skip


async def _lock_inspection(inspection_id: int) -> tuple[Inspection, Order]:
    """The inspection and its order, both locked (the order first)."""
    row = await Inspection.select(Inspection.order).where(Inspection.id == inspection_id).first()
    if row is None:
        raise DomainError(ErrorCode.NOT_FOUND, "no such inspection", "inspectionId")
    order, _ = await lock_order(None, int(row["order"]))
    found = await for_update(Inspection.objects().where(Inspection.id == inspection_id))
    inspection: Inspection = found[0]
    return inspection, order


async def _may_see(principal: Principal, inspection: Inspection, order: Order) -> bool:
    """The order's parties, the booked inspector and mediators see an inspection."""
    if principal.role is Role.MEDIATOR:
        return True
    if principal.company_id in (inspection.inspector, order.buyer):
        return True
    return principal.company_id == await supplier_company(order.supplier)


async def _require_booked_inspector(
    principal: Principal, inspection: Inspection, order: Order, action: str
) -> None:
    if principal.acting_role is Role.INSPECTOR and principal.company_id == inspection.inspector:
        require_scope(principal, Scope.ORDERS)
        return
    if principal.acting_role is not Role.INSPECTOR and not await _may_see(
        principal, inspection, order
    ):
        raise DomainError(ErrorCode.NOT_FOUND, "no such inspection", "inspectionId")
    raise DomainError(
        ErrorCode.NOT_BOOKED_INSPECTOR,
        f"only the inspector booked for this inspection may {action}",
        "inspectionId",
    )


def _require_requested(inspection: Inspection, action: str) -> None:
    if inspection.status == InspectionStatus.REQUESTED.value:
        return
    why = (
        "its fee has not arrived yet"
        if inspection.status == InspectionStatus.AWAITING_FEE.value
        else f"it is {inspection.status.lower()}"
    )
    raise DomainError(
        ErrorCode.INVALID_TRANSITION, f"cannot {action} this inspection: {why}", "inspectionId"
    )


async def accept_inspection(principal: Principal, inspection_id: int) -> Inspection:
    """The booked inspector takes the job (once the fee is held)."""
    async with write_transaction():
        inspection, order = await _lock_inspection(inspection_id)
        await _require_booked_inspector(principal, inspection, order, "accept it")
        _require_requested(inspection, "accept")
        now = clock.now()
        inspection.status = InspectionStatus.ACCEPTED.value
        inspection.decided_at = now
        await inspection.save([Inspection.status, Inspection.decided_at])
        await events.record(
            order.id, "INSPECTION_ACCEPTED", old_status=order.status, new_status=order.status,
            actor=events.Actor.of(principal), at=now,
            reason=f"inspection {inspection.id} on {inspection.scheduled_on}",
        )  # fmt: skip
    return inspection


async def decline_inspection(principal: Principal, inspection_id: int, reason: str) -> Inspection:
    """The booked inspector declines; the fee goes back to the buyer."""
    reason = reason.strip()
    if not reason:
        raise DomainError(ErrorCode.REASON_REQUIRED, "say why the booking is declined", "reason")
    async with write_transaction():
        inspection, order = await _lock_inspection(inspection_id)
        await _require_booked_inspector(principal, inspection, order, "decline it")
        _require_requested(inspection, "decline")
        now = clock.now()
        actor = events.Actor.of(principal)
        inspection.status = InspectionStatus.DECLINED.value
        inspection.decided_at = now
        inspection.decline_reason = reason
        await inspection.save([Inspection.status, Inspection.decided_at, Inspection.decline_reason])
        await events.record(
            order.id, "INSPECTION_DECLINED", old_status=order.status, new_status=order.status,
            actor=actor, at=now, reason=f"inspection {inspection.id}: {reason}",
        )  # fmt: skip
        refunds = await refund_inspection_fee(
            inspection.id, actor=actor, reason="the inspector declined the booking"
        )
    await payments.execute_refunds(refunds)
    return inspection


async def submit_report(
    principal: Principal,
    inspection_id: int,
    result: InspectionResult,
    findings: str,
    files: Sequence[AttachmentUpload] = (),
) -> Inspection:
    """The booked inspector reports, once, after accepting. PASSED: the supplier is not
    at fault and the fee is paid out to the inspector. FAILED: the supplier is at fault,
    the fee goes back to the buyer, and the buyer may claim the goods money back."""
    findings = findings.strip()
    if not findings or len(findings) > MAX_FINDINGS:
        raise DomainError(
            ErrorCode.INVALID_INPUT, f"findings have 1 to {MAX_FINDINGS} characters", "findings"
        )
    checked = check_attachments(files)
    refunds: list[Refund] = []
    async with write_transaction():
        inspection, order = await _lock_inspection(inspection_id)
        await _require_booked_inspector(principal, inspection, order, "report on it")
        if inspection.result is not None:
            raise DomainError(
                ErrorCode.REPORT_ALREADY_SUBMITTED,
                "this inspection already has its report",
                "inspectionId",
            )
        if inspection.status != InspectionStatus.ACCEPTED.value:
            raise DomainError(
                ErrorCode.INSPECTION_NOT_ACCEPTED,
                f"a report follows an accepted booking; this one is {inspection.status.lower()}",
                "inspectionId",
            )
        now = clock.now()
        actor = events.Actor.of(principal)
        await save_files(InspectionAttachment, {"inspection": inspection.id}, checked, now)
        inspection.status = InspectionStatus(result.value).value
        inspection.result = result.value
        inspection.findings = findings
        inspection.reported_at = now
        await inspection.save(
            [Inspection.status, Inspection.result, Inspection.findings, Inspection.reported_at]
        )
        await events.record(
            order.id, f"INSPECTION_{result.value}", old_status=order.status,
            new_status=order.status, actor=actor, at=now,
            reason=f"inspection {inspection.id}: {len(checked)} file(s)",
        )  # fmt: skip
        held = await ledger.fee_held(inspection.id)
        if result is InspectionResult.PASSED and held > 0:
            await ledger.post_fee_payout(
                order.id, inspection.id, inspection.inspector, order.currency, held, now
            )
            await events.record(
                order.id, "INSPECTION_FEE_PAID_OUT", old_status=order.status,
                new_status=order.status, actor=actor, at=now,
                reason=f"{Money(held, order.currency)} to the inspector",
            )  # fmt: skip
        elif result is InspectionResult.FAILED and held > 0:
            refunds = await refund_inspection_fee(
                inspection.id, actor=actor, reason="failed inspection: the supplier is at fault"
            )
    await payments.execute_refunds(refunds)
    return inspection


async def refund_inspection_fee(
    inspection_id: int, *, actor: events.Actor, reason: str, dispute_id: int | None = None
) -> list[Refund]:
    """Commit everything still held of an inspection's fee back to the buyer (a failed
    inspection, a declined booking, and later a dispute decided against the supplier).
    Runs in the caller's transaction if there is one; the caller then has the provider
    pay it out with `payments.execute_refunds` after commit."""
    async with write_transaction():
        row = (
            await Inspection.select(Inspection.order).where(Inspection.id == inspection_id).first()
        )
        if row is None:
            raise DomainError(ErrorCode.NOT_FOUND, "no such inspection", "inspectionId")
        order, _ = await lock_order(None, int(row["order"]))
        held = await ledger.fee_held(inspection_id)
        if held <= 0:
            raise DomainError(
                ErrorCode.INSUFFICIENT_HELD_FUNDS,
                "escrow holds nothing of this inspection's fee",
                "inspectionId",
            )
        return await payments.start_refund(
            order.id, held, actor=actor, reason=reason, inspection_id=inspection_id,
            dispute_id=dispute_id,
        )  # fmt: skip


@dataclasses.dataclass(frozen=True, slots=True)
class Claim:
    order: Order
    refunded: Money
    refund_ids: list[int]


async def claim_refund(principal: Principal, order_id: int, *, idempotency_key: str) -> Claim:
    """After a FAILED inspection and before shipment, the buyer takes back all the goods
    money escrow holds for the order. The order ends REFUNDED, which is not an open
    status, so its share of the supplier's Trade Assurance limit is given back."""
    key = idempotency.check_key(idempotency_key)
    scope = idempotency.scope_of(principal)
    request = {"order": order_id}
    async with idempotency.first_claim(), write_transaction():
        order, role = await lock_order(principal, order_id)
        previous = await idempotency.replay(scope, key, "claimInspectionRefund", request)
        if previous is not None:
            # Stored before refunds were split: one "refund".
            ids = previous.get("refunds") or [previous["refund"]]
            return Claim(order, Money(previous["amount"], order.currency), ids)
        if role is not Role.BUYER:
            raise DomainError(
                ErrorCode.NOT_ORDER_BUYER, "only the order's buyer claims a refund", "orderId"
            )
        require_scope(principal, Scope.PAYMENTS)
        if not await Inspection.exists().where(
            (Inspection.order == order.id) & (Inspection.status == InspectionStatus.FAILED.value)
        ):
            raise DomainError(
                ErrorCode.NO_FAILED_INSPECTION,
                "a refund before shipment needs a failed inspection report",
                "orderId",
            )
        if order.status not in _NOT_SHIPPED:
            raise DomainError(
                ErrorCode.ALREADY_SHIPPED,
                "the goods have shipped; open a dispute instead",
                "orderId",
            )
        check_status(order, PRE_SHIPMENT, "claim a refund for")
        await refuse_while_disputed(order.id)
        await refuse_while_payment_pending(order.id)
        held = await ledger.held(order.id)
        if held <= 0:
            raise DomainError(
                ErrorCode.INSUFFICIENT_HELD_FUNDS, "escrow holds nothing for this order", "orderId"
            )
        actor = events.Actor.of(principal)
        refunds = await payments.start_refund(
            order.id, held, actor=actor, reason="failed inspection, claimed before shipment"
        )
        await move_to(
            order, OrderStatus.REFUNDED, "INSPECTION_REFUND_CLAIMED",
            actor=actor, at=clock.now(), reason=f"{Money(held, order.currency)} back to the buyer",
        )  # fmt: skip
        await idempotency.remember(
            scope,
            key,
            "claimInspectionRefund",
            request,
            {"amount": held, "refunds": [r.id for r in refunds]},
        )
    await payments.execute_refunds(refunds)
    return Claim(order, Money(held, order.currency), [r.id for r in refunds])


# --- reads -----------------------------------------------------------------------------


def inspection_visibility(principal: Principal) -> Any:
    """A Piccolo condition selecting the inspections this caller may see."""
    if principal.role is Role.MEDIATOR:
        return None
    if principal.acting_role is Role.INSPECTOR:
        return Inspection.inspector == principal.company_id
    return Inspection.order.is_in(visible_orders(principal))


async def get_inspections(principal: Principal, ids: Sequence[int]) -> dict[int, Inspection]:
    if not ids:
        return {}
    query = Inspection.objects().where(Inspection.id.is_in(list(ids)))
    condition = inspection_visibility(principal)
    if condition is not None:
        query = query.where(condition)
    return {i.id: i for i in await query}


async def list_inspections(
    principal: Principal,
    *,
    statuses: Sequence[InspectionStatus] = (),
    first: int,
    after_id: int | None,
) -> tuple[list[Inspection], bool]:
    """The caller's inspections (an inspector's bookings), newest first, by id."""
    query = Inspection.objects()
    condition = inspection_visibility(principal)
    if condition is not None:
        query = query.where(condition)
    if statuses:
        query = query.where(Inspection.status.is_in([s.value for s in statuses]))
    if after_id is not None:
        query = query.where(Inspection.id < after_id)
    rows = await query.order_by(Inspection.id, ascending=False).limit(first + 1)
    return rows[:first], len(rows) > first


async def inspections_of(order_ids: Sequence[int]) -> dict[int, list[Inspection]]:
    """The inspections of orders the caller may already see, oldest first."""
    out: dict[int, list[Inspection]] = {i: [] for i in order_ids}
    if order_ids:
        rows = (
            await Inspection.objects()
            .where(Inspection.order.is_in(list(order_ids)))
            .order_by(Inspection.id)
        )
        for row in rows:
            out[row.order].append(row)
    return out


async def attachments_of(inspection_ids: Sequence[int]) -> dict[int, list[InspectionAttachment]]:
    out: dict[int, list[InspectionAttachment]] = {i: [] for i in inspection_ids}
    if inspection_ids:
        rows = (
            await InspectionAttachment.objects()
            .where(InspectionAttachment.inspection.is_in(list(inspection_ids)))
            .order_by(InspectionAttachment.id)
        )
        for row in rows:
            out[row.inspection].append(row)
    return out


async def fee_payments_of(inspection_ids: Sequence[int]) -> dict[int, list[Payment]]:
    out: dict[int, list[Payment]] = {i: [] for i in inspection_ids}
    if inspection_ids:
        rows = (
            await Payment.objects()
            .where(Payment.inspection.is_in(list(inspection_ids)))
            .order_by(Payment.id)
        )
        for row in rows:
            assert row.inspection is not None
            out[row.inspection].append(row)
    return out


@dataclasses.dataclass(frozen=True, slots=True)
class Inspector:
    company: Company
    fee: Money


async def list_inspectors() -> list[Inspector]:
    """Every inspection company a buyer can book, with its fee, by name."""
    profiles = {
        int(p["company"]): p
        for p in await InspectorProfile.select(
            InspectorProfile.company, InspectorProfile.fee_minor, InspectorProfile.fee_currency
        )
    }
    companies = (
        await Company.objects()
        .where(Company.kind == CompanyKind.INSPECTOR.value)
        .order_by(Company.legal_name)
    )
    return [
        Inspector(c, Money(int(profiles[c.id]["fee_minor"]), str(profiles[c.id]["fee_currency"])))
        for c in companies
        if c.id in profiles
    ]


async def open_attachment(
    principal: Principal, attachment_id: int
) -> tuple[InspectionAttachment, bytes]:
    """An attachment's bytes for someone who may see its inspection, after checking them
    against the SHA-256 recorded at upload: a file changed or lost on disk is refused
    (ATTACHMENT_CORRUPTED), never served."""
    attachment = await InspectionAttachment.objects().get(InspectionAttachment.id == attachment_id)
    if attachment is None:
        raise DomainError(ErrorCode.NOT_FOUND, "no such attachment", "attachmentId")
    inspection = await Inspection.objects().get(Inspection.id == attachment.inspection)
    assert inspection is not None
    order = await Order.objects().get(Order.id == inspection.order)
    assert order is not None
    if not await _may_see(principal, inspection, order):
        raise DomainError(ErrorCode.NOT_FOUND, "no such attachment", "attachmentId")
    return attachment, await read_verified(attachment.sha256)


async def store_file(f: CheckedFile) -> None:
    """Store a checked file (content-addressed: a file left behind by a rolled-back
    transaction is harmless). Shared with complaint evidence."""
    await asyncio.to_thread(_store_sync, f.data, f.sha256)


async def save_files(
    table: type[Table], owner: dict[str, int], checked: Sequence[CheckedFile], now: dt.datetime
) -> None:
    """Store checked files and record each as a row of `table` (an attachment table:
    filename, content type, size, checksum) belonging to `owner` (its column and id)."""
    for f in checked:
        await store_file(f)
    if checked:
        await sql.insert_many(table, [
            {**owner, "filename": f.filename, "content_type": f.content_type,
             "size_bytes": len(f.data), "sha256": f.sha256, "created_at": now}
            for f in checked
        ])  # fmt: skip


async def read_verified(sha256: str) -> bytes:
    """A stored file's bytes, checked against the SHA-256 recorded at upload: a file
    changed or lost on disk is refused (ATTACHMENT_CORRUPTED), never served."""
    data = await asyncio.to_thread(_read_sync, sha256)
    if data is None or not hmac.compare_digest(hashlib.sha256(data).hexdigest(), sha256):
        raise DomainError(
            ErrorCode.ATTACHMENT_CORRUPTED,
            "the stored file no longer matches its checksum; it is not served",
            "attachmentId",
        )
    return data
