"""The supplier directory over the API: search, pagination, lookup, profile edits."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from models import trade_assurance
from models.enums import Role, Verification
from models.money import Money
from tests import factories
from tests.api import Api, codes, gid

pytest_plugins = ("tests.api_plugin",)

SEARCH = """query($filter: SupplierFilter, $orderBy: SupplierOrder! = RELEVANCE, $first: Int! = 20,
  $after: String) {
  suppliers(filter: $filter, orderBy: $orderBy, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id legalName country rating
      tradeAssurance { status limit { amount currency } } } } } }"""
SUPPLIER = """fragment S on Supplier { id legalName country categories keywords yearJoined
  goldSupplier verification rating responseRate
  tradeAssurance { status limit { amount currency } remainingLimit { amount currency } since } }
query($id: ID!) { supplier(id: $id) { ...S } node(id: $id) { __typename ...S } }"""
UPDATE = """mutation($categories: [String!], $keywords: [String!]) {
  updateSupplierProfile(input: {categories: $categories, keywords: $keywords}) {
    supplier { categories keywords } errors { code field } } }"""


def names(result: dict[str, Any]) -> list[str]:
    return [e["node"]["legalName"] for e in result["suppliers"]["edges"]]


async def test_newcomer_finds_trade_assurance_led_suppliers_in_germany(api: Api) -> None:
    buyer = await factories.buyer(country="US")
    usd = 250_000_00
    await factories.supplier(
        country="DE",
        name="Rhine Light Works GmbH",
        keywords=("led strip", "panel light"),
        rating=4.8,
        trade_assurance_limit_minor=usd,
    )
    await factories.supplier(
        country="DE",
        name="Bavaria Lamp GmbH",
        keywords=("LED bulb",),
        rating=4.2,
        trade_assurance_limit_minor=50_000_00,
    )
    await factories.supplier(country="DE", name="No Assurance LED GmbH")  # TA not active
    await factories.supplier(country="CN", name="Shenzhen LED Co.", trade_assurance_limit_minor=usd)
    await factories.supplier(
        country="DE",
        name="Hanse Textil GmbH",
        categories=("Textiles",),
        keywords=("cotton fabric",),
        trade_assurance_limit_minor=usd,
    )
    flt = {"text": "led", "tradeAssuranceOnly": True, "country": "DE"}

    found = await api.data(SEARCH, {"filter": flt}, buyer.token)
    assert sorted(names(found)) == ["Bavaria Lamp GmbH", "Rhine Light Works GmbH"]
    assert found["suppliers"]["totalCount"] == 2
    assert {e["node"]["country"] for e in found["suppliers"]["edges"]} == {"DE"}
    rhine = next(e["node"] for e in found["suppliers"]["edges"] if e["node"]["rating"] == 4.8)
    assert rhine["tradeAssurance"] == {
        "status": "ACTIVE",
        "limit": {"amount": "250000.00", "currency": "USD"},
    }

    by_rating = await api.data(SEARCH, {"filter": flt, "orderBy": "RATING"}, buyer.token)
    assert names(by_rating) == ["Rhine Light Works GmbH", "Bavaria Lamp GmbH"]
    by_limit = await api.data(
        SEARCH, {"filter": {"country": "DE"}, "orderBy": "TRADE_ASSURANCE_LIMIT"}, buyer.token
    )
    assert names(by_limit)[-1] == "No Assurance LED GmbH"
    everyone = await api.data(SEARCH, {"filter": {"text": "led"}}, buyer.token)
    assert everyone["suppliers"]["totalCount"] == 4


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ({"category": "Textiles"}, ["Cotton"]),
        ({"goldOnly": True}, ["Cotton", "Gold"]),
        ({"verification": ["ASSESSED"]}, ["Gold"]),
        ({"minRating": 4.5}, ["Gold"]),
        ({"text": "cott"}, ["Cotton"]),
        ({"text": "cotton zzz"}, []),
    ],
)
async def test_each_filter_narrows_the_search(
    api: Api, flt: dict[str, Any], expected: list[str]
) -> None:
    await factories.supplier(
        name="Cotton", categories=("Textiles",), keywords=("cotton",), rating=4.0
    )
    await factories.supplier(name="Gold", verification=Verification.ASSESSED, rating=4.9)
    await factories.supplier(name="Plain", gold=False, verification=Verification.NONE, rating=3.0)
    found = await api.data(SEARCH, {"filter": flt, "orderBy": "RATING"})
    assert sorted(names(found)) == expected
    assert found["suppliers"]["totalCount"] == len(expected)


async def test_pages_follow_each_other_without_overlap(api: Api) -> None:
    for n in range(5):
        await factories.supplier(name=f"Supplier {n}", rating=4.0 + n / 10)
    seen: list[str] = []
    after = None
    pages = []
    while True:
        page = (await api.data(SEARCH, {"first": 2, "after": after}))["suppliers"]
        pages.append(page["pageInfo"])
        seen += [e["node"]["id"] for e in page["edges"]]
        assert page["totalCount"] == 5
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(seen) == len(set(seen)) == 5
    assert [(p["hasNextPage"], p["hasPreviousPage"]) for p in pages] == [
        (True, False),
        (True, True),
        (False, True),
    ]
    empty = (await api.data(SEARCH, {"first": 0}))["suppliers"]
    assert empty["edges"] == [] and empty["pageInfo"]["hasNextPage"] is True


async def test_supplier_and_node_return_the_same_public_entry(api: Api) -> None:
    seller = await factories.supplier(
        country="DE", name="Rhine Light Works GmbH", trade_assurance_limit_minor=250_000_00
    )
    result = await api.data(SUPPLIER, {"id": gid("Supplier", seller.supplier_id or 0)})
    node = result["node"]
    assert node.pop("__typename") == "Supplier"
    assert result["supplier"] == node
    assert node["legalName"] == "Rhine Light Works GmbH"
    assert (node["goldSupplier"], node["verification"]) == (True, "VERIFIED")
    assert node["tradeAssurance"]["remainingLimit"] == {"amount": "250000.00", "currency": "USD"}
    missing = await api.data(SUPPLIER, {"id": gid("Supplier", 999_999)})
    assert missing == {"supplier": None, "node": None}


async def test_times_are_iso_8601_utc(api: Api) -> None:
    seller = await factories.supplier()
    mediator = await factories.staff(Role.MEDIATOR)
    application = await trade_assurance.apply(seller.principal, None)
    await trade_assurance.review(
        mediator.principal, application.id, approve=True, limit=Money(1_000_00, "USD")
    )
    result = await api.data(SUPPLIER, {"id": gid("Supplier", seller.supplier_id or 0)})
    since = result["supplier"]["tradeAssurance"]["since"]
    parsed = dt.datetime.fromisoformat(since)
    assert parsed.utcoffset() == dt.timedelta(0)
    assert abs(parsed - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)


@pytest.mark.parametrize("inline", [True, False])
async def test_an_invalid_country_code_is_a_graphql_error(api: Api, inline: bool) -> None:
    if inline:
        errors = await api.errors('{ suppliers(filter: {country: "XX"}) { totalCount } }')
    else:
        errors = await api.errors(SEARCH, {"filter": {"country": "Germany"}})
    assert "ISO 3166" in errors[0]["message"]


@pytest.mark.parametrize("first", [101, -1])
async def test_page_size_is_capped(api: Api, first: int) -> None:
    errors = await api.errors(SEARCH, {"first": first})
    assert codes(errors) == ["PAGE_SIZE_OUT_OF_RANGE"]
    assert errors[0]["extensions"]["max"] == 100


@pytest.mark.parametrize(
    "after",
    [
        "not a cursor",
        gid("application", 1),
        gid("Supplier", 1),
        gid("supplier-search", -5),
        gid("supplier-search", 10**20),
    ],
)
async def test_a_foreign_or_forged_cursor_is_refused(api: Api, after: str) -> None:
    await factories.supplier()
    errors = await api.errors(SEARCH, {"after": after})
    assert codes(errors) == ["INVALID_CURSOR"]


async def test_profile_update_by_the_supplier_changes_search_results(api: Api) -> None:
    seller = await factories.supplier(
        name="Delta Works", categories=("Textiles",), keywords=("cotton fabric",)
    )
    assert (await api.data(SEARCH, {"filter": {"text": "solar"}}))["suppliers"]["totalCount"] == 0

    updated = await api.data(
        UPDATE,
        {"categories": ["Solar Energy"], "keywords": ["solar panel", " inverter "]},
        seller.token,
    )
    assert updated["updateSupplierProfile"] == {
        "supplier": {"categories": ["Solar Energy"], "keywords": ["solar panel", "inverter"]},
        "errors": [],
    }
    assert names(await api.data(SEARCH, {"filter": {"text": "solar"}})) == ["Delta Works"]
    assert names(await api.data(SEARCH, {"filter": {"category": "Solar Energy"}})) == [
        "Delta Works"
    ]
    assert names(await api.data(SEARCH, {"filter": {"text": "cotton"}})) == []


async def test_only_the_supplier_edits_its_profile(api: Api) -> None:
    buyer = await factories.buyer()
    seller = await factories.supplier(keywords=("cotton fabric",))
    refused = await api.data(UPDATE, {"keywords": ["hacked"]}, buyer.token)
    assert refused["updateSupplierProfile"] == {
        "supplier": None,
        "errors": [{"code": "FORBIDDEN", "field": None}],
    }
    too_many = await api.data(UPDATE, {"keywords": [f"k{n}" for n in range(51)]}, seller.token)
    assert [e["code"] for e in too_many["updateSupplierProfile"]["errors"]] == ["INVALID_INPUT"]
    found = await api.data(SUPPLIER, {"id": gid("Supplier", seller.supplier_id or 0)})
    assert found["supplier"]["keywords"] == ["cotton fabric"]
