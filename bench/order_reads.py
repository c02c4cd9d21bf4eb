"""The database reads of an order-status and an order-list request, straight on the driver.

The ceiling (bench/ceiling_app.py) and the graphql-core peer (bench/peer_app.py) both
read through this module, so what separates them from each other is GraphQL, and from
the gateway is everything the gateway does on top of the same reads. The statements are
the gateway's own where it writes them out (the token look-up, the supplier and the money
queries are imported from models/) and the same rows and conditions where Piccolo builds
them (the order, its events, companies, payments).

SQLite: one connection kept open, queried on the event loop's thread (WAL readers take
microseconds; no thread hop). PostgreSQL: an asyncpg pool the size of the gateway's.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import datetime as dt
import functools
import hashlib
import json
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from models.accounts import _SESSION_SQL  # the gateway's token look-up, verbatim
from models.events import MESSAGE_SENT
from models.ledger import _money_query
from models.money import Money
from models.sql import columns
from models.suppliers import _COLUMNS as SUPPLIER_COLUMNS
from models.tables import Company, Order, OrderEvent, Payment
from server import json_codec

SESSION_CACHE_S = 2.0  # as the gateway's (TA_SESSION_CACHE_SECONDS): same authentication
PG_POOL_MAX = int(os.environ.get("TA_PG_POOL_MAX", "10"))  # the gateway's, as it reads it
SQLITE_TIMEOUT_S = 5.0


@dataclasses.dataclass(frozen=True, slots=True)
class Caller:
    company_id: int
    role: str
    kind: str  # the company's kind


class Unauthenticated(Exception):
    pass


def global_id(kind: str, row_id: int) -> str:
    return base64.b64encode(f"{kind}:{row_id}".encode()).decode()


def row_id_of(gid: str, kind: str) -> int | None:
    try:
        found_kind, _, raw = base64.b64decode(gid).decode().partition(":")
    except ValueError:
        return None
    return int(raw) if found_kind == kind and raw.isdigit() else None


def money(minor: int, currency: str) -> dict[str, str]:
    return {"amount": str(Money(minor, currency).amount), "currency": currency}


def timestamp(value: Any) -> str | None:
    """As the gateway prints a DateTime (SQLite hands raw timestamps back as text)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    assert isinstance(value, dt.datetime)
    return value.isoformat()


def dumps(doc: Any) -> bytes:
    # The gateway's own encoder, so that the ceiling and the peer encode as fast as it does.
    return json_codec.dumps(doc)


@functools.cache
def _compiled(template: str, postgres: bool) -> str:
    """`{}` placeholders (as models.sql) as the driver's: `$1, $2, …` or `?`."""
    parts = template.split("{}")
    if not postgres:
        return "?".join(parts)
    return "".join(part + (f"${i}" if i < len(parts) else "") for i, part in enumerate(parts, 1))


def _marks(n: int) -> str:
    return ", ".join("{}" for _ in range(n))


class Reads:
    def __init__(self, engine: str, location: str) -> None:
        self.postgres = engine == "postgres"
        self.location = location
        self._sqlite: sqlite3.Connection | None = None
        self._pool: asyncpg.Pool[Any] | None = None
        self._sessions: dict[str, tuple[Caller, dt.datetime | None, float]] = {}

    async def start(self) -> None:
        if self.postgres:
            self._pool = await asyncpg.create_pool(self.location, min_size=1, max_size=PG_POOL_MAX)
        else:
            conn = sqlite3.connect(self.location, timeout=SQLITE_TIMEOUT_S, check_same_thread=False)
            conn.row_factory = lambda cursor, row: {
                d[0]: v for d, v in zip(cursor.description, row, strict=True)
            }
            self._sqlite = conn

    async def stop(self) -> None:
        if self._pool is not None:
            await self._pool.close()
        if self._sqlite is not None:
            self._sqlite.close()

    async def rows(self, template: str, *args: Any) -> list[dict[str, Any]]:
        sql = _compiled(template, self.postgres)
        if self._sqlite is not None:
            found: list[dict[str, Any]] = self._sqlite.execute(sql, args).fetchall()
            return found
        assert self._pool is not None
        async with self._pool.acquire() as conn:
            return [dict(r) for r in await conn.fetch(sql, *args)]

    async def caller(self, authorization: str | None) -> Caller:
        """The gateway's bearer-token check: the same statement, cached as long."""
        scheme, _, secret = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not secret:
            raise Unauthenticated("authentication required")
        digest = hashlib.sha256(secret.encode()).hexdigest()
        hit = self._sessions.get(digest)
        if hit is None or time.monotonic() - hit[2] >= SESSION_CACHE_S:
            found = await self.rows(_SESSION_SQL, digest)
            if not found or found[0]["revoked_at"] is not None or not found[0]["active"]:
                raise Unauthenticated("TOKEN_INVALID")
            row = found[0]
            expires = row["expires_at"]
            if isinstance(expires, str):
                expires = dt.datetime.fromisoformat(expires)
            caller = Caller(int(row["company_id"]), str(row["role"]), str(row["kind"]))
            hit = (caller, expires, time.monotonic())
            self._sessions[digest] = hit
        if hit[1] is not None and hit[1] <= dt.datetime.now(dt.UTC):
            raise Unauthenticated("TOKEN_EXPIRED")
        return hit[0]

    def _visible(self, caller: Caller) -> tuple[str, list[Any]]:
        """models.orders.visibility as SQL: mediators all, suppliers theirs, buyers theirs."""
        if caller.role == "MEDIATOR":
            return "", []
        if caller.role == "SUPPLIER":
            return (
                ' AND "supplier" IN (SELECT "id" FROM "supplier_profile" WHERE "company" = {})',
                [caller.company_id],
            )
        return ' AND "buyer" = {}', [caller.company_id]

    async def order(self, caller: Caller, order_id: int) -> dict[str, Any] | None:
        cond, args = self._visible(caller)
        found = await self.rows(
            f'SELECT {columns(Order)} FROM "trade_order" WHERE "id" IN ({{}}){cond}',  # noqa: S608
            order_id,
            *args,
        )
        return found[0] if found else None

    async def orders(self, caller: Caller, first: int) -> tuple[list[dict[str, Any]], bool]:
        """Newest first, one more than asked for to know whether there is a next page."""
        cond, args = self._visible(caller)
        where = f"WHERE {cond.removeprefix(' AND ')}" if cond else ""
        found = await self.rows(
            f'SELECT {columns(Order)} FROM "trade_order" {where} '  # noqa: S608
            'ORDER BY "id" DESC LIMIT {}',
            *args,
            first + 1,
        )
        return found[:first], len(found) > first

    async def suppliers(self, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        found = await self.rows(
            f"SELECT {SUPPLIER_COLUMNS} FROM supplier_profile s JOIN company c "  # noqa: S608
            f"ON c.id = s.company WHERE s.id IN ({_marks(len(ids))})",
            *ids,
        )
        return {int(r["id"]): r for r in found}

    async def companies(self, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        found = await self.rows(
            f'SELECT {columns(Company)} FROM "company" WHERE "id" IN ({_marks(len(ids))})',  # noqa: S608
            *ids,
        )
        return {int(r["id"]): r for r in found}

    async def money(self, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        ordered = sorted(set(ids))
        if self.postgres:
            found = await self.rows(_money_query("LEFT JOIN", "o.id = ANY({})"), ordered)
        else:
            where = "o.id IN (SELECT value FROM json_each({}))"
            found = await self.rows(_money_query("LEFT JOIN", where), json.dumps(ordered))
        return {int(r["order_id"]): r for r in found}

    async def events(self, ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
        """The timelines, oldest first, without conversation messages (models.orders)."""
        out: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
        for r in await self.rows(
            f'SELECT {columns(OrderEvent)} FROM "order_event" WHERE "order" IN '  # noqa: S608
            f'({_marks(len(ids))}) AND "kind" != {{}} ORDER BY "id"',
            *ids,
            MESSAGE_SENT,
        ):
            out[r["order"]].append(r)
        return out

    async def payments(self, ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
        """The goods payments (not inspection fees), by id (models.payments)."""
        out: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
        for r in await self.rows(
            f'SELECT {columns(Payment)} FROM "payment" WHERE "order" IN '  # noqa: S608
            f'({_marks(len(ids))}) ORDER BY "id"',
            *ids,
        ):
            if r["inspection"] is None:
                out[r["order"]].append(r)
        return out

    async def gather(self, *reads: Any) -> list[Any]:
        """Independent reads: concurrently on PostgreSQL's pool; SQLite's one connection
        runs them one after another anyway."""
        if self.postgres:
            return list(await asyncio.gather(*reads))
        return [await r for r in reads]


# --- the JSON the gateway answers with (field order as the benchmark's queries) -----


def supplier_json(s: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": global_id("Supplier", s["id"]),
        "legalName": s["legal_name"],
        "country": s["country"],
    }


def money_json(m: dict[str, Any] | None, currency: str) -> dict[str, Any]:
    def get(key: str) -> int:
        return int(m[key]) if m else 0

    return {k: money(get(k), currency) for k in ("paid", "held", "released", "refunded")}


def event_json(e: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": e["kind"],
        "oldStatus": e["old_status"] or None,
        "newStatus": e["new_status"],
        "actorKind": e["actor_kind"],
        "reason": e["reason"],
        "at": timestamp(e["created_at"]),
    }


def company_json(c: dict[str, Any]) -> dict[str, Any]:
    return {"id": global_id("Company", c["id"]), "legalName": c["legal_name"]}


def payment_json(p: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": global_id("Payment", p["id"]),
        "method": p["method"],
        "status": p["status"],
        "amount": money(p["amount_minor"], p["currency"]),
        "fee": money(p["fee_minor"], p["currency"]),
        "createdAt": timestamp(p["created_at"]),
        "settledAt": timestamp(p["settled_at"]),
    }


# --- the benchmark's two queries (the JSON above follows their field order) ---------

ORDER_STATUS = """query OrderStatus($id: ID!) {
  order(id: $id) {
    id
    status
    supplier { id legalName country }
    money {
      paid { amount currency }
      held { amount currency }
      released { amount currency }
      refunded { amount currency }
    }
    events { kind oldStatus newStatus actorKind reason at }
  }
}"""

ORDER_LIST = """query OrderList($first: Int!) {
  orders(first: $first) {
    edges {
      node {
        id
        status
        total { amount currency }
        buyer { id legalName }
        supplier { id legalName country }
        payments {
          id method status amount { amount currency } fee { amount currency } createdAt settledAt
        }
      }
    }
    pageInfo { hasNextPage endCursor }
  }
}"""


def serving(reads: Reads, *routes: Route) -> Starlette:
    """A server over `reads` (opened and closed with the app) with these routes and the
    `/readyz` the harness waits for: the ceiling's and the peer's shared frame."""

    async def ready(_: Request) -> Response:
        return JSONResponse({"status": "ready"})

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await reads.start()
        try:
            yield
        finally:
            await reads.stop()

    return Starlette(routes=[*routes, Route("/readyz", ready)], lifespan=lifespan)
