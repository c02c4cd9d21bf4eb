"""Selection plans (resolvers/plans.py) answer exactly as graphql-core does: each query
runs with plans and without, twice each (the second run uses the plans the first made),
and the results must be equal, errors, paths and null propagation included. "Without"
turns off both the object plans and the root plan of single-root queries."""

from __future__ import annotations

import asyncio
import enum
import inspect
from typing import Any

import pytest
import strawberry
from graphql import ExecutionResult, GraphQLObjectType, execute, parse

from resolvers.fast_fields import thin_resolvers
from resolvers.plans import PlannedExecutionContext, _RootPlan
from tests import factories
from tests.api import Api, bearer, gid

pytest_plugins = ("tests.api_plugin",)


@strawberry.interface
class Named:
    name: str


@strawberry.type
class Tag(Named):
    weight: int


@strawberry.enum
class Size(enum.Enum):
    SMALL = "s"
    LARGE = "l"


@strawberry.type
class Item:
    id: strawberry.ID
    name: str
    tags: list[Tag]
    maybe: int | None = None
    size: Size = Size.LARGE

    @strawberry.field
    def price(self, factor: int = 1) -> int:
        return 10 * factor

    @strawberry.field
    def broken(self) -> str | None:
        raise RuntimeError("broken resolver")

    @strawberry.field
    def must(self) -> str:
        return None  # type: ignore[return-value]  # a non-null field answering null

    @strawberry.field
    async def later(self) -> str:
        await asyncio.sleep(0)
        return f"later {self.name}"

    @strawberry.field
    def named(self) -> Named:
        return self.tags[0]


def _items() -> list[Item]:
    return [
        Item(id=strawberry.ID(str(i)), name=f"item {i}", tags=[Tag(name=f"t{i}", weight=i)])
        for i in range(3)
    ]


@strawberry.type
class Query:
    @strawberry.field
    async def items(self) -> list[Item]:
        return _items()

    @strawberry.field
    async def item(self) -> Item | None:
        return _items()[1]

    @strawberry.field
    def item_at(self, index: int) -> Item:  # synchronous, with an argument
        return _items()[index]  # out of range: an error, and data null (non-null)

    @strawberry.field
    async def fails(self) -> Item | None:
        raise RuntimeError("the root resolver failed")

    @strawberry.field
    async def fails_non_null(self) -> Item:
        raise RuntimeError("the non-null root resolver failed")


def _schema() -> strawberry.Schema:
    schema = strawberry.Schema(Query)
    thin_resolvers(schema._schema, schema.config, schema.schema_converter.scalar_registry)
    return schema


async def _execute(
    schema: strawberry.Schema, query: str, variables: dict[str, Any] | None = None
) -> ExecutionResult:
    """As resolvers/prepared.py runs a prepared operation: graphql-core's execute with
    the planning execution context, no middleware."""
    result = execute(
        schema._schema,
        parse(query),
        variable_values=variables,
        executor_class=PlannedExecutionContext,
    )
    return await result if inspect.isawaitable(result) else result


QUERIES = [
    "{ items { id name tags { name weight __typename } price } }",
    "{ a: item { n: name, p: price(factor: 3) ...F } b: item { name } } "
    "fragment F on Item { tags { weight } id }",
    "{ items { name broken } }",  # an error in a nullable field
    "{ items { name must } }",  # null in a non-null field: the item becomes null
    "{ item { name tags { name } later } }",  # an async resolver inside the selection
    "{ item { named { name ... on Tag { weight } } } }",  # an interface
    "query($x: Boolean!) { item { name maybe @include(if: $x) } }",
    # Root fields the root plan takes, and their errors and null propagation.
    "{ item { name size tags { name } } }",
    "query($i: Int!) { itemAt(index: $i) { name size } }",
    "{ itemAt(index: 7) { name } }",
    "{ fails { name } }",
    "{ failsNonNull { name } }",
    "{ __typename }",
    "query Q { ...R } fragment R on Query { item { name } }",
]


@pytest.mark.parametrize("query", QUERIES)
async def test_plans_answer_as_graphql_core_does(
    query: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    schema = _schema()
    variables = {"x": True, "i": 2}

    async def run() -> tuple[Any, Any]:
        result = await _execute(schema, query, variables)
        errors = [(e.message, e.path) for e in result.errors or []]
        return result.data, errors

    planned = [await run(), await run()]
    assert PlannedExecutionContext._plans  # plans were made (and used the second time)
    _without_plans(monkeypatch)
    assert [await run(), await run()] == planned
    assert planned[0] == planned[1]


def _without_plans(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(PlannedExecutionContext, "_plan", lambda *_: None)
    monkeypatch.setattr(PlannedExecutionContext, "_root", lambda *_: None)


async def test_a_single_root_field_is_run_by_its_root_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    schema = _schema()
    calls = []
    run = _RootPlan.run

    async def counted(self: _RootPlan, ex: PlannedExecutionContext) -> ExecutionResult:
        calls.append(self.key)
        return await run(self, ex)

    monkeypatch.setattr(_RootPlan, "run", counted)
    await _execute(schema, "{ first: item { name } }")
    await _execute(schema, "{ a: item { name } b: item { name } }")  # two: graphql-core's
    await _execute(schema, "query($x: Boolean!) { item @include(if: $x) { name } }", {"x": True})
    assert calls == ["first"]


async def test_a_selection_with_an_awaitable_is_left_to_graphql_core() -> None:
    schema = _schema()
    query = "{ item { name later } }"
    for _ in range(2):
        result = await _execute(schema, query)
        assert result.data == {"item": {"name": "item 1", "later": "later item 1"}}
    item = schema._schema.type_map["Item"]
    assert isinstance(item, GraphQLObjectType)
    plans = PlannedExecutionContext._plans
    assert any(key[0] == id(item) and plan is None for key, plan in plans.items())


@pytest.mark.parametrize("node", [" node(id: $id) { id }", ""])  # two root fields, one
async def test_the_order_status_is_byte_identical_with_and_without_plans(
    node: str, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    b, _, order = await factories.confirmed_order()
    body = {
        "query": "query($id: ID!) { order(id: $id) { id __typename status "
        "supplier { id legalName country } money { paid { amount currency } "
        "held { amount } } events { kind oldStatus newStatus actorKind reason at } "
        "lines { productName quantity } }" + node + " }",
        "variables": {"id": gid("Order", order.id)},
    }
    planned = [(await api.http("POST", json=body, headers=bearer(b.token))).content for _ in "ab"]
    _without_plans(monkeypatch)
    plain = (await api.http("POST", json=body, headers=bearer(b.token))).content
    assert planned == [plain, plain]
    assert b'"status":"AWAITING_INITIAL_PAYMENT"' in plain
