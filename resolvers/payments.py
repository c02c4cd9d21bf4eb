"""Money mutations: pay into escrow, release to the supplier; and the fee quote."""

import datetime as dt
from collections.abc import Iterable
from typing import Annotated

import strawberry
from graphql import GraphQLError
from strawberry import relay

from models import lifecycle, orders, payments
from models.enums import PaymentMethod, PaymentStatus, RefundStatus
from models.errors import DomainError
from models.tables import Payment as PaymentRow
from models.tables import Refund as RefundRow
from resolvers.context import Info
from resolvers.conventions import describe_values
from resolvers.errors import UserError, failed, row_id
from resolvers.money import Money, MoneyInput, money_of
from resolvers.orders import Order, order_id_of
from resolvers.pagination import check_first, decode_cursor, encode_cursor, page_info

strawberry.enum(
    PaymentMethod,
    description="CARD (2.8 % fee on top), TT bank transfer (pending until the bank "
    "confirms), E_CHECKING and PAY_LATER (US buyers), BOLETO (Brazilian buyers).",
)
describe_values(
    PaymentMethod,
    {
        PaymentMethod.CARD: "Credit card; a fee (2.8 % by default) is charged on top.",
        PaymentMethod.TT: (
            "T/T bank transfer; pending until the provider confirms the money arrived (3 to 7 "
            "working days)."
        ),
        PaymentMethod.E_CHECKING: "e-Checking, for buyers in the US only.",
        PaymentMethod.BOLETO: "Boleto, for buyers in Brazil only.",
        PaymentMethod.PAY_LATER: (
            "Pay Later financing, for buyers in the US only; refunds go back to the loan, not "
            "to a card."
        ),
    },
)
strawberry.enum(PaymentStatus, description="Where a payment is with the payment provider.")
describe_values(
    PaymentStatus,
    {
        PaymentStatus.PENDING: (
            "Sent to the provider; its outcome is not known yet (a T/T takes days)."
        ),
        PaymentStatus.SUCCEEDED: "The money is in escrow.",
        PaymentStatus.FAILED: (
            "The provider declined it or could not be reached; nothing was taken. See "
            "`failureReason`."
        ),
    },
)
strawberry.enum(
    RefundStatus, description="FAILED refunds are retried; only SETTLED ones were paid out."
)
describe_values(
    RefundStatus,
    {
        RefundStatus.PENDING: (
            "Decided; the provider has not paid it out yet (it starts within 7 business days "
            "by default)."
        ),
        RefundStatus.SETTLED: "Paid out to the buyer's original payment method.",
        RefundStatus.FAILED: (
            "The last payout attempt failed; it is retried and not counted as paid out."
        ),
    },
)


@strawberry.type(description="A payment into escrow.")
class Payment:
    id: relay.GlobalID
    reference: str = strawberry.field(
        description="Our reference at the payment provider (`pay_12`); callbacks name it."
    )
    method: PaymentMethod = strawberry.field(description="How the buyer paid.")
    status: PaymentStatus = strawberry.field(
        description="PENDING until the provider reports (T/T takes days), then SUCCEEDED or FAILED."
    )
    amount: Money = strawberry.field(description="What goes into escrow.")
    fee: Money = strawberry.field(description="Charged on top (card fee).")
    failure_reason: str | None = strawberry.field(
        description="Why it failed, as the provider said (e.g. `provider_unavailable`); "
        "null unless FAILED."
    )
    created_at: dt.datetime = strawberry.field(description="When the payment was started.")
    settled_at: dt.datetime | None = strawberry.field(
        description="When the provider reported the outcome; null while pending."
    )

    @classmethod
    def of(cls, p: PaymentRow) -> "Payment":
        d = vars(p)  # the column values, as Piccolo's descriptors read them, but directly
        currency = d["currency"]
        return cls(
            id=relay.GlobalID("Payment", str(d["id"])),
            reference=payments.payment_reference(d["id"]),
            method=PaymentMethod(d["method"]),
            status=PaymentStatus(d["status"]),
            amount=money_of(d["amount_minor"], currency),
            fee=money_of(d["fee_minor"], currency),
            failure_reason=d["failure_reason"],
            created_at=d["created_at"],
            settled_at=d["settled_at"],
        )


@strawberry.type(description="Money going back from escrow to the buyer.")
class Refund(relay.Node):
    id: relay.NodeID[int]
    reference: str = strawberry.field(
        description="Our reference at the payment provider (`ref_7`); callbacks name it."
    )
    status: RefundStatus = strawberry.field(
        description="PENDING until the provider pays out; SETTLED when paid; FAILED "
        "attempts are retried."
    )
    amount: Money = strawberry.field(
        description="What goes back to the buyer, to the original payment method."
    )
    reason: str = strawberry.field(
        description="Why the money goes back, e.g. late shipment or a dispute decision."
    )
    created_at: dt.datetime = strawberry.field(
        description="When the refund was decided and started."
    )
    settled_at: dt.datetime | None = strawberry.field(
        description="When the provider paid it out; null until SETTLED."
    )
    due_at: dt.datetime = strawberry.field(
        description="The refund is to be paid out by then (`TA_REFUND_START_BUSINESS_DAYS` "
        "business days after the decision)."
    )
    overdue: bool = strawberry.field(description="Not settled and past `dueAt`.")
    flagged_at: dt.datetime | None = strawberry.field(
        description="When the deadline sweep flagged it as late for the mediators (once); "
        "null while on time."
    )
    attempts: int = strawberry.field(description="Payout attempts so far.")
    last_error: str | None = strawberry.field(description="Why the last attempt failed.")
    next_attempt_at: dt.datetime | None = strawberry.field(
        description="When the sweep tries a PENDING or FAILED refund again (backing off after "
        "each failure); null once settled."
    )
    row: strawberry.Private[RefundRow]

    @classmethod
    def of(cls, r: RefundRow) -> "Refund":
        return cls(
            id=r.id,
            reference=payments.refund_reference(r.id),
            status=RefundStatus(r.status),
            amount=money_of(r.amount_minor, r.currency),
            reason=r.reason,
            created_at=r.created_at,
            settled_at=r.settled_at,
            due_at=r.due_at,
            overdue=payments.is_late(r),
            flagged_at=r.flagged_at,
            attempts=r.attempts,
            last_error=r.last_error if r.status != RefundStatus.SETTLED.value else None,
            next_attempt_at=r.next_attempt_at,
            row=r,
        )

    @strawberry.field(description="The order the money goes back from.")
    async def order(self, info: Info) -> Order | None:
        return await _fresh_order(info, self.row.order)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list["Refund | None"]:
        ids = [row_id(i) for i in node_ids]
        principal = info.context.principal
        found = await payments.get_refunds(principal, ids) if principal else {}
        return [cls.of(found[i]) if i in found else None for i in ids]


@strawberry.type
class RefundConnection(relay.Connection[Refund]):
    pass


@strawberry.input
class RefundFilter:
    status: RefundStatus | None = strawberry.field(
        default=None, description="Only refunds in this status."
    )
    overdue: bool = strawberry.field(
        default=False,
        description="Not settled and past its due date (flagged by the sweep or about to be).",
    )


@strawberry.type(description="What a payment will cost before it is made.")
class PaymentQuote:
    amount: Money = strawberry.field(description="What goes into escrow.")
    fee: Money = strawberry.field(
        description="Charged on top: 2.8 % for CARD by default, nothing for other methods."
    )
    total_charge: Money = strawberry.field(description="Amount plus fee: what is charged.")


@strawberry.type
class PaymentQueries:
    @strawberry.field(description="The fee for paying `amount` by `method` (shown before).")
    def payment_quote(
        self,
        info: Info,
        amount: Annotated[MoneyInput, strawberry.argument(description="The amount to pay.")],
        method: Annotated[PaymentMethod, strawberry.argument(description="How it would be paid.")],
    ) -> PaymentQuote:
        info.context.require_principal()
        try:
            q = payments.quote(method, amount.to_domain("amount"))
        except DomainError as e:
            raise GraphQLError(e.message, extensions={"code": e.code.value}) from None
        return PaymentQuote(
            amount=money_of(q.amount.minor, q.amount.currency),
            fee=money_of(q.fee.minor, q.fee.currency),
            total_charge=money_of(q.total_charge.minor, q.total_charge.currency),
        )

    @strawberry.field(
        description="Refunds oldest first: all of them for mediators (`overdue: true` is their "
        "queue of late refunds), those of your orders otherwise."
    )
    async def refunds(
        self,
        info: Info,
        filter: RefundFilter | None = None,
        first: int = 20,
        after: str | None = None,
    ) -> RefundConnection:
        principal = info.context.require_principal()
        check_first(first)
        flt = filter or RefundFilter()
        try:
            rows, has_next = await payments.list_refunds(
                principal,
                status=flt.status,
                overdue=flt.overdue,
                first=first,
                after_id=decode_cursor("refund", after),
            )
        except DomainError as e:
            raise GraphQLError(e.message, extensions={"code": e.code.value}) from None
        edges = [relay.Edge(node=Refund.of(r), cursor=encode_cursor("refund", r.id)) for r in rows]
        return RefundConnection(
            edges=edges,
            page_info=page_info(edges, has_next=has_next, has_previous=after is not None),
        )


@strawberry.input
class PayOrderInput:
    order_id: relay.GlobalID
    amount: MoneyInput = strawberry.field(
        description="The initial payment, the balance, or everything outstanding."
    )
    method: PaymentMethod = strawberry.field(
        description="How to pay; some methods are for buyers in certain countries only "
        "(PAYMENT_METHOD_NOT_AVAILABLE)."
    )
    payment_source: str | None = strawberry.field(
        default=None,
        description="For CARD: the card token or (sandbox) test card number.",
    )
    idempotency_key: str = strawberry.field(
        description="Your unique key for this payment: a retry with the same key and input "
        "returns the first result and moves nothing."
    )


@strawberry.type(
    description="What `payOrder` returns: the payment and the order, or `errors` and no "
    "result. A charge the provider declined or could not make also returns its FAILED "
    "payment (with its `failureReason`) beside the error."
)
class PayOrderPayload:
    payment: Payment | None = strawberry.field(
        default=None, description="The payment, PENDING or already settled."
    )
    order: Order | None = strawberry.field(
        default=None,
        description="The order after the payment (its status moves once the money is in escrow).",
    )
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class ReleaseFundsInput:
    order_id: relay.GlobalID
    amount: MoneyInput | None = strawberry.field(
        default=None, description="Part of what is held; omit to release everything held."
    )
    idempotency_key: str


@strawberry.type
class ReleaseFundsPayload:
    released: Money | None = strawberry.field(
        default=None, description="The amount released to the supplier."
    )
    order: Order | None = strawberry.field(default=None, description="The order after the release.")
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class ClaimLateShipmentRefundInput:
    order_id: relay.GlobalID
    idempotency_key: str


@strawberry.type
class ClaimLateShipmentRefundPayload:
    refund: Refund | None = strawberry.field(
        default=None,
        description="The first of `refunds`.",
        deprecation_reason="A refund is split over the payments it returns; use `refunds`.",
    )
    refunds: list[Refund] = strawberry.field(
        default_factory=list,
        description="The refund of everything escrow held for the goods: one per payment it "
        "goes back to (a deposit by Pay Later and a balance by card get two), newest payment "
        "first.",
    )
    order: Order | None = strawberry.field(default=None, description="The order, now REFUNDED.")
    errors: list[UserError] = strawberry.field(default_factory=list)


async def _fresh_order(info: Info, order_id: int) -> Order | None:
    principal = info.context.require_principal()
    found = await orders.get_orders(principal, [order_id])
    return Order.of(found[order_id]) if order_id in found else None


@strawberry.type
class PaymentMutations:
    @strawberry.mutation(description="Pay into escrow (the buyer).")
    async def pay_order(self, info: Info, input: PayOrderInput) -> PayOrderPayload:
        principal = info.context.require_principal()
        try:
            order_id = order_id_of(input.order_id)
            result = await payments.pay_order(
                principal,
                order_id,
                input.amount.to_domain("amount"),
                input.method,
                idempotency_key=input.idempotency_key,
                source=input.payment_source,
            )
        except DomainError as e:
            return failed(PayOrderPayload, e)
        return PayOrderPayload(
            payment=Payment.of(result.payment),
            order=Order.of(result.order) if result.order else await _fresh_order(info, order_id),
            errors=[UserError.of(result.error)] if result.error else [],
        )

    @strawberry.mutation(description="Release held money to the supplier (the buyer).")
    async def release_funds(self, info: Info, input: ReleaseFundsInput) -> ReleaseFundsPayload:
        principal = info.context.require_principal()
        try:
            order_id = order_id_of(input.order_id)
            release = await payments.release_funds(
                principal,
                order_id,
                input.amount.to_domain("amount") if input.amount else None,
                idempotency_key=input.idempotency_key,
            )
        except DomainError as e:
            return failed(ReleaseFundsPayload, e)
        return ReleaseFundsPayload(
            released=money_of(release.amount.minor, release.amount.currency),
            order=Order.of(release.order),
        )

    @strawberry.mutation(
        description="Claim a full refund of what escrow holds when the order was not shipped "
        "by its shipping deadline, or was shipped after it (the buyer)."
    )
    async def claim_late_shipment_refund(
        self, info: Info, input: ClaimLateShipmentRefundInput
    ) -> ClaimLateShipmentRefundPayload:
        principal = info.context.require_principal()
        try:
            order_id = order_id_of(input.order_id)
            claim = await lifecycle.claim_late_shipment_refund(
                principal, order_id, idempotency_key=input.idempotency_key
            )
        except DomainError as e:
            return failed(ClaimLateShipmentRefundPayload, e)
        return ClaimLateShipmentRefundPayload(
            refund=Refund.of(claim.refunds[0]),
            refunds=[Refund.of(r) for r in claim.refunds],
            order=await _fresh_order(info, order_id),
        )
