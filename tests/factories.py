"""Ready-made companies and people, created through the domain functions themselves."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools

from models import accounts, clock, orders
from models.accounts import Principal
from models.db import write_transaction
from models.enums import (
    CompanyKind,
    Incoterm,
    Role,
    ShippingMethod,
    TradeAssuranceStatus,
    Verification,
)
from models.suppliers import seed_profile, supplier_id_of_company
from models.tables import Order, SupplierProfile

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
