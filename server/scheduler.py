"""The deadline scheduler: every server process sweeps due deadlines at an interval.

Several processes (and `trade-assurance run-deadlines`) may sweep at once: each due
order is enforced in its own transaction under its row lock (models/sweep.py), so each
deadline is enforced once. A failed sweep is logged and tried again at the next tick.
The ledger check (the one `trade-assurance ledger-check` runs) runs at start-up and then
every `ledger_check_minutes`; its verdict goes to /metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from models import sweep
from server import ledger_check, metrics

log = logging.getLogger("trade_assurance.scheduler")


async def _every(
    interval_seconds: float, job: Callable[[], Coroutine[Any, Any, None]], what: str
) -> None:
    """Run `job` now and then every interval; a failure is logged and tried again."""
    while True:
        try:
            # Each run in a task of its own: nothing one leaves in its context (a database
            # transaction its lost connection could not end) reaches the next.
            await asyncio.create_task(job())
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed; trying again in %ss", what, interval_seconds)
        await asyncio.sleep(interval_seconds)


async def _sweep() -> None:
    try:
        report = await sweep.run_sweep()
    except Exception:
        metrics.count_sweep(None)
        raise
    metrics.count_sweep(report)


async def _check_ledger() -> None:
    # If the check cannot run, the gauges keep the last verdict, with its time.
    problems, totals = await ledger_check.check()
    metrics.LEDGER_CHECK.record(len(problems))
    summary = f"{totals.postings} postings, {totals.transactions} transactions"
    if problems:
        log.error(
            "ledger BROKEN: %s violation(s) in %s; first: %s", len(problems), summary, problems[0]
        )
    else:
        log.info("ledger OK: %s", summary)


@contextlib.asynccontextmanager
async def running(interval_seconds: float, ledger_check_minutes: float = 0) -> AsyncIterator[None]:
    """The deadline sweeps and the ledger check as background tasks for the app's
    lifespan (either is off when its interval is 0)."""
    tasks: list[asyncio.Task[None]] = []
    if interval_seconds > 0:
        sweeps = _every(interval_seconds, _sweep, "deadline sweep")
        tasks.append(asyncio.create_task(sweeps, name="deadline-scheduler"))
    if ledger_check_minutes > 0:
        checks = _every(ledger_check_minutes * 60, _check_ledger, "ledger check")
        tasks.append(asyncio.create_task(checks, name="ledger-check"))
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
