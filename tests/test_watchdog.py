"""The queries' time limit (resolvers/watchdog.py) behaves as `asyncio.timeout` does."""

from __future__ import annotations

import asyncio
import gc
import time
import weakref

import pytest

from resolvers.watchdog import bounded


async def _sleep_then(seconds: float, value: str) -> str:
    await asyncio.sleep(seconds)
    return value


async def test_a_query_within_its_limit_answers_and_leaves_nothing_behind() -> None:
    assert await bounded(_sleep_then(0.01, "done"), 5) == "done"
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0


async def test_queries_past_their_deadlines_stop_each_at_its_own() -> None:
    started = time.monotonic()

    async def timed(seconds: float, limit: float) -> tuple[str, float]:
        try:
            outcome = await bounded(_sleep_then(seconds, "done"), limit)
        except TimeoutError:
            outcome = "timed out"
        return outcome, time.monotonic() - started

    results = await asyncio.gather(timed(5, 0.3), timed(5, 0.1), timed(0.05, 0.2), timed(5, 0.5))
    assert [r[0] for r in results] == ["timed out", "timed out", "done", "timed out"]
    for (_, elapsed), limit in zip(results, (0.3, 0.1, 0.05, 0.5), strict=True):
        assert limit <= elapsed < limit + 0.25  # the timer was set again for the next


async def test_a_cancellation_from_elsewhere_is_passed_on() -> None:
    task = asyncio.create_task(bounded(_sleep_then(5, "done"), 10))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_query_that_finishes_despite_its_cancellation_answers() -> None:
    async def stubborn() -> str:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            return "finished anyway"
        return "slept"

    assert await bounded(stubborn(), 0.05) == "finished anyway"
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0  # no cancellation left pending
    await asyncio.sleep(0)  # and none delivered later


def test_a_finished_event_loop_is_not_kept_alive() -> None:
    loop = asyncio.new_event_loop()
    assert loop.run_until_complete(bounded(_sleep_then(0, "done"), 10)) == "done"
    finished = weakref.ref(loop)  # its watchdog's timer is still set for 10 s from then
    loop.close()
    del loop
    gc.collect()
    assert finished() is None
