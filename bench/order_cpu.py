"""`python -m bench order-cpu`: the gateway's CPU time per order-status or order-list request.

In-process (the ASGI app through httpx's ASGI transport, one request at a time, no
network) on a fresh SQLite file, so the figure is the gateway's own work and is steady on
a busy machine, where requests/s over HTTP are not: process CPU time (the client's share
included, the same in every run) and wall time per request. `--mode status` (default):
one order with its supplier, money and events; `--mode list`: 100 orders (the
order-status benchmark's list query) with buyer, supplier and payments. `--profile N`
prints the N costliest functions (cProfile; `--sort`) of the timed requests
(`BENCH_PSTATS=file` keeps the raw profile for `pstats`). Run it at
two commits to see what a change gained (docs/performance.md)."""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import datetime as dt
import json
import os
import pstats
import tempfile
import time
from typing import Any

from bench.order_reads import ORDER_LIST

QUERY = """query($id: ID!) { order(id: $id) { status supplier { id legalName country }
  money { paid { amount currency } held { amount currency } released { amount currency }
          refunded { amount currency } }
  events { kind oldStatus newStatus actorKind reason at } } }"""
LIST_SIZE = 100


def add_parser(sub: Any) -> None:
    p = sub.add_parser("order-cpu", help=__doc__.splitlines()[0], description=__doc__)
    p.add_argument("--mode", choices=("status", "list"), default="status")
    p.add_argument(
        "--app",
        choices=("gateway", "peer", "ceiling"),
        default="gateway",
        help="what answers: the gateway, or (over the same orders) the graphql-core peer "
        "or the bare Starlette ceiling of `python -m bench order-status`",
    )
    p.add_argument("--requests", type=int, help="timed requests (status 2000, list 200)")
    p.add_argument("--warmup", type=int, help="untimed requests first (status 200, list 20)")
    p.add_argument("--profile", type=int, default=0, metavar="N", help="print N functions")
    p.add_argument("--sort", default="cumulative", help="profile order (e.g. tottime)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    os.environ["TA_DATA_DIR"] = tempfile.mkdtemp(prefix="ta-bench-cpu-")
    os.environ.pop("DATABASE_URL", None)
    os.environ["TA_SCHEDULER_INTERVAL_SECONDS"] = "0"
    listing = args.mode == "list"
    requests = args.requests or (200 if listing else 2000)
    warmup = args.warmup if args.warmup is not None else (20 if listing else 200)
    print(json.dumps(asyncio.run(_measure(args, requests, warmup))))
    return 0


async def _body(mode: str) -> tuple[dict[str, Any], str]:
    """The request's body and the buyer's token, over freshly made orders."""
    from models.enums import DeadlineKind
    from tests import factories
    from tests.api import gid

    if mode == "status":
        buyer, _, order = await factories.confirmed_order()
        return {"query": QUERY, "variables": {"id": gid("Order", order.id)}}, buyer.token
    buyer = await factories.buyer()
    seller = await factories.supplier(trade_assurance_limit_minor=100_000_00)
    assert seller.supplier_id is not None
    # Paid orders waiting to ship: each has a card payment and money in escrow.
    await factories.bulk_orders(
        buyer.principal.company_id,
        seller.supplier_id,
        {DeadlineKind.SHIPPING: LIST_SIZE},
        now=dt.datetime.now(dt.UTC),
        due=False,
    )
    return {"query": ORDER_LIST, "variables": {"first": LIST_SIZE}}, buyer.token


async def _measure(args: argparse.Namespace, requests: int, warmup: int) -> dict[str, Any]:
    from server.app import create_app

    app = create_app()
    async with app.router.lifespan_context(app):
        body, token = await _body(args.mode)
        if args.app == "gateway":
            return await _time(app, "/graphql", body, token, args, requests, warmup)
    # The peer and the ceiling read the file the gateway wrote, as in `order-status`.
    os.environ["BENCH_READS_ENGINE"] = "sqlite"
    os.environ["BENCH_READS_LOCATION"] = os.path.join(
        os.environ["TA_DATA_DIR"], "trade_assurance.sqlite3"
    )
    if args.app == "peer":
        from bench.peer_app import create_app as create_peer

        other, path = create_peer(), "/graphql"
    else:
        from bench.ceiling_app import create_app as create_ceiling

        other, path = create_ceiling(), f"/order-{args.mode}"
    async with other.router.lifespan_context(other):
        return await _time(other, path, body, token, args, requests, warmup)


async def _time(
    app: Any,
    path: str,
    body: dict[str, Any],
    token: str,
    args: argparse.Namespace,
    requests: int,
    warmup: int,
) -> dict[str, Any]:
    import httpx

    mode, profile = args.mode, args.profile
    headers = {"Authorization": f"Bearer {token}"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        answer = None
        for _ in range(max(warmup, 1)):
            answer = await client.post(path, json=body, headers=headers)
        assert answer is not None
        if answer.status_code != 200 or b'"errors"' in answer.content:
            raise SystemExit(f"order {mode} failed: {answer.text}")
        profiler = cProfile.Profile() if profile else None
        if profiler is not None:
            profiler.enable()
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(requests):
            await client.post(path, json=body, headers=headers)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        if profiler is not None:
            profiler.disable()
            if os.environ.get("BENCH_PSTATS"):
                profiler.dump_stats(os.environ["BENCH_PSTATS"])
            pstats.Stats(profiler).sort_stats(args.sort).print_stats(profile)
    return {
        "app": args.app,
        "mode": mode,
        "requests": requests,
        "cpu_us_per_request": round(cpu / requests * 1e6),
        "wall_us_per_request": round(wall / requests * 1e6),
    }
