"""The database layer itself: settings, migrations, atomic writes."""

from __future__ import annotations

import asyncio
import os
import sqlite3

import pytest
from piccolo.engine.sqlite import SQLiteEngine

from models import accounts, clock, db, sql
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


@pytest.mark.skipif(ENGINE != "sqlite", reason="SQLite's file lock")
async def test_a_write_waiting_for_another_process_lock_does_not_stall_the_loop() -> None:
    """Write transactions BEGIN on the event loop's thread; while another connection (a CLI
    command, say) holds the write lock, the wait moves to the connection's thread."""
    engine = db.engine()
    assert isinstance(engine, SQLiteEngine)
    other = sqlite3.connect(engine.connection_kwargs["database"], isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:

        async def write() -> None:
            async with db.write_transaction():
                await Company.insert(Company(legal_name="Waited", kind="BUYER", country="US"))

        writer = asyncio.create_task(write())
        started = asyncio.get_running_loop().time()
        await asyncio.sleep(0.2)  # a stalled loop would resume only after the busy timeout
        assert asyncio.get_running_loop().time() - started < 1.0
        assert not writer.done()
    finally:
        other.execute("ROLLBACK")
        other.close()
    await asyncio.wait_for(writer, 5)
    assert await Company.count().where(Company.legal_name == "Waited") == 1


async def test_riding_out_outages_tries_transient_failures_again_within_its_patience() -> None:
    outcomes: list[BaseException | str] = [ConnectionResetError("cut"), sqlite3.OperationalError(
        "database is locked"), "read"]  # fmt: skip

    async def read() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    assert await db.riding_out_outages(read, patience=5) == "read"
    assert not outcomes

    async def broken() -> str:
        outcomes.append("called")
        raise ValueError("not the database's moment: a bug")

    with pytest.raises(ValueError, match="a bug"):
        await db.riding_out_outages(broken, patience=5)
    assert outcomes == ["called"]  # not tried again

    async def away() -> str:
        outcomes.append("called")
        raise ConnectionRefusedError("still away")

    outcomes.clear()
    with pytest.raises(ConnectionRefusedError):
        await db.riding_out_outages(away, patience=0.3)
    assert 2 <= len(outcomes) <= 3  # pauses of 0.05 and 0.1 s fit in 0.3 s, 0.2 more would not


@pytest.mark.skipif(ENGINE != "postgres", reason="Piccolo's PostgreSQL transaction")
async def test_a_transaction_whose_rollback_fails_is_not_left_current(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A connection lost mid-transaction: the ROLLBACK raises, and Piccolo left the dead
    # transaction current (and its connection out of the pool), so the scheduler's later
    # sweeps in the same task all joined it and failed.
    from piccolo.engine.postgres import PostgresTransaction

    async def lost(self: PostgresTransaction) -> None:
        raise ConnectionResetError("the connection was lost")

    monkeypatch.setattr(PostgresTransaction, "rollback", lost)
    for _ in range(25):  # more than the pool holds: a connection kept out would exhaust it
        with pytest.raises(ConnectionResetError):
            async with db.write_transaction():
                await sql.fetch("SELECT 1")
                raise RuntimeError("the work failed")
        assert db.engine().current_transaction.get() is None
    monkeypatch.undo()
    async with asyncio.timeout(5), db.write_transaction():
        assert await sql.fetch("SELECT 1 AS one") == [{"one": 1}]


@pytest.mark.skipif(ENGINE != "postgres", reason="PostgreSQL's advisory lock")
async def test_a_starter_waits_for_a_migration_longer_than_the_lock_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The pool's lock_timeout also ended the wait for the migration lock: a process that
    # started while another migrated for more than a few seconds crashed.
    import asyncpg

    holder = await asyncpg.connect(os.environ["TEST_DATABASE_URL"])
    try:
        await holder.execute("SELECT pg_advisory_lock($1)", db._MIGRATION_LOCK_KEY)

        async def pending() -> list[str]:
            return ["one being applied by the other process"]

        monkeypatch.setattr(db, "pending_migrations", pending)
        starter = asyncio.create_task(db.apply_migrations())
        await asyncio.sleep(db.PG_LOCK_TIMEOUT_MS / 1000 + 0.5)
        assert not starter.done()  # still waiting, not failed
        await holder.execute("SELECT pg_advisory_unlock($1)", db._MIGRATION_LOCK_KEY)
        await asyncio.wait_for(starter, 10)
    finally:
        await holder.close()
