"""Prepared operations (resolvers/prepared.py): a text seen before and valid skips the
extensions, and answers byte for byte as the full path does; anything else takes the
full path every time."""

from __future__ import annotations

from typing import Any

import pytest
import strawberry

from models import suppliers
from models.tables import ApiKey
from tests import factories
from tests.api import Api, bearer, gid

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
    assert unknown[0] == unknown[1] == b'Unknown operation named "Nope".'
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
