"""Ready-made companies and people, created through the domain functions themselves."""

from __future__ import annotations

import dataclasses
import itertools

from models import accounts
from models.accounts import Principal
from models.db import write_transaction
from models.enums import CompanyKind, Role, TradeAssuranceStatus, Verification
from models.suppliers import seed_profile, supplier_id_of_company
from models.tables import SupplierProfile

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
