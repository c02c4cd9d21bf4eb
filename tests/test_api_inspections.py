"""Inspections over the API: booking with the fee, the inspector's answer, reports with
real GraphQL multipart uploads (good, oversized, disallowed and tampered files), the
download route, the PASSED and FAILED paths, and permissions. Every test ends with a
clean `ledger.check()`."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from strawberry.relay import from_base64

from models import config, inspections, ledger
from models.tables import Inspection, InspectionAttachment, LedgerPosting, Order, OrderEvent
from server.payments.sandbox import CARD_SUCCEEDS
from tests import factories
from tests.api import Api, bearer, gid, make_app, run_cli

pytest_plugins = ("tests.api_plugin",)

MONEY = "{ amount currency }"
ERRORS = "errors { code message field }"
INSPECTION = f"""id status date fee {MONEY} result findings declineReason
  inspector {{ legalName }} feePayment {{ status amount {MONEY} fee {MONEY} }}
  qualityRequirements {{ attribute requirement }}
  attachments {{ filename contentType size sha256 url }}"""
ORDER = f"""id status money {{ paid {MONEY} held {MONEY} refunded {MONEY} }}
  inspections {{ id status }}"""
BOOK = f"""mutation($order: ID!, $inspector: ID!, $date: Date!, $key: String!) {{
  bookInspection(input: {{orderId: $order, inspectorId: $inspector, date: $date,
    method: CARD, paymentSource: "{CARD_SUCCEEDS}", idempotencyKey: $key}}) {{
    inspection {{ {INSPECTION} }} payment {{ status }} order {{ {ORDER} }} {ERRORS} }} }}"""
ACCEPT = f"""mutation($id: ID!) {{ acceptInspection(input: {{inspectionId: $id}}) {{
  inspection {{ id status }} {ERRORS} }} }}"""
DECLINE = f"""mutation($id: ID!) {{ declineInspection(input: {{inspectionId: $id,
  reason: "no inspector free that week"}}) {{ inspection {{ id status declineReason }}
  {ERRORS} }} }}"""
REPORT = f"""mutation($input: SubmitInspectionReportInput!) {{
  submitInspectionReport(input: $input) {{ inspection {{ {INSPECTION} }} {ERRORS} }} }}"""
CLAIM = f"""mutation($order: ID!, $key: String!) {{
  claimInspectionRefund(input: {{orderId: $order, idempotencyKey: $key}}) {{
    refunded {MONEY} order {{ {ORDER} }} {ERRORS} }} }}"""
GET = f"query($id: ID!) {{ inspection(id: $id) {{ {INSPECTION} }} }}"
LIST = """query($after: String) { inspections(first: 1, after: $after) {
  edges { node { id status } } pageInfo { hasNextPage endCursor } } }"""

PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64
GIF = b"GIF89a" + b"\x00" * 64


def usd(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "USD"}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def db_id(global_id: str) -> int:
    return int(from_base64(global_id)[1])


def codes(payload: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(e["code"], e["field"]) for e in payload["errors"]]


@pytest.fixture(autouse=True)
async def books_balance() -> AsyncIterator[None]:
    yield
    assert await ledger.check() == []


def tomorrow() -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).date().isoformat()


async def paid_order() -> tuple[factories.Actor, factories.Actor, Order]:
    from models import payments
    from models.enums import PaymentMethod
    from models.money import Money

    b, s, order = await factories.confirmed_order()
    await payments.pay_order(
        b.principal, order.id, Money(1_500_00, "USD"), PaymentMethod.CARD,
        idempotency_key="deposit", source=CARD_SUCCEEDS,
    )  # fmt: skip
    return b, s, order


async def book(
    api: Api, token: str, order: Order, inspector: factories.Actor, date: str | None = None,
    key: str = "book",
) -> dict[str, Any]:  # fmt: skip
    variables = {
        "order": gid("Order", order.id),
        "inspector": gid("Company", inspector.principal.company_id),
        "date": date or tomorrow(),
        "key": key,
    }
    payload: dict[str, Any] = (await api.data(BOOK, variables, token))["bookInspection"]
    return payload


async def report(
    api: Api,
    token: str,
    inspection_id: str,
    result: str,
    files: list[tuple[str, bytes, str]],
    *,
    content_type: str = "application/pdf",
    preflight: bool = True,
) -> httpx.Response:
    """A GraphQL multipart request (github.com/jaydenseric/graphql-multipart-request-spec):
    `operations` with nulls where the files go, `map` from file fields to those paths."""
    operations = {
        "query": REPORT,
        "variables": {
            "input": {
                "inspectionId": inspection_id,
                "result": result,
                "findings": "Luminous flux measured on 20 of 2 000 panels.",
                "attachments": [{"file": None, "sha256": checksum} for _, _, checksum in files],
            }
        },
    }
    mapping = {str(n): [f"variables.input.attachments.{n}.file"] for n in range(len(files))}
    headers = bearer(token) | ({"Apollo-Require-Preflight": "true"} if preflight else {})
    return await api.http(
        "POST",
        data={"operations": json.dumps(operations), "map": json.dumps(mapping)},
        files={str(n): (name, data, content_type) for n, (name, data, _) in enumerate(files)},
        headers=headers,
    )


def payload_of(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["submitInspectionReport"]
    return result


async def accepted(
    api: Api,
) -> tuple[factories.Actor, factories.Actor, factories.Actor, Order, str]:
    b, s, order = await paid_order()
    insp = await factories.inspector("SGS Test SA")
    booked = await book(api, b.token, order, insp)
    assert booked["errors"] == [], booked
    iid = booked["inspection"]["id"]
    accepted = (await api.data(ACCEPT, {"id": iid}, insp.token))["acceptInspection"]
    assert (accepted["inspection"]["status"], accepted["errors"]) == ("ACCEPTED", [])
    return b, s, insp, order, iid


async def _state() -> tuple[int, ...]:
    return (
        await InspectionAttachment.count(),
        await LedgerPosting.count(),
        await OrderEvent.count(),
        await Inspection.count(),
    )


# --- the PASSED path ------------------------------------------------------------------


async def test_book_accept_and_pass_pays_the_inspector(api: Api) -> None:
    b, s, order = await paid_order()
    insp = await factories.inspector("SGS Test SA")
    listed = await api.data(
        "{ inspectors { company { legalName } fee { amount } } }", None, b.token
    )
    assert {"company": {"legalName": "SGS Test SA"}, "fee": {"amount": "300.00"}} in listed[
        "inspectors"
    ]
    booked = await book(api, b.token, order, insp)
    assert booked["errors"] == []
    inspection = booked["inspection"]
    assert (inspection["status"], inspection["fee"], inspection["date"]) == (
        "REQUESTED",
        usd("300.00"),
        tomorrow(),
    )
    assert inspection["feePayment"] == {
        "status": "SUCCEEDED", "amount": usd("300.00"), "fee": usd("8.40"),
    }  # fmt: skip
    assert inspection["qualityRequirements"][0]["attribute"] == "luminous flux"
    # The order shows the inspection; its goods money does not include the fee.
    assert booked["order"]["inspections"] == [{"id": inspection["id"], "status": "REQUESTED"}]
    assert booked["order"]["money"]["held"] == usd("1500.00")
    # The inspector sees its bookings (paginated), but not the order itself.
    page = (await api.data(LIST, None, insp.token))["inspections"]
    assert [e["node"]["id"] for e in page["edges"]] == [inspection["id"]]
    assert page["pageInfo"]["hasNextPage"] is False
    seen = (await api.data(GET, {"id": inspection["id"]}, insp.token))["inspection"]
    assert seen["status"] == "REQUESTED"
    order_seen = await api.data(
        "query($id: ID!) { order(id: $id) { id } }", {"id": gid("Order", order.id)}, insp.token
    )
    assert order_seen["order"] is None

    accepted = (await api.data(ACCEPT, {"id": inspection["id"]}, insp.token))["acceptInspection"]
    assert accepted["inspection"]["status"] == "ACCEPTED"
    response = await report(api, insp.token, inspection["id"], "PASSED", [("r.pdf", PDF, sha(PDF))])
    done = payload_of(response)
    assert done["errors"] == []
    assert (done["inspection"]["status"], done["inspection"]["result"]) == ("PASSED", "PASSED")
    [attachment] = done["inspection"]["attachments"]
    assert attachment == {
        "filename": "r.pdf",
        "contentType": "application/pdf",
        "size": len(PDF),
        "sha256": sha(PDF),
        "url": attachment["url"],
    }
    # The fee is the inspector's now.
    assert await ledger.fee_held(db_id(inspection["id"])) == 0

    # Downloads: the parties, the inspector; nobody else.
    for who in (b, s, insp):
        got = await api.http("GET", attachment["url"], headers=bearer(who.token))
        assert got.status_code == 200 and got.content == PDF
        assert got.headers["content-type"] == "application/pdf"
    stranger = await factories.buyer()
    got = await api.http("GET", attachment["url"], headers=bearer(stranger.token))
    assert (got.status_code, got.json()["error"]["code"]) == (404, "NOT_FOUND")
    assert (await api.http("GET", attachment["url"])).status_code == 401
    # A file changed on disk is refused, never served.
    inspections.attachment_path(sha(PDF)).write_bytes(PDF + b"%% changed\n")
    got = await api.http("GET", attachment["url"], headers=bearer(b.token))
    assert (got.status_code, got.json()["error"]["code"]) == (500, "ATTACHMENT_CORRUPTED")


# --- the FAILED path ------------------------------------------------------------------


async def test_failed_report_refunds_fee_and_buyer_claims_the_goods_money(api: Api) -> None:
    b, s, insp, order, iid = await accepted(api)
    no_claim = await api.data(CLAIM, {"order": gid("Order", order.id), "key": "c"}, b.token)
    assert codes(no_claim["claimInspectionRefund"]) == [("NO_FAILED_INSPECTION", "orderId")]
    response = await report(api, insp.token, iid, "FAILED", [("p.jpg", JPEG, sha(JPEG))])
    done = payload_of(response)
    assert done["errors"] == []
    assert done["inspection"]["status"] == "FAILED"
    assert done["inspection"]["attachments"][0]["contentType"] == "image/jpeg"
    assert await ledger.fee_held(db_id(iid)) == 0
    # The supplier cannot claim; the buyer can, once.
    by_supplier = await api.data(CLAIM, {"order": gid("Order", order.id), "key": "c"}, s.token)
    assert codes(by_supplier["claimInspectionRefund"]) == [("NOT_ORDER_BUYER", "orderId")]
    claim = (await api.data(CLAIM, {"order": gid("Order", order.id), "key": "c"}, b.token))[
        "claimInspectionRefund"
    ]
    assert claim["errors"] == []
    assert claim["refunded"] == usd("1500.00")
    assert claim["order"]["status"] == "REFUNDED"
    assert claim["order"]["money"] == {
        "paid": usd("1500.00"), "held": usd("0.00"), "refunded": usd("1500.00"),
    }  # fmt: skip
    again = await api.data(CLAIM, {"order": gid("Order", order.id), "key": "c"}, b.token)
    assert again["claimInspectionRefund"]["refunded"] == usd("1500.00")
    result = run_cli("ledger-check")
    assert result.returncode == 0 and "ledger OK" in result.stdout, result.stdout + result.stderr


async def test_declined_booking_gives_the_fee_back(api: Api) -> None:
    b, _, order = await paid_order()
    insp = await factories.inspector()
    iid = (await book(api, b.token, order, insp))["inspection"]["id"]
    declined = (await api.data(DECLINE, {"id": iid}, insp.token))["declineInspection"]
    assert declined["inspection"]["status"] == "DECLINED"
    assert await ledger.fee_held(db_id(iid)) == 0


# --- uploads that are refused ---------------------------------------------------------


async def test_bad_files_are_refused_and_change_nothing() -> None:
    api = Api(make_app(domain=dataclasses.replace(config.DomainConfig(), attachment_max_bytes=200)))
    _, _, insp, _, iid = await accepted(api)
    before = await _state()
    big = PDF + b"0" * 300
    cases = [
        ([("big.pdf", big, sha(big))], "FILE_TOO_LARGE", "attachments.0.file"),
        ([("a.gif", GIF, sha(GIF))], "FILE_TYPE_NOT_ALLOWED", "attachments.0.file"),
        # a GIF that claims to be a PDF: the bytes decide, not the content type
        ([("a.pdf", GIF, sha(GIF))], "FILE_TYPE_NOT_ALLOWED", "attachments.0.file"),
        (
            [("ok.pdf", PDF, sha(PDF)), ("t.jpg", JPEG, sha(JPEG + b"x"))],
            "FILE_CHECKSUM_MISMATCH",
            "attachments.1.sha256",
        ),
    ]
    for files, code, field in cases:
        done = payload_of(await report(api, insp.token, iid, "PASSED", files))
        assert codes(done) == [(code, field)]
        assert await _state() == before
    # Without the preflight header (CSRF protection) the request is not even parsed.
    refused = await report(api, insp.token, iid, "PASSED", [("ok.pdf", PDF, sha(PDF))],
                           preflight=False)  # fmt: skip
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["extensions"]["code"] == "CSRF_PREFLIGHT_REQUIRED"
    assert await _state() == before
    row = await Inspection.objects().get(Inspection.id == db_id(iid))
    assert row is not None and row.status == "ACCEPTED"


async def test_an_oversized_multipart_request_gets_413() -> None:
    api = Api(make_app(max_upload_request_bytes=4_000))
    _, _, insp, _, iid = await accepted(api)
    huge = PDF + b"0" * 5_000
    response = await report(api, insp.token, iid, "PASSED", [("huge.pdf", huge, sha(huge))])
    assert response.status_code == 413
    # A plain JSON request is still held to the ordinary, smaller limit.
    assert (await api.post("{ viewer { role } }" + " " * 1_000_001)).status_code == 413


# --- permissions and bad input --------------------------------------------------------


async def test_permissions_and_bad_booking_input(api: Api) -> None:
    b, s, order = await paid_order()
    insp = await factories.inspector()
    other_inspector = await factories.inspector()
    stranger = await factories.buyer()
    before = await _state()
    deadline = order.shipping_deadline.date()
    yesterday = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).date().isoformat()
    supplier_company = factories.Actor(s.principal, s.token, s.email)
    cases = [
        (stranger.token, insp, None, ("NOT_FOUND", "orderId")),
        (s.token, insp, None, ("NOT_ORDER_BUYER", "orderId")),
        (b.token, supplier_company, None, ("NOT_AN_INSPECTOR", "inspectorId")),
        (b.token, insp, yesterday, ("INSPECTION_DATE_IN_PAST", "date")),
        (b.token, insp, deadline.isoformat(), ("INSPECTION_DATE_NOT_BEFORE_DEADLINE", "date")),
    ]
    for n, (token, inspector, date, expected) in enumerate(cases):
        payload = await book(api, token, order, inspector, date, key=f"k{n}")
        assert codes(payload) == [expected]
        assert payload["inspection"] is None
    assert await _state() == before

    iid = (await book(api, b.token, order, insp))["inspection"]["id"]
    # Another buyer and an unbooked inspector cannot see it.
    for who in (stranger, other_inspector):
        assert (await api.data(GET, {"id": iid}, who.token))["inspection"] is None
    assert (await api.data(GET, {"id": iid}, s.token))["inspection"]["status"] == "REQUESTED"
    for who, visible in ((s, [iid]), (b, [iid]), (stranger, []), (other_inspector, [])):
        page = (await api.data(LIST, None, who.token))["inspections"]
        assert [e["node"]["id"] for e in page["edges"]] == visible
    before = await _state()
    refused = (await api.data(ACCEPT, {"id": iid}, other_inspector.token))["acceptInspection"]
    assert codes(refused) == [("NOT_BOOKED_INSPECTOR", "inspectionId")]
    # Reporting before accepting, and by an inspector who was not booked.
    files = [("ok.pdf", PDF, sha(PDF))]
    early = payload_of(await report(api, insp.token, iid, "FAILED", files))
    assert codes(early) == [("INSPECTION_NOT_ACCEPTED", "inspectionId")]
    wrong = payload_of(await report(api, other_inspector.token, iid, "FAILED", files))
    assert codes(wrong) == [("NOT_BOOKED_INSPECTOR", "inspectionId")]
    assert await _state() == before
    # Reported once, never twice.
    await api.data(ACCEPT, {"id": iid}, insp.token)
    assert payload_of(await report(api, insp.token, iid, "PASSED", files))["errors"] == []
    twice = payload_of(await report(api, insp.token, iid, "FAILED", files))
    assert codes(twice) == [("REPORT_ALREADY_SUBMITTED", "inspectionId")]
