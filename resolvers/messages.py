"""The order conversation: sending a message (with files), and the message type."""

import datetime as dt
from collections.abc import Iterable

import strawberry
from strawberry import relay
from strawberry.file_uploads import Upload

from models import messages
from models.enums import Role
from models.errors import DomainError
from models.inspections import AttachmentUpload
from models.tables import OrderMessage as MessageRow
from models.tables import OrderMessageAttachment as AttachmentRow
from resolvers.accounts import Company
from resolvers.context import Info
from resolvers.errors import UserError, failed, row_id
from resolvers.inspections import read_upload
from resolvers.orders import Order, order_id_of
from resolvers.payments import _fresh_order

ATTACHMENT_PATH = "/orders/messages/attachments/{id}"


@strawberry.type(description="A file sent with a message.")
class OrderMessageAttachment:
    filename: str = strawberry.field(description="The file's name as uploaded (cleaned of paths).")
    content_type: str = strawberry.field(description="Recognised from the file's bytes.")
    size: int = strawberry.field(description="In bytes.")
    sha256: str = strawberry.field(
        description="Hex SHA-256 of the bytes; checked again whenever the file is served."
    )
    url: str = strawberry.field(
        description="Download path (GET with your bearer token): the order's parties and mediators."
    )

    @classmethod
    def of(cls, a: AttachmentRow) -> "OrderMessageAttachment":
        return cls(
            filename=a.filename,
            content_type=a.content_type,
            size=a.size_bytes,
            sha256=a.sha256,
            url=ATTACHMENT_PATH.format(id=a.id),
        )


@strawberry.type(description="A message of an order's conversation.")
class OrderMessage(relay.Node):
    id: relay.NodeID[int]
    body: str = strawberry.field(description="The text, trimmed.")
    author_role: Role = strawberry.field(description="BUYER, SUPPLIER or MEDIATOR.")
    sent_at: dt.datetime = strawberry.field(description="When it was sent (UTC).")
    row: strawberry.Private[MessageRow]

    @classmethod
    def of(cls, m: MessageRow) -> "OrderMessage":
        return cls(
            id=m.id, body=m.body, author_role=Role(m.author_role), sent_at=m.created_at, row=m
        )

    @strawberry.field(description="The author's company.")
    async def author_company(self, info: Info) -> Company:
        found = await info.context.companies.load(self.row.author_company)
        assert found is not None
        return Company.of(found)

    @strawberry.field(description="Files sent with the message.")
    async def attachments(self, info: Info) -> list[OrderMessageAttachment]:
        return [
            OrderMessageAttachment.of(a)
            for a in await info.context.message_attachments.load(self.row.id)
        ]

    @strawberry.field(description="The order the conversation belongs to.")
    async def order(self, info: Info) -> Order | None:
        return await _fresh_order(info, self.row.order)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list["OrderMessage | None"]:
        ids = [row_id(i) for i in node_ids]
        principal = info.context.principal
        found = await messages.get_messages(principal, ids) if principal else {}
        return [cls.of(found[i]) if i in found else None for i in ids]


@strawberry.type(description="A page of an order's messages, oldest first.")
class OrderMessageConnection(relay.Connection[OrderMessage]):
    pass


@strawberry.input(description="One file of a message, with its checksum.")
class MessageAttachmentInput:
    file: Upload = strawberry.field(
        description="A multipart upload (PDF, JPEG or PNG; the inspection report limits)."
    )
    sha256: str = strawberry.field(
        description="Hex SHA-256 of the file as you sent it; a mismatch refuses the message."
    )


@strawberry.input(description="A message to the other party of an order.")
class SendOrderMessageInput:
    order_id: relay.GlobalID = strawberry.field(description="The order the message is about.")
    body: str = strawberry.field(
        description=f"1 to {messages.MAX_BODY} characters (leading and trailing space is trimmed)."
    )
    attachments: list[MessageAttachmentInput] = strawberry.field(
        default_factory=list, description="Files (a GraphQL multipart request)."
    )
    idempotency_key: str | None = strawberry.field(
        default=None,
        description="Optional: a retry with the same key and input returns the first message "
        "instead of posting it twice.",
    )


@strawberry.type(description="The message sent, or why it was refused (nothing was sent).")
class SendOrderMessagePayload:
    message: OrderMessage | None = strawberry.field(
        default=None, description="The message, as the other side sees it."
    )
    errors: list[UserError] = strawberry.field(
        default_factory=list,
        description="MESSAGE_EMPTY, MESSAGE_TOO_LONG, NOT_FOUND, DISPUTE_NOT_ESCALATED (a "
        "mediator before escalation), the file codes, IDEMPOTENCY_KEY_REUSED.",
    )


@strawberry.type
class MessageMutations:
    @strawberry.mutation(
        description="Write to the other party of an order (buyer or supplier); a mediator "
        "joins once a dispute on the order is escalated. Live: `orderMessages`."
    )
    async def send_order_message(
        self, info: Info, input: SendOrderMessageInput
    ) -> SendOrderMessagePayload:
        principal = info.context.require_principal()
        try:
            files = []
            for n, a in enumerate(input.attachments):
                read = await read_upload(a.file, f"attachments.{n}")
                files.append(AttachmentUpload(read.filename, read.data, a.sha256))
            sent = await messages.send_message(
                principal,
                order_id_of(input.order_id),
                input.body,
                files=files,
                idempotency_key=input.idempotency_key,
            )
        except DomainError as e:
            return failed(SendOrderMessagePayload, e)
        return SendOrderMessagePayload(message=OrderMessage.of(sent.message))
