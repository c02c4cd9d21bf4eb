"""Prepared operations (resolvers/prepared.py): a text seen before and valid skips the
extensions, and answers byte for byte as the full path does; anything else takes the
full path every time."""

from __future__ import annotations

import json
from typing import Any

import pytest
import strawberry
from strawberry.asgi import GraphQL

from models import suppliers
from models.tables import ApiKey
from tests import factories
from tests.api import Api, bearer, codes, gid

pytest_plugins = ("tests.api_plugin",)

ORDER = """query OrderStatus($id: ID!) {
  order(id: $id) { id status supplier { legalName } money { paid { amount currency } }
                   events { kind newStatus reason } }
}
query Viewer { viewer { role } }"""


@pytest.fixture
def full_runs(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """The query texts that took Strawberry's full path (extensions, validation)."""
    runs: list[str | None] = []
    original = strawberry.Schema.execute

    async def counted(self: Any, query: str | None, *args: Any, **kwargs: Any) -> Any:
        runs.append(query)
        return await original(self, query, *args, **kwargs)

    monkeypatch.setattr(strawberry.Schema, "execute", counted)
    return runs


async def _twice(api: Api, body: dict[str, Any], token: str | None = None) -> list[bytes]:
    out = []
    for _ in range(2):
        response = await api.http("POST", json=body, headers=bearer(token))
        out.append(response.content)
    return out


async def test_a_second_run_is_prepared_and_answers_the_same(
    api: Api, full_runs: list[str | None]
) -> None:
    b, _, order = await factories.confirmed_order()
    body = {
        "query": ORDER,
        "operationName": "OrderStatus",
        "variables": {"id": gid("Order", order.id)},
    }
    first, second = await _twice(api, body, b.token)
    assert full_runs == [ORDER]
    assert first == second
    assert b'"status":"AWAITING_INITIAL_PAYMENT"' in second
    # Another operation of the same document is its own entry, with its own answer.
    viewer = await _twice(api, {**body, "operationName": "Viewer", "variables": {}}, b.token)
    assert viewer[0] == viewer[1] == b'{"data":{"viewer":{"role":"BUYER"}}}'
    assert full_runs == [ORDER, ORDER]


async def test_errors_are_masked_and_coded_errors_kept_on_both_paths(
    api: Api, monkeypatch: pytest.MonkeyPatch, full_runs: list[str | None]
) -> None:
    async def broken(*_: object, **__: object) -> suppliers.SupplierPage:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(suppliers, "search_suppliers", broken)
    masked = await _twice(api, {"query": "{ suppliers { edges { cursor } } }"})
    assert masked[0] == masked[1]
    assert b"Internal error." in masked[1] and b"secret" not in masked[1]
    coded = await _twice(api, {"query": "{ suppliers(first: 101) { totalCount } }"})
    assert coded[0] == coded[1] and b"PAGE_SIZE_OUT_OF_RANGE" in coded[1]
    assert len(full_runs) == 2  # once each


async def test_invalid_or_unknown_operations_are_never_prepared(
    api: Api, full_runs: list[str | None]
) -> None:
    invalid = await _twice(api, {"query": "{ viewr { role } }"})
    assert invalid[0] == invalid[1] and b"Cannot query field" in invalid[1]
    unknown = await _twice(api, {"query": ORDER, "operationName": "Nope"})
    assert unknown[0] == unknown[1]
    assert json.loads(unknown[1])["errors"] == [
        {"message": 'Unknown operation named "Nope".', "extensions": {"code": "BAD_REQUEST"}}
    ]
    assert len(full_runs) == 4


async def test_a_prepared_mutation_is_still_refused_over_get(
    api: Api, full_runs: list[str | None]
) -> None:
    buyer = await factories.buyer()
    mutation = 'mutation { createApiKey(input: {name: "x", scopes: [READ]}) { secret } }'
    response = await api.http("POST", json={"query": mutation}, headers=bearer(buyer.token))
    assert b'"secret":"' in response.content
    again = await api.http("POST", json={"query": mutation}, headers=bearer(buyer.token))
    assert b'"secret":"' in again.content and full_runs == [mutation]
    over_get = await api.http("GET", params={"query": mutation}, headers=bearer(buyer.token))
    assert over_get.status_code == 405
    assert await ApiKey.count() == 2


@pytest.fixture
def view_runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Requests that went through Strawberry's HTTP view (server/direct.py skips it)."""
    runs: list[str] = []
    original = GraphQL.run

    async def counted(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        runs.append(request.method)
        return await original(self, request, *args, **kwargs)

    monkeypatch.setattr(GraphQL, "run", counted)
    return runs


def _answer(response: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    headers = [(k, v) for k, v in response.headers.items() if k != "x-request-id"]
    return response.status_code, headers, response.content


async def test_a_prepared_operation_skips_the_http_view_and_answers_the_same(
    api: Api, view_runs: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    b, _, order = await factories.confirmed_order()
    bodies: list[dict[str, Any]] = [
        {
            "query": ORDER,
            "operationName": "OrderStatus",
            "variables": {"id": gid("Order", order.id)},
        },
        {"query": ORDER, "operationName": "Viewer", "extensions": {}},
        # An error the resolver raises (masked), and a business failure returned as data.
        {"query": "{ suppliers { edges { cursor } } }", "variables": None},
        {
            "query": 'mutation($id: ID!) { cancelOrder(input: {orderId: $id, reason: "x"}) '
            "{ errors { code } } }",
            "variables": {"id": gid("Order", 999_999)},
        },
    ]

    async def broken(*_: object, **__: object) -> suppliers.SupplierPage:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(suppliers, "search_suppliers", broken)
    for body in bodies:
        first = await api.http("POST", json=body, headers=bearer(b.token))
        assert view_runs == ["POST"], body
        second = await api.http("POST", json=body, headers=bearer(b.token))
        assert view_runs == ["POST"], body  # the direct route answered
        assert _answer(first) == _answer(second)
        assert first.headers["x-request-id"] != second.headers["x-request-id"]
        view_runs.clear()
    assert b"secret" not in second.content


async def test_what_the_direct_route_does_not_take_goes_to_the_view(
    api: Api, view_runs: list[str]
) -> None:
    buyer = await factories.buyer()
    viewer = {"query": "{ viewer { role } }"}
    await api.http("POST", json=viewer, headers=bearer(buyer.token))
    view_runs.clear()
    refused = [
        # The same prepared text, but a body the view refuses, each with its own reason.
        ({**viewer, "variables": [1]}, 400, b"`variables` must be an object"),
        ({**viewer, "extensions": "x"}, 400, b"`extensions` must be an object"),
        ([viewer, viewer], 400, b"Batching is not enabled"),
    ]
    for body, status, text in refused:
        response = await api.http("POST", json=body, headers=bearer(buyer.token))
        assert (response.status_code, text in response.content) == (status, True), body
        assert codes(response.json()["errors"]) == ["BAD_REQUEST"]  # JSON, as every refusal
    broken = await api.http(
        "POST",
        content=b"{not json",
        headers={**bearer(buyer.token), "content-type": "application/json"},
    )
    assert broken.status_code == 400
    assert broken.json()["errors"] == [
        {"message": "Unable to parse request body as JSON", "extensions": {"code": "BAD_REQUEST"}}
    ]
    assert view_runs == ["POST"] * 4
