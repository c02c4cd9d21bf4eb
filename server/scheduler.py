"""The deadline scheduler: every server process sweeps due deadlines at an interval.

Several processes (and `trade-assurance run-deadlines`) may sweep at once: each due
order is enforced in its own transaction under its row lock (models/sweep.py), so each
deadline is enforced once. A failed sweep is logged and tried again at the next tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from models import sweep

log = logging.getLogger("trade_assurance.scheduler")


async def run_forever(interval_seconds: float) -> None:
    while True:
        try:
            await sweep.run_sweep()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("deadline sweep failed; trying again in %ss", interval_seconds)
        await asyncio.sleep(interval_seconds)


@contextlib.asynccontextmanager
async def running(interval_seconds: float) -> AsyncIterator[asyncio.Task[None] | None]:
    """The scheduler as a background task for the app's lifespan (off when 0)."""
    if interval_seconds <= 0:
        yield None
        return
    task = asyncio.create_task(run_forever(interval_seconds), name="deadline-scheduler")
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
