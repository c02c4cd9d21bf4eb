"""Trade Assurance applications: apply, review, and the mediators' queue."""

import datetime as dt
import enum
from collections.abc import Iterable
from typing import Annotated

import strawberry
from strawberry import relay

from models import suppliers as directory
from models import trade_assurance
from models.enums import ApplicationStatus
from models.errors import DomainError
from models.money import Money as DomainMoney
from models.tables import TradeAssuranceApplication as ApplicationRow
from resolvers.context import Info
from resolvers.conventions import describe_values
from resolvers.errors import UserError, decode_id, failed, row_id
from resolvers.money import Money, MoneyInput
from resolvers.pagination import check_first, decode_cursor, encode_cursor, page_info
from resolvers.suppliers import Supplier

strawberry.enum(
    ApplicationStatus,
    name="ApplicationStatus",
    description="Where a Trade Assurance application is in its review.",
)
describe_values(
    ApplicationStatus,
    {
        ApplicationStatus.PENDING: (
            "Waiting for a mediator's decision (due within 2 business days by default)."
        ),
        ApplicationStatus.APPROVED: "Approved: Trade Assurance is active with the granted limit.",
        ApplicationStatus.REJECTED: (
            "Rejected, with the mediator's reason; the supplier may apply again."
        ),
    },
)


@strawberry.enum(description="A mediator's decision on an application.")
class ReviewDecision(enum.Enum):
    APPROVE = strawberry.enum_value(
        "APPROVE", description="Grant Trade Assurance with the given `limit`; it is active at once."
    )
    REJECT = strawberry.enum_value(
        "REJECT", description="Refuse, with a `reason` the supplier sees; it may apply again."
    )


def _money(minor: int | None, currency: str | None) -> Money | None:
    return Money.of(DomainMoney(minor, currency)) if minor is not None and currency else None


@strawberry.type(description="A supplier's request for Trade Assurance and its review.")
class TradeAssuranceApplication(relay.Node):
    id: relay.NodeID[int]
    status: ApplicationStatus = strawberry.field(
        description="PENDING until a mediator decides; then APPROVED or REJECTED."
    )
    requested_limit: Money | None = strawberry.field(
        description="The limit the supplier asked for; null if none was named."
    )
    submitted_at: dt.datetime = strawberry.field(description="When the supplier applied.")
    review_due_at: dt.datetime = strawberry.field(
        description="When a decision is due (business days after submission)."
    )
    overdue: bool = strawberry.field(description="Still pending after its due date.")
    flagged_at: dt.datetime | None = strawberry.field(
        description="When the deadline sweep flagged it for the mediators (overdue review)."
    )
    decided_at: dt.datetime | None = strawberry.field(
        description="When a mediator decided; null while PENDING."
    )
    granted_limit: Money | None = strawberry.field(
        description="The Trade Assurance limit granted; null unless APPROVED."
    )
    rejection_reason: str | None = strawberry.field(
        description="Why it was rejected; null unless REJECTED."
    )
    supplier_id: strawberry.Private[int]

    @classmethod
    def of(cls, a: ApplicationRow) -> "TradeAssuranceApplication":
        return cls(
            id=a.id,
            status=ApplicationStatus(a.status),
            requested_limit=_money(a.requested_limit_minor, a.requested_limit_currency),
            submitted_at=a.submitted_at,
            review_due_at=a.review_due_at,
            overdue=trade_assurance.is_overdue(a),
            flagged_at=a.flagged_at,
            decided_at=a.decided_at,
            granted_limit=_money(a.granted_limit_minor, a.granted_limit_currency),
            rejection_reason=a.rejection_reason,
            supplier_id=a.supplier,
        )

    @strawberry.field(description="The supplier that applied.")
    async def supplier(self, info: Info) -> Supplier:
        found = await info.context.suppliers.load(self.supplier_id)
        assert found is not None
        return Supplier.of(found)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list["TradeAssuranceApplication | None"]:
        ids = [row_id(i) for i in node_ids]
        loaded = await info.context.applications.load_many(ids)
        own = await info.context.own_supplier_id()
        principal = info.context.principal
        return [
            cls.of(a) if a and trade_assurance.may_see(principal, a, own) else None for a in loaded
        ]


@strawberry.type
class TradeAssuranceApplicationConnection(relay.Connection[TradeAssuranceApplication]):
    pass


@strawberry.type
class TradeAssuranceQueries:
    @strawberry.field(
        description="Applications, oldest first: all of them for mediators, a supplier's own "
        "for its users."
    )
    async def trade_assurance_applications(
        self,
        info: Info,
        status: Annotated[
            ApplicationStatus | None,
            strawberry.argument(description="Only applications in this status; null: all."),
        ] = None,
        overdue_only: Annotated[
            bool, strawberry.argument(description="Only those past their review due date.")
        ] = False,
        first: int = 20,
        after: str | None = None,
    ) -> TradeAssuranceApplicationConnection:
        principal = info.context.require_principal()
        check_first(first)
        rows, has_next = await trade_assurance.list_applications(
            principal,
            status=status,
            overdue_only=overdue_only,
            first=first,
            after_id=decode_cursor("application", after),
            own_supplier_id=await info.context.own_supplier_id(),
        )
        edges = [
            relay.Edge(
                node=TradeAssuranceApplication.of(a), cursor=encode_cursor("application", a.id)
            )
            for a in rows
        ]
        return TradeAssuranceApplicationConnection(
            edges=edges,
            page_info=page_info(edges, has_next=has_next, has_previous=after is not None),
        )


@strawberry.input
class ApplyForTradeAssuranceInput:
    requested_limit: MoneyInput | None = strawberry.field(
        default=None, description="The coverage the supplier asks for (the mediator decides)."
    )


@strawberry.type
class ApplyForTradeAssurancePayload:
    application: TradeAssuranceApplication | None = strawberry.field(
        default=None, description="The application, PENDING review."
    )
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class ReviewTradeAssuranceApplicationInput:
    application_id: relay.GlobalID
    decision: ReviewDecision = strawberry.field(
        description="APPROVE (give `limit`) or REJECT (give `reason`)."
    )
    limit: MoneyInput | None = strawberry.field(
        default=None, description="Required to approve: the Trade Assurance limit granted."
    )
    reason: str | None = strawberry.field(default=None, description="Required to reject.")


@strawberry.type
class ReviewTradeAssuranceApplicationPayload:
    application: TradeAssuranceApplication | None = strawberry.field(
        default=None, description="The application, now APPROVED or REJECTED."
    )
    supplier: Supplier | None = strawberry.field(
        default=None, description="The supplier, with Trade Assurance ACTIVE after an approval."
    )
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class TradeAssuranceMutations:
    @strawberry.mutation(description="A Gold, verified supplier applies for Trade Assurance.")
    async def apply_for_trade_assurance(
        self, info: Info, input: ApplyForTradeAssuranceInput
    ) -> ApplyForTradeAssurancePayload:
        principal = info.context.require_principal()
        try:
            limit = (
                input.requested_limit.to_domain("requestedLimit") if input.requested_limit else None
            )
            application = await trade_assurance.apply(principal, limit)
        except DomainError as e:
            return failed(ApplyForTradeAssurancePayload, e)
        return ApplyForTradeAssurancePayload(application=TradeAssuranceApplication.of(application))

    @strawberry.mutation(
        description="A mediator approves (with a limit) or rejects an application."
    )
    async def review_trade_assurance_application(
        self, info: Info, input: ReviewTradeAssuranceApplicationInput
    ) -> ReviewTradeAssuranceApplicationPayload:
        principal = info.context.require_principal()
        try:
            application = await trade_assurance.review(
                principal,
                decode_id(input.application_id, "TradeAssuranceApplication", "applicationId"),
                approve=input.decision is ReviewDecision.APPROVE,
                limit=input.limit.to_domain("limit") if input.limit else None,
                reason=input.reason,
            )
        except DomainError as e:
            return failed(ReviewTradeAssuranceApplicationPayload, e)
        found = await directory.get_suppliers([application.supplier])
        return ReviewTradeAssuranceApplicationPayload(
            application=TradeAssuranceApplication.of(application),
            supplier=Supplier.of(found[application.supplier]),
        )
