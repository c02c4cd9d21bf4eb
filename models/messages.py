"""The order conversation (issue 6): messages between an order's buyer and supplier,
which a mediator joins once a dispute on the order has been escalated.

A message is kept in `order_message` and recorded, in the same transaction, as an order
event of kind MESSAGE_SENT that the message names. So messages travel the order-event
feed (models.feed, models.live) and get what it gives events: one cursor space,
delivery across processes by the insert trigger and LISTEN, safety against transactions
that commit out of id order, resuming from a cursor and the credential re-check on every
delivery. The order's timeline and status streams leave that kind out; the conversation
stream takes only it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from models import clock, events, idempotency, inspections, orders
from models.accounts import Principal
from models.db import write_transaction
from models.enums import Role, Scope
from models.errors import DomainError, ErrorCode
from models.inspections import AttachmentUpload
from models.tables import Dispute, OrderMessage, OrderMessageAttachment

MAX_BODY = 4_000


@dataclasses.dataclass(frozen=True, slots=True)
class Sent:
    message: OrderMessage
    replayed: bool  # an earlier request with the same idempotency key sent it


def check_body(body: str) -> str:
    body = body.strip()
    if not body:
        raise DomainError(ErrorCode.MESSAGE_EMPTY, "a message says something", "body")
    if len(body) > MAX_BODY:
        raise DomainError(
            ErrorCode.MESSAGE_TOO_LONG, f"a message has at most {MAX_BODY} characters", "body"
        )
    return body


async def mediator_joined(order_id: int) -> bool:
    """A mediator takes part once a dispute on the order has been escalated (and stays
    for its decision and after)."""
    return (
        await Dispute.exists()
        .where(Dispute.order == order_id)
        .where(Dispute.escalated_at.is_not_null())
        .run()
    )


async def _get(message_id: int) -> OrderMessage:
    found = await OrderMessage.objects().get(OrderMessage.id == message_id)
    assert found is not None
    return found


async def send_message(
    principal: Principal,
    order_id: int,
    body: str,
    *,
    files: Sequence[AttachmentUpload] = (),
    idempotency_key: str | None = None,
) -> Sent:
    """The order's buyer or supplier (or a mediator, once a dispute is escalated) writes
    to the other side. Anyone else gets NOT_FOUND, as if the order did not exist."""
    body = check_body(body)
    checked = inspections.check_attachments(files)
    key = idempotency.check_key(idempotency_key) if idempotency_key is not None else None
    scope = idempotency.scope_of(principal)
    request = {"order": order_id, "body": body, "files": [f.sha256 for f in checked]}
    async with idempotency.first_claim(), write_transaction():
        # The order's lock orders the conversation with its transitions, and makes
        # retries with one key wait for the first.
        locked = await orders.locked_order(principal, order_id)
        order = locked.order
        if key is not None:
            previous = await idempotency.replay(scope, key, "sendOrderMessage", request)
            if previous is not None:
                return Sent(await _get(previous["message"]), replayed=True)
        orders.require_scope(principal, Scope.ORDERS)
        role = locked.role or Role.MEDIATOR  # locked_order lets only parties and mediators by
        if role is Role.MEDIATOR and not await mediator_joined(order.id):
            raise DomainError(
                ErrorCode.DISPUTE_NOT_ESCALATED,
                "a mediator joins the conversation once a dispute on the order is escalated",
                "orderId",
            )
        now = clock.now()
        event_id = await events.record(
            order.id, events.MESSAGE_SENT, old_status=order.status, new_status=order.status,
            actor=events.Actor.of(principal), at=now, reason=f"from the {role.value.lower()}",
        )  # fmt: skip
        message = OrderMessage(
            order=order.id,
            event=event_id,
            author_user=principal.user_id,
            author_api_key=principal.api_key_id,
            author_company=principal.company_id,
            author_role=role.value,
            body=body,
            created_at=now,
        )
        await message.save()
        await inspections.save_files(OrderMessageAttachment, {"message": message.id}, checked, now)
        if key is not None:
            await idempotency.remember(
                scope, key, "sendOrderMessage", request, {"message": message.id}
            )
    return Sent(message, replayed=False)


async def check_cited(order_id: int, cited: Sequence[int | None]) -> None:
    """Dispute evidence may cite messages of the dispute's own order only (call under the
    order's lock). `cited[n]` is the message of evidence item n, if it names one."""
    wanted = {m for m in cited if m is not None}
    if not wanted:
        return
    rows = await OrderMessage.select(OrderMessage.id, OrderMessage.order).where(
        OrderMessage.id.is_in(list(wanted))
    )
    same_order = {int(r["id"]) for r in rows if int(r["order"]) == order_id}
    for n, message_id in enumerate(cited):
        if message_id is not None and message_id not in same_order:
            raise DomainError(
                ErrorCode.MESSAGE_NOT_IN_ORDER,
                "evidence may cite only messages of this order's conversation",
                f"evidence.{n}.messageId",
            )


# --- reads ---------------------------------------------------------------------------


async def page(
    order_id: int, *, first: int, after_id: int | None
) -> tuple[list[OrderMessage], bool]:
    """One order's messages, oldest first (the index on ("order", id)); the caller has
    already been allowed to see the order."""
    query = OrderMessage.objects().where(OrderMessage.order == order_id)
    if after_id is not None:
        query = query.where(OrderMessage.id > after_id)
    rows = await query.order_by(OrderMessage.id).limit(first + 1)
    return rows[:first], len(rows) > first


async def get_messages(principal: Principal, ids: Sequence[int]) -> dict[int, OrderMessage]:
    """Messages by id, only those of orders the caller may see."""
    if not ids:
        return {}
    query = OrderMessage.objects().where(OrderMessage.id.is_in(list(ids)))
    visible = orders.visible_orders(principal)
    if visible is not None:
        query = query.where(OrderMessage.order.is_in(visible))
    return {m.id: m for m in await query}


async def by_events(event_ids: Sequence[int]) -> dict[int, OrderMessage]:
    """The messages recorded as these MESSAGE_SENT events (live delivery)."""
    if not event_ids:
        return {}
    rows = await OrderMessage.objects().where(OrderMessage.event.is_in(list(event_ids)))
    return {m.event: m for m in rows}


async def attachments_of(
    message_ids: Sequence[int],
) -> dict[int, list[OrderMessageAttachment]]:
    out: dict[int, list[OrderMessageAttachment]] = {i: [] for i in message_ids}
    if message_ids:
        rows = (
            await OrderMessageAttachment.objects()
            .where(OrderMessageAttachment.message.is_in(list(message_ids)))
            .order_by(OrderMessageAttachment.id)
        )
        for row in rows:
            out[row.message].append(row)
    return out


async def open_attachment(
    principal: Principal, attachment_id: int
) -> tuple[OrderMessageAttachment, bytes]:
    """A message's file for the order's parties and mediators (NOT_FOUND for anyone
    else), checked against its SHA-256 like inspection files."""
    attachment = await OrderMessageAttachment.objects().get(
        OrderMessageAttachment.id == attachment_id
    )
    if attachment is None or not await get_messages(principal, [attachment.message]):
        raise DomainError(ErrorCode.NOT_FOUND, "no such attachment", "attachmentId")
    return attachment, await inspections.read_verified(attachment.sha256)
