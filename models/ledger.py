"""The double-entry ledger: every movement of money is a balanced, append-only posting.

A transaction (`txn`) is two or more legs on named accounts whose signed amounts sum to
zero in one currency (positive = debit, negative = credit). Postings are never updated
or deleted; a mistake is corrected by a new posting. Balances and an order's money
figures are always derived from the postings, never stored beside them.

The write functions never open a transaction of their own: they must run inside the
caller's `write_transaction()`, so a posting commits (or rolls back) together with the
state change and the order event it belongs to.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import uuid
from collections.abc import Sequence
from typing import Any

from models import sql
from models.db import engine, is_postgres
from models.enums import PaymentMethod
from models.errors import DomainError
from models.money import MAX_MINOR, Money, validate_currency
from models.tables import LedgerPosting


class LedgerError(Exception):
    """A posting that would break the books. Not a DomainError: callers validate the
    business request first, so reaching this is a programming error, never user input."""


class PostingKind(enum.StrEnum):
    PAYMENT = "PAYMENT"
    RELEASE = "RELEASE"
    REFUND_STARTED = "REFUND_STARTED"
    REFUND_SETTLED = "REFUND_SETTLED"
    # Inspection fees: held in their own accounts, never in the order's escrow.
    FEE_PAYMENT = "FEE_PAYMENT"
    FEE_PAYOUT = "FEE_PAYOUT"
    FEE_REFUND_STARTED = "FEE_REFUND_STARTED"
    FEE_REFUND_SETTLED = "FEE_REFUND_SETTLED"


# --- accounts ------------------------------------------------------------------------

_PROVIDER = "provider:"
_ESCROW = "escrow:"
_FEES = "fees:"
_SUPPLIER = "supplier:"
_REFUND_PENDING = "refund_pending:"
# An inspection fee is held per inspection, apart from the order's escrow, so releasing
# the goods money can never pay it out and the order's money figures never include it.
_FEE_ESCROW = "fee_escrow:"
_FEE_REFUND_PENDING = "fee_refund_pending:"
_INSPECTOR = "inspector:"
_ACCOUNT_LENGTH = 64  # LedgerPosting.account is varchar(64); SQLite would not enforce it


def provider_clearing(method: PaymentMethod | str) -> str:
    """Money at the payment provider for one method; a debit is money received."""
    try:
        return f"{_PROVIDER}{PaymentMethod(method).value}"
    except ValueError:
        raise LedgerError(f"unknown payment method {method!r}") from None


def escrow(order_id: int) -> str:
    """Money held for one order; its credit balance is the amount held."""
    return f"{_ESCROW}order:{order_id}"


def card_fees() -> str:
    return f"{_FEES}card"


def supplier_payable(company_id: int) -> str:
    """What is owed to the supplier company (the company id, not the profile id)."""
    return f"{_SUPPLIER}{company_id}"


def refund_pending(order_id: int) -> str:
    """Refunds committed to the buyer that the provider has not paid out yet."""
    return f"{_REFUND_PENDING}order:{order_id}"


def fee_escrow(inspection_id: int) -> str:
    """An inspection's fee, held until the report (paid out) or a refund (back)."""
    return f"{_FEE_ESCROW}inspection:{inspection_id}"


def fee_refund_pending(inspection_id: int) -> str:
    """A fee refund committed to the buyer that the provider has not paid out yet."""
    return f"{_FEE_REFUND_PENDING}inspection:{inspection_id}"


def inspector_payable(company_id: int) -> str:
    """What is owed to an inspection company (its company id)."""
    return f"{_INSPECTOR}{company_id}"


# --- writing -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Leg:
    account: str
    amount_minor: int  # positive debit, negative credit


def _check_legs(legs: Sequence[Leg]) -> None:
    if len(legs) < 2:
        raise LedgerError(f"a transaction needs at least 2 legs, got {len(legs)}")
    for leg in legs:
        if not isinstance(leg, Leg):
            raise LedgerError(f"not a Leg: {leg!r}")
        # bool is an int subclass; True as an amount is a bug, not one cent.
        if type(leg.amount_minor) is not int:
            raise LedgerError(f"{leg.account}: amount must be an int, got {leg.amount_minor!r}")
        if leg.amount_minor == 0:
            raise LedgerError(f"{leg.account}: a leg of zero moves nothing")
        if abs(leg.amount_minor) > MAX_MINOR:
            raise LedgerError(f"{leg.account}: {leg.amount_minor} does not fit in 64 bits")
        if not isinstance(leg.account, str) or not 0 < len(leg.account) <= _ACCOUNT_LENGTH:
            raise LedgerError(f"invalid account name {leg.account!r}")
    total = sum(leg.amount_minor for leg in legs)
    if total != 0:
        raise LedgerError(f"legs sum to {total}, not 0: {legs!r}")


async def post(
    kind: PostingKind | str,
    currency: str,
    legs: Sequence[Leg],
    *,
    order_id: int | None,
    at: dt.datetime,
) -> str:
    """Write one balanced transaction (all legs in one INSERT); returns its txn id."""
    try:
        kind = PostingKind(kind)
    except ValueError:
        raise LedgerError(f"unknown posting kind {kind!r}") from None
    try:
        canonical = validate_currency(currency)
    except DomainError as e:
        raise LedgerError(e.message) from None
    # Exact match, not normalised: the legs must carry the order's currency code as stored.
    if canonical != currency:
        raise LedgerError(f"currency must be given as {canonical!r}, not {currency!r}")
    _check_legs(legs)
    if at.tzinfo is None:
        raise LedgerError("`at` must be timezone-aware")
    if not engine().transaction_exists():
        # Alone it would commit on its own, apart from the state change it records.
        raise LedgerError("ledger postings must be written inside write_transaction()")
    txn = str(uuid.uuid4())
    await sql.insert_many(
        LedgerPosting,
        [
            {"txn": txn, "kind": kind.value, "order": order_id, "account": leg.account,
             "currency": currency, "amount_minor": leg.amount_minor, "created_at": at}
            for leg in legs
        ],
    )  # fmt: skip
    return txn


def _positive(name: str, value: int) -> None:
    if type(value) is not int or value <= 0:
        raise LedgerError(f"{name} must be a positive int, got {value!r}")


async def post_payment(
    order_id: int,
    method: PaymentMethod | str,
    currency: str,
    amount_minor: int,
    fee_minor: int,
    at: dt.datetime,
) -> str:
    """The provider received amount + fee: the amount goes into escrow, the fee to us."""
    _positive("amount_minor", amount_minor)
    if type(fee_minor) is not int or fee_minor < 0:
        raise LedgerError(f"fee_minor must be a non-negative int, got {fee_minor!r}")
    legs = [
        Leg(provider_clearing(method), amount_minor + fee_minor),
        Leg(escrow(order_id), -amount_minor),
    ]
    if fee_minor:
        legs.append(Leg(card_fees(), -fee_minor))
    return await post(PostingKind.PAYMENT, currency, legs, order_id=order_id, at=at)


async def post_release(
    order_id: int, supplier_company_id: int, currency: str, amount_minor: int, at: dt.datetime
) -> str:
    """Held money becomes the supplier's. The caller checks `held()` under the order lock."""
    _positive("amount_minor", amount_minor)
    legs = [
        Leg(escrow(order_id), amount_minor),
        Leg(supplier_payable(supplier_company_id), -amount_minor),
    ]
    return await post(PostingKind.RELEASE, currency, legs, order_id=order_id, at=at)


async def post_refund_started(
    order_id: int,
    currency: str,
    amount_minor: int,
    at: dt.datetime,
    *,
    inspection_id: int | None = None,
) -> str:
    """Held money is committed back to the buyer; it is not paid out until settled. With
    `inspection_id`, the money is that inspection's fee (its own accounts)."""
    _positive("amount_minor", amount_minor)
    if inspection_id is None:
        held_in, pending, kind = (
            escrow(order_id),
            refund_pending(order_id),
            PostingKind.REFUND_STARTED,
        )
    else:
        held_in, pending = fee_escrow(inspection_id), fee_refund_pending(inspection_id)
        kind = PostingKind.FEE_REFUND_STARTED
    legs = [Leg(held_in, amount_minor), Leg(pending, -amount_minor)]
    return await post(kind, currency, legs, order_id=order_id, at=at)


async def post_refund_settled(
    order_id: int,
    method: PaymentMethod | str,
    currency: str,
    amount_minor: int,
    at: dt.datetime,
    *,
    inspection_id: int | None = None,
) -> str:
    """The provider paid a started refund out (a failed attempt posts nothing)."""
    _positive("amount_minor", amount_minor)
    if inspection_id is None:
        pending, kind = refund_pending(order_id), PostingKind.REFUND_SETTLED
    else:
        pending, kind = fee_refund_pending(inspection_id), PostingKind.FEE_REFUND_SETTLED
    legs = [Leg(pending, amount_minor), Leg(provider_clearing(method), -amount_minor)]
    return await post(kind, currency, legs, order_id=order_id, at=at)


async def post_fee_payment(
    order_id: int,
    inspection_id: int,
    method: PaymentMethod | str,
    currency: str,
    amount_minor: int,
    fee_minor: int,
    at: dt.datetime,
) -> str:
    """The provider received an inspection fee (+ card fee): held in the fee's account."""
    _positive("amount_minor", amount_minor)
    if type(fee_minor) is not int or fee_minor < 0:
        raise LedgerError(f"fee_minor must be a non-negative int, got {fee_minor!r}")
    legs = [
        Leg(provider_clearing(method), amount_minor + fee_minor),
        Leg(fee_escrow(inspection_id), -amount_minor),
    ]
    if fee_minor:
        legs.append(Leg(card_fees(), -fee_minor))
    return await post(PostingKind.FEE_PAYMENT, currency, legs, order_id=order_id, at=at)


async def post_fee_payout(
    order_id: int, inspection_id: int, inspector_company_id: int, currency: str,
    amount_minor: int, at: dt.datetime,
) -> str:  # fmt: skip
    """A held inspection fee becomes the inspector's (the report was filed)."""
    _positive("amount_minor", amount_minor)
    legs = [
        Leg(fee_escrow(inspection_id), amount_minor),
        Leg(inspector_payable(inspector_company_id), -amount_minor),
    ]
    return await post(PostingKind.FEE_PAYOUT, currency, legs, order_id=order_id, at=at)


# --- reading -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class OrderMoney:
    """An order's money in minor units of its currency, derived from its postings."""

    currency: str
    paid: int  # into escrow (fees excluded)
    held: int  # in escrow now
    released: int  # to the supplier
    refunded: int  # paid out to the buyer by the provider (settled only)
    refund_pending: int  # committed to the buyer, not yet paid out
    fees: int  # card fees charged on top of `paid`


def _is(column: str, prefix: str) -> str:
    # substr rather than LIKE: exact and case-sensitive on both engines, and "_" in
    # "refund_pending:" is no wildcard.
    return f"substr({column}, 1, {len(prefix)}) = '{prefix}'"


def _sum(condition: str, amount: str = "p.amount_minor") -> str:
    # PostgreSQL's SUM(bigint) is numeric (a Decimal in Python): cast it back.
    return f"CAST(COALESCE(SUM(CASE WHEN {condition} THEN {amount} END), 0) AS BIGINT)"


_K = PostingKind
# One row per order: each figure is a conditional sum over the order's postings, so any
# number of orders costs one statement, and check() reuses the same definitions.
# Only constants (enum values, account prefixes) are interpolated.
_MONEY_COLUMNS = ", ".join(
    [
        "o.id AS order_id",
        "o.currency AS currency",
        # escrow credits of payments
        _sum(
            f"p.kind = '{_K.PAYMENT}' AND {_is('p.account', _ESCROW)} AND p.amount_minor < 0",
            "-p.amount_minor",
        )
        + " AS paid",
        # escrow debits of releases
        _sum(f"p.kind = '{_K.RELEASE}' AND {_is('p.account', _ESCROW)} AND p.amount_minor > 0")
        + " AS released",
        # refund_pending debits of settlements: only money the provider actually paid out
        _sum(
            f"p.kind = '{_K.REFUND_SETTLED}' AND {_is('p.account', _REFUND_PENDING)} "
            "AND p.amount_minor > 0"
        )
        + " AS refunded",
        # the credit balance of refund_pending: started minus settled
        _sum(_is("p.account", _REFUND_PENDING), "-p.amount_minor") + " AS refund_pending",
        # the credit balance of escrow
        _sum(_is("p.account", _ESCROW), "-p.amount_minor") + " AS held",
        # card fees on the goods payments (an inspection fee's card fee is the inspection's)
        _sum(
            f"p.kind = '{_K.PAYMENT}' AND p.account = '{card_fees()}' AND p.amount_minor < 0",
            "-p.amount_minor",
        )
        + " AS fees",
        # legs in another currency than the order's: corrupt, never summed silently
        _sum("p.currency <> o.currency", "1") + " AS foreign_legs",
    ]
)


def _money_query(join: str, where: str) -> str:
    return (
        f"SELECT {_MONEY_COLUMNS} FROM trade_order o "  # noqa: S608 - constants only
        f'{join} ledger_posting p ON p."order" = o.id WHERE {where} GROUP BY o.id, o.currency'
    )


def _order_money(row: dict[str, Any]) -> OrderMoney:
    return OrderMoney(
        currency=row["currency"],
        paid=int(row["paid"]),
        held=int(row["held"]),
        released=int(row["released"]),
        refunded=int(row["refunded"]),
        refund_pending=int(row["refund_pending"]),
        fees=int(row["fees"]),
    )


async def order_money(order_ids: Sequence[int]) -> dict[int, OrderMoney]:
    """The money figures of many orders in one statement; an order without postings has
    all zeros. Ids of orders that do not exist are left out."""
    ids = sorted({int(i) for i in order_ids})
    if not ids:
        return {}
    # One bound parameter however many ids (IN ({}, {}, …) hits the engines' limits).
    arg: list[int] | str
    if is_postgres():
        where, arg = "o.id = ANY({})", ids
    else:
        # A JSON array of ints, written here: json.dumps' encoder is most of this line's cost.
        where, arg = "o.id IN (SELECT value FROM json_each({}))", f"[{','.join(map(str, ids))}]"
    rows = await sql.read(_money_query("LEFT JOIN", where), arg)
    result: dict[int, OrderMoney] = {}
    for row in rows:
        if row["foreign_legs"]:
            raise LedgerError(
                f"order {row['order_id']}: {row['foreign_legs']} leg(s) not in {row['currency']}"
            )
        result[int(row["order_id"])] = _order_money(row)
    return result


async def _balance(account: str) -> int:
    rows = await sql.fetch(
        "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) AS balance "
        "FROM ledger_posting WHERE account = {}",
        account,
    )
    return -int(rows[0]["balance"])


async def fee_held(inspection_id: int) -> int:
    """The inspection fee held now. Call it under the order's row lock."""
    return await _balance(fee_escrow(inspection_id))


async def held(order_id: int) -> int:
    """What the order's escrow account holds now. Call it under the order's row lock
    (inside the write transaction) before posting a release or refund from it."""
    return await _balance(escrow(order_id))


@dataclasses.dataclass(frozen=True)
class LedgerTotals:
    postings: int
    transactions: int


async def totals() -> LedgerTotals:
    rows = await sql.fetch(
        "SELECT COUNT(*) AS postings, COUNT(DISTINCT txn) AS transactions FROM ledger_posting"
    )
    return LedgerTotals(int(rows[0]["postings"]), int(rows[0]["transactions"]))


# --- checking ------------------------------------------------------------------------

_KIND_VALUES = frozenset(k.value for k in PostingKind)
_KINDS = ", ".join(f"'{k}'" for k in sorted(_KIND_VALUES))
# Each statement checks its invariant on its own snapshot, and every txn is committed
# whole, so running them one after another needs no shared transaction.
_TXN_SHAPE = f"""
SELECT txn, MIN(kind) AS kind, MAX(kind) AS other_kind, COUNT(*) AS legs,
       MIN(currency) AS currency, MAX(currency) AS other_currency,
       SUM(CASE WHEN amount_minor = 0 THEN 1 ELSE 0 END) AS zero_legs,
       COUNT(DISTINCT "order") AS orders,
       SUM(CASE WHEN "order" IS NULL THEN 1 ELSE 0 END) AS orderless_legs
FROM ledger_posting GROUP BY txn
HAVING COUNT(*) < 2 OR MIN(kind) <> MAX(kind) OR MIN(currency) <> MAX(currency)
    OR SUM(CASE WHEN amount_minor = 0 THEN 1 ELSE 0 END) > 0
    OR COUNT(DISTINCT "order") > 1
    OR (COUNT(DISTINCT "order") = 1 AND SUM(CASE WHEN "order" IS NULL THEN 1 ELSE 0 END) > 0)
    OR MIN(kind) NOT IN ({_KINDS})
ORDER BY txn
"""  # noqa: S608 - constants only
_TXN_BALANCE = """
SELECT txn, currency, CAST(SUM(amount_minor) AS BIGINT) AS total
FROM ledger_posting GROUP BY txn, currency HAVING SUM(amount_minor) <> 0 ORDER BY txn, currency
"""
_CURRENCY_BALANCE = """
SELECT currency, CAST(SUM(amount_minor) AS BIGINT) AS total
FROM ledger_posting GROUP BY currency HAVING SUM(amount_minor) <> 0 ORDER BY currency
"""
# Escrow and refund_pending accounts (of orders and of inspection fees) only ever hold
# money (credit balances).
_DEBIT_BALANCES = f"""
SELECT account, currency, CAST(SUM(amount_minor) AS BIGINT) AS balance
FROM ledger_posting p WHERE {_is("p.account", _ESCROW)} OR {_is("p.account", _REFUND_PENDING)}
   OR {_is("p.account", _FEE_ESCROW)} OR {_is("p.account", _FEE_REFUND_PENDING)}
GROUP BY account, currency HAVING SUM(amount_minor) > 0 ORDER BY account, currency
"""  # noqa: S608 - constants only
# An order's escrow/refund_pending legs must carry that order, or order_money (which
# groups by the order column) and held() (which reads the account) would disagree.
_MISFILED = f"""
SELECT account, "order" AS order_id, COUNT(*) AS legs FROM ledger_posting p
WHERE ({_is("p.account", _ESCROW)} OR {_is("p.account", _REFUND_PENDING)})
  AND ("order" IS NULL OR account NOT IN ('{_ESCROW}order:' || CAST("order" AS TEXT),
                                           '{_REFUND_PENDING}order:' || CAST("order" AS TEXT)))
GROUP BY account, "order" ORDER BY account
"""  # noqa: S608 - constants only
# An inspection fee's legs must carry the order that inspection belongs to.
_FEE_ACCOUNT_OF = (
    f"p.account IN ('{_FEE_ESCROW}inspection:' || CAST(i.id AS TEXT), "
    f"'{_FEE_REFUND_PENDING}inspection:' || CAST(i.id AS TEXT))"
)
_FEE_MISFILED = f"""
SELECT account, "order" AS order_id, COUNT(*) AS legs FROM ledger_posting p
WHERE ({_is("p.account", _FEE_ESCROW)} OR {_is("p.account", _FEE_REFUND_PENDING)})
  AND NOT EXISTS (SELECT 1 FROM inspection i WHERE i."order" = p."order" AND {_FEE_ACCOUNT_OF})
GROUP BY account, "order" ORDER BY account
"""  # noqa: S608 - constants only
# Per inspection, as per order: paid out + refunded + pending <= paid, and what is held
# is exactly the rest.
_FEE_MONEY = f"""
SELECT * FROM (
  SELECT i.id AS inspection_id, i.currency AS currency,
    {
    _sum(
        f"p.kind = '{_K.FEE_PAYMENT}' AND {_is('p.account', _FEE_ESCROW)} AND p.amount_minor < 0",
        "-p.amount_minor",
    )
} AS paid,
    {_sum(f"p.kind = '{_K.FEE_PAYOUT}' AND {_is('p.account', _FEE_ESCROW)} AND p.amount_minor > 0")}
      AS paid_out,
    {
    _sum(
        f"p.kind = '{_K.FEE_REFUND_SETTLED}' AND {_is('p.account', _FEE_REFUND_PENDING)} "
        "AND p.amount_minor > 0"
    )
} AS refunded,
    {_sum(_is("p.account", _FEE_REFUND_PENDING), "-p.amount_minor")} AS refund_pending,
    {_sum(_is("p.account", _FEE_ESCROW), "-p.amount_minor")} AS held,
    {_sum("p.currency <> i.currency", "1")} AS foreign_legs
  FROM inspection i JOIN ledger_posting p ON {_FEE_ACCOUNT_OF}
  GROUP BY i.id, i.currency) m
WHERE m.paid_out + m.refunded + CASE WHEN m.refund_pending > 0 THEN m.refund_pending ELSE 0 END
      > m.paid
   OR m.held <> m.paid - m.paid_out - m.refunded - m.refund_pending
   OR m.foreign_legs > 0
ORDER BY m.inspection_id
"""  # noqa: S608 - constants only
_ORDER_MONEY = f"""
SELECT * FROM ({_money_query("JOIN", "1 = 1")}) m
WHERE m.released + m.refunded + CASE WHEN m.refund_pending > 0 THEN m.refund_pending ELSE 0 END
      > m.paid
   OR m.held <> m.paid - m.released - m.refunded - m.refund_pending
   OR m.foreign_legs > 0
ORDER BY m.order_id
"""  # noqa: S608 - constants only


def _money(minor: Any, currency: str) -> str:
    return str(Money(int(minor), currency))


async def check() -> list[str]:
    """Every ledger invariant, checked with aggregate queries; returns the violations in
    readable form (an empty list means the books are sound)."""
    problems: list[str] = []
    for r in await sql.fetch(_TXN_SHAPE):
        t = f"txn {r['txn']}"
        if r["legs"] < 2:
            problems.append(f"{t}: {r['legs']} leg(s); a transaction needs at least 2")
        if r["kind"] != r["other_kind"]:
            problems.append(f"{t}: mixes kinds {r['kind']} and {r['other_kind']}")
        elif r["kind"] not in _KIND_VALUES:
            problems.append(f"{t}: unknown kind {r['kind']!r}")
        if r["currency"] != r["other_currency"]:
            problems.append(f"{t}: mixes currencies {r['currency']} and {r['other_currency']}")
        if r["zero_legs"]:
            problems.append(f"{t}: {r['zero_legs']} leg(s) of zero")
        if r["orders"] > 1 or (r["orders"] == 1 and r["orderless_legs"]):
            problems.append(f"{t}: legs belong to different orders")
    for r in await sql.fetch(_TXN_BALANCE):
        problems.append(
            f"txn {r['txn']}: {r['currency']} legs sum to {_money(r['total'], r['currency'])}, "
            "not 0"
        )
    for r in await sql.fetch(_CURRENCY_BALANCE):
        problems.append(
            f"all {r['currency']} postings sum to {_money(r['total'], r['currency'])}, not 0"
        )
    for r in await sql.fetch(_DEBIT_BALANCES):
        problems.append(
            f"account {r['account']}: debit balance {_money(r['balance'], r['currency'])} "
            "(held money cannot be negative)"
        )
    for r in await sql.fetch(_MISFILED):
        problems.append(
            f"account {r['account']}: {r['legs']} leg(s) filed under order {r['order_id']}"
        )
    for r in await sql.fetch(_FEE_MISFILED):
        problems.append(
            f"account {r['account']}: {r['legs']} leg(s) filed under order {r['order_id']}, "
            "which has no such inspection"
        )
    for r in await sql.fetch(_FEE_MONEY):
        i, cur = f"inspection {r['inspection_id']}", r["currency"]
        if r["foreign_legs"]:
            problems.append(f"{i}: {r['foreign_legs']} fee leg(s) not in its currency {cur}")
            continue
        paid, out, back, pending = (
            int(r["paid"]),
            int(r["paid_out"]),
            int(r["refunded"]),
            int(r["refund_pending"]),
        )
        if out + back + max(pending, 0) > paid:
            problems.append(
                f"{i}: fee paid out {_money(out, cur)} + refunded {_money(back, cur)}"
                f" + refund pending {_money(pending, cur)} exceed paid {_money(paid, cur)}"
            )
        if int(r["held"]) != paid - out - back - pending:
            problems.append(
                f"{i}: fee held {_money(r['held'], cur)} is not paid - paid out - refunded"
                f" - pending ({_money(paid - out - back - pending, cur)})"
            )
    for r in await sql.fetch(_ORDER_MONEY):
        m, o, cur = _order_money(r), f"order {r['order_id']}", r["currency"]
        if r["foreign_legs"]:
            problems.append(f"{o}: {r['foreign_legs']} leg(s) not in the order's currency {cur}")
            continue  # its sums mix currencies; the figures below would be meaningless
        # A negative pending balance (reported above) must not hide an excess refund.
        if m.released + m.refunded + max(m.refund_pending, 0) > m.paid:
            problems.append(
                f"{o}: released {_money(m.released, cur)} + refunded {_money(m.refunded, cur)}"
                f" + refund pending {_money(m.refund_pending, cur)} exceed paid"
                f" {_money(m.paid, cur)}"
            )
        if m.held != m.paid - m.released - m.refunded - m.refund_pending:
            problems.append(
                f"{o}: held {_money(m.held, cur)} is not paid - released - refunded - pending"
                f" ({_money(m.paid - m.released - m.refunded - m.refund_pending, cur)})"
            )
    return problems
