"""The pieces that make one event to thousands of subscribers cheap (issue 6): the
subscriber's Inbox, the GC policy around a fan-out, uvicorn's lighter queue and event, and
the `next` message encoded once for subscribers sharing a result."""

from __future__ import annotations

import asyncio
import gc
import json
import weakref
from typing import Any

import pytest

from models.live import GcPolicy, Inbox
from server import ws_handler
from server.ws_protocol import _Event, _Queue


async def test_inbox_is_a_bounded_fifo_for_one_reader() -> None:
    inbox: Any = Inbox(2)  # items of any kind here
    assert inbox.empty() and inbox.qsize() == 0
    waiting = asyncio.ensure_future(inbox.get())
    await asyncio.sleep(0)
    inbox.put_nowait(1)
    assert await waiting == 1
    inbox.put_nowait(2)
    inbox.put_nowait(3)
    with pytest.raises(asyncio.QueueFull):
        inbox.put_nowait(4)
    assert inbox.qsize() == 2
    assert [await inbox.get(), await inbox.get()] == [2, 3]
    cancelled = asyncio.ensure_future(inbox.get())
    await asyncio.sleep(0)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    inbox.put_nowait(5)
    assert await inbox.get() == 5


async def test_the_gc_is_off_while_a_fan_out_is_being_sent_and_back_on_after() -> None:
    policy = GcPolicy(max_hold=0.05)
    assert gc.isenabled()
    try:
        policy.hold(2)
        assert not gc.isenabled()
        policy.release(1)
        assert not gc.isenabled()
        policy.release(1)
        assert gc.isenabled()
        policy.hold(1)  # never released: back on after max_hold anyway
        await asyncio.sleep(0.1)
        assert gc.isenabled()
    finally:
        policy.stop()
        gc.enable()


async def test_only_many_subscribers_are_frozen_and_garbage_is_collected_first() -> None:
    policy = GcPolicy(settle=0.01, freeze_from=100)
    try:
        policy.subscribed(99)
        await asyncio.sleep(0.05)
        assert gc.get_freeze_count() == 0 and policy.frozen == 0  # few: never frozen
        garbage: list[object] = []
        garbage.append(garbage)  # a cycle nobody holds once we let go of it
        ref = weakref.ref(Cycle(garbage))
        del garbage
        policy.subscribed(100)
        await asyncio.sleep(0.05)
        assert policy.frozen == 100 and gc.get_freeze_count() > 0
        assert ref() is None  # collected before the freeze, not frozen with the rest
    finally:
        policy.stop()
        gc.unfreeze()


class Cycle:
    def __init__(self, other: object) -> None:
        self.me = self
        self.other = other


async def test_the_gc_is_left_off_if_someone_else_turned_it_off() -> None:
    policy = GcPolicy()
    gc.disable()
    try:
        policy.hold(1)
        policy.release(1)
        assert not gc.isenabled()
    finally:
        policy.stop()
        gc.enable()


async def test_uvicorns_queue_and_event_replacements_behave_like_asyncios() -> None:
    queue = _Queue()
    first, second = asyncio.ensure_future(queue.get()), asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait("a")
    queue.put_nowait("b")
    assert await first == "a" and await second == "b" and queue.empty()
    event = _Event()
    waiters = [asyncio.ensure_future(event.wait()) for _ in range(2)]
    await asyncio.sleep(0)
    assert not event.is_set() and not any(w.done() for w in waiters)
    event.set()
    assert await asyncio.gather(*waiters) == [True, True]
    event.clear()
    assert not event.is_set()


class _Socket:
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send_text(self, text: str) -> None:
        self.sent.append(text)


class _Adapter:
    def __init__(self) -> None:
        self.ws = _Socket()
        self.json: list[Any] = []

    async def send_json(self, message: Any) -> None:
        self.json.append(message)


@pytest.mark.parametrize(
    "data",
    [{"orderStatusChanged": {"cursor": "c1", "event": {"reason": 'ünïcode "q"'}}}, None],
)
async def test_a_shared_next_message_is_byte_identical_to_the_views_encoding(data: Any) -> None:
    handler: Any = ws_handler.TransportWSHandler.__new__(ws_handler.TransportWSHandler)
    handler.websocket = _Adapter()
    for op in ("1", "op-2"):
        await handler.send_message({"id": op, "type": "next", "payload": {"data": data}})
    expected = [
        json.dumps({"id": op, "type": "next", "payload": {"data": data}}, separators=(",", ":"))
        for op in ("1", "op-2")
    ]
    assert handler.websocket.ws.sent == expected
    # Anything else (errors in the payload, other messages) goes the view's way.
    await handler.send_message({"id": "1", "type": "next", "payload": {"data": data, "errors": []}})
    await handler.send_message({"type": "pong"})
    assert len(handler.websocket.json) == 2
