"""Trade Assurance over the API: applying, the mediators' queue, approval and rejection."""

from __future__ import annotations

from typing import Any

import pytest

from models.clock import FrozenClock
from models.enums import Role, Verification
from models.tables import SupplierProfile, TradeAssuranceApplication
from tests import factories
from tests.api import Api, gid

pytest_plugins = ("tests.api_plugin",)

APPLICATION = """id status requestedLimit { amount currency } submittedAt reviewDueAt overdue
  decidedAt grantedLimit { amount currency } rejectionReason supplier { legalName }"""
APPLY = f"""mutation($limit: MoneyInput) {{
  applyForTradeAssurance(input: {{requestedLimit: $limit}}) {{
    application {{ {APPLICATION} }} errors {{ code field }} }} }}"""
REVIEW = f"""mutation($id: ID!, $decision: ReviewDecision!, $limit: MoneyInput, $reason: String) {{
  reviewTradeAssuranceApplication(input: {{applicationId: $id, decision: $decision,
    limit: $limit, reason: $reason}}) {{
    application {{ {APPLICATION} }}
    supplier {{ tradeAssurance {{ status limit {{ amount currency }} since }} }}
    errors {{ code field }} }} }}"""
QUEUE = f"""query($status: ApplicationStatus, $overdueOnly: Boolean! = false) {{
  tradeAssuranceApplications(status: $status, overdueOnly: $overdueOnly) {{
    edges {{ node {{ {APPLICATION} }} }} }} }}"""
TA_SEARCH = """{ suppliers(filter: {tradeAssuranceOnly: true}) { totalCount
  edges { node { legalName } } } }"""


def usd(amount: str, currency: str = "USD") -> dict[str, str]:
    return {"amount": amount, "currency": currency}


def queue(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["node"] for e in result["tradeAssuranceApplications"]["edges"]]


async def _apply(api: Api, token: str, limit: dict[str, str] | None = None) -> dict[str, Any]:
    payload = (await api.data(APPLY, {"limit": limit}, token))["applyForTradeAssurance"]
    assert payload["errors"] == [], payload
    return payload["application"]  # type: ignore[no-any-return]


async def _review(api: Api, token: str, application_id: str, **inputs: Any) -> dict[str, Any]:
    variables = {"id": application_id, "decision": "APPROVE", **inputs}
    return (await api.data(REVIEW, variables, token))[  # type: ignore[no-any-return]
        "reviewTradeAssuranceApplication"
    ]


async def test_supplier_applies_and_mediator_approves(api: Api, frozen_clock: FrozenClock) -> None:
    buyer = await factories.buyer()
    seller = await factories.supplier(name="Rhine Light Works GmbH")
    mediator = await factories.staff(Role.MEDIATOR)

    application = await _apply(api, seller.token, usd("60000"))
    assert application["status"] == "PENDING"
    assert application["requestedLimit"] == usd("60000.00")
    assert application["submittedAt"] == "2026-11-27T12:00:00+00:00"  # a Friday
    assert application["reviewDueAt"] == "2026-12-01T12:00:00+00:00"  # two business days
    assert application["overdue"] is False
    assert (await api.data(TA_SEARCH, token=buyer.token))["suppliers"]["totalCount"] == 0

    pending = queue(await api.data(QUEUE, {"status": "PENDING"}, mediator.token))
    assert pending == [application]
    assert queue(await api.data(QUEUE, token=seller.token)) == [application]

    frozen_clock.advance(hours=1)
    review = await _review(api, mediator.token, application["id"], limit=usd("50000.00"))
    assert review["errors"] == []
    decided = review["application"]
    assert (decided["status"], decided["grantedLimit"]) == ("APPROVED", usd("50000.00"))
    assert decided["decidedAt"] == "2026-11-27T13:00:00+00:00"
    assert review["supplier"]["tradeAssurance"] == {
        "status": "ACTIVE",
        "limit": usd("50000.00"),
        "since": "2026-11-27T13:00:00+00:00",
    }
    found = await api.data(TA_SEARCH, token=buyer.token)
    assert found["suppliers"]["edges"] == [{"node": {"legalName": "Rhine Light Works GmbH"}}]
    assert queue(await api.data(QUEUE, {"status": "PENDING"}, mediator.token)) == []


async def test_mediator_rejects_with_a_reason(api: Api) -> None:
    seller = await factories.supplier()
    mediator = await factories.staff(Role.MEDIATOR)
    application = await _apply(api, seller.token)
    assert application["requestedLimit"] is None

    review = await _review(
        api, mediator.token, application["id"], decision="REJECT", reason=" Export licence missing "
    )
    assert review["errors"] == []
    assert review["application"]["status"] == "REJECTED"
    assert review["application"]["rejectionReason"] == "Export licence missing"
    assert review["application"]["grantedLimit"] is None
    assert review["supplier"]["tradeAssurance"]["status"] == "NONE"
    assert (await api.data(TA_SEARCH))["suppliers"]["totalCount"] == 0
    # After a rejection the supplier may try again.
    assert (await _apply(api, seller.token))["status"] == "PENDING"


async def test_overdue_applications_are_flagged(api: Api, frozen_clock: FrozenClock) -> None:
    seller = await factories.supplier()
    mediator = await factories.staff(Role.MEDIATOR)
    application = await _apply(api, seller.token)
    assert queue(await api.data(QUEUE, {"overdueOnly": True}, mediator.token)) == []
    frozen_clock.advance(days=4)  # Friday noon + 4 days = Tuesday noon, the due time
    mediator = await factories.staff(Role.MEDIATOR)  # the first one's token has expired
    overdue = queue(await api.data(QUEUE, {"overdueOnly": True}, mediator.token))
    assert [(a["id"], a["overdue"]) for a in overdue] == [(application["id"], True)]


async def test_applications_are_private_to_their_supplier_and_mediators(api: Api) -> None:
    seller, rival, buyer = (
        await factories.supplier(),
        await factories.supplier(),
        await factories.buyer(),
    )
    application = await _apply(api, seller.token)
    assert queue(await api.data(QUEUE, token=rival.token)) == []
    assert queue(await api.data(QUEUE, token=buyer.token)) == []
    node = "query($id: ID!) { node(id: $id) { id } }"
    assert (await api.data(node, {"id": application["id"]}, seller.token))["node"] is not None
    assert (await api.data(node, {"id": application["id"]}, rival.token))["node"] is None
    assert (await api.data(node, {"id": application["id"]}))["node"] is None


@pytest.mark.parametrize(
    ("standing", "code"),
    [
        ({"gold": False}, "NOT_GOLD_SUPPLIER"),
        ({"verification": Verification.NONE}, "NOT_VERIFIED"),
        ({"trade_assurance_limit_minor": 1_000_00}, "TRADE_ASSURANCE_ALREADY_ACTIVE"),
    ],
)
async def test_ineligible_supplier_cannot_apply(
    api: Api, standing: dict[str, Any], code: str
) -> None:
    seller = await factories.supplier(**standing)
    payload = (await api.data(APPLY, {"limit": None}, seller.token))["applyForTradeAssurance"]
    assert payload == {"application": None, "errors": [{"code": code, "field": None}]}
    assert await TradeAssuranceApplication.count() == 0


async def test_one_pending_application_at_a_time(api: Api) -> None:
    seller = await factories.supplier()
    await _apply(api, seller.token)
    again = (await api.data(APPLY, {"limit": None}, seller.token))["applyForTradeAssurance"]
    assert [e["code"] for e in again["errors"]] == ["APPLICATION_ALREADY_PENDING"]
    assert await TradeAssuranceApplication.count() == 1


async def test_mediator_makes_a_supplier_eligible(api: Api) -> None:
    seller = await factories.supplier(gold=False, verification=Verification.NONE)
    mediator = await factories.staff(Role.MEDIATOR)
    standing = """mutation($id: ID!) { setSupplierStanding(input: {supplierId: $id,
      goldSupplier: true, verification: ASSESSED}) {
        supplier { goldSupplier verification } errors { code } } }"""
    result = await api.data(
        standing, {"id": gid("Supplier", seller.supplier_id or 0)}, mediator.token
    )
    assert result["setSupplierStanding"] == {
        "supplier": {"goldSupplier": True, "verification": "ASSESSED"},
        "errors": [],
    }
    assert (await _apply(api, seller.token))["status"] == "PENDING"


@pytest.mark.parametrize(
    ("inputs", "code", "field"),
    [
        ({"decision": "APPROVE"}, "LIMIT_REQUIRED", "limit"),
        ({"decision": "REJECT"}, "REASON_REQUIRED", "reason"),
        ({"decision": "REJECT", "reason": "   "}, "REASON_REQUIRED", "reason"),
        ({"limit": usd("1.234")}, "INVALID_AMOUNT", "limit"),
        ({"limit": usd("0")}, "INVALID_AMOUNT", "limit"),
        ({"limit": usd("-5.00")}, "INVALID_AMOUNT", "limit"),
        ({"limit": usd("5000", "EUR")}, "INVALID_CURRENCY", "limit.currency"),
    ],
)
async def test_refused_review_changes_nothing(
    api: Api, inputs: dict[str, Any], code: str, field: str
) -> None:
    seller = await factories.supplier()
    mediator = await factories.staff(Role.MEDIATOR)
    application = await _apply(api, seller.token)
    review = await _review(api, mediator.token, application["id"], **inputs)
    assert review == {
        "application": None,
        "supplier": None,
        "errors": [{"code": code, "field": field}],
    }
    assert queue(await api.data(QUEUE, token=mediator.token)) == [application]
    row = await SupplierProfile.select(SupplierProfile.ta_status).first()
    assert row == {"ta_status": "NONE"}


async def test_a_decided_application_cannot_be_decided_again(api: Api) -> None:
    seller = await factories.supplier()
    mediator = await factories.staff(Role.MEDIATOR)
    application = await _apply(api, seller.token)
    first = await _review(api, mediator.token, application["id"], limit=usd("1000"))
    assert first["errors"] == []
    second = await _review(
        api, mediator.token, application["id"], decision="REJECT", reason="changed my mind"
    )
    assert second["errors"] == [{"code": "APPLICATION_ALREADY_DECIDED", "field": "applicationId"}]
    assert queue(await api.data(QUEUE, token=mediator.token))[0]["status"] == "APPROVED"


async def test_reviewing_an_unknown_or_mistyped_id_is_not_found(api: Api) -> None:
    seller = await factories.supplier()
    mediator = await factories.staff(Role.MEDIATOR)
    for wrong in (
        gid("TradeAssuranceApplication", 999_999),
        gid("Supplier", seller.supplier_id or 0),
    ):
        review = await _review(api, mediator.token, wrong, limit=usd("1000"))
        assert review["errors"] == [{"code": "NOT_FOUND", "field": "applicationId"}]
    assert (await api.data(TA_SEARCH))["suppliers"]["totalCount"] == 0


@pytest.mark.parametrize("currency", ["ZZZ", "usd1", "XAU"])
async def test_an_invalid_currency_is_a_graphql_error(api: Api, currency: str) -> None:
    seller = await factories.supplier()
    errors = await api.errors(APPLY, {"limit": usd("100", currency)}, seller.token)
    assert "ISO 4217" in errors[0]["message"]
    assert await TradeAssuranceApplication.count() == 0


async def test_a_requested_limit_with_too_many_decimals_is_refused(api: Api) -> None:
    seller = await factories.supplier()
    payload = (await api.data(APPLY, {"limit": usd("1.234")}, seller.token))[
        "applyForTradeAssurance"
    ]
    assert payload == {
        "application": None,
        "errors": [{"code": "INVALID_AMOUNT", "field": "requestedLimit"}],
    }
    assert await TradeAssuranceApplication.count() == 0


async def test_an_amount_that_is_not_a_number_is_a_readable_graphql_error(api: Api) -> None:
    seller = await factories.supplier()
    errors = await api.errors(APPLY, {"limit": usd("a lot")}, seller.token)
    assert "Decimal" in errors[0]["message"]
