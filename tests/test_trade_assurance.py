"""Applying for Trade Assurance and the mediator's review."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from models import accounts, config, suppliers, trade_assurance
from models.accounts import Principal
from models.clock import FrozenClock
from models.enums import ApplicationStatus, Role, Scope, TradeAssuranceStatus, Verification
from models.errors import DomainError, ErrorCode
from models.money import Money
from models.suppliers import SupplierFilter
from models.tables import SupplierProfile, TradeAssuranceApplication
from models.trade_assurance import add_business_days
from tests import factories
from tests.factories import Actor

UTC = dt.UTC
FRIDAY_NOON = dt.datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
LIMIT = Money(5_000_000, "USD")


def at(day: str, time: str = "12:00") -> dt.datetime:
    return dt.datetime.fromisoformat(f"{day}T{time}+00:00")


async def state() -> tuple[Any, ...]:
    """Everything apply/review may write: the applications and the profiles."""
    applications = await TradeAssuranceApplication.select().order_by(TradeAssuranceApplication.id)
    profiles = await SupplierProfile.select().order_by(SupplierProfile.id)
    return applications, profiles


async def expect_refusal(code: ErrorCode, coro: Any) -> DomainError:
    before = await state()
    with pytest.raises(DomainError) as e:
        await coro
    assert e.value.code is code, e.value.message
    assert await state() == before
    return e.value


async def stored(application_id: int) -> TradeAssuranceApplication:
    found = await trade_assurance.get_applications([application_id])
    return found[application_id]


async def entry(actor: Actor) -> suppliers.Supplier:
    supplier_id = actor.supplier_id or 0
    return (await suppliers.get_suppliers([supplier_id]))[supplier_id]


# Business days


@pytest.mark.parametrize(
    ("start", "days", "due"),
    [
        (at("2026-11-27"), 2, at("2026-12-01")),  # Friday -> Tuesday
        (at("2026-12-02"), 2, at("2026-12-04")),  # Wednesday -> Friday
        (at("2026-12-03"), 2, at("2026-12-07")),  # Thursday -> Monday
        (at("2026-11-23", "08:15"), 5, at("2026-11-30", "08:15")),  # Monday -> next Monday
        (at("2026-11-28"), 1, at("2026-11-30")),  # Saturday -> Monday
        (at("2026-11-29", "23:59"), 1, at("2026-11-30", "23:59")),  # Sunday -> Monday
        (at("2026-11-29"), 2, at("2026-12-01")),  # Sunday -> Tuesday
        (at("2026-11-27"), 10, at("2026-12-11")),  # two working weeks
        (at("2026-12-31"), 2, at("2027-01-04")),  # across the year end
        (at("2026-11-27"), 0, at("2026-11-27")),
        (at("2026-11-28"), 0, at("2026-11-28")),
    ],
)
def test_add_business_days(start: dt.datetime, days: int, due: dt.datetime) -> None:
    assert add_business_days(start, days) == due
    assert add_business_days(start, days).tzinfo is UTC


# Applying


async def test_frozen_clock_starts_on_a_friday(frozen_clock: FrozenClock) -> None:
    assert frozen_clock.current == FRIDAY_NOON
    assert FRIDAY_NOON.strftime("%A") == "Friday"


async def test_apply_sets_the_review_due_date(frozen_clock: FrozenClock) -> None:
    seller = await factories.supplier()
    application = await trade_assurance.apply(seller.principal, LIMIT)
    assert (application.status, application.supplier) == ("PENDING", seller.supplier_id)
    assert application.submitted_by == seller.principal.user_id
    assert (application.requested_limit_minor, application.requested_limit_currency) == (
        5_000_000,
        "USD",
    )
    assert application.decided_at is None
    saved = await stored(application.id)
    assert saved.submitted_at == FRIDAY_NOON
    assert saved.review_due_at == at("2026-12-01")  # Tuesday noon
    assert (await entry(seller)).ta_status is TradeAssuranceStatus.NONE


async def test_review_due_on_a_wednesday_application_is_friday(frozen_clock: FrozenClock) -> None:
    seller = await factories.supplier(verification=Verification.ASSESSED)
    frozen_clock.advance(days=5)
    application = await trade_assurance.apply(seller.principal, None)
    saved = await stored(application.id)
    assert saved.review_due_at == at("2026-12-04")
    assert saved.requested_limit_minor is None and saved.requested_limit_currency is None


async def test_review_business_days_are_configurable(frozen_clock: FrozenClock) -> None:
    config.configure(config.DomainConfig(application_review_business_days=3))
    seller = await factories.supplier()
    application = await trade_assurance.apply(seller.principal, None)
    assert (await stored(application.id)).review_due_at == at("2026-12-02")  # Wednesday


async def test_only_gold_verified_suppliers_may_apply() -> None:
    not_gold = await factories.supplier(gold=False)
    unverified = await factories.supplier(verification=Verification.NONE)
    neither = await factories.supplier(gold=False, verification=Verification.NONE)
    await expect_refusal(
        ErrorCode.NOT_GOLD_SUPPLIER, trade_assurance.apply(not_gold.principal, None)
    )
    await expect_refusal(ErrorCode.NOT_VERIFIED, trade_assurance.apply(unverified.principal, LIMIT))
    await expect_refusal(
        ErrorCode.NOT_GOLD_SUPPLIER, trade_assurance.apply(neither.principal, None)
    )


async def test_only_a_suppliers_own_users_may_apply() -> None:
    seller = await factories.supplier()
    _, secret = await accounts.create_api_key_for(seller.principal, "ERP", list(Scope), None)
    partner = await accounts.authenticate(secret)
    for principal in (
        (await factories.buyer()).principal,
        (await factories.staff(Role.MEDIATOR)).principal,
        partner,
    ):
        await expect_refusal(ErrorCode.FORBIDDEN, trade_assurance.apply(principal, None))


@pytest.mark.parametrize(
    ("limit", "code", "field"),
    [
        (Money(100_000, "EUR"), ErrorCode.INVALID_CURRENCY, "requestedLimit.currency"),
        (Money(0, "USD"), ErrorCode.INVALID_AMOUNT, "requestedLimit"),
        (Money(-100, "USD"), ErrorCode.INVALID_AMOUNT, "requestedLimit"),
    ],
)
async def test_requested_limit_must_be_positive_usd(
    limit: Money, code: ErrorCode, field: str
) -> None:
    seller = await factories.supplier()
    error = await expect_refusal(code, trade_assurance.apply(seller.principal, limit))
    assert error.field == field


async def test_limit_currency_is_configurable() -> None:
    config.configure(config.DomainConfig(limit_currency="EUR"))
    seller = await factories.supplier()
    await expect_refusal(ErrorCode.INVALID_CURRENCY, trade_assurance.apply(seller.principal, LIMIT))
    await trade_assurance.apply(seller.principal, Money(100, "EUR"))


async def test_one_pending_application_at_a_time() -> None:
    seller = await factories.supplier()
    mediator = await factories.staff(Role.MEDIATOR)
    first = await trade_assurance.apply(seller.principal, None)
    await expect_refusal(
        ErrorCode.APPLICATION_ALREADY_PENDING, trade_assurance.apply(seller.principal, LIMIT)
    )
    # Another supplier is not blocked by it.
    await trade_assurance.apply((await factories.supplier()).principal, None)
    # After a rejection the supplier may try again.
    await trade_assurance.review(mediator.principal, first.id, approve=False, reason="Documents")
    second = await trade_assurance.apply(seller.principal, LIMIT)
    assert second.id != first.id


async def test_active_or_suspended_suppliers_cannot_apply() -> None:
    active = await factories.supplier(trade_assurance_limit_minor=1_000_000)
    await expect_refusal(
        ErrorCode.TRADE_ASSURANCE_ALREADY_ACTIVE, trade_assurance.apply(active.principal, None)
    )
    suspended = await factories.supplier(trade_assurance_limit_minor=1_000_000)
    await SupplierProfile.update(
        {SupplierProfile.ta_status: TradeAssuranceStatus.SUSPENDED.value}
    ).where(SupplierProfile.id == suspended.supplier_id)
    await expect_refusal(
        ErrorCode.TRADE_ASSURANCE_SUSPENDED, trade_assurance.apply(suspended.principal, None)
    )


# Review


@pytest.fixture
async def pending() -> tuple[Actor, Actor, TradeAssuranceApplication]:
    """A supplier with a pending application, and a mediator."""
    seller = await factories.supplier(name="Shenzhen Bright Co., Ltd.", keywords=("led strip",))
    application = await trade_assurance.apply(seller.principal, LIMIT)
    return seller, await factories.staff(Role.MEDIATOR), application


async def test_review_refusals_change_nothing(
    pending: tuple[Actor, Actor, TradeAssuranceApplication],
) -> None:
    seller, mediator, application = pending
    m = mediator.principal
    review = trade_assurance.review
    for principal in (seller.principal, (await factories.buyer()).principal):
        await expect_refusal(
            ErrorCode.FORBIDDEN, review(principal, application.id, approve=True, limit=LIMIT)
        )
    await expect_refusal(ErrorCode.LIMIT_REQUIRED, review(m, application.id, approve=True))
    error = await expect_refusal(
        ErrorCode.INVALID_CURRENCY,
        review(m, application.id, approve=True, limit=Money(100, "EUR")),
    )
    assert error.field == "limit.currency"
    await expect_refusal(
        ErrorCode.INVALID_AMOUNT, review(m, application.id, approve=True, limit=Money(0, "USD"))
    )
    await expect_refusal(ErrorCode.REASON_REQUIRED, review(m, application.id, approve=False))
    await expect_refusal(
        ErrorCode.REASON_REQUIRED, review(m, application.id, approve=False, reason="  \n ")
    )
    await expect_refusal(ErrorCode.NOT_FOUND, review(m, 999999, approve=True, limit=LIMIT))
    await expect_refusal(ErrorCode.NOT_FOUND, review(m, 999999, approve=False, reason="No"))
    assert (await stored(application.id)).status == "PENDING"


async def test_approve_activates_trade_assurance_with_the_limit(
    frozen_clock: FrozenClock, pending: tuple[Actor, Actor, TradeAssuranceApplication]
) -> None:
    seller, mediator, application = pending
    trade_assurance_only = SupplierFilter(text="led", trade_assurance_only=True)
    assert await suppliers.count_suppliers(trade_assurance_only) == 0
    granted = Money(2_500_000, "USD")
    decided = await trade_assurance.review(
        mediator.principal, application.id, approve=True, limit=granted, reason="ignored"
    )
    assert decided.status == ApplicationStatus.APPROVED.value
    saved = await stored(application.id)
    assert (saved.status, saved.granted_limit_minor, saved.granted_limit_currency) == (
        "APPROVED",
        2_500_000,
        "USD",
    )
    assert (saved.decided_at, saved.decided_by) == (
        frozen_clock.current,
        mediator.principal.user_id,
    )
    assert saved.rejection_reason is None
    supplier = await entry(seller)
    assert supplier.ta_status is TradeAssuranceStatus.ACTIVE
    assert supplier.ta_limit == granted
    assert supplier.remaining_limit == granted
    assert supplier.ta_since == frozen_clock.current
    page = await suppliers.search_suppliers(
        trade_assurance_only, suppliers.SupplierOrder.RELEVANCE, first=10, offset=0
    )
    assert [s.id for s in page.suppliers] == [seller.supplier_id]
    await expect_refusal(
        ErrorCode.TRADE_ASSURANCE_ALREADY_ACTIVE, trade_assurance.apply(seller.principal, None)
    )


async def test_reject_keeps_status_none_and_stores_the_reason(
    frozen_clock: FrozenClock, pending: tuple[Actor, Actor, TradeAssuranceApplication]
) -> None:
    seller, mediator, application = pending
    await trade_assurance.review(
        mediator.principal,
        application.id,
        approve=False,
        limit=LIMIT,
        reason="  Business licence expired  ",
    )
    saved = await stored(application.id)
    assert (saved.status, saved.rejection_reason) == ("REJECTED", "Business licence expired")
    assert (saved.decided_at, saved.decided_by) == (
        frozen_clock.current,
        mediator.principal.user_id,
    )
    assert saved.granted_limit_minor is None and saved.granted_limit_currency is None
    supplier = await entry(seller)
    assert (supplier.ta_status, supplier.ta_limit, supplier.remaining_limit) == (
        TradeAssuranceStatus.NONE,
        None,
        None,
    )
    assert await suppliers.count_suppliers(SupplierFilter(trade_assurance_only=True)) == 0


@pytest.mark.parametrize("first_approve", [True, False])
async def test_deciding_twice_is_refused(
    pending: tuple[Actor, Actor, TradeAssuranceApplication], first_approve: bool
) -> None:
    _, mediator, application = pending
    review = trade_assurance.review
    await review(
        mediator.principal, application.id, approve=first_approve, limit=LIMIT, reason="Reason"
    )
    other = await factories.staff(Role.MEDIATOR)
    for approve in (True, False):
        await expect_refusal(
            ErrorCode.APPLICATION_ALREADY_DECIDED,
            review(
                other.principal,
                application.id,
                approve=approve,
                limit=Money(9_900_000, "USD"),
                reason="Changed my mind",
            ),
        )


async def test_is_overdue_flips_at_the_due_date(
    frozen_clock: FrozenClock, pending: tuple[Actor, Actor, TradeAssuranceApplication]
) -> None:
    _, mediator, application = pending
    assert not trade_assurance.is_overdue(await stored(application.id))
    frozen_clock.advance(days=3, hours=23, minutes=59)  # Tuesday 11:59
    assert not trade_assurance.is_overdue(await stored(application.id))
    frozen_clock.advance(minutes=1)  # Tuesday noon: due
    assert trade_assurance.is_overdue(await stored(application.id))
    await trade_assurance.review(mediator.principal, application.id, approve=True, limit=LIMIT)
    assert not trade_assurance.is_overdue(await stored(application.id))  # decided: not overdue


# Listing


async def list_ids(
    principal: Principal,
    own: Actor | None = None,
    *,
    status: ApplicationStatus | None = None,
    overdue_only: bool = False,
    first: int = 100,
    after_id: int | None = None,
) -> tuple[list[int], bool]:
    rows, has_next = await trade_assurance.list_applications(
        principal,
        status=status,
        overdue_only=overdue_only,
        first=first,
        after_id=after_id,
        own_supplier_id=own.supplier_id if own else None,
    )
    return [r.id for r in rows], has_next


async def test_list_applications(frozen_clock: FrozenClock) -> None:
    mediator = await factories.staff(Role.MEDIATOR)
    a, b, c = [await factories.supplier() for _ in range(3)]
    a1 = await trade_assurance.apply(a.principal, None)  # due Tuesday noon
    await trade_assurance.review(mediator.principal, a1.id, approve=False, reason="Incomplete")
    frozen_clock.advance(days=3)  # Monday
    b1 = await trade_assurance.apply(b.principal, None)  # due Wednesday
    a2 = await trade_assurance.apply(a.principal, LIMIT)  # due Wednesday
    frozen_clock.advance(days=1)  # Tuesday
    c1 = await trade_assurance.apply(c.principal, LIMIT)  # due Thursday
    everything = [a1.id, b1.id, a2.id, c1.id]

    m = mediator.principal
    assert await list_ids(m) == (everything, False)
    assert await list_ids(m, status=ApplicationStatus.PENDING) == ([b1.id, a2.id, c1.id], False)
    assert await list_ids(m, status=ApplicationStatus.REJECTED) == ([a1.id], False)
    assert await list_ids(m, overdue_only=True) == ([], False)  # a1 is past due but decided
    frozen_clock.advance(days=1)  # Wednesday noon
    assert await list_ids(m, overdue_only=True) == ([b1.id, a2.id], False)

    # A supplier sees only its own; a company without a supplier profile sees nothing.
    assert await list_ids(a.principal, a) == ([a1.id, a2.id], False)
    assert await list_ids(a.principal, a, overdue_only=True) == ([a2.id], False)
    assert await list_ids(b.principal, b) == ([b1.id], False)
    assert await list_ids((await factories.buyer()).principal) == ([], False)

    # Keyset pagination: pages follow each other without gaps or repeats.
    seen: list[int] = []
    after: int | None = None
    while True:
        page, has_next = await list_ids(m, first=3, after_id=after)
        seen += page
        if not has_next:
            break
        after = page[-1]
    assert seen == everything
    assert await list_ids(m, first=2) == (everything[:2], True)
    assert await list_ids(m, first=2, after_id=everything[1]) == (everything[2:], False)
    assert await list_ids(m, after_id=everything[-1]) == ([], False)
    assert await list_ids(a.principal, a, first=1) == ([a1.id], True)
    assert await list_ids(a.principal, a, first=1, after_id=a1.id) == ([a2.id], False)


async def test_may_see_application(
    pending: tuple[Actor, Actor, TradeAssuranceApplication],
) -> None:
    seller, mediator, application = pending
    other = await factories.supplier()
    may_see = trade_assurance.may_see
    assert may_see(mediator.principal, application, None)
    assert may_see(seller.principal, application, seller.supplier_id)
    assert not may_see(other.principal, application, other.supplier_id)
    assert not may_see(None, application, seller.supplier_id)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({SupplierProfile.gold: False}, ErrorCode.NOT_GOLD_SUPPLIER),
        ({SupplierProfile.verification: Verification.NONE.value}, ErrorCode.NOT_VERIFIED),
        ({SupplierProfile.ta_status: TradeAssuranceStatus.SUSPENDED.value},
         ErrorCode.TRADE_ASSURANCE_SUSPENDED),
    ],
)  # fmt: skip
async def test_approval_checks_the_standing_again(
    pending: tuple[Actor, Actor, TradeAssuranceApplication],
    change: dict[Any, object],
    code: ErrorCode,
) -> None:
    # Lost while the application was pending: a non-Gold or unverified supplier used to be
    # granted Trade Assurance all the same.
    seller, mediator, application = pending
    await SupplierProfile.update(change).where(SupplierProfile.id == seller.supplier_id)
    error = await expect_refusal(
        code, trade_assurance.review(mediator.principal, application.id, approve=True, limit=LIMIT)
    )
    assert error.field == "applicationId"
    assert (await stored(application.id)).status == "PENDING"


async def test_every_change_of_standing_leaves_an_audit_record(
    frozen_clock: FrozenClock, pending: tuple[Actor, Actor, TradeAssuranceApplication]
) -> None:
    # Gold, verification, the grant and the overdue flag changed without a trace.
    from models import sweep
    from models.tables import SupplierEvent

    seller, mediator, application = pending
    assert seller.supplier_id is not None
    frozen_clock.advance(days=30)
    assert await sweep.flag_overdue_applications() == [application.id]
    await trade_assurance.review(mediator.principal, application.id, approve=True, limit=LIMIT)
    await suppliers.set_standing(mediator.principal, seller.supplier_id, gold=True)  # no change
    await suppliers.set_standing(
        mediator.principal, seller.supplier_id, gold=False, verification=Verification.NONE
    )
    rows = (
        await SupplierEvent.select(
            SupplierEvent.kind, SupplierEvent.actor_user, SupplierEvent.detail
        )
        .where(SupplierEvent.supplier == seller.supplier_id)
        .order_by(SupplierEvent.id)
    )
    assert [(r["kind"], r["actor_user"]) for r in rows] == [
        ("APPLICATION_FILED", seller.principal.user_id),
        ("APPLICATION_OVERDUE", None),
        ("TRADE_ASSURANCE_GRANTED", mediator.principal.user_id),
        ("STANDING_CHANGED", mediator.principal.user_id),
    ]
    assert rows[-1]["detail"] == "Gold withdrawn; verification VERIFIED -> NONE"
