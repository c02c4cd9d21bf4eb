"""The payment provider's callback, `POST /webhooks/payments`, over HTTP against the real
domain and database: a signed `payment.succeeded` completes a bank transfer once; replays,
forgeries, stale or future-dated callbacks and unknown references change nothing."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from models import clock, ledger, payments
from models.clock import FrozenClock
from models.tables import LedgerPosting, Order, OrderEvent, Payment, ProviderEvent
from server.payments import signing
from server.payments.sandbox import WEBHOOK_PATH
from server.settings import DEFAULT_PAYMENT_WEBHOOK_SECRET, Settings
from tests import factories
from tests.api import Api, gid

pytest_plugins = ("tests.api_plugin",)

MONEY = "{ amount currency }"
PAY_TT = """mutation($id: ID!, $key: String!) {
  payOrder(input: {orderId: $id, amount: {amount: "1500.00", currency: "USD"}, method: TT,
    idempotencyKey: $key}) { payment { id status } errors { code } } }"""
ORDER = f"""query($id: ID!) {{ order(id: $id) {{ status
  money {{ paid {MONEY} held {MONEY} fees {MONEY} }}
  payments {{ status failureReason settledAt }}
  events {{ kind oldStatus newStatus actorKind reason }} }} }}"""


@pytest.fixture
def secret() -> str:
    """The app's webhook secret: the public development default in the test environment."""
    value = Settings.from_env().payment_webhook_secret
    assert value == DEFAULT_PAYMENT_WEBHOOK_SECRET
    return value


@pytest.fixture(autouse=True)
async def books_balance() -> AsyncIterator[None]:
    yield
    assert await ledger.check() == []


@dataclasses.dataclass
class Transfer:
    """A confirmed order with a pending T/T deposit, waiting for the provider's word."""

    buyer: factories.Actor
    order: Order
    payment_id: int

    @property
    def reference(self) -> str:
        return payments.payment_reference(self.payment_id)


@pytest.fixture
async def transfer(api: Api) -> Transfer:
    buyer, _, order = await factories.confirmed_order()
    payload = (await api.data(PAY_TT, {"id": gid("Order", order.id), "key": "tt"}, buyer.token))[
        "payOrder"
    ]
    assert payload["errors"] == [] and payload["payment"]["status"] == "PENDING"
    row = await Payment.select(Payment.id).where(Payment.order == order.id).first()
    assert row is not None
    return Transfer(buyer, order, int(row["id"]))


def event(
    event_type: str, reference: str, *, event_id: str = "evt_0001", reason: str | None = None
) -> bytes:
    """A provider event body, serialised once: the signature covers these exact bytes."""
    body = {
        "id": event_id,
        "type": event_type,
        "created": int(clock.now().timestamp()),
        "data": {"reference": reference, "provider_reference": "sbx_ch_1", "reason": reason},
    }
    return json.dumps(body, separators=(",", ":")).encode()


async def deliver(api: Api, body: bytes, signature: str | None, **headers: str) -> httpx.Response:
    sent = {"Content-Type": "application/json", **headers}
    if signature is not None:
        sent[signing.HEADER] = signature
    return await api.http("POST", WEBHOOK_PATH, content=body, headers=sent)


async def state(transfer: Transfer) -> dict[str, Any]:
    """Everything a callback could change, read from the database."""
    return {
        "payment": await Payment.select(
            Payment.status, Payment.failure_reason, Payment.settled_at
        ).where(Payment.id == transfer.payment_id),
        "order": await Order.select(Order.status).where(Order.id == transfer.order.id),
        "postings": await ledger.totals(),
        "events": await OrderEvent.count(),
        "provider_events": await ProviderEvent.count(),
    }


async def order_view(api: Api, transfer: Transfer) -> dict[str, Any]:
    data = await api.data(ORDER, {"id": gid("Order", transfer.order.id)}, transfer.buyer.token)
    order: dict[str, Any] = data["order"]
    return order


async def test_signed_success_completes_the_transfer_once(
    api: Api, transfer: Transfer, secret: str
) -> None:
    before = await order_view(api, transfer)
    assert before["status"] == "AWAITING_INITIAL_PAYMENT"
    assert before["money"]["paid"] == {"amount": "0.00", "currency": "USD"}

    body = event("payment.succeeded", transfer.reference)
    signature = signing.sign(secret, body, clock.now())
    response = await deliver(api, body, signature)
    assert (response.status_code, response.json()) == (200, {"received": True, "duplicate": False})

    after = await order_view(api, transfer)
    assert after["status"] == "AWAITING_BALANCE"
    assert after["money"] == {
        "paid": {"amount": "1500.00", "currency": "USD"},
        "held": {"amount": "1500.00", "currency": "USD"},
        "fees": {"amount": "0.00", "currency": "USD"},
    }
    assert after["payments"][0]["status"] == "SUCCEEDED"
    assert after["payments"][0]["settledAt"] is not None
    assert after["events"][-1] == {
        "kind": "PAYMENT_SUCCEEDED",
        "oldStatus": "AWAITING_INITIAL_PAYMENT",
        "newStatus": "AWAITING_BALANCE",
        "actorKind": "PAYMENT_PROVIDER",
        "reason": "TT 1500.00 USD in escrow",
    }
    settled = await state(transfer)
    assert settled["postings"] == ledger.LedgerTotals(postings=2, transactions=1)

    # The provider retries the very same delivery: acknowledged, and nothing moves twice.
    replay = await deliver(api, body, signature)
    assert (replay.status_code, replay.json()) == (200, {"received": True, "duplicate": True})
    assert await state(transfer) == settled
    # Another event with the same news (a new id) finds the payment settled already.
    news = event("payment.succeeded", transfer.reference, event_id="evt_0002")
    again = await deliver(api, news, signing.sign(secret, news, clock.now()))
    assert again.status_code == 200
    assert {k: v for k, v in (await state(transfer)).items() if k != "provider_events"} == {
        k: v for k, v in settled.items() if k != "provider_events"
    }
    assert await order_view(api, transfer) == after


async def _refused(
    api: Api, transfer: Transfer, body: bytes, signature: str | None, code: str
) -> None:
    before = await state(transfer)
    response = await deliver(api, body, signature)
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == code
    assert await state(transfer) == before
    assert before["payment"][0]["status"] == "PENDING"
    assert before["postings"] == ledger.LedgerTotals(postings=0, transactions=0)
    assert before["provider_events"] == 0


async def test_forged_callbacks_are_refused_and_change_nothing(
    api: Api, transfer: Transfer, secret: str
) -> None:
    body = event("payment.succeeded", transfer.reference)
    now = clock.now()
    await _refused(api, transfer, body, signing.sign("whsec_guessed", body, now), "BAD_SIGNATURE")
    # A genuine signature over another body (the reference swapped after signing).
    other = event("payment.succeeded", payments.payment_reference(transfer.payment_id + 1))
    await _refused(api, transfer, body, signing.sign(secret, other, now), "BAD_SIGNATURE")
    # The signed time moved without re-signing.
    genuine = signing.sign(secret, body, now)
    moved = genuine.replace(f"t={int(now.timestamp())}", f"t={int(now.timestamp()) + 1}")
    await _refused(api, transfer, body, moved, "BAD_SIGNATURE")
    await _refused(api, transfer, body, None, "MISSING_SIGNATURE")
    await _refused(api, transfer, body, "t=1,v1=nothex", "MALFORMED_SIGNATURE")

    # The event itself was never consumed: the genuine delivery still works.
    response = await deliver(api, body, genuine)
    assert (response.status_code, response.json()["duplicate"]) == (200, False)
    assert (await order_view(api, transfer))["status"] == "AWAITING_BALANCE"


async def test_stale_and_future_dated_callbacks_are_refused(
    api: Api, frozen_clock: FrozenClock, secret: str
) -> None:
    buyer, _, order = await factories.confirmed_order()
    payload = (await api.data(PAY_TT, {"id": gid("Order", order.id), "key": "tt"}, buyer.token))[
        "payOrder"
    ]
    assert payload["payment"]["status"] == "PENDING"
    row = await Payment.select(Payment.id).where(Payment.order == order.id).first()
    assert row is not None
    transfer = Transfer(buyer, order, int(row["id"]))
    body = event("payment.succeeded", transfer.reference)

    signed_at = frozen_clock.current
    signature = signing.sign(secret, body, signed_at)
    frozen_clock.advance(seconds=301)  # the delivery arrives over five minutes late
    await _refused(api, transfer, body, signature, "TIMESTAMP_OUT_OF_TOLERANCE")
    future = signing.sign(secret, body, frozen_clock.current + dt.timedelta(seconds=301))
    await _refused(api, transfer, body, future, "TIMESTAMP_OUT_OF_TOLERANCE")

    # Five minutes either way is still on time.
    frozen_clock.current = signed_at + dt.timedelta(seconds=300)
    response = await deliver(api, body, signature)
    assert (response.status_code, response.json()["duplicate"]) == (200, False)
    assert (await state(transfer))["payment"][0]["status"] == "SUCCEEDED"


async def test_failed_transfer_is_marked_failed_and_moves_nothing(
    api: Api, transfer: Transfer, secret: str
) -> None:
    body = event("payment.failed", transfer.reference, reason="account_closed")
    response = await deliver(api, body, signing.sign(secret, body, clock.now()))
    assert (response.status_code, response.json()) == (200, {"received": True, "duplicate": False})
    after = await order_view(api, transfer)
    assert after["status"] == "AWAITING_INITIAL_PAYMENT"
    assert after["payments"][0]["status"] == "FAILED"
    assert after["payments"][0]["failureReason"] == "account_closed"
    assert after["money"]["paid"] == {"amount": "0.00", "currency": "USD"}
    assert (after["events"][-1]["kind"], after["events"][-1]["actorKind"]) == (
        "PAYMENT_FAILED",
        "PAYMENT_PROVIDER",
    )
    assert await LedgerPosting.count() == 0
    # A late success for the failed payment does not resurrect it.
    late = event("payment.succeeded", transfer.reference, event_id="evt_0002")
    response = await deliver(api, late, signing.sign(secret, late, clock.now()))
    assert response.status_code == 200
    assert (await state(transfer))["payment"][0]["status"] == "FAILED"
    assert await LedgerPosting.count() == 0
    # The buyer can pay again.
    retry = await api.data(
        PAY_TT, {"id": gid("Order", transfer.order.id), "key": "tt-2"}, transfer.buyer.token
    )
    assert retry["payOrder"]["errors"] == []


@pytest.mark.parametrize("reference", ["pay_999999", "ref_999999", "order_1"])
async def test_unknown_reference_is_refused_and_changes_nothing(
    api: Api, transfer: Transfer, secret: str, reference: str
) -> None:
    before = await state(transfer)
    body = event("payment.succeeded", reference)
    response = await deliver(api, body, signing.sign(secret, body, clock.now()))
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "UNKNOWN_REFERENCE"
    assert await state(transfer) == before
    assert before["provider_events"] == 0  # not even the event id was kept


async def test_malformed_events_are_refused(api: Api, transfer: Transfer, secret: str) -> None:
    before = await state(transfer)
    for body, code in [
        (b"not json", "MALFORMED_EVENT"),
        (event("payment.refunded", transfer.reference), "UNKNOWN_EVENT_TYPE"),
        (event("payment.succeeded", transfer.reference, event_id="nope"), "MALFORMED_EVENT"),
    ]:
        response = await deliver(api, body, signing.sign(secret, body, clock.now()))
        assert (response.status_code, response.json()["error"]["code"]) == (400, code)
    assert await state(transfer) == before
