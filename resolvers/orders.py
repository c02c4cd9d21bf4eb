"""Orders: the contract, its parties, coverage, money and timeline; and the order
transitions (create, confirm, modify, cancel)."""

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated

import strawberry
from graphql import GraphQLError
from strawberry import relay
from strawberry.utils.await_maybe import await_maybe

from models import deadlines, ledger, lifecycle, orders
from models.enums import DeadlineKind, Incoterm, OrderStatus, Role, ShippingMethod
from models.errors import DomainError
from models.money import Money as DomainMoney
from models.suppliers import Supplier as SupplierRow
from models.tables import Company as CompanyRow
from models.tables import Order as OrderRow
from models.tables import OrderEvent as OrderEventRow
from models.tables import Payment as PaymentRow
from resolvers.accounts import Company
from resolvers.context import Info
from resolvers.conventions import describe_values
from resolvers.errors import UserError, decode_id, failed, row_id
from resolvers.money import Money, money_of
from resolvers.pagination import check_first, decode_cursor, encode_cursor, page_info
from resolvers.preload import Preloaded, preload, relation, selected
from resolvers.scalars import CountryCode, CurrencyCode
from resolvers.suppliers import Supplier

if TYPE_CHECKING:
    from resolvers.disputes import Dispute
    from resolvers.inspections import Inspection
    from resolvers.messages import OrderMessageConnection
    from resolvers.payments import Payment

strawberry.enum(OrderStatus, description="Where an order is in its life.")
describe_values(
    OrderStatus,
    {
        OrderStatus.PENDING_CONFIRMATION: (
            "Drafted by one party; the other confirms it (or it is cancelled)."
        ),
        OrderStatus.AWAITING_INITIAL_PAYMENT: (
            "Confirmed; the buyer pays into escrow by the payment deadline (7 days by "
            "default) or the order is cancelled."
        ),
        OrderStatus.AWAITING_BALANCE: (
            "The initial payment is in escrow and production runs; the balance is due before "
            "shipment. Not shipped by the shipping deadline, the order becomes OVERDUE (with "
            "nothing paid, the payment deadline cancels it instead)."
        ),
        OrderStatus.PAID: "Everything is in escrow; the supplier ships by the shipping deadline.",
        OrderStatus.SHIPPED: (
            "The supplier recorded the shipment; receipt is confirmed by the buyer or "
            "automatically."
        ),
        OrderStatus.RECEIVED: (
            "Receipt confirmed; the claim window runs, during which the buyer may open a dispute."
        ),
        OrderStatus.COMPLETED: (
            "The claim window ended with no open dispute; the held balance went to the supplier."
        ),
        OrderStatus.OVERDUE: (
            "The shipping deadline passed without a shipment; the buyer may claim a full refund "
            "of what was paid. If only the initial payment was paid, the balance can no longer "
            "be paid nor the goods shipped."
        ),
        OrderStatus.REFUNDED: (
            "Ended by a full refund of the goods money escrow held (late shipment, failed "
            "inspection)."
        ),
        OrderStatus.CANCELLED: (
            "Cancelled before any money moved, by a party or because nothing was paid by the "
            "payment deadline."
        ),
    },
)
strawberry.enum(Incoterm, description="Incoterms 2020 rule for the shipment.")
describe_values(
    Incoterm,
    {
        Incoterm.EXW: (
            "Ex Works: the buyer collects at the supplier's premises and bears all transport "
            "and risk."
        ),
        Incoterm.FCA: (
            "Free Carrier: the supplier hands the goods, cleared for export, to the buyer's "
            "carrier."
        ),
        Incoterm.CPT: (
            "Carriage Paid To: the supplier pays carriage to the destination; risk passes at "
            "the first carrier."
        ),
        Incoterm.CIP: (
            "Carriage and Insurance Paid To: as CPT, and the supplier insures the goods in transit."
        ),
        Incoterm.DAP: (
            "Delivered at Place: the supplier delivers to the named place, ready for "
            "unloading; the buyer clears import."
        ),
        Incoterm.DPU: "Delivered at Place Unloaded: as DAP, and the supplier unloads.",
        Incoterm.DDP: (
            "Delivered Duty Paid: the supplier delivers, cleared for import with duties paid."
        ),
        Incoterm.FAS: (
            "Free Alongside Ship (sea): the supplier places the goods alongside the vessel at "
            "the port of shipment."
        ),
        Incoterm.FOB: (
            "Free On Board (sea): the supplier loads the goods on the vessel; risk passes then."
        ),
        Incoterm.CFR: (
            "Cost and Freight (sea): the supplier pays freight to the port of destination; "
            "risk passes on loading."
        ),
        Incoterm.CIF: (
            "Cost, Insurance and Freight (sea): as CFR, and the supplier insures the goods at sea."
        ),
    },
)
strawberry.enum(ShippingMethod, description="How the goods travel.")
describe_values(
    ShippingMethod,
    {
        ShippingMethod.EXPRESS: (
            "Courier express; receipt is confirmed automatically 15 days after shipment by default."
        ),
        ShippingMethod.AIR: (
            "Air freight; receipt is confirmed automatically 15 days after shipment by default."
        ),
        ShippingMethod.SEA: (
            "Sea freight; receipt is confirmed automatically 45 days after shipment by default."
        ),
        ShippingMethod.LAND: (
            "Road or rail; receipt is confirmed automatically 30 days after shipment by default."
        ),
    },
)
strawberry.enum(
    DeadlineKind,
    description="A deadline the system enforces: PAYMENT (unpaid orders are cancelled), "
    "SHIPPING (unshipped orders become overdue), RECEIPT (receipt is confirmed "
    "automatically), CLAIM_WINDOW (the held balance is released to the supplier).",
)
describe_values(
    DeadlineKind,
    {
        DeadlineKind.PAYMENT: (
            "Nothing paid by then (7 days after confirmation by default): the order is cancelled."
        ),
        DeadlineKind.SHIPPING: (
            "Not shipped by then, with anything paid: the order becomes OVERDUE and the buyer "
            "may claim a full refund. An unpaid balance does not move it (the balance is due "
            "before shipment)."
        ),
        DeadlineKind.RECEIPT: (
            "Receipt not confirmed by then (15 to 45 days after shipment, by shipping "
            "method): it is confirmed automatically."
        ),
        DeadlineKind.CLAIM_WINDOW: (
            "The claim window ends (30 days after receipt by default): with no open dispute, "
            "the held balance is released to the supplier."
        ),
    },
)


def _money(minor: int | None, currency: str) -> Money | None:
    return money_of(minor, currency) if minor is not None else None


def _company(found: CompanyRow | None) -> Company:
    assert found is not None  # an order's buyer exists (foreign key)
    return Company.of(found)


def _supplier(found: SupplierRow | None) -> Supplier:
    assert found is not None  # an order's supplier exists (foreign key)
    return Supplier.of(found)


def _same(m: ledger.OrderMoney | None) -> ledger.OrderMoney | None:
    return m


@strawberry.type(description="One line of the contract.")
class OrderLine:
    product_name: str = strawberry.field(description="The product, as named in the contract.")
    specification: str = strawberry.field(
        description="Model, size, material and the like; may be empty."
    )
    quantity: int = strawberry.field(description="How many units.")
    unit_price: Money = strawberry.field(description="Price of one unit, in the order's currency.")
    line_total: Money = strawberry.field(description="Quantity times unit price.")


@strawberry.type(description="A measurable quality requirement (what an inspection checks).")
class QualityRequirement:
    attribute: str = strawberry.field(description="What is measured, e.g. `luminous flux`.")
    requirement: str = strawberry.field(description="The measurable target, e.g. `>= 3600 lm`.")


@strawberry.type(description="How and where the goods travel, under which Incoterm.")
class ShippingTerms:
    incoterm: Incoterm = strawberry.field(
        description="The Incoterms 2020 rule: who pays freight and insurance and where risk passes."
    )
    method: ShippingMethod = strawberry.field(
        description="How the goods travel under the contract; it sets the automatic receipt delay."
    )
    destination_country: CountryCode = strawberry.field(
        description="Where the goods go (ISO 3166-1 alpha-2)."
    )


@strawberry.type(description="Buyer protection on this order, fixed at confirmation.")
class Coverage:
    cap: Money | None = strawberry.field(
        description="Most the order is covered for: the total, or less if the supplier's "
        "remaining Trade Assurance limit was smaller at confirmation."
    )
    pre_shipment: Money = strawberry.field(description="The initial payment actually paid.")
    post_delivery: Money = strawberry.field(description="The total actually paid.")
    limit_reserved: Money | None = strawberry.field(
        description="The share of the supplier's limit this order holds while open."
    )
    exchange_rate: Decimal | None = strawberry.field(
        description="Limit-currency units per order-currency unit, recorded at confirmation."
    )


@strawberry.type(description="The order's money, derived from the ledger.")
class OrderMoney:
    paid: Money = strawberry.field(description="Paid into escrow (card fees excluded).")
    held: Money = strawberry.field(description="In escrow now.")
    released: Money = strawberry.field(description="Released to the supplier.")
    refunded: Money = strawberry.field(description="Refunded and paid out to the buyer.")
    refund_pending: Money = strawberry.field(description="Refunds started, not yet paid out.")
    fees: Money = strawberry.field(description="Card fees charged on top of payments.")


@strawberry.type(description="One step of the order's timeline.")
class OrderEvent:
    id: relay.GlobalID
    kind: str = strawberry.field(description="What happened, e.g. CONFIRMED, FUNDS_RELEASED.")
    old_status: OrderStatus | None = strawberry.field(
        description="The status before the event; null for the order's creation."
    )
    new_status: OrderStatus = strawberry.field(
        description="The status after the event (the same as before for events that only "
        "move money or record something)."
    )
    actor_kind: str = strawberry.field(description="USER, PARTNER, SCHEDULER or PAYMENT_PROVIDER.")
    reason: str = strawberry.field(
        description="Why, in words: the party's reason, or what the system did (e.g. "
        "`late shipment`)."
    )
    at: dt.datetime = strawberry.field(description="When it happened (UTC).")

    @classmethod
    def of(cls, e: OrderEventRow) -> "OrderEvent":
        d = vars(e)  # the column values, without a descriptor per value (as Order.of)
        old = d["old_status"]
        return cls(
            id=relay.GlobalID("OrderEvent", str(d["id"])),
            kind=d["kind"],
            old_status=_STATUS[old] if old else None,
            new_status=_STATUS[d["new_status"]],
            actor_kind=d["actor_kind"],
            reason=d["reason"],
            at=d["created_at"],
        )


_STATUS = {s.value: s for s in OrderStatus}  # OrderStatus(value), without Enum's call


@strawberry.type(description="A deadline that applies to the order, and when it falls due.")
class OrderDeadline:
    kind: DeadlineKind = strawberry.field(
        description="Which deadline: PAYMENT, SHIPPING, RECEIPT or CLAIM_WINDOW."
    )
    due_at: dt.datetime = strawberry.field(
        description="When it falls due (UTC); the system acts by itself then."
    )
    passed: bool = strawberry.field(description="The due time has come.")
    met: bool = strawberry.field(
        description="What was due happened: paid, shipped on time, receipt confirmed, "
        "or the claim window closed with the order completed."
    )


@strawberry.type(description="The shipment, as the supplier recorded it.")
class Shipment:
    carrier: str = strawberry.field(description="The carrier or forwarder that took the goods.")
    tracking_number: str = strawberry.field(description="The carrier's tracking number.")
    method: ShippingMethod = strawberry.field(
        description="How the goods actually travel (the contract's method unless the "
        "supplier gave another); it sets the automatic receipt delay."
    )
    shipped_at: dt.datetime = strawberry.field(description="The declared shipment date.")
    recorded_at: dt.datetime = strawberry.field(
        description="When the supplier recorded the shipment here."
    )
    late: bool = strawberry.field(
        description="Shipped after the shipping deadline: the buyer may claim a full refund."
    )


@strawberry.type(description="Receipt of the goods, and the claim window it starts.")
class Receipt:
    received_at: dt.datetime = strawberry.field(
        description="When receipt was confirmed (by the buyer or automatically)."
    )
    automatic: bool = strawberry.field(
        description="Confirmed by the system after the shipping method's days, not the buyer."
    )
    claim_window_ends_at: dt.datetime = strawberry.field(
        description="Disputes can be opened until then (30 days after receipt by "
        "default); then, with no open dispute, the held balance is released."
    )


def _shipping_terms(o: OrderRow) -> ShippingTerms:
    return ShippingTerms(
        incoterm=Incoterm(o.incoterm),
        method=ShippingMethod(o.shipping_method),
        destination_country=CountryCode(o.destination_country),
    )


def _shipment(o: OrderRow) -> Shipment | None:
    if o.shipped_at is None:
        return None
    return Shipment(
        carrier=o.carrier or "",
        tracking_number=o.tracking_number or "",
        method=ShippingMethod(o.shipment_method or o.shipping_method),
        shipped_at=o.shipped_at,
        recorded_at=o.shipment_recorded_at or o.shipped_at,
        late=o.shipped_late,
    )


def _receipt(o: OrderRow) -> Receipt | None:
    if o.received_at is None:
        return None
    return Receipt(
        received_at=o.received_at,
        automatic=o.receipt_auto,
        claim_window_ends_at=o.claim_window_ends_at or o.received_at,
    )


def _events(rows: list[OrderEventRow] | None) -> list[OrderEvent]:
    return [OrderEvent.of(e) for e in rows or ()]


@strawberry.type(description="An order: the purchase contract between a buyer and a supplier.")
class Order(relay.Node):
    id: relay.NodeID[int]
    status: OrderStatus = strawberry.field(
        description="Where the order is in its life; changes with each step (see `events`)."
    )
    drafted_by: Role = strawberry.field(description="BUYER or SUPPLIER; the other confirms.")
    contract_version: int = strawberry.field(
        description="1 for the contract as created; +1 for each accepted modification."
    )
    # Money and nested objects are made only when selected (resolvers below the class).
    total: Money = strawberry.field(
        resolver=lambda self: money_of(vars(self.row)["total_minor"], vars(self.row)["currency"]),
        description="Sum of the line totals, in the order's currency.",
    )
    initial_payment: Money = strawberry.field(
        resolver=lambda self: money_of(self.row.initial_minor, self.row.currency),
        description="The deposit due first (0 up to the total).",
    )
    balance: Money = strawberry.field(
        resolver=lambda self: money_of(
            self.row.total_minor - self.row.initial_minor, self.row.currency
        ),
        description="Total minus the initial payment; due before shipment.",
    )
    shipping_terms: ShippingTerms = strawberry.field(
        resolver=lambda self: _shipping_terms(self.row),
        description="Incoterm, shipping method and destination country.",
    )
    shipping_deadline: dt.datetime = strawberry.field(
        description="The supplier ships (export clearance or carrier pickup) by then; "
        "after it the buyer may claim a late-shipment refund."
    )
    payment_deadline: dt.datetime | None = strawberry.field(
        description="Set at confirmation (7 days later by default): nothing paid by then "
        "and the order is cancelled. Null before confirmation."
    )
    created_at: dt.datetime = strawberry.field(description="When the order was drafted.")
    confirmed_at: dt.datetime | None = strawberry.field(
        description="When the other party confirmed the contract; null until then."
    )
    shipment: Shipment | None = strawberry.field(
        resolver=lambda self: _shipment(self.row),
        description="The shipment the supplier recorded; null until shipped.",
    )
    receipt: Receipt | None = strawberry.field(
        resolver=lambda self: _receipt(self.row),
        description="Receipt of the goods and the claim window; null until received.",
    )
    completed_at: dt.datetime | None = strawberry.field(
        description="When the claim window ended and the held balance was released."
    )
    next_deadline_at: dt.datetime | None = strawberry.field(
        description="When the system next acts on this order by itself (null: nothing due)."
    )
    row: strawberry.Private[OrderRow]
    # The page's relations read up front (resolvers/preload.py); None: the DataLoaders.
    preloaded: strawberry.Private[Preloaded | None] = None

    @classmethod
    def of(cls, o: OrderRow, preloaded: Preloaded | None = None) -> "Order":
        # The column values, as Piccolo's descriptors read them (`obj.__dict__[name]`),
        # without a descriptor and a property per value: pages make 100 of these.
        d = vars(o)
        return cls(
            id=d["id"],
            status=_STATUS[d["status"]],
            drafted_by=Role(d["drafted_by"]),
            contract_version=d["version"],
            shipping_deadline=d["shipping_deadline"],
            payment_deadline=d["payment_deadline"],
            created_at=d["created_at"],
            confirmed_at=d["confirmed_at"],
            completed_at=d["completed_at"],
            next_deadline_at=d["next_deadline_at"],
            row=o,
            preloaded=preloaded,
        )

    # The fields below that read relations are plain functions returning
    # `preload.relation`: the value itself with the page preloaded, else an awaitable.

    async def _money_loaded(self, info: Info) -> ledger.OrderMoney | None:
        m = relation(self.preloaded, "money", self.row.id, _same, info.context, "order_money")
        return await await_maybe(m)

    @strawberry.field(description="Every deadline that applies to the order so far.")
    async def deadlines(self, info: Info) -> list[OrderDeadline]:
        m = await self._money_loaded(info)
        return [
            OrderDeadline(kind=d.kind, due_at=d.due_at, passed=d.passed, met=d.met)
            for d in deadlines.of_order(self.row, paid_minor=m.paid if m else 0)
        ]

    @strawberry.field(description="The buying company.")
    def buyer(self, info: Info) -> Company:
        buyer = vars(self.row)["buyer"]
        return relation(
            self.preloaded, "companies", buyer, _company, info.context, "companies", share="Company"
        )

    @strawberry.field(
        description="The selling supplier (with active Trade Assurance when the order was placed)."
    )
    def supplier(self, info: Info) -> Supplier:
        supplier = vars(self.row)["supplier"]
        return relation(
            self.preloaded,
            "suppliers",
            supplier,
            _supplier,
            info.context,
            "suppliers",
            share="Supplier",
        )

    @strawberry.field(description="The contract's product lines.")
    async def lines(self, info: Info) -> list[OrderLine]:
        c = self.row.currency
        return [
            OrderLine(
                product_name=line.product_name,
                specification=line.specification,
                quantity=line.quantity,
                unit_price=money_of(line.unit_price_minor, c),
                line_total=money_of(line.unit_price_minor * line.quantity, c),
            )
            for line in await info.context.order_lines.load(self.row.id)
        ]

    @strawberry.field(
        description="The contract's measurable quality requirements; without any, a "
        "quality dispute weighs against the buyer."
    )
    async def quality_requirements(self, info: Info) -> list[QualityRequirement]:
        return [
            QualityRequirement(attribute=q.attribute, requirement=q.requirement)
            for q in await info.context.order_quality.load(self.row.id)
        ]

    @strawberry.field(description="Paid, held, released and refunded amounts, from the ledger.")
    def money(self, info: Info) -> OrderMoney:
        return relation(
            self.preloaded, "money", self.row.id, self._order_money, info.context, "order_money"
        )

    def _order_money(self, m: ledger.OrderMoney | None) -> OrderMoney:
        c = self.row.currency
        if m is None:
            zero = money_of(0, c)
            return OrderMoney(
                paid=zero, held=zero, released=zero, refunded=zero, refund_pending=zero, fees=zero
            )
        return OrderMoney(
            paid=money_of(m.paid, c),
            held=money_of(m.held, c),
            released=money_of(m.released, c),
            refunded=money_of(m.refunded, c),
            refund_pending=money_of(m.refund_pending, c),
            fees=money_of(m.fees, c),
        )

    @strawberry.field(
        description="How much of the order Trade Assurance protects, before shipment and "
        "after delivery."
    )
    async def coverage(self, info: Info) -> Coverage:
        m = await self._money_loaded(info)
        cover = orders.coverage(self.row, m.paid if m else 0)
        c = self.row.currency
        return Coverage(
            cap=_money(cover.cap, c),
            pre_shipment=money_of(cover.pre_shipment, c),
            post_delivery=money_of(cover.post_delivery, c),
            limit_reserved=_money(
                self.row.limit_reserved_minor if self.row.limit_currency else None,
                self.row.limit_currency or c,
            ),
            exchange_rate=Decimal(self.row.exchange_rate) if self.row.exchange_rate else None,
        )

    @strawberry.field(
        description="Payments into escrow for the goods, oldest first, failed ones included."
    )
    def payments(
        self, info: Info
    ) -> list[Annotated["Payment", strawberry.lazy("resolvers.payments")]]:
        from resolvers.payments import Payment

        def of(rows: list[PaymentRow] | None) -> list[Payment]:
            return [Payment.of(row) for row in rows or ()]

        return relation(self.preloaded, "payments", self.row.id, of, info.context, "order_payments")

    @strawberry.field(description="Inspections booked for this order, oldest first.")
    async def inspections(
        self, info: Info
    ) -> list[Annotated["Inspection", strawberry.lazy("resolvers.inspections")]]:
        from resolvers.inspections import Inspection

        return [Inspection.of(i) for i in await info.context.order_inspections.load(self.row.id)]

    @strawberry.field(description="The order's latest dispute, if any.")
    async def dispute(
        self, info: Info
    ) -> Annotated["Dispute", strawberry.lazy("resolvers.disputes")] | None:
        from resolvers.disputes import Dispute

        found = await info.context.order_dispute.load(self.row.id)
        return Dispute.of(found) if found is not None else None

    @strawberry.field(
        description="The order's conversation, oldest first (at most 100 per page). Live: "
        "`orderMessages`."
    )
    async def messages(
        self,
        info: Info,
        first: Annotated[int, strawberry.argument(description="Page size, 0 to 100.")] = 20,
        after: Annotated[
            str | None, strawberry.argument(description="The `endCursor` of the page before.")
        ] = None,
    ) -> Annotated["OrderMessageConnection", strawberry.lazy("resolvers.messages")]:
        from models import messages
        from resolvers.messages import OrderMessage, OrderMessageConnection

        check_first(first)
        rows, has_next = await messages.page(
            self.row.id, first=first, after_id=decode_cursor("message", after)
        )
        edges = [
            relay.Edge(node=OrderMessage.of(m), cursor=encode_cursor("message", m.id)) for m in rows
        ]
        return OrderMessageConnection(
            edges=edges,
            page_info=page_info(edges, has_next=has_next, has_previous=after is not None),
        )

    @strawberry.field(description="The timeline: every state change and money movement.")
    def events(self, info: Info) -> list[OrderEvent]:
        return relation(
            self.preloaded, "events", self.row.id, _events, info.context, "order_events"
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list["Order | None"]:
        ids = [row_id(i) for i in node_ids]
        principal = info.context.principal
        found = await orders.get_orders(principal, ids) if principal else {}
        return [cls.of(found[i]) if i in found else None for i in ids]


@strawberry.type
class OrderConnection(relay.Connection[Order]):
    pass


@strawberry.input
class OrderFilter:
    statuses: list[OrderStatus] | None = strawberry.field(
        default=None, description="Only orders in one of these statuses."
    )
    created_from: dt.datetime | None = strawberry.field(
        default=None, description="Created at or after (UTC)."
    )
    created_to: dt.datetime | None = strawberry.field(
        default=None, description="Created before (UTC)."
    )
    due_within_days: int | None = strawberry.field(
        default=None,
        description="A deadline falls due within this many days (suppliers: the shipping "
        "deadline of paid, unshipped orders; others: the next deadline).",
    )
    overdue: bool = strawberry.field(
        default=False,
        description="Only overdue orders: a deadline has passed and is not yet enforced, "
        "or the order was not shipped by its shipping deadline.",
    )


@strawberry.type
class OrderQueries:
    @strawberry.field(description="One order, if you are its buyer, its supplier or a mediator.")
    async def order(self, info: Info, id: relay.GlobalID) -> Order | None:
        principal = info.context.require_principal()
        order_id = row_id(id.node_id) if id.type_name == "Order" else -1
        found = await orders.get_orders(principal, [order_id])
        if order_id not in found:
            return None
        row = found[order_id]
        fields = selected(info._raw_info)
        return Order.of(row, await preload([row], fields))

    @strawberry.field(description="Your orders, newest first (all orders for mediators).")
    async def orders(
        self,
        info: Info,
        filter: OrderFilter | None = None,
        first: int = 20,
        after: str | None = None,
    ) -> OrderConnection:
        principal = info.context.require_principal()
        check_first(first)
        flt = filter or OrderFilter()
        try:
            rows, has_next = await orders.list_orders(
                principal,
                statuses=flt.statuses or (),
                created_from=flt.created_from,
                created_to=flt.created_to,
                due_within_days=flt.due_within_days,
                overdue_only=flt.overdue,
                first=first,
                after_id=decode_cursor("order", after),
            )
        except DomainError as e:
            raise GraphQLError(e.message, extensions={"code": e.code.value}) from None
        fields = selected(info._raw_info, "edges", "node")
        loaded = await preload(rows, fields)
        edges = [
            relay.Edge(node=Order.of(o, loaded), cursor=encode_cursor("order", o.id)) for o in rows
        ]
        return OrderConnection(
            edges=edges,
            page_info=page_info(edges, has_next=has_next, has_previous=after is not None),
        )


@strawberry.input(description="One product line of a contract: what, how many, at what price.")
class OrderLineInput:
    product_name: str = strawberry.field(description="The product's name (1 to 200 characters).")
    specification: str = strawberry.field(
        default="", description="Model, size, material and the like (at most 4000 characters)."
    )
    quantity: int = strawberry.field(description="How many units (positive).")
    unit_price: Decimal = strawberry.field(description="In the order's currency.")


@strawberry.input(description="A quality requirement the goods must meet (checked by inspections).")
class QualityRequirementInput:
    attribute: str = strawberry.field(
        description="What is measured, e.g. `luminous flux` (1 to 200 characters)."
    )
    requirement: str = strawberry.field(
        description="The measurable target, e.g. `>= 3600 lm` (at most 4000 characters)."
    )


@strawberry.input(description="The purchase contract.")
class ContractInput:
    currency: CurrencyCode = strawberry.field(
        description="The order's currency (ISO 4217); every amount of the order is in it."
    )
    lines: list[OrderLineInput] = strawberry.field(
        description="The product lines (at least one); the total is their sum."
    )
    quality_requirements: list[QualityRequirementInput] = strawberry.field(
        default_factory=list,
        description="Measurable requirements an inspection checks (at most 100); without any, "
        "a quality dispute weighs against the buyer.",
    )
    incoterm: Incoterm = strawberry.field(description="The Incoterms 2020 rule for the shipment.")
    shipping_method: ShippingMethod = strawberry.field(
        description="Express, air, sea or land; sets the automatic receipt delay (15, 15, "
        "45, 30 days by default)."
    )
    destination_country: CountryCode = strawberry.field(
        description="Where the goods go (ISO 3166-1 alpha-2)."
    )
    shipping_deadline: dt.datetime = strawberry.field(
        description="Export clearance or carrier pickup by then (UTC)."
    )
    initial_payment: Decimal = strawberry.field(
        description="The deposit (0 up to the total); the rest is the balance, due before shipment."
    )

    def to_domain(self) -> orders.Contract:
        def minor(amount: Decimal, field: str) -> int:
            return DomainMoney.parse(amount, self.currency, field).minor

        return orders.Contract(
            currency=self.currency,
            lines=tuple(
                orders.Line(
                    product_name=line.product_name,
                    quantity=line.quantity,
                    unit_price_minor=minor(line.unit_price, f"contract.lines.{n}.unitPrice"),
                    specification=line.specification,
                )
                for n, line in enumerate(self.lines)
            ),
            quality=tuple(
                orders.Quality(q.attribute, q.requirement) for q in self.quality_requirements
            ),
            incoterm=self.incoterm,
            shipping_method=self.shipping_method,
            destination_country=self.destination_country,
            shipping_deadline=self.shipping_deadline,
            initial_payment_minor=minor(self.initial_payment, "contract.initialPayment"),
        )


@strawberry.input
class CreateOrderInput:
    supplier_id: relay.GlobalID | None = strawberry.field(
        default=None, description="Required when a buyer places the order."
    )
    buyer_id: relay.GlobalID | None = strawberry.field(
        default=None, description="The buyer Company; required when a supplier drafts."
    )
    contract: ContractInput = strawberry.field(
        description="The proposed contract; the other party confirms it."
    )


@strawberry.type
class OrderPayload:
    order: Order | None = strawberry.field(
        default=None, description="The order as the mutation left it."
    )
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class OrderIdInput:
    order_id: relay.GlobalID


@strawberry.input
class CancelOrderInput:
    order_id: relay.GlobalID
    reason: str = strawberry.field(
        description="Why the order is cancelled (at most 4000 characters; kept in its timeline)."
    )


@strawberry.input
class ProposeOrderModificationInput:
    order_id: relay.GlobalID
    contract: ContractInput = strawberry.field(
        description="The whole new contract, replacing the current one once accepted."
    )
    reason: str = strawberry.field(
        default="",
        description="Why the change is proposed (at most 4000 characters; shown to the other "
        "party).",
    )


@strawberry.type
class ProposeOrderModificationPayload:
    modification_id: relay.GlobalID | None = strawberry.field(
        default=None, description="Pass it to acceptOrderModification (the other party)."
    )
    order: Order | None = strawberry.field(
        default=None, description="The order, unchanged until the other party accepts."
    )
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class AcceptOrderModificationInput:
    modification_id: relay.GlobalID


# The domain names contract fields relative to the contract; on the wire they sit under
# the mutation's `contract` input, so UserError.field says `contract.<field>`.
_CONTRACT_FIELDS = frozenset(
    {"currency", "lines", "qualityRequirements", "incoterm", "shippingMethod",
     "destinationCountry", "shippingDeadline", "initialPayment"}
)  # fmt: skip


def in_contract(error: DomainError) -> DomainError:
    """The error with its field as an input path, if it names a contract field."""
    if error.field and error.field.split(".")[0] in _CONTRACT_FIELDS:
        error.field = f"contract.{error.field}"
    return error


def order_id_of(gid: relay.GlobalID, field: str = "orderId") -> int:
    return decode_id(gid, "Order", field)


@strawberry.input(description="The shipment, recorded by the supplier.")
class ShipOrderInput:
    order_id: relay.GlobalID
    carrier: str = strawberry.field(description="The carrier or forwarder that took the goods.")
    tracking_number: str = strawberry.field(description="The carrier's tracking number.")
    shipped_at: dt.datetime = strawberry.field(
        description="The shipment date (export clearance or carrier pickup), not in the future."
    )
    method: ShippingMethod | None = strawberry.field(
        default=None, description="Omit for the contract's shipping method."
    )


@strawberry.type
class OrderMutations:
    @strawberry.mutation(description="A buyer places, or a supplier drafts, an order.")
    async def create_order(self, info: Info, input: CreateOrderInput) -> OrderPayload:
        principal = info.context.require_principal()
        try:
            order = await orders.create_order(
                principal,
                input.contract.to_domain(),
                supplier_id=decode_id(input.supplier_id, "Supplier", "supplierId")
                if input.supplier_id
                else None,
                buyer_company_id=decode_id(input.buyer_id, "Company", "buyerId")
                if input.buyer_id
                else None,
            )
        except DomainError as e:
            return failed(OrderPayload, in_contract(e))
        return OrderPayload(order=Order.of(order))

    @strawberry.mutation(description="The other party accepts the contract.")
    async def confirm_order(self, info: Info, input: OrderIdInput) -> OrderPayload:
        principal = info.context.require_principal()
        try:
            order = await orders.confirm_order(principal, order_id_of(input.order_id))
        except DomainError as e:
            return failed(OrderPayload, e)
        return OrderPayload(order=Order.of(order))

    @strawberry.mutation(description="Propose a new contract (until the balance is paid).")
    async def propose_order_modification(
        self, info: Info, input: ProposeOrderModificationInput
    ) -> ProposeOrderModificationPayload:
        principal = info.context.require_principal()
        try:
            order_id = order_id_of(input.order_id)
            modification = await orders.propose_modification(
                principal, order_id, input.contract.to_domain(), input.reason
            )
            found = await orders.get_orders(principal, [order_id])
        except DomainError as e:
            return failed(ProposeOrderModificationPayload, in_contract(e))
        return ProposeOrderModificationPayload(
            modification_id=relay.GlobalID("OrderModification", str(modification.id)),
            order=Order.of(found[order_id]),
        )

    @strawberry.mutation(description="The other party accepts a proposed modification.")
    async def accept_order_modification(
        self, info: Info, input: AcceptOrderModificationInput
    ) -> OrderPayload:
        principal = info.context.require_principal()
        try:
            order = await orders.accept_modification(
                principal, decode_id(input.modification_id, "OrderModification", "modificationId")
            )
        except DomainError as e:
            return failed(OrderPayload, e)
        return OrderPayload(order=Order.of(order))

    @strawberry.mutation(description="Record the shipment (the supplier, once fully paid).")
    async def ship_order(self, info: Info, input: ShipOrderInput) -> OrderPayload:
        principal = info.context.require_principal()
        try:
            order = await lifecycle.ship_order(
                principal,
                order_id_of(input.order_id),
                lifecycle.Shipment(
                    carrier=input.carrier,
                    tracking_number=input.tracking_number,
                    shipped_at=input.shipped_at,
                    method=input.method,
                ),
            )
        except DomainError as e:
            return failed(OrderPayload, e)
        return OrderPayload(order=Order.of(order))

    @strawberry.mutation(
        description="Confirm the goods arrived (the buyer); the claim window starts."
    )
    async def confirm_receipt(self, info: Info, input: OrderIdInput) -> OrderPayload:
        principal = info.context.require_principal()
        try:
            order = await lifecycle.confirm_receipt(principal, order_id_of(input.order_id))
        except DomainError as e:
            return failed(OrderPayload, e)
        return OrderPayload(order=Order.of(order))

    @strawberry.mutation(description="Cancel an order before any money has moved.")
    async def cancel_order(self, info: Info, input: CancelOrderInput) -> OrderPayload:
        principal = info.context.require_principal()
        try:
            order = await orders.cancel_order(principal, order_id_of(input.order_id), input.reason)
        except DomainError as e:
            return failed(OrderPayload, e)
        return OrderPayload(order=Order.of(order))
