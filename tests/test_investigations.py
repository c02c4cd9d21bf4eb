"""Penalty points, complaints and investigations, without HTTP."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from models import (
    clock,
    config,
    investigations,
    lifecycle,
    orders,
    payments,
    suppliers,
)
from models.enums import (
    ComplaintStatus,
    InvestigationOutcome,
    InvestigationStatus,
    InvestigationTrigger,
    OrderStatus,
    PaymentMethod,
    Role,
    TradeAssuranceStatus,
)
from models.errors import DomainError, ErrorCode
from models.money import Money
from models.suppliers import SupplierFilter, SupplierOrder
from models.tables import (
    Complaint,
    IdempotencyRecord,
    Investigation,
    PenaltyPoint,
    SupplierEvent,
    SupplierProfile,
)
from server.payments.sandbox import CARD_SUCCEEDS
from tests import factories

USD = "USD"


# The sandbox provider for every test, and a sound ledger after each (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("sandbox")


async def state() -> tuple[Any, ...]:
    """Everything these functions may write."""
    return (
        await Complaint.select().order_by(Complaint.id),
        await Investigation.select().order_by(Investigation.id),
        await PenaltyPoint.select().order_by(PenaltyPoint.id),
        await SupplierEvent.select().order_by(SupplierEvent.id),
        await SupplierProfile.select().order_by(SupplierProfile.id),
        await IdempotencyRecord.count(),
    )


async def refused(code: ErrorCode, coro: Any) -> DomainError:
    before = await state()
    with pytest.raises(DomainError) as e:
        await coro
    assert e.value.code is code, e.value.message
    assert await state() == before
    return e.value


async def sid(actor: factories.Actor) -> int:
    assert actor.supplier_id is not None
    return actor.supplier_id


async def entry(supplier_id: int) -> suppliers.Supplier:
    return (await suppliers.get_suppliers([supplier_id]))[supplier_id]


# Penalty points


async def test_four_resolved_disputes_open_an_investigation() -> None:
    s = await factories.supplier(trade_assurance_limit_minor=100_000_00)
    supplier_id = await sid(s)
    points = config.current().penalty_points_resolved
    results = [
        await investigations.add_penalty_points(
            supplier_id, points, reason=f"dispute {n}", dispute_id=n
        )
        for n in range(1, 5)
    ]
    assert [r.total_points for r in results] == [6, 12, 18, 24]
    assert [r.unconsumed_points for r in results] == [6, 12, 18, 0]
    assert [r.investigation_opened for r in results] == [False, False, False, True]
    assert all(r.investigation_id is None for r in results[:3])
    opened = await Investigation.objects().get(Investigation.id == results[3].investigation_id)
    assert opened is not None
    assert opened.status == InvestigationStatus.OPEN.value
    assert opened.opened_by == InvestigationTrigger.PENALTY_POINTS.value
    history = await investigations.penalty_history(supplier_id)
    assert [(p.points, p.dispute_id, p.investigation) for p in history] == [
        (6, n, opened.id) for n in range(1, 5)
    ]
    kinds = [r["kind"] for r in await SupplierEvent.select(SupplierEvent.kind)]
    assert kinds.count("PENALTY_POINTS_ADDED") == 4
    assert kinds.count("INVESTIGATION_OPENED") == 1


async def test_uncooperative_points_open_at_once_and_later_points_join_the_open_one() -> None:
    s = await factories.supplier(trade_assurance_limit_minor=100_000_00)
    supplier_id = await sid(s)
    first = await investigations.add_penalty_points(
        supplier_id, config.current().penalty_points_uncooperative, reason="no response"
    )
    assert first.investigation_opened and first.total_points == 48
    second = await investigations.add_penalty_points(supplier_id, 6, reason="another dispute")
    assert not second.investigation_opened
    assert second.investigation_id == first.investigation_id
    assert second.unconsumed_points == 0
    assert await Investigation.count() == 1
    # Closed: points count from zero again.
    mediator = await factories.staff()
    assert first.investigation_id is not None
    await investigations.close_investigation(
        mediator.principal, first.investigation_id,
        outcome=InvestigationOutcome.WARNING, reason="first warning",
    )  # fmt: skip
    third = await investigations.add_penalty_points(supplier_id, 6, reason="later dispute")
    assert (third.total_points, third.unconsumed_points, third.investigation_id) == (60, 6, None)


async def test_concurrent_points_open_exactly_one_investigation() -> None:
    s = await factories.supplier()
    supplier_id = await sid(s)
    await investigations.add_penalty_points(supplier_id, 18, reason="earlier disputes")
    results = await asyncio.gather(
        *[investigations.add_penalty_points(supplier_id, 6, reason=f"r{n}") for n in range(4)]
    )
    assert sum(r.investigation_opened for r in results) == 1
    assert {r.investigation_id for r in results} == {
        next(r.investigation_id for r in results if r.investigation_opened)
    }
    assert await Investigation.count() == 1
    assert await investigations.point_totals(supplier_id) == (42, 0)


async def test_threshold_is_configurable() -> None:
    config.configure(config.DomainConfig(investigation_threshold_points=10))
    s = await factories.supplier()
    supplier_id = await sid(s)
    assert not (
        await investigations.add_penalty_points(supplier_id, 6, reason="a")
    ).investigation_opened
    assert (
        await investigations.add_penalty_points(supplier_id, 6, reason="b")
    ).investigation_opened


async def test_bad_penalty_points_change_nothing() -> None:
    s = await factories.supplier()
    supplier_id = await sid(s)
    await refused(
        ErrorCode.INVALID_INPUT, investigations.add_penalty_points(supplier_id, 0, reason="x")
    )
    await refused(
        ErrorCode.REASON_REQUIRED, investigations.add_penalty_points(supplier_id, 6, reason=" ")
    )
    await refused(ErrorCode.NOT_FOUND, investigations.add_penalty_points(999_999, 6, reason="x"))


# Complaints


async def _complaint() -> tuple[factories.Actor, factories.Actor, Complaint]:
    b, s, _ = await factories.confirmed_order()
    complaint = await investigations.file_complaint(
        b.principal, await sid(s), subject="Wrong goods", description="Panels are 30 W",
        evidence="photos in the Trade Center", idempotency_key="c-1",
    )  # fmt: skip
    return b, s, complaint


async def test_accepted_complaint_opens_an_investigation_then_joins_it() -> None:
    b, s, complaint = await _complaint()
    assert complaint.status == ComplaintStatus.PENDING.value
    again = await investigations.file_complaint(
        b.principal, await sid(s), subject="Wrong goods", description="Panels are 30 W",
        evidence="photos in the Trade Center", idempotency_key="c-1",
    )  # fmt: skip
    assert again.id == complaint.id and await Complaint.count() == 1
    mediator = await factories.staff()
    accepted = await investigations.review_complaint(
        mediator.principal, complaint.id, accept=True, reason=None
    )
    assert accepted.status == ComplaintStatus.ACCEPTED.value
    assert accepted.investigation is not None
    opened = await Investigation.objects().get(Investigation.id == accepted.investigation)
    assert opened is not None and opened.opened_by == InvestigationTrigger.COMPLAINT.value
    # A second complaint about the same supplier joins the open investigation.
    b2, _, order2 = await factories.confirmed_order(supplier_actor=s)
    second = await investigations.file_complaint(
        b2.principal, await sid(s), subject="Late", description="Shipped late",
        order_id=order2.id, idempotency_key="c2",
    )  # fmt: skip
    second = await investigations.review_complaint(
        mediator.principal, second.id, accept=True, reason="same pattern"
    )
    assert second.investigation == accepted.investigation
    assert await Investigation.count() == 1
    await refused(
        ErrorCode.COMPLAINT_ALREADY_REVIEWED,
        investigations.review_complaint(mediator.principal, second.id, accept=False, reason="x"),
    )


async def test_rejected_complaint_is_closed_with_the_reason() -> None:
    _, _, complaint = await _complaint()
    mediator = await factories.staff()
    await refused(
        ErrorCode.REASON_REQUIRED,
        investigations.review_complaint(mediator.principal, complaint.id, accept=False, reason=""),
    )
    rejected = await investigations.review_complaint(
        mediator.principal, complaint.id, accept=False, reason="not supported by evidence"
    )
    assert rejected.status == ComplaintStatus.REJECTED.value
    assert rejected.review_reason == "not supported by evidence"
    assert rejected.investigation is None and await Investigation.count() == 0


async def test_bad_complaints_change_nothing() -> None:
    b, s, _ = await factories.confirmed_order()
    stranger = await factories.buyer()
    other_supplier = await factories.supplier(trade_assurance_limit_minor=1_000_00)

    def file(actor: factories.Actor, supplier_id: int, **kw: Any) -> Any:
        return investigations.file_complaint(
            actor.principal, supplier_id, subject="s", description="d",
            idempotency_key=kw.pop("key", "k"), **kw,
        )  # fmt: skip

    await refused(ErrorCode.NOT_A_BUYER, file(s, await sid(s)))
    await refused(ErrorCode.NOT_A_BUYER, file(await factories.staff(), await sid(s)))
    await refused(ErrorCode.NOT_FOUND, file(b, 999_999))
    await refused(ErrorCode.NO_ORDER_WITH_SUPPLIER, file(stranger, await sid(s)))
    await refused(ErrorCode.NO_ORDER_WITH_SUPPLIER, file(b, await sid(other_supplier)))
    await refused(ErrorCode.INVALID_INPUT, file(b, await sid(s), key=" "))
    await refused(ErrorCode.NOT_FOUND, file(b, await sid(s), order_id=999_999))
    mine = await file(b, await sid(s), key="first")
    await refused(ErrorCode.IDEMPOTENCY_KEY_REUSED, file(b, await sid(other_supplier), key="first"))
    await refused(
        ErrorCode.FORBIDDEN,
        investigations.review_complaint(b.principal, mine.id, accept=True, reason=None),
    )
    await refused(
        ErrorCode.FORBIDDEN,
        investigations.review_complaint(s.principal, mine.id, accept=True, reason=None),
    )


# Closing investigations


async def _open_investigation(limit_minor: int = 100_000_00) -> tuple[factories.Actor, int]:
    s = await factories.supplier(trade_assurance_limit_minor=limit_minor)
    result = await investigations.add_penalty_points(await sid(s), 48, reason="uncooperative")
    assert result.investigation_id is not None
    return s, result.investigation_id


async def test_warning_changes_only_the_investigation() -> None:
    s, investigation_id = await _open_investigation()
    mediator = await factories.staff()
    before = await entry(await sid(s))
    closed = await investigations.close_investigation(
        mediator.principal, investigation_id, outcome=InvestigationOutcome.WARNING,
        reason="a warning",
    )  # fmt: skip
    assert (closed.status, closed.outcome) == ("CLOSED", "WARNING")
    assert closed.closed_by == mediator.principal.user_id
    assert await entry(await sid(s)) == before
    await refused(
        ErrorCode.INVESTIGATION_ALREADY_CLOSED,
        investigations.close_investigation(
            mediator.principal, investigation_id, outcome=InvestigationOutcome.SUSPENDED,
            reason="again",
        ),
    )  # fmt: skip


async def test_limit_reduced_below_open_reservations_leaves_zero_remaining() -> None:
    b, s, order = await factories.confirmed_order(
        supplier_actor=await factories.supplier(trade_assurance_limit_minor=5_000_00)
    )
    assert order.limit_reserved_minor == 3_000_00
    investigation = await investigations.add_penalty_points(await sid(s), 48, reason="x")
    assert investigation.investigation_id is not None
    mediator = await factories.staff()
    closed = await investigations.close_investigation(
        mediator.principal, investigation.investigation_id,
        outcome=InvestigationOutcome.LIMIT_REDUCED, reason="reduce",
        new_limit=Money(1_000_00, USD),
    )  # fmt: skip
    assert (closed.previous_limit_minor, closed.new_limit_minor) == (5_000_00, 1_000_00)
    supplier = await entry(await sid(s))
    assert supplier.ta_limit == Money(1_000_00, USD)
    assert supplier.remaining_limit == Money(0, USD)
    assert supplier.ta_status is TradeAssuranceStatus.ACTIVE
    # The open order keeps its coverage, and can still be paid.
    paid = await payments.pay_order(
        b.principal, order.id, Money(3_000_00, USD), PaymentMethod.CARD,
        idempotency_key="pay", source=CARD_SUCCEEDS,
    )  # fmt: skip
    assert paid.error is None


async def test_bad_closings_change_nothing() -> None:
    s, investigation_id = await _open_investigation(limit_minor=5_000_00)
    mediator = await factories.staff()

    def close(**kw: Any) -> Any:
        principal = kw.pop("principal", mediator.principal)
        outcome = kw.pop("outcome", InvestigationOutcome.LIMIT_REDUCED)
        return investigations.close_investigation(
            principal, investigation_id, outcome=outcome, reason=kw.pop("reason", "r"), **kw
        )

    await refused(ErrorCode.LIMIT_REQUIRED, close())
    await refused(ErrorCode.LIMIT_NOT_LOWER, close(new_limit=Money(5_000_00, USD)))
    await refused(ErrorCode.LIMIT_NOT_LOWER, close(new_limit=Money(6_000_00, USD)))
    await refused(ErrorCode.INVALID_CURRENCY, close(new_limit=Money(1_000_00, "EUR")))
    await refused(ErrorCode.INVALID_AMOUNT, close(new_limit=Money(-1, USD)))
    await refused(ErrorCode.REASON_REQUIRED, close(reason="", outcome=InvestigationOutcome.WARNING))
    await refused(
        ErrorCode.FORBIDDEN, close(principal=s.principal, outcome=InvestigationOutcome.WARNING)
    )
    buyer = await factories.buyer()
    await refused(
        ErrorCode.FORBIDDEN, close(principal=buyer.principal, outcome=InvestigationOutcome.WARNING)
    )
    await refused(
        ErrorCode.NOT_FOUND,
        investigations.close_investigation(
            mediator.principal, 999_999, outcome=InvestigationOutcome.WARNING, reason="r"
        ),
    )


async def test_suspension_hides_from_search_refuses_new_orders_keeps_open_ones_protected() -> None:
    b, s, order = await factories.confirmed_order()
    supplier_id = await sid(s)
    paid = await payments.pay_order(
        b.principal, order.id, Money(1_500_00, USD), PaymentMethod.CARD,
        idempotency_key="deposit", source=CARD_SUCCEEDS,
    )  # fmt: skip
    assert paid.error is None
    ta_only = SupplierFilter(trade_assurance_only=True)
    page = await suppliers.search_suppliers(ta_only, SupplierOrder.RELEVANCE, first=50, offset=0)
    assert supplier_id in [x.id for x in page.suppliers]

    result = await investigations.add_penalty_points(supplier_id, 48, reason="uncooperative")
    assert result.investigation_id is not None
    mediator = await factories.staff()
    await investigations.close_investigation(
        mediator.principal, result.investigation_id, outcome=InvestigationOutcome.SUSPENDED,
        reason="repeated failures",
    )  # fmt: skip
    assert (await entry(supplier_id)).ta_status is TradeAssuranceStatus.SUSPENDED
    page = await suppliers.search_suppliers(ta_only, SupplierOrder.RELEVANCE, first=50, offset=0)
    assert supplier_id not in [x.id for x in page.suppliers]
    assert await suppliers.count_suppliers(ta_only) == 0

    with pytest.raises(DomainError) as e:
        await orders.create_order(b.principal, factories.contract(), supplier_id=supplier_id)
    assert e.value.code is ErrorCode.TRADE_ASSURANCE_SUSPENDED

    # The open order stays protected: the balance is paid, it ships, money is released.
    paid = await payments.pay_order(
        b.principal, order.id, Money(1_500_00, USD), PaymentMethod.CARD,
        idempotency_key="balance", source=CARD_SUCCEEDS,
    )  # fmt: skip
    assert paid.error is None
    shipped = await lifecycle.ship_order(
        s.principal, order.id,
        lifecycle.Shipment(carrier="Maersk", tracking_number="MAEU1", shipped_at=clock.now(),
                           method=None),
    )  # fmt: skip
    assert shipped.status == OrderStatus.SHIPPED.value
    await payments.release_funds(b.principal, order.id, None, idempotency_key="release")
    kinds = [r["kind"] for r in await SupplierEvent.select(SupplierEvent.kind)]
    assert kinds[-1] == "INVESTIGATION_CLOSED"


async def test_views_only_for_the_supplier_and_mediators() -> None:
    s = await factories.supplier()
    supplier_id = await sid(s)
    other = await factories.supplier()
    mediator = await factories.staff()
    buyer = await factories.buyer()
    see = investigations.may_see_supplier_record
    assert see(s.principal, supplier_id, supplier_id)
    assert see(mediator.principal, supplier_id, None)
    assert not see(other.principal, supplier_id, other.supplier_id)
    assert not see(buyer.principal, supplier_id, None)
    assert not see(None, supplier_id, None)
    assert mediator.principal.role is Role.MEDIATOR
