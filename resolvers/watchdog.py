"""The queries' execution time limit: one timer per event loop, not one per query.

`asyncio.timeout` arms a timer for each query and disarms it when the query ends: under
uvloop about 5 µs a query (a libuv timer started and stopped), against a few µs for
all of an order status's own resolvers. Queries end in milliseconds and the limit is
seconds, so the watchdog keeps the running queries' deadlines in a dict and one timer,
set for the earliest. When it fires it cancels the queries past their deadline and sets
itself for the next one. Watching a query is a dict write; under load the timer fires
about once per limit's length.

`bounded` keeps `asyncio.timeout`'s semantics: a query cancelled for its deadline ends
with `TimeoutError`; a cancellation from elsewhere (the client went away, shutdown) is
passed on; a query that finishes although its cancellation was requested does not leave
that request behind on its task.
"""

from __future__ import annotations

import asyncio
import math
import weakref
from collections.abc import Awaitable
from typing import Any, TypeVar

T = TypeVar("T")

_Task = asyncio.Task[Any]


class Watchdog:
    """One event loop's running queries. It holds neither the loop nor its timers (the
    loop holds them), so a finished loop is not kept alive through `_watchdogs`; a timer
    made stale by an earlier one just fires once more for nothing."""

    def __init__(self) -> None:
        self._running: dict[_Task, float] = {}  # task -> its deadline (loop time)
        self._expired: set[_Task] = set()  # cancelled for their deadline, still running
        self._at = math.inf  # when the next timer fires

    def watch(self, task: _Task, deadline: float) -> None:
        self._running[task] = deadline
        if deadline < self._at:
            self._arm(deadline)

    def forget(self, task: _Task) -> bool:
        """Stop watching `task` (again is harmless); True if it was cancelled for its
        deadline."""
        self._running.pop(task, None)
        if task in self._expired:
            self._expired.discard(task)
            return True
        return False

    def _arm(self, at: float) -> None:
        self._at = at
        asyncio.get_running_loop().call_at(at, self._fire)

    def _fire(self) -> None:
        now, earliest = asyncio.get_running_loop().time(), math.inf
        for task, deadline in self._running.items():
            if deadline > now:
                earliest = min(earliest, deadline)
            elif task not in self._expired:
                self._expired.add(task)
                task.cancel()
        self._at = math.inf
        if earliest < math.inf:
            self._arm(earliest)


_watchdogs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Watchdog] = (
    weakref.WeakKeyDictionary()
)


async def bounded(awaitable: Awaitable[T], seconds: float) -> T:
    """`await awaitable`, cancelled with TimeoutError after `seconds` (as `asyncio.timeout`)."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task(loop)
    assert task is not None  # awaited by a task, as every request and operation is
    watchdog = _watchdogs.get(loop)
    if watchdog is None:
        watchdog = _watchdogs[loop] = Watchdog()
    cancelling = task.cancelling()
    watchdog.watch(task, loop.time() + seconds)
    expired = False
    try:
        return await awaitable
    except asyncio.CancelledError as cancelled:
        expired = watchdog.forget(task)
        if expired and task.uncancel() <= cancelling:
            raise TimeoutError from cancelled
        raise
    finally:
        if not expired and watchdog.forget(task):
            task.uncancel()  # it finished before the cancellation reached it
