"""Live order events: one feed reader per process, fanned out to its subscribers.

The reader follows the feed (models.feed) from its position and hands each new event to
the subscribers that want it. It wakes when a transaction that wrote events commits: on
PostgreSQL through LISTEN on a dedicated connection outside the pool (the insert trigger
notifies with the event id), on SQLite through `models.db`'s after-commit hook; and it
polls every `poll_interval` besides (events another process wrote to the SQLite file, and
PostgreSQL events that waited for an older transaction to finish). A lost listener
connection is reconnected; since the reader works from its position, not from the
notifications, nothing is missed meanwhile.

Each subscriber has a bounded queue (an Inbox). One that falls `queue_size` events behind
is cut off (its `overflowed` is set and `on_overflow` called) instead of holding the
others up or growing without bound. GcPolicy keeps the cyclic GC off the fan-out.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

from models import accounts, db, feed
from models.accounts import AuthError, Principal
from models.feed import FeedEvent, Position

log = logging.getLogger("trade_assurance.live")

CHANNEL = "order_events"
LISTENER_NAME = "ta-live-listener"  # its application_name, to find it in pg_stat_activity
BATCH = 500
GC_HOLD_RECIPIENTS = 256  # GcPolicy.hold: for deliveries to this many subscribers or more


class GcPolicy:
    """Keeps the cyclic garbage collector off the fan-out.

    Each connection is a few hundred container objects living as long as it does; at
    10,000 subscribers a full collection walks millions of them, seconds on one core. And
    a fan-out leaves thousands of results, messages and frames in flight at once, which
    sets off young collections by the hundred and full ones too (measured: 1.6 s of a
    2.6 s fan-out). So:

    * once a burst of subscribes has settled with at least `freeze_from` subscribers,
      what is not frozen yet is collected in full (the frozen part is not walked again)
      and then frozen (gc.freeze, O(1)): full collections no longer walk the
      connections. Collecting first matters: garbage frozen with them would stay until
      an unfreeze (a test found 30 MB held that way). Cyclic garbage of connections that
      end after that waits for an unfreeze: once `unfreeze_share` of the subscribers
      frozen have left, all goes back to the collector (one full collection then, at
      churn) and the next burst freezes. A process with few subscribers never freezes.
    * while the events of a large fan-out are not yet sent (`hold` .. `release`), the
      collector is off, for `max_hold` seconds at most; what piled up is collected after.
    """

    def __init__(
        self,
        *,
        settle: float = 1.0,
        unfreeze_share: float = 0.5,
        max_hold: float = 5.0,
        freeze_from: int = GC_HOLD_RECIPIENTS,
    ) -> None:
        self.settle = settle
        self.freeze_from = freeze_from
        self.unfreeze_share = unfreeze_share
        self.max_hold = max_hold
        self.frozen = 0  # subscribers there at the last freeze
        self.left = 0  # of them, since gone
        self.held = 0  # events handed out, not yet sent
        self._freeze_timer: asyncio.TimerHandle | None = None
        self._hold_timer: asyncio.TimerHandle | None = None  # set while we disabled the GC

    def subscribed(self, count: int) -> None:
        if self._freeze_timer is not None:
            self._freeze_timer.cancel()  # still a burst: wait until it settles
            self._freeze_timer = None
        if count < self.freeze_from:
            return
        loop = asyncio.get_running_loop()
        self._freeze_timer = loop.call_later(self.settle, self._freeze, count)

    def unsubscribed(self) -> None:
        if not self.frozen:
            return
        self.left += 1
        if self.left >= max(64, self.frozen * self.unfreeze_share):
            gc.unfreeze()
            self.frozen = self.left = 0

    def _freeze(self, count: int) -> None:
        self._freeze_timer = None
        gc.collect()  # walks only what is not frozen yet: the burst, and garbage
        gc.freeze()
        self.frozen, self.left = max(self.frozen, count), 0

    def hold(self, count: int) -> None:
        self.held += count
        if self._hold_timer is None and gc.isenabled():  # not if someone else turned it off
            gc.disable()
            loop = asyncio.get_running_loop()
            self._hold_timer = loop.call_later(self.max_hold, self._resume)

    def release(self, count: int) -> None:
        self.held -= count
        if self.held <= 0:
            self.held = 0
            self._resume()

    def _resume(self) -> None:
        if self._hold_timer is not None:
            self._hold_timer.cancel()
            self._hold_timer = None
            gc.enable()

    def stop(self) -> None:
        if self._freeze_timer is not None:
            self._freeze_timer.cancel()
            self._freeze_timer = None
        self._resume()


class Inbox:
    """A subscriber's bounded queue of items, for its one reader: a list and at most one
    waiting future. asyncio.Queue keeps three deques (about 2 KiB) per subscriber, and a
    process holds thousands of subscribers."""

    __slots__ = ("_items", "_waiter", "maxsize")

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._items: list[FeedEvent | AuthError] = []
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: FeedEvent | AuthError) -> None:
        if len(self._items) >= self.maxsize:
            raise asyncio.QueueFull
        self._items.append(item)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def get(self) -> FeedEvent | AuthError:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.pop(0)

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items)


@dataclasses.dataclass(eq=False, slots=True)
class Subscriber:
    """One subscription: what it wants, and the events waiting for it."""

    principal: Principal
    order_id: int | None  # None: every order the principal may see
    # Events to send; an AuthError instead ends the stream (its credential went bad).
    queue: Inbox
    on_overflow: Callable[[], Any] | None = None
    overflowed: bool = False
    # True: only the order's conversation messages; False: only its other events.
    messages: bool = False
    unsent: int = 0  # items put in the queue whose sending is not known to be over
    taken: bool = False  # one of them is being sent now


class TooFarBehind(Exception):
    """The subscriber fell `queue_size` events behind and was cut off."""


async def _from_table(
    principal: Principal, order_id: int | None, after: Position, upto: Position, messages: bool
) -> AsyncIterator[FeedEvent]:
    """The events after `after` up to `upto` (where live delivery begins), from the
    table, each after checking that the credential still holds."""
    position = after
    while position < upto:
        missed = await feed.read_after(
            position, limit=BATCH, order_id=order_id, viewer=principal, messages=messages
        )
        for event in missed:
            if event.position > upto:
                return
            failed = (await accounts.recheck([principal])).get(principal)
            if failed is not None:
                raise failed
            yield event
        if len(missed) < BATCH:
            return
        position = missed[-1].position


class Hub:
    def __init__(
        self,
        *,
        dsn: str | None,
        poll_interval: float = 1.0,
        queue_size: int = 1000,
        freeze_gc: bool = False,
    ) -> None:
        self.dsn = dsn  # PostgreSQL: the listener's own connection; None on SQLite
        self.poll_interval = poll_interval
        self.queue_size = queue_size
        self.position = feed.START
        # Indexed so an event is tested only against those who may want it: the
        # subscribers of its order, and those following every order they may see.
        self.by_order: dict[int, set[Subscriber]] = {}
        self.everything: set[Subscriber] = set()
        self._wake = asyncio.Event()
        self._head_read_at = float("-inf")
        self._tasks: list[asyncio.Task[None]] = []
        # The server's hub freezes (one per process); tests' hubs leave the GC alone.
        self._gc = GcPolicy() if freeze_gc else None

    # --- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        self.position = await feed.head()
        self._tasks.append(asyncio.create_task(self._follow(), name="live-feed"))
        if self.dsn is not None:
            self._tasks.append(asyncio.create_task(self._listen(), name="live-listener"))
        else:
            db.on_commit(self.wake)

    async def stop(self) -> None:
        if self.dsn is None:
            db.remove_on_commit(self.wake)
        if self._gc is not None:
            self._gc.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    def wake(self) -> None:
        self._wake.set()

    # --- subscribers ---------------------------------------------------------------

    def subscribe(
        self,
        principal: Principal,
        order_id: int | None,
        on_overflow: Callable[[], Any] | None = None,
        *,
        messages: bool = False,
    ) -> tuple[Subscriber, Position]:
        """Register a subscriber; also returns the position live delivery starts after
        (a client resuming reads the feed up to there itself)."""
        subscriber = Subscriber(
            principal,
            order_id,
            Inbox(self.queue_size),
            on_overflow=on_overflow,
            messages=messages,
        )
        if order_id is None:
            self.everything.add(subscriber)
        else:
            self.by_order.setdefault(order_id, set()).add(subscriber)
        if self._gc is not None:
            self._gc.subscribed(self.subscriber_count)
        return subscriber, self.position

    async def stream(
        self,
        principal: Principal,
        order_id: int | None,
        start: Position | None,
        *,
        messages: bool = False,
        on_overflow: Callable[[], Any] | None = None,
    ) -> AsyncGenerator[FeedEvent, None]:
        """One subscriber's events (one order's, or all the principal may see; with
        `messages` only the conversation's): those after `start` from the table, then
        live, each once and in order; `start` None: from now on. Raises AuthError when
        the credential goes bad and TooFarBehind once cut off."""
        if start is None:
            # From now on: the newest commit, read before joining. Read after joining (on
            # PostgreSQL, a round trip later) it could take in events committed in between,
            # which the hub then delivered as no newer than the start, so they were skipped.
            # Read before, whatever the hub has already passed when we join comes from the
            # table below.
            start = await feed.head()
        subscriber, live_from = self.subscribe(
            principal, order_id, on_overflow=on_overflow, messages=messages
        )
        try:
            last = live_from
            if start < live_from:
                async for event in _from_table(principal, order_id, start, live_from, messages):
                    yield event
            else:
                last = start  # ahead of this process's reader: skip what the client has
            while not subscriber.overflowed:
                item = await self.next(subscriber)
                if subscriber.overflowed:
                    break
                if isinstance(item, AuthError):  # the hub re-checked the credential
                    raise item
                if item.position <= last:
                    continue
                last = item.position
                yield item
            raise TooFarBehind(self.queue_size)
        finally:
            self.unsubscribe(subscriber)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._sent(subscriber, subscriber.unsent)  # what is still queued never will be
        if not self.subscribed(subscriber):
            return
        if self._gc is not None:
            self._gc.unsubscribed()
        if subscriber.order_id is None:
            self.everything.discard(subscriber)
            return
        same_order = self.by_order[subscriber.order_id]
        same_order.discard(subscriber)
        if not same_order:
            del self.by_order[subscriber.order_id]

    def subscribed(self, subscriber: Subscriber) -> bool:
        if subscriber.order_id is None:
            return subscriber in self.everything
        return subscriber in self.by_order.get(subscriber.order_id, ())

    async def next(self, subscriber: Subscriber) -> FeedEvent | AuthError:
        """The subscriber's next item. Asking for it says the previous one has been
        sent (the stream resumes once its consumer has sent what it yielded)."""
        if subscriber.taken:
            subscriber.taken = False
            self._sent(subscriber, 1)
        item = await subscriber.queue.get()
        subscriber.taken = True
        return item

    def _sent(self, subscriber: Subscriber, count: int) -> None:
        count = min(count, subscriber.unsent)  # after an unsubscribe, nothing is left
        if count > 0:
            subscriber.unsent -= count
            if self._gc is not None:
                self._gc.release(count)

    @property
    def subscriber_count(self) -> int:
        return len(self.everything) + sum(map(len, self.by_order.values()))

    async def _deliver(self, events: list[FeedEvent]) -> None:
        """Hand each subscriber the events it wants, after checking again (in one go)
        that every recipient's credential still holds."""
        wanted: dict[Subscriber, list[FeedEvent]] = {}
        for event in events:
            for subscriber in (*self.by_order.get(event.event.order, ()), *self.everything):
                if event.is_message is subscriber.messages and event.visible_to(
                    subscriber.principal
                ):
                    wanted.setdefault(subscriber, []).append(event)
        failed = await accounts.recheck({s.principal for s in wanted})
        # Only a large fan-out holds the collector off: a few recipients leave little in
        # flight, and one that stopped reading would hold it off for `max_hold` each time.
        hold = self._gc if len(wanted) >= GC_HOLD_RECIPIENTS else None
        for subscriber, mine in wanted.items():
            if not self.subscribed(subscriber):  # left while we checked
                continue
            error = failed.get(subscriber.principal)
            if error is not None:
                self.unsubscribe(subscriber)
            for item in [error] if error is not None else mine:
                try:
                    subscriber.queue.put_nowait(item)
                except asyncio.QueueFull:
                    self._cut_off(subscriber)
                    break
                if hold is not None:
                    subscriber.unsent += 1
                    hold.hold(1)

    def _cut_off(self, subscriber: Subscriber) -> None:
        subscriber.overflowed = True
        self.unsubscribe(subscriber)
        log.warning("cut off a subscriber %s events behind", self.queue_size)
        if subscriber.on_overflow is not None:
            subscriber.on_overflow()

    # --- following the feed --------------------------------------------------------

    async def _follow(self) -> None:
        while True:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
            # cancellation that races its timeout, and stop() would wait forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_interval):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.catch_up()
            except Exception:  # the database is away: try again at the next wake-up
                log.exception("reading the order-event feed failed")

    async def catch_up(self) -> None:
        """Deliver every finished event after the current position."""
        while True:
            if not self.everything and not self.by_order:
                # Nobody listens: keep up with the head, but once per poll interval, not
                # after every commit (a first subscriber then finds at most that much
                # to skip).
                now = asyncio.get_running_loop().time()
                if now - self._head_read_at >= self.poll_interval:
                    head = await feed.head()
                    # Someone may have joined during that read, from the old position
                    # (`subscribe`): moving past what lies between would lose it for them.
                    if not self.everything and not self.by_order:
                        self.position = max(self.position, head)
                    self._head_read_at = now
                return
            events = await feed.read_after(self.position, limit=BATCH)
            if not events:
                return
            # Moved on only once delivered: a failed credential check (the database
            # went away) reads the same events again at the next wake-up.
            await self._deliver(events)
            self.position = events[-1].position
            if len(events) < BATCH:
                return

    async def _listen(self) -> None:
        """PostgreSQL: LISTEN on a connection of our own; reconnect when it is lost."""
        import asyncpg

        assert self.dsn is not None
        delay = 0.1
        while True:
            lost = asyncio.Event()
            connection: asyncpg.Connection | None = None
            try:
                connection = await asyncpg.connect(
                    self.dsn, server_settings={"application_name": LISTENER_NAME}
                )
                connection.add_termination_listener(lambda _, lost=lost: lost.set())
                await connection.add_listener(CHANNEL, lambda *_: self.wake())
                delay = 0.1
                self.wake()  # catch up on whatever was committed while we were away
                while not lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(5.0):
                            await lost.wait()
                    if not lost.is_set():  # a quiet connection may be dead: probe it
                        await connection.fetchval("SELECT 1", timeout=5.0)
            except asyncio.CancelledError:
                if connection is not None:
                    connection.terminate()
                raise
            except Exception as e:
                log.warning("order-event listener lost (%s); reconnecting", type(e).__name__)
            if connection is not None and not connection.is_closed():
                connection.terminate()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
