"""Penalty points, complaints and investigations over the API (the gql client)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

import httpx
import pytest

from models import clock, investigations, sweep
from models.tables import Complaint, Investigation, SupplierEvent, SupplierProfile
from server.payments.sandbox import CARD_SUCCEEDS
from tests import factories
from tests.api import Api, bearer, gid, run_cli

pytest_plugins = ("tests.api_plugin",)

INVESTIGATION = """id status openedBy outcome reason previousLimit { amount currency }
  newLimit { amount currency } supplier { legalName } complaints { subject }"""
SUPPLIER_RECORD = f"""query($id: ID!) {{ supplier(id: $id) {{
  tradeAssurance {{ status limit {{ amount currency }} remainingLimit {{ amount currency }} }}
  penaltyPoints {{ total unconsumed threshold history {{ points reason disputeId consumed }} }}
  investigations {{ {INVESTIGATION} }} }} }}"""
FILE = """mutation($input: FileComplaintInput!) { fileComplaint(input: $input) {
  complaint { id status subject evidence supplier { legalName } investigation { id } }
  errors { code field } } }"""
REVIEW = f"""mutation($id: ID!, $accept: Boolean!, $reason: String) {{
  reviewComplaint(input: {{complaintId: $id, accept: $accept, reason: $reason}}) {{
    complaint {{ id status reviewReason }} investigation {{ {INVESTIGATION} }}
    errors {{ code field }} }} }}"""
CLOSE = f"""mutation($id: ID!, $outcome: InvestigationOutcome!, $limit: MoneyInput,
    $reason: String!) {{
  closeInvestigation(input: {{investigationId: $id, outcome: $outcome, newLimit: $limit,
    reason: $reason}}) {{
    investigation {{ {INVESTIGATION} }}
    supplier {{ tradeAssurance {{ status limit {{ amount currency }}
      remainingLimit {{ amount currency }} }} }}
    errors {{ code field }} }} }}"""
COMPLAINTS = """query($status: ComplaintStatus, $first: Int! = 20, $after: String) {
  complaints(filter: {status: $status}, first: $first, after: $after) {
    edges { cursor node { id status subject } } pageInfo { hasNextPage endCursor } } }"""
INVESTIGATIONS = """query($status: InvestigationStatus) {
  investigations(filter: {status: $status}) { edges { node { id status openedBy } } } }"""
TA_SEARCH = """{ suppliers(filter: {tradeAssuranceOnly: true}) { totalCount
  edges { node { legalName } } } }"""
CREATE = """mutation($supplier: ID!, $deadline: DateTime!) { createOrder(input: {
  supplierId: $supplier, contract: {currency: "USD", initialPayment: "1500.00",
  incoterm: FOB, shippingMethod: SEA, destinationCountry: "DE", shippingDeadline: $deadline,
  lines: [{productName: "LED panel", specification: "40 W", quantity: 2, unitPrice: "1500.00"}],
  qualityRequirements: []}}) { order { id } errors { code } } }"""
PAY = f"""mutation($id: ID!, $amount: Decimal!, $key: String!) {{ payOrder(input: {{orderId: $id,
  amount: {{amount: $amount, currency: "USD"}}, method: CARD, paymentSource: "{CARD_SUCCEEDS}",
  idempotencyKey: $key}}) {{ order {{ status }} errors {{ code }} }} }}"""
SHIP = """mutation($id: ID!, $at: DateTime!) { shipOrder(input: {orderId: $id, carrier: "Maersk",
  trackingNumber: "MAEU1", shippedAt: $at}) { order { status } errors { code } } }"""
RELEASE = """mutation($id: ID!) { releaseFunds(input: {orderId: $id, idempotencyKey: "rel"}) {
  released { amount } order { money { held { amount } released { amount } } }
  errors { code } } }"""


# The sandbox provider for every test, and a sound ledger after each (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("sandbox")


def usd(amount: str, currency: str = "USD") -> dict[str, str]:
    return {"amount": amount, "currency": currency}


async def rows() -> tuple[Any, ...]:
    return (
        await Complaint.select().order_by(Complaint.id),
        await Investigation.select().order_by(Investigation.id),
        await SupplierEvent.count(),
        await SupplierProfile.select().order_by(SupplierProfile.id),
    )


async def refused(api: Api, code: str, query: str, variables: dict[str, Any], token: str) -> None:
    before = await rows()
    data = await api.data(query, variables, token)
    payload = next(iter(data.values()))
    assert [e["code"] for e in payload["errors"]] == [code], payload
    assert await rows() == before


async def record(api: Api, supplier_id: int, token: str) -> Any:
    return (await api.data(SUPPLIER_RECORD, {"id": gid("Supplier", supplier_id)}, token))[
        "supplier"
    ]


def _id(actor: factories.Actor) -> int:
    assert actor.supplier_id is not None
    return actor.supplier_id


async def test_points_accumulate_to_an_investigation_visible_to_supplier_and_mediators(
    api: Api,
) -> None:
    s = await factories.supplier(trade_assurance_limit_minor=100_000_00)
    buyer = await factories.buyer()
    mediator = await factories.staff()
    for n in range(1, 5):
        await investigations.add_penalty_points(_id(s), 6, reason=f"dispute {n}", dispute_id=n)
    own = await record(api, _id(s), s.token)
    assert (own["penaltyPoints"]["total"], own["penaltyPoints"]["unconsumed"]) == (24, 0)
    assert own["penaltyPoints"]["threshold"] == 24
    assert [h["points"] for h in own["penaltyPoints"]["history"]] == [6, 6, 6, 6]
    assert own["penaltyPoints"]["history"][0]["disputeId"] == gid("Dispute", 1)
    assert [(i["status"], i["openedBy"]) for i in own["investigations"]] == [
        ("OPEN", "PENALTY_POINTS")
    ]
    assert await record(api, _id(s), mediator.token) == own
    other = await record(api, _id(s), buyer.token)
    assert (other["penaltyPoints"], other["investigations"]) == (None, [])
    anonymous = await record(api, _id(s), "")
    assert (anonymous["penaltyPoints"], anonymous["investigations"]) == (None, [])
    queue = await api.data(INVESTIGATIONS, {"status": "OPEN"}, mediator.token)
    assert [e["node"]["id"] for e in queue["investigations"]["edges"]] == [
        own["investigations"][0]["id"]
    ]
    assert (await api.data(INVESTIGATIONS, {}, buyer.token))["investigations"]["edges"] == []
    viewer = await api.data(
        "{ viewer { company { supplier { penaltyPoints { total } investigations { id } } } } }",
        token=s.token,
    )
    assert viewer["viewer"]["company"]["supplier"] == {
        "penaltyPoints": {"total": 24}, "investigations": [{"id": own["investigations"][0]["id"]}],
    }  # fmt: skip
    node = "query($id: ID!) { node(id: $id) { ... on Investigation { status } } }"
    investigation_id = own["investigations"][0]["id"]
    assert (await api.data(node, {"id": investigation_id}, s.token))["node"] == {"status": "OPEN"}
    assert (await api.data(node, {"id": investigation_id}, buyer.token))["node"] is None

    # 48 at once, for another supplier: an investigation at once.
    s2 = await factories.supplier()
    await investigations.add_penalty_points(_id(s2), 48, reason="did not cooperate")
    queue = await api.data(INVESTIGATIONS, {"status": "OPEN"}, mediator.token)
    assert len(queue["investigations"]["edges"]) == 2
    mine = await api.data(INVESTIGATIONS, {}, s2.token)
    assert len(mine["investigations"]["edges"]) == 1


async def test_complaint_accepted_into_an_investigation_then_warning(api: Api) -> None:
    b, s, _ = await factories.confirmed_order()
    mediator = await factories.staff()
    complaint_input = {"supplierId": gid("Supplier", _id(s)), "subject": "Wrong wattage",
                       "description": "Panels are 30 W, not 40 W", "evidence": "photos",
                       "idempotencyKey": "complaint-1"}  # fmt: skip
    filed = (await api.data(FILE, {"input": complaint_input}, b.token))["fileComplaint"]
    assert filed["errors"] == [] and filed["complaint"]["status"] == "PENDING"
    again = (await api.data(FILE, {"input": complaint_input}, b.token))["fileComplaint"]
    assert again["complaint"]["id"] == filed["complaint"]["id"]

    pending = await api.data(COMPLAINTS, {"status": "PENDING"}, mediator.token)
    assert [e["node"]["id"] for e in pending["complaints"]["edges"]] == [filed["complaint"]["id"]]
    page = await api.data(COMPLAINTS, {"first": 1, "after": None}, b.token)
    assert page["complaints"]["pageInfo"]["hasNextPage"] is False
    assert (await api.data(COMPLAINTS, {}, s.token))["complaints"]["edges"] == []

    await refused(api, "FORBIDDEN", REVIEW, {"id": filed["complaint"]["id"], "accept": True},
                  b.token)  # fmt: skip
    review = (await api.data(REVIEW, {"id": filed["complaint"]["id"], "accept": True},
                             mediator.token))["reviewComplaint"]  # fmt: skip
    assert review["errors"] == []
    assert review["complaint"]["status"] == "ACCEPTED"
    assert review["investigation"]["openedBy"] == "COMPLAINT"
    assert review["investigation"]["complaints"] == [{"subject": "Wrong wattage"}]
    await refused(api, "COMPLAINT_ALREADY_REVIEWED", REVIEW,
                  {"id": filed["complaint"]["id"], "accept": False, "reason": "x"},
                  mediator.token)  # fmt: skip

    investigation_id = review["investigation"]["id"]
    await refused(api, "FORBIDDEN", CLOSE,
                  {"id": investigation_id, "outcome": "WARNING", "reason": "r"},
                  s.token)  # fmt: skip
    closed = (await api.data(CLOSE, {"id": investigation_id, "outcome": "WARNING",
                                     "reason": "first warning"}, mediator.token))[
        "closeInvestigation"
    ]  # fmt: skip
    assert closed["errors"] == []
    assert (closed["investigation"]["status"], closed["investigation"]["outcome"]) == (
        "CLOSED",
        "WARNING",
    )
    assert closed["supplier"]["tradeAssurance"]["status"] == "ACTIVE"
    await refused(api, "INVESTIGATION_ALREADY_CLOSED", CLOSE,
                  {"id": investigation_id, "outcome": "SUSPENDED", "reason": "r"},
                  mediator.token)  # fmt: skip


async def test_bad_complaints_and_reviews(api: Api) -> None:
    b, s, _ = await factories.confirmed_order()
    stranger = await factories.buyer()
    mediator = await factories.staff()

    def complaint(supplier: str, key: str = "k") -> dict[str, Any]:
        return {"input": {"supplierId": supplier, "subject": "s", "description": "d",
                          "idempotencyKey": key}}  # fmt: skip

    supplier_gid = gid("Supplier", _id(s))
    await refused(api, "NOT_A_BUYER", FILE, complaint(supplier_gid), s.token)
    await refused(api, "NOT_A_BUYER", FILE, complaint(supplier_gid), mediator.token)
    await refused(api, "NOT_FOUND", FILE, complaint(gid("Supplier", 999_999)), b.token)
    await refused(api, "NOT_FOUND", FILE, complaint(gid("Order", _id(s))), b.token)
    await refused(api, "NO_ORDER_WITH_SUPPLIER", FILE, complaint(supplier_gid), stranger.token)
    filed = (await api.data(FILE, complaint(supplier_gid), b.token))["fileComplaint"]
    await refused(api, "REASON_REQUIRED", REVIEW,
                  {"id": filed["complaint"]["id"], "accept": False}, mediator.token)  # fmt: skip
    rejected = (await api.data(REVIEW, {"id": filed["complaint"]["id"], "accept": False,
                                        "reason": "no evidence"}, mediator.token))[
        "reviewComplaint"
    ]  # fmt: skip
    assert rejected["complaint"] == {"id": filed["complaint"]["id"], "status": "REJECTED",
                                     "reviewReason": "no evidence"}  # fmt: skip
    assert rejected["investigation"] is None
    await refused(api, "NOT_FOUND", REVIEW, {"id": gid("Complaint", 999_999), "accept": True},
                  mediator.token)  # fmt: skip


async def test_limit_reduced(api: Api) -> None:
    seller = await factories.supplier(trade_assurance_limit_minor=5_000_00)
    _, s, _ = await factories.confirmed_order(supplier_actor=seller)  # reserves 3,000.00
    mediator = await factories.staff()
    result = await investigations.add_penalty_points(_id(s), 48, reason="uncooperative")
    inv = gid("Investigation", result.investigation_id or 0)
    base = {"id": inv, "outcome": "LIMIT_REDUCED", "reason": "reduce"}
    await refused(api, "LIMIT_REQUIRED", CLOSE, base, mediator.token)
    await refused(api, "LIMIT_NOT_LOWER", CLOSE, {**base, "limit": usd("5000.00")},
                  mediator.token)  # fmt: skip
    await refused(api, "INVALID_CURRENCY", CLOSE, {**base, "limit": usd("100.00", "EUR")},
                  mediator.token)  # fmt: skip
    await refused(api, "FORBIDDEN", CLOSE, {**base, "limit": usd("100.00")}, s.token)
    closed = (await api.data(CLOSE, {**base, "limit": usd("2000.00")}, mediator.token))[
        "closeInvestigation"
    ]
    assert closed["errors"] == []
    assert closed["investigation"]["previousLimit"] == usd("5000.00")
    assert closed["investigation"]["newLimit"] == usd("2000.00")
    assert closed["supplier"]["tradeAssurance"] == {
        "status": "ACTIVE", "limit": usd("2000.00"), "remainingLimit": usd("0.00"),
    }  # fmt: skip


RECEIPT = """mutation($id: ID!) { confirmReceipt(input: {orderId: $id}) {
  order { status } errors { code } } }"""
OPEN_DISPUTE = """mutation($id: ID!, $key: String!) { openDispute(input: {orderId: $id,
  reason: QUALITY_NOT_AS_AGREED, requestedRefund: {amount: "1000.00", currency: "USD"},
  description: "Luminous flux 2900 lm, 3600 lm agreed", idempotencyKey: $key}) {
  dispute { id } errors { code } } }"""
REJECT = """mutation($id: ID!) { respondToDispute(input: {disputeId: $id, response: REJECT,
  text: "The panels conform", idempotencyKey: "reject"}) { dispute { status } errors { code } } }"""
ESCALATE = """mutation($id: ID!) { escalateDispute(input: {disputeId: $id}) {
  dispute { status } errors { code } } }"""
RESOLVE = """mutation($id: ID!, $decision: DisputeDecision!, $amount: MoneyInput, $key: String!) {
  resolveDispute(input: {disputeId: $id, decision: $decision, amount: $amount,
    reason: "Below the agreed luminous flux", idempotencyKey: $key}) {
  dispute { outcome supplierCooperated } errors { code } } }"""
SEARCH_LED = """{ suppliers(filter: {tradeAssuranceOnly: true, text: "led", country: "CN"}) {
  totalCount } }"""


@pytest.fixture
def long_lived_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TA_TOKEN_TTL_HOURS", str(24 * 365))


async def test_disputes_lost_open_an_investigation_and_suspension_hides_the_supplier(
    long_lived_tokens: None, api: Api, frozen_clock: clock.FrozenClock
) -> None:
    """Two disputes decided against one supplier (6 points, then 48 for one it ignored)
    open an investigation; a mediator suspends the supplier: out of Trade Assurance
    search, no new orders, its open order still protected; the ledger checks out."""
    b, s, first = await factories.confirmed_order()
    _, _, second = await factories.confirmed_order(b, s)
    _, _, open_order = await factories.confirmed_order(b, s)
    mediator = await factories.staff()
    assert (await api.data(SEARCH_LED, token=b.token))["suppliers"]["totalCount"] == 1
    now = clock.now().isoformat()
    disputes = []
    for n, order in enumerate((first, second)):
        oid = gid("Order", order.id)
        paid = await api.data(PAY, {"id": oid, "amount": "3000.00", "key": f"pay{n}"}, b.token)
        assert paid["payOrder"]["errors"] == []
        assert (await api.data(SHIP, {"id": oid, "at": now}, s.token))["shipOrder"]["errors"] == []
        assert (await api.data(RECEIPT, {"id": oid}, b.token))["confirmReceipt"]["errors"] == []
        opened = await api.data(OPEN_DISPUTE, {"id": oid, "key": f"d{n}"}, b.token)
        assert opened["openDispute"]["errors"] == []
        disputes.append(opened["openDispute"]["dispute"]["id"])
    deposit = {"id": gid("Order", open_order.id), "amount": "1500.00", "key": "dep"}
    assert (await api.data(PAY, deposit, b.token))["payOrder"]["errors"] == []

    # The first: the supplier answers, the buyer escalates on day 4, a partial refund.
    assert (await api.data(REJECT, {"id": disputes[0]}, s.token))["respondToDispute"][
        "errors"
    ] == []
    frozen_clock.advance(days=3)
    assert (await api.data(ESCALATE, {"id": disputes[0]}, b.token))["escalateDispute"][
        "errors"
    ] == []
    partial = {"id": disputes[0], "decision": "PARTIAL_REFUND", "amount": usd("600.00"),
               "key": "decide0"}  # fmt: skip
    decided = (await api.data(RESOLVE, partial, mediator.token))["resolveDispute"]
    assert decided == {
        "dispute": {"outcome": "PARTIAL_REFUND", "supplierCooperated": True}, "errors": []
    }  # fmt: skip
    points = (await record(api, _id(s), mediator.token))["penaltyPoints"]
    assert (points["total"], points["unconsumed"]) == (6, 6)
    assert (await record(api, _id(s), mediator.token))["investigations"] == []

    # The second: never answered, escalated by the sweep on day 8, a full refund: 48.
    frozen_clock.advance(days=4)
    assert len((await sweep.run_sweep()).disputes_escalated) == 1
    full = {"id": disputes[1], "decision": "FULL_REFUND", "key": "decide1"}
    decided = (await api.data(RESOLVE, full, mediator.token))["resolveDispute"]
    assert decided == {
        "dispute": {"outcome": "FULL_REFUND", "supplierCooperated": False}, "errors": []
    }  # fmt: skip
    own = await record(api, _id(s), s.token)
    assert [(h["points"], h["disputeId"], h["consumed"])
            for h in own["penaltyPoints"]["history"]] == [
        (6, disputes[0], True), (48, disputes[1], True)
    ]  # fmt: skip
    assert own["penaltyPoints"]["total"] == 54
    [opened] = own["investigations"]
    assert (opened["status"], opened["openedBy"]) == ("OPEN", "PENALTY_POINTS")

    # A mediator finds it in the queue and suspends the supplier.
    queue = await api.data(INVESTIGATIONS, {"status": "OPEN"}, mediator.token)
    assert [e["node"]["id"] for e in queue["investigations"]["edges"]] == [opened["id"]]
    closed = (await api.data(CLOSE, {"id": opened["id"], "outcome": "SUSPENDED",
                                     "reason": "two disputes lost, one ignored"},
                             mediator.token))["closeInvestigation"]  # fmt: skip
    assert closed["errors"] == []
    assert closed["supplier"]["tradeAssurance"]["status"] == "SUSPENDED"

    # Out of Trade Assurance search, and no new orders.
    assert (await api.data(SEARCH_LED, token=b.token))["suppliers"]["totalCount"] == 0
    assert (await api.data(TA_SEARCH, token=b.token))["suppliers"] == {
        "totalCount": 0, "edges": []
    }  # fmt: skip
    deadline = (clock.now() + dt.timedelta(days=30)).isoformat()
    created = await api.data(
        CREATE, {"supplier": gid("Supplier", _id(s)), "deadline": deadline}, b.token
    )
    assert created["createOrder"]["errors"] == [{"code": "TRADE_ASSURANCE_SUSPENDED"}]

    # The open order stays protected: balance, shipment, release.
    order_id = gid("Order", open_order.id)
    pay = await api.data(PAY, {"id": order_id, "amount": "1500.00", "key": "bal"}, b.token)
    assert pay["payOrder"] == {"order": {"status": "PAID"}, "errors": []}
    shipped = await api.data(SHIP, {"id": order_id, "at": clock.now().isoformat()}, s.token)
    assert shipped["shipOrder"] == {"order": {"status": "SHIPPED"}, "errors": []}
    released = await api.data(RELEASE, {"id": order_id}, b.token)
    assert released["releaseFunds"]["errors"] == []
    assert released["releaseFunds"]["order"]["money"]["released"]["amount"] == "3000.00"

    # The books: `trade-assurance ledger-check`, as an operator runs it.
    checked = run_cli("ledger-check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "ledger OK" in checked.stdout


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
FILE_WITH_EVIDENCE = """mutation($input: FileComplaintInput!) { fileComplaint(input: $input) {
  complaint { id attachments { filename contentType size sha256 url } }
  errors { code field } } }"""


async def _file_with_evidence(
    api: Api, token: str, supplier_id: int, data: bytes, checksum: str, key: str
) -> httpx.Response:
    operations = {
        "query": FILE_WITH_EVIDENCE,
        "variables": {"input": {
            "supplierId": gid("Supplier", supplier_id), "subject": "Broken panels",
            "description": "See the photo", "idempotencyKey": key,
            "attachments": [{"file": None, "sha256": checksum}],
        }},
    }  # fmt: skip
    return await api.http(
        "POST",
        data={"operations": json.dumps(operations),
              "map": json.dumps({"0": ["variables.input.attachments.0.file"]})},
        files={"0": ("photo.png", data, "image/png")},
        headers={**bearer(token), "Apollo-Require-Preflight": "true"},
    )  # fmt: skip


async def test_complaint_evidence_files(api: Api) -> None:
    b, s, _ = await factories.confirmed_order()
    mediator = await factories.staff()
    checksum = hashlib.sha256(PNG).hexdigest()
    before = await rows()
    tampered = await _file_with_evidence(api, b.token, _id(s), PNG + b"x", checksum, "e0")
    assert tampered.json()["data"]["fileComplaint"]["errors"] == [
        {"code": "FILE_CHECKSUM_MISMATCH", "field": "attachments.0.sha256"}
    ]
    not_allowed = await _file_with_evidence(
        api, b.token, _id(s), b"GIF89a", hashlib.sha256(b"GIF89a").hexdigest(), "e1"
    )
    assert not_allowed.json()["data"]["fileComplaint"]["errors"][0]["code"] == (
        "FILE_TYPE_NOT_ALLOWED"
    )
    assert await rows() == before

    filed = await _file_with_evidence(api, b.token, _id(s), PNG, checksum, "e2")
    payload = filed.json()["data"]["fileComplaint"]
    assert payload["errors"] == []
    [attachment] = payload["complaint"]["attachments"]
    assert (attachment["contentType"], attachment["size"], attachment["sha256"]) == (
        "image/png",
        len(PNG),
        checksum,
    )
    got = await api.http("GET", attachment["url"], headers=bearer(b.token))
    assert (got.status_code, got.content) == (200, PNG)
    assert (
        await api.http("GET", attachment["url"], headers=bearer(mediator.token))
    ).status_code == 200
    assert (await api.http("GET", attachment["url"], headers=bearer(s.token))).status_code == 404
    assert (await api.http("GET", attachment["url"])).status_code == 401
