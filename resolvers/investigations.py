"""Complaints, investigations and penalty points: buyers complain, mediators decide."""

import datetime as dt
from collections.abc import Iterable

import strawberry
from strawberry import relay
from strawberry.file_uploads import Upload

from models import investigations
from models import suppliers as directory
from models.enums import (
    ComplaintStatus,
    InvestigationOutcome,
    InvestigationStatus,
    InvestigationTrigger,
)
from models.errors import DomainError
from models.inspections import AttachmentUpload
from models.money import Money as DomainMoney
from models.tables import Complaint as ComplaintRow
from models.tables import ComplaintAttachment as ComplaintAttachmentRow
from models.tables import Investigation as InvestigationRow
from models.tables import PenaltyPoint as PenaltyPointRow
from resolvers.context import Info
from resolvers.conventions import describe_values
from resolvers.errors import UserError, decode_id, failed, row_id
from resolvers.inspections import read_upload
from resolvers.money import Money, MoneyInput
from resolvers.pagination import check_first, decode_cursor, encode_cursor, page_info
from resolvers.suppliers import Supplier

strawberry.enum(
    ComplaintStatus, name="ComplaintStatus", description="Where a complaint is in its review."
)
describe_values(
    ComplaintStatus,
    {
        ComplaintStatus.PENDING: "Filed by a buyer; a mediator reviews it.",
        ComplaintStatus.ACCEPTED: (
            "A mediator accepted it: an investigation opened, or the open one took it in."
        ),
        ComplaintStatus.REJECTED: "A mediator rejected it, with a reason.",
    },
)
strawberry.enum(
    InvestigationStatus, name="InvestigationStatus", description="Whether an investigation is open."
)
describe_values(
    InvestigationStatus,
    {
        InvestigationStatus.OPEN: "Under way; a mediator closes it with an outcome.",
        InvestigationStatus.CLOSED: "Closed with an outcome and the mediator's reason.",
    },
)
strawberry.enum(
    InvestigationTrigger, name="InvestigationTrigger", description="What opened an investigation."
)
describe_values(
    InvestigationTrigger,
    {
        InvestigationTrigger.PENALTY_POINTS: (
            "The supplier's unconsumed penalty points reached the threshold (24 by default)."
        ),
        InvestigationTrigger.COMPLAINT: "A mediator accepted a buyer's complaint.",
    },
)
strawberry.enum(
    InvestigationOutcome,
    name="InvestigationOutcome",
    description="How a mediator closed an investigation.",
)
describe_values(
    InvestigationOutcome,
    {
        InvestigationOutcome.WARNING: "A warning; the supplier's Trade Assurance is unchanged.",
        InvestigationOutcome.LIMIT_REDUCED: (
            "The Trade Assurance limit was lowered; open orders keep the coverage they reserved."
        ),
        InvestigationOutcome.SUSPENDED: (
            "Trade Assurance suspended: no new orders, hidden from Trade Assurance search; "
            "open orders stay protected."
        ),
    },
)


async def _supplier(info: Info, supplier_id: int) -> Supplier:
    found = await info.context.suppliers.load(supplier_id)
    assert found is not None
    return Supplier.of(found)


@strawberry.type(description="Penalty points given to a supplier.")
class PenaltyPointEntry:
    points: int = strawberry.field(
        description="Points given (6 for a dispute decided against the supplier, 48 if it "
        "did not cooperate, by default)."
    )
    reason: str = strawberry.field(
        description="Why, e.g. the dispute decided against the supplier."
    )
    dispute_id: relay.GlobalID | None = strawberry.field(
        description="The dispute decided against the supplier, if the points came from one."
    )
    consumed: bool = strawberry.field(
        description="Already taken by an investigation (no longer counts towards the threshold)."
    )
    created_at: dt.datetime = strawberry.field(description="When the points were given.")

    @classmethod
    def of(cls, p: PenaltyPointRow) -> "PenaltyPointEntry":
        return cls(
            points=p.points,
            reason=p.reason,
            dispute_id=relay.GlobalID("Dispute", str(p.dispute_id)) if p.dispute_id else None,
            consumed=p.investigation is not None,
            created_at=p.created_at,
        )


@strawberry.type(description="A supplier's penalty points: the total is the sum of the history.")
class PenaltyPoints:
    total: int = strawberry.field(description="All points ever given.")
    unconsumed: int = strawberry.field(
        description="Points not yet taken by an investigation; at the threshold one opens."
    )
    threshold: int = strawberry.field(
        description="Unconsumed points at or above this (24 by default) open an investigation."
    )
    history: list[PenaltyPointEntry] = strawberry.field(description="Oldest first.")


async def penalty_points_of(supplier_id: int, threshold: int) -> PenaltyPoints:
    history = await investigations.penalty_history(supplier_id)
    return PenaltyPoints(
        total=sum(p.points for p in history),
        unconsumed=sum(p.points for p in history if p.investigation is None),
        threshold=threshold,
        history=[PenaltyPointEntry.of(p) for p in history],
    )


def _money(minor: int | None, currency: str | None) -> Money | None:
    return Money.of(DomainMoney(minor, currency)) if minor is not None and currency else None


ATTACHMENT_PATH = "/complaints/attachments/{id}"


@strawberry.type(description="An evidence file of a complaint.")
class ComplaintAttachment:
    filename: str = strawberry.field(description="The file's name as uploaded (cleaned of paths).")
    content_type: str = strawberry.field(description="Recognised from the file's bytes.")
    size: int = strawberry.field(description="Bytes.")
    sha256: str = strawberry.field(
        description="Hex SHA-256 of the file, checked when it was stored and when it is served."
    )
    url: str = strawberry.field(
        description="Download with your bearer token (the complaining buyer and mediators)."
    )

    @classmethod
    def of(cls, a: ComplaintAttachmentRow) -> "ComplaintAttachment":
        return cls(
            filename=a.filename,
            content_type=a.content_type,
            size=a.size_bytes,
            sha256=a.sha256,
            url=ATTACHMENT_PATH.format(id=a.id),
        )


@strawberry.type(description="A buyer's complaint about a supplier.")
class Complaint(relay.Node):
    id: relay.NodeID[int]
    status: ComplaintStatus = strawberry.field(
        description="PENDING until a mediator reviews it; ACCEPTED (an investigation "
        "takes it in) or REJECTED."
    )
    subject: str = strawberry.field(description="The complaint in a line.")
    description: str = strawberry.field(description="What happened, in the buyer's words.")
    evidence: str = strawberry.field(description="Written evidence; files are in `attachments`.")
    created_at: dt.datetime = strawberry.field(description="When the buyer filed it.")
    reviewed_at: dt.datetime | None = strawberry.field(
        description="When a mediator reviewed it; null while PENDING."
    )
    review_reason: str | None = strawberry.field(
        description="The mediator's reason (always given on rejection)."
    )
    supplier_id: strawberry.Private[int]
    investigation_id: strawberry.Private[int | None]

    @classmethod
    def of(cls, c: ComplaintRow) -> "Complaint":
        return cls(
            id=c.id,
            status=ComplaintStatus(c.status),
            subject=c.subject,
            description=c.description,
            evidence=c.evidence,
            created_at=c.created_at,
            reviewed_at=c.reviewed_at,
            review_reason=c.review_reason,
            supplier_id=c.supplier,
            investigation_id=c.investigation,
        )

    @strawberry.field(description="The supplier complained about.")
    async def supplier(self, info: Info) -> Supplier:
        return await _supplier(info, self.supplier_id)

    @strawberry.field(description="Evidence files, in upload order.")
    async def attachments(self) -> list[ComplaintAttachment]:
        found = await investigations.attachments_of([self.id])
        return [ComplaintAttachment.of(a) for a in found.get(self.id, [])]

    @strawberry.field(
        description="The investigation it went to, when accepted (mediators and the supplier)."
    )
    async def investigation(self, info: Info) -> "Investigation | None":
        if self.investigation_id is None:
            return None
        own = await info.context.own_supplier_id()
        if not investigations.may_see_supplier_record(
            info.context.principal, self.supplier_id, own
        ):
            return None
        found = await investigations.get_investigations([self.investigation_id])
        return Investigation.of(found[self.investigation_id])

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list["Complaint | None"]:
        ids = [row_id(i) for i in node_ids]
        found = await investigations.get_complaints(ids)
        principal = info.context.principal
        return [
            cls.of(c) if (c := found.get(i)) and investigations.may_see_complaint(principal, c)
            else None
            for i in ids
        ]  # fmt: skip


@strawberry.type(description="An investigation of a supplier (supplier and mediators only).")
class Investigation(relay.Node):
    id: relay.NodeID[int]
    status: InvestigationStatus = strawberry.field(
        description="OPEN until a mediator closes it with an outcome."
    )
    opened_by: InvestigationTrigger = strawberry.field(
        description="What opened it: penalty points at the threshold, or an accepted complaint."
    )
    opened_at: dt.datetime = strawberry.field(description="When it opened.")
    closed_at: dt.datetime | None = strawberry.field(
        description="When a mediator closed it; null while OPEN."
    )
    outcome: InvestigationOutcome | None = strawberry.field(
        description="WARNING, LIMIT_REDUCED or SUSPENDED; null while OPEN."
    )
    reason: str | None = strawberry.field(description="The mediator's reason for the outcome.")
    previous_limit: Money | None = strawberry.field(description="LIMIT_REDUCED: the old limit.")
    new_limit: Money | None = strawberry.field(description="LIMIT_REDUCED: the new limit.")
    supplier_id: strawberry.Private[int]

    @classmethod
    def of(cls, i: InvestigationRow) -> "Investigation":
        return cls(
            id=i.id,
            status=InvestigationStatus(i.status),
            opened_by=InvestigationTrigger(i.opened_by),
            opened_at=i.opened_at,
            closed_at=i.closed_at,
            outcome=InvestigationOutcome(i.outcome) if i.outcome else None,
            reason=i.reason,
            previous_limit=_money(i.previous_limit_minor, i.limit_currency),
            new_limit=_money(i.new_limit_minor, i.limit_currency),
            supplier_id=i.supplier,
        )

    @strawberry.field(description="The supplier investigated.")
    async def supplier(self, info: Info) -> Supplier:
        return await _supplier(info, self.supplier_id)

    @strawberry.field(
        description="The accepted complaints it examines: each shown to the buyer who filed "
        "it and to mediators only (the supplier sees the investigation, not the complaints)."
    )
    async def complaints(self, info: Info) -> list[Complaint]:
        found = await investigations.complaints_of_investigation(self.id, info.context.principal)
        return [Complaint.of(c) for c in found]

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list["Investigation | None"]:
        ids = [row_id(i) for i in node_ids]
        found = await investigations.get_investigations(ids)
        own = await info.context.own_supplier_id()
        principal = info.context.principal
        return [
            cls.of(v)
            if (v := found.get(i))
            and investigations.may_see_supplier_record(principal, v.supplier, own)
            else None
            for i in ids
        ]  # fmt: skip


@strawberry.type
class ComplaintConnection(relay.Connection[Complaint]):
    pass


@strawberry.type
class InvestigationConnection(relay.Connection[Investigation]):
    pass


@strawberry.input
class ComplaintFilter:
    status: ComplaintStatus | None = strawberry.field(
        default=None, description="Only complaints in this status."
    )


@strawberry.input
class InvestigationFilter:
    status: InvestigationStatus | None = strawberry.field(
        default=None, description="Only investigations in this status."
    )


@strawberry.type
class InvestigationQueries:
    @strawberry.field(
        description="Complaints, oldest first: the mediators' queue; a buyer's own for its users."
    )
    async def complaints(
        self,
        info: Info,
        filter: ComplaintFilter | None = None,
        first: int = 20,
        after: str | None = None,
    ) -> ComplaintConnection:
        principal = info.context.require_principal()
        check_first(first)
        rows, has_next = await investigations.list_complaints(
            principal,
            status=filter.status if filter else None,
            first=first,
            after_id=decode_cursor("complaint", after),
        )
        edges = [
            relay.Edge(node=Complaint.of(c), cursor=encode_cursor("complaint", c.id)) for c in rows
        ]
        return ComplaintConnection(
            edges=edges,
            page_info=page_info(edges, has_next=has_next, has_previous=after is not None),
        )

    @strawberry.field(
        description="Investigations, oldest first: all for mediators; a supplier's own for its "
        "users."
    )
    async def investigations(
        self,
        info: Info,
        filter: InvestigationFilter | None = None,
        first: int = 20,
        after: str | None = None,
    ) -> InvestigationConnection:
        principal = info.context.require_principal()
        check_first(first)
        rows, has_next = await investigations.list_investigations(
            principal,
            status=filter.status if filter else None,
            first=first,
            after_id=decode_cursor("investigation", after),
            own_supplier_id=await info.context.own_supplier_id(),
        )
        edges = [
            relay.Edge(node=Investigation.of(v), cursor=encode_cursor("investigation", v.id))
            for v in rows
        ]
        return InvestigationConnection(
            edges=edges,
            page_info=page_info(edges, has_next=has_next, has_previous=after is not None),
        )


@strawberry.input(description="One evidence file, with its checksum.")
class EvidenceFileInput:
    file: Upload = strawberry.field(
        description="A multipart upload (PDF, JPEG or PNG; the inspection report limits)."
    )
    sha256: str = strawberry.field(
        description="Hex SHA-256 of the file as you sent it; a mismatch refuses the complaint."
    )


@strawberry.input
class FileComplaintInput:
    supplier_id: relay.GlobalID
    subject: str = strawberry.field(description="The complaint in a line (required).")
    description: str = strawberry.field(description="What happened (required).")
    evidence: str = strawberry.field(default="", description="What supports the complaint (text).")
    order_id: relay.GlobalID | None = strawberry.field(
        default=None, description="The order it is about, if one (yours, with this supplier)."
    )
    attachments: list[EvidenceFileInput] = strawberry.field(
        default_factory=list, description="Evidence files (a GraphQL multipart request)."
    )
    idempotency_key: str


@strawberry.type
class FileComplaintPayload:
    complaint: Complaint | None = strawberry.field(
        default=None, description="The complaint, PENDING a mediator's review."
    )
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class ReviewComplaintInput:
    complaint_id: relay.GlobalID
    accept: bool = strawberry.field(
        description="True: accept (an investigation opens, or the open one takes it in); "
        "false: reject with a `reason`."
    )
    reason: str | None = strawberry.field(default=None, description="Required to reject.")


@strawberry.type
class ReviewComplaintPayload:
    complaint: Complaint | None = strawberry.field(
        default=None, description="The complaint, now ACCEPTED or REJECTED."
    )
    investigation: Investigation | None = strawberry.field(
        default=None, description="Accepted: the investigation that opened or took it in."
    )
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class CloseInvestigationInput:
    investigation_id: relay.GlobalID
    outcome: InvestigationOutcome = strawberry.field(
        description="WARNING; LIMIT_REDUCED (give `newLimit`); or SUSPENDED (Trade "
        "Assurance suspended)."
    )
    new_limit: MoneyInput | None = strawberry.field(
        default=None,
        description="LIMIT_REDUCED only: lower than the current limit, in its currency.",
    )
    reason: str = strawberry.field(description="The mediator's reasons (required).")


@strawberry.type
class CloseInvestigationPayload:
    investigation: Investigation | None = strawberry.field(
        default=None, description="The investigation, now CLOSED."
    )
    supplier: Supplier | None = strawberry.field(
        default=None, description="The supplier with its Trade Assurance after the outcome."
    )
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class InvestigationMutations:
    @strawberry.mutation(description="A buyer complains about a supplier it has ordered from.")
    async def file_complaint(self, info: Info, input: FileComplaintInput) -> FileComplaintPayload:
        principal = info.context.require_principal()
        try:
            files = []
            for n, a in enumerate(input.attachments):
                read = await read_upload(a.file, f"attachments.{n}")
                files.append(AttachmentUpload(read.filename, read.data, a.sha256))
            complaint = await investigations.file_complaint(
                principal,
                decode_id(input.supplier_id, "Supplier", "supplierId"),
                subject=input.subject,
                description=input.description,
                evidence=input.evidence,
                order_id=decode_id(input.order_id, "Order", "orderId") if input.order_id else None,
                idempotency_key=input.idempotency_key,
                files=files,
            )
        except DomainError as e:
            return failed(FileComplaintPayload, e)
        return FileComplaintPayload(complaint=Complaint.of(complaint))

    @strawberry.mutation(
        description="A mediator accepts (an investigation opens or takes it in) or rejects "
        "a complaint."
    )
    async def review_complaint(
        self, info: Info, input: ReviewComplaintInput
    ) -> ReviewComplaintPayload:
        principal = info.context.require_principal()
        try:
            complaint = await investigations.review_complaint(
                principal,
                decode_id(input.complaint_id, "Complaint", "complaintId"),
                accept=input.accept,
                reason=input.reason,
            )
        except DomainError as e:
            return failed(ReviewComplaintPayload, e)
        investigation = None
        if complaint.investigation is not None:
            found = await investigations.get_investigations([complaint.investigation])
            investigation = Investigation.of(found[complaint.investigation])
        return ReviewComplaintPayload(
            complaint=Complaint.of(complaint), investigation=investigation
        )

    @strawberry.mutation(description="A mediator closes an open investigation with an outcome.")
    async def close_investigation(
        self, info: Info, input: CloseInvestigationInput
    ) -> CloseInvestigationPayload:
        principal = info.context.require_principal()
        try:
            investigation = await investigations.close_investigation(
                principal,
                decode_id(input.investigation_id, "Investigation", "investigationId"),
                outcome=input.outcome,
                reason=input.reason,
                new_limit=input.new_limit.to_domain("newLimit") if input.new_limit else None,
            )
        except DomainError as e:
            return failed(CloseInvestigationPayload, e)
        found = await directory.get_suppliers([investigation.supplier])
        return CloseInvestigationPayload(
            investigation=Investigation.of(investigation),
            supplier=Supplier.of(found[investigation.supplier]),
        )
