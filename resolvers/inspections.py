"""Inspections: booking (with the fee), the inspector's answer, reports with file uploads
(GraphQL multipart requests), the refund claim after a failed inspection; and the reads."""

import datetime as dt
from collections.abc import Iterable
from typing import Annotated

import strawberry
from starlette.datastructures import UploadFile
from strawberry import relay
from strawberry.file_uploads import Upload

from models import config, inspections, orders
from models.enums import InspectionResult, InspectionStatus, PaymentMethod
from models.errors import DomainError, ErrorCode
from models.tables import Inspection as InspectionRow
from models.tables import InspectionAttachment as AttachmentRow
from resolvers.accounts import Company
from resolvers.context import Info
from resolvers.conventions import describe_values
from resolvers.errors import UserError, decode_id, failed, row_id
from resolvers.money import Money, money_of
from resolvers.orders import Order, QualityRequirement, order_id_of
from resolvers.pagination import check_first, decode_cursor, encode_cursor, page_info
from resolvers.payments import Payment, _fresh_order

strawberry.enum(
    InspectionStatus,
    description="AWAITING_FEE until the fee is held; REQUESTED until the inspector answers; "
    "ACCEPTED until the report; then PASSED or FAILED. DECLINED by the inspector, CANCELLED "
    "when the fee payment failed.",
)
describe_values(
    InspectionStatus,
    {
        InspectionStatus.AWAITING_FEE: "Booked; the fee payment is on its way (e.g. a T/T).",
        InspectionStatus.REQUESTED: "The fee is held in escrow; the inspector accepts or declines.",
        InspectionStatus.ACCEPTED: "The inspector will inspect on the date; a report follows.",
        InspectionStatus.DECLINED: (
            "The inspector declined, with a reason; the fee goes back to the buyer."
        ),
        InspectionStatus.PASSED: (
            "The report says the goods conform; the fee is paid out to the inspector."
        ),
        InspectionStatus.FAILED: (
            "The report says they do not (the supplier is at fault); the fee goes back and "
            "the buyer may claim a refund before shipment."
        ),
        InspectionStatus.CANCELLED: "The fee payment failed; nothing is held.",
    },
)
strawberry.enum(InspectionResult, description="An inspection report's verdict.")
describe_values(
    InspectionResult,
    {
        InspectionResult.PASSED: "The goods conform to the contract's quality requirements.",
        InspectionResult.FAILED: (
            "The goods do not conform; the buyer may claim a refund before shipment."
        ),
    },
)

ATTACHMENT_PATH = "/inspections/attachments/{id}"


@strawberry.type(description="A file of an inspection report.")
class InspectionAttachment:
    id: relay.GlobalID
    filename: str = strawberry.field(description="The file's name as uploaded (cleaned of paths).")
    content_type: str = strawberry.field(description="Recognised from the file's bytes.")
    size: int = strawberry.field(description="In bytes.")
    sha256: str = strawberry.field(
        description="Hex SHA-256 of the bytes; checked again whenever the file is served."
    )
    url: str = strawberry.field(
        description="Download path (GET with your bearer token): the order's parties, the "
        "inspector and mediators."
    )
    created_at: dt.datetime = strawberry.field(description="When it was uploaded.")

    @classmethod
    def of(cls, a: AttachmentRow) -> "InspectionAttachment":
        return cls(
            id=relay.GlobalID("InspectionAttachment", str(a.id)),
            filename=a.filename,
            content_type=a.content_type,
            size=a.size_bytes,
            sha256=a.sha256,
            url=ATTACHMENT_PATH.format(id=a.id),
            created_at=a.created_at,
        )


@strawberry.type(description="A pre-shipment inspection the buyer booked with an inspector.")
class Inspection(relay.Node):
    id: relay.NodeID[int]
    status: InspectionStatus = strawberry.field(
        description="Where the booking is: fee, the inspector's answer, the report."
    )
    date: dt.date = strawberry.field(description="The day of the inspection (UTC).")
    fee: Money = strawberry.field(description="The inspector's fee, in the order's currency.")
    result: InspectionResult | None = strawberry.field(
        description="The report's verdict; null until the report is submitted."
    )
    findings: str | None = strawberry.field(
        description="What the inspector found, as written in the report; null until then."
    )
    decline_reason: str | None = strawberry.field(
        description="Why the inspector declined; null unless DECLINED."
    )
    booked_at: dt.datetime = strawberry.field(description="When the buyer booked it.")
    decided_at: dt.datetime | None = strawberry.field(
        description="When the inspector accepted or declined."
    )
    reported_at: dt.datetime | None = strawberry.field(
        description="When the report was submitted; null until then."
    )
    row: strawberry.Private[InspectionRow]

    @classmethod
    def of(cls, i: InspectionRow) -> "Inspection":
        return cls(
            id=i.id,
            status=InspectionStatus(i.status),
            date=i.scheduled_on,
            fee=money_of(i.fee_minor, i.currency),
            result=InspectionResult(i.result) if i.result else None,
            findings=i.findings if i.result else None,
            decline_reason=i.decline_reason,
            booked_at=i.created_at,
            decided_at=i.decided_at,
            reported_at=i.reported_at,
            row=i,
        )

    @strawberry.field(description="The inspection company booked.")
    async def inspector(self, info: Info) -> Company:
        found = await info.context.companies.load(self.row.inspector)
        assert found is not None
        return Company.of(found)

    @strawberry.field(description="The order, for its buyer, its supplier and mediators.")
    async def order(self, info: Info) -> Order | None:
        principal = info.context.require_principal()
        found = await orders.get_orders(principal, [self.row.order])
        return Order.of(found[self.row.order]) if self.row.order in found else None

    @strawberry.field(description="What the inspection checks: the contract's requirements.")
    async def quality_requirements(self, info: Info) -> list[QualityRequirement]:
        return [
            QualityRequirement(attribute=q.attribute, requirement=q.requirement)
            for q in await info.context.order_quality.load(self.row.order)
        ]

    @strawberry.field(description="The fee payment (the latest attempt).")
    async def fee_payment(self, info: Info) -> Payment | None:
        found = await info.context.inspection_payments.load(self.row.id)
        return Payment.of(found[-1]) if found else None

    @strawberry.field(description="The report's files, in upload order.")
    async def attachments(self, info: Info) -> list[InspectionAttachment]:
        return [
            InspectionAttachment.of(a)
            for a in await info.context.inspection_attachments.load(self.row.id)
        ]

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list["Inspection | None"]:
        ids = [row_id(i) for i in node_ids]
        principal = info.context.principal
        found = await inspections.get_inspections(principal, ids) if principal else {}
        return [cls.of(found[i]) if i in found else None for i in ids]


@strawberry.type
class InspectionConnection(relay.Connection[Inspection]):
    pass


@strawberry.type(description="An inspection company a buyer can book, and its fee.")
class Inspector:
    company: Company = strawberry.field(description="The inspection company.")
    fee: Money = strawberry.field(
        description="Per inspection; converted into the order's currency when booked."
    )


@strawberry.type
class InspectionQueries:
    @strawberry.field(description="Inspection companies, with their fees.")
    async def inspectors(self, info: Info) -> list[Inspector]:
        info.context.require_principal()
        return [
            Inspector(company=Company.of(i.company), fee=money_of(i.fee.minor, i.fee.currency))
            for i in await inspections.list_inspectors()
        ]

    @strawberry.field(
        description="One inspection, if you are the order's party, its inspector or a mediator."
    )
    async def inspection(self, info: Info, id: relay.GlobalID) -> Inspection | None:
        principal = info.context.require_principal()
        inspection_id = row_id(id.node_id) if id.type_name == "Inspection" else -1
        found = await inspections.get_inspections(principal, [inspection_id])
        return Inspection.of(found[inspection_id]) if inspection_id in found else None

    @strawberry.field(
        description="Inspections newest first: an inspector's bookings, the inspections of "
        "a buyer's or supplier's orders, all of them for mediators."
    )
    async def inspections(
        self,
        info: Info,
        statuses: Annotated[
            list[InspectionStatus] | None,
            strawberry.argument(
                description="Only inspections in one of these statuses; null: all."
            ),
        ] = None,
        first: int = 20,
        after: str | None = None,
    ) -> InspectionConnection:
        principal = info.context.require_principal()
        check_first(first)
        rows, has_next = await inspections.list_inspections(
            principal,
            statuses=statuses or (),
            first=first,
            after_id=decode_cursor("inspection", after),
        )
        edges = [
            relay.Edge(node=Inspection.of(i), cursor=encode_cursor("inspection", i.id))
            for i in rows
        ]
        return InspectionConnection(
            edges=edges,
            page_info=page_info(edges, has_next=has_next, has_previous=after is not None),
        )


@strawberry.input
class BookInspectionInput:
    order_id: relay.GlobalID
    inspector_id: relay.GlobalID = strawberry.field(description="An inspection Company.")
    date: dt.date = strawberry.field(
        description="From today up to the day before the shipping deadline (UTC)."
    )
    method: PaymentMethod = strawberry.field(description="How the fee is paid.")
    payment_source: str | None = strawberry.field(
        default=None, description="For CARD: the card token or (sandbox) test card number."
    )
    idempotency_key: str = strawberry.field(
        description="Your unique key for this booking and its fee payment."
    )


@strawberry.type(
    description="What `bookInspection` returns: the booking, its fee payment and the order, "
    "or `errors` and no result. A fee charge the provider declined or could not make also "
    "returns the booking and its FAILED payment beside the error."
)
class BookInspectionPayload:
    inspection: Inspection | None = strawberry.field(
        default=None,
        description="The booking: REQUESTED once the fee is held, AWAITING_FEE while its "
        "payment is pending.",
    )
    payment: Payment | None = strawberry.field(default=None, description="The fee payment.")
    order: Order | None = strawberry.field(
        default=None, description="The order the inspection is for."
    )
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class InspectionIdInput:
    inspection_id: relay.GlobalID


@strawberry.input
class DeclineInspectionInput:
    inspection_id: relay.GlobalID
    reason: str = strawberry.field(
        description="Why the inspector declines (shown to the buyer); required."
    )


@strawberry.type
class InspectionPayload:
    inspection: Inspection | None = strawberry.field(
        default=None, description="The inspection as the mutation left it."
    )
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input(description="One file of a report, with its checksum.")
class InspectionAttachmentInput:
    file: Upload = strawberry.field(
        description="A multipart upload (PDF, JPEG or PNG; see the README for the limits)."
    )
    sha256: str = strawberry.field(
        description="Hex SHA-256 of the file as you sent it; a mismatch refuses the report."
    )


@strawberry.input
class SubmitInspectionReportInput:
    inspection_id: relay.GlobalID
    result: InspectionResult = strawberry.field(
        description="PASSED: the goods conform; FAILED: they do not (the buyer may claim "
        "a refund before shipment)."
    )
    findings: str = strawberry.field(
        description="What was checked and found, against the contract's quality requirements."
    )
    attachments: list[InspectionAttachmentInput] = strawberry.field(
        default_factory=list, description="Report files (PDF, JPEG or PNG), each with its SHA-256."
    )


@strawberry.input
class ClaimInspectionRefundInput:
    order_id: relay.GlobalID
    idempotency_key: str


@strawberry.type
class ClaimInspectionRefundPayload:
    refunded: Money | None = strawberry.field(
        default=None, description="The goods money going back to the buyer."
    )
    order: Order | None = strawberry.field(default=None, description="The order, now REFUNDED.")
    errors: list[UserError] = strawberry.field(default_factory=list)


def inspection_id_of(gid: relay.GlobalID) -> int:
    return decode_id(gid, "Inspection", "inspectionId")


async def read_upload(upload: object, prefix: str) -> inspections.AttachmentUpload:
    """The upload's bytes, read no further than one byte past the size limit (enough to
    tell it is too large); multipart parsing has already spooled it to a temporary file.
    `prefix` is the item's input path (`attachments.0`), for the error's field."""
    # The Upload scalar passes any JSON value through (a number, an object, a form field's
    # text): only a file part of a multipart request is one.
    if not isinstance(upload, UploadFile):
        raise DomainError(
            ErrorCode.INVALID_INPUT, "send the file as a multipart upload", f"{prefix}.file"
        )
    data = await upload.read(config.current().attachment_max_bytes + 1)
    return inspections.AttachmentUpload(str(upload.filename or ""), bytes(data), "")


@strawberry.type
class InspectionMutations:
    @strawberry.mutation(description="The buyer books an inspection and pays its fee.")
    async def book_inspection(
        self, info: Info, input: BookInspectionInput
    ) -> BookInspectionPayload:
        principal = info.context.require_principal()
        try:
            order_id = order_id_of(input.order_id)
            booking = await inspections.book_inspection(
                principal,
                order_id,
                decode_id(input.inspector_id, "Company", "inspectorId"),
                input.date,
                input.method,
                idempotency_key=input.idempotency_key,
                source=input.payment_source,
            )
        except DomainError as e:
            return failed(BookInspectionPayload, e)
        return BookInspectionPayload(
            inspection=Inspection.of(booking.inspection),
            payment=Payment.of(booking.payment),
            order=await _fresh_order(info, order_id),
            errors=[UserError.of(booking.error)] if booking.error else [],
        )

    @strawberry.mutation(description="The booked inspector accepts the booking.")
    async def accept_inspection(self, info: Info, input: InspectionIdInput) -> InspectionPayload:
        principal = info.context.require_principal()
        try:
            inspection = await inspections.accept_inspection(
                principal, inspection_id_of(input.inspection_id)
            )
        except DomainError as e:
            return failed(InspectionPayload, e)
        return InspectionPayload(inspection=Inspection.of(inspection))

    @strawberry.mutation(
        description="The booked inspector declines; the fee goes back to the buyer."
    )
    async def decline_inspection(
        self, info: Info, input: DeclineInspectionInput
    ) -> InspectionPayload:
        principal = info.context.require_principal()
        try:
            inspection = await inspections.decline_inspection(
                principal, inspection_id_of(input.inspection_id), input.reason
            )
        except DomainError as e:
            return failed(InspectionPayload, e)
        return InspectionPayload(inspection=Inspection.of(inspection))

    @strawberry.mutation(
        description="The booked inspector reports PASSED (the fee is paid out to the "
        "inspector) or FAILED (the fee goes back to the buyer), with findings and files. "
        "Send files as a GraphQL multipart request."
    )
    async def submit_inspection_report(
        self, info: Info, input: SubmitInspectionReportInput
    ) -> InspectionPayload:
        principal = info.context.require_principal()
        try:
            inspection_id = inspection_id_of(input.inspection_id)
            files = []
            for n, a in enumerate(input.attachments):
                read = await read_upload(a.file, f"attachments.{n}")
                files.append(inspections.AttachmentUpload(read.filename, read.data, a.sha256))
            inspection = await inspections.submit_report(
                principal, inspection_id, input.result, input.findings, files
            )
        except DomainError as e:
            return failed(InspectionPayload, e)
        return InspectionPayload(inspection=Inspection.of(inspection))

    @strawberry.mutation(
        description="After a failed inspection, before shipment, the buyer takes back all "
        "the goods money escrow holds; the order ends REFUNDED."
    )
    async def claim_inspection_refund(
        self, info: Info, input: ClaimInspectionRefundInput
    ) -> ClaimInspectionRefundPayload:
        principal = info.context.require_principal()
        try:
            order_id = order_id_of(input.order_id)
            claim = await inspections.claim_refund(
                principal, order_id, idempotency_key=input.idempotency_key
            )
        except DomainError as e:
            return failed(ClaimInspectionRefundPayload, e)
        return ClaimInspectionRefundPayload(
            refunded=money_of(claim.refunded.minor, claim.refunded.currency),
            order=await _fresh_order(info, order_id),
        )
