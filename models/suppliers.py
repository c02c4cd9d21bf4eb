"""The supplier directory: profiles, standing, and Trade Assurance search."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import re
from collections.abc import Sequence
from typing import Any

from models import clock, sql, supplier_events
from models.accounts import Principal
from models.db import for_update, is_postgres, write_transaction
from models.enums import OPEN_ORDER_STATUSES, Role, TradeAssuranceStatus, Verification
from models.errors import DomainError, ErrorCode
from models.geography import validate_country
from models.money import Money
from models.tables import Company, SupplierCategory, SupplierProfile

MAX_CATEGORIES = 20
MAX_KEYWORDS = 50
MAX_QUERY_TERMS = 8


class SupplierOrder(enum.Enum):
    RELEVANCE = "RELEVANCE"
    RATING = "RATING"
    TRADE_ASSURANCE_LIMIT = "TRADE_ASSURANCE_LIMIT"


@dataclasses.dataclass(frozen=True, slots=True)
class Supplier:
    """A directory entry as readers see it."""

    id: int
    company_id: int
    legal_name: str
    country: str
    year_joined: int
    gold: bool
    verification: Verification
    rating: float
    response_rate: int
    categories: list[str]
    keywords: list[str]
    ta_status: TradeAssuranceStatus
    ta_limit: Money | None
    ta_since: dt.datetime | None
    # The shares of the limit reserved by the supplier's open orders (limit currency).
    ta_reserved_minor: int = 0

    @property
    def remaining_limit(self) -> Money | None:
        """limit - coverage reserved by open orders (never below zero)."""
        if self.ta_status is not TradeAssuranceStatus.ACTIVE or self.ta_limit is None:
            return None
        return Money(max(0, self.ta_limit.minor - self.ta_reserved_minor), self.ta_limit.currency)


@dataclasses.dataclass(frozen=True, slots=True)
class SupplierFilter:
    text: str | None = None
    trade_assurance_only: bool = False
    country: str | None = None
    category: str | None = None
    gold_only: bool = False
    verification: Sequence[Verification] = ()
    min_rating: float | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class SupplierPage:
    suppliers: list[Supplier]
    offset: int
    has_next: bool


def _lines(items: Sequence[str]) -> str:
    return "\n".join(items)


def search_document(legal_name: str, categories: Sequence[str], keywords: Sequence[str]) -> str:
    return "\n".join([legal_name, *categories, *keywords])


def _clean_list(values: Sequence[str], field: str, maximum: int) -> list[str]:
    seen: dict[str, str] = {}
    for value in values:
        value = " ".join(value.split())
        if not value:
            continue
        if len(value) > 100:
            raise DomainError(ErrorCode.INVALID_INPUT, f"'{value[:20]}…' is too long", field)
        seen.setdefault(value.lower(), value)
    if len(seen) > maximum:
        raise DomainError(ErrorCode.INVALID_INPUT, f"at most {maximum} {field}", field)
    return list(seen.values())


# Only constants are interpolated (the open statuses).
_OPEN = ", ".join(f"'{s.value}'" for s in sorted(OPEN_ORDER_STATUSES))
_COLUMNS = f"""s.id, s.company, c.legal_name, s.country, s.year_joined, s.gold, s.verification,
    s.rating, s.response_rate, s.categories, s.keywords, s.ta_status, s.ta_limit_minor,
    s.ta_limit_currency, s.ta_since, (SELECT CAST(COALESCE(SUM(o.limit_reserved_minor), 0)
    AS BIGINT) FROM trade_order o WHERE o.supplier = s.id AND o.status IN ({_OPEN})
    ) AS ta_reserved_minor"""  # noqa: S608 - constants only


def _row_to_supplier(row: dict[str, Any]) -> Supplier:
    limit = (
        Money(row["ta_limit_minor"], row["ta_limit_currency"])
        if row["ta_limit_minor"] is not None
        else None
    )
    since = row["ta_since"]
    if isinstance(since, str):  # SQLite hands raw-query timestamps back as text
        since = dt.datetime.fromisoformat(since)
    return Supplier(
        id=row["id"],
        company_id=row["company"],
        legal_name=row["legal_name"],
        country=row["country"],
        year_joined=row["year_joined"],
        gold=bool(row["gold"]),
        verification=Verification(row["verification"]),
        rating=float(row["rating"]),
        response_rate=row["response_rate"],
        categories=[c for c in row["categories"].split("\n") if c],
        keywords=[k for k in row["keywords"].split("\n") if k],
        ta_status=TradeAssuranceStatus(row["ta_status"]),
        ta_limit=limit,
        ta_since=since,
        ta_reserved_minor=int(row["ta_reserved_minor"] or 0),
    )


async def get_suppliers(ids: Sequence[int]) -> dict[int, Supplier]:
    """Batch read by id (the DataLoader's source)."""
    if not ids:
        return {}
    marks = ", ".join("{}" for _ in ids)
    rows = await sql.read(
        f"SELECT {_COLUMNS} FROM supplier_profile s JOIN company c ON c.id = s.company "  # noqa: S608
        f"WHERE s.id IN ({marks})",
        *ids,
    )
    return {row["id"]: _row_to_supplier(row) for row in rows}


async def supplier_id_of_company(company_id: int) -> int | None:
    row = (
        await SupplierProfile.select(SupplierProfile.id)
        .where(SupplierProfile.company == company_id)
        .first()
    )
    return None if row is None else int(row["id"])


def _query_terms(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())[:MAX_QUERY_TERMS]


@dataclasses.dataclass(frozen=True, slots=True)
class _Search:
    """The FROM and WHERE of a directory search, and the relevance expression (lower is
    better, so both engines sort it ascending)."""

    source: str
    conds: list[str]
    args: list[Any]
    relevance: str


def _search(flt: SupplierFilter, *, ranked: bool) -> _Search:
    source, relevance = "supplier_profile s", "0"
    conds: list[str] = []
    args: list[Any] = []
    terms = _query_terms(flt.text or "")
    if terms and is_postgres():
        source = "supplier_profile s, to_tsquery('simple', {}) q"
        conds.append("s.search_vector @@ q")
        args.append(" & ".join(f"{t}:*" for t in terms))
        relevance = "-ts_rank(s.search_vector, q)" if ranked else "0"
    elif terms and ranked:
        # Joining the FTS5 table gives bm25 (`rank`); it is only computed for the rows
        # that pass the other filters.
        source = "supplier_search JOIN supplier_profile s ON s.id = supplier_search.rowid"
        conds.append("supplier_search MATCH {}")
        args.append(_fts5_query(terms))
        relevance = "supplier_search.rank"
    elif terms:
        # Unranked: a set of ids the planner can probe while walking an ordered index.
        conds.append("s.id IN (SELECT rowid FROM supplier_search WHERE supplier_search MATCH {})")
        args.append(_fts5_query(terms))
    if flt.trade_assurance_only:
        conds.append("s.ta_status = {}")
        args.append(TradeAssuranceStatus.ACTIVE.value)
    if flt.country:
        conds.append("s.country = {}")
        args.append(validate_country(flt.country, "filter.country"))
    if flt.category:
        conds.append(
            "s.id IN (SELECT sc.supplier FROM supplier_category sc WHERE sc.category = {})"
        )
        args.append(normalise_category(flt.category))
    if flt.gold_only:
        conds.append("s.gold = {}")
        args.append(True)
    if flt.verification:
        conds.append(f"s.verification IN ({', '.join('{}' for _ in flt.verification)})")
        args.extend(v.value for v in flt.verification)
    if flt.min_rating is not None:
        conds.append("s.rating >= {}")
        args.append(flt.min_rating)
    return _Search(source, conds, args, relevance)


def _fts5_query(terms: list[str]) -> str:
    return " ".join(f'"{t}"*' for t in terms)


def normalise_category(category: str) -> str:
    return " ".join(category.split()).lower()


def _where_sql(search: _Search) -> str:
    return f"WHERE {' AND '.join(search.conds)}" if search.conds else ""


_ORDER = {
    SupplierOrder.RELEVANCE: "relevance, s.rating DESC, s.id",
    SupplierOrder.RATING: "s.rating DESC, s.id",
    SupplierOrder.TRADE_ASSURANCE_LIMIT: (
        "s.ta_limit_minor IS NULL, s.ta_limit_minor DESC, s.rating DESC, s.id"
    ),
}


async def search_suppliers(
    flt: SupplierFilter, order: SupplierOrder, *, first: int, offset: int
) -> SupplierPage:
    """One page of the directory, best first, using the engine's full-text index for text.

    Two stages: the inner query finds and orders the page's ids touching only
    supplier_profile (and the text index); only those rows are then joined to company
    and read in full."""
    search = _search(flt, ranked=order is SupplierOrder.RELEVANCE)
    order_by = _ORDER[order]
    rows = await sql.fetch(
        f"SELECT {_COLUMNS}, hits.relevance FROM ("  # noqa: S608
        f"SELECT s.id AS id, {search.relevance} AS relevance FROM {search.source} "
        f"{_where_sql(search)} ORDER BY {order_by} LIMIT {{}} OFFSET {{}}"
        f") hits JOIN supplier_profile s ON s.id = hits.id JOIN company c ON c.id = s.company "
        f"ORDER BY {order_by.replace('relevance', 'hits.relevance')}",
        *search.args,
        first + 1,
        offset,
    )
    return SupplierPage(
        suppliers=[_row_to_supplier(r) for r in rows[:first]],
        offset=offset,
        has_next=len(rows) > first,
    )


async def count_suppliers(flt: SupplierFilter) -> int:
    search = _search(flt, ranked=False)
    rows = await sql.fetch(
        f"SELECT COUNT(*) AS n FROM {search.source} {_where_sql(search)}",  # noqa: S608
        *search.args,
    )
    return int(rows[0]["n"])


async def _write_profile(profile: SupplierProfile) -> None:
    company = await Company.select(Company.legal_name).where(Company.id == profile.company).first()
    legal_name = company["legal_name"] if company else ""
    categories = [c for c in profile.categories.split("\n") if c]
    keywords = [k for k in profile.keywords.split("\n") if k]
    profile.search_text = search_document(legal_name, categories, keywords)
    profile.updated_at = clock.now()
    await profile.save()
    await SupplierCategory.delete().where(SupplierCategory.supplier == profile.id)
    if categories:
        await SupplierCategory.insert(
            *[
                SupplierCategory(supplier=profile.id, category=normalise_category(c))
                for c in categories
            ]
        )


async def update_profile(
    principal: Principal,
    *,
    categories: Sequence[str] | None = None,
    keywords: Sequence[str] | None = None,
) -> int:
    """A supplier edits what buyers search: its categories and product keywords."""
    if principal.acting_role is not Role.SUPPLIER or principal.is_partner:
        raise DomainError(ErrorCode.FORBIDDEN, "only a supplier's own users edit its profile")
    async with write_transaction():
        # Locked: the whole row is saved back, so a concurrent approval or standing change
        # must not be read stale and overwritten.
        found = await for_update(
            SupplierProfile.objects().where(SupplierProfile.company == principal.company_id)
        )
        profile = found[0] if found else None
        if profile is None:
            raise DomainError(ErrorCode.NOT_FOUND, "this company has no supplier profile")
        if categories is not None:
            profile.categories = _lines(_clean_list(categories, "categories", MAX_CATEGORIES))
        if keywords is not None:
            profile.keywords = _lines(_clean_list(keywords, "keywords", MAX_KEYWORDS))
        await _write_profile(profile)
        return int(profile.id)


async def set_standing(
    principal: Principal,
    supplier_id: int,
    *,
    gold: bool | None = None,
    verification: Verification | None = None,
) -> None:
    """Platform staff record Gold membership and the outcome of verification."""
    if principal.role is not Role.MEDIATOR:
        raise DomainError(ErrorCode.FORBIDDEN, "only mediators change a supplier's standing")
    async with write_transaction():
        profile = await sql.get(SupplierProfile, supplier_id, lock=True)
        if profile is None:
            raise DomainError(ErrorCode.NOT_FOUND, "no such supplier", "supplierId")
        values: dict[Any, Any] = {SupplierProfile.updated_at: clock.now()}
        changes = []
        if gold is not None and gold != profile.gold:
            values[SupplierProfile.gold] = gold
            changes.append(f"Gold {'granted' if gold else 'withdrawn'}")
        if verification is not None and verification.value != profile.verification:
            values[SupplierProfile.verification] = verification.value
            changes.append(f"verification {profile.verification} -> {verification.value}")
        if not changes:
            return
        await SupplierProfile.update(values).where(SupplierProfile.id == supplier_id)
        await supplier_events.record(
            supplier_id, "STANDING_CHANGED", user_id=principal.user_id, detail="; ".join(changes)
        )


async def seed_profile(
    company_id: int,
    *,
    categories: Sequence[str],
    keywords: Sequence[str],
    gold: bool,
    verification: Verification,
    rating: float,
    response_rate: int,
    year_joined: int,
) -> SupplierProfile:
    """Demo and benchmark data: set a profile wholesale. Call inside a write transaction."""
    profile = await SupplierProfile.objects().get(SupplierProfile.company == company_id)
    assert profile is not None
    profile.categories = _lines(_clean_list(categories, "categories", MAX_CATEGORIES))
    profile.keywords = _lines(_clean_list(keywords, "keywords", MAX_KEYWORDS))
    profile.gold = gold
    profile.verification = verification.value
    profile.rating = rating
    profile.response_rate = response_rate
    profile.year_joined = year_joined
    await _write_profile(profile)
    return profile
