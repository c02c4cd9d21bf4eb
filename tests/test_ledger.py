"""The double-entry ledger: postings, derived order money and the invariant check."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import os
import re
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from models import db, ledger, sql
from models.enums import Incoterm, OrderStatus, PaymentMethod, Role, ShippingMethod
from models.errors import DomainError
from models.ledger import LedgerError, Leg, OrderMoney, PostingKind
from models.tables import LedgerPosting, Order
from tests import factories

AT = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
CLI = str(Path(sys.executable).with_name("trade-assurance"))
ROOT = Path(__file__).resolve().parent.parent


@dataclasses.dataclass(frozen=True)
class Parties:
    buyer_company: int
    supplier_id: int  # the supplier profile (what an order points at)
    supplier_company: int  # the company (whose payable account a release credits)


@pytest.fixture
async def parties() -> Parties:
    buyer = await factories.buyer()
    supplier = await factories.supplier()
    assert supplier.supplier_id is not None
    return Parties(buyer.principal.company_id, supplier.supplier_id, supplier.principal.company_id)


async def new_order(parties: Parties, currency: str = "USD") -> int:
    """A bare order row (the order domain module is not needed to exercise the ledger)."""
    rows = await Order.insert(
        Order(
            buyer=parties.buyer_company,
            supplier=parties.supplier_id,
            drafted_by=Role.BUYER.value,
            status=OrderStatus.AWAITING_INITIAL_PAYMENT.value,
            currency=currency,
            total_minor=100_000,
            initial_minor=30_000,
            incoterm=Incoterm.FOB.value,
            shipping_method=ShippingMethod.SEA.value,
            destination_country="US",
            shipping_deadline=AT + dt.timedelta(days=30),
            created_at=AT,
            updated_at=AT,
        )
    )
    return int(rows[0]["id"])


async def legs_of(txn: str) -> list[tuple[str, int]]:
    rows = await LedgerPosting.select(LedgerPosting.account, LedgerPosting.amount_minor).where(
        LedgerPosting.txn == txn
    )
    return sorted((r["account"], r["amount_minor"]) for r in rows)


async def rows_of(txn: str) -> list[dict[str, Any]]:
    return list(await LedgerPosting.select().where(LedgerPosting.txn == txn))


async def in_txn(coro: Awaitable[str]) -> str:
    async with db.write_transaction():
        return await coro


async def all_postings() -> list[dict[str, Any]]:
    return list(await LedgerPosting.select().order_by(LedgerPosting.id))


# --- accounts and postings -----------------------------------------------------------


def test_account_names() -> None:
    assert ledger.provider_clearing(PaymentMethod.CARD) == "provider:CARD"
    assert ledger.provider_clearing("TT") == "provider:TT"
    assert ledger.escrow(7) == "escrow:order:7"
    assert ledger.card_fees() == "fees:card"
    assert ledger.supplier_payable(12) == "supplier:12"
    assert ledger.refund_pending(7) == "refund_pending:order:7"
    with pytest.raises(LedgerError):
        ledger.provider_clearing("card")  # method codes are exact


async def test_a_card_payment_debits_the_provider_with_the_fee_on_top(parties: Parties) -> None:
    order = await new_order(parties)
    txn = await in_txn(ledger.post_payment(order, PaymentMethod.CARD, "USD", 10_000, 280, AT))
    assert await legs_of(txn) == sorted(
        [("provider:CARD", 10_280), (f"escrow:order:{order}", -10_000), ("fees:card", -280)]
    )
    rows = await rows_of(txn)
    assert {(r["kind"], r["order"], r["currency"], r["created_at"]) for r in rows} == {
        ("PAYMENT", order, "USD", AT)
    }
    assert uuid.UUID(txn).version == 4


async def test_a_payment_without_fee_has_no_fee_leg(parties: Parties) -> None:
    order = await new_order(parties)
    txn = await in_txn(ledger.post_payment(order, PaymentMethod.TT, "USD", 30_000, 0, AT))
    assert await legs_of(txn) == sorted(
        [("provider:TT", 30_000), (f"escrow:order:{order}", -30_000)]
    )


async def test_release_and_refund_legs(parties: Parties) -> None:
    order = await new_order(parties)
    await in_txn(ledger.post_payment(order, PaymentMethod.CARD, "USD", 10_000, 0, AT))
    release = await in_txn(ledger.post_release(order, parties.supplier_company, "USD", 4_000, AT))
    started = await in_txn(ledger.post_refund_started(order, "USD", 1_500, AT))
    settled = await in_txn(ledger.post_refund_settled(order, PaymentMethod.CARD, "USD", 1_500, AT))
    escrow, pending = f"escrow:order:{order}", f"refund_pending:order:{order}"
    assert await legs_of(release) == sorted(
        [(escrow, 4_000), (f"supplier:{parties.supplier_company}", -4_000)]
    )
    assert await legs_of(started) == sorted([(escrow, 1_500), (pending, -1_500)])
    assert await legs_of(settled) == sorted([(pending, 1_500), ("provider:CARD", -1_500)])
    kinds = {r["txn"]: r["kind"] for r in await all_postings()}
    assert (kinds[release], kinds[started], kinds[settled]) == (
        PostingKind.RELEASE,
        PostingKind.REFUND_STARTED,
        PostingKind.REFUND_SETTLED,
    )
    assert len(set(kinds)) == 4  # every posting is its own transaction


@pytest.mark.parametrize(
    ("kind", "currency", "legs"),
    [
        pytest.param("PAYMENT", "USD", [Leg("a", 100), Leg("b", -99)], id="unbalanced"),
        pytest.param("PAYMENT", "USD", [Leg("a", 100), Leg("b", -100), Leg("c", 0)], id="zero"),
        pytest.param("PAYMENT", "USD", [Leg("a", 0), Leg("b", 0)], id="all-zero"),
        pytest.param("PAYMENT", "USD", [Leg("a", 100)], id="one-leg"),
        pytest.param("PAYMENT", "USD", [], id="no-legs"),
        pytest.param("PAYMENT", "ZZZ", [Leg("a", 100), Leg("b", -100)], id="unknown-currency"),
        pytest.param("PAYMENT", "XAU", [Leg("a", 100), Leg("b", -100)], id="not-tender"),
        pytest.param("PAYMENT", "usd", [Leg("a", 100), Leg("b", -100)], id="not-canonical"),
        pytest.param("BONUS", "USD", [Leg("a", 100), Leg("b", -100)], id="unknown-kind"),
        pytest.param("PAYMENT", "USD", [Leg("a", 1.5), Leg("b", -1.5)], id="float"),  # type: ignore[arg-type]
        pytest.param("PAYMENT", "USD", [Leg("a", True), Leg("b", -1)], id="bool"),
        pytest.param("PAYMENT", "USD", [Leg("a", 2**63), Leg("b", -(2**63))], id="over-64-bit"),
        pytest.param("PAYMENT", "USD", [Leg("a" * 65, 1), Leg("b", -1)], id="long-account"),
        pytest.param("PAYMENT", "USD", [Leg("", 1), Leg("b", -1)], id="empty-account"),
    ],
)
async def test_invalid_postings_are_refused_and_write_nothing(
    parties: Parties, kind: str, currency: str, legs: list[Leg]
) -> None:
    order = await new_order(parties)
    with pytest.raises(LedgerError) as e:
        await in_txn(ledger.post(kind, currency, legs, order_id=order, at=AT))
    assert not isinstance(e.value, DomainError)  # a programming error, not a user's
    assert await LedgerPosting.count() == 0


async def test_a_naive_timestamp_is_refused(parties: Parties) -> None:
    order = await new_order(parties)
    legs = [Leg("a", 1), Leg("b", -1)]
    with pytest.raises(LedgerError, match="timezone"):
        await in_txn(
            ledger.post("PAYMENT", "USD", legs, order_id=order, at=AT.replace(tzinfo=None))
        )
    assert await LedgerPosting.count() == 0


Poster = Callable[[int, Parties], Awaitable[str]]


@pytest.mark.parametrize(
    "call",
    [
        lambda o, p: ledger.post_payment(o, "CARD", "USD", 0, 0, AT),
        lambda o, p: ledger.post_payment(o, "CARD", "USD", -100, 0, AT),
        lambda o, p: ledger.post_payment(o, "CARD", "USD", 100, -3, AT),
        lambda o, p: ledger.post_payment(o, "CHEQUE", "USD", 100, 0, AT),
        lambda o, p: ledger.post_release(o, p.supplier_company, "USD", 0, AT),
        lambda o, p: ledger.post_release(o, p.supplier_company, "USD", -5, AT),
        lambda o, p: ledger.post_refund_started(o, "USD", 0, AT),
        lambda o, p: ledger.post_refund_settled(o, "CARD", "USD", -1, AT),
    ],
    ids=[
        "payment-zero",
        "payment-negative",
        "negative-fee",
        "unknown-method",
        "release-zero",
        "release-negative",
        "refund-started-zero",
        "refund-settled-negative",
    ],
)
async def test_convenience_postings_refuse_non_positive_amounts(
    parties: Parties, call: Poster
) -> None:
    order = await new_order(parties)
    with pytest.raises(LedgerError):
        await in_txn(call(order, parties))
    assert await LedgerPosting.count() == 0


async def test_posting_outside_a_write_transaction_is_refused(parties: Parties) -> None:
    order = await new_order(parties)
    with pytest.raises(LedgerError, match="write_transaction"):
        await ledger.post_payment(order, "CARD", "USD", 100, 0, AT)
    assert await LedgerPosting.count() == 0


async def test_a_posting_rolls_back_with_its_transaction(parties: Parties) -> None:
    order = await new_order(parties)
    with pytest.raises(RuntimeError):
        async with db.write_transaction():
            await ledger.post_payment(order, "CARD", "USD", 100, 3, AT)
            raise RuntimeError("the state change after it failed")
    assert await LedgerPosting.count() == 0


async def test_postings_are_append_only(parties: Parties) -> None:
    mutators = [
        name
        for name in dir(ledger)
        if re.search(r"update|delete|remove|void|amend|edit|correct|reverse", name, re.I)
    ]
    assert mutators == []
    order = await new_order(parties)
    first = await in_txn(ledger.post_payment(order, "CARD", "USD", 100, 3, AT))
    before = await all_postings()
    # The same payment posted again is a second transaction; the first is untouched.
    # (Idempotency is the caller's business, through its idempotency keys.)
    second = await in_txn(ledger.post_payment(order, "CARD", "USD", 100, 3, AT))
    after = await all_postings()
    assert second != first
    assert after[: len(before)] == before and len(after) == 2 * len(before)


# --- order money ---------------------------------------------------------------------


def money(currency: str = "USD", **figures: int) -> OrderMoney:
    zero = dict.fromkeys(("paid", "held", "released", "refunded", "refund_pending", "fees"), 0)
    return OrderMoney(currency=currency, **{**zero, **figures})


async def test_order_money_after_a_card_payment(parties: Parties) -> None:
    order = await new_order(parties)
    await in_txn(ledger.post_payment(order, "CARD", "USD", 30_000, 840, AT))
    assert await ledger.order_money([order]) == {order: money(paid=30_000, held=30_000, fees=840)}


async def test_order_money_after_a_payment_without_fee(parties: Parties) -> None:
    order = await new_order(parties)
    await in_txn(ledger.post_payment(order, "TT", "USD", 30_000, 0, AT))
    assert await ledger.order_money([order]) == {order: money(paid=30_000, held=30_000)}


async def test_order_money_through_release_and_refund(parties: Parties) -> None:
    order = await new_order(parties)

    async def figures() -> OrderMoney:
        return (await ledger.order_money([order]))[order]

    assert await figures() == money()
    await in_txn(ledger.post_payment(order, "CARD", "USD", 30_000, 840, AT))
    await in_txn(ledger.post_payment(order, "CARD", "USD", 70_000, 1_960, AT))
    assert await figures() == money(paid=100_000, held=100_000, fees=2_800)

    await in_txn(ledger.post_release(order, parties.supplier_company, "USD", 30_000, AT))
    assert await figures() == money(paid=100_000, held=70_000, released=30_000, fees=2_800)

    # A started refund leaves escrow at once but is not refunded until the provider pays.
    await in_txn(ledger.post_refund_started(order, "USD", 20_000, AT))
    started = money(paid=100_000, held=50_000, released=30_000, refund_pending=20_000, fees=2_800)
    assert await figures() == started
    assert await ledger.check() == []  # a failed attempt posts nothing: still pending

    await in_txn(ledger.post_refund_settled(order, "CARD", "USD", 20_000, AT))
    assert await figures() == money(
        paid=100_000, held=50_000, released=30_000, refunded=20_000, fees=2_800
    )


async def test_order_money_for_many_orders_is_one_statement(
    parties: Parties, monkeypatch: pytest.MonkeyPatch
) -> None:
    usd, eur, jpy, quiet = [await new_order(parties, c) for c in ("USD", "EUR", "JPY", "GBP")]
    await in_txn(ledger.post_payment(usd, "CARD", "USD", 10_000, 280, AT))
    await in_txn(ledger.post_payment(eur, "TT", "EUR", 50_000, 0, AT))
    await in_txn(ledger.post_release(eur, parties.supplier_company, "EUR", 50_000, AT))
    await in_txn(ledger.post_payment(jpy, "CARD", "JPY", 9_000, 252, AT))
    await in_txn(ledger.post_refund_started(jpy, "JPY", 1_000, AT))

    # Plain statements all pass through models.sql._run on their way to the driver.
    statements: list[str] = []
    original = sql._run

    async def counting(template: str, *args: Any, **kwargs: Any) -> Any:
        statements.append(template)
        return await original(template, *args, **kwargs)

    monkeypatch.setattr(sql, "_run", counting)
    result = await ledger.order_money([quiet, jpy, eur, usd, usd, 999_999])
    assert len(statements) == 1
    assert result == {
        usd: money("USD", paid=10_000, held=10_000, fees=280),
        eur: money("EUR", paid=50_000, released=50_000),
        jpy: money("JPY", paid=9_000, held=8_000, refund_pending=1_000, fees=252),
        quiet: money("GBP"),  # no postings: zeros in the order's own currency
    }  # and the order that does not exist is simply absent

    statements.clear()
    assert await ledger.order_money([]) == {}
    assert statements == []


async def test_order_money_refuses_postings_in_another_currency(parties: Parties) -> None:
    order = await new_order(parties, "USD")
    await in_txn(ledger.post_payment(order, "CARD", "EUR", 100, 0, AT))
    with pytest.raises(LedgerError, match="not in USD"):
        await ledger.order_money([order])


async def test_held_reads_the_escrow_balance_inside_the_transaction(parties: Parties) -> None:
    order = await new_order(parties)
    assert await ledger.held(order) == 0
    async with db.write_transaction():
        await ledger.post_payment(order, "CARD", "USD", 10_000, 280, AT)
        assert await ledger.held(order) == 10_000  # its own uncommitted posting counts
        await ledger.post_release(order, parties.supplier_company, "USD", 2_500, AT)
        await ledger.post_refund_started(order, "USD", 500, AT)
        assert await ledger.held(order) == 7_000
    assert await ledger.held(order) == 7_000


# --- the invariant check -------------------------------------------------------------


async def realistic_books(parties: Parties) -> list[int]:
    """Payments with and without fees, partial and full release, refunds in every state."""
    a, b, c = [await new_order(parties, cur) for cur in ("USD", "USD", "EUR")]
    company = parties.supplier_company
    steps = [
        ledger.post_payment(a, "CARD", "USD", 30_000, 840, AT),
        ledger.post_payment(a, "CARD", "USD", 70_000, 1_960, AT),
        ledger.post_release(a, company, "USD", 30_000, AT),
        ledger.post_refund_started(a, "USD", 10_000, AT),
        ledger.post_refund_settled(a, "CARD", "USD", 10_000, AT),
        ledger.post_payment(b, "TT", "USD", 50_000, 0, AT),
        ledger.post_refund_started(b, "USD", 50_000, AT),  # full refund, still pending
        ledger.post_payment(c, "E_CHECKING", "EUR", 8_000, 0, AT),
        ledger.post_release(c, company, "EUR", 8_000, AT),
    ]
    for step in steps:
        await in_txn(step)
    return [a, b, c]


async def test_check_is_clean_on_empty_and_realistic_books(parties: Parties) -> None:
    assert await ledger.check() == []
    await realistic_books(parties)
    assert await ledger.check() == []
    assert await ledger.totals() == ledger.LedgerTotals(postings=20, transactions=9)


async def raw_txn(
    *legs: tuple[str, int],
    kind: str = "PAYMENT",
    currency: str = "USD",
    order_id: int | None = None,
    txn: str | None = None,
) -> str:
    """Rows written straight into the table, bypassing post()'s validation."""
    txn = txn or str(uuid.uuid4())
    await LedgerPosting.insert(
        *[
            LedgerPosting(
                txn=txn,
                kind=kind,
                order=order_id,
                account=account,
                currency=currency,
                amount_minor=amount,
                created_at=AT,
            )
            for account, amount in legs
        ]
    )
    return txn


Breakage = Callable[[int, int, Parties], Awaitable[Any]]


async def _unbalanced(o: int, _: int, __: Parties) -> None:
    await raw_txn(("provider:CARD", 90), (ledger.escrow(o), -100), order_id=o)


async def _one_leg(o: int, _: int, __: Parties) -> None:
    await raw_txn(("provider:CARD", 100), order_id=o)
    await raw_txn((ledger.escrow(o), -100), order_id=o)  # balances globally, not per txn


async def _zero_leg(o: int, _: int, __: Parties) -> None:
    await raw_txn(("provider:CARD", 100), (ledger.escrow(o), -100), ("fees:card", 0), order_id=o)


async def _mixed_currencies(o: int, _: int, __: Parties) -> None:
    txn = await raw_txn(("provider:CARD", 100), currency="USD", order_id=o)
    await raw_txn((ledger.escrow(o), -100), currency="EUR", order_id=o, txn=txn)


async def _mixed_kinds(o: int, _: int, __: Parties) -> None:
    txn = await raw_txn(("provider:CARD", 100), kind="RELEASE", order_id=o)
    await raw_txn((ledger.escrow(o), -100), kind="PAYMENT", order_id=o, txn=txn)


async def _unknown_kind(o: int, _: int, __: Parties) -> None:
    await raw_txn(("provider:CARD", 100), (ledger.escrow(o), -100), kind="BONUS", order_id=o)


async def _overdrawn_escrow(o: int, _: int, p: Parties) -> None:
    # Well-formed postings: guarding escrow with held() is the caller's job.
    await in_txn(ledger.post_payment(o, "CARD", "USD", 100, 0, AT))
    await in_txn(ledger.post_release(o, p.supplier_company, "USD", 150, AT))


async def _settled_before_started(o: int, _: int, __: Parties) -> None:
    await in_txn(ledger.post_refund_settled(o, "CARD", "USD", 50, AT))


async def _misfiled(o: int, other: int, __: Parties) -> None:
    await raw_txn(("provider:CARD", 100), (ledger.escrow(other), -100), order_id=o)


async def _spans_orders(o: int, other: int, __: Parties) -> None:
    txn = await raw_txn(("provider:CARD", 100), order_id=other)
    await raw_txn((ledger.escrow(o), -100), order_id=o, txn=txn)


async def _wrong_sign(o: int, _: int, p: Parties) -> None:
    await in_txn(ledger.post_payment(o, "CARD", "USD", 100, 0, AT))
    # A "release" that puts money into escrow instead of taking it out.
    supplier = ledger.supplier_payable(p.supplier_company)
    await raw_txn((ledger.escrow(o), -50), (supplier, 50), kind="RELEASE", order_id=o)


async def _foreign_currency(o: int, _: int, __: Parties) -> None:
    await in_txn(ledger.post_payment(o, "CARD", "EUR", 100, 0, AT))


VIOLATIONS: list[tuple[Breakage, list[str]]] = [
    (_unbalanced, ["USD legs sum to -0.10 USD, not 0", "all USD postings sum to -0.10 USD"]),
    (_one_leg, ["1 leg(s); a transaction needs at least 2"]),
    (_zero_leg, ["1 leg(s) of zero"]),
    (
        _mixed_currencies,
        [
            "mixes currencies EUR and USD",
            "EUR legs sum to -1.00 EUR",
            "all USD postings sum to 1.00 USD",
            "order {o}: 1 leg(s) not in the order's currency USD",
        ],
    ),
    (_mixed_kinds, ["mixes kinds PAYMENT and RELEASE"]),
    (_unknown_kind, ["unknown kind 'BONUS'"]),
    (
        _overdrawn_escrow,
        ["account escrow:order:{o}: debit balance 0.50 USD", "exceed paid 1.00 USD"],
    ),
    (
        _settled_before_started,
        ["account refund_pending:order:{o}: debit balance 0.50 USD", "exceed paid 0.00 USD"],
    ),
    (_misfiled, ["account escrow:order:{other}: 1 leg(s) filed under order {o}"]),
    (_spans_orders, ["legs belong to different orders"]),
    (_wrong_sign, ["held 1.50 USD is not paid - released - refunded - pending (1.00 USD)"]),
    (_foreign_currency, ["order {o}: 2 leg(s) not in the order's currency USD"]),
]


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [pytest.param(b, e, id=b.__name__.strip("_")) for b, e in VIOLATIONS],
)
async def test_check_reports_each_kind_of_violation(
    parties: Parties, breakage: Breakage, expected: list[str]
) -> None:
    sound = await realistic_books(parties)  # sound books around the broken part
    o, other = await new_order(parties), await new_order(parties)
    await breakage(o, other, parties)
    problems = await ledger.check()
    for text in expected:
        wanted = text.format(o=o, other=other)
        assert any(wanted in p for p in problems), (wanted, problems)
    for order in sound:  # the sound orders are not blamed
        assert not [p for p in problems if f"order {order}:" in p or f"order:{order}:" in p]


# --- the command ---------------------------------------------------------------------


async def ledger_check_command() -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        CLI,
        "ledger-check",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=ROOT,
    )  # the environment already points at the test database (TA_DATA_DIR/DATABASE_URL)
    out, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_the_ledger_check_command(parties: Parties) -> None:
    await realistic_books(parties)
    code, out = await ledger_check_command()
    assert (code, out.strip().splitlines()[-1]) == (0, "ledger OK: 20 postings, 9 transactions")

    order = await new_order(parties)
    await _overdrawn_escrow(order, 0, parties)
    code, out = await ledger_check_command()
    assert code == 1, out
    assert f"account escrow:order:{order}: debit balance 0.50 USD" in out
    assert "ledger BROKEN: 2 violation(s) in 24 postings, 11 transactions" in out


async def test_the_command_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    process = await asyncio.create_subprocess_exec(
        CLI,
        "ledger-check",
        env={**env, "TA_DATA_DIR": str(tmp_path)},  # a fresh SQLite file
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    _, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 3
    assert b"run `trade-assurance migrate` first" in err and b"Traceback" not in err
