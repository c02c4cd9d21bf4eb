"""Disputes: opening (with its assessment and evidence), the supplier's answer, the
buyer's acceptance of an offer, escalation, the mediator's decision; and the reads."""

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated

import strawberry
from graphql import GraphQLError
from strawberry import relay
from strawberry.file_uploads import Upload

from models import disputes
from models.enums import (
    AssessmentEffect,
    AssessmentRule,
    DisputeDecision,
    DisputeOutcome,
    DisputeReason,
    DisputeResponse,
    DisputeStatus,
    Role,
)
from models.errors import DomainError, ErrorCode
from models.inspections import AttachmentUpload
from models.tables import Dispute as DisputeRow
from models.tables import DisputeEvidence as EvidenceRow
from resolvers.context import Info
from resolvers.conventions import describe_values
from resolvers.errors import UserError, decode_id, failed, row_id
from resolvers.inspections import read_upload
from resolvers.money import Money, MoneyInput, money_of
from resolvers.orders import Order, order_id_of
from resolvers.pagination import check_first, decode_cursor, encode_cursor, page_info
from resolvers.payments import Refund, _fresh_order

EVIDENCE_PATH = "/disputes/evidence/{id}"

if TYPE_CHECKING:
    from resolvers.messages import OrderMessage

strawberry.enum(
    DisputeStatus,
    description="OPEN while the supplier answers and the parties negotiate; ESCALATED when "
    "a mediator decides; RESOLVED.",
)
describe_values(
    DisputeStatus,
    {
        DisputeStatus.OPEN: (
            "The supplier answers (within 3 days by default) and the parties negotiate."
        ),
        DisputeStatus.ESCALATED: (
            "A mediator decides, by the buyer's escalation or automatically when still open."
        ),
        DisputeStatus.RESOLVED: "Ended; see `outcome`.",
    },
)
strawberry.enum(DisputeReason, description="What the buyer's claim is about.")
describe_values(
    DisputeReason,
    {
        DisputeReason.LATE_SHIPMENT: "The goods did not ship by the shipping deadline.",
        DisputeReason.QUALITY_NOT_AS_AGREED: "The goods miss the contract's quality requirements.",
        DisputeReason.NOT_AS_DESCRIBED: "The goods differ from the contract's product lines.",
        DisputeReason.QUANTITY_SHORT: "Fewer goods arrived than ordered.",
        DisputeReason.NOT_RECEIVED: "The goods did not arrive.",
    },
)
strawberry.enum(
    DisputeResponse,
    description="The supplier's answer: ACCEPT (refund as asked), OFFER (another refund), "
    "REJECT (open for escalation).",
)
describe_values(
    DisputeResponse,
    {
        DisputeResponse.ACCEPT: (
            "The supplier agrees to the refund asked for; the dispute is resolved."
        ),
        DisputeResponse.OFFER: "The supplier offers a smaller refund, which the buyer may accept.",
        DisputeResponse.REJECT: "The supplier refuses; the buyer may escalate to a mediator.",
    },
)
strawberry.enum(DisputeDecision, description="A mediator's decision on an escalated dispute.")
describe_values(
    DisputeDecision,
    {
        DisputeDecision.FULL_REFUND: (
            "Everything escrow holds for the order goes back to the buyer; the order ends REFUNDED."
        ),
        DisputeDecision.PARTIAL_REFUND: (
            "The given amount goes back to the buyer; the rest stays in escrow and is "
            "released when the claim window ends."
        ),
        DisputeDecision.RELEASE_TO_SUPPLIER: (
            "Nothing goes back: the held money is released to the supplier and the order completes."
        ),
    },
)
strawberry.enum(DisputeOutcome, description="How a dispute ended.")
describe_values(
    DisputeOutcome,
    {
        DisputeOutcome.SUPPLIER_ACCEPTED: "The supplier accepted the refund asked for.",
        DisputeOutcome.OFFER_ACCEPTED: "The buyer accepted the supplier's offer.",
        DisputeOutcome.FULL_REFUND: "A mediator decided a full refund.",
        DisputeOutcome.PARTIAL_REFUND: "A mediator decided a partial refund.",
        DisputeOutcome.RELEASE_TO_SUPPLIER: "A mediator decided for the supplier.",
    },
)
strawberry.enum(
    AssessmentRule, description="A published rejection rule a dispute is assessed against."
)
describe_values(
    AssessmentRule,
    {
        AssessmentRule.BEFORE_PAYMENT: (
            "Blocks: nothing has been paid into escrow yet (DISPUTE_BEFORE_PAYMENT)."
        ),
        AssessmentRule.OUTSIDE_CLAIM_WINDOW: (
            "Blocks: the claim window after receipt (30 days by default) has ended "
            "(OUTSIDE_CLAIM_WINDOW)."
        ),
        AssessmentRule.NO_QUALITY_STANDARD: (
            "Weighs against: a quality reason (QUALITY_NOT_AS_AGREED, NOT_AS_DESCRIBED) and "
            "the contract has no measurable quality requirement."
        ),
        AssessmentRule.RAISED_AFTER_ARRIVAL_WITHOUT_INSPECTION: (
            "Weighs against: a quality reason raised after receipt, with no inspection booked."
        ),
        AssessmentRule.INSPECTION_PASSED: (
            "Weighs against: a quality reason, and an inspection report says the goods conform."
        ),
        AssessmentRule.DELAY_ACCEPTED_IN_WRITING: (
            "Weighs against: a late-shipment claim, and the buyer states it accepted the delay "
            "in writing."
        ),
        AssessmentRule.FREIGHT_OR_AFTER_SALES: (
            "Weighs against: the buyer marks the claim as about freight, port costs or "
            "after-sales, which are not covered."
        ),
    },
)
strawberry.enum(
    AssessmentEffect,
    description="BLOCKS: the dispute is refused; WEIGHS_AGAINST: it weighs in the decision.",
)
describe_values(
    AssessmentEffect,
    {
        AssessmentEffect.BLOCKS: (
            "The rule refuses the dispute with its error code; it is not opened, so no stored "
            "finding has this effect."
        ),
        AssessmentEffect.WEIGHS_AGAINST: (
            "The dispute stands; the finding weighs in the mediator's decision."
        ),
    },
)


@strawberry.type(description="One rule that applies to a dispute, found when it was opened.")
class AssessmentFinding:
    rule: AssessmentRule = strawberry.field(
        description="The published rejection rule that applies."
    )
    effect: AssessmentEffect = strawberry.field(
        description="How the rule counts: stored findings weigh against the claim "
        "(WEIGHS_AGAINST); a blocking rule refuses the dispute instead."
    )
    reason: str = strawberry.field(description="Why the rule applies to this dispute, in words.")


@strawberry.type(
    description="Evidence a party added: text, a file, a message of the order's "
    "conversation, or several of them."
)
class DisputeEvidence:
    party: Role = strawberry.field(description="BUYER or SUPPLIER.")
    text: str = strawberry.field(
        description="What the party wrote; may be empty when a file or message is the evidence."
    )
    filename: str | None = strawberry.field(
        description="The file's name as uploaded; null without a file."
    )
    content_type: str | None = strawberry.field(description="Recognised from the file's bytes.")
    size: int | None = strawberry.field(description="In bytes.")
    sha256: str | None = strawberry.field(description="Hex SHA-256 of the file.")
    added_at: dt.datetime = strawberry.field(description="When it was added.")
    url: str | None = strawberry.field(
        description="Where to download the file with your bearer token "
        "(`/disputes/evidence/<n>`): the order's buyer and supplier and mediators; null for "
        "text-only evidence."
    )
    message_id: strawberry.Private[int | None] = None

    @strawberry.field(description="The message of the order's conversation it cites.")
    async def message(
        self, info: Info
    ) -> Annotated["OrderMessage", strawberry.lazy("resolvers.messages")] | None:
        from resolvers.messages import OrderMessage

        if self.message_id is None:
            return None
        found = await info.context.messages.load(self.message_id)
        return OrderMessage.of(found) if found is not None else None

    @classmethod
    def of(cls, e: EvidenceRow) -> "DisputeEvidence":
        return cls(
            party=Role(e.party),
            text=e.text,
            filename=e.filename,
            content_type=e.content_type,
            size=e.size_bytes,
            sha256=e.sha256,
            added_at=e.created_at,
            url=EVIDENCE_PATH.format(id=e.id) if e.sha256 is not None else None,
            message_id=e.message,
        )


@strawberry.type(description="A buyer's dispute on an order.")
class Dispute(relay.Node):
    id: relay.NodeID[int]
    status: DisputeStatus = strawberry.field(
        description="OPEN while the parties negotiate; ESCALATED when a mediator decides; "
        "RESOLVED at the end."
    )
    reason: DisputeReason = strawberry.field(description="What the buyer's claim is about.")
    description: str = strawberry.field(description="The buyer's account of the problem.")
    requested_refund: Money = strawberry.field(
        description="The refund the buyer asks for (at most what was paid, is covered and "
        "escrow holds)."
    )
    assessment: list[AssessmentFinding] = strawberry.field(
        description="The rules that weigh against the claim, found when it was opened."
    )
    concerns_freight_or_after_sales: bool = strawberry.field(
        description="The buyer said the claim is about freight, port costs or after-sales "
        "(weighs against it)."
    )
    delay_accepted_in_writing: bool = strawberry.field(
        description="The buyer said they had accepted the delay in writing (weighs against it)."
    )
    opened_at: dt.datetime = strawberry.field(
        description="When the buyer opened it; the supplier's time to answer (3 days by "
        "default) starts then."
    )
    response_due_at: dt.datetime = strawberry.field(description="The supplier answers by then.")
    escalation_allowed_at: dt.datetime = strawberry.field(
        description="The buyer may escalate from then."
    )
    auto_escalation_at: dt.datetime = strawberry.field(
        description="Still open then: escalated automatically."
    )
    supplier_response: DisputeResponse | None = strawberry.field(
        description="ACCEPT, OFFER or REJECT; null until the supplier answers."
    )
    supplier_response_text: str = strawberry.field(
        description="What the supplier wrote with the answer; empty if nothing."
    )
    offered_refund: Money | None = strawberry.field(
        description="With OFFER: the refund the supplier offers instead; the buyer may accept it."
    )
    responded_at: dt.datetime | None = strawberry.field(
        description="When the supplier answered; null until then."
    )
    escalated_at: dt.datetime | None = strawberry.field(
        description="When it went to a mediator; null unless escalated."
    )
    escalated_automatically: bool = strawberry.field(
        description="Escalated by the system because it was still open at "
        "`autoEscalationAt`, not by the buyer."
    )
    supplier_cooperated: bool | None = strawberry.field(
        description="Set at escalation: whether the supplier answered in time."
    )
    outcome: DisputeOutcome | None = strawberry.field(
        description="How it ended; null until RESOLVED."
    )
    refunded: Money | None = strawberry.field(description="What the outcome gave back.")
    decision_reason: str | None = strawberry.field(
        description="The mediator's reason, for a decided dispute."
    )
    inspection_fee_refunded: bool = strawberry.field(
        description="The mediator sent held inspection fees back to the buyer."
    )
    resolved_at: dt.datetime | None = strawberry.field(
        description="When it was resolved; null until then."
    )
    row: strawberry.Private[DisputeRow]

    @classmethod
    def of(cls, d: DisputeRow) -> "Dispute":
        c = d.currency
        return cls(
            id=d.id,
            status=DisputeStatus(d.status),
            reason=DisputeReason(d.reason),
            description=d.description,
            requested_refund=money_of(d.requested_minor, c),
            assessment=[
                AssessmentFinding(rule=f.rule, effect=f.effect, reason=f.reason)
                for f in disputes.findings_of(d)
            ],
            concerns_freight_or_after_sales=d.concerns_freight_or_after_sales,
            delay_accepted_in_writing=d.delay_accepted_in_writing,
            opened_at=d.opened_at,
            response_due_at=d.response_due_at,
            escalation_allowed_at=d.escalation_allowed_at,
            auto_escalation_at=d.auto_escalation_at,
            supplier_response=DisputeResponse(d.supplier_response) if d.supplier_response else None,
            supplier_response_text=d.supplier_response_text,
            offered_refund=money_of(d.offered_minor, c) if d.offered_minor is not None else None,
            responded_at=d.responded_at,
            escalated_at=d.escalated_at,
            escalated_automatically=d.escalated_automatically,
            supplier_cooperated=d.supplier_cooperated,
            outcome=DisputeOutcome(d.outcome) if d.outcome else None,
            refunded=money_of(d.refunded_minor, c) if d.refunded_minor is not None else None,
            decision_reason=d.decision_reason or None,
            inspection_fee_refunded=d.inspection_fee_refunded,
            resolved_at=d.resolved_at,
            row=d,
        )

    @strawberry.field(description="Text and files from both parties, oldest first.")
    async def evidence(self, info: Info) -> list[DisputeEvidence]:
        return [
            DisputeEvidence.of(e) for e in await info.context.dispute_evidence.load(self.row.id)
        ]

    @strawberry.field(description="The order the dispute is about.")
    async def order(self, info: Info) -> Order | None:
        return await _fresh_order(info, self.row.order)

    @strawberry.field(
        description="The refunds the outcome started (the goods money, and any inspection fee "
        "returned), oldest first; empty while undecided or when the supplier was paid."
    )
    async def refunds(self, info: Info) -> list[Refund]:
        return [Refund.of(r) for r in await info.context.dispute_refunds.load(self.row.id)]

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list["Dispute | None"]:
        ids = [row_id(i) for i in node_ids]
        principal = info.context.principal
        found = await disputes.get_disputes(principal, ids) if principal else {}
        return [cls.of(found[i]) if i in found else None for i in ids]


@strawberry.type
class DisputeConnection(relay.Connection[Dispute]):
    pass


@strawberry.input
class DisputeFilter:
    status: DisputeStatus | None = strawberry.field(
        default=None, description="Only disputes in this status."
    )
    escalated: bool | None = strawberry.field(
        default=None, description="Escalated at some point (true) or never (false)."
    )
    overdue: bool = strawberry.field(
        default=False,
        description="Open, and unanswered past the response time or past automatic "
        "escalation (not yet enforced).",
    )


@strawberry.type
class DisputeQueries:
    @strawberry.field(
        description="One dispute, if you are its order's buyer, supplier or a mediator."
    )
    async def dispute(self, info: Info, id: relay.GlobalID) -> Dispute | None:
        principal = info.context.require_principal()
        dispute_id = row_id(id.node_id) if id.type_name == "Dispute" else -1
        found = await disputes.get_disputes(principal, [dispute_id])
        return Dispute.of(found[dispute_id]) if dispute_id in found else None

    @strawberry.field(
        description="Disputes newest first: all of them for mediators, those of your "
        "orders otherwise."
    )
    async def disputes(
        self,
        info: Info,
        filter: DisputeFilter | None = None,
        first: int = 20,
        after: str | None = None,
    ) -> DisputeConnection:
        principal = info.context.require_principal()
        check_first(first)
        flt = filter or DisputeFilter()
        try:
            rows, has_next = await disputes.list_disputes(
                principal,
                status=flt.status,
                escalated=flt.escalated,
                overdue=flt.overdue,
                first=first,
                after_id=decode_cursor("dispute", after),
            )
        except DomainError as e:
            raise GraphQLError(e.message, extensions={"code": e.code.value}) from None
        edges = [
            relay.Edge(node=Dispute.of(d), cursor=encode_cursor("dispute", d.id)) for d in rows
        ]
        return DisputeConnection(
            edges=edges,
            page_info=page_info(edges, has_next=has_next, has_previous=after is not None),
        )


@strawberry.input(
    description="Evidence: text, a file with its checksum, a message of the order's "
    "conversation, or several of them."
)
class EvidenceInput:
    text: str = strawberry.field(
        default="", description="A written statement; may be empty when a file or message is given."
    )
    file: Upload | None = strawberry.field(
        default=None,
        description="A multipart upload (PDF, JPEG or PNG; the same limits as inspection reports).",
    )
    sha256: str | None = strawberry.field(
        default=None, description="Hex SHA-256 of the file; a mismatch refuses the request."
    )
    message_id: relay.GlobalID | None = strawberry.field(
        default=None,
        description="A message of this order's conversation to cite (another order's: "
        "MESSAGE_NOT_IN_ORDER).",
    )


@strawberry.input
class OpenDisputeInput:
    order_id: relay.GlobalID
    reason: DisputeReason = strawberry.field(description="What the claim is about.")
    requested_refund: MoneyInput = strawberry.field(
        description=(
            "At most what was paid and is covered (less what earlier disputes on the order"
            " refunded), and what escrow still holds."
        )
    )
    description: str = strawberry.field(description="The problem in the buyer's words (required).")
    evidence: list[EvidenceInput] = strawberry.field(
        default_factory=list, description="Text, files and cited messages that support the claim."
    )
    delay_accepted_in_writing: bool = strawberry.field(
        default=False, description="The buyer accepted the delay in writing (weighs against)."
    )
    concerns_freight_or_after_sales: bool = strawberry.field(
        default=False,
        description="The claim is about freight, port costs or after-sales (weighs against).",
    )
    idempotency_key: str


@strawberry.input
class RespondToDisputeInput:
    dispute_id: relay.GlobalID
    response: DisputeResponse = strawberry.field(
        description="ACCEPT: refund as asked; OFFER: another refund (give "
        "`offeredRefund`); REJECT: the buyer may escalate."
    )
    offered_refund: MoneyInput | None = strawberry.field(
        default=None, description="With OFFER: less than the refund asked for."
    )
    text: str = strawberry.field(default="", description="The supplier's explanation.")
    evidence: list[EvidenceInput] = strawberry.field(
        default_factory=list, description="Text, files and cited messages that support the answer."
    )
    idempotency_key: str


@strawberry.input
class AcceptDisputeOfferInput:
    dispute_id: relay.GlobalID
    idempotency_key: str


@strawberry.input
class EscalateDisputeInput:
    dispute_id: relay.GlobalID


@strawberry.input
class ResolveDisputeInput:
    dispute_id: relay.GlobalID
    decision: DisputeDecision = strawberry.field(
        description="FULL_REFUND, PARTIAL_REFUND (give `amount`) or RELEASE_TO_SUPPLIER."
    )
    amount: MoneyInput | None = strawberry.field(
        default=None, description="With PARTIAL_REFUND: at most what escrow holds."
    )
    refund_inspection_fee: bool = strawberry.field(
        default=False,
        description="Inspection fees still held go back to the buyer; refused "
        "(`INSUFFICIENT_HELD_FUNDS`) when none is (a PASSED report paid the fee to the "
        "inspector).",
    )
    reason: str = strawberry.field(description="The mediator's reasons, shown to both parties.")
    idempotency_key: str


@strawberry.type
class DisputePayload:
    dispute: Dispute | None = strawberry.field(
        default=None, description="The dispute as the mutation left it."
    )
    order: Order | None = strawberry.field(
        default=None, description="The order, with its money after any refund or release."
    )
    errors: list[UserError] = strawberry.field(default_factory=list)


def dispute_id_of(gid: relay.GlobalID) -> int:
    return decode_id(gid, "Dispute", "disputeId")


async def _evidence(items: list[EvidenceInput]) -> list[disputes.Evidence]:
    out = []
    for n, e in enumerate(items):
        message = _cited(e.message_id, n)
        if e.file is None:
            out.append(disputes.Evidence(e.text, message_id=message))
            continue
        if e.sha256 is None:
            raise DomainError(
                ErrorCode.INVALID_INPUT, "a file travels with its sha256", f"evidence.{n}.sha256"
            )
        read = await read_upload(e.file, f"evidence.{n}")
        upload = AttachmentUpload(read.filename, read.data, e.sha256)
        out.append(disputes.Evidence(e.text, upload, message_id=message))
    return out


def _cited(gid: relay.GlobalID | None, n: int) -> int | None:
    """A cited message's id; an id that cannot be a message is refused like another
    order's message (whether it exists is not the caller's business)."""
    if gid is None:
        return None
    value = row_id(gid.node_id) if gid.type_name == "OrderMessage" else -1
    if value < 0:
        raise DomainError(
            ErrorCode.MESSAGE_NOT_IN_ORDER, "not a message id", f"evidence.{n}.messageId"
        )
    return value


async def _payload(info: Info, dispute: DisputeRow) -> DisputePayload:
    return DisputePayload(
        dispute=Dispute.of(dispute), order=await _fresh_order(info, dispute.order)
    )


@strawberry.type
class DisputeMutations:
    @strawberry.mutation(
        description="The buyer opens a dispute: after a missed shipping deadline, after a "
        "failed inspection, or within the claim window after receipt. Assessed at once; "
        "freezes the automatic release."
    )
    async def open_dispute(self, info: Info, input: OpenDisputeInput) -> DisputePayload:
        principal = info.context.require_principal()
        try:
            dispute = await disputes.open_dispute(
                principal,
                order_id_of(input.order_id),
                reason=input.reason,
                requested=input.requested_refund.to_domain("requestedRefund"),
                description=input.description,
                evidence=await _evidence(input.evidence),
                delay_accepted_in_writing=input.delay_accepted_in_writing,
                concerns_freight_or_after_sales=input.concerns_freight_or_after_sales,
                idempotency_key=input.idempotency_key,
            )
        except DomainError as e:
            return failed(DisputePayload, e)
        return await _payload(info, dispute)

    @strawberry.mutation(
        description="The supplier answers within the response time: ACCEPT (refunded as "
        "asked, resolved), OFFER (another refund for the buyer to accept) or REJECT."
    )
    async def respond_to_dispute(self, info: Info, input: RespondToDisputeInput) -> DisputePayload:
        principal = info.context.require_principal()
        try:
            dispute = await disputes.respond_to_dispute(
                principal,
                dispute_id_of(input.dispute_id),
                input.response,
                offered=input.offered_refund.to_domain("offeredRefund")
                if input.offered_refund
                else None,
                text=input.text,
                evidence=await _evidence(input.evidence),
                idempotency_key=input.idempotency_key,
            )
        except DomainError as e:
            return failed(DisputePayload, e)
        return await _payload(info, dispute)

    @strawberry.mutation(description="The buyer accepts the supplier's offer; resolved.")
    async def accept_dispute_offer(
        self, info: Info, input: AcceptDisputeOfferInput
    ) -> DisputePayload:
        principal = info.context.require_principal()
        try:
            dispute = await disputes.accept_dispute_offer(
                principal, dispute_id_of(input.dispute_id), idempotency_key=input.idempotency_key
            )
        except DomainError as e:
            return failed(DisputePayload, e)
        return await _payload(info, dispute)

    @strawberry.mutation(
        description="The buyer hands an open dispute to a mediator (from escalationAllowedAt)."
    )
    async def escalate_dispute(self, info: Info, input: EscalateDisputeInput) -> DisputePayload:
        principal = info.context.require_principal()
        try:
            dispute = await disputes.escalate_dispute(principal, dispute_id_of(input.dispute_id))
        except DomainError as e:
            return failed(DisputePayload, e)
        return await _payload(info, dispute)

    @strawberry.mutation(
        description="A mediator decides an escalated dispute: FULL_REFUND (all escrow holds), "
        "PARTIAL_REFUND (amount) or RELEASE_TO_SUPPLIER (the order completes)."
    )
    async def resolve_dispute(self, info: Info, input: ResolveDisputeInput) -> DisputePayload:
        principal = info.context.require_principal()
        try:
            dispute = await disputes.resolve_dispute(
                principal,
                dispute_id_of(input.dispute_id),
                input.decision,
                amount=input.amount.to_domain("amount") if input.amount else None,
                refund_inspection_fee=input.refund_inspection_fee,
                reason=input.reason,
                idempotency_key=input.idempotency_key,
            )
        except DomainError as e:
            return failed(DisputePayload, e)
        return await _payload(info, dispute)
