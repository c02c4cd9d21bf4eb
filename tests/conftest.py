"""Test set-up: a real database for the whole run, emptied before every test.

SQLite (default): a fresh file in a temporary directory.
PostgreSQL: set TEST_DATABASE_URL=postgres://…/<db>; the database's `public` schema is
dropped and rebuilt from the migrations, so the name must contain "test".
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlparse

# Choose the engine before anything imports piccolo_conf.
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")
if TEST_DATABASE_URL.startswith(("postgres://", "postgresql://")):
    if "test" not in (urlparse(TEST_DATABASE_URL).path or ""):
        raise SystemExit("TEST_DATABASE_URL must name a database containing 'test'")
    os.environ["DATABASE_URL"] = TEST_DATABASE_URL
    ENGINE = "postgres"
else:
    os.environ.pop("DATABASE_URL", None)
    os.environ["TA_DATA_DIR"] = tempfile.mkdtemp(prefix="ta-test-")
    ENGINE = "sqlite"
os.environ.setdefault("TA_LOG_LEVEL", "warning")
# Inspection report files go to a temporary directory, on either engine.
os.environ["TA_UPLOAD_DIR"] = tempfile.mkdtemp(prefix="ta-test-uploads-")

import pytest  # noqa: E402

from models import accounts, clock, config, db, ledger, provider  # noqa: E402
from models.tables import ALL_TABLES  # noqa: E402
from server.payments.sandbox import SandboxProvider  # noqa: E402


def pytest_report_header() -> str:
    where = TEST_DATABASE_URL if ENGINE == "postgres" else os.environ["TA_DATA_DIR"]
    return f"database engine: {ENGINE} ({where})"


@pytest.fixture(scope="session", autouse=True)
async def database() -> AsyncIterator[None]:
    if ENGINE == "postgres":
        engine = db.engine()
        await engine.run_ddl("DROP SCHEMA public CASCADE")
        await engine.run_ddl("CREATE SCHEMA public")
    await db.apply_migrations()
    # As in a server process: PostgreSQL connections come from a bounded pool (without
    # one, Piccolo opens a connection per transaction and a burst of 100 runs the server
    # out of connections).
    await db.open_pool(1, 20)
    yield
    await db.close_pool()


async def _empty_tables() -> None:
    names = [t._meta.tablename for t in ALL_TABLES]
    if ENGINE == "postgres":
        await ALL_TABLES[0].raw(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE")
    else:
        # The append-only ledger's triggers refuse DELETE: lift them for the clean-up only.
        triggers = await ALL_TABLES[0].raw(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
            "AND tbl_name = 'ledger_posting'"
        )
        async with db.write_transaction():
            for trigger in triggers:
                await ALL_TABLES[0].raw(f"DROP TRIGGER {trigger['name']}")
            for name in reversed(names):
                await ALL_TABLES[0].raw(f"DELETE FROM {name}")  # noqa: S608
            for trigger in triggers:
                await ALL_TABLES[0].raw(trigger["sql"])


@pytest.fixture(autouse=True)
async def clean(database: None) -> AsyncIterator[None]:
    """Every test starts from empty tables, default settings, the real clock and no
    cached credential look-ups."""
    await _empty_tables()
    accounts.forget_sessions()
    config.configure(config.DomainConfig())
    clock.reset_clock()
    yield
    clock.reset_clock()
    config.configure(config.DomainConfig())


@pytest.fixture
def frozen_clock() -> Iterator[clock.FrozenClock]:
    """Time stands still at a Friday noon (UTC) until the test advances it."""
    import datetime as dt

    fixed = clock.FrozenClock(dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC))
    clock.set_clock(fixed)
    yield fixed
    clock.reset_clock()


@pytest.fixture
async def sandbox() -> AsyncIterator[SandboxProvider]:
    """The sandbox payment provider for the test; the ledger must be sound after it."""
    sbx = SandboxProvider()
    provider.set_provider(sbx)
    yield sbx
    assert await ledger.check() == []
