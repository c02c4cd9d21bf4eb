"""Piccolo's SQLite engine, keeping its connections open.

Piccolo opens (and closes) a connection, with its own thread, for every query and every
transaction: about a millisecond of CPU each time, several per request. Here a few
connections stay open and are handed out again; `close()` on a handed-out connection
returns it instead. A statement outside a transaction is one hop to the connection's
thread (execute and fetch together); a write transaction runs on the event loop's thread
(below). Write transactions are still serialised by `models.db`, and WAL lets the readers
go on meanwhile.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import sqlite3
from collections.abc import Sequence
from typing import Any

import aiosqlite
from piccolo.engine.sqlite import SQLiteEngine, dict_factory

# Piccolo registers a converter for INTEGER columns, `int(Decimal(text))` in Python for
# every integer cell it reads (the order list reads thousands), to turn values like 1.0
# into 1. SQLite's INTEGER affinity already stores such values as integers, and sqlite3
# returns integers as `int` by itself: the same values, without a Python call per cell.
sqlite3.converters.pop("INTEGER", None)


@functools.lru_cache(maxsize=8192)
def _timestamptz(value: bytes) -> dt.datetime:
    # Piccolo's convert_timestamptz_out, without its str-or-bytes wrapper: sqlite3 always
    # hands a converter bytes (Piccolo's array converters call its own function). Kept:
    # the same rows are read again and again (an order polled for its status), and a
    # datetime is immutable, so the parsed value can be handed out again.
    return dt.datetime.fromisoformat(value.decode()).replace(tzinfo=dt.UTC)


sqlite3.register_converter("TIMESTAMPTZ", _timestamptz)

# Idle connections kept per event loop. A request reads through several DataLoaders at
# once (an order status: three), so 8 requests in flight hold up to 24 connections; with
# fewer kept, most of them were closed on return and opened again (a thread, the file,
# 3 PRAGMAs) by the next request: `python -m bench order-status` counted 1.8 opened per
# request at 8 connections with 8 kept.
MAX_IDLE = 32


class _Lent:
    """A pooled connection as Piccolo sees it: everything delegates, `close` gives back."""

    def __init__(self, engine: PooledSQLiteEngine, connection: aiosqlite.Connection) -> None:
        object.__setattr__(self, "_engine", engine)
        object.__setattr__(self, "_connection", connection)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._connection, name, value)

    async def close(self) -> None:
        await self._engine.give_back(self._connection)

    async def execute(self, statement: str, parameters: Sequence[Any] = ()) -> None:
        """Piccolo's transaction control: BEGIN, COMMIT, ROLLBACK, savepoints."""
        await self._engine.control(self._connection, statement, parameters)


class PooledSQLiteEngine(SQLiteEngine):
    def __init__(self, path: str, **connection_kwargs: Any) -> None:
        super().__init__(path=path, **connection_kwargs)
        # Idle connections per event loop (the CLI runs several loops one after another).
        self._idle: dict[asyncio.AbstractEventLoop, list[aiosqlite.Connection]] = {}
        # One plain connection per event loop for the short reads run on its thread
        # (`read_here`): they never overlap, so one is enough, and it needs no hand-out.
        self._readers: dict[asyncio.AbstractEventLoop, sqlite3.Connection] = {}
        self._busy_timeout_ms = int(float(connection_kwargs.get("timeout", 5.0)) * 1000)

    async def _take(self) -> aiosqlite.Connection:
        idle = self._idle.get(asyncio.get_running_loop())
        if idle:
            return idle.pop()
        pending = aiosqlite.connect(**self.connection_kwargs)
        # An idle pooled connection must not keep a finished process alive (a CLI command
        # ends its event loop without closing the pool). Idle means no open transaction,
        # and committed work is already durable (WAL, synchronous=FULL).
        pending._thread.daemon = True
        connection = await pending
        connection.row_factory = dict_factory  # type: ignore[assignment]
        return connection

    async def give_back(self, connection: aiosqlite.Connection) -> None:
        idle = self._idle.setdefault(asyncio.get_running_loop(), [])
        # A connection left inside a transaction (a failed rollback) is not reused.
        if connection.in_transaction or len(idle) >= MAX_IDLE:
            await connection.close()
        else:
            idle.append(connection)

    async def get_connection(self) -> Any:  # used by transactions
        return _Lent(self, await self._take())

    async def _run_in_new_connection(
        self,
        query: str,
        args: list[Any] | None = None,
        query_type: str = "generic",
        table: Any = None,
    ) -> Any:
        connection = await self._take()
        try:
            rows = await connection.execute_fetchall(query, args or [])
            if connection.in_transaction:  # a write outside a transaction; reads open none
                await connection.commit()
            return rows
        finally:
            await self.give_back(connection)

    async def read_here(self, query: str, args: Sequence[Any]) -> list[dict[str, Any]]:
        """A short read on this loop's reader connection, run on this thread
        (`models.sql.read`): outside a transaction (autocommit), so it sees the last
        commit and holds no lock."""
        loop = asyncio.get_running_loop()
        reader = self._readers.get(loop)
        if reader is None:
            reader = sqlite3.connect(**self.connection_kwargs)  # once per loop
            reader.row_factory = dict_factory
            self._readers[loop] = reader
        cursor = reader.execute(query, args)
        try:
            rows: list[dict[str, Any]] = cursor.fetchall()
            return rows
        finally:
            cursor.close()

    async def control(
        self, connection: aiosqlite.Connection, statement: str, parameters: Sequence[Any] = ()
    ) -> None:
        """A write transaction's BEGIN, COMMIT or ROLLBACK, on this thread.

        Each used to be a hop to the connection's thread and back, 12 per money path: at one
        path at a time that was a fifth of its time (`python -m bench money-path`: 97 -> 118
        paths/s; at 4 in flight 93 -> 123). COMMIT blocks the loop for its fsync, but the
        loop had nothing to do meanwhile that does not wait for this write lock anyway.
        BEGIN IMMEDIATE is tried without waiting: if another process holds the write lock
        (a CLI command), it waits on the connection's thread instead, so the loop never
        stalls for the busy timeout.
        """
        raw: sqlite3.Connection = connection._conn
        if not statement.startswith("BEGIN"):
            raw.execute(statement, parameters).close()
            return
        raw.execute("PRAGMA busy_timeout = 0")
        try:
            raw.execute(statement, parameters).close()
            return
        except sqlite3.OperationalError as error:
            if error.sqlite_errorcode != sqlite3.SQLITE_BUSY:
                raise
        finally:
            raw.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
        await connection.execute_fetchall(statement, parameters)

    async def _run_in_existing_connection(
        self,
        connection: Any,
        query: str,
        args: list[Any] | None = None,
        query_type: str = "generic",
        table: Any = None,
    ) -> Any:
        # Inside a write transaction (BEGIN IMMEDIATE, so this connection holds SQLite's
        # write lock and no statement waits for a lock) statements are short keyed reads and
        # writes: they run right here, microseconds each, instead of a hop to the
        # connection's thread and back (most of a transition's cost on a busy CPU); so do
        # BEGIN and COMMIT (`control`).
        # Piccolo's version also sent `PRAGMA foreign_keys = 1` before every statement; our
        # connections set it once (models.db). Inserts use RETURNING (SQLite >= 3.35).
        raw: sqlite3.Connection = connection._conn
        cursor = raw.execute(query, args or [])
        try:
            return cursor.fetchall()
        finally:
            cursor.close()

    async def close_idle(self) -> None:
        reader = self._readers.pop(asyncio.get_running_loop(), None)
        if reader is not None:
            reader.close()
        for connection in self._idle.pop(asyncio.get_running_loop(), []):
            await connection.close()
