"""Protective limits and the HTTP surface: query size, body size, GET, GraphiQL, masking."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from models import db, suppliers
from models.tables import ApiKey
from tests import factories
from tests.api import ROOT, Api, make_app

pytest_plugins = ("tests.api_plugin",)
CONTRACT = (ROOT / "schema.graphql").read_text()

# The deepest path the schema allows today is 8 fields; nothing cycles except introspection.
DEEP = """{ viewer { user { company { supplier { tradeAssurance { limit { amount } } } } } } }"""
DEEP_INTROSPECTION = (
    "{ __schema { types { fields { type { ofType { fields { type { ofType {\n"
    "  fields { type { ofType { fields { name } } } } } } } } } } } } }"
)


def _message(api_errors: list[dict[str, object]]) -> str:
    return " ".join(str(e["message"]) for e in api_errors)


async def test_depth_limit_refuses_deeper_queries() -> None:
    assert await Api(make_app()).data(DEEP) == {"viewer": None}
    errors = await Api(make_app(max_query_depth=5)).errors(DEEP)
    assert "exceeds maximum operation depth of 5" in _message(errors)


async def test_cyclic_introspection_is_refused(api: Api) -> None:
    errors = await api.errors(DEEP_INTROSPECTION)
    assert "introspection depth" in _message(errors)


async def test_more_than_15_aliases_are_refused(api: Api) -> None:
    fifteen = " ".join(f"a{n}: viewer {{ role }}" for n in range(15))
    assert len(await api.data(f"{{ {fifteen} }}")) == 15
    errors = await api.errors(f"{{ {fifteen} a15: viewer {{ role }} }}")
    assert "aliases" in _message(errors)


async def test_more_than_2000_tokens_are_refused(api: Api) -> None:
    def query(n: int) -> str:  # 16 tokens around n enum values
        values = " ".join(["NONE"] * n)
        return f"{{ suppliers(filter: {{verification: [{values}]}}) {{ totalCount }} }}"

    assert await api.data(query(2000 - 16)) == {"suppliers": {"totalCount": 0}}
    errors = await api.errors(query(2000 - 15))
    assert "more than 2000 tokens" in _message(errors)


async def test_a_body_over_1_mb_is_refused_with_413(api: Api) -> None:
    buyer = await factories.buyer()
    mutation = 'mutation { createApiKey(input: {name: "x", scopes: [READ]}) { secret } }'
    response = await api.http(
        "POST",
        json={"query": mutation + " " * 1_000_000},
        headers={"Authorization": f"Bearer {buyer.token}"},
    )
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "REQUEST_TOO_LARGE"
    assert await ApiKey.count() == 0


async def test_a_streamed_body_over_the_limit_is_refused_without_content_length(
    api: Api,
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"query": "{ viewer { role } }", "pad": "'
        for _ in range(11):
            yield b"x" * 100_000
        yield b'"}'

    response = await api.http(
        "POST", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "REQUEST_TOO_LARGE"


async def test_a_mutation_via_get_is_refused(api: Api) -> None:
    buyer = await factories.buyer()
    mutation = 'mutation { createApiKey(input: {name: "x", scopes: [READ]}) { secret } }'
    response = await api.http(
        "GET", params={"query": mutation}, headers={"Authorization": f"Bearer {buyer.token}"}
    )
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json()["errors"][0]["extensions"]["code"] == "METHOD_NOT_ALLOWED"
    assert await ApiKey.count() == 0
    query = await api.http("GET", params={"query": "{ viewer { role } }"})
    assert query.status_code == 405  # no operation at all over GET


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/graphql", None],
)
async def test_only_json_bodies_are_taken(api: Api, content_type: str | None) -> None:
    # What a cross-site HTML form (or a simple fetch) can send, refused before it runs.
    buyer = await factories.buyer()
    mutation = 'mutation { createApiKey(input: {name: "x", scopes: [READ]}) { secret } }'
    headers = {"Authorization": f"Bearer {buyer.token}"}
    if content_type:
        headers["Content-Type"] = content_type
    body = json.dumps({"query": mutation})
    response = await api.http("POST", content=body, headers=headers)
    assert response.status_code == 415
    assert response.json()["errors"][0]["extensions"]["code"] == "UNSUPPORTED_MEDIA_TYPE"
    assert await ApiKey.count() == 0


@pytest.mark.parametrize(("graphiql", "shown"), [(True, True), (False, False)])
async def test_graphiql_is_served_only_when_enabled(graphiql: bool, shown: bool) -> None:
    response = await Api(make_app(graphiql=graphiql)).http("GET", headers={"Accept": "text/html"})
    assert ("graphiql" in response.text.lower()) is shown
    assert (response.status_code == 200) is shown
    if shown:
        assert response.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize(
    ("environment", "suggested"), [("development", True), ("production", False)]
)
async def test_field_suggestions_only_in_development(environment: str, suggested: bool) -> None:
    errors = await Api(make_app(environment=environment)).errors("{ viewr { role } }")
    message = _message(errors)
    assert "Cannot query field 'viewr'" in message
    assert ("Did you mean" in message) is suggested


async def test_unexpected_exceptions_are_masked(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(*_: object, **__: object) -> suppliers.SupplierPage:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(suppliers, "search_suppliers", broken)
    errors = await api.errors("{ suppliers { edges { cursor } } }")
    assert [e["message"] for e in errors] == ["Internal error."]
    assert "secret" not in str(errors)


async def test_healthz_and_readyz(api: Api) -> None:
    health = await api.http("GET", "/healthz")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    ready = await api.http("GET", "/readyz")
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})


async def test_readyz_reports_pending_migrations_and_database_failures(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def pending() -> list[str]:
        return ["2099-01-01T00:00:00"]

    monkeypatch.setattr(db, "pending_migrations", pending)
    response = await api.http("GET", "/readyz")
    assert response.status_code == 503
    assert response.json()["status"] == "migrations pending"

    async def unreachable() -> None:
        raise OSError("connection refused")

    monkeypatch.setattr(db, "ping", unreachable)
    response = await api.http("GET", "/readyz")
    assert (response.status_code, response.json()["status"]) == (503, "unavailable")
    assert (await api.http("GET", "/healthz")).status_code == 200


async def test_the_contract_is_served(api: Api) -> None:
    response = await api.http("GET", "/schema.graphql")
    assert response.status_code == 200
    assert response.text == CONTRACT
    assert response.headers["content-type"].startswith("application/graphql")


async def test_batched_requests_are_refused(api: Api) -> None:
    batch = [{"query": "{ viewer { role } }"}] * 50
    response = await api.http("POST", json=batch)
    assert response.status_code == 400
    assert "batch" in response.text.lower()
