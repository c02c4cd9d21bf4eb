"""Inspections without HTTP: booking and its fee, the inspector's answer, reports with
files, where the fee goes, and the buyer's refund claim after a failed inspection. Every
refusal changes nothing; every test ends with a clean `ledger.check()`."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from models import (
    clock,
    config,
    disputes,
    events,
    inspections,
    ledger,
    lifecycle,
    orders,
    payments,
    provider,
    sweep,
)
from models.enums import (
    DisputeReason,
    InspectionResult,
    InspectionStatus,
    OrderStatus,
    PaymentMethod,
)
from models.errors import DomainError, ErrorCode
from models.inspections import AttachmentUpload
from models.money import Money
from models.tables import (
    IdempotencyRecord,
    Inspection,
    InspectionAttachment,
    LedgerPosting,
    Order,
    OrderEvent,
    Payment,
    Refund,
    SupplierProfile,
)
from server.payments.sandbox import CARD_DECLINED, CARD_SUCCEEDS, SandboxProvider
from tests.factories import Actor, buyer, confirmed_order, contract, inspector, supplier

USD = "USD"
PDF = b"%PDF-1.7\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 32


@pytest.fixture(autouse=True)
async def sandbox(request: pytest.FixtureRequest) -> AsyncIterator[SandboxProvider]:
    sbx = SandboxProvider()
    provider.set_provider(sbx)
    yield sbx
    if request.node.get_closest_marker("breaks_the_books") is None:
        assert await ledger.check() == []


def upload(data: bytes, name: str = "report.pdf", sha: str | None = None) -> AttachmentUpload:
    return AttachmentUpload(name, data, sha or hashlib.sha256(data).hexdigest())


def tomorrow() -> dt.date:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).date()


async def _status(order_id: int) -> str:
    row = await Order.select(Order.status).where(Order.id == order_id).first()
    assert row is not None
    return str(row["status"])


async def snapshot() -> tuple[object, ...]:
    """Everything a refused request must leave as it was."""
    statuses = [
        (r["id"], r["status"])
        for r in await Inspection.select(Inspection.id, Inspection.status).order_by(Inspection.id)
    ]
    order_statuses = [
        (r["id"], r["status"])
        for r in await Order.select(Order.id, Order.status).order_by(Order.id)
    ]
    return (
        statuses,
        order_statuses,
        await InspectionAttachment.count(),
        await Payment.count(),
        await Refund.count(),
        await LedgerPosting.count(),
        await OrderEvent.count(),
        await IdempotencyRecord.count(),
        await asyncio.to_thread(_stored_files),
    )


def _stored_files() -> list[str]:
    return sorted(p.name for p in Path(config.current().attachment_dir).rglob("*") if p.is_file())


async def refused(code: ErrorCode, call: object) -> DomainError:
    before = await snapshot()
    with pytest.raises(DomainError) as e:
        await call  # type: ignore[misc]
    assert e.value.code is code, e.value.message
    assert await snapshot() == before
    return e.value


async def paid_order(deposit_only: bool = True) -> tuple[Actor, Actor, Order]:
    b, s, order = await confirmed_order()
    result = await payments.pay_order(
        b.principal, order.id, Money(1_500_00 if deposit_only else 3_000_00, USD),
        PaymentMethod.CARD, idempotency_key="goods", source=CARD_SUCCEEDS,
    )  # fmt: skip
    assert result.error is None
    return b, s, order


async def book(
    b: Actor,
    order: Order,
    insp: Actor,
    *,
    on: dt.date | None = None,
    key: str = "book-1",
    method: PaymentMethod = PaymentMethod.CARD,
    source: str | None = CARD_SUCCEEDS,
) -> inspections.Booking:
    return await inspections.book_inspection(
        b.principal, order.id, insp.principal.company_id, on or tomorrow(), method,
        idempotency_key=key, source=source,
    )  # fmt: skip


async def accepted(
    insp: Actor | None = None,
) -> tuple[Actor, Actor, Actor, Order, Inspection]:
    b, s, order = await paid_order()
    insp = insp or await inspector()
    booking = await book(b, order, insp)
    inspection = await inspections.accept_inspection(insp.principal, booking.inspection.id)
    return b, s, insp, order, inspection


# --- booking --------------------------------------------------------------------------


async def test_booking_holds_the_fee_in_its_own_account() -> None:
    b, _, order = await paid_order()
    insp = await inspector()
    booking = await book(b, order, insp)
    assert booking.error is None
    assert booking.inspection.status == InspectionStatus.REQUESTED
    assert (booking.payment.amount_minor, booking.payment.fee_minor) == (300_00, 8_40)
    assert booking.payment.status == "SUCCEEDED"
    assert await ledger.fee_held(booking.inspection.id) == 300_00
    # The order's goods money is untouched by the fee, and releasing it leaves the fee.
    money = (await ledger.order_money([order.id]))[order.id]
    assert (money.paid, money.held, money.fees) == (1_500_00, 1_500_00, 42_00)
    release = await payments.release_funds(b.principal, order.id, None, idempotency_key="rel")
    assert release.amount == Money(1_500_00, USD)
    assert await ledger.fee_held(booking.inspection.id) == 300_00
    kinds = [e.kind for e in (await orders.events_of([order.id]))[order.id]]
    assert "INSPECTION_BOOKED" in kinds and "INSPECTION_FEE_PAID" in kinds
    # The goods payments do not include the fee payment.
    assert [p.amount_minor for p in (await payments.payments_of([order.id]))[order.id]] == [
        1_500_00
    ]


async def test_booking_before_any_payment_and_in_another_currency() -> None:
    b, _, order = await confirmed_order(terms=contract(currency="EUR"))
    insp = await inspector()
    booking = await book(b, order, insp)
    # 300.00 USD at 1.08 USD per EUR, rounded down
    assert (booking.payment.currency, booking.payment.amount_minor) == ("EUR", 277_77)
    assert await _status(order.id) == OrderStatus.AWAITING_INITIAL_PAYMENT


async def test_bank_transfer_fee_waits_for_the_callback() -> None:
    b, _, order = await paid_order()
    insp = await inspector()
    booking = await book(b, order, insp, method=PaymentMethod.TT, source=None)
    assert booking.inspection.status == InspectionStatus.AWAITING_FEE
    with pytest.raises(DomainError) as e:  # the inspector cannot accept before the fee
        await inspections.accept_inspection(insp.principal, booking.inspection.id)
    assert e.value.code is ErrorCode.INVALID_TRANSITION
    ref = payments.payment_reference(booking.payment.id)
    assert await payments.handle_provider_event("evt_f1", "payment.succeeded", ref, "sbx", None)
    found = await Inspection.objects().get(Inspection.id == booking.inspection.id)
    assert found is not None and found.status == InspectionStatus.REQUESTED
    assert await ledger.fee_held(booking.inspection.id) == 300_00
    # A goods payment is not blocked by the pending fee and vice versa.
    assert await _status(order.id) == OrderStatus.AWAITING_BALANCE


async def test_declined_fee_payment_cancels_the_booking() -> None:
    b, _, order = await paid_order()
    booking = await book(b, order, await inspector(), source=CARD_DECLINED)
    assert booking.error is not None and booking.error.code is ErrorCode.PAYMENT_DECLINED
    assert booking.inspection.status == InspectionStatus.CANCELLED
    assert await ledger.fee_held(booking.inspection.id) == 0


async def test_booking_refusals_change_nothing() -> None:
    b, s, order = await paid_order()
    insp = await inspector()
    deadline = order.shipping_deadline.date()
    yesterday = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).date()
    await refused(ErrorCode.INSPECTION_DATE_IN_PAST, book(b, order, insp, on=yesterday))
    await refused(ErrorCode.INSPECTION_DATE_NOT_BEFORE_DEADLINE, book(b, order, insp, on=deadline))
    later = deadline + dt.timedelta(days=3)
    await refused(ErrorCode.INSPECTION_DATE_NOT_BEFORE_DEADLINE, book(b, order, insp, on=later))
    await refused(ErrorCode.NOT_ORDER_BUYER, book(s, order, insp))
    await refused(ErrorCode.NOT_FOUND, book(await buyer(), order, insp))
    not_an_inspector = Actor(s.principal, s.token, s.email)  # a supplier company
    await refused(ErrorCode.NOT_AN_INSPECTOR, book(b, order, not_an_inspector))
    await refused(ErrorCode.NOT_AN_INSPECTOR, book(b, order, b))
    # a cancelled order cannot be inspected
    b2, _, fresh = await confirmed_order()
    await orders.cancel_order(b2.principal, fresh.id, "no")
    await refused(ErrorCode.INVALID_TRANSITION, book(b2, fresh, insp))


async def test_booking_is_idempotent() -> None:
    b, _, order = await paid_order()
    insp = await inspector()
    first = await book(b, order, insp, key="k")
    before = await snapshot()
    again = await book(b, order, insp, key="k")
    assert (again.inspection.id, again.payment.id) == (first.inspection.id, first.payment.id)
    assert await snapshot() == before
    other_day = tomorrow() + dt.timedelta(days=1)
    await refused(ErrorCode.IDEMPOTENCY_KEY_REUSED, book(b, order, insp, key="k", on=other_day))


# --- the inspector's answer and the report --------------------------------------------


async def test_passed_report_pays_the_fee_to_the_inspector() -> None:
    b, _, insp, order, inspection = await accepted()
    assert inspection.status == InspectionStatus.ACCEPTED
    done = await inspections.submit_report(
        insp.principal, inspection.id, InspectionResult.PASSED, "All 2 panels conform.",
        [upload(PDF), upload(PNG, "photo.png")],
    )  # fmt: skip
    assert (done.status, done.result) == (InspectionStatus.PASSED, "PASSED")
    assert await ledger.fee_held(inspection.id) == 0
    payable = ledger.inspector_payable(insp.principal.company_id)
    rows = await LedgerPosting.select(LedgerPosting.amount_minor).where(
        LedgerPosting.account == payable
    )
    assert sum(r["amount_minor"] for r in rows) == -300_00
    files = await InspectionAttachment.objects().where(
        InspectionAttachment.inspection == inspection.id
    )
    assert sorted((f.content_type, f.size_bytes) for f in files) == [
        ("application/pdf", len(PDF)),
        ("image/png", len(PNG)),
    ]
    # No refund of goods money after a passed inspection.
    await refused(
        ErrorCode.NO_FAILED_INSPECTION,
        inspections.claim_refund(b.principal, order.id, idempotency_key="claim"),
    )
    # The fee is gone to the inspector: nothing to refund.
    with pytest.raises(DomainError) as e:
        await inspections.refund_inspection_fee(
            inspection.id, actor=events.Actor.of(b.principal), reason="test"
        )
    assert e.value.code is ErrorCode.INSUFFICIENT_HELD_FUNDS


async def test_report_refusals_change_nothing() -> None:
    b, _, order = await paid_order()
    insp = await inspector()
    other_inspector = await inspector()
    booking = await book(b, order, insp)
    iid = booking.inspection.id

    def report(who: Actor, files: list[AttachmentUpload] | None = None) -> object:
        return inspections.submit_report(
            who.principal, iid, InspectionResult.FAILED, "cracked housings", files or []
        )

    await refused(ErrorCode.INSPECTION_NOT_ACCEPTED, report(insp))
    await refused(ErrorCode.NOT_BOOKED_INSPECTOR, report(other_inspector))
    await refused(
        ErrorCode.NOT_BOOKED_INSPECTOR,
        inspections.accept_inspection(other_inspector.principal, iid),
    )
    await refused(ErrorCode.NOT_BOOKED_INSPECTOR, report(b))  # a party, not the inspector
    await refused(ErrorCode.NOT_FOUND, report(await buyer()))  # a stranger
    await inspections.accept_inspection(insp.principal, iid)
    config.configure(config.DomainConfig(attachment_max_bytes=100))
    await refused(ErrorCode.FILE_TOO_LARGE, report(insp, [upload(PDF + b"x" * 100)]))
    await refused(ErrorCode.FILE_TYPE_NOT_ALLOWED, report(insp, [upload(b"GIF89a....")]))
    await refused(ErrorCode.FILE_TYPE_NOT_ALLOWED, report(insp, [upload(b"", "empty.pdf")]))
    tampered = upload(PDF, sha=hashlib.sha256(PDF + b"!").hexdigest())
    await refused(ErrorCode.FILE_CHECKSUM_MISMATCH, report(insp, [upload(JPEG), tampered]))
    await refused(ErrorCode.INVALID_INPUT, report(insp, [upload(PDF, sha="abc")]))
    await inspections.submit_report(insp.principal, iid, InspectionResult.PASSED, "fine", [])
    await refused(ErrorCode.REPORT_ALREADY_SUBMITTED, report(insp))


async def test_declined_booking_refunds_the_fee() -> None:
    b, _, order = await paid_order()
    insp = await inspector()
    booking = await book(b, order, insp)
    await refused(
        ErrorCode.REASON_REQUIRED,
        inspections.decline_inspection(insp.principal, booking.inspection.id, " "),
    )
    done = await inspections.decline_inspection(insp.principal, booking.inspection.id, "booked")
    assert done.status == InspectionStatus.DECLINED
    refund = await Refund.objects().get(Refund.inspection == booking.inspection.id)
    assert refund is not None and refund.status == "SETTLED" and refund.amount_minor == 300_00
    assert refund.payment == booking.payment.id  # back the way it came
    assert await ledger.fee_held(booking.inspection.id) == 0
    money = (await ledger.order_money([order.id]))[order.id]
    assert (money.held, money.refunded) == (1_500_00, 0)  # the goods money stays


# --- attachments ----------------------------------------------------------------------


async def test_attachments_are_served_to_those_who_see_the_inspection() -> None:
    b, s, insp, _, inspection = await accepted()
    await inspections.submit_report(
        insp.principal, inspection.id, InspectionResult.PASSED, "ok", [upload(PDF)]
    )
    attachment = await InspectionAttachment.objects().get(
        InspectionAttachment.inspection == inspection.id
    )
    assert attachment is not None
    assert attachment.sha256 == hashlib.sha256(PDF).hexdigest()
    for who in (b, s, insp):
        _, data = await inspections.open_attachment(who.principal, attachment.id)
        assert data == PDF
    for stranger in (await buyer(), await inspector(), await supplier()):
        with pytest.raises(DomainError) as e:
            await inspections.open_attachment(stranger.principal, attachment.id)
        assert e.value.code is ErrorCode.NOT_FOUND
    # Changed on disk: refused, never served.
    path = inspections.attachment_path(attachment.sha256)
    path.write_bytes(PDF + b"% tampered\n")
    with pytest.raises(DomainError) as e:
        await inspections.open_attachment(b.principal, attachment.id)
    assert e.value.code is ErrorCode.ATTACHMENT_CORRUPTED
    path.unlink()
    with pytest.raises(DomainError) as e:
        await inspections.open_attachment(b.principal, attachment.id)
    assert e.value.code is ErrorCode.ATTACHMENT_CORRUPTED


# --- failed inspection: the fee back, and the buyer's claim ---------------------------


async def test_failed_inspection_refunds_the_fee_and_lets_the_buyer_claim() -> None:
    b, s, insp, order, inspection = await accepted()
    profile = await SupplierProfile.objects().get(SupplierProfile.id == order.supplier)
    assert profile is not None
    before_limit = await orders.remaining_limit_minor(profile)
    await refused(
        ErrorCode.NO_FAILED_INSPECTION,
        inspections.claim_refund(b.principal, order.id, idempotency_key="claim"),
    )
    await inspections.submit_report(
        insp.principal, inspection.id, InspectionResult.FAILED, "flux 2900 lm < 3600 lm",
        [upload(JPEG, "panel.jpg")],
    )  # fmt: skip
    fee_refund = await Refund.objects().get(Refund.inspection == inspection.id)
    assert fee_refund is not None and fee_refund.status == "SETTLED"
    assert await ledger.fee_held(inspection.id) == 0
    await refused(
        ErrorCode.NOT_ORDER_BUYER,
        inspections.claim_refund(s.principal, order.id, idempotency_key="claim"),
    )
    await refused(
        ErrorCode.NOT_FOUND,
        inspections.claim_refund((await buyer()).principal, order.id, idempotency_key="claim"),
    )
    claim = await inspections.claim_refund(b.principal, order.id, idempotency_key="claim")
    assert claim.refunded == Money(1_500_00, USD)
    assert await _status(order.id) == OrderStatus.REFUNDED
    money = (await ledger.order_money([order.id]))[order.id]
    assert (money.paid, money.held, money.refunded) == (1_500_00, 0, 1_500_00)
    # The coverage reservation is given back: REFUNDED is not an open status.
    assert await orders.remaining_limit_minor(profile) == before_limit + 3_000_00
    # A retry replays; a second claim with another key finds nothing to claim.
    before = await snapshot()
    again = await inspections.claim_refund(b.principal, order.id, idempotency_key="claim")
    assert (again.refunded, again.refund_ids) == (claim.refunded, claim.refund_ids)
    assert await snapshot() == before
    await refused(
        ErrorCode.INVALID_TRANSITION,
        inspections.claim_refund(b.principal, order.id, idempotency_key="claim-2"),
    )
    kinds = [e.kind for e in (await orders.events_of([order.id]))[order.id]]
    assert kinds[-3:] == ["REFUND_STARTED", "INSPECTION_REFUND_CLAIMED", "REFUND_SETTLED"]


async def test_no_claim_while_a_dispute_is_open() -> None:
    """A failed inspection is grounds for a dispute; while one is open the dispute's
    outcome decides the money, so the pre-shipment refund claim is refused (it emptied
    escrow and ended the order under the open dispute; see tests/test_escrow_model.py)."""
    b, _, insp, order, inspection = await accepted()
    await inspections.submit_report(
        insp.principal, inspection.id, InspectionResult.FAILED, "short by 1", []
    )
    await disputes.open_dispute(
        b.principal, order.id, reason=DisputeReason.QUALITY_NOT_AS_AGREED,
        requested=Money(1_000_00, USD), description="failed inspection",
        idempotency_key="dispute",
    )  # fmt: skip
    await refused(
        ErrorCode.DISPUTE_ALREADY_OPEN,
        inspections.claim_refund(b.principal, order.id, idempotency_key="claim"),
    )


async def test_no_claim_after_shipment_or_without_held_money() -> None:
    b, _, insp, order, inspection = await accepted()
    await inspections.submit_report(
        insp.principal, inspection.id, InspectionResult.FAILED, "short by 1", []
    )
    # Shipment is another issue's transition; any status past PAID counts as shipped.
    await Order.update({Order.status: "SHIPPED"}).where(Order.id == order.id)
    await refused(
        ErrorCode.ALREADY_SHIPPED,
        inspections.claim_refund(b.principal, order.id, idempotency_key="c"),
    )
    await Order.update({Order.status: OrderStatus.AWAITING_BALANCE.value}).where(
        Order.id == order.id
    )
    await payments.release_funds(b.principal, order.id, None, idempotency_key="all")
    await refused(
        ErrorCode.INSUFFICIENT_HELD_FUNDS,
        inspections.claim_refund(b.principal, order.id, idempotency_key="c"),
    )


async def test_a_fee_refund_names_an_inspection_of_that_order() -> None:
    b, _, order = await paid_order()
    booking = await book(b, order, await inspector())
    _, _, other = await confirmed_order()
    await refused(
        ErrorCode.NOT_FOUND,
        payments.start_refund(
            other.id, 1_00, actor=events.SCHEDULER, reason="x",
            inspection_id=booking.inspection.id,
        ),
    )  # fmt: skip


async def test_a_failed_fee_refund_is_retried(frozen_clock: clock.FrozenClock) -> None:
    b, _, order = await paid_order()
    insp = await inspector()
    booking = await book(b, order, insp)
    provider.set_provider(SandboxProvider(fail_refunds=True))
    await inspections.decline_inspection(insp.principal, booking.inspection.id, "no slot")
    refund = await Refund.objects().get(Refund.inspection == booking.inspection.id)
    assert refund is not None and refund.status == "FAILED"
    provider.set_provider(SandboxProvider())
    frozen_clock.advance(minutes=5)
    assert [r.status for r in await payments.retry_due_refunds()] == ["SETTLED"]


@pytest.mark.breaks_the_books
async def test_ledger_check_finds_a_misfiled_fee_leg() -> None:
    from models.db import write_transaction

    b, _, order = await paid_order()
    booking = await book(b, order, await inspector())
    _, _, other = await confirmed_order()
    async with write_transaction():
        await ledger.post(
            ledger.PostingKind.FEE_PAYOUT, USD,
            [ledger.Leg(ledger.fee_escrow(booking.inspection.id), 1_00),
             ledger.Leg(ledger.inspector_payable(1), -1_00)],
            order_id=other.id, at=dt.datetime.now(dt.UTC),
        )  # fmt: skip
    problems = await ledger.check()
    assert any("has no such inspection" in p for p in problems), problems
    async with write_transaction():  # paying out more than the fee, under the right order
        await ledger.post(
            ledger.PostingKind.FEE_PAYOUT, USD,
            [ledger.Leg(ledger.fee_escrow(booking.inspection.id), 500_00),
             ledger.Leg(ledger.inspector_payable(1), -500_00)],
            order_id=order.id, at=dt.datetime.now(dt.UTC),
        )  # fmt: skip
    problems = await ledger.check()
    iid = booking.inspection.id
    assert any(f"fee_escrow:inspection:{iid}: debit balance" in p for p in problems), problems
    assert any(f"inspection {iid}: fee paid out" in p for p in problems), problems


async def test_whole_lifecycle_with_a_passed_inspection_driven_by_the_clock(
    frozen_clock: clock.FrozenClock,
) -> None:
    """Pay, inspect (pass), ship, receipt confirmed automatically, the held balance
    released automatically: every step after the report is the scheduler's."""
    b, s, order = await paid_order(deposit_only=False)
    insp = await inspector()
    booking = await book(b, order, insp, on=(clock.now() + dt.timedelta(days=3)).date())
    await inspections.accept_inspection(insp.principal, booking.inspection.id)
    frozen_clock.advance(days=3)
    report = await inspections.submit_report(
        insp.principal, booking.inspection.id, InspectionResult.PASSED, "Conforms.", [upload(PDF)]
    )
    assert report.status == InspectionStatus.PASSED
    frozen_clock.advance(days=1)
    shipment = lifecycle.Shipment(
        carrier="Maersk", tracking_number="MAEU7654321", shipped_at=clock.now(), method=None
    )
    assert (await lifecycle.ship_order(s.principal, order.id, shipment)).status == "SHIPPED"
    frozen_clock.advance(days=45)  # sea freight: receipt is confirmed automatically
    assert (await sweep.run_sweep()).enforced == {OrderStatus.RECEIVED.value: 1}
    frozen_clock.advance(days=30)  # the claim window ends with no dispute
    assert (await sweep.run_sweep()).enforced == {OrderStatus.COMPLETED.value: 1}
    assert await _status(order.id) == OrderStatus.COMPLETED
    money = (await ledger.order_money([order.id]))[order.id]
    assert (money.paid, money.held, money.released, money.refunded) == (
        3_000_00, 0, 3_000_00, 0
    )  # fmt: skip
    assert await ledger.fee_held(booking.inspection.id) == 0  # paid out to the inspector
    assert await ledger.check() == []
