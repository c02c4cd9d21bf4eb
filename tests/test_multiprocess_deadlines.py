"""1,000 due orders swept by several `trade-assurance run-deadlines` processes at once:
each deadline is enforced exactly once (one scheduler event per order, one release
posting per released order), also when one sweeper is killed midway, and the ledger
checks clean afterwards.

PostgreSQL: three sweeper processes (FOR UPDATE SKIP LOCKED + each transition's own
check under the order's row lock). SQLite: one process (a SQLite file has one writer;
the multi-process deployment is PostgreSQL's); the in-process concurrency of the sweep
is covered in test_lifecycle.py."""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
import subprocess
import time

from models import clock, ledger
from models.enums import ActorKind, DeadlineKind, OrderStatus
from models.tables import LedgerPosting, Order, OrderEvent
from tests import factories
from tests.api import CLI, ROOT, cli_env, run_cli
from tests.conftest import ENGINE

PER_KIND = 250  # x 4 deadline kinds = 1,000 due orders
SWEEPERS = 3 if ENGINE == "postgres" else 1
EXPECTED = {
    DeadlineKind.PAYMENT: (OrderStatus.CANCELLED, "PAYMENT_DEADLINE_PASSED"),
    DeadlineKind.SHIPPING: (OrderStatus.OVERDUE, "SHIPPING_DEADLINE_PASSED"),
    DeadlineKind.RECEIPT: (OrderStatus.RECEIVED, "RECEIPT_AUTO_CONFIRMED"),
    DeadlineKind.CLAIM_WINDOW: (OrderStatus.COMPLETED, "CLAIM_WINDOW_ENDED"),
}


async def _seed() -> tuple[dict[DeadlineKind | None, list[int]], str]:
    b = await factories.buyer()
    s = await factories.supplier(trade_assurance_limit_minor=10**12)
    assert s.supplier_id is not None
    now = clock.now()
    started = time.monotonic()
    ids = await factories.bulk_orders(
        b.principal.company_id,
        s.supplier_id,
        dict.fromkeys(EXPECTED, PER_KIND),
        now=now,
    )
    print(f"seeded {4 * PER_KIND} due orders in {time.monotonic() - started:.1f}s")
    return ids, (now + dt.timedelta(seconds=1)).isoformat()


def _sweepers(now: str) -> list[subprocess.Popen[str]]:
    return [
        subprocess.Popen(  # noqa: S603 - our own console script
            [CLI, "run-deadlines", "--now", now],
            env=cli_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=ROOT,
        )
        for _ in range(SWEEPERS)
    ]


async def _scheduler_events() -> int:
    return int(await OrderEvent.count().where(OrderEvent.actor_kind == ActorKind.SCHEDULER.value))


async def _check_enforced_once(ids: dict[DeadlineKind | None, list[int]], now: str) -> None:
    per_order = await OrderEvent.select(OrderEvent.order, OrderEvent.kind).where(
        OrderEvent.actor_kind == ActorKind.SCHEDULER.value
    )
    assert len(per_order) == 4 * PER_KIND
    seen: dict[int, list[str]] = {}
    for row in per_order:
        seen.setdefault(int(row["order"]), []).append(str(row["kind"]))
    statuses = {int(r["id"]): r["status"] for r in await Order.select(Order.id, Order.status)}
    for kind, (status, event) in EXPECTED.items():
        for order_id in ids[kind]:
            assert seen.get(order_id) == [event], (order_id, seen.get(order_id))
            assert statuses[order_id] == status
    releases = await LedgerPosting.count().where(LedgerPosting.kind == "RELEASE")
    assert releases == 2 * PER_KIND  # one two-leg release per completed order
    assert await ledger.check() == []
    # Nothing is left due: another sweep at the same time does nothing.
    again = run_cli("run-deadlines", "--now", now)
    assert again.returncode == 0 and "orders enforced: 0" in again.stdout, again.stdout


async def test_sweepers_enforce_each_deadline_once() -> None:
    ids, now = await _seed()
    started = time.monotonic()
    procs = _sweepers(now)
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    print(f"{SWEEPERS} sweeper(s) took {time.monotonic() - started:.1f}s")
    for p, out in zip(procs, outputs, strict=True):
        assert p.returncode == 0, out
    enforced = sum(
        int(line.split("orders enforced: ")[1].split(",")[0])
        for out in outputs
        for line in out.splitlines()
        if line.startswith("orders enforced: ")
    )
    assert enforced == 4 * PER_KIND, outputs
    await _check_enforced_once(ids, now)


async def test_a_sweeper_killed_midway_loses_nothing() -> None:
    ids, now = await _seed()
    procs = _sweepers(now)
    victim = procs[0]
    deadline = time.monotonic() + 60
    while await _scheduler_events() < 100 and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.005)
    running = victim.poll() is None
    victim.send_signal(signal.SIGKILL)
    victim.wait(30)
    assert running, "the sweep finished before the kill; seed more orders"
    assert victim.returncode == -signal.SIGKILL
    for p in procs[1:]:
        out = p.communicate(timeout=120)[0]
        assert p.returncode == 0, out
    done_before_finish = await _scheduler_events()
    # Whatever the killed sweeper held (its open transaction rolled back) or never
    # reached is still due: another sweep finishes it.
    finish = run_cli("run-deadlines", "--now", now)
    assert finish.returncode == 0, finish.stdout + finish.stderr
    print(f"{done_before_finish} enforced before the final sweep; it said: {finish.stdout}")
    await _check_enforced_once(ids, now)
