"""`python -m bench order-cpu`: the gateway's CPU time per order-status request.

In-process (the ASGI app through httpx's ASGI transport, one request at a time, no
network) on a fresh SQLite file, so the figure is the gateway's own work and is steady on
a busy machine, where requests/s over HTTP are not: process CPU time (the client's share
included, the same in every run) and wall time per request. Run it at two commits to see
what a change gained (docs/performance.md)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from typing import Any

QUERY = """query($id: ID!) { order(id: $id) { status supplier { id legalName country }
  money { paid { amount currency } held { amount currency } released { amount currency }
          refunded { amount currency } }
  events { kind oldStatus newStatus actorKind reason at } } }"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser("order-cpu", help=__doc__.splitlines()[0], description=__doc__)
    p.add_argument("--requests", type=int, default=2000, help="timed requests")
    p.add_argument("--warmup", type=int, default=200)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    os.environ["TA_DATA_DIR"] = tempfile.mkdtemp(prefix="ta-bench-cpu-")
    os.environ.pop("DATABASE_URL", None)
    os.environ["TA_SCHEDULER_INTERVAL_SECONDS"] = "0"
    print(json.dumps(asyncio.run(_measure(args.requests, args.warmup))))
    return 0


async def _measure(requests: int, warmup: int) -> dict[str, float]:
    import httpx

    from server.app import create_app
    from tests import factories
    from tests.api import gid

    app = create_app()
    async with app.router.lifespan_context(app):
        buyer, _, order = await factories.confirmed_order()
        body = {"query": QUERY, "variables": {"id": gid("Order", order.id)}}
        headers = {"Authorization": f"Bearer {buyer.token}"}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            for _ in range(warmup):
                answer = await client.post("/graphql", json=body, headers=headers)
            if answer.status_code != 200 or b'"errors"' in answer.content:
                raise SystemExit(f"order status failed: {answer.text}")
            cpu, wall = time.process_time(), time.perf_counter()
            for _ in range(requests):
                await client.post("/graphql", json=body, headers=headers)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {
        "requests": requests,
        "cpu_us_per_request": round(cpu / requests * 1e6),
        "wall_us_per_request": round(wall / requests * 1e6),
    }
