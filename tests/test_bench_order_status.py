"""The order benchmarks compare like with like: for the same order and the same buyer,
the ceiling (bare Starlette) and the peer (graphql-core) answer exactly the gateway's
`data`, on this engine."""

from __future__ import annotations

import json
import os
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from bench import ceiling_app, order_reads, peer_app
from models import db
from tests import factories
from tests.api import bearer, gid, make_app
from tests.conftest import ENGINE
from tests.test_api_payments import pay, release

pytest_plugins = ("tests.api_plugin",)


async def _post(app: Starlette, path: str, body: dict[str, Any], token: str) -> Any:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench.test") as client:
        headers = {**bearer(token), "content-type": "application/json"}
        resp = await client.post(path, content=json.dumps(body), headers=headers)
    assert resp.status_code == 200, resp.text
    return resp.json()


async def test_ceiling_and_peer_answer_what_the_gateway_does(
    api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    buyer, _, order = await factories.confirmed_order()
    await pay(api, buyer.token, order, "1500.00", "bench-pay")
    await release(api, buyer.token, order, "bench-release", "500.00")
    await factories.confirmed_order(buyer)  # a second order, unpaid: no payments, no money
    location = os.environ["DATABASE_URL"] if ENGINE == "postgres" else str(db.default_sqlite_path())
    monkeypatch.setenv("BENCH_READS_ENGINE", ENGINE)
    monkeypatch.setenv("BENCH_READS_LOCATION", location)
    status = {"query": order_reads.ORDER_STATUS, "variables": {"id": gid("Order", order.id)}}
    listing = {"query": order_reads.ORDER_LIST, "variables": {"first": 10}}

    gateway = make_app()
    want_status = await _post(gateway, "/graphql", status, buyer.token)
    want_list = await _post(gateway, "/graphql", listing, buyer.token)
    assert "errors" not in want_status and "errors" not in want_list
    assert [e["kind"] for e in want_status["data"]["order"]["events"]][-1] == "FUNDS_RELEASED"
    assert len(want_list["data"]["orders"]["edges"]) == 2

    ceiling, peer = ceiling_app.create_app(), peer_app.create_app()
    async with ceiling.router.lifespan_context(ceiling), peer.router.lifespan_context(peer):
        assert await _post(ceiling, "/order-status", status, buyer.token) == want_status
        assert await _post(ceiling, "/order-list", listing, buyer.token) == want_list
        assert await _post(peer, "/graphql", status, buyer.token) == want_status
        assert await _post(peer, "/graphql", listing, buyer.token) == want_list
