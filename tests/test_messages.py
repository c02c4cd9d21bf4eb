"""The order conversation without HTTP: who may write and when, what a refusal leaves
behind (nothing), idempotent retries, files, paging, messages on the order-event feed
but out of the order's timeline, and messages cited as dispute evidence."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import pytest

from models import clock, db, disputes, events, feed, ledger, messages, orders, provider
from models.disputes import Evidence
from models.enums import DisputeResponse, Role
from models.errors import DomainError, ErrorCode
from models.inspections import AttachmentUpload
from models.tables import (
    DisputeEvidence,
    IdempotencyRecord,
    OrderEvent,
    OrderMessage,
    OrderMessageAttachment,
)
from server.payments.sandbox import SandboxProvider
from tests import factories
from tests.test_disputes import open_, received_order
from tests.test_live import _settled, running_hub

PDF = b"%PDF-1.7\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"


@pytest.fixture(autouse=True)
async def sandbox() -> AsyncIterator[None]:
    provider.set_provider(SandboxProvider())
    yield
    assert await ledger.check() == []


async def _written() -> tuple[int, int, int, int]:
    return (
        await OrderMessage.count(),
        await OrderEvent.count().where(OrderEvent.kind == events.MESSAGE_SENT),
        await OrderMessageAttachment.count(),
        await IdempotencyRecord.count(),
    )


async def refused(code: ErrorCode, attempt: Awaitable[Any]) -> DomainError:
    before = await _written()
    with pytest.raises(DomainError) as e:
        await attempt
    assert e.value.code is code, e.value.message
    assert await _written() == before  # nothing written
    return e.value


async def test_both_parties_write_and_each_message_is_an_event_of_the_order() -> None:
    b, s, order = await factories.confirmed_order()
    first = await messages.send_message(b.principal, order.id, "  When do you ship?  ")
    second = await messages.send_message(s.principal, order.id, "Friday.")
    m = first.message
    assert (m.body, m.author_role, m.author_company, m.author_user) == (
        "When do you ship?", "BUYER", b.principal.company_id, b.principal.user_id
    )  # fmt: skip
    assert second.message.author_role == "SUPPLIER"
    event = await OrderEvent.objects().get(OrderEvent.id == m.event)
    assert event is not None
    assert (event.order, event.kind, event.old_status, event.new_status) == (
        order.id, events.MESSAGE_SENT, order.status, order.status
    )  # fmt: skip
    # Not part of the order's timeline.
    timeline = (await orders.events_of([order.id]))[order.id]
    assert timeline and events.MESSAGE_SENT not in {e.kind for e in timeline}
    # Oldest first, paged.
    page, more = await messages.page(order.id, first=1, after_id=None)
    assert ([x.body for x in page], more) == (["When do you ship?"], True)
    page, more = await messages.page(order.id, first=1, after_id=page[-1].id)
    assert ([x.body for x in page], more) == (["Friday."], False)


async def test_the_feed_separates_messages_from_the_other_events() -> None:
    b, _, order = await factories.confirmed_order()
    start = await feed.head()
    await messages.send_message(b.principal, order.id, "hello")
    async with db.write_transaction():
        await events.record(
            order.id, "NOTE", old_status=None, new_status=order.status,
            actor=events.SCHEDULER, at=clock.now(), reason="note",
        )  # fmt: skip
    both = await _settled(start, 2)
    assert [e.event.kind for e in both] == [events.MESSAGE_SENT, "NOTE"]
    assert [e.is_message for e in both] == [True, False]
    only = await feed.read_after(start, limit=10, order_id=order.id, messages=True)
    assert [e.event.kind for e in only] == [events.MESSAGE_SENT]
    others = await feed.read_after(start, limit=10, viewer=b.principal, messages=False)
    assert [e.event.kind for e in others] == ["NOTE"]


async def test_the_hub_gives_message_subscribers_only_messages() -> None:
    b, s, order = await factories.confirmed_order()
    async with running_hub() as hub:
        chat, _ = hub.subscribe(b.principal, order.id, messages=True)
        status, _ = hub.subscribe(b.principal, order.id)
        everything, _ = hub.subscribe(b.principal, None)
        await messages.send_message(s.principal, order.id, "shipping Friday")
        await orders.cancel_order(b.principal, order.id, "changed our mind")
        async with asyncio.timeout(10):
            got = await chat.queue.get()
            assert isinstance(got, feed.FeedEvent) and got.is_message
            for queue in (status.queue, everything.queue):
                item = await queue.get()
                assert isinstance(item, feed.FeedEvent) and item.event.kind == "CANCELLED"
        await asyncio.sleep(0.2)
        assert chat.queue.empty() and status.queue.empty() and everything.queue.empty()


async def test_refusals_write_nothing() -> None:
    b, _, order = await factories.confirmed_order()
    stranger = await factories.buyer()
    inspector = await factories.inspector()
    send = messages.send_message
    await refused(ErrorCode.MESSAGE_EMPTY, send(b.principal, order.id, " \n\t "))
    e = await refused(ErrorCode.MESSAGE_TOO_LONG, send(b.principal, order.id, "x" * 4_001))
    assert e.field == "body"
    await send(b.principal, order.id, "x" * 4_000)  # the limit itself is fine
    await refused(ErrorCode.NOT_FOUND, send(stranger.principal, order.id, "hi"))
    await refused(ErrorCode.NOT_FOUND, send(inspector.principal, order.id, "hi"))
    await refused(ErrorCode.NOT_FOUND, send(b.principal, 999_999, "hi"))
    bad = AttachmentUpload("photo.pdf", PDF, "0" * 64)
    await refused(ErrorCode.FILE_CHECKSUM_MISMATCH, send(b.principal, order.id, "see", files=[bad]))
    text = AttachmentUpload("a.txt", b"plain", hashlib.sha256(b"plain").hexdigest())
    await refused(ErrorCode.FILE_TYPE_NOT_ALLOWED, send(b.principal, order.id, "x", files=[text]))


async def test_files_are_stored_by_checksum_and_served_to_the_parties_only() -> None:
    b, s, order = await factories.confirmed_order()
    mediator = await factories.staff()
    stranger = await factories.buyer()
    upload = AttachmentUpload("spec.pdf", PDF, hashlib.sha256(PDF).hexdigest())
    sent = await messages.send_message(b.principal, order.id, "the spec", files=[upload])
    files = (await messages.attachments_of([sent.message.id]))[sent.message.id]
    assert [(f.filename, f.content_type, f.size_bytes) for f in files] == [
        ("spec.pdf", "application/pdf", len(PDF))
    ]
    for who in (b, s, mediator):
        _, data = await messages.open_attachment(who.principal, files[0].id)
        assert data == PDF
    with pytest.raises(DomainError) as e:
        await messages.open_attachment(stranger.principal, files[0].id)
    assert e.value.code is ErrorCode.NOT_FOUND


async def test_a_retry_with_the_same_key_posts_once() -> None:
    b, _, order = await factories.confirmed_order()
    first = await messages.send_message(b.principal, order.id, "hi", idempotency_key="m-1")
    again = await messages.send_message(b.principal, order.id, " hi ", idempotency_key="m-1")
    assert (again.message.id, again.replayed, first.replayed) == (first.message.id, True, False)
    assert await OrderMessage.count() == 1
    await refused(
        ErrorCode.IDEMPOTENCY_KEY_REUSED,
        messages.send_message(b.principal, order.id, "bye", idempotency_key="m-1"),
    )
    # Without a key, the same text twice is two messages.
    await messages.send_message(b.principal, order.id, "hi")
    await messages.send_message(b.principal, order.id, "hi")
    assert await OrderMessage.count() == 3


async def test_a_mediator_reads_always_and_writes_once_a_dispute_is_escalated(
    frozen_clock: clock.FrozenClock,
) -> None:
    b, s, order = await received_order()
    mediator = await factories.staff()
    sent = await messages.send_message(b.principal, order.id, "the panels are dim")
    seen = await messages.get_messages(mediator.principal, [sent.message.id])
    assert list(seen) == [sent.message.id]
    await refused(
        ErrorCode.DISPUTE_NOT_ESCALATED,
        messages.send_message(mediator.principal, order.id, "hello"),
    )
    d = await open_(b, order)
    await disputes.respond_to_dispute(
        s.principal, d.id, DisputeResponse.REJECT, text="They conform", idempotency_key="r"
    )
    await refused(  # open, not yet escalated
        ErrorCode.DISPUTE_NOT_ESCALATED,
        messages.send_message(mediator.principal, order.id, "hello"),
    )
    frozen_clock.advance(days=3)
    await disputes.escalate_dispute(b.principal, d.id)
    sent = await messages.send_message(mediator.principal, order.id, "Please send the lab data.")
    assert (sent.message.author_role, sent.message.author_company) == (
        Role.MEDIATOR.value, mediator.principal.company_id
    )  # fmt: skip


async def test_dispute_evidence_cites_messages_of_its_own_order_only() -> None:
    b, s, order = await received_order()
    b2, _, other = await factories.confirmed_order(buyer_actor=b)
    mine = (await messages.send_message(s.principal, order.id, "We used 30 W drivers")).message
    theirs = (await messages.send_message(b2.principal, other.id, "elsewhere")).message
    before = await DisputeEvidence.count()
    with pytest.raises(DomainError) as e:
        await open_(b, order, evidence=[Evidence("admitted", message_id=mine.id),
                                        Evidence(message_id=theirs.id)])  # fmt: skip
    assert (e.value.code, e.value.field) == (ErrorCode.MESSAGE_NOT_IN_ORDER, "evidence.1.messageId")
    assert await DisputeEvidence.count() == before
    d = await open_(b, order, evidence=[Evidence(message_id=mine.id)])
    cited = (await disputes.evidence_of([d.id]))[d.id]
    assert [(x.text, x.message) for x in cited] == [("", mine.id)]
    with pytest.raises(DomainError) as e:
        await disputes.respond_to_dispute(
            s.principal, d.id, DisputeResponse.REJECT,
            evidence=[Evidence(message_id=theirs.id)], idempotency_key="r",
        )  # fmt: skip
    assert e.value.code is ErrorCode.MESSAGE_NOT_IN_ORDER
