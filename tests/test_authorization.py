"""Authorization, generated from the policy table (`resolvers/policy.py`).

Every root query, mutation and subscription is called as every kind of principal
(anonymous; two buyers; two suppliers; an inspector booked and one not; a mediator;
partner keys of each scope) on objects of one side of the world and of the other, so each
principal meets its own objects and foreign ones. What it gets must be what the table
says: allowed (no authorization refusal), or refused with the table's code for the first
check it fails; a refused mutation changes nothing (the whole database is compared).
Then the object level: `node(id)` for every type, nested fields, connections, and the
subscriptions in process and over a real WebSocket.

The world (companies, people, keys, their orders) is built once for the module: password
hashing and order histories are the slow part. Each mutation builds its own fresh target.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from gql import GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from strawberry.relay import from_base64

from models import (
    accounts,
    clock,
    config,
    disputes,
    feed,
    inspections,
    investigations,
    ledger,
    lifecycle,
    live,
    messages,
    orders,
    payments,
    sql,
    trade_assurance,
)
from models.disputes import Evidence
from models.enums import (
    DisputeReason,
    DisputeResponse,
    InspectionResult,
    PaymentMethod,
    Role,
    Scope,
)
from models.inspections import AttachmentUpload
from models.money import Money
from models.tables import ALL_TABLES, Dispute, Order
from resolvers.context import Context
from resolvers.policy import (
    MUTATIONS,
    OBJECTS,
    QUERIES,
    ROOTS,
    SUBSCRIPTIONS,
    Caller,
    Grant,
    Keys,
    On,
    Policy,
    Refusal,
    Step,
)
from resolvers.schema import build_schema
from server.payments.sandbox import CARD_SUCCEEDS
from tests import conftest, factories
from tests.api import gid, make_app, serving
from tests.test_live import ws

pytest_plugins = ("tests.api_plugin",)

USD = "USD"
_serial = itertools.count(1)

# What an authorization refusal answers (every code of the table's steps); any other code
# is a business answer to a caller that was let through.
REFUSALS = {"UNAUTHENTICATED"} | {
    code for root in ROOTS.values() for policy in root.values() for _, code in policy.steps
}


def key() -> str:
    return f"authz-{next(_serial)}"


# --- principals -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Who:
    """One principal of the world, as the table sees it."""

    name: str
    caller: Caller
    company: int | None = None
    token: str | None = None
    is_key: bool = False
    scopes: frozenset[Scope] = frozenset(Scope)
    email: str | None = None

    def __repr__(self) -> str:
        return self.name


@dataclasses.dataclass
class Side:
    """A buyer, its supplier and its inspector: the parties of one side's objects."""

    buyer: factories.Actor
    supplier: factories.Actor
    inspector: factories.Actor

    @property
    def buyer_company(self) -> int:
        return self.buyer.principal.company_id

    @property
    def supplier_company(self) -> int:
        return self.supplier.principal.company_id

    @property
    def supplier_id(self) -> int:
        assert self.supplier.supplier_id is not None
        return self.supplier.supplier_id


@dataclasses.dataclass
class Facts:
    """Who is who for one object (what the table's `On` relations are evaluated on)."""

    buyer: int | None = None
    supplier: int | None = None  # the supplier's company
    drafter: str | None = None
    proposer: str | None = None
    inspector: int | None = None
    complainant: int | None = None
    key_owner: int | None = None
    member_of: int | None = None
    ordered_from: frozenset[int] = frozenset()
    escalated: bool = False


def relation(on: On, who: Who, f: Facts) -> bool:
    c = who.company
    party = "BUYER" if c == f.buyer else "SUPPLIER" if c == f.supplier else None
    return {
        On.ANY: True,
        On.SELF: True,
        On.KEY_OWNER: c == f.key_owner,
        On.ORDER_BUYER: c == f.buyer,
        On.ORDER_SUPPLIER: c == f.supplier,
        On.NOT_DRAFTER: party is not None and party != f.drafter,
        On.NOT_PROPOSER: party is not None and party != f.proposer,
        On.BOOKED_INSPECTOR: c == f.inspector,
        On.ORDERED_FROM: c in f.ordered_from,
        On.COMPLAINANT: c == f.complainant,
        On.SUPPLIER_SELF: c == f.supplier,
        On.COMPANY_MEMBER: c == f.member_of,
        On.ESCALATED: f.escalated,
    }[on]


def admits(g: Grant, who: Who) -> bool:
    """The grant names this kind of caller (and lets keys in, if the caller is one)."""
    return g.caller is who.caller and (not who.is_key or g.keys is Keys.YES)


def granted(grants: tuple[Grant, ...], who: Who, f: Facts) -> bool:
    return any(admits(g, who) and relation(g.on, who, f) for g in grants)


def sees(object_name: str, who: Who, f: Facts) -> bool:
    return granted(OBJECTS[object_name], who, f)


def expected(policy: Policy, who: Who, f: Facts) -> str | None:
    """The code the table says this caller is refused with; None: let through."""
    if who.caller is Caller.ANONYMOUS and not policy.anonymous:
        return "UNAUTHENTICATED"
    for step, code in policy.steps:
        failed = {
            Step.SCOPE: who.is_key and policy.scope is not None and policy.scope not in who.scopes,
            Step.SEES: policy.object is not None and not sees(policy.object, who, f),
            Step.CALLER: not any(admits(g, who) for g in policy.grants),
            Step.GRANT: not granted(policy.grants, who, f),
        }[step]
        if failed:
            return code
    # Every refusal the table declares is one of its steps: past them, the caller may.
    assert granted(policy.grants, who, f), (policy, who)
    return None


# --- the world --------------------------------------------------------------------------


@dataclasses.dataclass
class World:
    a: Side
    b: Side
    mediator: factories.Actor
    everyone: list[Who]
    principals: dict[str, accounts.Principal]
    http: httpx.AsyncClient
    # Per side: the objects the reads are checked on.
    objects: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)

    def side(self, name: str) -> Side:
        return self.a if name == "a" else self.b

    async def call(self, query: str, variables: dict[str, Any], who: Who) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {who.token}"} if who.token else {}
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers
        )
        assert response.status_code in (200, 401), response.text
        body: dict[str, Any] = response.json()
        return body


def contract() -> orders.Contract:
    return factories.contract(days_to_ship=30)


async def pending(side: Side) -> Order:
    return await orders.create_order(side.buyer.principal, contract(), supplier_id=side.supplier_id)


async def confirmed(side: Side) -> Order:
    order = await pending(side)
    return await orders.confirm_order(side.supplier.principal, order.id)


async def paid(side: Side) -> Order:
    order = await confirmed(side)
    result = await payments.pay_order(
        side.buyer.principal, order.id, Money(order.total_minor, USD), PaymentMethod.CARD,
        idempotency_key=key(), source=CARD_SUCCEEDS,
    )  # fmt: skip
    assert result.error is None
    return order


async def shipped(side: Side) -> Order:
    order = await paid(side)
    shipment = lifecycle.Shipment("Maersk", "MAEU1234567", clock.now())
    return await lifecycle.ship_order(side.supplier.principal, order.id, shipment)


async def received(side: Side) -> Order:
    order = await shipped(side)
    return await lifecycle.confirm_receipt(side.buyer.principal, order.id)


async def booked(side: Side, order: Order | None = None) -> tuple[Order, int]:
    order = order or await paid(side)
    booking = await inspections.book_inspection(
        side.buyer.principal, order.id, side.inspector.principal.company_id,
        (clock.now() + dt.timedelta(days=1)).date(), PaymentMethod.CARD,
        idempotency_key=key(), source=CARD_SUCCEEDS,
    )  # fmt: skip
    assert booking.error is None
    return order, booking.inspection.id


async def opened(side: Side, order: Order | None = None) -> tuple[Order, int]:
    order = order or await received(side)
    dispute = await disputes.open_dispute(
        side.buyer.principal, order.id, reason=DisputeReason.QUALITY_NOT_AS_AGREED,
        requested=Money(1_000_00, USD), description="2900 lm, 3600 lm agreed",
        evidence=[Evidence("measured")], idempotency_key=key(),
    )  # fmt: skip
    return order, dispute.id


async def escalated(side: Side) -> tuple[Order, int]:
    order, dispute_id = await opened(side)
    await Dispute.update({Dispute.escalation_allowed_at: clock.now()}).where(
        Dispute.id == dispute_id
    )
    await disputes.escalate_dispute(side.buyer.principal, dispute_id)
    return order, dispute_id


def order_facts(side: Side, order: Order | None = None, **more: Any) -> Facts:
    return Facts(
        buyer=side.buyer_company,
        supplier=side.supplier_company,
        drafter=order.drafted_by if order is not None else "BUYER",
        inspector=side.inspector.principal.company_id,
        **more,
    )


async def supplier_with_trade_assurance(mediator: factories.Actor) -> factories.Actor:
    """A Gold, verified supplier that applied and was approved (so it has an application)."""
    s = await factories.supplier()
    application = await trade_assurance.apply(s.principal, None)
    await trade_assurance.review(
        mediator.principal, application.id, approve=True, limit=Money(100_000_000_00, USD)
    )
    return s


async def _empty_database() -> None:
    await conftest._empty_tables()
    accounts.forget_sessions()
    config.configure(config.DomainConfig())
    clock.reset_clock()


@pytest.fixture(autouse=True)
def clean() -> None:
    """Overrides conftest's per-test emptying: the world is built once for this module."""


@pytest.fixture(scope="module")
async def world(database: None) -> AsyncIterator[World]:
    await _empty_database()
    # Sign-ups and log-ins are called for every principal here: a light argon2id keeps
    # them quick (the hash records its parameters, so verifying is unaffected).
    hasher, accounts._hasher = accounts._hasher, PasswordHasher(time_cost=1, memory_cost=1024)
    app = make_app()  # installs the sandbox payment provider the set-ups pay through
    mediator = await factories.staff()
    sides = []
    for _ in range(2):
        sides.append(
            Side(
                await factories.buyer(),
                await supplier_with_trade_assurance(mediator),
                await factories.inspector(),
            )
        )
    a, b = sides
    everyone = [Who("anonymous", Caller.ANONYMOUS)]
    for tag, side in (("A", a), ("B", b)):
        for actor, caller in ((side.buyer, Caller.BUYER), (side.supplier, Caller.SUPPLIER)):
            label = f"{caller.value.lower()} {tag}"
            company = actor.principal.company_id
            everyone.append(Who(label, caller, company, actor.token, email=actor.email))
            # Side A's parties have a key per scope; side B's one key with every scope.
            for scopes in (
                [[Scope.READ], [Scope.ORDERS], [Scope.PAYMENTS]] if tag == "A" else [list(Scope)]
            ):
                _, secret = await accounts.create_api_key(
                    company_id=company, name="partner", scopes=scopes
                )
                everyone.append(
                    Who(f"{label} key {'+'.join(scopes)}", caller, company, secret, True,
                        frozenset(scopes))
                )  # fmt: skip
        inspector = side.inspector
        everyone.append(
            Who(f"inspector {tag}", Caller.INSPECTOR, inspector.principal.company_id,
                inspector.token, email=inspector.email)
        )  # fmt: skip
    everyone.append(
        Who("mediator", Caller.MEDIATOR, mediator.principal.company_id, mediator.token,
            email=mediator.email)
    )  # fmt: skip
    principals = {w.name: await accounts.authenticate(w.token) for w in everyone if w.token}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as http:
        w = World(a, b, mediator, everyone, principals, http)
        for tag, side in (("a", a), ("b", b)):
            w.objects[tag] = await _side_objects(side, mediator)
        yield w
    accounts._hasher = hasher
    assert await ledger.check() == []


PDF = b"%PDF-1.7\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"


def pdf(name: str) -> AttachmentUpload:
    return AttachmentUpload(name, PDF, hashlib.sha256(PDF).hexdigest())


async def _side_objects(side: Side, mediator: factories.Actor) -> dict[str, int]:
    """One of everything, on this side: what reads, `node` and nested fields are tried on
    (and a file of each kind, in `_files`)."""
    order, inspection_id = await booked(side)
    # A declined booking refunds the fee: a Refund of this order.
    await inspections.decline_inspection(side.inspector.principal, inspection_id, "fully booked")
    _, reported = await booked(side, order)
    await inspections.accept_inspection(side.inspector.principal, reported)
    await inspections.submit_report(
        side.inspector.principal, reported, InspectionResult.PASSED, "conform", [pdf("r.pdf")]
    )
    shipment = lifecycle.Shipment("Maersk", "MAEU7654321", clock.now())
    await lifecycle.ship_order(side.supplier.principal, order.id, shipment)
    await lifecycle.confirm_receipt(side.buyer.principal, order.id)
    sent = await messages.send_message(
        side.buyer.principal, order.id, "See the photos", files=[pdf("photos.pdf")]
    )
    dispute = await disputes.open_dispute(
        side.buyer.principal, order.id, reason=DisputeReason.QUALITY_NOT_AS_AGREED,
        requested=Money(1_000_00, USD), description="2900 lm, 3600 lm agreed",
        evidence=[Evidence("measured", pdf("sphere.pdf"))], idempotency_key=key(),
    )  # fmt: skip
    complaint = await investigations.file_complaint(
        side.buyer.principal, side.supplier_id, subject="Wrong wattage",
        description="30 W, not 40 W", idempotency_key=key(), files=[pdf("label.pdf")],
    )  # fmt: skip
    result = await investigations.add_penalty_points(side.supplier_id, 48, reason="uncooperative")
    assert result.investigation_id is not None
    # Accepted: the open investigation takes the complaint in.
    await investigations.review_complaint(
        mediator.principal, complaint.id, accept=True, reason=None
    )
    application = await sql.fetch(
        "SELECT id FROM trade_assurance_application WHERE supplier = {}", side.supplier_id
    )
    refund = await sql.fetch('SELECT id FROM refund WHERE "order" = {}', order.id)
    user = await sql.fetch("SELECT id FROM user_account WHERE company = {}", side.buyer_company)
    return {
        "Order": order.id,
        "Inspection": inspection_id,
        "Dispute": dispute.id,
        "Refund": int(refund[0]["id"]),
        "OrderMessage": sent.message.id,
        "Complaint": complaint.id,
        "Investigation": result.investigation_id,
        "TradeAssuranceApplication": int(application[0]["id"]),
        "Supplier": side.supplier_id,
        "Company:SUPPLIER": side.supplier_company,
        "Company": side.buyer_company,
        "User": int(user[0]["id"]),
        "file:Inspection": reported,
    }


# Each download route, its file table and the column naming the object it belongs to.
DOWNLOADS = {
    "Inspection": ("/inspections/attachments/{}", "inspection_attachment", "inspection"),
    "OrderMessage": ("/orders/messages/attachments/{}", "order_message_attachment", "message"),
    "Dispute": ("/disputes/evidence/{}", "dispute_evidence", "dispute"),
    "Complaint": ("/complaints/attachments/{}", "complaint_attachment", "complaint"),
}


async def test_files_download_only_for_whom_may_see_their_object(world: World) -> None:
    problems = []
    for side in ("a", "b"):
        objects = world.objects[side]
        for object_name, (path, table, column) in DOWNLOADS.items():
            owner = objects.get(f"file:{object_name}", objects[object_name])
            query = f"SELECT id FROM {table} WHERE {column} = {{}} AND sha256 IS NOT NULL"  # noqa: S608
            rows = await sql.fetch(query, owner)
            assert rows, (object_name, side)
            facts = await facts_of(object_name, owner)
            for who in world.everyone:
                headers = {"Authorization": f"Bearer {who.token}"} if who.token else {}
                got = await world.http.get(path.format(rows[0]["id"]), headers=headers)
                want = 401 if who.token is None else 200 if sees(object_name, who, facts) else 404
                if got.status_code != want:
                    problems.append(f"{who}: {path} of side {side}: {got.status_code}, not {want}")
    assert not problems, "\n".join(problems)


# --- facts of any object, read from the database (the oracle for lists and `node`) ------


async def facts_of(object_name: str, object_id: int) -> Facts:
    order_sql = (
        "SELECT o.buyer, s.company AS supplier, o.drafted_by, o.id FROM trade_order o"
        " JOIN supplier_profile s ON s.id = o.supplier WHERE o.id = {}"
    )
    via = {
        "Inspection": 'SELECT "order" AS o, inspector FROM inspection WHERE id = {}',
        "Dispute": 'SELECT "order" AS o FROM dispute WHERE id = {}',
        "Refund": 'SELECT "order" AS o FROM refund WHERE id = {}',
        "OrderMessage": 'SELECT "order" AS o FROM order_message WHERE id = {}',
    }
    if object_name == "Order" or object_name in via:
        inspector = None
        order_id = object_id
        if object_name in via:
            row = (await sql.fetch(via[object_name], object_id))[0]
            order_id, inspector = int(row["o"]), row.get("inspector")
        o = (await sql.fetch(order_sql, order_id))[0]
        escalated = await messages.mediator_joined(order_id)
        return Facts(
            buyer=o["buyer"], supplier=o["supplier"], drafter=o["drafted_by"],
            inspector=inspector, escalated=escalated,
        )  # fmt: skip
    if object_name == "Complaint":
        row = (await sql.fetch("SELECT buyer FROM complaint WHERE id = {}", object_id))[0]
        return Facts(complainant=row["buyer"])
    if object_name in ("Investigation", "TradeAssuranceApplication"):
        table = "investigation" if object_name == "Investigation" else "trade_assurance_application"
        row = (
            await sql.fetch(
                f"SELECT s.company FROM {table} t JOIN supplier_profile s"  # noqa: S608
                " ON s.id = t.supplier WHERE t.id = {}",
                object_id,
            )
        )[0]
        return Facts(supplier=row["company"])
    if object_name in ("Company", "Company:SUPPLIER"):
        return Facts(member_of=object_id)
    if object_name == "User":
        row = (await sql.fetch("SELECT company FROM user_account WHERE id = {}", object_id))[0]
        return Facts(member_of=row["company"])
    return Facts()  # public


async def snapshot() -> list[list[dict[str, Any]]]:
    """Every row of every table: a refused mutation must leave all of them as they were."""
    return [await t.raw(f"SELECT * FROM {t._meta.tablename} ORDER BY id") for t in ALL_TABLES]  # noqa: S608


def changed_tables(before: list[Any], after: list[Any]) -> list[str]:
    return [t._meta.tablename for t, x, y in zip(ALL_TABLES, before, after, strict=True) if x != y]


def error_codes(body: dict[str, Any]) -> list[str | None]:
    return [(e.get("extensions") or {}).get("code") for e in body.get("errors") or []]


# --- the root fields: a call template each ----------------------------------------------

ERRORS = "errors { code field }"
CONTRACT = {
    "currency": USD,
    "lines": [{"productName": "LED panel", "quantity": 2, "unitPrice": "1500.00"}],
    "qualityRequirements": [{"attribute": "flux", "requirement": ">= 3600 lm"}],
    "incoterm": "FOB",
    "shippingMethod": "SEA",
    "destinationCountry": "DE",
    "shippingDeadline": "2099-01-31T00:00:00Z",
    "initialPayment": "1500.00",
}


@dataclasses.dataclass
class Target:
    facts: Facts
    ids: dict[str, Any]


Setup = Callable[[World, Side], Awaitable[Target]]
Variables = Callable[[World, Side, Target, Who], dict[str, Any]]


@dataclasses.dataclass
class Call:
    query: str
    setup: Setup
    variables: Variables
    # At least one caller the table lets through must succeed outright (no errors).
    succeeds: bool = True


def mutation(field: str, input_type: str, result: str = "") -> str:
    return f"mutation($input: {input_type}!) {{ {field}(input: $input) {{ {result} {ERRORS} }} }}"


def inp(**values: Any) -> Variables:
    """Variables `{input: …}`; callables among the values are called with (world, side,
    target, caller)."""

    def make(w: World, s: Side, t: Target, who: Who) -> dict[str, Any]:
        return {"input": {k: v(w, s, t, who) if callable(v) else v for k, v in values.items()}}

    return make


def ref(name: str, type_name: str) -> Callable[..., str]:
    return lambda w, s, t, who: gid(type_name, t.ids[name])


def fresh(_w: World, _s: Side, _t: Target, _who: Who) -> str:
    return key()


def order_target(make: Callable[[Side], Awaitable[Order]], **more: Any) -> Setup:
    async def setup(w: World, s: Side) -> Target:
        order = await make(s)
        return Target(order_facts(s, order, **more), {"order": order.id})

    return setup


async def _none(w: World, s: Side) -> Target:
    """No object: the call acts on the caller itself, or creates something new."""
    return Target(Facts(), {})


async def _api_key(w: World, s: Side) -> Target:
    k, _ = await accounts.create_api_key(
        company_id=s.buyer_company, name="to revoke", scopes=[Scope.READ]
    )
    return Target(Facts(key_owner=s.buyer_company), {"key": k.id})


async def _pending_application(w: World, s: Side) -> Target:
    u = await factories.supplier()
    application = await trade_assurance.apply(u.principal, None)
    return Target(Facts(supplier=u.principal.company_id), {"application": application.id})


async def _supplier(w: World, s: Side) -> Target:
    ordered = await sql.fetch(
        "SELECT DISTINCT buyer FROM trade_order WHERE supplier = {}", s.supplier_id
    )
    facts = Facts(supplier=s.supplier_company, ordered_from=frozenset(r["buyer"] for r in ordered))
    return Target(facts, {"supplier": s.supplier_id})


async def _modification(w: World, s: Side) -> Target:
    order = await confirmed(s)
    proposal = await orders.propose_modification(s.buyer.principal, order.id, contract(), "more")
    return Target(order_facts(s, order, proposer="BUYER"), {"modification": proposal.id})


async def _late(w: World, s: Side) -> Target:
    order = await paid(s)
    await Order.update({Order.shipping_deadline: clock.now() - dt.timedelta(hours=1)}).where(
        Order.id == order.id
    )
    return Target(order_facts(s, order), {"order": order.id})


async def _requested(w: World, s: Side) -> Target:
    order, inspection_id = await booked(s)
    return Target(order_facts(s, order), {"inspection": inspection_id})


async def _accepted(w: World, s: Side) -> Target:
    target = await _requested(w, s)
    await inspections.accept_inspection(s.inspector.principal, target.ids["inspection"])
    return target


async def _failed_inspection(w: World, s: Side) -> Target:
    order, inspection_id = await booked(s)
    await inspections.accept_inspection(s.inspector.principal, inspection_id)
    await inspections.submit_report(
        s.inspector.principal, inspection_id, InspectionResult.FAILED, "30 W, not 40 W"
    )
    return Target(order_facts(s, order), {"order": order.id})


async def _complaint(w: World, s: Side) -> Target:
    complaint = await investigations.file_complaint(
        s.buyer.principal, s.supplier_id, subject="Late", description="Again late",
        idempotency_key=key(),
    )  # fmt: skip
    return Target(Facts(complainant=s.buyer_company), {"complaint": complaint.id})


async def _investigation(w: World, s: Side) -> Target:
    u = await factories.supplier()
    assert u.supplier_id is not None
    result = await investigations.add_penalty_points(u.supplier_id, 48, reason="uncooperative")
    return Target(
        Facts(supplier=u.principal.company_id), {"investigation": result.investigation_id}
    )


def dispute_target(make: Callable[[Side], Awaitable[tuple[Order, int]]], **more: Any) -> Setup:
    async def setup(w: World, s: Side) -> Target:
        order, dispute_id = await make(s)
        return Target(order_facts(s, order, **more), {"dispute": dispute_id})

    return setup


async def _offered(s: Side) -> tuple[Order, int]:
    order, dispute_id = await opened(s)
    await disputes.respond_to_dispute(
        s.supplier.principal, dispute_id, DisputeResponse.OFFER, offered=Money(500_00, USD),
        text="half", idempotency_key=key(),
    )  # fmt: skip
    return order, dispute_id


async def _escalatable(s: Side) -> tuple[Order, int]:
    order, dispute_id = await opened(s)
    await Dispute.update({Dispute.escalation_allowed_at: clock.now()}).where(
        Dispute.id == dispute_id
    )
    return order, dispute_id


def _register(w: World, s: Side, t: Target, who: Who) -> dict[str, Any]:
    n = next(_serial)
    return {
        "input": {"companyName": f"Authz {n}", "kind": "BUYER", "country": "US",
                  "fullName": "Ann", "email": f"authz{n}@example.com",
                  "password": factories.PASSWORD}
    }  # fmt: skip


def _create_order(w: World, s: Side, t: Target, who: Who) -> dict[str, Any]:
    named = (
        {"buyerId": gid("Company", s.buyer_company)}
        if who.caller is Caller.SUPPLIER
        else {"supplierId": gid("Supplier", s.supplier_id)}
    )
    return {"input": {**named, "contract": CONTRACT}}


def _today(*_: Any) -> str:
    return (clock.now() + dt.timedelta(days=1)).date().isoformat()


def _now(*_: Any) -> str:
    return clock.now().isoformat()


ORDER_ID = ref("order", "Order")
MONEY = {"amount": "100.00", "currency": USD}

MUTATION_CALLS: dict[str, Call] = {
    "register": Call(mutation("register", "RegisterInput", "token"), _none, _register),
    "login": Call(
        mutation("login", "LoginInput", "token"),
        _none,
        lambda w, s, t, who: {"input": {"email": s.buyer.email, "password": factories.PASSWORD}},
    ),
    "logout": Call(mutation("logout", "LogoutInput", "revokedTokens"), _none, inp()),
    "createApiKey": Call(
        mutation("createApiKey", "CreateApiKeyInput", "secret"),
        _none,
        inp(name="erp", scopes=["READ"]),
    ),
    "revokeApiKey": Call(
        mutation("revokeApiKey", "RevokeApiKeyInput", "apiKey { id }"),
        _api_key,
        inp(apiKeyId=ref("key", "ApiKey")),
    ),
    "updateSupplierProfile": Call(
        mutation("updateSupplierProfile", "UpdateSupplierProfileInput", "supplier { id }"),
        _none,
        inp(keywords=["led strip", "panel light"]),
    ),
    "setSupplierStanding": Call(
        mutation("setSupplierStanding", "SetSupplierStandingInput", "supplier { id }"),
        _supplier,
        inp(supplierId=ref("supplier", "Supplier"), goldSupplier=True),
    ),
    "applyForTradeAssurance": Call(
        mutation("applyForTradeAssurance", "ApplyForTradeAssuranceInput", "application { id }"),
        _none,
        inp(),
        succeeds=False,  # the world's suppliers have it already (TRADE_ASSURANCE_ALREADY_ACTIVE)
    ),
    "reviewTradeAssuranceApplication": Call(
        mutation(
            "reviewTradeAssuranceApplication",
            "ReviewTradeAssuranceApplicationInput",
            "application { status }",
        ),
        _pending_application,
        inp(
            applicationId=ref("application", "TradeAssuranceApplication"),
            decision="APPROVE",
            limit={"amount": "1000.00", "currency": USD},
        ),
    ),
    "createOrder": Call(
        mutation("createOrder", "CreateOrderInput", "order { id }"), _none, _create_order
    ),
    "confirmOrder": Call(
        mutation("confirmOrder", "OrderIdInput", "order { status }"),
        order_target(pending),
        inp(orderId=ORDER_ID),
    ),
    "proposeOrderModification": Call(
        mutation("proposeOrderModification", "ProposeOrderModificationInput", "modificationId"),
        order_target(confirmed),
        inp(orderId=ORDER_ID, contract=CONTRACT, reason="more"),
    ),
    "acceptOrderModification": Call(
        mutation("acceptOrderModification", "AcceptOrderModificationInput", "order { id }"),
        _modification,
        inp(modificationId=ref("modification", "OrderModification")),
    ),
    "shipOrder": Call(
        mutation("shipOrder", "ShipOrderInput", "order { status }"),
        order_target(paid),
        inp(orderId=ORDER_ID, carrier="Maersk", trackingNumber="MAEU1", shippedAt=_now),
    ),
    "confirmReceipt": Call(
        mutation("confirmReceipt", "OrderIdInput", "order { status }"),
        order_target(shipped),
        inp(orderId=ORDER_ID),
    ),
    "cancelOrder": Call(
        mutation("cancelOrder", "CancelOrderInput", "order { status }"),
        order_target(confirmed),
        inp(orderId=ORDER_ID, reason="changed plans"),
    ),
    "payOrder": Call(
        mutation("payOrder", "PayOrderInput", "payment { status }"),
        order_target(confirmed),
        inp(
            orderId=ORDER_ID,
            amount={"amount": "1500.00", "currency": USD},
            method="CARD",
            paymentSource=CARD_SUCCEEDS,
            idempotencyKey=fresh,
        ),
    ),
    "releaseFunds": Call(
        mutation("releaseFunds", "ReleaseFundsInput", "released { amount }"),
        order_target(paid),
        inp(orderId=ORDER_ID, amount=MONEY, idempotencyKey=fresh),
    ),
    "claimLateShipmentRefund": Call(
        mutation("claimLateShipmentRefund", "ClaimLateShipmentRefundInput", "refund { id }"),
        _late,
        inp(orderId=ORDER_ID, idempotencyKey=fresh),
    ),
    "bookInspection": Call(
        mutation("bookInspection", "BookInspectionInput", "inspection { id }"),
        order_target(paid),
        inp(
            orderId=ORDER_ID,
            date=_today,
            method="CARD",
            paymentSource=CARD_SUCCEEDS,
            idempotencyKey=fresh,
            inspectorId=lambda w, s, t, who: gid("Company", s.inspector.principal.company_id),
        ),
    ),
    "acceptInspection": Call(
        mutation("acceptInspection", "InspectionIdInput", "inspection { status }"),
        _requested,
        inp(inspectionId=ref("inspection", "Inspection")),
    ),
    "declineInspection": Call(
        mutation("declineInspection", "DeclineInspectionInput", "inspection { status }"),
        _requested,
        inp(inspectionId=ref("inspection", "Inspection"), reason="fully booked"),
    ),
    "submitInspectionReport": Call(
        mutation("submitInspectionReport", "SubmitInspectionReportInput", "inspection { id }"),
        _accepted,
        inp(inspectionId=ref("inspection", "Inspection"), result="PASSED", findings="conform"),
    ),
    "claimInspectionRefund": Call(
        mutation("claimInspectionRefund", "ClaimInspectionRefundInput", "refunded { amount }"),
        _failed_inspection,
        inp(orderId=ORDER_ID, idempotencyKey=fresh),
    ),
    "fileComplaint": Call(
        mutation("fileComplaint", "FileComplaintInput", "complaint { id }"),
        _supplier,
        inp(
            supplierId=ref("supplier", "Supplier"),
            subject="Late",
            description="Late again",
            idempotencyKey=fresh,
        ),
    ),
    "reviewComplaint": Call(
        mutation("reviewComplaint", "ReviewComplaintInput", "complaint { status }"),
        _complaint,
        inp(complaintId=ref("complaint", "Complaint"), accept=False, reason="no grounds"),
    ),
    "closeInvestigation": Call(
        mutation("closeInvestigation", "CloseInvestigationInput", "investigation { status }"),
        _investigation,
        inp(
            investigationId=ref("investigation", "Investigation"),
            outcome="WARNING",
            reason="first warning",
        ),
    ),
    "openDispute": Call(
        mutation("openDispute", "OpenDisputeInput", "dispute { id }"),
        order_target(received),
        inp(
            orderId=ORDER_ID,
            reason="QUALITY_NOT_AS_AGREED",
            requestedRefund=MONEY,
            description="2900 lm",
            idempotencyKey=fresh,
        ),
    ),
    "respondToDispute": Call(
        mutation("respondToDispute", "RespondToDisputeInput", "dispute { id }"),
        dispute_target(opened),
        inp(
            disputeId=ref("dispute", "Dispute"),
            response="REJECT",
            text="conform",
            idempotencyKey=fresh,
        ),
    ),
    "acceptDisputeOffer": Call(
        mutation("acceptDisputeOffer", "AcceptDisputeOfferInput", "dispute { status }"),
        dispute_target(_offered),
        inp(disputeId=ref("dispute", "Dispute"), idempotencyKey=fresh),
    ),
    "escalateDispute": Call(
        mutation("escalateDispute", "EscalateDisputeInput", "dispute { status }"),
        dispute_target(_escalatable),
        inp(disputeId=ref("dispute", "Dispute")),
    ),
    "resolveDispute": Call(
        mutation("resolveDispute", "ResolveDisputeInput", "dispute { status }"),
        dispute_target(escalated, escalated=True),
        inp(
            disputeId=ref("dispute", "Dispute"),
            decision="RELEASE_TO_SUPPLIER",
            reason="conform",
            idempotencyKey=fresh,
        ),
    ),
    "sendOrderMessage": Call(
        mutation("sendOrderMessage", "SendOrderMessageInput", "message { id }"),
        order_target(confirmed),
        inp(orderId=ORDER_ID, body="When do you ship?"),
    ),
}


def test_every_root_field_has_a_policy_and_every_policy_a_root_field() -> None:
    schema = build_schema()._schema
    roots = {
        "Query": schema.query_type,
        "Mutation": schema.mutation_type,
        "Subscription": schema.subscription_type,
    }
    for name, root in roots.items():
        assert root is not None
        fields, declared = set(root.fields), set(ROOTS[name])
        assert fields - declared == set(), f"{name} fields without a policy entry"
        assert declared - fields == set(), f"policy entries for no {name} field"
    assert set(MUTATION_CALLS) == set(MUTATIONS), "a mutation without a call template"


def test_the_table_is_consistent() -> None:
    """Each refusing entry declares its steps; each SEES step names an object."""
    for root in ROOTS.values():
        for name, policy in root.items():
            if policy.refusal in (Refusal.PAYLOAD, Refusal.ERROR):
                assert policy.steps, name
            for step, _ in policy.steps:
                assert step is not Step.SEES or policy.object in OBJECTS, name
                assert step is not Step.SCOPE or policy.scope is not None, name


# --- mutations ----------------------------------------------------------------------


@pytest.mark.parametrize("side", ["a", "b"])
@pytest.mark.parametrize("field", sorted(MUTATIONS))
async def test_mutation(world: World, field: str, side: str) -> None:
    policy, call = MUTATIONS[field], MUTATION_CALLS[field]
    if side == "b" and call.setup is _none:
        pytest.skip("names no object of either side: side a tried it")
    s = world.side(side)
    target = await call.setup(world, s)
    verdicts = {who: expected(policy, who, target.facts) for who in world.everyone}
    refused = [who for who, code in verdicts.items() if code is not None]
    allowed = [who for who, code in verdicts.items() if code is None]
    problems: list[str] = []

    # The refused first, on the untouched target; together they must change nothing.
    before = await snapshot()
    for who in refused:
        variables = call.variables(world, s, target, who)
        body = await world.call(call.query, variables, who)
        got = _code(body, field)
        if got != verdicts[who]:
            problems.append(f"{who}: expected {verdicts[who]}, got {got} ({body})")
        elif (named := _field(body, field)) and named.split(".")[0] not in variables["input"]:
            # A refusal naming an input the caller never sent tells it something.
            problems.append(f"{who}: refused naming {named!r}, which it did not send")
    changed = changed_tables(before, await snapshot())
    if changed:
        problems.append(f"refused calls changed {changed}")

    succeeded = 0
    for who in allowed:
        caller = await _throwaway(who) if field == "logout" else who
        body = await world.call(call.query, call.variables(world, s, target, caller), caller)
        got = _code(body, field)
        if got in REFUSALS:
            problems.append(f"{who}: expected to be let through, got {got} ({body})")
        succeeded += got is None
    if call.succeeds and allowed and not succeeded:
        problems.append(f"no caller the table lets through succeeded on {field}")
    assert not problems, "\n".join(problems)


async def test_a_mediator_joins_the_conversation_once_a_dispute_is_escalated(
    world: World,
) -> None:
    """The grant the mutation test's (unescalated) target cannot reach."""
    order, _ = await escalated(world.a)
    mediator = next(w for w in world.everyone if w.caller is Caller.MEDIATOR)
    facts = await facts_of("Order", order.id)
    assert facts.escalated and expected(MUTATIONS["sendOrderMessage"], mediator, facts) is None
    call = MUTATION_CALLS["sendOrderMessage"]
    target = Target(facts, {"order": order.id})
    body = await world.call(call.query, call.variables(world, world.a, target, mediator), mediator)
    assert _code(body, "sendOrderMessage") is None, body


def _code(body: dict[str, Any], field: str) -> str | None:
    """A refusal's code: the top-level error's, or the payload's first; None: success."""
    top = error_codes(body)
    if top:
        return top[0]
    errors = body["data"][field]["errors"]
    return errors[0]["code"] if errors else None


def _field(body: dict[str, Any], field: str) -> str | None:
    data = body.get("data") or {}
    errors = (data.get(field) or {}).get("errors") or []
    return errors[0].get("field") if errors else None


async def _throwaway(who: Who) -> Who:
    """`logout` revokes the token it is sent with: a user logs out a token of its own."""
    if who.is_key or who.email is None:
        return who
    _, token, _ = await accounts.login(who.email, factories.PASSWORD)
    return dataclasses.replace(who, token=token)


# --- reads ----------------------------------------------------------------------------

ONE = {
    "order": ("Order", "order(id: $id) { id }"),
    "inspection": ("Inspection", "inspection(id: $id) { id }"),
    "dispute": ("Dispute", "dispute(id: $id) { id }"),
}
PAGE = "first: 100, after: $after) { edges { node { id } } pageInfo { hasNextPage endCursor } }"
LISTS = {
    "orders": ("Order", f"orders({PAGE}"),
    "refunds": ("Refund", f"refunds({PAGE}"),
    "inspections": ("Inspection", f"inspections({PAGE}"),
    "disputes": ("Dispute", f"disputes({PAGE}"),
    "complaints": ("Complaint", f"complaints({PAGE}"),
    "investigations": ("Investigation", f"investigations({PAGE}"),
    "tradeAssuranceApplications": (
        "TradeAssuranceApplication",
        f"tradeAssuranceApplications({PAGE}",
    ),
}
OPEN_READS = {
    "viewer": "viewer { role }",
    "suppliers": "suppliers(first: 5) { edges { node { id } } }",
    "supplier": 'supplier(id: "U3VwcGxpZXI6MQ==") { id }',
    "paymentQuote": 'paymentQuote(amount: {amount: "10.00", currency: "USD"}, method: CARD)'
    " { fee { amount } }",
    "inspectors": "inspectors { company { id } }",
}


def test_every_query_is_tried() -> None:
    assert set(ONE) | set(LISTS) | set(OPEN_READS) | {"node"} == set(QUERIES)


@pytest.mark.parametrize("field", sorted(ONE))
async def test_one_object_reads(world: World, field: str) -> None:
    object_name, selection = ONE[field]
    problems = []
    for side in ("a", "b"):
        object_id = world.objects[side][object_name]
        facts = await facts_of(object_name, object_id)
        for who in world.everyone:
            body = await world.call(
                f"query($id: ID!) {{ {selection} }}", {"id": gid(object_name, object_id)}, who
            )
            if who.caller is Caller.ANONYMOUS:
                if error_codes(body) != ["UNAUTHENTICATED"]:
                    problems.append(f"{who} {side}: {body}")
                continue
            shown = body["data"][field] is not None
            if shown != sees(object_name, who, facts):
                problems.append(f"{who} on side {side}: shown={shown}")
    assert not problems, "\n".join(problems)


async def listed(world: World, field: str, who: Who) -> list[str]:
    """Every id of a connection, page after page."""
    _, selection = LISTS[field]
    ids: list[str] = []
    after = None
    while True:
        body = await world.call(f"query($after: String) {{ {selection} }}", {"after": after}, who)
        assert not body.get("errors"), body
        page = body["data"][field]
        ids += [e["node"]["id"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return ids
        after = page["pageInfo"]["endCursor"]


@pytest.mark.parametrize("field", sorted(LISTS))
async def test_connections_list_only_what_the_caller_may_see(world: World, field: str) -> None:
    object_name, _ = LISTS[field]
    problems = []
    for who in world.everyone:
        if who.caller is Caller.ANONYMOUS:
            body = await world.call(
                f"query {{ {LISTS[field][1].replace('$after', 'null')} }}", {}, who
            )
            assert error_codes(body) == ["UNAUTHENTICATED"], body
            continue
        ids = await listed(world, field, who)
        for global_id in ids:
            _, raw = from_base64(global_id)
            if not sees(object_name, who, await facts_of(object_name, int(raw))):
                problems.append(f"{who} is shown {object_name} {raw}")
        for side in ("a", "b"):  # and what it may see is there
            object_id = world.objects[side][object_name]
            may = sees(object_name, who, await facts_of(object_name, object_id))
            if may != (gid(object_name, object_id) in ids):
                problems.append(f"{who}: {object_name} of side {side} listed={not may}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("field", sorted(OPEN_READS))
async def test_open_reads(world: World, field: str) -> None:
    policy = QUERIES[field]
    for who in world.everyone:
        body = await world.call(f"query {{ {OPEN_READS[field]} }}", {}, who)
        if who.caller is Caller.ANONYMOUS and not policy.anonymous:
            assert error_codes(body) == ["UNAUTHENTICATED"], (who, body)
        else:
            assert not body.get("errors"), (who, body)
            if field == "viewer":
                assert (body["data"]["viewer"] is None) is (who.caller is Caller.ANONYMOUS)


# --- object level: node(id), nested fields --------------------------------------------


async def test_node_shows_each_type_only_to_whom_the_table_grants_it(world: World) -> None:
    schema = build_schema()._schema
    node_types = {t.name for t in schema.get_possible_types(schema.type_map["Node"])}  # type: ignore[arg-type]
    covered = {n.split(":")[0] for n in world.objects["a"] if not n.startswith("file:")}
    assert node_types == covered, "a Node type the node(id) test does not try"
    problems = []
    for side in ("a", "b"):
        for object_name, object_id in world.objects[side].items():
            if object_name.startswith("file:"):
                continue
            type_name = object_name.split(":")[0]
            facts = await facts_of(object_name, object_id)
            for who in world.everyone:
                body = await world.call(
                    "query($id: ID!) { node(id: $id) { id } }",
                    {"id": gid(type_name, object_id)},
                    who,
                )
                assert not body.get("errors"), (who, body)
                shown = body["data"]["node"] is not None
                if shown != sees(object_name, who, facts):
                    problems.append(f"{who}: node({object_name} of side {side}) shown={shown}")
    assert not problems, "\n".join(problems)


NESTED = """query($inspection: ID!, $dispute: ID!, $refund: ID!, $message: ID!, $investigation: ID!,
  $complaint: ID!, $supplier: ID!) {
  inspection: node(id: $inspection) { ... on Inspection { order { id } } }
  dispute: node(id: $dispute) { ... on Dispute { order { id } refunds { id } } }
  refund: node(id: $refund) { ... on Refund { order { id } } }
  message: node(id: $message) { ... on OrderMessage { order { id } } }
  investigation: node(id: $investigation) { ... on Investigation { complaints { id } } }
  complaint: node(id: $complaint) { ... on Complaint { investigation { id } } }
  supplier(id: $supplier) { penaltyPoints { total } investigations { id } }
}"""


async def test_nested_fields_show_no_more_than_the_object_itself(world: World) -> None:
    """A path through an object the caller sees leads only to objects it may see."""
    problems = []
    for side in ("a", "b"):
        o = world.objects[side]
        variables = {
            name.lower() if name != "OrderMessage" else "message": gid(name, o[name])
            for name in ("Inspection", "Dispute", "Refund", "OrderMessage", "Investigation",
                         "Complaint", "Supplier")
        }  # fmt: skip
        order_facts_ = await facts_of("Order", o["Order"])
        record = await facts_of("Investigation", o["Investigation"])
        complaint = await facts_of("Complaint", o["Complaint"])
        for who in world.everyone[1:]:
            data = (await world.call(NESTED, variables, who))["data"]
            may_order = sees("Order", who, order_facts_)
            for via in ("inspection", "dispute", "refund", "message"):
                if data[via] is not None and (data[via]["order"] is not None) != may_order:
                    problems.append(f"{who}: {via}.order shown={not may_order}")
            if data["investigation"] is not None and data["investigation"]["complaints"]:
                if not sees("Complaint", who, complaint):
                    problems.append(f"{who}: Investigation.complaints shows a complaint")
            if data["complaint"] is not None and data["complaint"]["investigation"] is not None:
                if not sees("Investigation", who, record):
                    problems.append(f"{who}: Complaint.investigation shows the investigation")
            own_record = sees("Investigation", who, record)
            if (data["supplier"]["penaltyPoints"] is not None) != own_record or (
                bool(data["supplier"]["investigations"]) != own_record
            ):
                problems.append(f"{who}: supplier's penalty points/investigations shown")
    assert not problems, "\n".join(problems)


# --- subscriptions ----------------------------------------------------------------------

SUBSCRIBE = {
    "orderStatusChanged": "subscription($id: ID!, $after: String) {"
    " orderStatusChanged(orderId: $id, after: $after) { cursor event { id } order { id } } }",
    "orderMessages": "subscription($id: ID!, $after: String) {"
    " orderMessages(orderId: $id, after: $after) { cursor message { id } } }",
    "orderEvents": "subscription($after: String) {"
    " orderEvents(after: $after) { cursor event { id } order { id } } }",
}


async def _first(
    world: World, who: Who, query: str, variables: dict[str, Any], within: float = 10
) -> Any:
    """The first result of a subscription run in process, replaying the feed from its start
    (so an allowed caller gets the order's history at once); None if nothing came."""
    hub = live.Hub(dsn=None)
    hub.position = await feed.head()
    context = Context(principal=world.principals.get(who.name), cache=False, live=hub)
    stream: Any = await SCHEMA.subscribe(query, variables, context_value=context)
    if not hasattr(stream, "__anext__"):
        return stream  # refused before the stream started
    try:
        async with asyncio.timeout(within):
            return await anext(stream)
    except TimeoutError:
        return None
    finally:
        await stream.aclose()


SCHEMA = build_schema()


@pytest.mark.parametrize("field", sorted(SUBSCRIPTIONS))
async def test_subscription(world: World, field: str) -> None:
    policy = SUBSCRIPTIONS[field]
    start = feed.START.cursor()
    problems = []
    for side in ("a", "b") if field != "orderEvents" else ("a",):
        order_id = world.objects[side]["Order"]
        facts = await facts_of("Order", order_id)
        for who in world.everyone:
            variables = {"id": gid("Order", order_id), "after": start}
            if field == "orderEvents":
                del variables["id"]
            # An inspector sees no order: its stream of every order stays silent.
            quiet = field == "orderEvents" and who.caller is Caller.INSPECTOR
            result = await _first(world, who, SUBSCRIBE[field], variables, 1 if quiet else 10)
            if quiet:
                if result is not None:
                    problems.append(f"{who}: orderEvents delivered {result}")
                continue
            if result is None:
                problems.append(f"{who} on side {side}: nothing delivered")
                continue
            codes = [(e.extensions or {}).get("code") for e in result.errors or []]
            if field == "orderEvents":
                want: str | None = "UNAUTHENTICATED" if who.caller is Caller.ANONYMOUS else None
            else:
                want = expected(policy, who, facts)
            if want is not None:
                if codes != [want]:
                    problems.append(f"{who} on side {side}: expected {want}, got {result}")
                continue
            if codes or result.data is None:
                problems.append(f"{who} on side {side}: refused {result}")
                continue
            delivered = result.data[field]
            if field == "orderStatusChanged" and delivered["order"]["id"] != gid("Order", order_id):
                problems.append(f"{who}: another order's event")
            if field == "orderEvents":  # the first event the caller may see, of any order
                shown = delivered["order"]
                if shown is None or not sees(
                    "Order", who, await facts_of("Order", int(from_base64(shown["id"])[1]))
                ):
                    problems.append(f"{who}: orderEvents delivered {delivered}")
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def gateway(world: World) -> Iterator[Any]:
    with serving(TA_LIVE_POLL_SECONDS="0.05") as server:
        yield server


async def test_over_a_real_websocket_a_foreign_order_is_refused(world: World, gateway: Any) -> None:
    order = gid("Order", world.objects["a"]["Order"])
    variables = {"id": order, "after": feed.START.cursor()}
    for field in ("orderStatusChanged", "orderMessages"):
        with pytest.raises(TransportQueryError) as refused:
            async with ws(gateway, world.b.buyer.token) as session:
                async for _ in session.subscribe(
                    GraphQLRequest(SUBSCRIBE[field], variable_values=variables)
                ):
                    break
        assert refused.value.errors and refused.value.errors[0]["extensions"]["code"] == "NOT_FOUND"
    async with ws(gateway, world.a.buyer.token) as session:  # its own: the history at once
        async with asyncio.timeout(20):
            async for result in session.subscribe(
                GraphQLRequest(SUBSCRIBE["orderStatusChanged"], variable_values=variables)
            ):
                assert result["orderStatusChanged"]["order"]["id"] == order
                break


def test_roles_of_principals_match_the_callers() -> None:
    """The table's caller kinds are the principals' (acting) roles, plus anonymous."""
    assert {c.value for c in Caller} - {"ANONYMOUS"} == {r.value for r in Role} - {"PARTNER"}
