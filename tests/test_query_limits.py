"""Request-dependent limits (resolvers/query_limits.py): query cost, where connections
count `first` times, and who may introspect."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from models import accounts, suppliers
from tests import factories
from tests.api import Api, bearer, codes, make_app

pytest_plugins = ("tests.api_plugin",)

NESTED = """query Nested($outer: Int!, $inner: Int!) {
  orders(first: $outer) { edges { node { id messages(first: $inner) {
    edges { node { body } } } } } }
}"""
INTROSPECT = "{ __schema { queryType { name } } }"
NEW_KEY = 'mutation { createApiKey(input: {name: "p", scopes: [READ]}) { secret } }'


async def _answer(api: Api, query: str, token: str | None, **variables: Any) -> dict[str, Any]:
    body = {"query": query, "variables": variables}
    response = await api.http("POST", json=body, headers=bearer(token))
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def test_nested_connections_multiply_and_the_cost_is_told(api: Api) -> None:
    buyer = await factories.buyer()
    # orders 1 + n x (edges 1 + node 1 + id 1 + messages (1 + m x (edges, node, body))):
    # 341 at 10 and 10, 30401 at 100 and 100
    small = await _answer(api, NESTED, buyer.token, outer=10, inner=10)
    assert small == {"data": {"orders": {"edges": []}}}
    refused = await _answer(api, NESTED, buyer.token, outer=100, inner=100)
    assert refused["data"] is None
    [error] = refused["errors"]
    assert error["extensions"] == {"code": "QUERY_TOO_COSTLY", "cost": 30401, "max": 20000}
    assert "30401" in error["message"]


async def test_literal_and_default_page_sizes_are_priced(api: Api) -> None:
    buyer = await factories.buyer()
    tight = Api(make_app(max_query_cost=60))
    literal = "{ orders(first: 20) { edges { node { id } } } }"  # 1 + 20 x 3 = 61
    defaulted = "{ orders { edges { node { id } } } }"  # `first` defaults to 20
    for query in (literal, defaulted):
        assert codes((await _answer(tight, query, buyer.token))["errors"]) == ["QUERY_TOO_COSTLY"]
        assert (await _answer(api, query, buyer.token))["data"] == {"orders": {"edges": []}}
    # Repeated (the price is kept per operation), still refused.
    assert codes((await _answer(tight, literal, buyer.token))["errors"]) == ["QUERY_TOO_COSTLY"]


@pytest.mark.parametrize(
    ("mode", "anonymous", "buyer", "partner"),
    [
        ("on", True, True, True),
        ("authenticated", False, True, True),
        ("partners", False, False, True),
        ("off", False, False, False),
    ],
)
async def test_introspection_by_setting(
    mode: str, anonymous: bool, buyer: bool, partner: bool
) -> None:
    api = Api(make_app(introspection=mode))
    person = await factories.buyer()
    key = (await _answer(Api(make_app()), NEW_KEY, person.token))["data"]["createApiKey"]
    for token, allowed in ((None, anonymous), (person.token, buyer), (key["secret"], partner)):
        answer = await _answer(api, INTROSPECT, token)
        if allowed:
            assert answer == {"data": {"__schema": {"queryType": {"name": "Query"}}}}
        else:
            assert codes(answer["errors"]) == ["INTROSPECTION_DISABLED"]
        # __typename is not introspection.
        assert await _answer(api, "{ __typename }", token) == {"data": {"__typename": "Query"}}


async def test_a_slow_query_is_stopped_but_a_slow_mutation_finishes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api = Api(make_app(execution_timeout_seconds=0.3))
    buyer = await factories.buyer()
    search, create = suppliers.search_suppliers, accounts.create_api_key_for

    async def slow_search(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(5)
        return await search(*args, **kwargs)

    async def slow_create(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0.6)  # e.g. waiting on a payment provider
        return await create(*args, **kwargs)

    monkeypatch.setattr(suppliers, "search_suppliers", slow_search)
    monkeypatch.setattr(accounts, "create_api_key_for", slow_create)
    stopped = await _answer(api, "{ suppliers { totalCount } }", buyer.token)
    assert codes(stopped["errors"]) == ["EXECUTION_TIMEOUT"]
    created = await _answer(api, NEW_KEY, buyer.token)
    assert created["data"]["createApiKey"]["secret"]
