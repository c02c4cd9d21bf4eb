"""Disputes over the API (gql client), with the clock moved: accepted, offer accepted,
escalated by the buyer and by the sweep, decided each way; the assessment and deadlines
as both parties and mediators see them; refusals as data; evidence files (multipart)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from models import clock, inspections, ledger, lifecycle, payments, sweep
from models.enums import InspectionResult, PaymentMethod
from models.money import Money
from models.tables import Dispute, DisputeEvidence, Order
from server.payments.sandbox import CARD_SUCCEEDS
from tests import factories
from tests import test_disputes as domain  # its order set-ups
from tests.api import Api, bearer, gid

pytest_plugins = ("tests.api_plugin",)

MONEY = "{ amount currency }"
ERRORS = "errors { code field }"
DISPUTE = f"""id status reason description requestedRefund {MONEY}
  assessment {{ rule effect reason }}
  responseDueAt escalationAllowedAt autoEscalationAt
  supplierResponse supplierResponseText offeredRefund {MONEY} respondedAt
  escalatedAt escalatedAutomatically supplierCooperated
  outcome refunded {MONEY} decisionReason inspectionFeeRefunded resolvedAt
  evidence {{ party text filename contentType size sha256 url }}"""
ORDER = f"id status money {{ held {MONEY} released {MONEY} refunded {MONEY} }}"
PAYLOAD = f"dispute {{ {DISPUTE} }} order {{ {ORDER} }} {ERRORS}"
OPEN = f"""mutation($input: OpenDisputeInput!) {{ openDispute(input: $input) {{ {PAYLOAD} }} }}"""
RESPOND = f"""mutation($input: RespondToDisputeInput!) {{
  respondToDispute(input: $input) {{ {PAYLOAD} }} }}"""
ACCEPT_OFFER = f"""mutation($id: ID!, $key: String!) {{
  acceptDisputeOffer(input: {{disputeId: $id, idempotencyKey: $key}}) {{ {PAYLOAD} }} }}"""
ESCALATE = f"""mutation($id: ID!) {{
  escalateDispute(input: {{disputeId: $id}}) {{ {PAYLOAD} }} }}"""
RESOLVE = f"""mutation($input: ResolveDisputeInput!) {{
  resolveDispute(input: $input) {{ {PAYLOAD} }} }}"""
ORDER_DISPUTE = f"query($id: ID!) {{ order(id: $id) {{ status dispute {{ {DISPUTE} }} }} }}"
NODE = "query($id: ID!) { node(id: $id) { ... on Dispute { id status } } }"
LIST = """query($filter: DisputeFilter, $after: String) {
  disputes(filter: $filter, first: 1, after: $after) {
    edges { node { id status } } pageInfo { hasNextPage endCursor } } }"""
PDF = b"%PDF-1.7\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"


@pytest.fixture(autouse=True)
def long_lived_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TA_TOKEN_TTL_HOURS", str(24 * 365))


@pytest.fixture(autouse=True)
async def books_balance() -> AsyncIterator[None]:
    yield
    assert await ledger.check() == []


def usd(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "USD"}


async def received() -> tuple[factories.Actor, factories.Actor, Order]:
    b, s, order = await factories.confirmed_order()
    result = await payments.pay_order(
        b.principal, order.id, Money(3_000_00, "USD"), PaymentMethod.CARD,
        idempotency_key="pay", source=CARD_SUCCEEDS,
    )  # fmt: skip
    assert result.error is None
    await lifecycle.ship_order(
        s.principal, order.id, lifecycle.Shipment("Maersk", "MAEU1", clock.now())
    )
    await lifecycle.confirm_receipt(b.principal, order.id)
    return b, s, order


async def open_dispute(
    api: Api, token: str, order: Order, amount: str = "1000.00", **extra: Any
) -> dict[str, Any]:
    variables = {
        "input": {
            "orderId": gid("Order", order.id),
            "reason": "QUALITY_NOT_AS_AGREED",
            "requestedRefund": usd(amount),
            "description": "Luminous flux 2900 lm, 3600 lm agreed",
            "evidence": [{"text": "Lab report attached to the order chat"}],
            "idempotencyKey": "open",
            **extra,
        }
    }
    result: dict[str, Any] = (await api.data(OPEN, variables, token))["openDispute"]
    return result


async def test_opened_accepted_and_visible_to_everyone(
    api: Api, frozen_clock: clock.FrozenClock
) -> None:
    b, s, order = await received()
    stranger = await factories.buyer()
    mediator = await factories.staff()
    refused = await open_dispute(api, stranger.token, order)
    assert refused == {"dispute": None, "order": None, "errors": [
        {"code": "NOT_FOUND", "field": "orderId"}]}  # fmt: skip
    too_much = await open_dispute(api, b.token, order, amount="3000.01")
    assert too_much["errors"] == [{"code": "REFUND_ABOVE_COVERED", "field": "requestedRefund"}]
    opened = await open_dispute(api, b.token, order, concernsFreightOrAfterSales=True)
    assert opened["errors"] == []
    d = opened["dispute"]
    assert (d["status"], d["requestedRefund"]) == ("OPEN", usd("1000.00"))
    assert [(f["rule"], f["effect"]) for f in d["assessment"]] == [
        ("RAISED_AFTER_ARRIVAL_WITHOUT_INSPECTION", "WEIGHS_AGAINST"),
        ("FREIGHT_OR_AFTER_SALES", "WEIGHS_AGAINST"),
    ]
    assert d["responseDueAt"] == "2026-11-30T12:00:00+00:00"
    assert d["escalationAllowedAt"] == "2026-11-30T12:00:00+00:00"
    assert d["autoEscalationAt"] == "2026-12-04T12:00:00+00:00"
    assert d["evidence"][0]["party"] == "BUYER"
    second = await open_dispute(api, b.token, order, idempotencyKey="again")
    assert second["errors"] == [{"code": "DISPUTE_ALREADY_OPEN", "field": "orderId"}]
    # Both parties and mediators see it (on the order and as a node); strangers do not.
    for token in (b.token, s.token, mediator.token):
        seen = (await api.data(ORDER_DISPUTE, {"id": gid("Order", order.id)}, token))["order"]
        assert seen["dispute"] == d
        assert (await api.data(NODE, {"id": d["id"]}, token))["node"]["status"] == "OPEN"
    assert (await api.data(NODE, {"id": d["id"]}, stranger.token))["node"] is None

    respond = {"disputeId": d["id"], "response": "ACCEPT", "idempotencyKey": "answer"}
    by_buyer = (await api.data(RESPOND, {"input": respond}, b.token))["respondToDispute"]
    assert by_buyer["errors"] == [{"code": "NOT_DISPUTE_SUPPLIER", "field": "disputeId"}]
    done = (await api.data(RESPOND, {"input": respond}, s.token))["respondToDispute"]
    assert done["errors"] == []
    assert (done["dispute"]["status"], done["dispute"]["outcome"]) == (
        "RESOLVED", "SUPPLIER_ACCEPTED"
    )  # fmt: skip
    assert done["order"]["money"]["refunded"] == usd("1000.00")
    assert done["order"]["status"] == "RECEIVED"


async def test_offer_accepted_over_the_api(api: Api, frozen_clock: clock.FrozenClock) -> None:
    b, s, order = await received()
    d = (await open_dispute(api, b.token, order))["dispute"]
    offer = {"disputeId": d["id"], "response": "OFFER", "offeredRefund": usd("250.00"),
             "text": "One panel is dim", "idempotencyKey": "offer"}  # fmt: skip
    made = (await api.data(RESPOND, {"input": offer}, s.token))["respondToDispute"]
    assert made["errors"] == []
    assert (made["dispute"]["supplierResponse"], made["dispute"]["offeredRefund"]) == (
        "OFFER", usd("250.00")
    )  # fmt: skip
    took = (await api.data(ACCEPT_OFFER, {"id": d["id"], "key": "take"}, b.token))[
        "acceptDisputeOffer"
    ]
    assert took["errors"] == []
    assert (took["dispute"]["outcome"], took["dispute"]["refunded"]) == (
        "OFFER_ACCEPTED", usd("250.00")
    )  # fmt: skip
    assert took["order"]["money"]["held"] == usd("2750.00")


async def test_escalated_by_the_buyer_and_decided_partially(
    api: Api, frozen_clock: clock.FrozenClock
) -> None:
    b, s, order = await received()
    mediator = await factories.staff()
    d = (await open_dispute(api, b.token, order))["dispute"]
    reject = {"disputeId": d["id"], "response": "REJECT", "idempotencyKey": "no"}
    assert (await api.data(RESPOND, {"input": reject}, s.token))["respondToDispute"]["errors"] == []
    decide = {"disputeId": d["id"], "decision": "PARTIAL_REFUND", "amount": usd("600.00"),
              "reason": "Two panels below spec", "idempotencyKey": "decide"}  # fmt: skip
    early = (await api.data(RESOLVE, {"input": decide}, mediator.token))["resolveDispute"]
    assert early["errors"] == [{"code": "DISPUTE_NOT_ESCALATED", "field": "disputeId"}]
    frozen_clock.advance(days=2)
    too_early = (await api.data(ESCALATE, {"id": d["id"]}, b.token))["escalateDispute"]
    assert too_early["errors"] == [{"code": "ESCALATION_TOO_EARLY", "field": "disputeId"}]
    frozen_clock.advance(days=1)
    up = (await api.data(ESCALATE, {"id": d["id"]}, b.token))["escalateDispute"]
    assert up["errors"] == []
    assert (up["dispute"]["status"], up["dispute"]["supplierCooperated"]) == ("ESCALATED", True)
    listed = (await api.data(LIST, {"filter": {"escalated": True}}, mediator.token))["disputes"]
    assert [e["node"]["id"] for e in listed["edges"]] == [d["id"]]
    too_big = {**decide, "amount": usd("3000.01"), "idempotencyKey": "big"}
    refused = (await api.data(RESOLVE, {"input": too_big}, mediator.token))["resolveDispute"]
    assert refused["errors"] == [{"code": "INSUFFICIENT_HELD_FUNDS", "field": "amount"}]
    by_buyer = (await api.data(RESOLVE, {"input": decide}, b.token))["resolveDispute"]
    assert by_buyer["errors"] == [{"code": "NOT_A_MEDIATOR", "field": "disputeId"}]
    decided = (await api.data(RESOLVE, {"input": decide}, mediator.token))["resolveDispute"]
    assert decided["errors"] == []
    assert (decided["dispute"]["outcome"], decided["dispute"]["decisionReason"]) == (
        "PARTIAL_REFUND", "Two panels below spec"
    )  # fmt: skip
    assert decided["order"]["money"]["refunded"] == usd("600.00")
    # The claim window ends: the rest is released by the sweep.
    frozen_clock.advance(days=30)
    await sweep.run_sweep()
    final = (await api.data(ORDER_DISPUTE, {"id": gid("Order", order.id)}, b.token))["order"]
    assert final["status"] == "COMPLETED"


async def test_escalated_by_the_sweep_then_full_refund_or_release(
    api: Api, frozen_clock: clock.FrozenClock
) -> None:
    mediator = await factories.staff()
    ids = []
    for _ in range(2):
        b, _, order = await received()
        ids.append(((await open_dispute(api, b.token, order))["dispute"]["id"], b, order))
    frozen_clock.advance(days=7)
    report = await sweep.run_sweep()
    assert len(report.disputes_escalated) == 2
    overdue = await api.data(LIST, {"filter": {"status": "ESCALATED"}}, mediator.token)
    assert overdue["disputes"]["pageInfo"]["hasNextPage"] is True
    (first_id, _b1, _order1), (second_id, _b2, _order2) = ids
    full = {"disputeId": first_id, "decision": "FULL_REFUND", "refundInspectionFee": True,
            "reason": "Goods unusable", "idempotencyKey": "full"}  # fmt: skip
    # No inspection, so no fee to give back: said, not ignored; nothing is decided.
    refused = (await api.data(RESOLVE, {"input": full}, mediator.token))["resolveDispute"]
    assert refused["errors"] == [
        {"code": "INSUFFICIENT_HELD_FUNDS", "field": "refundInspectionFee"}
    ]
    full = {**full, "refundInspectionFee": False, "idempotencyKey": "full-2"}
    done = (await api.data(RESOLVE, {"input": full}, mediator.token))["resolveDispute"]
    assert done["errors"] == []
    d = done["dispute"]
    assert (d["escalatedAutomatically"], d["supplierCooperated"], d["refunded"]) == (
        True, False, usd("3000.00")
    )  # fmt: skip
    assert done["order"]["status"] == "REFUNDED"
    release = {"disputeId": second_id, "decision": "RELEASE_TO_SUPPLIER",
               "reason": "The goods conform", "idempotencyKey": "release"}  # fmt: skip
    kept = (await api.data(RESOLVE, {"input": release}, mediator.token))["resolveDispute"]
    assert kept["errors"] == []
    assert kept["order"]["status"] == "COMPLETED"
    assert kept["order"]["money"]["released"] == usd("3000.00")


async def test_evidence_file_uploaded_then_downloaded_by_the_parties_only(api: Api) -> None:
    b, s, order = await received()
    mediator = await factories.staff()
    # Bytes of its own: the file is corrupted on disk below, and files are shared by hash.
    pdf = PDF + b"% dispute evidence\n"
    sha = hashlib.sha256(pdf).hexdigest()
    operations = {
        "query": OPEN,
        "variables": {
            "input": {
                "orderId": gid("Order", order.id),
                "reason": "NOT_AS_DESCRIBED",
                "requestedRefund": usd("100.00"),
                "description": "Wrong colour temperature",
                "evidence": [
                    {"text": "photo", "file": None, "sha256": sha},
                    {"text": "and a note"},
                ],
                "idempotencyKey": "with-file",
            }
        },
    }
    response = await api.http(
        "POST",
        data={
            "operations": json.dumps(operations),
            "map": json.dumps({"0": ["variables.input.evidence.0.file"]}),
        },
        files={"0": ("photo.pdf", pdf, "application/pdf")},
        headers=bearer(b.token) | {"Apollo-Require-Preflight": "true"},
    )
    assert response.status_code == 200, response.text
    result = response.json()["data"]["openDispute"]
    assert result["errors"] == []
    e, note = result["dispute"]["evidence"]
    assert (e["filename"], e["contentType"], e["size"], e["sha256"]) == (
        "photo.pdf", "application/pdf", len(pdf), sha
    )  # fmt: skip
    [row] = await DisputeEvidence.objects().where(DisputeEvidence.sha256 == sha)
    assert e["url"] == f"/disputes/evidence/{row.id}"
    assert note["url"] is None  # text only
    # The order's buyer and supplier and mediators get the same bytes; nobody else.
    for who in (b, s, mediator):
        got = await api.http("GET", e["url"], headers=bearer(who.token))
        assert (got.status_code, got.content) == (200, pdf)
        assert got.headers["content-type"] == "application/pdf"
        assert got.headers["x-content-sha256"] == sha
    other_buyer = await factories.buyer()
    got = await api.http("GET", e["url"], headers=bearer(other_buyer.token))
    assert (got.status_code, got.json()["error"]["code"]) == (404, "NOT_FOUND")
    text_only = f"/disputes/evidence/{row.id + 1}"
    assert (await api.http("GET", text_only, headers=bearer(b.token))).status_code == 404
    assert (await api.http("GET", e["url"])).status_code == 401
    # A file changed on disk is refused, never served.
    inspections.attachment_path(sha).write_bytes(pdf + b"% changed\n")
    got = await api.http("GET", e["url"], headers=bearer(b.token))
    assert (got.status_code, got.json()["error"]["code"]) == (500, "ATTACHMENT_CORRUPTED")


REFUND = f"""id reference status amount {MONEY} dueAt overdue flaggedAt attempts lastError
  nextAttemptAt order {{ id }}"""
DISPUTE_REFUNDS = f"query($id: ID!) {{ dispute(id: $id) {{ refunds {{ {REFUND} }} }} }}"
REFUNDS = f"""query($filter: RefundFilter) {{ refunds(filter: $filter) {{
  edges {{ node {{ {REFUND} }} }} pageInfo {{ hasNextPage }} }} }}"""


async def test_a_refund_the_bank_keeps_rejecting_is_retried_then_queued_as_late(
    api: Api, frozen_clock: clock.FrozenClock
) -> None:
    b, s, order = await received()  # a Friday
    mediator = await factories.staff()
    stranger = await factories.buyer()
    d = (await open_dispute(api, b.token, order))["dispute"]
    frozen_clock.advance(days=7)  # the supplier never answered
    assert (await sweep.run_sweep()).disputes_escalated != []
    # The sandbox bank rejects every refund of an amount ending in .13.
    decide = {"disputeId": d["id"], "decision": "PARTIAL_REFUND", "amount": usd("600.13"),
              "reason": "Two panels below spec", "idempotencyKey": "decide"}  # fmt: skip
    decided = (await api.data(RESOLVE, {"input": decide}, mediator.token))["resolveDispute"]
    assert decided["errors"] == []
    [refund] = (await api.data(DISPUTE_REFUNDS, {"id": d["id"]}, b.token))["dispute"]["refunds"]
    # Decided Friday 4 Dec: seven business days later is Tuesday 15 Dec.
    assert refund == {
        "id": refund["id"], "reference": refund["reference"], "status": "FAILED",
        "amount": usd("600.13"), "dueAt": "2026-12-15T12:00:00+00:00", "overdue": False,
        "flaggedAt": None, "attempts": 1, "lastError": "bank_rejected",
        "nextAttemptAt": "2026-12-04T12:05:00+00:00", "order": {"id": gid("Order", order.id)},
    }  # fmt: skip
    node = "query($id: ID!) { node(id: $id) { ... on Refund { status } } }"
    assert (await api.data(node, {"id": refund["id"]}, s.token))["node"] == {"status": "FAILED"}
    assert (await api.data(node, {"id": refund["id"]}, stranger.token))["node"] is None

    # The sweep retries it, backing off, until the due date passes; then flags it once.
    tries = 0
    while clock.now() < dt.datetime.fromisoformat(refund["dueAt"]):
        tries += len((await sweep.run_sweep()).refunds_retried)
        frozen_clock.advance(hours=1)
    assert 30 < tries < 60  # hourly ticks: every 5, 10, ... minutes, then every 6 hours
    report = await sweep.run_sweep()
    assert len(report.refunds_flagged) == 1
    assert (await sweep.run_sweep()).refunds_flagged == []
    late = (await api.data(REFUNDS, {"filter": {"overdue": True}}, mediator.token))["refunds"]
    [queued] = [e["node"] for e in late["edges"]]
    assert (queued["id"], queued["overdue"], queued["status"]) == (refund["id"], True, "FAILED")
    assert queued["flaggedAt"] == clock.now().isoformat()
    assert queued["attempts"] == tries + 1
    # The parties see their own refunds; another buyer sees none.
    for token, expected in ((b.token, 1), (s.token, 1), (stranger.token, 0)):
        mine = (await api.data(REFUNDS, {"filter": {"overdue": True}}, token))["refunds"]
        assert len(mine["edges"]) == expected
    settled = await api.data(REFUNDS, {"filter": {"status": "SETTLED"}}, mediator.token)
    assert settled["refunds"]["edges"] == []
    events = await api.data(
        "query($id: ID!) { order(id: $id) { events { kind actorKind } } }",
        {"id": gid("Order", order.id)}, mediator.token,
    )  # fmt: skip
    assert {"kind": "REFUND_OVERDUE", "actorKind": "SCHEDULER"} in events["order"]["events"]


# --- the assessment of each published rule, as the API shows it -------------------------

RULE_CASES = ["before-payment", "outside-window", "no-standard", "inspection-passed", "delay"]


async def _case(
    name: str, frozen_clock: clock.FrozenClock
) -> tuple[factories.Actor, Order, dict[str, Any]]:
    """An order set up for one rule, and the openDispute input fields that claim on it."""
    if name == "before-payment":
        b, _, order = await factories.confirmed_order()
        return b, order, {}
    if name == "outside-window":
        b, _, order = await domain.received_order()
        frozen_clock.advance(days=30)
        return b, order, {}
    if name == "no-standard":
        terms = dataclasses.replace(factories.contract(), quality=())
        b, _, order = await domain.received_order(terms)
        return b, order, {"reason": "NOT_AS_DESCRIBED"}
    if name == "inspection-passed":
        b, s, order = await domain.paid_order()
        await domain._inspected(b, order, InspectionResult.PASSED)
        shipment = lifecycle.Shipment("DHL", "1Z", clock.now())
        await lifecycle.ship_order(s.principal, order.id, shipment)
        await lifecycle.confirm_receipt(b.principal, order.id)
        return b, order, {}
    b, _, order = await domain.paid_order()
    frozen_clock.advance(days=31)  # past the shipping deadline: OVERDUE
    await sweep.run_sweep()
    return b, order, {"reason": "LATE_SHIPMENT", "delayAcceptedInWriting": True}


@pytest.mark.parametrize(
    ("case", "errors", "rules"),
    [
        ("before-payment", [{"code": "DISPUTE_BEFORE_PAYMENT", "field": "orderId"}], None),
        ("outside-window", [{"code": "OUTSIDE_CLAIM_WINDOW", "field": "orderId"}], None),
        ("no-standard", [], ["NO_QUALITY_STANDARD", "RAISED_AFTER_ARRIVAL_WITHOUT_INSPECTION"]),
        ("inspection-passed", [], ["INSPECTION_PASSED"]),
        ("delay", [], ["DELAY_ACCEPTED_IN_WRITING"]),
    ],
    ids=RULE_CASES,
)
async def test_each_rule_is_assessed_and_shown(
    api: Api,
    frozen_clock: clock.FrozenClock,
    case: str,
    errors: list[dict[str, str]],
    rules: list[str] | None,
) -> None:
    """Blocking rules refuse the claim with their own code and store nothing; the others
    are stored with the dispute, each with its reason, and shown to both parties and the
    mediator alike. (Freight and arrival-without-inspection: see the first test.)"""
    b, order, fields = await _case(case, frozen_clock)
    opened = await open_dispute(api, b.token, order, **fields)
    assert opened["errors"] == errors
    if rules is None:
        assert opened["dispute"] is None
        assert await Dispute.count().where(Dispute.order == order.id) == 0
        return
    findings = opened["dispute"]["assessment"]
    assert [f["rule"] for f in findings] == rules
    assert all(f["effect"] == "WEIGHS_AGAINST" and f["reason"] for f in findings)
    mediator = await factories.staff()
    seen = await api.data(ORDER_DISPUTE, {"id": gid("Order", order.id)}, mediator.token)
    assert seen["order"]["dispute"]["assessment"] == findings
