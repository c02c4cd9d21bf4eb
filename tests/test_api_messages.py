"""The order conversation over the API (gql client): sending, the paged list on the order,
refusals as data with nothing written, files as GraphQL multipart uploads and their
download, the mediator before and after escalation, a dispute citing a message, and an
idempotent retry."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx
import pytest

from models import clock, disputes, events
from models.enums import DisputeResponse
from models.tables import OrderEvent, OrderMessage, OrderMessageAttachment
from tests import factories
from tests.api import Api, bearer, gid
from tests.test_disputes import open_, received_order

pytest_plugins = ("tests.api_plugin",)

MESSAGE = """id body authorRole sentAt authorCompany { id }
  attachments { filename contentType size sha256 url }"""
SEND = f"""mutation($input: SendOrderMessageInput!) {{
  sendOrderMessage(input: $input) {{ message {{ {MESSAGE} }} errors {{ code field }} }} }}"""
LIST = """query($id: ID!, $first: Int!, $after: String) { order(id: $id) {
  messages(first: $first, after: $after) {
    edges { cursor node { body authorRole } } pageInfo { hasNextPage endCursor } }
  events { kind } } }"""
NODE = "query($id: ID!) { node(id: $id) { ... on OrderMessage { body order { id } } } }"
PDF = b"%PDF-1.7\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"


@pytest.fixture(autouse=True)
def long_lived_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TA_TOKEN_TTL_HOURS", str(24 * 365))


async def send(api: Api, token: str, order_id: int, body: str, **extra: Any) -> dict[str, Any]:
    variables = {"input": {"orderId": gid("Order", order_id), "body": body, **extra}}
    result: dict[str, Any] = (await api.data(SEND, variables, token))["sendOrderMessage"]
    return result


async def _written() -> tuple[int, int, int]:
    return (
        await OrderMessage.count(),
        await OrderEvent.count().where(OrderEvent.kind == events.MESSAGE_SENT),
        await OrderMessageAttachment.count(),
    )


async def test_send_and_list_with_pagination(api: Api) -> None:
    b, s, order = await factories.confirmed_order()
    sent = await send(api, b.token, order.id, "  When do you ship?  ")
    assert sent["errors"] == []
    m = sent["message"]
    assert (m["body"], m["authorRole"], m["attachments"]) == ("When do you ship?", "BUYER", [])
    assert m["authorCompany"]["id"] == gid("Company", b.principal.company_id)
    for n in range(3):
        assert (await send(api, s.token, order.id, f"answer {n}"))["errors"] == []
    bodies: list[str] = []
    after = None
    while True:
        variables = {"id": gid("Order", order.id), "first": 2, "after": after}
        seen = (await api.data(LIST, variables, b.token))["order"]
        page = seen["messages"]
        bodies += [e["node"]["body"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert bodies == ["When do you ship?", "answer 0", "answer 1", "answer 2"]
    # Messages stay out of the order's timeline.
    assert "MESSAGE_SENT" not in {e["kind"] for e in seen["events"]}
    errors = await api.errors(LIST, {"id": gid("Order", order.id), "first": 101}, b.token)
    assert errors[0]["extensions"]["code"] == "PAGE_SIZE_OUT_OF_RANGE"
    # A message is a node for those who may see its order.
    stranger = await factories.buyer()
    assert (await api.data(NODE, {"id": m["id"]}, s.token))["node"]["body"] == "When do you ship?"
    assert (await api.data(NODE, {"id": m["id"]}, stranger.token))["node"] is None


async def test_each_refusal_is_data_and_writes_nothing(api: Api) -> None:
    b, _, order = await factories.confirmed_order()
    stranger = await factories.buyer()
    mediator = await factories.staff()
    before = await _written()
    cases = [
        (b.token, order.id, " ", {"code": "MESSAGE_EMPTY", "field": "body"}),
        (b.token, order.id, "x" * 4_001, {"code": "MESSAGE_TOO_LONG", "field": "body"}),
        (stranger.token, order.id, "hi", {"code": "NOT_FOUND", "field": "orderId"}),
        (mediator.token, order.id, "hi", {"code": "DISPUTE_NOT_ESCALATED", "field": "orderId"}),
    ]
    for token, order_id, body, error in cases:
        assert await send(api, token, order_id, body) == {"message": None, "errors": [error]}
    wrong_type = {"input": {"orderId": gid("Supplier", 1), "body": "hi"}}
    refused = (await api.data(SEND, wrong_type, b.token))["sendOrderMessage"]
    assert refused["errors"] == [{"code": "NOT_FOUND", "field": "orderId"}]
    assert await _written() == before
    # The other buyer cannot read it either.
    variables = {"id": gid("Order", order.id), "first": 10}
    assert (await api.data(LIST, variables, stranger.token))["order"] is None


async def test_an_idempotent_retry_posts_once(api: Api) -> None:
    b, _, order = await factories.confirmed_order()
    first = await send(api, b.token, order.id, "Deposit sent", idempotencyKey="msg-1")
    again = await send(api, b.token, order.id, "Deposit sent", idempotencyKey="msg-1")
    assert first["errors"] == [] and again == first
    other = await send(api, b.token, order.id, "Something else", idempotencyKey="msg-1")
    assert other["errors"] == [{"code": "IDEMPOTENCY_KEY_REUSED", "field": "idempotencyKey"}]
    assert await OrderMessage.count() == 1


async def send_files(
    api: Api, token: str, order_id: int, files: list[tuple[str, bytes, str]]
) -> dict[str, Any]:
    """A GraphQL multipart request, as inspection reports send theirs."""
    operations = {
        "query": SEND,
        "variables": {
            "input": {
                "orderId": gid("Order", order_id),
                "body": "The specification, signed",
                "attachments": [{"file": None, "sha256": checksum} for _, _, checksum in files],
            }
        },
    }
    mapping = {str(n): [f"variables.input.attachments.{n}.file"] for n in range(len(files))}
    response = await api.http(
        "POST",
        data={"operations": json.dumps(operations), "map": json.dumps(mapping)},
        files={str(n): (name, data, "application/pdf") for n, (name, data, _) in enumerate(files)},
        headers=bearer(token) | {"Apollo-Require-Preflight": "true"},
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["data"]["sendOrderMessage"]
    return result


async def test_files_upload_and_download_for_the_parties_only(api: Api) -> None:
    b, s, order = await factories.confirmed_order()
    stranger = await factories.buyer()
    mediator = await factories.staff()
    checksum = hashlib.sha256(PDF).hexdigest()
    tampered = await send_files(api, b.token, order.id, [("spec.pdf", PDF, "0" * 64)])
    assert tampered["errors"] == [
        {"code": "FILE_CHECKSUM_MISMATCH", "field": "attachments.0.sha256"}
    ]
    assert await _written() == (0, 0, 0)
    sent = await send_files(api, b.token, order.id, [("spec.pdf", PDF, checksum)])
    assert sent["errors"] == []
    (attachment,) = sent["message"]["attachments"]
    assert (attachment["contentType"], attachment["size"], attachment["sha256"]) == (
        "application/pdf", len(PDF), checksum
    )  # fmt: skip
    for who in (b, s, mediator):
        got: httpx.Response = await api.http("GET", attachment["url"], headers=bearer(who.token))
        assert (got.status_code, got.content) == (200, PDF)
        assert got.headers["x-content-sha256"] == checksum
    denied = await api.http("GET", attachment["url"], headers=bearer(stranger.token))
    assert denied.status_code == 404
    anonymous = await api.http("GET", attachment["url"])
    assert anonymous.status_code == 401


async def test_the_mediator_joins_once_the_dispute_is_escalated(
    api: Api, frozen_clock: clock.FrozenClock
) -> None:
    b, s, order = await received_order()
    mediator = await factories.staff()
    d = await open_(b, order)
    await disputes.respond_to_dispute(
        s.principal, d.id, DisputeResponse.REJECT, text="They conform", idempotency_key="r"
    )
    early = await send(api, mediator.token, order.id, "Please send the lab data.")
    assert early["errors"] == [{"code": "DISPUTE_NOT_ESCALATED", "field": "orderId"}]
    frozen_clock.advance(days=3)
    await disputes.escalate_dispute(b.principal, d.id)
    joined = await send(api, mediator.token, order.id, "Please send the lab data.")
    assert joined["errors"] == [] and joined["message"]["authorRole"] == "MEDIATOR"
    variables = {"id": gid("Order", order.id), "first": 10}
    listed = (await api.data(LIST, variables, s.token))["order"]["messages"]["edges"]
    assert [e["node"]["authorRole"] for e in listed] == ["MEDIATOR"]


OPEN = """mutation($input: OpenDisputeInput!) { openDispute(input: $input) {
  dispute { evidence { party text message { id body authorRole } } } errors { code field } } }"""


async def test_a_dispute_cites_messages_of_its_own_order(api: Api) -> None:
    b, s, order = await received_order()
    _, _, other = await factories.confirmed_order(buyer_actor=b)
    admitted = (await send(api, s.token, order.id, "We used 30 W drivers"))["message"]
    elsewhere = (await send(api, b.token, other.id, "another order"))["message"]

    def dispute_input(*cited: str) -> dict[str, Any]:
        return {"input": {
            "orderId": gid("Order", order.id), "reason": "QUALITY_NOT_AS_AGREED",
            "requestedRefund": {"amount": "1000.00", "currency": "USD"},
            "description": "40 W agreed", "idempotencyKey": "open-" + "-".join(cited),
            "evidence": [{"text": "the supplier admits it", "messageId": c} for c in cited],
        }}  # fmt: skip

    wrong = await api.data(OPEN, dispute_input(admitted["id"], elsewhere["id"]), b.token)
    assert wrong["openDispute"]["errors"] == [
        {"code": "MESSAGE_NOT_IN_ORDER", "field": "evidence.1.messageId"}
    ]
    not_a_message = await api.data(OPEN, dispute_input(gid("Order", order.id)), b.token)
    assert not_a_message["openDispute"]["errors"][0]["code"] == "MESSAGE_NOT_IN_ORDER"
    opened = (await api.data(OPEN, dispute_input(admitted["id"]), b.token))["openDispute"]
    assert opened["errors"] == []
    assert opened["dispute"]["evidence"] == [{
        "party": "BUYER", "text": "the supplier admits it",
        "message": {"id": admitted["id"], "body": "We used 30 W drivers",
                    "authorRole": "SUPPLIER"},
    }]  # fmt: skip
