"""Money over the API: the fee quote, paying into escrow with the sandbox's test cards and
bank transfers, idempotency keys, and releasing held funds. Every test ends with a clean
`ledger.check()`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from models import accounts, ledger
from models.enums import Scope
from models.tables import IdempotencyRecord, LedgerPosting, Order, OrderEvent, Payment
from server.payments.sandbox import (
    CARD_DECLINED,
    CARD_INSUFFICIENT_FUNDS,
    CARD_PROCESSING_ERROR,
    CARD_SUCCEEDS,
)
from tests import factories
from tests.api import Api, gid

pytest_plugins = ("tests.api_plugin",)

MONEY = "{ amount currency }"
ERRORS = "errors { code message field }"
PAYMENT = f"id method status amount {MONEY} fee {MONEY} failureReason settledAt"
ORDER = f"""id status
  money {{ paid {MONEY} held {MONEY} released {MONEY} refunded {MONEY} refundPending {MONEY}
    fees {MONEY} }}
  coverage {{ preShipment {MONEY} postDelivery {MONEY} }}
  payments {{ {PAYMENT} }}"""
QUOTE = f"""query($amount: MoneyInput!, $method: PaymentMethod!) {{
  paymentQuote(amount: $amount, method: $method) {{
    amount {MONEY} fee {MONEY} totalCharge {MONEY} }} }}"""
PAY = f"""mutation($id: ID!, $amount: MoneyInput!, $method: PaymentMethod!, $source: String,
  $key: String!) {{
  payOrder(input: {{orderId: $id, amount: $amount, method: $method, paymentSource: $source,
    idempotencyKey: $key}}) {{ payment {{ {PAYMENT} }} order {{ {ORDER} }} {ERRORS} }} }}"""
RELEASE = f"""mutation($id: ID!, $amount: MoneyInput, $key: String!) {{
  releaseFunds(input: {{orderId: $id, amount: $amount, idempotencyKey: $key}}) {{
    released {MONEY} order {{ {ORDER} }} {ERRORS} }} }}"""
CANCEL = f"""mutation($id: ID!) {{
  cancelOrder(input: {{orderId: $id, reason: "changed my mind"}}) {{ {ERRORS} }} }}"""


def usd(amount: str, currency: str = "USD") -> dict[str, str]:
    return {"amount": amount, "currency": currency}


ZERO = usd("0.00")


@pytest.fixture(autouse=True)
async def books_balance() -> AsyncIterator[None]:
    """Whatever a test did through the API, the ledger's invariants hold afterwards."""
    yield
    assert await ledger.check() == []


async def pay(
    api: Api,
    token: str,
    order: Order,
    amount: str,
    key: str,
    method: str = "CARD",
    source: str | None = CARD_SUCCEEDS,
) -> dict[str, Any]:
    variables = {
        "id": gid("Order", order.id),
        "amount": usd(amount),
        "method": method,
        "source": source,
        "key": key,
    }
    payload: dict[str, Any] = (await api.data(PAY, variables, token))["payOrder"]
    return payload


async def release(
    api: Api, token: str, order: Order, key: str, amount: str | None = None
) -> dict[str, Any]:
    variables = {
        "id": gid("Order", order.id),
        "amount": usd(amount) if amount is not None else None,
        "key": key,
    }
    payload: dict[str, Any] = (await api.data(RELEASE, variables, token))["releaseFunds"]
    return payload


def codes(payload: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(e["code"], e["field"]) for e in payload["errors"]]


async def _books() -> tuple[int, int, int]:
    """Payments, ledger postings and order events: what a repeated request must not add to."""
    return await Payment.count(), await LedgerPosting.count(), await OrderEvent.count()


async def _status(order: Order) -> str:
    row = await Order.select(Order.status).where(Order.id == order.id).first()
    assert row is not None
    return str(row["status"])


# --- the quote ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "amount", "fee", "total"),
    [
        ("CARD", "1500.00", "42.00", "1542.00"),
        ("CARD", "0.10", "0.00", "0.10"),  # 0.28 cents rounds to nothing
        ("CARD", "0.18", "0.01", "0.19"),  # 0.504 cents rounds half up
        ("TT", "1500.00", "0.00", "1500.00"),
        ("PAY_LATER", "1500.00", "0.00", "1500.00"),
    ],
)
async def test_payment_quote(api: Api, method: str, amount: str, fee: str, total: str) -> None:
    buyer = await factories.buyer()
    quote = (await api.data(QUOTE, {"amount": usd(amount), "method": method}, buyer.token))[
        "paymentQuote"
    ]
    assert quote == {"amount": usd(amount), "fee": usd(fee), "totalCharge": usd(total)}


async def test_payment_quote_in_yen_and_refusals(api: Api) -> None:
    buyer = await factories.buyer()
    yen = await api.data(QUOTE, {"amount": usd("100000", "JPY"), "method": "CARD"}, buyer.token)
    assert yen["paymentQuote"]["fee"] == usd("2800", "JPY")
    errors = await api.errors(
        QUOTE, {"amount": usd("1.234"), "method": "CARD"}, buyer.token
    )  # more places than USD has
    assert errors[0]["extensions"]["code"] == "INVALID_AMOUNT"
    for nothing in ("0", "-100.00"):  # -100.00 was quoted a fee of -2.80
        errors = await api.errors(QUOTE, {"amount": usd(nothing), "method": "CARD"}, buyer.token)
        assert errors[0]["extensions"]["code"] == "INVALID_AMOUNT"
    errors = await api.errors(QUOTE, {"amount": usd("1500.00"), "method": "CARD"})
    assert errors[0]["extensions"]["code"] == "UNAUTHENTICATED"


# --- paying ---------------------------------------------------------------------------


async def test_card_payments_fill_escrow_with_the_fee_on_top(api: Api) -> None:
    buyer, _, order = await factories.confirmed_order()
    deposit = await pay(api, buyer.token, order, "1500.00", "deposit")
    assert deposit["errors"] == []
    payment = deposit["payment"]
    assert (payment["method"], payment["status"], payment["failureReason"]) == (
        "CARD",
        "SUCCEEDED",
        None,
    )
    assert (payment["amount"], payment["fee"]) == (usd("1500.00"), usd("42.00"))
    assert payment["settledAt"] is not None
    after = deposit["order"]
    assert after["status"] == "AWAITING_BALANCE"
    assert after["money"] == {
        "paid": usd("1500.00"),
        "held": usd("1500.00"),
        "released": ZERO,
        "refunded": ZERO,
        "refundPending": ZERO,
        "fees": usd("42.00"),
    }
    assert after["coverage"] == {"preShipment": usd("1500.00"), "postDelivery": usd("1500.00")}

    balance = await pay(api, buyer.token, order, "1500.00", "balance")
    assert balance["errors"] == []
    after = balance["order"]
    assert after["status"] == "PAID"
    assert (after["money"]["paid"], after["money"]["held"], after["money"]["fees"]) == (
        usd("3000.00"),
        usd("3000.00"),
        usd("84.00"),
    )
    assert after["coverage"] == {"preShipment": usd("1500.00"), "postDelivery": usd("3000.00")}
    assert [p["status"] for p in after["payments"]] == ["SUCCEEDED", "SUCCEEDED"]
    # Paid in full: nothing more is due.
    again = await pay(api, buyer.token, order, "1500.00", "third")
    assert (again["payment"], codes(again)) == (None, [("INVALID_TRANSITION", "orderId")])


async def test_everything_outstanding_at_once(api: Api) -> None:
    buyer, _, order = await factories.confirmed_order()
    payload = await pay(api, buyer.token, order, "3000.00", "all")
    assert payload["errors"] == []
    assert payload["order"]["status"] == "PAID"
    assert payload["payment"]["fee"] == usd("84.00")


@pytest.mark.parametrize(
    ("card", "reason"),
    [(CARD_DECLINED, "card_declined"), (CARD_INSUFFICIENT_FUNDS, "insufficient_funds")],
)
async def test_declined_card_fails_the_payment_and_moves_nothing(
    api: Api, card: str, reason: str
) -> None:
    buyer, _, order = await factories.confirmed_order()
    declined = await pay(api, buyer.token, order, "1500.00", "k1", source=card)
    assert codes(declined) == [("PAYMENT_DECLINED", "method")]
    assert reason in declined["errors"][0]["message"]
    assert (declined["payment"]["status"], declined["payment"]["failureReason"]) == (
        "FAILED",
        reason,
    )
    assert declined["order"]["status"] == "AWAITING_INITIAL_PAYMENT"
    assert declined["order"]["money"]["paid"] == ZERO
    assert declined["order"]["money"]["fees"] == ZERO
    assert await LedgerPosting.count() == 0
    # The same request again is the same answer: the failed payment, not a new attempt.
    replay = await pay(api, buyer.token, order, "1500.00", "k1", source=card)
    assert replay == declined
    assert await Payment.count() == 1
    # A new attempt with a good card goes through.
    retry = await pay(api, buyer.token, order, "1500.00", "k2")
    assert retry["errors"] == [] and retry["order"]["status"] == "AWAITING_BALANCE"
    assert [p["status"] for p in retry["order"]["payments"]] == ["FAILED", "SUCCEEDED"]


async def test_processing_error_means_the_provider_is_unavailable(api: Api) -> None:
    buyer, _, order = await factories.confirmed_order()
    payload = await pay(api, buyer.token, order, "1500.00", "k1", source=CARD_PROCESSING_ERROR)
    assert codes(payload) == [("PAYMENT_PROVIDER_UNAVAILABLE", "method")]
    assert payload["payment"]["status"] == "FAILED"
    assert payload["payment"]["failureReason"] == "provider_unavailable"
    assert payload["order"]["status"] == "AWAITING_INITIAL_PAYMENT"
    assert payload["order"]["money"]["paid"] == ZERO
    assert await LedgerPosting.count() == 0
    assert (await pay(api, buyer.token, order, "1500.00", "k2"))["errors"] == []


async def test_only_an_amount_that_is_due_can_be_paid(api: Api) -> None:
    buyer, _, order = await factories.confirmed_order()
    for amount in ("1000.00", "3000.01", "1499.99"):
        payload = await pay(api, buyer.token, order, amount, f"k-{amount}")
        assert (payload["payment"], payload["order"]) == (None, None)
        assert codes(payload) == [("AMOUNT_NOT_DUE", "amount")]
        assert "1500.00 USD or 3000.00 USD" in payload["errors"][0]["message"]
    payload = await pay(api, buyer.token, order, "1.001", "k-places")
    assert codes(payload) == [("INVALID_AMOUNT", "amount")]
    assert await Payment.count() == 0


async def test_payment_method_must_be_available_in_the_buyers_country(api: Api) -> None:
    buyer, _, order = await factories.confirmed_order()  # a US buyer
    payload = await pay(api, buyer.token, order, "1500.00", "boleto", "BOLETO", None)
    assert (payload["payment"], codes(payload)) == (
        None,
        [("PAYMENT_METHOD_NOT_AVAILABLE", "method")],
    )
    assert "BR" in payload["errors"][0]["message"]
    assert await Payment.count() == 0
    # e-Checking is for US buyers: this one may use it (it is pending, like a transfer).
    checking = await pay(api, buyer.token, order, "1500.00", "echeck", "E_CHECKING", None)
    assert checking["errors"] == [] and checking["payment"]["status"] == "PENDING"


async def test_bank_transfer_stays_pending(api: Api) -> None:
    buyer, _, order = await factories.confirmed_order()
    payload = await pay(api, buyer.token, order, "1500.00", "tt", "TT", None)
    assert payload["errors"] == []
    assert (payload["payment"]["status"], payload["payment"]["fee"]) == ("PENDING", ZERO)
    assert payload["payment"]["settledAt"] is None
    assert payload["order"]["status"] == "AWAITING_INITIAL_PAYMENT"
    assert payload["order"]["money"]["paid"] == ZERO
    assert await LedgerPosting.count() == 0
    # While it is on its way: no second payment, and no cancelling.
    again = await pay(api, buyer.token, order, "1500.00", "card-too")
    assert codes(again) == [("PAYMENT_IN_PROGRESS", "orderId")]
    cancel = (await api.data(CANCEL, {"id": gid("Order", order.id)}, buyer.token))["cancelOrder"]
    assert [e["code"] for e in cancel["errors"]] == ["ORDER_HAS_PAYMENTS"]
    assert await Payment.count() == 1


# --- idempotency ----------------------------------------------------------------------


async def test_same_key_same_input_is_answered_once(api: Api) -> None:
    buyer, _, order = await factories.confirmed_order()
    first = await pay(api, buyer.token, order, "1500.00", "pay-once")
    books = await _books()
    again = await pay(api, buyer.token, order, "1500.00", "pay-once")
    assert again["errors"] == []
    assert again["payment"]["id"] == first["payment"]["id"]
    assert again["payment"] == first["payment"]
    assert await _books() == books
    assert again["order"]["money"]["paid"] == usd("1500.00")

    reused = await pay(api, buyer.token, order, "1500.00", "pay-once", "TT", None)
    assert (reused["payment"], codes(reused)) == (
        None,
        [("IDEMPOTENCY_KEY_REUSED", "idempotencyKey")],
    )
    reused = await pay(api, buyer.token, order, "3000.00", "pay-once")
    assert codes(reused) == [("IDEMPOTENCY_KEY_REUSED", "idempotencyKey")]
    assert await _books() == books

    first_release = await release(api, buyer.token, order, "rel-once", "500.00")
    assert first_release["released"] == usd("500.00")
    books = await _books()
    again_release = await release(api, buyer.token, order, "rel-once", "500.00")
    assert again_release["errors"] == [] and again_release["released"] == usd("500.00")
    assert again_release["order"]["money"]["released"] == usd("500.00")
    assert await _books() == books
    other = await release(api, buyer.token, order, "rel-once", "400.00")
    assert codes(other) == [("IDEMPOTENCY_KEY_REUSED", "idempotencyKey")]
    # Pay and release keep separate operations under one key.
    cross = await release(api, buyer.token, order, "pay-once", "500.00")
    assert codes(cross) == [("IDEMPOTENCY_KEY_REUSED", "idempotencyKey")]
    assert await _books() == books
    assert await IdempotencyRecord.count() == 2


async def test_blank_idempotency_key_is_refused(api: Api) -> None:
    buyer, _, order = await factories.confirmed_order()
    payload = await pay(api, buyer.token, order, "1500.00", "   ")
    assert codes(payload) == [("INVALID_INPUT", "idempotencyKey")]
    assert await Payment.count() == 0


# --- releasing ------------------------------------------------------------------------


async def test_release_part_then_the_rest(api: Api) -> None:
    buyer, _, order = await factories.confirmed_order()
    assert (await pay(api, buyer.token, order, "3000.00", "pay"))["errors"] == []

    part = await release(api, buyer.token, order, "r1", "1000.00")
    assert part["errors"] == [] and part["released"] == usd("1000.00")
    money = part["order"]["money"]
    assert (money["paid"], money["held"], money["released"]) == (
        usd("3000.00"),
        usd("2000.00"),
        usd("1000.00"),
    )
    too_much = await release(api, buyer.token, order, "r2", "2000.01")
    assert (too_much["released"], codes(too_much)) == (
        None,
        [("INSUFFICIENT_HELD_FUNDS", "amount")],
    )
    assert "2000.00 USD" in too_much["errors"][0]["message"]

    rest = await release(api, buyer.token, order, "r3")  # no amount: everything held
    assert rest["errors"] == [] and rest["released"] == usd("2000.00")
    money = rest["order"]["money"]
    assert (money["held"], money["released"]) == (ZERO, usd("3000.00"))
    assert rest["order"]["status"] == "PAID"

    empty = await release(api, buyer.token, order, "r4")
    assert codes(empty) == [("INSUFFICIENT_HELD_FUNDS", "amount")]
    refused = await release(api, buyer.token, order, "r5", "0.00")
    assert codes(refused) == [("INSUFFICIENT_HELD_FUNDS", "amount")]
    released = await OrderEvent.select(OrderEvent.reason).where(
        (OrderEvent.order == order.id) & (OrderEvent.kind == "FUNDS_RELEASED")
    )
    assert [r["reason"] for r in released] == [
        "1000.00 USD released to the supplier",
        "2000.00 USD released to the supplier",
    ]


async def test_release_in_another_currency_is_refused(api: Api) -> None:
    buyer, _, order = await factories.confirmed_order()
    await pay(api, buyer.token, order, "3000.00", "pay")
    variables = {"id": gid("Order", order.id), "amount": usd("10.00", "EUR"), "key": "eur"}
    payload = (await api.data(RELEASE, variables, buyer.token))["releaseFunds"]
    assert codes(payload) == [("INVALID_CURRENCY", "amount.currency")]


async def test_nothing_held_before_payment(api: Api) -> None:
    buyer, _, order = await factories.confirmed_order()
    payload = await release(api, buyer.token, order, "early")
    assert codes(payload) == [("INSUFFICIENT_HELD_FUNDS", "amount")]


async def test_only_the_buyer_pays_and_releases(api: Api) -> None:
    buyer, seller, order = await factories.confirmed_order()
    mediator = await factories.staff()
    for who in (seller, mediator):
        paid = await pay(api, who.token, order, "1500.00", f"pay-{who.email}")
        assert (paid["payment"], codes(paid)) == (None, [("FORBIDDEN", None)])
    await pay(api, buyer.token, order, "3000.00", "pay")
    books = await _books()
    for who in (seller, mediator):
        payload = await release(api, who.token, order, f"grab-{who.email}")
        assert (payload["released"], payload["order"]) == (None, None)
        assert codes(payload) == [("FORBIDDEN", None)]
    assert await _books() == books
    assert await _status(order) == "PAID"
    money = (await ledger.order_money([order.id]))[order.id]
    assert (money.held, money.released) == (3_000_00, 0)


async def test_partner_keys_need_the_payments_scope(api: Api) -> None:
    buyer, _, order = await factories.confirmed_order()
    _, orders_only = await accounts.create_api_key(
        company_id=buyer.principal.company_id, name="ERP", scopes=[Scope.READ, Scope.ORDERS]
    )
    _, treasury = await accounts.create_api_key(
        company_id=buyer.principal.company_id, name="Treasury", scopes=[Scope.PAYMENTS]
    )
    refused = await pay(api, orders_only, order, "1500.00", "p1")
    assert codes(refused) == [("SCOPE_MISSING", None)]
    assert await Payment.count() == 0
    paid = await pay(api, treasury, order, "3000.00", "p1")
    assert paid["errors"] == [] and paid["order"]["status"] == "PAID"
    assert codes(await release(api, orders_only, order, "r1")) == [("SCOPE_MISSING", None)]
    done = await release(api, treasury, order, "r1")
    assert done["released"] == usd("3000.00")
    actors = await OrderEvent.select(OrderEvent.kind, OrderEvent.actor_kind).where(
        OrderEvent.order == order.id
    )
    assert {(a["kind"], a["actor_kind"]) for a in actors} >= {
        ("PAYMENT_STARTED", "PARTNER"),
        ("FUNDS_RELEASED", "PARTNER"),
    }
