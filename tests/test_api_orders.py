"""Orders over the API: drafting, confirmation, coverage, modification, cancellation, the
order and orders queries, who may see and touch an order, partner scopes, and how many
SQL statements a page of orders costs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from models import accounts, clock, db, ledger, orders, payments, sql
from models.clock import FrozenClock
from models.enums import PaymentMethod, Role, Scope
from models.money import Money
from models.tables import (
    LedgerPosting,
    Order,
    OrderEvent,
    OrderLine,
    OrderModification,
    Payment,
)
from server.payments.sandbox import CARD_SUCCEEDS
from tests import factories
from tests.api import Api, gid

pytest_plugins = ("tests.api_plugin",)

MONEY = "{ amount currency }"
ORDER = f"""id status draftedBy contractVersion total {MONEY} initialPayment {MONEY}
  balance {MONEY} shippingTerms {{ incoterm method destinationCountry }}
  shippingDeadline paymentDeadline createdAt confirmedAt
  buyer {{ id legalName kind country }} supplier {{ id legalName }}
  lines {{ productName specification quantity unitPrice {MONEY} lineTotal {MONEY} }}
  qualityRequirements {{ attribute requirement }}
  coverage {{ cap {MONEY} preShipment {MONEY} postDelivery {MONEY} limitReserved {MONEY}
    exchangeRate }}
  money {{ paid {MONEY} held {MONEY} released {MONEY} refunded {MONEY}
    refundPending {MONEY} fees {MONEY} }}
  payments {{ method status amount {MONEY} fee {MONEY} failureReason }}
  events {{ kind oldStatus newStatus actorKind reason }}"""
ERRORS = "errors { code message field }"
CREATE = f"""mutation($input: CreateOrderInput!) {{
  createOrder(input: $input) {{ order {{ {ORDER} }} {ERRORS} }} }}"""
CONFIRM = f"""mutation($id: ID!) {{
  confirmOrder(input: {{orderId: $id}}) {{ order {{ {ORDER} }} {ERRORS} }} }}"""
CANCEL = f"""mutation($id: ID!, $reason: String!) {{
  cancelOrder(input: {{orderId: $id, reason: $reason}}) {{ order {{ {ORDER} }} {ERRORS} }} }}"""
PROPOSE = f"""mutation($id: ID!, $contract: ContractInput!, $reason: String! = "") {{
  proposeOrderModification(input: {{orderId: $id, contract: $contract, reason: $reason}}) {{
    modificationId order {{ {ORDER} }} {ERRORS} }} }}"""
ACCEPT = f"""mutation($id: ID!) {{
  acceptOrderModification(input: {{modificationId: $id}}) {{ order {{ {ORDER} }} {ERRORS} }} }}"""
PAY = f"""mutation($id: ID!, $amount: MoneyInput!, $method: PaymentMethod!, $source: String,
  $key: String!) {{
  payOrder(input: {{orderId: $id, amount: $amount, method: $method, paymentSource: $source,
    idempotencyKey: $key}}) {{ payment {{ id status }} order {{ status }} {ERRORS} }} }}"""
RELEASE = f"""mutation($id: ID!, $key: String!) {{
  releaseFunds(input: {{orderId: $id, idempotencyKey: $key}}) {{
    released {MONEY} order {{ status }} {ERRORS} }} }}"""
ONE = f"query($id: ID!) {{ order(id: $id) {{ {ORDER} }} }}"
NODE = "query($id: ID!) { node(id: $id) { id ... on Order { status } } }"
LIST = """query($statuses: [OrderStatus!], $first: Int! = 20, $after: String) {
  orders(filter: {statuses: $statuses}, first: $first, after: $after) {
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id status } } } }"""


def usd(amount: str, currency: str = "USD") -> dict[str, str]:
    return {"amount": amount, "currency": currency}


def zero(currency: str = "USD") -> dict[str, str]:
    return usd("0.00", currency)


def contract_input(**changes: Any) -> dict[str, Any]:
    """DOMAIN.md's example: 2 x 1,500.00 USD of LED panels, 1,500.00 up front."""
    contract: dict[str, Any] = {
        "currency": "USD",
        "lines": [
            {
                "productName": "LED panel 600x600",
                "specification": "40 W, 4000 K",
                "quantity": 2,
                "unitPrice": "1500.00",
            }
        ],
        "qualityRequirements": [
            {"attribute": "luminous flux", "requirement": ">= 3600 lm per panel"},
            {"attribute": "colour temperature", "requirement": "4000 K +/- 150 K"},
        ],
        "incoterm": "FOB",
        "shippingMethod": "SEA",
        "destinationCountry": "DE",
        "shippingDeadline": (clock.now() + dt.timedelta(days=30)).isoformat(),
        "initialPayment": "1500.00",
    }
    contract.update(changes)
    return contract


def order_gid(order_id: int) -> str:
    return gid("Order", order_id)


async def _create(api: Api, token: str, **inputs: Any) -> dict[str, Any]:
    variables = {"input": {"contract": contract_input(), **inputs}}
    payload: dict[str, Any] = (await api.data(CREATE, variables, token))["createOrder"]
    return payload


async def _created(api: Api, token: str, **inputs: Any) -> dict[str, Any]:
    payload = await _create(api, token, **inputs)
    assert payload["errors"] == [], payload
    order: dict[str, Any] = payload["order"]
    return order


async def _mutate(api: Api, document: str, name: str, token: str, **variables: Any) -> Any:
    return (await api.data(document, variables, token))[name]


def kinds(order: dict[str, Any]) -> list[str]:
    return [e["kind"] for e in order["events"]]


async def _snapshot(order_id: int) -> dict[str, Any]:
    """Everything a transition could change about one order, read from the database."""
    row = await Order.select(Order.status, Order.version).where(Order.id == order_id).first()
    return {
        "order": row,
        "events": await OrderEvent.count().where(OrderEvent.order == order_id),
        "payments": await Payment.select(Payment.id, Payment.status).where(
            Payment.order == order_id
        ),
        "postings": await LedgerPosting.count().where(LedgerPosting.order == order_id),
        "money": (await ledger.order_money([order_id]))[order_id],
    }


async def _pay_by_card(buyer: factories.Actor, order: Order, minor: int, key: str) -> None:
    result = await payments.pay_order(
        buyer.principal,
        order.id,
        Money(minor, order.currency),
        PaymentMethod.CARD,
        idempotency_key=key,
        source=CARD_SUCCEEDS,
    )
    assert result.error is None, result.error


# --- drafting and confirming ----------------------------------------------------------


async def test_buyer_places_and_supplier_confirms(api: Api, frozen_clock: FrozenClock) -> None:
    buyer = await factories.buyer(name="Hamburg Lighting GmbH")
    seller = await factories.supplier(
        name="Shenzhen Bright Co., Ltd.", trade_assurance_limit_minor=100_000_00
    )
    assert seller.supplier_id is not None
    order = await _created(api, buyer.token, supplierId=gid("Supplier", seller.supplier_id))
    assert order["status"] == "PENDING_CONFIRMATION"
    assert (order["draftedBy"], order["contractVersion"]) == ("BUYER", 1)
    assert (order["total"], order["initialPayment"], order["balance"]) == (
        usd("3000.00"),
        usd("1500.00"),
        usd("1500.00"),
    )
    assert order["lines"] == [
        {
            "productName": "LED panel 600x600",
            "specification": "40 W, 4000 K",
            "quantity": 2,
            "unitPrice": usd("1500.00"),
            "lineTotal": usd("3000.00"),
        }
    ]
    assert order["qualityRequirements"] == [
        {"attribute": "luminous flux", "requirement": ">= 3600 lm per panel"},
        {"attribute": "colour temperature", "requirement": "4000 K +/- 150 K"},
    ]
    assert order["shippingTerms"] == {
        "incoterm": "FOB",
        "method": "SEA",
        "destinationCountry": "DE",
    }
    assert order["shippingDeadline"] == "2026-12-27T12:00:00+00:00"
    assert order["createdAt"] == "2026-11-27T12:00:00+00:00"
    assert (order["paymentDeadline"], order["confirmedAt"]) == (None, None)
    assert order["buyer"] == {
        "id": gid("Company", buyer.principal.company_id),
        "legalName": "Hamburg Lighting GmbH",
        "kind": "BUYER",
        "country": "US",
    }
    assert order["supplier"] == {
        "id": gid("Supplier", seller.supplier_id),
        "legalName": "Shenzhen Bright Co., Ltd.",
    }
    # Nothing is reserved before the supplier agrees.
    assert order["coverage"] == {
        "cap": None,
        "preShipment": zero(),
        "postDelivery": zero(),
        "limitReserved": None,
        "exchangeRate": None,
    }
    assert order["payments"] == []
    assert [
        (e["kind"], e["oldStatus"], e["newStatus"], e["actorKind"]) for e in order["events"]
    ] == [("CREATED", None, "PENDING_CONFIRMATION", "USER")]

    # The party that drafted cannot confirm its own draft.
    refused = await _mutate(api, CONFIRM, "confirmOrder", buyer.token, id=order["id"])
    assert refused["order"] is None
    assert [(e["code"], e["field"]) for e in refused["errors"]] == [("NOT_YOUR_TURN", "orderId")]

    frozen_clock.advance(hours=2)
    confirmed = await _mutate(api, CONFIRM, "confirmOrder", seller.token, id=order["id"])
    assert confirmed["errors"] == []
    done = confirmed["order"]
    assert done["status"] == "AWAITING_INITIAL_PAYMENT"
    assert done["confirmedAt"] == "2026-11-27T14:00:00+00:00"
    assert done["paymentDeadline"] == "2026-12-04T14:00:00+00:00"  # 7 days (config)
    assert done["coverage"] == {
        "cap": usd("3000.00"),
        "preShipment": zero(),  # nothing paid yet
        "postDelivery": zero(),
        "limitReserved": usd("3000.00"),
        "exchangeRate": "1",
    }
    assert [(e["kind"], e["oldStatus"], e["newStatus"]) for e in done["events"]] == [
        ("CREATED", None, "PENDING_CONFIRMATION"),
        ("CONFIRMED", "PENDING_CONFIRMATION", "AWAITING_INITIAL_PAYMENT"),
    ]
    # The supplier's limit now carries the order.
    remaining = await api.data(
        "query($id: ID!) { supplier(id: $id) { tradeAssurance { remainingLimit "
        f"{MONEY} }} }} }}",
        {"id": gid("Supplier", seller.supplier_id)},
        buyer.token,
    )
    assert remaining["supplier"]["tradeAssurance"]["remainingLimit"] == usd("97000.00")


async def test_coverage_is_capped_by_the_remaining_limit(api: Api) -> None:
    buyer = await factories.buyer()
    seller = await factories.supplier(trade_assurance_limit_minor=2_000_00)
    assert seller.supplier_id is not None
    order = await _created(api, buyer.token, supplierId=gid("Supplier", seller.supplier_id))
    done = (await _mutate(api, CONFIRM, "confirmOrder", seller.token, id=order["id"]))["order"]
    assert done["coverage"]["cap"] == usd("2000.00")
    assert done["coverage"]["limitReserved"] == usd("2000.00")


async def test_an_order_in_another_currency_counts_at_the_recorded_rate(api: Api) -> None:
    buyer = await factories.buyer()
    seller = await factories.supplier(trade_assurance_limit_minor=100_000_00)
    assert seller.supplier_id is not None
    order = await _created(
        api,
        buyer.token,
        supplierId=gid("Supplier", seller.supplier_id),
        contract=contract_input(currency="EUR"),
    )
    done = (await _mutate(api, CONFIRM, "confirmOrder", seller.token, id=order["id"]))["order"]
    assert done["total"] == usd("3000.00", "EUR")
    assert done["coverage"]["cap"] == usd("3000.00", "EUR")
    assert done["coverage"]["limitReserved"] == usd("3240.00")  # at 1.08 USD per EUR
    assert done["coverage"]["exchangeRate"] == "1.08"


async def test_supplier_drafts_and_buyer_confirms(api: Api) -> None:
    buyer = await factories.buyer()
    seller = await factories.supplier(trade_assurance_limit_minor=100_000_00)
    draft = await _created(
        api,
        seller.token,
        buyerId=gid("Company", buyer.principal.company_id),
        contract=contract_input(initialPayment="0"),
    )
    assert (draft["status"], draft["draftedBy"]) == ("PENDING_CONFIRMATION", "SUPPLIER")
    assert draft["initialPayment"] == zero() and draft["balance"] == usd("3000.00")
    own = await _mutate(api, CONFIRM, "confirmOrder", seller.token, id=draft["id"])
    assert [e["code"] for e in own["errors"]] == ["NOT_YOUR_TURN"]

    confirmed = await _mutate(api, CONFIRM, "confirmOrder", buyer.token, id=draft["id"])
    assert confirmed["errors"] == []
    # No deposit: the balance is due straight away.
    assert confirmed["order"]["status"] == "AWAITING_BALANCE"
    assert confirmed["order"]["coverage"]["cap"] == usd("3000.00")
    assert kinds(confirmed["order"]) == ["CREATED", "CONFIRMED"]


# --- modification and cancellation ----------------------------------------------------


async def test_propose_and_accept_a_modification(api: Api) -> None:
    buyer, seller, row = await factories.confirmed_order()
    order_id = order_gid(row.id)
    bigger = contract_input(
        lines=[
            {"productName": "LED panel 600x600", "quantity": 3, "unitPrice": "1500.00"},
            {"productName": "Driver 40 W", "specification": "DALI", "quantity": 3,
             "unitPrice": "25.50"},
        ],
        qualityRequirements=[{"attribute": "flicker", "requirement": "< 5 %"}],
        incoterm="CIF",
        shippingMethod="AIR",
    )  # fmt: skip
    wrong = await _mutate(
        api, PROPOSE, "proposeOrderModification", buyer.token,
        id=order_id, contract=contract_input(currency="EUR"),
    )  # fmt: skip
    assert [(e["code"], e["field"]) for e in wrong["errors"]] == [
        ("INVALID_CURRENCY", "contract.currency")
    ]
    proposed = await _mutate(
        api, PROPOSE, "proposeOrderModification", buyer.token,
        id=order_id, contract=bigger, reason="one more set",
    )  # fmt: skip
    assert proposed["errors"] == [] and proposed["modificationId"]
    # Proposing changes nothing yet.
    assert proposed["order"]["contractVersion"] == 1
    assert proposed["order"]["total"] == usd("3000.00")
    modification = proposed["modificationId"]

    mine = await _mutate(api, ACCEPT, "acceptOrderModification", buyer.token, id=modification)
    assert [(e["code"], e["field"]) for e in mine["errors"]] == [
        ("NOT_YOUR_TURN", "modificationId")
    ]

    accepted = await _mutate(api, ACCEPT, "acceptOrderModification", seller.token, id=modification)
    assert accepted["errors"] == []
    order = accepted["order"]
    assert (order["status"], order["contractVersion"]) == ("AWAITING_INITIAL_PAYMENT", 2)
    assert order["total"] == usd("4576.50")
    assert order["balance"] == usd("3076.50")
    assert [(line["productName"], line["lineTotal"]) for line in order["lines"]] == [
        ("LED panel 600x600", usd("4500.00")),
        ("Driver 40 W", usd("76.50")),
    ]
    assert order["qualityRequirements"] == [{"attribute": "flicker", "requirement": "< 5 %"}]
    assert order["shippingTerms"]["incoterm"] == "CIF"
    assert order["shippingTerms"]["method"] == "AIR"
    # Coverage follows the new contract.
    assert order["coverage"]["cap"] == usd("4576.50")
    assert order["coverage"]["limitReserved"] == usd("4576.50")
    assert kinds(order) == [
        "CREATED",
        "CONFIRMED",
        "MODIFICATION_PROPOSED",
        "MODIFICATION_ACCEPTED",
    ]

    again = await _mutate(api, ACCEPT, "acceptOrderModification", seller.token, id=modification)
    assert [(e["code"], e["field"]) for e in again["errors"]] == [
        ("MODIFICATION_NOT_PENDING", "modificationId")
    ]
    assert await OrderLine.count().where(OrderLine.order == row.id) == 2


async def test_a_newer_proposal_supersedes_the_older(api: Api) -> None:
    buyer, seller, row = await factories.confirmed_order()
    first = await _mutate(
        api, PROPOSE, "proposeOrderModification", seller.token,
        id=order_gid(row.id), contract=contract_input(destinationCountry="FR"),
    )  # fmt: skip
    second = await _mutate(
        api, PROPOSE, "proposeOrderModification", seller.token,
        id=order_gid(row.id), contract=contract_input(destinationCountry="NL"),
    )  # fmt: skip
    old = await _mutate(
        api, ACCEPT, "acceptOrderModification", buyer.token, id=first["modificationId"]
    )
    assert [e["code"] for e in old["errors"]] == ["MODIFICATION_NOT_PENDING"]
    new = await _mutate(
        api, ACCEPT, "acceptOrderModification", buyer.token, id=second["modificationId"]
    )
    assert new["errors"] == []
    assert new["order"]["shippingTerms"]["destinationCountry"] == "NL"
    statuses = await OrderModification.select(OrderModification.status).order_by(
        OrderModification.id
    )
    assert [s["status"] for s in statuses] == ["SUPERSEDED", "ACCEPTED"]


async def test_cancel_before_payment(api: Api) -> None:
    buyer, seller, row = await factories.confirmed_order()
    cancelled = await _mutate(
        api, CANCEL, "cancelOrder", seller.token, id=order_gid(row.id), reason=" cannot make it "
    )
    assert cancelled["errors"] == []
    order = cancelled["order"]
    assert order["status"] == "CANCELLED"
    assert order["events"][-1] == {
        "kind": "CANCELLED",
        "oldStatus": "AWAITING_INITIAL_PAYMENT",
        "newStatus": "CANCELLED",
        "actorKind": "USER",
        "reason": "cannot make it",
    }
    # A cancelled order no longer holds any of the supplier's limit.
    assert seller.supplier_id is not None
    remaining = await api.data(
        "query($id: ID!) { supplier(id: $id) { tradeAssurance { remainingLimit "
        f"{MONEY} }} }} }}",
        {"id": gid("Supplier", seller.supplier_id)},
        buyer.token,
    )
    assert remaining["supplier"]["tradeAssurance"]["remainingLimit"] == usd("100000.00")

    for document, name, variables in [
        (CANCEL, "cancelOrder", {"reason": "again"}),
        (CONFIRM, "confirmOrder", {}),
    ]:
        refused = await _mutate(api, document, name, buyer.token, id=order_gid(row.id), **variables)
        assert refused["order"] is None
        assert [(e["code"], e["field"]) for e in refused["errors"]] == [
            ("INVALID_TRANSITION", "orderId")
        ]


async def test_an_order_with_money_in_escrow_cannot_be_cancelled(api: Api) -> None:
    buyer, _, row = await factories.confirmed_order()
    await _pay_by_card(buyer, row, 1_500_00, "deposit")
    refused = await _mutate(api, CANCEL, "cancelOrder", buyer.token, id=order_gid(row.id),
                            reason="changed my mind")  # fmt: skip
    assert [e["code"] for e in refused["errors"]] == ["ORDER_HAS_PAYMENTS"]
    assert (await _snapshot(row.id))["order"]["status"] == "AWAITING_BALANCE"


# --- refusals -------------------------------------------------------------------------


async def test_supplier_without_trade_assurance_takes_no_orders(api: Api) -> None:
    buyer = await factories.buyer()
    seller = await factories.supplier()  # Gold and verified, but never approved
    assert seller.supplier_id is not None
    payload = await _create(api, buyer.token, supplierId=gid("Supplier", seller.supplier_id))
    assert payload["order"] is None
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [
        ("SUPPLIER_NOT_PROTECTED", "supplierId")
    ]
    assert await Order.count() == 0


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        (
            {"lines": [{"productName": "LED panel", "quantity": 1, "unitPrice": "1.234"}]},
            "INVALID_AMOUNT",
            "contract.lines.0.unitPrice",
        ),
        ({"initialPayment": "0.001"}, "INVALID_AMOUNT", "contract.initialPayment"),
        ({"initialPayment": "3000.01"}, "INVALID_AMOUNT", "contract.initialPayment"),
        (
            {"shippingDeadline": "2026-11-27T11:59:59+00:00"},
            "DEADLINE_IN_PAST",
            "contract.shippingDeadline",
        ),
        (
            {"lines": [{"productName": "LED panel", "quantity": 0, "unitPrice": "1.00"}]},
            "INVALID_INPUT",
            "contract.lines.0.quantity",
        ),
        ({"lines": []}, "INVALID_INPUT", "contract.lines"),
    ],
)
async def test_invalid_contracts_are_refused_with_the_field_at_fault(
    api: Api, frozen_clock: FrozenClock, change: dict[str, Any], code: str, field: str
) -> None:
    buyer = await factories.buyer()
    seller = await factories.supplier(trade_assurance_limit_minor=100_000_00)
    assert seller.supplier_id is not None
    payload = await _create(
        api,
        buyer.token,
        supplierId=gid("Supplier", seller.supplier_id),
        contract=contract_input(**change),
    )
    assert payload["order"] is None
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [(code, field)]
    assert payload["errors"][0]["message"]
    assert await Order.count() == 0


async def test_confirming_twice_is_an_invalid_transition(api: Api) -> None:
    _, seller, row = await factories.confirmed_order()
    refused = await _mutate(api, CONFIRM, "confirmOrder", seller.token, id=order_gid(row.id))
    assert refused["order"] is None
    assert [(e["code"], e["field"]) for e in refused["errors"]] == [
        ("INVALID_TRANSITION", "orderId")
    ]
    assert (await _snapshot(row.id))["events"] == 2


# --- reading --------------------------------------------------------------------------


async def test_order_shows_its_whole_story(api: Api) -> None:
    buyer, seller, row = await factories.confirmed_order()
    await _pay_by_card(buyer, row, 1_500_00, "deposit")
    order = (await api.data(ONE, {"id": order_gid(row.id)}, buyer.token))["order"]
    assert order["id"] == order_gid(row.id)
    assert order["status"] == "AWAITING_BALANCE"
    assert [line["productName"] for line in order["lines"]] == ["LED panel 600x600"]
    assert order["qualityRequirements"] == [
        {"attribute": "luminous flux", "requirement": ">= 3600 lm per panel"}
    ]
    assert order["buyer"]["id"] == gid("Company", buyer.principal.company_id)
    assert order["supplier"]["id"] == gid("Supplier", seller.supplier_id or 0)
    assert order["coverage"] == {
        "cap": usd("3000.00"),
        "preShipment": usd("1500.00"),
        "postDelivery": usd("1500.00"),
        "limitReserved": usd("3000.00"),
        "exchangeRate": "1",
    }
    assert order["money"] == {
        "paid": usd("1500.00"),
        "held": usd("1500.00"),
        "released": zero(),
        "refunded": zero(),
        "refundPending": zero(),
        "fees": usd("42.00"),
    }
    assert order["payments"] == [
        {
            "method": "CARD",
            "status": "SUCCEEDED",
            "amount": usd("1500.00"),
            "fee": usd("42.00"),
            "failureReason": None,
        }
    ]
    assert [(e["kind"], e["newStatus"], e["actorKind"]) for e in order["events"]] == [
        ("CREATED", "PENDING_CONFIRMATION", "USER"),
        ("CONFIRMED", "AWAITING_INITIAL_PAYMENT", "USER"),
        ("PAYMENT_STARTED", "AWAITING_INITIAL_PAYMENT", "USER"),
        ("PAYMENT_SUCCEEDED", "AWAITING_BALANCE", "PAYMENT_PROVIDER"),
    ]
    # The supplier and a mediator see the same order; node() finds it too.
    mediator = await factories.staff(Role.MEDIATOR)
    for token in (seller.token, mediator.token):
        assert (await api.data(ONE, {"id": order_gid(row.id)}, token))["order"] == order
    node = await api.data(NODE, {"id": order_gid(row.id)}, seller.token)
    assert node["node"] == {"id": order_gid(row.id), "status": "AWAITING_BALANCE"}
    # An ID of another type or one that cannot exist finds nothing.
    for other in (gid("Supplier", row.id), gid("Order", 999_999), gid("Order", "x")):
        assert (await api.data(ONE, {"id": other}, buyer.token))["order"] is None


def _ids(result: dict[str, Any]) -> list[str]:
    return [edge["node"]["id"] for edge in result["orders"]["edges"]]


async def test_orders_pages_newest_first_and_filters_by_status(api: Api) -> None:
    buyer = await factories.buyer()
    seller = await factories.supplier(trade_assurance_limit_minor=1_000_000_00)
    made = [(await factories.confirmed_order(buyer, seller))[2] for _ in range(5)]
    await orders.cancel_order(buyer.principal, made[1].id, "duplicate")
    await orders.cancel_order(buyer.principal, made[3].id, "duplicate")
    newest_first = [order_gid(o.id) for o in reversed(made)]

    page = await api.data(LIST, {"first": 2}, buyer.token)
    assert _ids(page) == newest_first[:2]
    info = page["orders"]["pageInfo"]
    assert (info["hasNextPage"], info["hasPreviousPage"]) == (True, False)
    assert info["endCursor"] == page["orders"]["edges"][-1]["cursor"]
    page2 = await api.data(LIST, {"first": 2, "after": info["endCursor"]}, buyer.token)
    assert _ids(page2) == newest_first[2:4]
    assert page2["orders"]["pageInfo"]["hasPreviousPage"] is True
    page3 = await api.data(
        LIST, {"first": 2, "after": page2["orders"]["pageInfo"]["endCursor"]}, buyer.token
    )
    assert _ids(page3) == newest_first[4:]
    assert page3["orders"]["pageInfo"]["hasNextPage"] is False

    cancelled = await api.data(LIST, {"statuses": ["CANCELLED"]}, buyer.token)
    assert _ids(cancelled) == [order_gid(made[3].id), order_gid(made[1].id)]
    assert {e["node"]["status"] for e in cancelled["orders"]["edges"]} == {"CANCELLED"}
    open_ = await api.data(
        LIST, {"statuses": ["AWAITING_INITIAL_PAYMENT", "PAID"], "first": 10}, buyer.token
    )
    assert _ids(open_) == [order_gid(made[i].id) for i in (4, 2, 0)]
    assert _ids(await api.data(LIST, {"statuses": ["PAID"]}, buyer.token)) == []

    errors = await api.errors(LIST, {"first": 101}, buyer.token)
    assert errors[0]["extensions"]["code"] == "PAGE_SIZE_OUT_OF_RANGE"
    errors = await api.errors(LIST, {"after": "bm90IGEgY3Vyc29y"}, buyer.token)
    assert errors[0]["extensions"]["code"] == "INVALID_CURSOR"


async def test_each_party_sees_only_its_own_orders(api: Api) -> None:
    b1, b2 = await factories.buyer(), await factories.buyer()
    s1 = await factories.supplier(trade_assurance_limit_minor=100_000_00)
    s2 = await factories.supplier(trade_assurance_limit_minor=100_000_00)
    _, _, o11 = await factories.confirmed_order(b1, s1)
    _, _, o12 = await factories.confirmed_order(b1, s2)
    _, _, o21 = await factories.confirmed_order(b2, s1)
    mediator = await factories.staff(Role.MEDIATOR)

    async def seen(actor: factories.Actor) -> set[str]:
        return set(_ids(await api.data(LIST, {"first": 100}, actor.token)))

    assert await seen(b1) == {order_gid(o11.id), order_gid(o12.id)}
    assert await seen(b2) == {order_gid(o21.id)}
    assert await seen(s1) == {order_gid(o11.id), order_gid(o21.id)}
    assert await seen(s2) == {order_gid(o12.id)}
    assert await seen(mediator) == {order_gid(o.id) for o in (o11, o12, o21)}
    errors = await api.errors(LIST)
    assert errors[0]["extensions"]["code"] == "UNAUTHENTICATED"


# --- authorization --------------------------------------------------------------------


async def test_strangers_can_neither_see_nor_touch_an_order(api: Api) -> None:
    buyer, seller, paid = await factories.confirmed_order()
    await _pay_by_card(buyer, paid, 1_500_00, "deposit")
    pending = await orders.create_order(
        buyer.principal, factories.contract(), supplier_id=seller.supplier_id
    )
    other_buyer = await factories.buyer()
    other_supplier = await factories.supplier(trade_assurance_limit_minor=100_000_00)
    before = {o.id: await _snapshot(o.id) for o in (paid, pending)}

    for stranger in (other_buyer, other_supplier):
        for row in (paid, pending):
            order_id = order_gid(row.id)
            assert (await api.data(ONE, {"id": order_id}, stranger.token))["order"] is None
            assert (await api.data(NODE, {"id": order_id}, stranger.token))["node"] is None
            attempts = [
                await _mutate(api, CONFIRM, "confirmOrder", stranger.token, id=order_id),
                await _mutate(api, CANCEL, "cancelOrder", stranger.token, id=order_id,
                              reason="mine now"),
                await _mutate(api, PAY, "payOrder", stranger.token, id=order_id,
                              amount=usd("1500.00"), method="CARD", source=CARD_SUCCEEDS,
                              key=f"steal-{row.id}"),
                await _mutate(api, RELEASE, "releaseFunds", stranger.token, id=order_id,
                              key=f"steal-{row.id}"),
                await _mutate(api, PROPOSE, "proposeOrderModification", stranger.token,
                              id=order_id, contract=contract_input()),
            ]  # fmt: skip
            for payload in attempts:
                assert payload["order"] is None, payload
                assert [(e["code"], e["field"]) for e in payload["errors"]] == [
                    ("NOT_FOUND", "orderId")
                ], payload
        assert _ids(await api.data(LIST, {"first": 100}, stranger.token)) == []
    assert {o.id: await _snapshot(o.id) for o in (paid, pending)} == before
    assert await OrderModification.count() == 0
    # The real buyer is unaffected: its order still shows up whole.
    assert set(_ids(await api.data(LIST, {}, buyer.token))) == {
        order_gid(paid.id),
        order_gid(pending.id),
    }


async def test_partner_keys_need_the_orders_scope(api: Api) -> None:
    buyer = await factories.buyer()
    seller = await factories.supplier(trade_assurance_limit_minor=100_000_00)
    assert seller.supplier_id is not None
    _, read_only = await accounts.create_api_key(
        company_id=buyer.principal.company_id, name="BI export", scopes=[Scope.READ]
    )
    _, erp = await accounts.create_api_key(
        company_id=buyer.principal.company_id, name="ERP", scopes=[Scope.READ, Scope.ORDERS]
    )
    refused = await _create(api, read_only, supplierId=gid("Supplier", seller.supplier_id))
    assert refused["order"] is None
    assert [e["code"] for e in refused["errors"]] == ["SCOPE_MISSING"]
    assert await Order.count() == 0

    order = await _created(api, erp, supplierId=gid("Supplier", seller.supplier_id))
    assert order["status"] == "PENDING_CONFIRMATION"
    assert order["buyer"]["id"] == gid("Company", buyer.principal.company_id)
    assert [(e["kind"], e["actorKind"]) for e in order["events"]] == [("CREATED", "PARTNER")]
    # The read-only key still reads the company's orders, but cannot cancel them.
    assert _ids(await api.data(LIST, {}, read_only)) == [order["id"]]
    cancel = await _mutate(api, CANCEL, "cancelOrder", read_only, id=order["id"], reason="x")
    assert [e["code"] for e in cancel["errors"]] == ["SCOPE_MISSING"]


# --- cost of a page -------------------------------------------------------------------

PAGE = """{ orders(first: 100) { edges { node {
  buyer { legalName } supplier { legalName } payments { amount { amount } }
  money { held { amount } } lines { productName } } } } }"""


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every SQL statement run while the fixture is active: Piccolo's queries and the
    plain statements of models.sql (which go to the driver directly)."""
    # Piccolo engines have __slots__: the shim goes on the class (every query passes there).
    engine_class = type(db.engine())
    seen: list[str] = []
    original = engine_class.run_querystring
    plain = sql._run

    async def counting(self: Any, querystring: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(str(querystring))
        return await original(self, querystring, *args, **kwargs)

    async def counting_plain(template: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(template)
        return await plain(template, *args, **kwargs)

    monkeypatch.setattr(engine_class, "run_querystring", counting)
    monkeypatch.setattr(sql, "_run", counting_plain)
    yield seen


async def _make_paid_orders(
    count: int, buyers: list[factories.Actor], sellers: list[factories.Actor]
) -> None:
    for n in range(count):
        buyer, seller = buyers[n % len(buyers)], sellers[n % len(sellers)]
        _, _, order = await factories.confirmed_order(buyer, seller)
        await _pay_by_card(buyer, order, 1_500_00, f"bulk-{order.id}")


async def test_a_page_of_orders_costs_a_constant_number_of_statements(
    api: Api, statements: list[str]
) -> None:
    buyers = [await factories.buyer() for _ in range(3)]
    sellers = [await factories.supplier(trade_assurance_limit_minor=10**12) for _ in range(2)]
    mediator = await factories.staff(Role.MEDIATOR)

    async def page() -> tuple[int, list[dict[str, Any]]]:
        accounts.forget_sessions()  # each page looks its token up (cached for 2 s)
        statements.clear()
        result = await api.data(PAGE, token=mediator.token)
        return len(statements), [e["node"] for e in result["orders"]["edges"]]

    await _make_paid_orders(10, buyers, sellers)
    few, nodes = await page()
    assert len(nodes) == 10
    await _make_paid_orders(90, buyers, sellers)
    many, nodes = await page()
    assert len(nodes) == 100
    assert all(
        n["payments"] == [{"amount": {"amount": "1500.00"}}] and n["money"]["held"]["amount"]
        == "1500.00" and n["lines"] == [{"productName": "LED panel 600x600"}]
        for n in nodes
    )  # fmt: skip
    assert len({n["buyer"]["legalName"] for n in nodes}) == len(buyers)
    assert len({n["supplier"]["legalName"] for n in nodes}) == len(sellers)
    assert few == many, statements
    assert many <= 7, statements  # one per kind of row, whatever the page size


async def test_node_is_null_for_ids_of_types_that_are_not_nodes(api: Api) -> None:
    # Payment, OrderEvent, ApiKey and InspectionAttachment IDs are handed out, but those
    # types are not Nodes: Strawberry answered "GlobalID requires a GraphQL Node type".
    buyer, _, order = await factories.confirmed_order()
    await _pay_by_card(buyer, order, 1_500_00, "deposit")
    for kind in ("Payment", "OrderEvent", "ApiKey", "InspectionAttachment", "NoSuchType"):
        assert (await api.data(NODE, {"id": gid(kind, 1)}, buyer.token)) == {"node": None}
    found = await api.data(NODE, {"id": order_gid(order.id)}, buyer.token)
    assert found["node"]["status"] == "AWAITING_BALANCE"
