"""Ready-made companies and people, created through the domain functions themselves."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import uuid

from models import accounts, clock, ledger, orders
from models.accounts import Principal
from models.db import write_transaction
from models.enums import (
    CompanyKind,
    DeadlineKind,
    Incoterm,
    OrderStatus,
    PaymentMethod,
    PaymentStatus,
    Role,
    ShippingMethod,
    TradeAssuranceStatus,
    Verification,
)
from models.suppliers import seed_profile, supplier_id_of_company
from models.tables import LedgerPosting, Order, Payment, SupplierProfile

PASSWORD = "correct horse battery"
_serial = itertools.count(1)


@dataclasses.dataclass
class Actor:
    principal: Principal
    token: str
    email: str
    supplier_id: int | None = None


async def buyer(country: str = "US", name: str | None = None) -> Actor:
    n = next(_serial)
    email = f"buyer{n}@example.com"
    _, token, _ = await accounts.register(
        company_name=name or f"Buyer {n} Inc.",
        kind=CompanyKind.BUYER,
        country=country,
        email=email,
        password=PASSWORD,
        full_name=f"Buyer {n}",
    )
    return Actor(await accounts.authenticate(token), token, email)


async def supplier(
    *,
    country: str = "CN",
    name: str | None = None,
    gold: bool = True,
    verification: Verification = Verification.VERIFIED,
    categories: tuple[str, ...] = ("LED Lighting",),
    keywords: tuple[str, ...] = ("led strip", "panel light"),
    rating: float = 4.5,
    trade_assurance_limit_minor: int | None = None,
) -> Actor:
    """A supplier company with a profile; with a limit, Trade Assurance is already active."""
    n = next(_serial)
    email = f"supplier{n}@example.com"
    _, token, _ = await accounts.register(
        company_name=name or f"Supplier {n} Co., Ltd.",
        kind=CompanyKind.SUPPLIER,
        country=country,
        email=email,
        password=PASSWORD,
        full_name=f"Supplier {n}",
    )
    principal = await accounts.authenticate(token)
    async with write_transaction():
        await seed_profile(
            principal.company_id,
            categories=categories,
            keywords=keywords,
            gold=gold,
            verification=verification,
            rating=rating,
            response_rate=90,
            year_joined=2015,
        )
    supplier_id = await supplier_id_of_company(principal.company_id)
    if trade_assurance_limit_minor is not None:
        await SupplierProfile.update(
            {
                SupplierProfile.ta_status: TradeAssuranceStatus.ACTIVE.value,
                SupplierProfile.ta_limit_minor: trade_assurance_limit_minor,
                SupplierProfile.ta_limit_currency: "USD",
            }
        ).where(SupplierProfile.id == supplier_id)
    return Actor(principal, token, email, supplier_id)


async def staff(role: Role = Role.MEDIATOR) -> Actor:
    n = next(_serial)
    email = f"staff{n}@example.com"
    await accounts.create_user(
        email=email,
        password=PASSWORD,
        full_name=f"Staff {n}",
        role=role,
        company_name=f"{role.value.title()} Company {n}",
        country="CH",
    )
    _, token, _ = await accounts.login(email, PASSWORD)
    return Actor(await accounts.authenticate(token), token, email)


async def inspector(name: str | None = None) -> Actor:
    """An inspection company (at the default fee, 300.00 USD) and its user."""
    n = next(_serial)
    email = f"inspector{n}@example.com"
    await accounts.create_user(
        email=email,
        password=PASSWORD,
        full_name=f"Inspector {n}",
        role=Role.INSPECTOR,
        company_name=name or f"Inspection Services {n} SA",
        country="CH",
    )
    _, token, _ = await accounts.login(email, PASSWORD)
    return Actor(await accounts.authenticate(token), token, email)


def contract(
    *,
    currency: str = "USD",
    unit_price_minor: int = 1_500_00,
    quantity: int = 2,
    initial_payment_minor: int = 1_500_00,
    days_to_ship: int = 30,
) -> orders.Contract:
    """A small LED order: 2 x 1,500.00 USD, 1,500.00 up front (DOMAIN.md's example)."""
    return orders.Contract(
        currency=currency,
        lines=(orders.Line("LED panel 600x600", quantity, unit_price_minor, "40 W, 4000 K"),),
        quality=(orders.Quality("luminous flux", ">= 3600 lm per panel"),),
        incoterm=Incoterm.FOB,
        shipping_method=ShippingMethod.SEA,
        destination_country="DE",
        shipping_deadline=clock.now() + dt.timedelta(days=days_to_ship),
        initial_payment_minor=initial_payment_minor,
    )


async def confirmed_order(
    buyer_actor: Actor | None = None,
    supplier_actor: Actor | None = None,
    terms: orders.Contract | None = None,
) -> tuple[Actor, Actor, Order]:
    """A buyer's order with a Trade Assurance supplier, confirmed by the supplier."""
    buyer_actor = buyer_actor or await buyer()
    supplier_actor = supplier_actor or await supplier(trade_assurance_limit_minor=100_000_00)
    assert supplier_actor.supplier_id is not None
    order = await orders.create_order(
        buyer_actor.principal,
        terms or contract(),
        supplier_id=supplier_actor.supplier_id,
    )
    order = await orders.confirm_order(supplier_actor.principal, order.id)
    return buyer_actor, supplier_actor, order


# --- many orders at once, straight into the tables (deadline sweeps, benchmarks) ---------

BULK_CHUNK = 500
BULK_TOTAL_MINOR = 1_000_00


def _bulk_row(
    kind: DeadlineKind | None, due: bool, now: dt.datetime, buyer_company: int, supplier: int
) -> Order:
    """An order as the transitions would have left it waiting for deadline `kind` (due at
    or before `now` when `due`, weeks away otherwise); `kind` None: a completed order."""
    day = dt.timedelta(days=1)
    offset = -dt.timedelta(minutes=1) if due else 20 * day
    confirmed = now - 60 * day
    order = Order(
        buyer=buyer_company,
        supplier=supplier,
        drafted_by=Role.BUYER.value,
        currency="USD",
        total_minor=BULK_TOTAL_MINOR,
        initial_minor=0,
        incoterm=Incoterm.FOB.value,
        shipping_method=ShippingMethod.SEA.value,
        destination_country="DE",
        shipping_deadline=now + 40 * day,
        payment_deadline=confirmed + 7 * day,
        coverage_cap_minor=BULK_TOTAL_MINOR,
        limit_reserved_minor=BULK_TOTAL_MINOR,
        limit_currency="USD",
        exchange_rate="1",
        version=1,
        created_at=confirmed,
        confirmed_at=confirmed,
        updated_at=confirmed,
    )
    if kind is DeadlineKind.PAYMENT:
        order.status = OrderStatus.AWAITING_BALANCE.value
        order.payment_deadline = now + offset
        order.next_deadline_at = order.payment_deadline
    elif kind is DeadlineKind.SHIPPING:
        order.status = OrderStatus.PAID.value
        order.shipping_deadline = now + offset
        order.next_deadline_at = order.shipping_deadline
    elif kind is DeadlineKind.RECEIPT:
        order.status = OrderStatus.SHIPPED.value
        order.shipping_deadline = now - 40 * day
        order.shipped_at = now + offset - 45 * day  # sea: receipt 45 days after shipment
        order.shipment_recorded_at = order.shipped_at
        order.carrier, order.tracking_number = "Maersk", "MAEU0000001"
        order.shipment_method = ShippingMethod.SEA.value
        order.next_deadline_at = order.shipped_at + 45 * day
    elif kind is DeadlineKind.CLAIM_WINDOW:
        order.status = OrderStatus.RECEIVED.value
        order.shipping_deadline = now - 50 * day
        order.shipped_at = now - 55 * day
        order.shipment_method = ShippingMethod.SEA.value
        order.carrier, order.tracking_number = "Maersk", "MAEU0000002"
        order.received_at = now + offset - 30 * day
        order.claim_window_ends_at = now + offset
        order.next_deadline_at = order.claim_window_ends_at
    else:
        order.status = OrderStatus.COMPLETED.value
        order.shipping_deadline = now - 90 * day
    return order


async def bulk_orders(
    buyer_company: int,
    supplier_id: int,
    counts: dict[DeadlineKind | None, int],
    *,
    now: dt.datetime,
    due: bool = True,
) -> dict[DeadlineKind | None, list[int]]:
    """`counts[kind]` orders waiting for each deadline kind, in bulk inserts (chunks of
    BULK_CHUNK rows); every order past payment has its total in escrow (a successful card
    payment and its balanced posting), so releases and refunds have money to move."""
    out: dict[DeadlineKind | None, list[int]] = {}
    for kind, count in counts.items():
        ids: list[int] = []
        for start in range(0, count, BULK_CHUNK):
            rows = [
                _bulk_row(kind, due, now, buyer_company, supplier_id)
                for _ in range(min(BULK_CHUNK, count - start))
            ]
            async with write_transaction():
                inserted = await Order.insert(*rows).returning(Order.id)
                chunk = [int(r["id"]) for r in inserted]
                if kind not in (None, DeadlineKind.PAYMENT):
                    await _bulk_payments(chunk, now)
            ids += chunk
        out[kind] = ids
    return out


async def _bulk_payments(order_ids: list[int], now: dt.datetime) -> None:
    paid_at = now - dt.timedelta(days=59)
    await Payment.insert(
        *[
            Payment(
                order=i,
                method=PaymentMethod.TT.value,
                status=PaymentStatus.SUCCEEDED.value,
                currency="USD",
                amount_minor=BULK_TOTAL_MINOR,
                fee_minor=0,
                created_at=paid_at,
                settled_at=paid_at,
            )
            for i in order_ids
        ]
    )
    postings = []
    for i in order_ids:
        txn = str(uuid.uuid4())
        for account, amount in (
            (ledger.provider_clearing(PaymentMethod.TT), BULK_TOTAL_MINOR),
            (ledger.escrow(i), -BULK_TOTAL_MINOR),
        ):
            postings.append(
                LedgerPosting(
                    txn=txn,
                    kind=ledger.PostingKind.PAYMENT.value,
                    order=i,
                    account=account,
                    currency="USD",
                    amount_minor=amount,
                    created_at=paid_at,
                )
            )
    await LedgerPosting.insert(*postings)
