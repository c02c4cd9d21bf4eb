"""The supplier directory: full-text search, filters, ordering, profile edits, standing."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from piccolo.engine.postgres import PostgresEngine

from models import accounts, db, suppliers
from models.accounts import Principal
from models.enums import Role, Scope, TradeAssuranceStatus, Verification
from models.errors import DomainError, ErrorCode
from models.money import Money
from models.suppliers import SupplierFilter, SupplierOrder
from models.tables import SupplierCategory, SupplierProfile
from tests import factories
from tests.conftest import ENGINE
from tests.factories import Actor


@dataclasses.dataclass
class Directory:
    bright: Actor  # CN, LED, Trade Assurance 500k, rating 4.8
    leuchten: Actor  # DE, LED, Trade Assurance 100k, rating 4.2, assessed
    tools: Actor  # DE, hand tools, not Gold, unverified, rating 3.9
    ledger: Actor  # GB, office supplies ("ledger" starts with "led"), rating 4.0


@pytest.fixture
async def directory() -> Directory:
    return Directory(
        bright=await factories.supplier(
            name="Shenzhen Bright Co., Ltd.",
            country="CN",
            categories=("LED Lighting",),
            keywords=("LED strip", "panel light"),
            rating=4.8,
            trade_assurance_limit_minor=50_000_000,
        ),
        leuchten=await factories.supplier(
            name="Berliner Leuchten GmbH",
            country="DE",
            categories=("LED Lighting", "Lamps"),
            keywords=("LED bulb", "desk lamp"),
            rating=4.2,
            verification=Verification.ASSESSED,
            trade_assurance_limit_minor=10_000_000,
        ),
        tools=await factories.supplier(
            name="Munich Tools AG",
            country="DE",
            categories=("Hand Tools",),
            keywords=("wrench", "hammer"),
            rating=3.9,
            gold=False,
            verification=Verification.NONE,
        ),
        ledger=await factories.supplier(
            name="Ledger Paper Ltd",
            country="GB",
            categories=("Office Supplies",),
            keywords=("notebook", "paper"),
            rating=4.0,
        ),
    )


async def found(flt: SupplierFilter, order: SupplierOrder = SupplierOrder.RATING) -> list[int]:
    """Ids of every match in order, checking that the count agrees with the page."""
    page = await suppliers.search_suppliers(flt, order, first=100, offset=0)
    assert not page.has_next
    ids = [s.id for s in page.suppliers]
    assert await suppliers.count_suppliers(flt) == len(ids)
    return ids


def ids(*actors: Actor) -> list[int]:
    return [a.supplier_id or 0 for a in actors]


async def test_prefix_text_matches_keywords_categories_and_names(directory: Directory) -> None:
    d = directory
    # "led" is a prefix of LED (keywords, categories) and of "Ledger" (a legal name).
    assert await found(SupplierFilter(text="led")) == ids(d.bright, d.leuchten, d.ledger)
    assert await found(SupplierFilter(text="LIGHT")) == ids(d.bright, d.leuchten)
    assert await found(SupplierFilter(text="wren")) == ids(d.tools)
    assert await found(SupplierFilter(text="leuchten")) == ids(d.leuchten)
    assert await found(SupplierFilter(text="munich")) == ids(d.tools)
    assert await found(SupplierFilter(text="nothing-like-this")) == []


async def test_every_word_must_match(directory: Directory) -> None:
    d = directory
    assert await found(SupplierFilter(text="led strip")) == ids(d.bright)
    assert await found(SupplierFilter(text="LED, bulb!")) == ids(d.leuchten)
    assert await found(SupplierFilter(text="led lamp")) == ids(d.leuchten)
    assert await found(SupplierFilter(text="led hammer")) == []
    assert await found(SupplierFilter(text="paper ledg")) == ids(d.ledger)


async def test_no_text_and_punctuation_only_text_match_everyone(directory: Directory) -> None:
    everyone = await found(SupplierFilter())
    assert len(everyone) == 4
    assert await found(SupplierFilter(text=" ?! ")) == everyone


async def test_filters(directory: Directory) -> None:
    d = directory
    assert await found(SupplierFilter(trade_assurance_only=True)) == ids(d.bright, d.leuchten)
    assert await found(SupplierFilter(country="de")) == ids(d.leuchten, d.tools)
    assert await found(SupplierFilter(category="led lighting")) == ids(d.bright, d.leuchten)
    assert await found(SupplierFilter(category=" LAMPS ")) == ids(d.leuchten)
    assert await found(SupplierFilter(category="Lighting")) == []  # a category, not a word
    assert await found(SupplierFilter(gold_only=True)) == ids(d.bright, d.leuchten, d.ledger)
    assert await found(SupplierFilter(verification=[Verification.NONE])) == ids(d.tools)
    assert await found(
        SupplierFilter(verification=[Verification.VERIFIED, Verification.ASSESSED])
    ) == ids(d.bright, d.leuchten, d.ledger)
    assert await found(SupplierFilter(min_rating=4.2)) == ids(d.bright, d.leuchten)
    assert await found(SupplierFilter(min_rating=5.0)) == []


async def test_invalid_country_filter_is_refused(directory: Directory) -> None:
    with pytest.raises(DomainError) as e:
        await suppliers.count_suppliers(SupplierFilter(country="XX"))
    assert e.value.code is ErrorCode.INVALID_COUNTRY
    assert e.value.field == "filter.country"


async def test_combined_filters(directory: Directory) -> None:
    d = directory
    newcomer = SupplierFilter(text="led", country="DE", trade_assurance_only=True)
    assert await found(newcomer) == ids(d.leuchten)
    assert await found(dataclasses.replace(newcomer, country="CN")) == ids(d.bright)
    assert await found(dataclasses.replace(newcomer, min_rating=4.5)) == []
    assert await found(
        SupplierFilter(text="led", gold_only=True, verification=[Verification.VERIFIED])
    ) == ids(d.bright, d.ledger)
    assert await found(SupplierFilter(country="DE", gold_only=True, category="hand tools")) == []


async def test_order_by_rating_and_by_trade_assurance_limit(directory: Directory) -> None:
    d = directory
    assert await found(SupplierFilter(), SupplierOrder.RATING) == ids(
        d.bright, d.leuchten, d.ledger, d.tools
    )
    # Largest limit first; suppliers without a limit last, by rating.
    await SupplierProfile.update({SupplierProfile.ta_limit_minor: 90_000_000}).where(
        SupplierProfile.id == d.leuchten.supplier_id
    )
    assert await found(SupplierFilter(), SupplierOrder.TRADE_ASSURANCE_LIMIT) == ids(
        d.leuchten, d.bright, d.ledger, d.tools
    )


async def test_relevance_puts_the_better_text_match_first() -> None:
    weak = await factories.supplier(
        name="Usb World",
        categories=("Electronics",),
        keywords=("usb cable", "hdmi", "charger"),
        rating=5.0,
    )
    strong = await factories.supplier(
        name="Cable House",
        categories=("Cables",),
        keywords=("cable lamp", "cable reel"),
        rating=3.0,
    )
    other = await factories.supplier(name="Unrelated", keywords=("glass",), rating=4.0)
    flt = SupplierFilter(text="cable lamp")
    assert await found(flt, SupplierOrder.RELEVANCE) == ids(strong)
    flt = SupplierFilter(text="lamp")
    assert await found(flt, SupplierOrder.RELEVANCE) == ids(strong)
    flt = SupplierFilter(text="cable")
    assert await found(flt, SupplierOrder.RELEVANCE) == ids(strong, weak)
    assert await found(flt, SupplierOrder.RATING) == ids(weak, strong)
    # Without text, relevance falls back to rating.
    assert await found(SupplierFilter(), SupplierOrder.RELEVANCE) == ids(weak, other, strong)


@pytest.mark.parametrize("order", list(SupplierOrder))
async def test_pages_are_consistent_and_never_repeat(order: SupplierOrder) -> None:
    for n, rating in enumerate([4.0, 4.5, 4.0, 3.0, 4.5, 4.0, 5.0]):
        await factories.supplier(
            keywords=("led strip",),
            rating=rating,
            trade_assurance_limit_minor=None if n % 3 == 0 else 1_000_000 * (n % 2 + 1),
        )
    flt = SupplierFilter(text="led")
    whole = await found(flt, order)
    assert len(whole) == 7
    seen: list[int] = []
    offset = 0
    while True:
        page = await suppliers.search_suppliers(flt, order, first=3, offset=offset)
        assert page.offset == offset
        seen += [s.id for s in page.suppliers]
        assert page.has_next == (len(seen) < 7)
        if not page.has_next:
            break
        offset += 3
    assert seen == whole
    beyond = await suppliers.search_suppliers(flt, order, first=3, offset=7)
    assert (beyond.suppliers, beyond.has_next) == ([], False)


async def test_update_profile_changes_what_the_index_finds(directory: Directory) -> None:
    d = directory
    supplier_id = await suppliers.update_profile(
        d.tools.principal,
        categories=["Power Tools", "power tools ", "Hand  Tools"],
        keywords=["cordless drill"],
    )
    assert supplier_id == d.tools.supplier_id
    assert await found(SupplierFilter(text="wrench")) == []
    assert await found(SupplierFilter(text="cordless dri")) == ids(d.tools)
    assert await found(SupplierFilter(text="munich")) == ids(d.tools)  # the name stays indexed
    assert await found(SupplierFilter(category="power tools")) == ids(d.tools)
    assert await found(SupplierFilter(category="hand tools")) == ids(d.tools)
    entry = (await suppliers.get_suppliers([supplier_id]))[supplier_id]
    assert entry.categories == ["Power Tools", "Hand Tools"]
    assert entry.keywords == ["cordless drill"]
    # Only the keywords change: the categories stay.
    await suppliers.update_profile(d.tools.principal, keywords=["saw"])
    assert await found(SupplierFilter(text="drill")) == []
    assert await found(SupplierFilter(text="saw", category="Power Tools")) == ids(d.tools)
    assert await SupplierCategory.count().where(SupplierCategory.supplier == supplier_id) == 2


async def profile_state(supplier_id: int | None) -> tuple[object, ...]:
    row = await SupplierProfile.select().where(SupplierProfile.id == supplier_id).first()
    categories = await SupplierCategory.select(SupplierCategory.category).where(
        SupplierCategory.supplier == supplier_id
    )
    assert row is not None
    return row, sorted(c["category"] for c in categories)


async def test_update_profile_refusals_change_nothing(directory: Directory) -> None:
    d = directory
    shopper = await factories.buyer()
    mediator = await factories.staff(Role.MEDIATOR)
    _, secret = await accounts.create_api_key_for(d.tools.principal, "ERP", list(Scope), None)
    partner = await accounts.authenticate(secret)
    before = await profile_state(d.tools.supplier_id)
    attempts: list[tuple[Principal, list[str] | None, list[str] | None, ErrorCode]] = [
        (shopper.principal, None, ["led"], ErrorCode.FORBIDDEN),
        (mediator.principal, None, ["led"], ErrorCode.FORBIDDEN),
        (partner, None, ["led"], ErrorCode.FORBIDDEN),
        (d.tools.principal, [f"C{i}" for i in range(21)], None, ErrorCode.INVALID_INPUT),
        (d.tools.principal, None, [f"k{i}" for i in range(51)], ErrorCode.INVALID_INPUT),
        (d.tools.principal, ["Ok"], ["x" * 101], ErrorCode.INVALID_INPUT),
    ]
    for principal, categories, keywords, code in attempts:
        with pytest.raises(DomainError) as e:
            await suppliers.update_profile(principal, categories=categories, keywords=keywords)
        assert e.value.code is code
    assert await profile_state(d.tools.supplier_id) == before
    assert await found(SupplierFilter(text="wrench")) == ids(d.tools)
    # The limits themselves are allowed (20 categories counted after de-duplication).
    await suppliers.update_profile(
        d.tools.principal, categories=[f"C{i}" for i in range(20)] + ["c0"]
    )


async def test_set_standing_by_mediator_only(directory: Directory) -> None:
    d = directory
    mediator = await factories.staff(Role.MEDIATOR)
    before = await profile_state(d.tools.supplier_id)
    for principal in (d.tools.principal, (await factories.buyer()).principal):
        with pytest.raises(DomainError) as e:
            await suppliers.set_standing(principal, d.tools.supplier_id or 0, gold=True)
        assert e.value.code is ErrorCode.FORBIDDEN
    with pytest.raises(DomainError) as e:
        await suppliers.set_standing(mediator.principal, 999999, gold=True)
    assert e.value.code is ErrorCode.NOT_FOUND
    assert await profile_state(d.tools.supplier_id) == before

    await suppliers.set_standing(mediator.principal, d.tools.supplier_id or 0, gold=True)
    assert await found(SupplierFilter(gold_only=True, country="DE")) == ids(d.leuchten, d.tools)
    assert await found(SupplierFilter(verification=[Verification.NONE])) == ids(d.tools)
    await suppliers.set_standing(
        mediator.principal, d.tools.supplier_id or 0, verification=Verification.ASSESSED
    )
    entry = (await suppliers.get_suppliers(ids(d.tools)))[d.tools.supplier_id or 0]
    assert (entry.gold, entry.verification) == (True, Verification.ASSESSED)


async def test_get_suppliers_batch(directory: Directory) -> None:
    d = directory
    assert await suppliers.get_suppliers([]) == {}
    got = await suppliers.get_suppliers([*ids(d.bright, d.tools), 999999])
    assert set(got) == set(ids(d.bright, d.tools))
    bright = got[d.bright.supplier_id or 0]
    assert bright.company_id == d.bright.principal.company_id
    assert (bright.legal_name, bright.country, bright.year_joined) == (
        "Shenzhen Bright Co., Ltd.",
        "CN",
        2015,
    )
    assert (bright.gold, bright.verification, bright.rating, bright.response_rate) == (
        True,
        Verification.VERIFIED,
        4.8,
        90,
    )
    assert bright.categories == ["LED Lighting"]
    assert bright.keywords == ["LED strip", "panel light"]
    assert bright.ta_status is TradeAssuranceStatus.ACTIVE
    assert bright.ta_limit == Money(50_000_000, "USD")
    tools = got[d.tools.supplier_id or 0]
    assert (tools.gold, tools.verification, tools.ta_status, tools.ta_limit) == (
        False,
        Verification.NONE,
        TradeAssuranceStatus.NONE,
        None,
    )
    assert await suppliers.supplier_id_of_company(d.tools.principal.company_id) == tools.id
    assert await suppliers.supplier_id_of_company(999999) is None


async def test_remaining_limit_only_while_active(directory: Directory) -> None:
    d = directory
    supplier_id = d.bright.supplier_id or 0
    entry = (await suppliers.get_suppliers([supplier_id]))[supplier_id]
    assert entry.remaining_limit == Money(50_000_000, "USD")
    await SupplierProfile.update(
        {SupplierProfile.ta_status: TradeAssuranceStatus.SUSPENDED.value}
    ).where(SupplierProfile.id == supplier_id)
    entry = (await suppliers.get_suppliers([supplier_id]))[supplier_id]
    assert entry.ta_limit == Money(50_000_000, "USD")
    assert entry.remaining_limit is None
    assert await found(SupplierFilter(trade_assurance_only=True)) == ids(d.leuchten)
    tools = (await suppliers.get_suppliers(ids(d.tools)))[d.tools.supplier_id or 0]
    assert tools.remaining_limit is None


@pytest.mark.skipif(ENGINE != "postgres", reason="row locks; SQLite has one writer at a time")
async def test_update_profile_does_not_undo_a_concurrent_approval() -> None:
    """A mediator's approval commits while the supplier edits its profile: both must stick."""
    seller = await factories.supplier(keywords=("wrench",))
    engine = db.engine()
    assert isinstance(engine, PostgresEngine)
    conn = await engine.get_new_connection()
    try:
        transaction = conn.transaction()
        await transaction.start()
        await conn.execute(
            "UPDATE supplier_profile SET ta_status = 'ACTIVE', ta_limit_minor = 100, "
            "ta_limit_currency = 'USD' WHERE id = $1",
            seller.supplier_id,
        )
        edit = asyncio.create_task(suppliers.update_profile(seller.principal, keywords=["drill"]))
        await asyncio.sleep(0.5)  # the edit reaches the locked row and waits
        await transaction.commit()
        await edit
    finally:
        await conn.close()
    entry = (await suppliers.get_suppliers(ids(seller)))[seller.supplier_id or 0]
    assert entry.keywords == ["drill"]
    assert (entry.ta_status, entry.ta_limit) == (TradeAssuranceStatus.ACTIVE, Money(100, "USD"))
