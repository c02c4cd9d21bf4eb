"""The order-event feed: events in an order that is safe to resume from, and its cursor.

Readers take events in (tx, id) order and, on PostgreSQL, only those whose transactions
have all finished (see the migration that added `tx`): a position handed to a client can
never have an event committed behind it later. Live delivery (models.live) and resuming
from a cursor read through the same query, so they agree on what "after" means.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from typing import Any

from models import sql
from models.accounts import Principal
from models.db import is_postgres
from models.enums import Role
from models.errors import DomainError, ErrorCode
from models.events import MESSAGE_SENT
from models.tables import MAX_DB_ID, OrderEvent

_CURSOR_PREFIX = "evt:"
# `tx` is an xid8 on PostgreSQL (always 0 on SQLite); no transaction gets past 2**63 - 1,
# and SQLite's INTEGER holds no more.
MAX_TX = 2**63 - 1


def _not_ours() -> DomainError:
    return DomainError(ErrorCode.INVALID_CURSOR, "not a cursor this feed handed out", "after")


@dataclasses.dataclass(frozen=True, order=True, slots=True)
class Position:
    tx: int
    id: int

    def cursor(self) -> str:
        return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{self.tx}:{self.id}".encode()).decode()

    @classmethod
    def parse(cls, cursor: str) -> Position:
        try:
            text = base64.urlsafe_b64decode(cursor.encode()).decode()
            tx, event_id = text.removeprefix(_CURSOR_PREFIX).split(":")
            if not text.startswith(_CURSOR_PREFIX):
                raise ValueError(text)
            position = cls(int(tx), int(event_id))
            # Out of range, it would replay all or nothing depending on the engine (or fail
            # in the driver); `evt:0:0` is the feed's start.
            if not (0 <= position.tx <= MAX_TX and 0 <= position.id <= MAX_DB_ID):
                raise ValueError(text)
            return position
        except (ValueError, UnicodeError, binascii.Error):
            raise _not_ours() from None


START = Position(0, 0)


@dataclasses.dataclass(frozen=True, slots=True)
class FeedEvent:
    position: Position
    event: OrderEvent
    buyer_company: int
    supplier_company: int

    @property
    def is_message(self) -> bool:
        """A message of the order's conversation rather than a step of its timeline."""
        return self.event.kind == MESSAGE_SENT

    def visible_to(self, principal: Principal) -> bool:
        return principal.role is Role.MEDIATOR or principal.company_id in (
            self.buyer_company,
            self.supplier_company,
        )


# PostgreSQL: the oldest transaction of this database still running, or the snapshot's
# upper bound when none is. Events below it are final. Transaction ids are server-wide, so
# transactions that provably belong to another database (a running backend there holds
# them) are left out: another application's long transaction must not hold our feed up.
# One that ended meanwhile cannot be placed and counts as ours: that only waits longer.
_HORIZON = """(
  SELECT COALESCE(min(x), pg_snapshot_xmax(pg_current_snapshot()))
  FROM pg_snapshot_xip(pg_current_snapshot()) AS x
  WHERE NOT EXISTS (
    SELECT 1 FROM pg_stat_activity a
    WHERE a.datname IS DISTINCT FROM current_database() AND a.backend_xid IS NOT NULL
      AND a.backend_xid::text::bigint = x::text::bigint % 4294967296))"""


def _sql(*, order: bool, company: bool, messages: bool | None, limit: bool) -> str:
    pg = is_postgres()
    tx = "e.tx::text" if pg else "e.tx"
    after = "(e.tx, e.id) > (CAST({} AS text)::xid8, {})" if pg else "(e.tx, e.id) > ({}, {})"
    where = [after]
    if pg:  # only events whose transaction, and every older one, has finished
        where.append(f"e.tx < {_HORIZON}")
    if order:
        where.append('e."order" = {}')
    if company:
        where.append("(o.buyer = {} OR s.company = {})")
    if messages is not None:  # a filter beside the (tx, id) or ("order", tx, id) index
        where.append("e.kind = {}" if messages else "e.kind <> {}")
    return (
        f"SELECT {sql.columns(OrderEvent, 'e')}, {tx} AS tx, o.buyer AS buyer_company,"  # noqa: S608
        " s.company AS supplier_company FROM order_event e"
        ' JOIN trade_order o ON o.id = e."order" JOIN supplier_profile s ON s.id = o.supplier'
        f" WHERE {' AND '.join(where)} ORDER BY e.tx, e.id" + (" LIMIT {}" if limit else "")
    )


def _feed_event(row: dict[str, Any]) -> FeedEvent:
    position = Position(int(row.pop("tx")), int(row["id"]))
    buyer, supplier = int(row.pop("buyer_company")), int(row.pop("supplier_company"))
    return FeedEvent(position, sql.loaded(OrderEvent, row), buyer, supplier)


async def read_after(
    after: Position,
    *,
    limit: int,
    order_id: int | None = None,
    viewer: Principal | None = None,
    messages: bool | None = None,
) -> list[FeedEvent]:
    """Up to `limit` finished events after `after`, oldest first; only one order's if
    `order_id`, only those `viewer` may see if given (mediators see all); only
    conversation messages if `messages` is True, none of them if False."""
    company = viewer is not None and viewer.role is not Role.MEDIATOR
    args: list[Any] = [str(after.tx) if is_postgres() else after.tx, after.id]
    if order_id is not None:
        args.append(order_id)
    if company:
        assert viewer is not None
        args += [viewer.company_id, viewer.company_id]
    if messages is not None:
        args.append(MESSAGE_SENT)
    query = _sql(order=order_id is not None, company=company, messages=messages, limit=True)
    rows = await sql.read(query, *args, limit)
    return [_feed_event(r) for r in rows]


async def head() -> Position:
    """The position of the newest finished event: where a new live feed starts."""
    if is_postgres():
        rows = await sql.read(
            f"SELECT tx::text AS tx, id FROM order_event WHERE tx < {_HORIZON}"  # noqa: S608
            " ORDER BY tx DESC, id DESC LIMIT 1"
        )
    else:
        rows = await sql.read("SELECT tx, id FROM order_event ORDER BY tx DESC, id DESC LIMIT 1")
    return Position(int(rows[0]["tx"]), int(rows[0]["id"])) if rows else START


async def refuse_ahead(position: Position) -> None:
    """INVALID_CURSOR if `position` is past every event written so far, which no cursor
    handed out is (its id is at most the newest, its tx below the next transaction's): a
    stream resumed from it would hold back every event for its whole life."""
    if is_postgres():
        rows = await sql.read(
            "SELECT COALESCE(max(id), 0) AS newest,"
            " CAST({} AS text)::xid8 >= pg_snapshot_xmax(pg_current_snapshot()) AS tx_ahead"
            " FROM order_event",
            str(position.tx),
        )
        ahead = bool(rows[0]["tx_ahead"])
    else:
        rows = await sql.read("SELECT COALESCE(max(id), 0) AS newest FROM order_event")
        ahead = position.tx > 0
    if ahead or position.id > int(rows[0]["newest"]):
        raise _not_ours()
