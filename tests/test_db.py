"""The database layer itself: settings, migrations, atomic writes."""

from __future__ import annotations

import pytest

from models import accounts, clock, db
from models.enums import CompanyKind
from models.errors import DomainError, ErrorCode
from models.tables import Company, UserAccount
from tests.conftest import ENGINE
from tests.factories import PASSWORD


async def test_no_migration_is_pending() -> None:
    assert await db.pending_migrations() == []
    assert await db.apply_migrations() == []


@pytest.mark.skipif(ENGINE != "sqlite", reason="SQLite file settings")
async def test_sqlite_runs_in_wal_with_full_sync_and_busy_timeout() -> None:
    assert await db.check_sqlite_settings() == {
        "journal_mode": "wal",
        "synchronous": 2,
        "busy_timeout": db.SQLITE_BUSY_TIMEOUT_MS,
    }


async def test_failed_registration_leaves_nothing_behind() -> None:
    await accounts.register(
        company_name="First",
        kind=CompanyKind.BUYER,
        country="US",
        email="taken@example.com",
        password=PASSWORD,
        full_name="A",
    )
    with pytest.raises(DomainError) as e:
        # The company insert succeeds, the user insert fails: both must roll back.
        await accounts.register(
            company_name="Second",
            kind=CompanyKind.BUYER,
            country="US",
            email="taken@example.com",
            password=PASSWORD,
            full_name="B",
        )
    assert e.value.code is ErrorCode.EMAIL_TAKEN
    assert await Company.count() == 1
    assert await UserAccount.count() == 1


async def test_ledger_postings_are_append_only() -> None:
    from models import ledger
    from models.tables import LedgerPosting

    async with db.write_transaction():
        await ledger.post(
            ledger.PostingKind.PAYMENT,
            "USD",
            [ledger.Leg("provider:CARD", 100), ledger.Leg("fees:card", -100)],
            order_id=None,
            at=clock.now(),
        )
    with pytest.raises(Exception, match="append-only"):
        await LedgerPosting.update({LedgerPosting.amount_minor: 1}).where(
            LedgerPosting.amount_minor == 100
        )
    with pytest.raises(Exception, match="append-only"):
        await LedgerPosting.delete().where(LedgerPosting.amount_minor == 100)
    assert await LedgerPosting.count() == 2
