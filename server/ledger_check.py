"""`trade-assurance ledger-check`: verify the ledger's invariants against the database.

Exit status 0 when the books are sound, 1 when any invariant is broken (each violation
is printed), 3 when the database has pending migrations (as `serve` does): then the
tables may not match the queries, and the answer would be a traceback, not a verdict.
"""

from __future__ import annotations

import asyncio
import sys

from models import db, ledger


async def check() -> tuple[list[str], ledger.LedgerTotals]:
    """The violations (none: the books are sound) and the ledger's size; the server's
    scheduler runs it too (server/scheduler.py)."""
    return await ledger.check(), await ledger.totals()


def run() -> int:
    pending = asyncio.run(db.pending_migrations())
    if pending:
        print(
            f"error: {len(pending)} pending migration(s); run `trade-assurance migrate` first",
            file=sys.stderr,
        )
        return 3
    problems, totals = asyncio.run(check())
    for problem in problems:
        print(problem)
    summary = f"{totals.postings} postings, {totals.transactions} transactions"
    if problems:
        print(f"ledger BROKEN: {len(problems)} violation(s) in {summary}")
        return 1
    print(f"ledger OK: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(run())
