"""The ceiling: a bare Starlette endpoint doing the gateway's work for the two benchmark
queries without GraphQL. Same request body (it reads only `variables`), same bearer-token
check, same reads (bench/order_reads.py), same JSON. Whatever the gateway spends beyond
this is the price of the API layer.

Run it as its own process: `BENCH_READS_ENGINE=sqlite|postgres BENCH_READS_LOCATION=…
uvicorn --factory bench.ceiling_app:create_app` (bench/order_servers.py does).
"""

from __future__ import annotations

import json
import os
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bench import order_reads as r


def _answer(data: dict[str, Any]) -> Response:
    return Response(r.dumps({"data": data}), media_type="application/json")


def _refused(e: r.Unauthenticated) -> Response:
    return JSONResponse({"errors": [{"message": str(e)}]}, status_code=401)


def create_app() -> Starlette:
    reads = r.Reads(os.environ["BENCH_READS_ENGINE"], os.environ["BENCH_READS_LOCATION"])

    async def order_status(request: Request) -> Response:
        variables = json.loads(await request.body())["variables"]
        try:
            caller = await reads.caller(request.headers.get("authorization"))
        except r.Unauthenticated as e:
            return _refused(e)
        order_id = r.row_id_of(variables["id"], "Order")
        o = await reads.order(caller, order_id) if order_id is not None else None
        if o is None:
            return _answer({"order": None})
        suppliers, money, events = await reads.gather(
            reads.suppliers([o["supplier"]]), reads.money([o["id"]]), reads.events([o["id"]])
        )
        return _answer(
            {
                "order": {
                    "id": r.global_id("Order", o["id"]),
                    "status": o["status"],
                    "supplier": r.supplier_json(suppliers[o["supplier"]]),
                    "money": r.money_json(money.get(o["id"]), o["currency"]),
                    "events": [r.event_json(e) for e in events[o["id"]]],
                }
            }
        )

    async def order_list(request: Request) -> Response:
        variables = json.loads(await request.body())["variables"]
        try:
            caller = await reads.caller(request.headers.get("authorization"))
        except r.Unauthenticated as e:
            return _refused(e)
        rows, has_next = await reads.orders(caller, int(variables["first"]))
        ids = [o["id"] for o in rows]
        buyers, suppliers, payments = await reads.gather(
            reads.companies(sorted({o["buyer"] for o in rows})),
            reads.suppliers(sorted({o["supplier"] for o in rows})),
            reads.payments(ids),
        )
        cursors = [r.global_id("order", i) for i in ids]
        edges = [
            {
                "node": {
                    "id": r.global_id("Order", o["id"]),
                    "status": o["status"],
                    "total": r.money(o["total_minor"], o["currency"]),
                    "buyer": r.company_json(buyers[o["buyer"]]),
                    "supplier": r.supplier_json(suppliers[o["supplier"]]),
                    "payments": [r.payment_json(p) for p in payments[o["id"]]],
                }
            }
            for o in rows
        ]
        page = {"hasNextPage": has_next, "endCursor": cursors[-1] if cursors else None}
        return _answer({"orders": {"edges": edges, "pageInfo": page}})

    return r.serving(
        reads,
        Route("/order-status", order_status, methods=["POST"]),
        Route("/order-list", order_list, methods=["POST"]),
    )
