"""Plain statements for the money path's keyed reads and writes, over Piccolo's engine.

Piccolo builds each query anew: measured on this code, an ORM insert costs about 140 µs
of CPU and a keyed `objects()` read about 180 µs, against 20-35 µs for the same statement
through `Table.raw`, and less again handed straight to the driver (`fetch`). A money
transition runs a dozen of them, so the hot path uses these instead. The tables,
migrations, transactions and connections stay Piccolo's; the SQL text is built once per
table and column set and cached; identifiers come from the table classes and every value
is a parameter.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from piccolo.table import Table

from models.db import engine, is_postgres

T = TypeVar("T", bound=Table)


@functools.lru_cache(maxsize=1024)
def _compiled(template: str, postgres: bool) -> str:
    """Piccolo's `{}` placeholders as the driver's: `$1, $2, …` or `?`."""
    parts = template.split("{}")
    if not postgres:
        return "?".join(parts)
    return "".join(part + (f"${i}" if i < len(parts) else "") for i, part in enumerate(parts, 1))


async def fetch(template: str, *args: Any) -> list[dict[str, Any]]:
    """Run one statement (`{}` for each value) straight on the driver: on the current
    transaction's connection, else a pooled one. Rows as dicts, like `Table.raw`."""
    return await _run(template, args, here=False)


async def read(template: str, *args: Any) -> list[dict[str, Any]]:
    """`fetch` for a short indexed read (by key, or a bounded range of an index). On
    SQLite outside a transaction it runs on the event loop's thread, as inside one: tens
    of microseconds, where the hop to a connection's thread and back costs more than the
    read (WAL readers take no lock, so nothing is waited for). Never for scans, searches
    or writes: those go to a connection's thread."""
    return await _run(template, args, here=True)


async def _run(template: str, args: tuple[Any, ...], *, here: bool) -> list[dict[str, Any]]:
    db: Any = engine()
    postgres = db.engine_type == "postgres"
    text = _compiled(template, postgres)
    transaction = db.current_transaction.get()
    if not postgres:  # sqlite3 rows are dicts already (models.sqlite_engine)
        if transaction is not None:
            rows: list[dict[str, Any]] = await db._run_in_existing_connection(
                transaction.connection, text, args
            )
        elif here:
            rows = await db.read_here(text, args)
        else:
            rows = await db._run_in_new_connection(text, list(args))
        return rows
    if transaction is not None:
        records = await transaction.connection.fetch(text, *args)
    elif db.pool is not None:
        async with db.pool.acquire() as connection:
            records = await connection.fetch(text, *args)
    else:  # a CLI command without a pool
        records = await db._run_in_new_connection(text, args)
    return [dict(r) for r in records]


def _q(name: str) -> str:
    return f'"{name}"'


@functools.cache
def _insert_sql(table: type[Table], columns: tuple[str, ...], rows: int) -> str:
    values = "(" + ", ".join("{}" for _ in columns) + ")"
    return (
        f"INSERT INTO {_q(table._meta.tablename)} ({', '.join(map(_q, columns))}) "  # noqa: S608
        f"VALUES {', '.join([values] * rows)} RETURNING {_q('id')}"
    )


async def insert(table: type[Table], values: Mapping[str, Any]) -> int:
    """Insert one row; its id."""
    return (await insert_many(table, [values]))[0]


async def insert_many(table: type[Table], rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """Insert rows with the same columns in one statement; their ids."""
    columns = tuple(rows[0])
    args = [row[c] for row in rows for c in columns]
    found = await fetch(_insert_sql(table, columns, len(rows)), *args)
    return [int(r["id"]) for r in found]


@functools.cache
def _update_sql(table: type[Table], columns: tuple[str, ...]) -> str:
    sets = ", ".join(f"{_q(c)} = {{}}" for c in columns)
    return f"UPDATE {_q(table._meta.tablename)} SET {sets} WHERE {_q('id')} = {{}}"  # noqa: S608


async def update(table: type[Table], row_id: int, values: Mapping[str, Any]) -> None:
    """Set some columns of one row."""
    await fetch(_update_sql(table, tuple(values)), *values.values(), row_id)


async def save_new(row: Table) -> None:
    """Insert a new table instance (every column but the id); sets its id."""
    values = {
        c._meta.db_column_name: getattr(row, c._meta.name)
        for c in row._meta.columns
        if c is not row._meta.primary_key
    }
    setattr(row, row._meta.primary_key._meta.name, await insert(type(row), values))
    row._exists_in_db = True


async def save_columns(row: Table, columns: Sequence[Any]) -> None:
    """Write these columns of an existing instance (as `row.save(columns)`)."""
    values = {c._meta.db_column_name: getattr(row, c._meta.name) for c in columns}
    await update(type(row), getattr(row, row._meta.primary_key._meta.name), values)


@functools.cache
def columns(table: type[Table], alias: str | None = None) -> str:
    """The table's declared columns for a SELECT list (not `*`: raw migrations may add
    columns the table class does not declare, such as PostgreSQL's search vector)."""
    prefix = f"{alias}." if alias else ""
    return ", ".join(prefix + _q(c._meta.db_column_name) for c in table._meta.columns)


@functools.cache
def _get_sql(table: type[Table], lock: bool) -> str:
    sql = f"SELECT {columns(table)} FROM {_q(table._meta.tablename)} WHERE {_q('id')} = {{}}"  # noqa: S608
    return sql + " FOR UPDATE" if lock else sql


@functools.lru_cache(maxsize=1024)
def _select_sql(table: type[Table], where: str, order_by: str, limited: bool) -> str:
    sql = f"SELECT {columns(table)} FROM {_q(table._meta.tablename)} WHERE {where}"  # noqa: S608
    if order_by:
        sql += f" ORDER BY {order_by}"
    return sql + " LIMIT {}" if limited else sql


def among(column: str, count: int) -> str:
    """`"column" IN ({}, {}, …)` for `count` values (texts are cached per count, and
    DataLoader batches and pages come in few sizes)."""
    return f"{_q(column)} IN ({', '.join(['{}'] * count)})"


async def select(
    table: type[T],
    where: str,
    *args: Any,
    order_by: str = "",
    limit: int | None = None,
    indexed: bool = True,
) -> list[T]:
    """Rows as table instances: `where` and `order_by` are SQL over the table's columns,
    with `{}` for each value (as `objects().where(...)`, without building the query).
    `indexed`: a short read (`read`); a filter that may scan goes to `fetch`."""
    text = _select_sql(table, where, order_by, limit is not None)
    values = (*args, limit) if limit is not None else args
    rows = await (read(text, *values) if indexed else fetch(text, *values))
    return [loaded(table, row) for row in rows]


def loaded(table: type[T], row: dict[str, Any]) -> T:
    """A table instance from a row holding every declared column, as Piccolo's
    `Table.__init__` makes it (each column an instance attribute) without its per-column
    default and keyword look-ups: about 100 µs a row on the order reads, against a few."""
    instance = table.__new__(table)
    instance.__dict__.update(row, _exists_in_db=True, _was_created=None)
    return instance


async def get(table: type[T], row_id: int, *, lock: bool = False) -> T | None:
    """One row by id as a table instance, locked until the transaction ends if `lock`
    (PostgreSQL; SQLite's write transaction already holds its single write lock)."""
    found = await read(_get_sql(table, lock and is_postgres()), row_id)
    return loaded(table, found[0]) if found else None
