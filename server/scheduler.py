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
from collections.abc import AsyncIterator

from models import sweep
from server import ledger_check, metrics

log = logging.getLogger("trade_assurance.scheduler")


async def run_forever(interval_seconds: float) -> None:
    while True:
        try:
            report = await sweep.run_sweep()
        except asyncio.CancelledError:
            raise
        except Exception:
            metrics.count_sweep(None)
            log.exception("deadline sweep failed; trying again in %ss", interval_seconds)
        else:
            metrics.count_sweep(report)
        await asyncio.sleep(interval_seconds)


async def check_ledger_forever(interval_seconds: float) -> None:
    while True:
        try:
            problems, totals = await ledger_check.check()
        except asyncio.CancelledError:
            raise
        except Exception:  # no verdict: the gauges keep the last one, with its time
            log.exception("ledger check failed to run; trying again in %ss", interval_seconds)
        else:
            metrics.LEDGER_CHECK.record(len(problems))
            summary = f"{totals.postings} postings, {totals.transactions} transactions"
            if problems:
                log.error(
                    "ledger BROKEN: %s violation(s) in %s; first: %s",
                    len(problems), summary, problems[0],
                )  # fmt: skip
            else:
                log.info("ledger OK: %s", summary)
        await asyncio.sleep(interval_seconds)


@contextlib.asynccontextmanager
async def running(interval_seconds: float, ledger_check_minutes: float = 0) -> AsyncIterator[None]:
    """The deadline sweeps and the ledger check as background tasks for the app's
    lifespan (either is off when its interval is 0)."""
    tasks: list[asyncio.Task[None]] = []
    if interval_seconds > 0:
        tasks.append(asyncio.create_task(run_forever(interval_seconds), name="deadline-scheduler"))
    if ledger_check_minutes > 0:
        tasks.append(
            asyncio.create_task(
                check_ledger_forever(ledger_check_minutes * 60), name="ledger-check"
            )
        )
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
