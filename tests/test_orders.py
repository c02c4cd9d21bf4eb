"""The order state machine, without HTTP: drafting, confirmation, coverage, modification,
cancellation, and who may touch an order."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from typing import Any

import pytest

from models import clock, config, orders
from models.enums import OrderStatus, TradeAssuranceStatus
from models.errors import DomainError, ErrorCode
from models.money import MAX_ORDER_MINOR
from models.tables import Order, OrderEvent, OrderLine, SupplierProfile
from tests import factories
from tests.factories import buyer, confirmed_order, contract, supplier


async def _events(order_id: int) -> list[tuple[str, str | None, str]]:
    rows = (
        await OrderEvent.select(OrderEvent.kind, OrderEvent.old_status, OrderEvent.new_status)
        .where(OrderEvent.order == order_id)
        .order_by(OrderEvent.id)
    )
    return [(r["kind"], r["old_status"], r["new_status"]) for r in rows]


async def test_buyer_places_and_supplier_confirms() -> None:
    b, s = await buyer(), await supplier(trade_assurance_limit_minor=100_000_00)
    assert s.supplier_id is not None
    order = await orders.create_order(b.principal, contract(), supplier_id=s.supplier_id)
    assert order.status == OrderStatus.PENDING_CONFIRMATION
    assert order.total_minor == 3_000_00 and order.initial_minor == 1_500_00
    assert await OrderLine.count().where(OrderLine.order == order.id) == 1
    with pytest.raises(DomainError) as e:  # the drafter cannot confirm its own draft
        await orders.confirm_order(b.principal, order.id)
    assert e.value.code is ErrorCode.NOT_YOUR_TURN
    confirmed = await orders.confirm_order(s.principal, order.id)
    assert confirmed.status == OrderStatus.AWAITING_INITIAL_PAYMENT
    assert confirmed.payment_deadline is not None
    assert confirmed.coverage_cap_minor == 3_000_00
    assert await _events(order.id) == [
        ("CREATED", None, "PENDING_CONFIRMATION"),
        ("CONFIRMED", "PENDING_CONFIRMATION", "AWAITING_INITIAL_PAYMENT"),
    ]


async def test_supplier_drafts_and_buyer_confirms() -> None:
    b, s = await buyer(), await supplier(trade_assurance_limit_minor=100_000_00)
    order = await orders.create_order(
        s.principal, contract(initial_payment_minor=0), buyer_company_id=b.principal.company_id
    )
    assert order.drafted_by == "SUPPLIER"
    confirmed = await orders.confirm_order(b.principal, order.id)
    # No deposit: the balance is due straight away.
    assert confirmed.status == OrderStatus.AWAITING_BALANCE


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (TradeAssuranceStatus.NONE, ErrorCode.SUPPLIER_NOT_PROTECTED),
        (TradeAssuranceStatus.SUSPENDED, ErrorCode.TRADE_ASSURANCE_SUSPENDED),
    ],
)
async def test_unprotected_supplier_takes_no_orders(
    status: TradeAssuranceStatus, code: ErrorCode
) -> None:
    b, s = await buyer(), await supplier(trade_assurance_limit_minor=100_000_00)
    await SupplierProfile.update({SupplierProfile.ta_status: status.value}).where(
        SupplierProfile.id == s.supplier_id
    )
    with pytest.raises(DomainError) as e:
        await orders.create_order(b.principal, contract(), supplier_id=s.supplier_id)
    assert e.value.code is code
    assert await Order.count() == 0


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"lines": ()}, ErrorCode.INVALID_INPUT, "lines"),
        ({"currency": "XYZ"}, ErrorCode.INVALID_CURRENCY, "currency"),
        ({"destination_country": "ZZ"}, ErrorCode.INVALID_COUNTRY, "destinationCountry"),
        ({"initial_payment_minor": 3_000_01}, ErrorCode.INVALID_AMOUNT, "initialPayment"),
        ({"initial_payment_minor": -1}, ErrorCode.INVALID_AMOUNT, "initialPayment"),
        ({"lines": (orders.Line("x", 0, 100),)}, ErrorCode.INVALID_INPUT, "lines.0.quantity"),
        ({"lines": (orders.Line("x", 1, 0),)}, ErrorCode.INVALID_AMOUNT, "lines.0.unitPrice"),
        ({"quality": (orders.Quality("flux", " "),)}, ErrorCode.INVALID_INPUT,
         "qualityRequirements.0"),
        # Past 64 bits it was an OverflowError from the driver, not an error of the input.
        ({"lines": (orders.Line("x", 2**31 - 1, 9 * 10**16),), "initial_payment_minor": 0},
         ErrorCode.INVALID_AMOUNT, "lines"),
        ({"lines": (orders.Line("x", 1, MAX_ORDER_MINOR + 1),), "initial_payment_minor": 0},
         ErrorCode.INVALID_AMOUNT, "lines"),
    ],
)  # fmt: skip
async def test_invalid_contracts_are_refused(
    change: dict[str, object], code: ErrorCode, field: str
) -> None:
    b, s = await buyer(), await supplier(trade_assurance_limit_minor=100_000_00)
    bad = dataclasses.replace(contract(), **change)  # type: ignore[arg-type]
    with pytest.raises(DomainError) as e:
        await orders.create_order(b.principal, bad, supplier_id=s.supplier_id)
    assert (e.value.code, e.value.field) == (code, field)
    assert await Order.count() == 0


async def test_deadline_in_the_past_is_refused() -> None:
    b, s = await buyer(), await supplier(trade_assurance_limit_minor=100_000_00)
    with pytest.raises(DomainError) as e:
        await orders.create_order(b.principal, contract(days_to_ship=-1), supplier_id=s.supplier_id)
    assert e.value.code is ErrorCode.DEADLINE_IN_PAST


async def test_coverage_is_capped_by_the_remaining_limit_and_given_back() -> None:
    b, s = await buyer(), await supplier(trade_assurance_limit_minor=5_000_00)
    _, _, first = await confirmed_order(b, s)  # reserves 3,000.00 of 5,000.00
    assert first.limit_reserved_minor == 3_000_00
    _, _, second = await confirmed_order(b, s)
    assert second.coverage_cap_minor == 2_000_00  # only 2,000.00 was left
    assert second.limit_reserved_minor == 2_000_00
    await orders.cancel_order(b.principal, first.id, "changed our mind")
    _, _, third = await confirmed_order(b, s)
    assert third.coverage_cap_minor == 3_000_00


async def test_coverage_in_another_currency_uses_the_recorded_rate() -> None:
    config.configure(dataclasses.replace(config.current(), exchange_rates=(("EUR", "1.25"),)))
    b, s = await buyer(), await supplier(trade_assurance_limit_minor=2_500_00)
    _, _, order = await confirmed_order(b, s, contract(currency="EUR"))
    # 3,000.00 EUR = 3,750.00 USD > 2,500.00 USD remaining: cap = 2,500 / 1.25 = 2,000 EUR.
    assert order.exchange_rate == "1.25"
    assert order.limit_reserved_minor == 2_500_00
    assert order.coverage_cap_minor == 2_000_00
    cover = orders.coverage(order, paid_minor=1_500_00)
    assert (cover.pre_shipment, cover.post_delivery) == (1_500_00, 1_500_00)
    cover = orders.coverage(order, paid_minor=3_000_00)
    assert (cover.pre_shipment, cover.post_delivery) == (1_500_00, 2_000_00)


async def test_currency_without_a_rate_is_refused_at_confirmation() -> None:
    b, s = await buyer(), await supplier(trade_assurance_limit_minor=2_500_00)
    order = await orders.create_order(
        b.principal, contract(currency="CHF"), supplier_id=s.supplier_id
    )
    with pytest.raises(DomainError) as e:
        await orders.confirm_order(s.principal, order.id)
    assert e.value.code is ErrorCode.INVALID_CURRENCY
    assert await Order.select(Order.status).where(Order.id == order.id).first() == {
        "status": "PENDING_CONFIRMATION"
    }


async def test_modification_is_proposed_by_one_and_accepted_by_the_other() -> None:
    b, s, order = await confirmed_order()
    bigger = contract(quantity=3)
    proposal = await orders.propose_modification(s.principal, order.id, bigger, "one more")
    with pytest.raises(DomainError) as e:
        await orders.accept_modification(s.principal, proposal.id)
    assert e.value.code is ErrorCode.NOT_YOUR_TURN
    updated = await orders.accept_modification(b.principal, proposal.id)
    assert (updated.total_minor, updated.version) == (4_500_00, 2)
    assert updated.limit_reserved_minor == 4_500_00
    with pytest.raises(DomainError) as e:
        await orders.accept_modification(b.principal, proposal.id)
    assert e.value.code is ErrorCode.MODIFICATION_NOT_PENDING


async def test_a_newer_proposal_supersedes_the_older() -> None:
    b, s, order = await confirmed_order()
    old = await orders.propose_modification(s.principal, order.id, contract(quantity=3))
    await orders.propose_modification(s.principal, order.id, contract(quantity=4))
    with pytest.raises(DomainError) as e:
        await orders.accept_modification(b.principal, old.id)
    assert e.value.code is ErrorCode.MODIFICATION_NOT_PENDING


async def test_concurrent_accepts_of_one_proposal_apply_it_once() -> None:
    # The proposal is read again under the order's lock: on PostgreSQL both accepts used
    # to pass the PENDING check of a row read before the lock, and both applied it.
    b, s, order = await confirmed_order()
    proposal = await orders.propose_modification(s.principal, order.id, contract(quantity=3))
    results = await asyncio.gather(
        *(orders.accept_modification(b.principal, proposal.id) for _ in range(2)),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, DomainError)]
    assert [r.code for r in refused] == [ErrorCode.MODIFICATION_NOT_PENDING]
    assert len(results) - len(refused) == 1
    accepted = await OrderEvent.count().where(
        (OrderEvent.order == order.id) & (OrderEvent.kind == "MODIFICATION_ACCEPTED")
    )
    assert accepted == 1
    assert (await Order.select(Order.version).where(Order.id == order.id).first()) == {"version": 2}


async def test_a_deposit_added_before_any_payment_is_due_first() -> None:
    b, s, order = await confirmed_order(terms=contract(initial_payment_minor=0))
    assert order.status == OrderStatus.AWAITING_BALANCE.value
    proposal = await orders.propose_modification(
        s.principal, order.id, contract(initial_payment_minor=1_000_00), "a deposit first"
    )
    updated = await orders.accept_modification(b.principal, proposal.id)
    # It stayed AWAITING_BALANCE, where only the whole total could be paid.
    assert updated.status == OrderStatus.AWAITING_INITIAL_PAYMENT.value
    assert updated.initial_minor == 1_000_00


async def test_strangers_get_not_found() -> None:
    _, _, order = await confirmed_order()
    stranger, other_supplier = await buyer(), await supplier()
    for who in (stranger, other_supplier):
        with pytest.raises(DomainError) as e:
            await orders.cancel_order(who.principal, order.id, "mine now")
        assert e.value.code is ErrorCode.NOT_FOUND
        assert await orders.get_orders(who.principal, [order.id]) == {}
    mediator = await factories.staff()
    assert order.id in await orders.get_orders(mediator.principal, [order.id])


async def test_cancel_before_payment_and_not_twice() -> None:
    b, _, order = await confirmed_order()
    cancelled = await orders.cancel_order(b.principal, order.id, "budget cut")
    assert cancelled.status == OrderStatus.CANCELLED
    with pytest.raises(DomainError) as e:
        await orders.cancel_order(b.principal, order.id, "again")
    assert e.value.code is ErrorCode.INVALID_TRANSITION
    assert [k for k, _, _ in await _events(order.id)][-1] == "CANCELLED"


async def test_list_orders_shows_only_the_viewers_own() -> None:
    b, s, first = await confirmed_order()
    _, _, second = await confirmed_order(b, s)
    _, _, foreign = await confirmed_order()
    mine, has_next = await orders.list_orders(b.principal, first=10, after_id=None)
    assert [o.id for o in mine] == [second.id, first.id] and not has_next
    supplier_view, _ = await orders.list_orders(s.principal, first=1, after_id=None)
    assert [o.id for o in supplier_view] == [second.id]
    page2, _ = await orders.list_orders(s.principal, first=1, after_id=second.id)
    assert [o.id for o in page2] == [first.id]
    assert foreign.id not in {o.id for o in mine}


async def test_list_orders_filters_by_creation_time_and_status(
    frozen_clock: clock.FrozenClock,
) -> None:
    b, s, early = await confirmed_order()
    frozen_clock.advance(days=2)
    _, _, late = await confirmed_order(b, s)
    await orders.cancel_order(b.principal, late.id, "not needed")
    cut = early.created_at + dt.timedelta(days=1)

    async def ids(**filters: Any) -> list[int]:
        found, _ = await orders.list_orders(b.principal, first=10, after_id=None, **filters)
        return [o.id for o in found]

    assert await ids(created_from=cut) == [late.id]
    assert await ids(created_to=cut) == [early.id]
    assert await ids(created_from=early.created_at, created_to=late.created_at) == [early.id]
    assert await ids(statuses=[OrderStatus.CANCELLED]) == [late.id]
    both = [OrderStatus.CANCELLED, OrderStatus.AWAITING_INITIAL_PAYMENT]
    assert await ids(statuses=both) == [late.id, early.id]


def _with_quality(*quality: orders.Quality, specification: str = "40 W") -> orders.Contract:
    terms = contract()
    line = dataclasses.replace(terms.lines[0], specification=specification)
    return dataclasses.replace(terms, lines=(line,), quality=quality)


@pytest.mark.parametrize(
    ("terms", "field"),
    [
        # A Varchar(200) column: PostgreSQL failed inside the INSERT ("Internal error."),
        # SQLite stored it.
        (_with_quality(orders.Quality("a" * 201, "x")), "qualityRequirements.0.attribute"),
        (_with_quality(orders.Quality("flux", "r" * 4_001)), "qualityRequirements.0.requirement"),
        (_with_quality(specification="s" * 4_001), "lines.0.specification"),
        (_with_quality(*[orders.Quality(f"a{n}", "x") for n in range(101)]), "qualityRequirements"),
    ],
    ids=["attribute", "requirement", "specification", "too-many-requirements"],
)
async def test_over_long_contract_text_is_refused(terms: orders.Contract, field: str) -> None:
    b, s = await buyer(), await supplier(trade_assurance_limit_minor=100_000_00)
    with pytest.raises(DomainError) as e:
        await orders.create_order(b.principal, terms, supplier_id=s.supplier_id)
    assert (e.value.code, e.value.field) == (ErrorCode.INVALID_INPUT, field)
    assert await Order.count() == 0


async def test_contract_text_at_its_limits_is_stored_on_every_engine() -> None:
    b, s = await buyer(), await supplier(trade_assurance_limit_minor=100_000_00)
    longest = orders.Quality(" " + "a" * 200 + " ", "r" * 4_000)  # counted once stripped
    rest = [orders.Quality(f"attribute {n}", "x") for n in range(99)]
    terms = _with_quality(longest, *rest, specification="s" * 4_000)
    order = await orders.create_order(b.principal, terms, supplier_id=s.supplier_id)
    quality = (await orders.quality_of([order.id]))[order.id]
    assert len(quality) == 100
    assert (quality[0].attribute, quality[0].requirement) == ("a" * 200, "r" * 4_000)
    [line] = (await orders.lines_of([order.id]))[order.id]
    assert line.specification == "s" * 4_000


async def test_over_long_reasons_are_refused_and_change_nothing() -> None:
    b, s, order = await confirmed_order()
    with pytest.raises(DomainError) as e:
        await orders.propose_modification(s.principal, order.id, contract(quantity=3), "x" * 4_001)
    assert (e.value.code, e.value.field) == (ErrorCode.INVALID_INPUT, "reason")
    with pytest.raises(DomainError) as e:
        await orders.cancel_order(b.principal, order.id, "x" * 4_001)
    assert (e.value.code, e.value.field) == (ErrorCode.INVALID_INPUT, "reason")
    assert await _events(order.id) == [
        ("CREATED", None, "PENDING_CONFIRMATION"),
        ("CONFIRMED", "PENDING_CONFIRMATION", "AWAITING_INITIAL_PAYMENT"),
    ]
    # At the limit, once stripped, both are kept whole.
    proposal = await orders.propose_modification(
        s.principal, order.id, contract(quantity=3), " " + "p" * 4_000 + "\n"
    )
    assert proposal.reason == "p" * 4_000
    cancelled = await orders.cancel_order(b.principal, order.id, "c" * 4_000)
    assert cancelled.status == OrderStatus.CANCELLED
    last = (
        await OrderEvent.objects()
        .where(OrderEvent.order == order.id)
        .order_by(OrderEvent.id, ascending=False)
        .first()
    )
    assert last is not None and (last.kind, last.reason) == ("CANCELLED", "c" * 4_000)


async def test_a_modification_never_cuts_the_coverage_fixed_at_confirmation() -> None:
    # After the supplier's limit was cut to 2,000, editing one quality requirement of an
    # 8,000 order used to cut its coverage to 2,000, below the 4,000 already paid for.
    s = await supplier(trade_assurance_limit_minor=10_000_00)
    terms = contract(unit_price_minor=4_000_00, quantity=2, initial_payment_minor=4_000_00)
    b, _, order = await confirmed_order(supplier_actor=s, terms=terms)
    assert (order.coverage_cap_minor, order.limit_reserved_minor) == (8_000_00, 8_000_00)
    await SupplierProfile.update({SupplierProfile.ta_limit_minor: 2_000_00}).where(
        SupplierProfile.id == s.supplier_id
    )
    reworded = dataclasses.replace(terms, quality=(orders.Quality("flux", ">= 3700 lm"),))
    proposal = await orders.propose_modification(b.principal, order.id, reworded, "typo")
    kept = await orders.accept_modification(s.principal, proposal.id)
    assert (kept.coverage_cap_minor, kept.limit_reserved_minor) == (8_000_00, 8_000_00)
    # A larger total gets no more than it held (the limit has nothing left to add) ...
    larger = dataclasses.replace(terms, lines=(orders.Line("LED", 3, 4_000_00),))
    proposal = await orders.propose_modification(b.principal, order.id, larger, "one more")
    grown = await orders.accept_modification(s.principal, proposal.id)
    assert (grown.total_minor, grown.coverage_cap_minor) == (12_000_00, 8_000_00)
    # ... and a smaller one gives back what it no longer needs.
    smaller = dataclasses.replace(terms, lines=(orders.Line("LED", 1, 5_000_00),))
    proposal = await orders.propose_modification(b.principal, order.id, smaller, "one less")
    shrunk = await orders.accept_modification(s.principal, proposal.id)
    assert (shrunk.coverage_cap_minor, shrunk.limit_reserved_minor) == (5_000_00, 5_000_00)
