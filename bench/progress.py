"""Progress bars for long benchmark work: on stderr, and only when stderr is a terminal
(tqdm's `disable=None`), so piped output and CI logs stay exactly as they were.

A bar never costs the loop being timed anything: `watch` refreshes it from a counter the
loop keeps anyway, in a task of its own, twice a second; while it is disabled there is no
task at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

from tqdm import tqdm

REFRESH_S = 0.5


def bar(total: int, desc: str, unit: str = "it") -> tqdm[Any]:
    """A bar that disappears when done (a plain line reports the result)."""
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        unit_scale=total >= 10_000,  # 20.0k/100k, but 40/50
        file=sys.stderr,
        disable=None,
        leave=False,
        dynamic_ncols=True,
    )


@contextlib.asynccontextmanager
async def watch(total: int, desc: str, unit: str, done: Callable[[], int]) -> AsyncIterator[None]:
    """Show `done()` out of `total` while the block runs."""
    with bar(total, desc, unit) as shown:
        if shown.disable:
            yield
            return

        async def refresh() -> None:
            while True:
                shown.update(done() - shown.n)
                await asyncio.sleep(REFRESH_S)

        task = asyncio.create_task(refresh())
        try:
            yield
        finally:
            task.cancel()
            shown.update(done() - shown.n)
