"""`deadline-sweep`: one deadline sweep over many orders, on SQLite and PostgreSQL.

Per engine: a fresh database, `trade-assurance migrate`, then in a fresh process (the
gateway's own code and database settings): `--orders` orders (100,000) seeded in bulk,
`--due` (1,000) of them due, spread over the four deadline kinds (payment, shipping,
automatic receipt, end of the claim window, which releases money); the others wait for
a deadline weeks away or have ended. Then the statistics are refreshed (ANALYZE), the
query plan of the due-order selection is printed (EXPLAIN / EXPLAIN QUERY PLAN; it must
use the partial index `trade_order_next_deadline`), and one sweep runs with the clock
set just after the seed: its time, the orders enforced and the SQL statements it sent
(counted at the database drivers) are printed. Afterwards the ledger is checked.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import multiprocessing
import os
import tempfile
import time
import traceback
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from bench import gateway, progress

DEFAULT_PG_URL = "postgres://postgres@127.0.0.1:5432/ta_bench_deadlines"
INDEX = "trade_order_next_deadline"


@dataclasses.dataclass
class SweepResult:
    engine: str
    orders: int
    due: int
    seed_s: float
    plan: list[str]
    sweep_s: float
    enforced: dict[str, int]
    statements: dict[str, int]
    ledger_problems: list[str]

    @property
    def uses_index(self) -> bool:
        return any(INDEX in line for line in self.plan)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "deadline-sweep",
        help="one deadline sweep over many orders (few due), SQLite and/or PostgreSQL",
        description=__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--engine", choices=["sqlite", "postgres", "both"], default="both")
    p.add_argument("--orders", type=_positive, default=100_000, help="orders in all")
    p.add_argument("--due", type=_positive, default=1_000, help="of which due now")
    p.add_argument("--database-url", default=DEFAULT_PG_URL, help="scratch PostgreSQL db")
    p.set_defaults(run=run)


def _positive(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def run(args: argparse.Namespace) -> int:
    if args.due > args.orders:
        print("--due cannot exceed --orders")
        return 2
    engines = ["sqlite", "postgres"] if args.engine == "both" else [args.engine]
    load1, _, _ = os.getloadavg()
    print(f"host: {os.cpu_count()} CPUs, load average {load1:.2f} at start", flush=True)
    failed = False
    for engine in engines:
        try:
            result = _run_engine(engine, args)
        except Exception:
            traceback.print_exc()
            print(f"\n{engine}: benchmark did not complete\n", flush=True)
            failed = True
            continue
        _report(result)
        failed |= (
            not result.uses_index
            or bool(result.ledger_problems)
            or sum(result.enforced.values()) != result.due
        )
    return 1 if failed else 0


def _run_engine(engine: str, args: argparse.Namespace) -> SweepResult:
    print(f"\n== deadline-sweep on {engine} ==", flush=True)
    with tempfile.TemporaryDirectory(prefix=f"ta-bench-{engine}-") as tmp:
        if engine == "sqlite":
            env = gateway.gateway_env(TA_DATA_DIR=str(Path(tmp)))
        else:
            asyncio.run(gateway.recreate_postgres_database(args.database_url))
            env = gateway.gateway_env(DATABASE_URL=args.database_url)
        gateway.migrate(env)
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
            return pool.submit(_worker, engine, env, args.orders, args.due).result()


def _worker(engine: str, env: dict[str, str], orders: int, due: int) -> SweepResult:
    gateway.become(env)
    return asyncio.run(_measure(engine, orders, due))


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


async def _measure(engine: str, orders: int, due: int) -> SweepResult:
    import datetime as dt

    from bench.money_path import _Probe
    from models import clock, db, ledger, sweep
    from models.enums import DeadlineKind
    from tests import factories

    kinds = list(DeadlineKind)
    probe = _Probe()
    probe.install()
    await db.open_pool(1, 4)
    try:
        now = clock.now()
        clock.set_clock(clock.FrozenClock(now))
        buyer = await factories.buyer()
        supplier = await factories.supplier(trade_assurance_limit_minor=10**15)
        assert supplier.supplier_id is not None
        company, supplier_id = buyer.principal.company_id, supplier.supplier_id
        started = time.perf_counter()
        waiting = orders - due
        ended = waiting * 6 // 10  # completed long ago: no deadline left
        not_due: dict[DeadlineKind | None, int] = dict(
            zip(kinds, _split(waiting - ended, len(kinds)), strict=True)
        )
        due_now: dict[DeadlineKind | None, int] = dict(
            zip(kinds, _split(due, len(kinds)), strict=True)
        )
        phases: list[tuple[dict[DeadlineKind | None, int], bool]] = [
            ({None: ended}, False),
            (not_due, False),
            (due_now, True),
        ]
        with progress.bar(orders, "seeding orders", "order") as seeding:
            for counts, is_due in phases:
                for kind, n in counts.items():  # one kind at a time, for the bar's sake
                    await factories.bulk_orders(
                        company, supplier_id, {kind: n}, now=now, due=is_due
                    )
                    seeding.update(n)
        await db.engine().run_ddl("ANALYZE")
        seed_s = time.perf_counter() - started
        print(f"seeded {orders:,} orders ({due:,} due) in {seed_s:.1f}s", flush=True)

        clock.set_clock(clock.FrozenClock(now + dt.timedelta(seconds=1)))
        plan = await _plan(str(sweep.due_query()))
        probe.label, probe.on = "sweep", True
        started = time.perf_counter()
        report = await sweep.run_sweep()
        sweep_s = time.perf_counter() - started
        probe.on = False
        problems = await ledger.check()
    finally:
        await db.close_pool()
    return SweepResult(
        engine=engine,
        orders=orders,
        due=due,
        seed_s=seed_s,
        plan=plan,
        sweep_s=sweep_s,
        enforced=dict(report.enforced),
        statements=dict(Counter(probe.kinds["sweep"])),
        ledger_problems=problems,
    )


async def _plan(sql: str) -> list[str]:
    from models import db
    from models.tables import Order

    if db.is_postgres():
        rows: list[dict[str, Any]] = await Order.raw(f"EXPLAIN {sql}")
        return [str(r["QUERY PLAN"]) for r in rows]
    rows = await Order.raw(f"EXPLAIN QUERY PLAN {sql}")
    return [str(r["detail"]) for r in rows]


def _report(r: SweepResult) -> None:
    total = sum(r.statements.values())
    pragmas = r.statements.get("PRAGMA", 0)  # Piccolo's SQLite engine: one per query
    n = max(sum(r.enforced.values()), 1)
    kinds = ", ".join(f"{k} {c}" for k, c in sorted(r.statements.items()))
    print(f"\ndue-order selection ({'uses' if r.uses_index else 'does NOT use'} {INDEX}):")
    for line in r.plan:
        print(f"  {line}")
    print(f"\nsweep over {r.orders:,} orders, {r.due:,} due, on {r.engine}:")
    print(f"  time            {r.sweep_s:.2f} s ({r.sweep_s * 1000 / n:.2f} ms per due order)")
    print(
        f"  enforced        {n:,}: " + ", ".join(f"{k} {c}" for k, c in sorted(r.enforced.items()))
    )
    print(f"  SQL statements  {total:,} ({total / n:.1f} per order): {kinds}")
    if pragmas:
        print(f"{'':18}{total - pragmas:,} without PRAGMAs ({(total - pragmas) / n:.1f} per order)")
    print(
        f"  ledger-check    {'OK' if not r.ledger_problems else r.ledger_problems[:5]}", flush=True
    )
