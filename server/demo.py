"""Demo data: 240 suppliers across countries and categories, buyers, inspectors, a mediator.

Idempotent: everything is created in one transaction, and only if the demo mediator does
not exist yet, so a second run (or a run after a crash) never duplicates anything.
"""

from __future__ import annotations

import random

from tqdm import tqdm

from models import clock
from models.accounts import create_company, create_user
from models.db import write_transaction
from models.enums import CompanyKind, Role, TradeAssuranceStatus, Verification
from models.suppliers import seed_profile
from models.tables import InspectorProfile, SupplierProfile, UserAccount

DEMO_PASSWORD = "demo-password-2026"  # noqa: S105 - published demo credentials
SUPPLIER_COUNT = 240

CATEGORIES: dict[str, list[str]] = {
    "LED Lighting": ["led", "led strip", "led bulb", "panel light", "floodlight", "lamp"],
    "Consumer Electronics": ["earbuds", "power bank", "charger", "smart watch", "speaker"],
    "Textiles": ["cotton fabric", "denim", "polyester", "t-shirt", "yarn"],
    "Industrial Machinery": ["cnc machine", "lathe", "pump", "compressor", "gearbox"],
    "Furniture": ["office chair", "sofa", "desk", "cabinet", "bed frame"],
    "Packaging": ["carton box", "pouch", "pallet wrap", "label", "bottle"],
    "Auto Parts": ["brake pad", "spark plug", "headlight", "filter", "bearing"],
    "Solar Energy": ["solar panel", "inverter", "battery", "led solar light", "charge controller"],
    "Home Appliances": ["blender", "air fryer", "kettle", "fan", "vacuum cleaner"],
    "Hardware & Tools": ["drill", "wrench", "fastener", "hinge", "saw blade"],
}
COUNTRIES = ["CN", "DE", "IN", "VN", "TR", "US", "IT", "MX", "BR", "PL", "TW", "KR", "TH", "ES"]
NAME_PARTS = (
    [
        "Shenzhen",
        "Bavaria",
        "Rhine",
        "Mumbai",
        "Hanoi",
        "Anatolia",
        "Lombardy",
        "Pacific",
        "Northern",
        "Golden",
        "Eastern",
        "Alpine",
        "Delta",
        "Harbor",
        "Summit",
        "Bright",
    ],
    [
        "Star",
        "Light",
        "Tech",
        "Works",
        "Industrial",
        "Trading",
        "Manufacturing",
        "Source",
        "Precision",
        "Global",
        "Crafts",
        "Solutions",
    ],
)
# The legal-form suffix follows the country, as a real register would.
LEGAL_FORM = {
    "CN": "Co., Ltd.",
    "DE": "GmbH",
    "IN": "Pvt. Ltd.",
    "VN": "JSC",
    "TR": "A.S.",
    "US": "Inc.",
    "IT": "S.r.l.",
    "MX": "S.A. de C.V.",
    "BR": "Ltda.",
    "PL": "Sp. z o.o.",
    "TW": "Co., Ltd.",
    "KR": "Co., Ltd.",
    "TH": "Co., Ltd.",
    "ES": "S.L.",
}
MEDIATOR_EMAIL = "mediator@demo.trade-assurance.test"
# The inspection companies Alibaba accepts, with their fee per inspection (USD cents).
INSPECTOR_FEES = {
    "inspector.sgs@demo.trade-assurance.test": 298_00,
    "inspector.tuv@demo.trade-assurance.test": 320_00,
    "inspector.bv@demo.trade-assurance.test": 285_00,
}
LOGINS: list[tuple[str, str, str]] = [
    ("BUYER", "buyer.us@demo.trade-assurance.test", "Acme Imports LLC (US)"),
    ("BUYER", "buyer.br@demo.trade-assurance.test", "Rio Distribuidora Ltda. (BR)"),
    ("BUYER", "buyer.de@demo.trade-assurance.test", "Hanse Einkauf GmbH (DE)"),
    ("SUPPLIER", "supplier@demo.trade-assurance.test", "Rhine Light Works GmbH (DE)"),
    ("INSPECTOR", "inspector.sgs@demo.trade-assurance.test", "SGS"),
    ("INSPECTOR", "inspector.tuv@demo.trade-assurance.test", "TÜV Rheinland"),
    ("INSPECTOR", "inspector.bv@demo.trade-assurance.test", "Bureau Veritas"),
    ("MEDIATOR", MEDIATOR_EMAIL, "Trade Assurance Platform"),
]


def _company_name(rng: random.Random, n: int, country: str) -> str:
    first, second = (rng.choice(part) for part in NAME_PARTS)
    return f"{first} {second} {n:03d} {LEGAL_FORM[country]}"


async def _supplier(rng: random.Random, n: int, name: str, country: str) -> None:
    company = await create_company(name, CompanyKind.SUPPLIER, country)
    main = rng.choice(list(CATEGORIES))
    categories = [main, *rng.sample([c for c in CATEGORIES if c != main], rng.randint(0, 2))]
    keywords = rng.sample(CATEGORIES[main], 3) + rng.sample(
        [k for c in categories[1:] for k in CATEGORIES[c]] or CATEGORIES[main], 1
    )
    gold = rng.random() < 0.6
    verification = rng.choice(list(Verification)) if gold else Verification.NONE
    profile = await seed_profile(
        company.id,
        categories=categories,
        keywords=keywords,
        gold=gold,
        verification=verification,
        rating=round(rng.uniform(3.0, 5.0), 1),
        response_rate=rng.randint(60, 100),
        year_joined=rng.randint(2008, 2025),
    )
    if gold and verification is not Verification.NONE and rng.random() < 0.75:
        await SupplierProfile.update(
            {
                SupplierProfile.ta_status: TradeAssuranceStatus.ACTIVE.value,
                SupplierProfile.ta_limit_minor: rng.choice([10_000, 50_000, 120_000, 500_000])
                * 100,
                SupplierProfile.ta_limit_currency: "USD",
                SupplierProfile.ta_since: clock.now(),
            }
        ).where(SupplierProfile.id == profile.id)


async def set_inspector_fees() -> None:
    """Give the demo inspection companies their fees (idempotent; also fixes up demo data
    seeded before inspections existed)."""
    async with write_transaction():
        for email, fee in INSPECTOR_FEES.items():
            user = (
                await UserAccount.select(UserAccount.company)
                .where(UserAccount.email == email)
                .first()
            )
            if user is None:
                continue
            company, now = user["company"], clock.now()
            if await InspectorProfile.exists().where(InspectorProfile.company == company):
                await InspectorProfile.update(
                    {
                        InspectorProfile.fee_minor: fee,
                        InspectorProfile.fee_currency: "USD",
                        InspectorProfile.updated_at: now,
                    }
                ).where(InspectorProfile.company == company)
            else:
                await InspectorProfile(
                    company=company, fee_minor=fee, fee_currency="USD", updated_at=now
                ).save()


async def seed_demo() -> bool:
    """Create the demo data unless it is there; returns whether anything was created."""
    if await UserAccount.exists().where(UserAccount.email == MEDIATOR_EMAIL):
        await set_inspector_fees()
        print("demo data already present")
        return False
    rng = random.Random(2026)
    async with write_transaction():
        buyers = [
            ("Acme Imports LLC", "US"),
            ("Rio Distribuidora Ltda.", "BR"),
            ("Hanse Einkauf GmbH", "DE"),
        ]
        for (name, country), (_, email, _) in zip(buyers, LOGINS[:3], strict=True):
            await create_user(
                email=email,
                password=DEMO_PASSWORD,
                full_name=f"{name} buyer",
                role=Role.BUYER,
                company_name=name,
                country=country,
            )
        # The demo supplier login: a German LED maker, Gold, assessed, with Trade Assurance.
        await create_user(
            email=LOGINS[3][1],
            password=DEMO_PASSWORD,
            full_name="Rhine sales",
            role=Role.SUPPLIER,
            company_name="Rhine Light Works GmbH",
            country="DE",
        )
        rhine = (
            await UserAccount.select(UserAccount.company)
            .where(UserAccount.email == LOGINS[3][1])
            .first()
        )
        assert rhine is not None
        profile = await seed_profile(
            rhine["company"],
            categories=["LED Lighting"],
            keywords=["led", "led strip", "led panel", "industrial lamp"],
            gold=True,
            verification=Verification.ASSESSED,
            rating=4.8,
            response_rate=97,
            year_joined=2012,
        )
        await SupplierProfile.update(
            {
                SupplierProfile.ta_status: TradeAssuranceStatus.ACTIVE.value,
                SupplierProfile.ta_limit_minor: 250_000_00,
                SupplierProfile.ta_limit_currency: "USD",
                SupplierProfile.ta_since: clock.now(),
            }
        ).where(SupplierProfile.id == profile.id)
        for role, email, name in LOGINS[4:7]:
            await create_user(
                email=email,
                password=DEMO_PASSWORD,
                full_name=f"{name} desk",
                role=Role(role),
                company_name=name,
                country="CH",
            )
        await create_user(
            email=MEDIATOR_EMAIL,
            password=DEMO_PASSWORD,
            full_name="Demo Mediator",
            role=Role.MEDIATOR,
            country="SG",
        )
        # A progress bar on a terminal only (disable=None): logs and pipes stay plain.
        for n in tqdm(range(SUPPLIER_COUNT), "demo suppliers", unit="supplier", disable=None):
            # Every fourth supplier is German, so the "led in Germany" search has results.
            country = "DE" if n % 4 == 0 else rng.choice(COUNTRIES)
            await _supplier(rng, n, _company_name(rng, n, country), country)
    await set_inspector_fees()
    return True


def print_logins() -> None:
    print(f"\nDemo logins (password for all: {DEMO_PASSWORD})")
    for role, email, name in LOGINS:
        print(f"  {role:<9} {email:<42} {name}")
    print()
