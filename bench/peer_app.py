"""The peer: a minimal schema-first GraphQL server, graphql-core on Starlette.

What a careful hand-rolled Python GraphQL server does for the benchmark's two queries:
`build_schema` from a small SDL, resolvers over the same reads as the ceiling
(bench/order_reads.py), a per-request batching loader for each relation, and parse plus
validation cached by query text. Same request, same JSON as the gateway's `data`.

Run it as its own process: `BENCH_READS_ENGINE=… BENCH_READS_LOCATION=…
uvicorn --factory bench.peer_app:create_app` (bench/order_servers.py does).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import inspect
import json
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar

from graphql import (
    DocumentNode,
    ExecutionResult,
    GraphQLError,
    GraphQLObjectType,
    GraphQLSchema,
    build_schema,
    execute,
    parse,
    validate,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bench import order_reads as r

SDL = """
type Query {
  order(id: ID!): Order
  orders(first: Int! = 20): OrderConnection!
}
type OrderConnection { edges: [OrderEdge!]! pageInfo: PageInfo! }
type OrderEdge { node: Order! }
type PageInfo { hasNextPage: Boolean! endCursor: String }
type Order {
  id: ID!
  status: String!
  total: Money!
  buyer: Company!
  supplier: Supplier!
  money: OrderMoney!
  events: [OrderEvent!]!
  payments: [Payment!]!
}
type Money { amount: String! currency: String! }
type OrderMoney { paid: Money! held: Money! released: Money! refunded: Money! }
type Company { id: ID! legalName: String! }
type Supplier { id: ID! legalName: String! country: String! }
type OrderEvent {
  kind: String! oldStatus: String newStatus: String! actorKind: String! reason: String!
  at: String!
}
type Payment {
  id: ID! method: String! status: String! amount: Money! fee: Money!
  createdAt: String! settledAt: String
}
"""

K = TypeVar("K")
V = TypeVar("V")


class Loader(Generic[K, V]):
    """Keys asked for in the same turn of the event loop, read in one statement."""

    def __init__(self, fetch: Callable[[list[K]], Awaitable[Mapping[K, V]]], missing: V) -> None:
        self.fetch, self.missing = fetch, missing
        self.futures: dict[K, asyncio.Future[V]] = {}
        self.pending: list[K] = []

    def load(self, key: K) -> asyncio.Future[V]:
        found = self.futures.get(key)
        if found is not None:
            return found
        loop = asyncio.get_running_loop()
        future: asyncio.Future[V] = loop.create_future()
        self.futures[key] = future
        if not self.pending:
            loop.call_soon(lambda: asyncio.ensure_future(self._dispatch()))
        self.pending.append(key)
        return future

    async def _dispatch(self) -> None:
        keys, self.pending = self.pending, []
        try:
            found = await self.fetch(keys)
        except Exception as e:
            for k in keys:
                self.futures[k].set_exception(e)
            return
        for k in keys:
            self.futures[k].set_result(found.get(k, self.missing))


@dataclasses.dataclass
class Context:
    reads: r.Reads
    caller: r.Caller

    @functools.cached_property
    def suppliers(self) -> Loader[int, dict[str, Any] | None]:
        return Loader(self.reads.suppliers, None)

    @functools.cached_property
    def companies(self) -> Loader[int, dict[str, Any] | None]:
        return Loader(self.reads.companies, None)

    @functools.cached_property
    def money(self) -> Loader[int, dict[str, Any] | None]:
        return Loader(self.reads.money, None)

    @functools.cached_property
    def events(self) -> Loader[int, list[dict[str, Any]]]:
        return Loader(self.reads.events, [])

    @functools.cached_property
    def payments(self) -> Loader[int, list[dict[str, Any]]]:
        return Loader(self.reads.payments, [])


# Resolvers get (parent, info, **arguments); parents are the database rows.
async def _order(_: None, info: Any, id: str) -> dict[str, Any] | None:
    ctx: Context = info.context
    order_id = r.row_id_of(id, "Order")
    return await ctx.reads.order(ctx.caller, order_id) if order_id is not None else None


async def _orders(_: None, info: Any, first: int) -> dict[str, Any]:
    ctx: Context = info.context
    rows, has_next = await ctx.reads.orders(ctx.caller, first)
    end = r.global_id("order", rows[-1]["id"]) if rows else None
    return {
        "edges": [{"node": o} for o in rows],
        "pageInfo": {"hasNextPage": has_next, "endCursor": end},
    }


async def _supplier(o: dict[str, Any], info: Any) -> dict[str, Any]:
    found = await info.context.suppliers.load(o["supplier"])
    return r.supplier_json(found)


async def _buyer(o: dict[str, Any], info: Any) -> dict[str, Any]:
    found = await info.context.companies.load(o["buyer"])
    return r.company_json(found)


async def _money(o: dict[str, Any], info: Any) -> dict[str, Any]:
    return r.money_json(await info.context.money.load(o["id"]), o["currency"])


async def _events(o: dict[str, Any], info: Any) -> list[dict[str, Any]]:
    return [r.event_json(e) for e in await info.context.events.load(o["id"])]


async def _payments(o: dict[str, Any], info: Any) -> list[dict[str, Any]]:
    return [r.payment_json(p) for p in await info.context.payments.load(o["id"])]


def make_schema() -> GraphQLSchema:
    schema = build_schema(SDL)

    def resolve(type_name: str, field: str, fn: Callable[..., Any]) -> None:
        t = schema.type_map[type_name]
        assert isinstance(t, GraphQLObjectType)
        t.fields[field].resolve = fn

    resolve("Query", "order", _order)
    resolve("Query", "orders", _orders)
    resolve("Order", "id", lambda o, _: r.global_id("Order", o["id"]))
    resolve("Order", "total", lambda o, _: r.money(o["total_minor"], o["currency"]))
    resolve("Order", "supplier", _supplier)
    resolve("Order", "buyer", _buyer)
    resolve("Order", "money", _money)
    resolve("Order", "events", _events)
    resolve("Order", "payments", _payments)
    return schema


def create_app() -> Starlette:
    reads = r.Reads(os.environ["BENCH_READS_ENGINE"], os.environ["BENCH_READS_LOCATION"])
    schema = make_schema()

    @functools.lru_cache(maxsize=256)
    def document(query: str) -> DocumentNode | Sequence[GraphQLError]:
        try:
            doc = parse(query)
        except GraphQLError as e:
            return [e]
        errors = validate(schema, doc)
        return errors if errors else doc

    async def graphql(request: Request) -> Response:
        body = json.loads(await request.body())
        try:
            caller = await reads.caller(request.headers.get("authorization"))
        except r.Unauthenticated as e:
            return JSONResponse({"errors": [{"message": str(e)}]}, status_code=401)
        doc = document(body["query"])
        if not isinstance(doc, DocumentNode):
            return JSONResponse({"errors": [e.formatted for e in doc]}, status_code=400)
        result = execute(
            schema,
            doc,
            context_value=Context(reads, caller),
            variable_values=body.get("variables"),
        )
        if inspect.isawaitable(result):
            result = await result
        assert isinstance(result, ExecutionResult)
        out: dict[str, Any] = {"data": result.data}
        if result.errors:
            out["errors"] = [e.formatted for e in result.errors]
        return Response(r.dumps(out), media_type="application/json")

    return r.serving(reads, Route("/graphql", graphql, methods=["POST"]))
