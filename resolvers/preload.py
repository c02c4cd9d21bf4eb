"""An order page's relations, read once for the whole page before its fields resolve.

graphql-core completes a field whose resolver returns an awaitable on its slow path (a
coroutine, a future, a gather over the list's items), and everything below it on that
path too. With a DataLoader behind `buyer`, `supplier`, `payments`, `money` and `events`,
a page of 100 orders took that path 300 to 500 times, which was most of its CPU time
(docs/performance.md, session 5). `order` and `orders` know which of these the operation
selects, so they read each kind once for all the page's orders, with the same domain
functions and statements the DataLoaders use, and the fields resolve synchronously from
what was read. Responses are the same; the number of statements too (one per kind).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar, cast

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLResolveInfo,
    InlineFragmentNode,
    SelectionSetNode,
)
from strawberry.dataloader import DataLoader

from models import accounts, db, ledger, orders, payments, suppliers
from models.tables import Company, Order, OrderEvent, Payment

T = TypeVar("T")


@dataclasses.dataclass(slots=True)
class Preloaded:
    """What was read for a page; None: not selected, left to the field's DataLoader."""

    companies: Mapping[int, Company] | None = None
    suppliers: Mapping[int, suppliers.Supplier] | None = None
    money: Mapping[int, ledger.OrderMoney] | None = None
    events: Mapping[int, list[OrderEvent]] | None = None
    payments: Mapping[int, list[Payment]] | None = None
    # The GraphQL objects made from them, by kind and id: the orders of a page mostly
    # share one buyer and a few suppliers, and the objects are not changed once made.
    made: dict[tuple[str, int], Any] = dataclasses.field(default_factory=dict)

    def once(self, kind: str, key: int, make: Callable[[], T]) -> T:
        """The object of this kind and id made for the page, made on first use."""
        found = self.made.get((kind, key))
        if found is None:
            found = self.made[(kind, key)] = make()
        return cast(T, found)


def relation(
    preloaded: Preloaded | None,
    kind: str,
    key: int,
    convert: Callable[[Any], T],
    loaders: Any,
    loader: str,
    *,
    share: str | None = None,
) -> T:
    """One relation of an order (its buyer, money, events…): `convert` of the row the
    page read up front (`kind`, by `key`) when `order`/`orders` read that kind, as a plain
    value, so graphql-core completes it on its synchronous path; otherwise an awaitable of
    the same through the request's DataLoader (`loaders`' attribute `loader`, made only
    then: the request's context makes each on first use), which graphql-core awaits as it
    would an async resolver's (the cast says so to the type checker). `share`: the GraphQL type
    name under which the object is made once per page (orders mostly share a buyer)."""
    found: Mapping[int, Any] | None = getattr(preloaded, kind) if preloaded else None
    if preloaded is None or found is None:
        return cast(T, _loaded(getattr(loaders, loader), key, convert))
    if share is None:
        return convert(found.get(key))
    return preloaded.once(share, key, lambda: convert(found.get(key)))


async def _loaded(loader: DataLoader[int, Any], key: int, convert: Callable[[Any], T]) -> T:
    return convert(await loader.load(key))


# Which selected Order fields need which kind of row.
_NEEDS = {
    "buyer": "companies",
    "supplier": "suppliers",
    "money": "money",
    "deadlines": "money",
    "coverage": "money",
    "events": "events",
    "payments": "payments",
}


def selected(info: GraphQLResolveInfo[Any], *path: str) -> set[str]:
    """The field names selected at `path` below the field being resolved, through
    fragments (on the document itself: Strawberry's `selected_fields` converts every
    argument and directive on the way, about a quarter of an order status's execution)."""
    names: set[str] = set()
    for node in info.field_nodes:
        _collect(node.selection_set, path, info.fragments, names)
    return names


def _collect(
    selections: SelectionSetNode | None,
    path: Sequence[str],
    fragments: Mapping[str, FragmentDefinitionNode],
    names: set[str],
) -> None:
    for s in selections.selections if selections is not None else ():
        if isinstance(s, FieldNode):
            if not path:
                names.add(s.name.value)
            elif s.name.value == path[0]:
                _collect(s.selection_set, path[1:], fragments, names)
        elif isinstance(s, InlineFragmentNode):
            _collect(s.selection_set, path, fragments, names)
        elif isinstance(s, FragmentSpreadNode) and s.name.value in fragments:
            _collect(fragments[s.name.value].selection_set, path, fragments, names)


async def preload(rows: Sequence[Order], fields: set[str]) -> Preloaded | None:
    """Read what `fields` (selected on each of `rows`) need, one statement per kind:
    concurrently on PostgreSQL (its pool serves them side by side, as it did the
    loaders); one after another on SQLite, whose short reads run on the event loop's
    thread anyway (models.sql.read), so tasks for them would only add their own cost."""
    kinds = {_NEEDS[f] for f in fields if f in _NEEDS}
    if not rows or not kinds:
        return None
    values = [vars(o) for o in rows]  # the column values, without Piccolo's descriptors
    ids = [v["id"] for v in values]
    reads: dict[str, Awaitable[Mapping[int, Any]]] = {}
    if "companies" in kinds:
        reads["companies"] = accounts.get_companies(list(dict.fromkeys(v["buyer"] for v in values)))
    if "suppliers" in kinds:
        reads["suppliers"] = suppliers.get_suppliers(
            list(dict.fromkeys(v["supplier"] for v in values))
        )
    if "money" in kinds:
        reads["money"] = ledger.order_money(ids)
    if "events" in kinds:
        reads["events"] = orders.events_of(ids)
    if "payments" in kinds:
        reads["payments"] = payments.payments_of(ids)
    if db.is_postgres():
        found = await asyncio.gather(*reads.values())
    else:
        found = [await read for read in reads.values()]
    loaded = Preloaded()
    for kind, rows_of_kind in zip(reads, found, strict=True):
        setattr(loaded, kind, rows_of_kind)
    return loaded
