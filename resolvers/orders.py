"""Orders: the contract, its parties, coverage, money and timeline; and the order
transitions (create, confirm, modify, cancel)."""

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated

import strawberry
from graphql import GraphQLError
from strawberry import relay

from models import deadlines, lifecycle, orders
from models.enums import DeadlineKind, Incoterm, OrderStatus, Role, ShippingMethod
from models.errors import DomainError
from models.money import Money as DomainMoney
from models.tables import Order as OrderRow
from models.tables import OrderEvent as OrderEventRow
from resolvers.accounts import Company
from resolvers.context import Info
from resolvers.errors import UserError, decode_id, failed, row_id
from resolvers.money import Money
from resolvers.pagination import check_first, decode_cursor, encode_cursor, page_info
from resolvers.scalars import CountryCode, CurrencyCode
from resolvers.suppliers import Supplier

if TYPE_CHECKING:
    from resolvers.disputes import Dispute
    from resolvers.inspections import Inspection
    from resolvers.messages import OrderMessageConnection
    from resolvers.payments import Payment

strawberry.enum(OrderStatus, description="Where an order is in its life.")
strawberry.enum(Incoterm, description="Incoterms 2020 rule for the shipment.")
strawberry.enum(ShippingMethod, description="How the goods travel.")
strawberry.enum(
    DeadlineKind,
    description="A deadline the system enforces: PAYMENT (unpaid orders are cancelled), "
    "SHIPPING (unshipped orders become overdue), RECEIPT (receipt is confirmed "
    "automatically), CLAIM_WINDOW (the held balance is released to the supplier).",
)


def _money(minor: int | None, currency: str) -> Money | None:
    return Money.of(DomainMoney(minor, currency)) if minor is not None else None


def _money_(minor: int, currency: str) -> Money:
    return Money(amount=DomainMoney(minor, currency).amount, currency=CurrencyCode(currency))


@strawberry.type(description="One line of the contract.")
class OrderLine:
    product_name: str
    specification: str
    quantity: int
    unit_price: Money
    line_total: Money


@strawberry.type(description="A measurable quality requirement (what an inspection checks).")
class QualityRequirement:
    attribute: str
    requirement: str


@strawberry.type(description="How and where the goods travel, under which Incoterm.")
class ShippingTerms:
    incoterm: Incoterm
    method: ShippingMethod
    destination_country: CountryCode


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
    old_status: OrderStatus | None
    new_status: OrderStatus
    actor_kind: str = strawberry.field(description="USER, PARTNER, SCHEDULER or PAYMENT_PROVIDER.")
    reason: str
    at: dt.datetime

    @classmethod
    def of(cls, e: OrderEventRow) -> "OrderEvent":
        return cls(
            id=relay.GlobalID("OrderEvent", str(e.id)),
            kind=e.kind,
            old_status=OrderStatus(e.old_status) if e.old_status else None,
            new_status=OrderStatus(e.new_status),
            actor_kind=e.actor_kind,
            reason=e.reason,
            at=e.created_at,
        )


@strawberry.type(description="A deadline that applies to the order, and when it falls due.")
class OrderDeadline:
    kind: DeadlineKind
    due_at: dt.datetime
    passed: bool = strawberry.field(description="The due time has come.")
    met: bool = strawberry.field(
        description="What was due happened: paid, shipped on time, receipt confirmed, "
        "or the claim window closed with the order completed."
    )


@strawberry.type(description="The shipment, as the supplier recorded it.")
class Shipment:
    carrier: str
    tracking_number: str
    method: ShippingMethod
    shipped_at: dt.datetime = strawberry.field(description="The declared shipment date.")
    recorded_at: dt.datetime
    late: bool = strawberry.field(
        description="Shipped after the shipping deadline: the buyer may claim a full refund."
    )


@strawberry.type(description="Receipt of the goods, and the claim window it starts.")
class Receipt:
    received_at: dt.datetime
    automatic: bool = strawberry.field(
        description="Confirmed by the system after the shipping method's days, not the buyer."
    )
    claim_window_ends_at: dt.datetime


@strawberry.type(description="An order: the purchase contract between a buyer and a supplier.")
class Order(relay.Node):
    id: relay.NodeID[int]
    status: OrderStatus
    drafted_by: Role = strawberry.field(description="BUYER or SUPPLIER; the other confirms.")
    contract_version: int
    total: Money
    initial_payment: Money
    balance: Money
    shipping_terms: ShippingTerms
    shipping_deadline: dt.datetime
    payment_deadline: dt.datetime | None
    created_at: dt.datetime
    confirmed_at: dt.datetime | None
    shipment: Shipment | None
    receipt: Receipt | None
    completed_at: dt.datetime | None = strawberry.field(
        description="When the claim window ended and the held balance was released."
    )
    next_deadline_at: dt.datetime | None = strawberry.field(
        description="When the system next acts on this order by itself (null: nothing due)."
    )
    row: strawberry.Private[OrderRow]

    @classmethod
    def of(cls, o: OrderRow) -> "Order":
        return cls(
            id=o.id,
            status=OrderStatus(o.status),
            drafted_by=Role(o.drafted_by),
            contract_version=o.version,
            total=_money_(o.total_minor, o.currency),
            initial_payment=_money_(o.initial_minor, o.currency),
            balance=_money_(o.total_minor - o.initial_minor, o.currency),
            shipping_terms=ShippingTerms(
                incoterm=Incoterm(o.incoterm),
                method=ShippingMethod(o.shipping_method),
                destination_country=CountryCode(o.destination_country),
            ),
            shipping_deadline=o.shipping_deadline,
            payment_deadline=o.payment_deadline,
            created_at=o.created_at,
            confirmed_at=o.confirmed_at,
            shipment=Shipment(
                carrier=o.carrier or "",
                tracking_number=o.tracking_number or "",
                method=ShippingMethod(o.shipment_method or o.shipping_method),
                shipped_at=o.shipped_at,
                recorded_at=o.shipment_recorded_at or o.shipped_at,
                late=o.shipped_late,
            )
            if o.shipped_at is not None
            else None,
            receipt=Receipt(
                received_at=o.received_at,
                automatic=o.receipt_auto,
                claim_window_ends_at=o.claim_window_ends_at or o.received_at,
            )
            if o.received_at is not None
            else None,
            completed_at=o.completed_at,
            next_deadline_at=o.next_deadline_at,
            row=o,
        )

    @strawberry.field(description="Every deadline that applies to the order so far.")
    async def deadlines(self, info: Info) -> list[OrderDeadline]:
        m = await info.context.order_money.load(self.row.id)
        return [
            OrderDeadline(kind=d.kind, due_at=d.due_at, passed=d.passed, met=d.met)
            for d in deadlines.of_order(self.row, paid_minor=m.paid if m else 0)
        ]

    @strawberry.field
    async def buyer(self, info: Info) -> Company:
        found = await info.context.companies.load(self.row.buyer)
        assert found is not None
        return Company.of(found)

    @strawberry.field
    async def supplier(self, info: Info) -> Supplier:
        found = await info.context.suppliers.load(self.row.supplier)
        assert found is not None
        return Supplier.of(found)

    @strawberry.field
    async def lines(self, info: Info) -> list[OrderLine]:
        c = self.row.currency
        return [
            OrderLine(
                product_name=line.product_name,
                specification=line.specification,
                quantity=line.quantity,
                unit_price=_money_(line.unit_price_minor, c),
                line_total=_money_(line.unit_price_minor * line.quantity, c),
            )
            for line in await info.context.order_lines.load(self.row.id)
        ]

    @strawberry.field
    async def quality_requirements(self, info: Info) -> list[QualityRequirement]:
        return [
            QualityRequirement(attribute=q.attribute, requirement=q.requirement)
            for q in await info.context.order_quality.load(self.row.id)
        ]

    @strawberry.field
    async def money(self, info: Info) -> OrderMoney:
        m = await info.context.order_money.load(self.row.id)
        c = self.row.currency
        if m is None:
            zero = _money_(0, c)
            return OrderMoney(
                paid=zero, held=zero, released=zero, refunded=zero, refund_pending=zero, fees=zero
            )
        return OrderMoney(
            paid=_money_(m.paid, c),
            held=_money_(m.held, c),
            released=_money_(m.released, c),
            refunded=_money_(m.refunded, c),
            refund_pending=_money_(m.refund_pending, c),
            fees=_money_(m.fees, c),
        )

    @strawberry.field
    async def coverage(self, info: Info) -> Coverage:
        m = await info.context.order_money.load(self.row.id)
        cover = orders.coverage(self.row, m.paid if m else 0)
        c = self.row.currency
        return Coverage(
            cap=_money(cover.cap, c),
            pre_shipment=_money_(cover.pre_shipment, c),
            post_delivery=_money_(cover.post_delivery, c),
            limit_reserved=_money(
                self.row.limit_reserved_minor if self.row.limit_currency else None,
                self.row.limit_currency or c,
            ),
            exchange_rate=Decimal(self.row.exchange_rate) if self.row.exchange_rate else None,
        )

    @strawberry.field
    async def payments(
        self, info: Info
    ) -> list[Annotated["Payment", strawberry.lazy("resolvers.payments")]]:
        from resolvers.payments import Payment

        return [Payment.of(p) for p in await info.context.order_payments.load(self.row.id)]

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
    async def events(self, info: Info) -> list[OrderEvent]:
        return [OrderEvent.of(e) for e in await info.context.order_events.load(self.row.id)]

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
    statuses: list[OrderStatus] | None = None
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
        return Order.of(found[order_id]) if order_id in found else None

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
        edges = [relay.Edge(node=Order.of(o), cursor=encode_cursor("order", o.id)) for o in rows]
        return OrderConnection(
            edges=edges,
            page_info=page_info(edges, has_next=has_next, has_previous=after is not None),
        )


@strawberry.input(description="One product line of a contract: what, how many, at what price.")
class OrderLineInput:
    product_name: str
    specification: str = ""
    quantity: int
    unit_price: Decimal = strawberry.field(description="In the order's currency.")


@strawberry.input(description="A quality requirement the goods must meet (checked by inspections).")
class QualityRequirementInput:
    attribute: str = strawberry.field(description="What is measured, e.g. `luminous flux`.")
    requirement: str = strawberry.field(description="The measurable target, e.g. `>= 3600 lm`.")


@strawberry.input(description="The purchase contract.")
class ContractInput:
    currency: CurrencyCode
    lines: list[OrderLineInput]
    quality_requirements: list[QualityRequirementInput] = strawberry.field(default_factory=list)
    incoterm: Incoterm
    shipping_method: ShippingMethod
    destination_country: CountryCode
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
    contract: ContractInput


@strawberry.type
class OrderPayload:
    order: Order | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class OrderIdInput:
    order_id: relay.GlobalID


@strawberry.input
class CancelOrderInput:
    order_id: relay.GlobalID
    reason: str


@strawberry.input
class ProposeOrderModificationInput:
    order_id: relay.GlobalID
    contract: ContractInput
    reason: str = ""


@strawberry.type
class ProposeOrderModificationPayload:
    modification_id: relay.GlobalID | None = strawberry.field(
        default=None, description="Pass it to acceptOrderModification (the other party)."
    )
    order: Order | None = None
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
    carrier: str
    tracking_number: str
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
