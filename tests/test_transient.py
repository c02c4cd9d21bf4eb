"""A busy database is a "try again", never a hang or an internal error: lock and
statement timeouts on PostgreSQL, deadlocks and serialization failures run again a
bounded number of times (models.db.is_transient, resolvers/prepared.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest

from models import accounts
from models.tables import ApiKey
from resolvers.prepared import RETRIES
from tests import factories
from tests.api import Api, Server, bearer, gid, make_app, serving
from tests.conftest import ENGINE, TEST_DATABASE_URL

NEW_KEY = 'mutation { createApiKey(input: {name: "k", scopes: [READ]}) { secret } }'
CANCEL = """mutation($id: ID!) { cancelOrder(input: {orderId: $id, reason: "no"}) {
  order { status } errors { code } } }"""
ORDER = "query($id: ID!) { order(id: $id) { status } }"


def _failing(times: int, error: Exception) -> tuple[list[int], Any]:
    calls: list[int] = []
    original = accounts.create_api_key_for

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) <= times:
            raise error
        return await original(*args, **kwargs)

    return calls, flaky


async def _post(api: Api, query: str, token: str) -> dict[str, Any]:
    answer: dict[str, Any] = (await api.post(query, token)).json()
    return answer


async def test_a_deadlocked_mutation_runs_again_and_succeeds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api, buyer = Api(make_app()), await factories.buyer()
    calls, flaky = _failing(1, asyncpg.exceptions.DeadlockDetectedError("deadlock detected"))
    monkeypatch.setattr(accounts, "create_api_key_for", flaky)
    answer = await _post(api, NEW_KEY, buyer.token)
    assert answer["data"]["createApiKey"]["secret"] and "errors" not in answer
    assert len(calls) == 2 and await ApiKey.count() == 1


async def test_retries_are_bounded_and_end_in_try_again(monkeypatch: pytest.MonkeyPatch) -> None:
    api, buyer = Api(make_app()), await factories.buyer()
    calls, flaky = _failing(99, asyncpg.exceptions.SerializationError("could not serialize"))
    monkeypatch.setattr(accounts, "create_api_key_for", flaky)
    answer = await _post(api, NEW_KEY, buyer.token)
    assert answer["errors"][0]["extensions"] == {"code": "TRY_AGAIN", "retryable": True}
    assert "serialize" not in str(answer)  # the database's words stay inside
    assert len(calls) == 1 + RETRIES and await ApiKey.count() == 0


@pytest.mark.parametrize(
    ("query", "error"),
    [
        # A lock timeout would likely wait as long again: told, not retried.
        (NEW_KEY, asyncpg.exceptions.LockNotAvailableError("lock timeout")),
        # Two root fields: one may have committed before another failed; the client
        # decides (here `a` fails, and its non-null payload ends the operation).
        (
            NEW_KEY.replace("{ createApiKey", "{ a: createApiKey").replace(
                "} }", '} b: createApiKey(input: {name: "l", scopes: [READ]}) { secret } }'
            ),
            asyncpg.exceptions.DeadlockDetectedError("deadlock detected"),
        ),
    ],
)
async def test_what_is_not_run_again(
    monkeypatch: pytest.MonkeyPatch, query: str, error: Exception
) -> None:
    api, buyer = Api(make_app()), await factories.buyer()
    calls, flaky = _failing(1, error)
    monkeypatch.setattr(accounts, "create_api_key_for", flaky)
    answer = await _post(api, query, buyer.token)
    assert answer["errors"][0]["extensions"]["code"] == "TRY_AGAIN", answer
    assert len(calls) == 1  # not run again


@pytest.fixture
def impatient_server(database: None) -> Iterator[Server]:
    with serving(TA_PG_LOCK_TIMEOUT_MS="300") as server:
        yield server


@pytest.mark.skipif(ENGINE != "postgres", reason="PostgreSQL's row locks and lock_timeout")
async def test_a_transaction_stuck_on_a_row_lock_does_not_hang_other_requests(
    impatient_server: Server,
) -> None:
    b, _, stuck = await factories.confirmed_order()
    _, _, free = await factories.confirmed_order(b)
    holder = await asyncpg.connect(TEST_DATABASE_URL)
    try:
        blocking = holder.transaction()
        await blocking.start()
        await holder.execute("SELECT id FROM trade_order WHERE id = $1 FOR UPDATE", stuck.id)
        async with httpx.AsyncClient(base_url=impatient_server.base, timeout=10) as client:

            async def send(query: str, order_id: int) -> dict[str, Any]:
                body = {"query": query, "variables": {"id": gid("Order", order_id)}}
                response = await client.post("/graphql", json=body, headers=bearer(b.token))
                answer: dict[str, Any] = response.json()
                return answer

            # The holder keeps its lock until these are answered: without the lock
            # timeout the first would hang until the client gives up.
            waiting, other, read = await asyncio.gather(
                send(CANCEL, stuck.id), send(CANCEL, free.id), send(ORDER, stuck.id)
            )
        assert waiting["errors"][0]["extensions"] == {"code": "TRY_AGAIN", "retryable": False}
        assert other["data"]["cancelOrder"]["order"]["status"] == "CANCELLED"
        assert read["data"]["order"]["status"] == "AWAITING_INITIAL_PAYMENT"  # reads never wait
        await blocking.rollback()
    finally:
        await holder.close()
    async with httpx.AsyncClient(base_url=impatient_server.base, timeout=10) as client:
        body = {"query": CANCEL, "variables": {"id": gid("Order", stuck.id)}}
        answer = (await client.post("/graphql", json=body, headers=bearer(b.token))).json()
    assert answer["data"]["cancelOrder"]["order"]["status"] == "CANCELLED"  # once free


async def test_a_credential_look_up_that_meets_an_outage_is_told_to_try_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The bearer token is looked up before GraphQL runs: a database restart there is a
    503 TRY_AGAIN with Retry-After, not an internal error."""
    buyer = await factories.buyer()

    async def away(*_: Any, **__: Any) -> Any:
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr("server.auth.authenticate", away)
    response = await Api(make_app()).post(ORDER, buyer.token)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json()["errors"][0]["extensions"]["code"] == "TRY_AGAIN"
