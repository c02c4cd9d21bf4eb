"""/metrics against real uvicorn gateways: operations by name, GraphQL and business error
codes, open subscriptions, deadline sweeps and the ledger check."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from gql import Client, GraphQLRequest
from gql.transport.websockets import WebsocketsTransport
from prometheus_client.parser import text_string_to_metric_families

from models import clock, ledger
from models.db import write_transaction
from tests import factories
from tests.api import Api, Server, cli_env, gid, make_app, start_server, wait_ready

pytest_plugins = ("tests.api_plugin",)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def scrape(server: Server) -> Samples:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{server.base}/metrics", timeout=5)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


async def until(server: Server, done: Callable[[Samples], bool]) -> Samples:
    """Scrape until `done` holds (the server works on its own time: poll, never sleep)."""
    async with asyncio.timeout(20):
        while True:
            samples = await scrape(server)
            if done(samples):
                return samples
            await asyncio.sleep(0.1)


async def post(server: Server, query: str, token: str | None = None, **extra: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{server.base}/graphql", json={"query": query, **extra}, headers=headers, timeout=10
        )
    return response.json()


@pytest.fixture(scope="module")
def gateway(database: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One gateway for the module: its metrics only grow, so tests compare before/after."""
    log = tmp_path_factory.mktemp("metrics") / "gateway.log"
    server = start_server(cli_env(), log=log)
    try:
        assert wait_ready(server), log.read_text()
        yield server
    finally:
        server.stop()


OPERATION = "ta_graphql_operation_duration_seconds_count"


async def test_operations_and_error_codes_are_counted(gateway: Server) -> None:
    before = await scrape(gateway)
    for _ in range(2):  # the second run takes the prepared path (resolvers/prepared.py)
        assert (await post(gateway, "query ServerTime { __typename }"))["data"]
    failed = await post(
        gateway,
        "mutation LogIn($email: String!, $password: String!) { login(input: "
        "{email: $email, password: $password}) { token errors { code } } }",
        variables={"email": "nobody@example.com", "password": "not the password"},
    )
    assert failed["data"]["login"]["errors"] == [{"code": "INVALID_CREDENTIALS"}]
    assert (await post(gateway, "{ __typename }"))["data"]
    unknown = await post(gateway, "query Broken { noSuchField }")
    assert unknown["errors"]
    long_name = "Q" * 70
    assert (await post(gateway, f"query {long_name} {{ __typename }}"))["data"]
    for _ in range(2):
        mine = await post(gateway, "query Mine { orders(first: 1) { edges { cursor } } }")
        assert mine["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"

    after = await scrape(gateway)

    def grew(name: str, by: float = 1, **labels: str) -> bool:
        return value(after, name, **labels) - value(before, name, **labels) == by

    assert grew(OPERATION, 2, operation_name="ServerTime", operation_type="query")
    assert grew(OPERATION, 2, operation_name="Mine", operation_type="query")
    assert grew(OPERATION, operation_name="LogIn", operation_type="mutation")
    assert grew(OPERATION, operation_name="anonymous", operation_type="query")
    assert grew(OPERATION, operation_name="other", operation_type="query")  # 70 characters
    assert not any(long_name in dict(labels).get("operation_name", "") for _, labels in after)
    assert grew("ta_business_errors_total", code="INVALID_CREDENTIALS")
    assert grew("ta_graphql_errors_total", code="GRAPHQL_VALIDATION_FAILED")
    assert grew("ta_graphql_errors_total", 2, code="UNAUTHENTICATED")
    assert value(after, "ta_graphql_operation_duration_seconds_sum",
                 operation_name="ServerTime", operation_type="query") > 0  # fmt: skip


async def test_open_subscriptions_gauge_follows_the_hub(gateway: Server) -> None:
    buyer, _, order = await factories.confirmed_order()
    assert value(await scrape(gateway), "ta_open_subscriptions") == 0
    transport = WebsocketsTransport(
        url=gateway.ws_url,
        init_payload={"Authorization": f"Bearer {buyer.token}"},
        connect_timeout=5,
        ack_timeout=5,
    )
    request = GraphQLRequest(
        "subscription Follow($id: ID!) { orderStatusChanged(orderId: $id) { cursor } }",
        variable_values={"id": gid("Order", order.id)},
    )
    async with Client(transport=transport) as session:
        stream = session.subscribe(request)
        first = asyncio.ensure_future(anext(stream))  # sends the subscribe message
        try:
            await until(gateway, lambda s: value(s, "ta_open_subscriptions") == 1)
        finally:
            first.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await first
            await stream.aclose()
    samples = await until(gateway, lambda s: value(s, "ta_open_subscriptions") == 0)
    assert value(samples, OPERATION, operation_name="Follow", operation_type="subscription") >= 1


async def test_the_ledger_check_runs_at_start_up(gateway: Server) -> None:
    samples = await until(gateway, lambda s: ("ta_ledger_check_ok", frozenset()) in s)
    assert value(samples, "ta_ledger_check_ok") == 1
    assert value(samples, "ta_ledger_check_violations") == 0
    assert value(samples, "ta_ledger_check_timestamp_seconds") > time.time() - 3600


@contextlib.asynccontextmanager
async def scheduled_gateway(tmp_path: Path, **env: str) -> AsyncIterator[Server]:
    server = start_server(cli_env(**env), log=tmp_path / "gateway.log")
    try:
        assert wait_ready(server), (tmp_path / "gateway.log").read_text()
        yield server
    finally:
        server.stop()


async def test_deadline_sweeps_are_counted_by_kind(tmp_path: Path) -> None:
    # Confirmed 8 days ago (by the test's clock): its payment deadline has passed.
    clock.set_clock(clock.FrozenClock(clock.now() - dt.timedelta(days=8)))
    await factories.confirmed_order()
    clock.reset_clock()
    async with scheduled_gateway(tmp_path, TA_SCHEDULER_INTERVAL_SECONDS="0.2") as server:
        samples = await until(
            server, lambda s: value(s, "ta_deadline_sweep_items_total", kind="order_cancelled") == 1
        )
        assert value(samples, "ta_deadline_sweeps_total", outcome="ok") >= 1
        assert value(samples, "ta_deadline_sweeps_total", outcome="failed") == 0


@pytest.mark.breaks_the_books
async def test_the_ledger_check_gauge_drops_to_zero_on_broken_books(tmp_path: Path) -> None:
    _, _, order = await factories.confirmed_order()
    async with scheduled_gateway(tmp_path, TA_LEDGER_CHECK_MINUTES="0.005") as server:
        await until(server, lambda s: value(s, "ta_ledger_check_ok") == 1)
        async with write_transaction():  # a fee paid out of an inspection that never was
            await ledger.post(
                ledger.PostingKind.FEE_PAYOUT, "USD",
                [ledger.Leg(ledger.fee_escrow(999_999), 1_00),
                 ledger.Leg(ledger.inspector_payable(1), -1_00)],
                order_id=order.id, at=dt.datetime.now(dt.UTC),
            )  # fmt: skip
        samples = await until(server, lambda s: value(s, "ta_ledger_check_ok") == 0)
        assert value(samples, "ta_ledger_check_violations") >= 1


async def test_metrics_can_be_turned_off_or_guarded_by_a_token() -> None:
    off = Api(make_app(metrics=False))
    assert (await off.http("GET", "/metrics")).status_code == 404
    guarded = Api(make_app(metrics=True, metrics_token="scrape-secret"))
    refused = await guarded.http("GET", "/metrics")
    assert refused.status_code == 401
    wrong = await guarded.http("GET", "/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    allowed = await guarded.http(
        "GET", "/metrics", headers={"Authorization": "Bearer scrape-secret"}
    )
    assert allowed.status_code == 200 and "ta_open_subscriptions" in allowed.text
