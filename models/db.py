"""Database engines, write transactions and migrations, for SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

import asyncpg
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine, TransactionType

T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = int(os.environ.get("TA_SQLITE_BUSY_TIMEOUT_MS", "5000"))
# PostgreSQL: a statement waiting this long for a row lock (a transaction stuck holding
# it) gives up instead of holding a connection and its request; and no statement runs
# longer than the statement timeout. Both end in TRY_AGAIN for the client (is_transient).
PG_LOCK_TIMEOUT_MS = int(os.environ.get("TA_PG_LOCK_TIMEOUT_MS", "5000"))
PG_STATEMENT_TIMEOUT_MS = int(os.environ.get("TA_PG_STATEMENT_TIMEOUT_MS", "30000"))
# Serialises migrations when several gateway processes start at once on PostgreSQL.
_MIGRATION_LOCK_KEY = 0x7A5A_0001


class _TunedSQLiteConnection(sqlite3.Connection):
    """Every connection Piccolo opens gets the durability and locking settings we rely on."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Opened in aiosqlite's thread; statements of write transactions run on the event
        # loop's (models.sqlite_engine), never two at once. SQLite itself is serialized.
        kwargs["check_same_thread"] = False
        super().__init__(*args, **kwargs)
        self.execute("PRAGMA synchronous = FULL")
        self.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        self.execute("PRAGMA foreign_keys = ON")


def default_sqlite_path() -> Path:
    return Path(os.environ.get("TA_DATA_DIR", "data")) / "trade_assurance.sqlite3"


def make_engine(database_url: str | None) -> Engine[Any]:
    """`postgres://…` gives PostgreSQL; anything else (or nothing) gives the SQLite file."""
    if database_url and urlparse(database_url).scheme in ("postgres", "postgresql"):
        timeouts = {
            "lock_timeout": str(PG_LOCK_TIMEOUT_MS),
            "statement_timeout": str(PG_STATEMENT_TIMEOUT_MS),
        }
        return PostgresEngine(config={"dsn": database_url, "server_settings": timeouts})
    if database_url and database_url.startswith("sqlite:///"):
        path = Path(database_url.removeprefix("sqlite:///"))
    else:
        path = default_sqlite_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    from models.sqlite_engine import PooledSQLiteEngine

    return PooledSQLiteEngine(
        path=str(path), factory=_TunedSQLiteConnection, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000
    )


# SQLSTATEs: 40001 serialization failure, 40P01 deadlock (the transaction was rolled back
# and may simply run again); 55P03 lock not available, 57014 statement cancelled (a
# timeout: running again at once would likely wait as long).
RETRYABLE_STATES = frozenset({"40001", "40P01"})
# 57P01-57P03: the server shutting down or starting; class 08: the connection was lost.
TRANSIENT_STATES = RETRYABLE_STATES | {"55P03", "57014", "57P01", "57P02", "57P03"}


def is_retryable(error: BaseException | None) -> bool:
    return getattr(error, "sqlstate", None) in RETRYABLE_STATES


def is_transient(error: BaseException | None) -> bool:
    """A failure of the moment, not of the request: the database was busy (a lock or
    statement timeout, a deadlock, a serialization failure; SQLite's busy timeout) or
    the connection to it was lost."""
    if isinstance(error, sqlite3.OperationalError):
        return "locked" in str(error) or "busy" in str(error)
    if isinstance(error, OSError | asyncpg.InterfaceError | asyncpg.InternalClientError):
        return True  # the connection went away (a restart, a failover): the pool renews it
    state = getattr(error, "sqlstate", None)
    return state in TRANSIENT_STATES or (isinstance(state, str) and state.startswith("08"))


async def riding_out_outages(read: Callable[[], Awaitable[T]], *, patience: float) -> T:
    """`read()`, tried again while it fails transiently (is_transient), for `patience`
    seconds at most; then its last error. Only for reads, and only where nobody can retry
    later: a live event's payload is sent once, while a request is answered TRY_AGAIN."""
    loop = asyncio.get_running_loop()
    give_up, pause = loop.time() + patience, 0.05
    while True:
        try:
            return await read()
        except Exception as error:
            if not is_transient(error) or loop.time() + pause > give_up:
                raise
        await asyncio.sleep(pause)  # a pool renews its lost connections meanwhile
        pause = min(pause * 2, 1.0)


def engine() -> Engine[Any]:
    db: Engine[Any] = _table_meta().db
    return db


@functools.cache
def _table_meta() -> Any:
    # Imported on first use (models.tables imports this module); cached, because an
    # import statement in a function costs a trip through importlib on every call.
    from models.tables import Company

    return Company._meta


async def _keep_session(connection: Any) -> None:
    """asyncpg's default reset sends `pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *;
    RESET ALL` on every release: a round trip after each query outside a transaction. This
    code sets no session state, listens to nothing and takes advisory locks only on its own
    unpooled connection (migrations); the pool still rolls back an open transaction."""


async def open_pool(min_size: int, max_size: int) -> None:
    """PostgreSQL: this process's connection pool (SQLite opens per query, needs none)."""
    db = engine()
    if isinstance(db, PostgresEngine):
        await db.start_connection_pool(min_size=min_size, max_size=max_size, reset=_keep_session)


async def close_pool() -> None:
    from models.sqlite_engine import PooledSQLiteEngine

    db = engine()
    if isinstance(db, PostgresEngine):
        await db.close_connection_pool()
    elif isinstance(db, PooledSQLiteEngine):
        await db.close_idle()


async def ping() -> None:
    from models.tables import Company

    await Company.raw("SELECT 1")


def is_postgres() -> bool:
    return engine().engine_type == "postgres"


# SQLite has one writer at a time. This process's writers queue for it here, in order,
# instead of each holding a connection and polling the file lock: under a burst (say 100
# concurrent releases) some pollers otherwise outwait the busy timeout and fail with
# "database is locked". Other processes still wait on the file lock (busy timeout).
_sqlite_writers: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None


def _sqlite_writer_lock() -> asyncio.Lock:
    global _sqlite_writers
    loop = asyncio.get_running_loop()
    if _sqlite_writers is None or _sqlite_writers[0] is not loop:
        _sqlite_writers = (loop, asyncio.Lock())
    return _sqlite_writers[1]


# Called after each outermost write transaction commits (the SQLite live-event reader
# wakes up on it; PostgreSQL notifies through the database instead).
_commit_listeners: list[Callable[[], None]] = []


def on_commit(callback: Callable[[], None]) -> None:
    _commit_listeners.append(callback)


def remove_on_commit(callback: Callable[[], None]) -> None:
    if callback in _commit_listeners:
        _commit_listeners.remove(callback)


@asynccontextmanager
async def write_transaction() -> AsyncIterator[None]:
    """One atomic write: IMMEDIATE on SQLite (takes the write lock up front, so no
    deadlock-prone lock upgrade), an ordinary transaction on PostgreSQL (rows are locked
    with `lock_rows` by the code that needs them)."""
    db = engine()
    if isinstance(db, SQLiteEngine):
        if db.transaction_exists():  # nested: joins the outer one, which holds the lock
            async with db.transaction(transaction_type=TransactionType.immediate):
                yield
            return
        async with (
            _sqlite_writer_lock(),
            db.transaction(transaction_type=TransactionType.immediate),
        ):
            yield
        for callback in _commit_listeners:
            callback()
    else:
        transaction = db.transaction()
        try:
            async with transaction:
                yield
        finally:
            if db.current_transaction.get() is transaction:
                await _abandon(db, transaction)


async def _abandon(db: Any, transaction: Any) -> None:
    """Piccolo leaves a transaction current, and its connection out of the pool, when the
    COMMIT or ROLLBACK itself fails (the connection was lost mid-transaction): everything
    later in the same task joined the dead transaction, so a scheduler's sweeps failed
    until the process restarted. Forget it, and hand the connection back (the pool
    replaces a broken one)."""
    db.current_transaction.reset(transaction.context)
    if db.pool is not None and transaction.connection is not None:
        with contextlib.suppress(Exception):
            await db.pool.release(transaction.connection, timeout=5)


def for_update(query: Any) -> Any:
    """Lock the selected rows until the transaction ends. PostgreSQL only: on SQLite the
    IMMEDIATE write transaction already holds the database's single write lock."""
    return query.lock_rows() if is_postgres() else query


def is_unique_violation(error: BaseException) -> bool:
    """A unique constraint refused an insert (a concurrent request got there first)."""
    import asyncpg

    return isinstance(error, asyncpg.UniqueViolationError) or (
        isinstance(error, sqlite3.IntegrityError) and "UNIQUE" in str(error)
    )


async def check_sqlite_settings() -> dict[str, Any]:
    """Put the file in WAL mode and prove the per-connection settings hold; raise if not."""
    db = engine()
    assert isinstance(db, SQLiteEngine)
    rows = await db._run_in_new_connection("PRAGMA journal_mode = WAL")
    found = {
        "journal_mode": rows[0]["journal_mode"],
        "synchronous": (await db._run_in_new_connection("PRAGMA synchronous"))[0]["synchronous"],
        "busy_timeout": (await db._run_in_new_connection("PRAGMA busy_timeout"))[0]["timeout"],
    }
    expected = {"journal_mode": "wal", "synchronous": 2, "busy_timeout": SQLITE_BUSY_TIMEOUT_MS}
    if found != expected:
        raise RuntimeError(f"SQLite settings are {found}, expected {expected}")
    return found


async def pending_migrations() -> list[str]:
    from piccolo.apps.migrations.commands.check import CheckMigrationManager

    statuses = await CheckMigrationManager(app_name="all").get_migration_statuses()
    return [s.migration_id for s in statuses if not s.has_ran]


async def apply_migrations() -> list[str]:
    """Run every pending migration; returns the ids applied. Safe with concurrent starters."""
    from piccolo.apps.migrations.commands.forwards import run_forwards

    db = engine()
    if isinstance(db, PostgresEngine):
        if not await pending_migrations():
            return []  # nothing to wait for (a starter used to queue behind a migration)
        # A session-level advisory lock on a dedicated connection: the other starters wait,
        # as long as the migration takes (the pool's lock and statement timeouts would end
        # the wait after a few seconds, and the starter with it).
        conn = await db.get_new_connection()
        try:
            await conn.execute("SET lock_timeout = 0; SET statement_timeout = 0")
            await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK_KEY)
            pending = await pending_migrations()
            if pending:
                await _forwards(run_forwards)
            await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK_KEY)
        finally:
            await conn.close()
        return pending
    await check_sqlite_settings()
    pending = await pending_migrations()
    if pending:
        await _forwards(run_forwards)
    return pending


async def _forwards(run_forwards: Any) -> None:
    result = await run_forwards(app_name="all")
    if not result.success:
        raise RuntimeError(f"migrations failed: {result.message}")
