"""The orders the order-status and order-list benchmarks read, made through the API.

A buyer and a supplier with active Trade Assurance (a mediator, created with the CLI,
approves it), then `orders` orders: created, confirmed and paid by card; every other one
also has half its escrow released. So each order has money in several states, a payment
and a timeline of four or five events.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import subprocess
import uuid
from collections.abc import Mapping
from typing import Any

import httpx

from bench import gateway

PASSWORD = "bench-password-2026"  # noqa: S105 - scratch accounts
MEDIATOR = "mediator@order-status.bench"
BUYER = "buyer@order-status.bench"
SUPPLIER = "supplier@order-status.bench"
LIMIT = "10000000000.00"  # USD: coverage never limits the fixture
SETUP_CONCURRENCY = 4

ERRORS = "errors { code message }"
MUTATIONS = {
    "register": f"mutation($input: RegisterInput!) {{ register(input: $input) {{ token "
    f"viewer {{ company {{ supplier {{ id }} }} }} {ERRORS} }} }}",
    "login": f"mutation($input: LoginInput!) {{ login(input: $input) {{ token {ERRORS} }} }}",
    "setSupplierStanding": f"mutation($input: SetSupplierStandingInput!) {{ "
    f"setSupplierStanding(input: $input) {{ supplier {{ id }} {ERRORS} }} }}",
    "applyForTradeAssurance": f"mutation($input: ApplyForTradeAssuranceInput!) {{ "
    f"applyForTradeAssurance(input: $input) {{ application {{ id }} {ERRORS} }} }}",
    "reviewTradeAssuranceApplication": f"mutation($input: "
    f"ReviewTradeAssuranceApplicationInput!) {{ reviewTradeAssuranceApplication(input: "
    f"$input) {{ supplier {{ tradeAssurance {{ status }} }} {ERRORS} }} }}",
    "createOrder": f"mutation($input: CreateOrderInput!) {{ createOrder(input: $input) {{ "
    f"order {{ id }} {ERRORS} }} }}",
    "confirmOrder": f"mutation($input: OrderIdInput!) {{ confirmOrder(input: $input) {{ "
    f"order {{ id }} {ERRORS} }} }}",
    "payOrder": f"mutation($input: PayOrderInput!) {{ payOrder(input: $input) {{ "
    f"order {{ id }} {ERRORS} }} }}",
    "releaseFunds": f"mutation($input: ReleaseFundsInput!) {{ releaseFunds(input: $input) {{ "
    f"order {{ id }} {ERRORS} }} }}",
}


@dataclasses.dataclass(frozen=True)
class Fixture:
    buyer_token: str
    order_ids: list[str]  # global ids, oldest first


def create_mediator(env: Mapping[str, str]) -> None:
    done = subprocess.run(
        [
            gateway.CLI,
            "create-user",
            "--email",
            MEDIATOR,
            "--full-name",
            "Bench Mediator",
            "--role",
            "MEDIATOR",
            "--company-name",
            "Trade Assurance Platform",
        ],
        env={**env, "TA_NEW_USER_PASSWORD": PASSWORD},
        cwd=gateway.PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"`trade-assurance create-user` failed:\n{done.stdout}{done.stderr}")


def make(url: str, env: Mapping[str, str], orders: int) -> Fixture:
    """The accounts and `orders` orders, on a fresh database with the gateway at `url`."""
    create_mediator(env)
    return asyncio.run(_make(url, orders))


async def _make(url: str, orders: int) -> Fixture:
    async with httpx.AsyncClient(timeout=60.0) as client:

        async def gql(name: str, variables: dict[str, Any], token: str | None = None) -> Any:
            headers = {"authorization": f"Bearer {token}"} if token else {}
            body = {"query": MUTATIONS[name], "variables": {"input": variables}}
            resp = await client.post(url, json=body, headers=headers)
            doc = resp.json()
            payload = (doc.get("data") or {}).get(name) if isinstance(doc, dict) else None
            if resp.status_code != 200 or "errors" in doc or not payload or payload["errors"]:
                raise RuntimeError(f"{name} failed: HTTP {resp.status_code} {resp.text[:500]}")
            return payload

        supplier_id = ""
        for kind, email, company, country in [
            ("BUYER", BUYER, "Order Status Buyer Inc.", "US"),
            ("SUPPLIER", SUPPLIER, "Order Status Supplier Co., Ltd.", "CN"),
        ]:
            registered = await gql(
                "register",
                {
                    "companyName": company,
                    "kind": kind,
                    "country": country,
                    "fullName": f"Bench {kind.title()}",
                    "email": email,
                    "password": PASSWORD,
                },
            )
            if kind == "SUPPLIER":
                supplier_id = str(registered["viewer"]["company"]["supplier"]["id"])

        async def login(email: str) -> str:
            return str((await gql("login", {"email": email, "password": PASSWORD}))["token"])

        buyer, supplier, mediator = [await login(e) for e in (BUYER, SUPPLIER, MEDIATOR)]
        limit = {"amount": LIMIT, "currency": "USD"}
        standing = {"supplierId": supplier_id, "goldSupplier": True, "verification": "VERIFIED"}
        await gql("setSupplierStanding", standing, mediator)
        applied = await gql("applyForTradeAssurance", {"requestedLimit": limit}, supplier)
        review = {
            "applicationId": applied["application"]["id"],
            "decision": "APPROVE",
            "limit": limit,
        }
        await gql("reviewTradeAssuranceApplication", review, mediator)

        deadline = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=60)

        async def one(n: int) -> str:
            quantity = 10 + n % 90
            total = f"{quantity * 12.5:.2f}"
            created = await gql(
                "createOrder",
                {
                    "supplierId": supplier_id,
                    "contract": {
                        "currency": "USD",
                        "incoterm": "FOB",
                        "shippingMethod": "SEA",
                        "destinationCountry": "US",
                        "shippingDeadline": deadline.isoformat(),
                        "initialPayment": total,
                        "lines": [
                            {
                                "productName": f"LED panel light #{n}",
                                "quantity": quantity,
                                "unitPrice": "12.50",
                            }
                        ],
                    },
                },
                buyer,
            )
            order_id = str(created["order"]["id"])
            await gql("confirmOrder", {"orderId": order_id}, supplier)
            await gql(
                "payOrder",
                {
                    "orderId": order_id,
                    "amount": {"amount": total, "currency": "USD"},
                    "method": "CARD",
                    "paymentSource": "4242424242424242",
                    "idempotencyKey": str(uuid.uuid4()),
                },
                buyer,
            )
            if n % 2:
                half = f"{quantity * 6.25:.2f}"
                await gql(
                    "releaseFunds",
                    {
                        "orderId": order_id,
                        "amount": {"amount": half, "currency": "USD"},
                        "idempotencyKey": str(uuid.uuid4()),
                    },
                    buyer,
                )
            return order_id

        ids: list[str] = []
        # A few in flight: the writes serialise in the database anyway.
        for start in range(0, orders, SETUP_CONCURRENCY):
            batch = range(start, min(orders, start + SETUP_CONCURRENCY))
            ids += await asyncio.gather(*(one(n) for n in batch))
        return Fixture(buyer, ids)
