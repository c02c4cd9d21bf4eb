"""The gateway's own pages: GraphiQL for partners (with the API's example operations as its
tabs) and the live order page, plus the static files they load.

GraphiQL's and React's files are vendored in server/static/vendor (the exact releases
Strawberry's GraphiQL page loads from a CDN, checked against the same integrity hashes), so
the pages work on machines without internet access and the browser tests can run anywhere.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import NamedTuple

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
TEMPLATES = HERE / "templates"

# The vendored files and their Subresource Integrity hashes (npm: react@18.2.0,
# react-dom@18.2.0, graphiql@3.8.3): the same as in Strawberry's graphiql.html.
VENDOR_SRI = {
    "react.production.min.js": (
        "sha384-tMH8h3BGESGckSAVGZ82T9n90ztNXxvdwvdM6UoR56cYcf+0iGXBliJ29D+wZ/x8"
    ),
    "react-dom.production.min.js": (
        "sha384-bm7MnzvK++ykSwVJ2tynSE5TRdN+xL418osEVF2DE/L/gfWHj91J2Sphe582B1Bh"
    ),
    "graphiql.min.js": "sha384-HbRVEFG0JGJZeAHCJ9Xm2+tpknBQ7QZmNlO/DgZtkZ0aJSypT96YYGRNod99l9Ie",
    "graphiql.min.css": "sha384-Mq3vbRBY71jfjQAt/DcjxUIYY33ksal4cgdRt9U/hNPvHBCaT2JfJ/PTRiPKf0aM",
}

_LOGIN = """# 1. Log in (demo password: demo-password-2026). Tabs without an Authorization
#    header of their own then send this token. Or put one in any tab's Headers:
#    {"Authorization": "Bearer tat_…"} (an API key works the same way); the last one sent
#    is used by the tabs without their own.
mutation LogIn($email: String!, $password: String!) {
  login(input: {email: $email, password: $password}) {
    token
    expiresAt
    viewer { role company { legalName } }
    errors { code message }
  }
}
"""

_SEARCH = """# Who you are (from the token), and Trade Assurance suppliers: full-text search,
# filters and cursor pages.
query SearchSuppliers($text: String, $country: CountryCode) {
  viewer { role company { legalName } }
  suppliers(filter: {text: $text, country: $country, tradeAssuranceOnly: true}, first: 5) {
    totalCount
    edges {
      node {
        id
        legalName
        country
        rating
        categories
        tradeAssurance { status remainingLimit { amount currency } }
      }
    }
    pageInfo { hasNextPage endCursor }
  }
}
"""

_PLACE = """# Place an order with a supplier found by the search (its `id`); the supplier
# confirms it (the next tab), then it can be paid. The next tabs work on the order in
# their variables: put this order's `id` there.
mutation PlaceOrder($supplierId: ID!) {
  createOrder(input: {supplierId: $supplierId, contract: {
      currency: "USD", initialPayment: "1500.00", incoterm: FOB, shippingMethod: SEA,
      destinationCountry: "US", shippingDeadline: "2027-06-30T00:00:00Z",
      lines: [{productName: "LED panel 600x600", specification: "40 W",
               quantity: 2, unitPrice: "1500.00"}],
      qualityRequirements: [{attribute: "luminous flux", requirement: ">= 3600 lm"}]}}) {
    order { id status total { amount currency } }
    errors { code field message }
  }
}
"""

_CONFIRM = """# As the supplier: run SupplierLogIn, paste its token into this tab's Headers
# (replacing the placeholder), then run ConfirmOrder. "X-Tab-Only" keeps that token to
# this tab: the other tabs go on sending the buyer's.
mutation ConfirmOrder($orderId: ID!) {
  confirmOrder(input: {orderId: $orderId}) {
    order { id status paymentDeadline coverage { cap { amount currency } } }
    errors { code field message }
  }
}

mutation SupplierLogIn {
  login(input: {email: "supplier@demo.trade-assurance.test",
                password: "demo-password-2026"}) { token errors { code message } }
}
"""

_STATUS = """# An order's status, money in escrow, deadlines and timeline.
# Watch it change in the browser at /orders/<id>/live.
query OrderStatus($orderId: ID!) {
  order(id: $orderId) {
    id
    status
    nextDeadlineAt
    money { paid { amount currency } held { amount } released { amount } refunded { amount } }
    deadlines { kind dueAt passed met }
    events { kind oldStatus newStatus actorKind reason at }
  }
}
"""

_PAY = """# Pay into escrow (sandbox card 4242424242424242). The same idempotency key and input
# returns the first result, so a retry never charges twice.
mutation Pay($orderId: ID!, $key: String!) {
  payOrder(input: {orderId: $orderId, amount: {amount: "1500.00", currency: "USD"},
      method: CARD, paymentSource: "4242424242424242", idempotencyKey: $key}) {
    payment { status fee { amount currency } }
    order { status money { paid { amount } held { amount } } }
    errors { code message }
  }
}
"""

_INSPECT = """# Book a pre-shipment inspection (the inspection companies' ids:
# `query { inspectors { company { id legalName } fee { amount } } }`).
mutation BookInspection($orderId: ID!, $inspectorId: ID!, $date: Date!, $key: String!) {
  bookInspection(input: {orderId: $orderId, inspectorId: $inspectorId, date: $date,
      method: CARD, paymentSource: "4242424242424242", idempotencyKey: $key}) {
    inspection { id status fee { amount currency } feePayment { status } }
    errors { code field message }
  }
}
"""

_RELEASE = """# Release what escrow holds to the supplier (or `amount:` part of it).
mutation Release($orderId: ID!, $key: String!) {
  releaseFunds(input: {orderId: $orderId, idempotencyKey: $key}) {
    released { amount currency }
    order { status money { held { amount } released { amount } } }
    errors { code message }
  }
}
"""

_DISPUTE = """# Open a dispute: the supplier responds (an offer or a rejection); after that the
# buyer may escalate to a mediator.
mutation OpenDispute($orderId: ID!, $key: String!) {
  openDispute(input: {orderId: $orderId, reason: QUALITY_NOT_AS_AGREED,
      requestedRefund: {amount: "500.00", currency: "USD"},
      description: "Luminous flux 2900 lm, below the 3600 lm agreed", idempotencyKey: $key}) {
    dispute { id status responseDueAt }
    errors { code field message }
  }
}
"""

_SUBSCRIBE = """# Every event of one order as it happens (over graphql-transport-ws, with the token
# from the Headers tab). Resume after a disconnect with `after:` set to the last cursor.
subscription FollowOrder($orderId: ID!) {
  orderStatusChanged(orderId: $orderId) {
    cursor
    event { kind oldStatus newStatus actorKind reason at }
    order { status money { held { amount currency } released { amount } } }
  }
}
"""


class Example(NamedTuple):
    query: str
    variables: dict[str, object]
    headers: dict[str, str] | None = None  # the tab's own, where it runs as someone else


_ORDER: dict[str, object] = {"orderId": "T3JkZXI6MQ=="}
EXAMPLES: list[Example] = [
    Example(
        _LOGIN, {"email": "buyer.us@demo.trade-assurance.test", "password": "demo-password-2026"}
    ),
    Example(_SEARCH, {"text": "led", "country": "DE"}),
    Example(_PLACE, {"supplierId": "U3VwcGxpZXI6MQ=="}),
    Example(
        _CONFIRM, _ORDER, {"Authorization": "Bearer <the supplier's token>", "X-Tab-Only": "1"}
    ),
    Example(_STATUS, _ORDER),
    Example(_PAY, {**_ORDER, "key": "pay-1-initial"}),
    Example(
        _INSPECT,
        {**_ORDER, "inspectorId": "Q29tcGFueTo3", "date": "2027-06-01", "key": "inspect-1"},
    ),
    Example(_RELEASE, {**_ORDER, "key": "release-1"}),
    Example(_DISPUTE, {**_ORDER, "key": "dispute-1"}),
    Example(_SUBSCRIBE, _ORDER),
]


def default_tabs() -> list[dict[str, str]]:
    """GraphiQL's `defaultTabs`: one tab per example operation, with its variables (and
    headers, where it has its own)."""
    tabs = []
    for example in EXAMPLES:
        tab = {"query": example.query, "variables": json.dumps(example.variables, indent=2)}
        if example.headers is not None:
            tab["headers"] = json.dumps(example.headers, indent=2)
        tabs.append(tab)
    return tabs


def _script_json(value: object) -> str:
    """JSON safe inside a <script> element (no `</script>` can end it early)."""
    return json.dumps(value).replace("<", "\\u003c")


@functools.cache
def graphiql_html() -> str:
    template = (TEMPLATES / "graphiql.html").read_text()
    return template.replace("__DEFAULT_TABS__", _script_json(default_tabs()))


async def live_order_page(_: Request) -> Response:
    # The page holds no data: it reads the order id from its URL and the token from its
    # form, and asks the API itself, so anyone may load it.
    return HTMLResponse(
        (TEMPLATES / "live-order.html").read_text(), headers={"Cache-Control": "no-cache"}
    )


def static_files() -> StaticFiles:
    return StaticFiles(directory=STATIC_DIR)
