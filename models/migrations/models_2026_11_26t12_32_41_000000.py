"""Money integrity the database itself enforces (raw SQL: Piccolo declares neither).

- One idempotency key per caller: a composite unique index. Concurrent requests with the
  same key race to insert the row inside their transaction; only one can.
- Ledger postings are append-only: triggers refuse UPDATE and DELETE on both engines, so
  a mistake can only be corrected by a new posting.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from piccolo.engine.postgres import PostgresEngine

from models.tables import IdempotencyRecord

SQLITE_FORWARDS = [
    """CREATE TRIGGER ledger_posting_no_update BEFORE UPDATE ON ledger_posting
    BEGIN SELECT RAISE(ABORT, 'ledger postings are append-only'); END""",
    """CREATE TRIGGER ledger_posting_no_delete BEFORE DELETE ON ledger_posting
    BEGIN SELECT RAISE(ABORT, 'ledger postings are append-only'); END""",
]
SQLITE_BACKWARDS = [
    "DROP TRIGGER IF EXISTS ledger_posting_no_update",
    "DROP TRIGGER IF EXISTS ledger_posting_no_delete",
]
POSTGRES_FORWARDS = [
    """CREATE FUNCTION ledger_posting_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'ledger postings are append-only'; END $$""",
    """CREATE TRIGGER ledger_posting_append_only BEFORE UPDATE OR DELETE ON ledger_posting
    FOR EACH ROW EXECUTE FUNCTION ledger_posting_append_only()""",
]
POSTGRES_BACKWARDS = [
    "DROP TRIGGER IF EXISTS ledger_posting_append_only ON ledger_posting",
    "DROP FUNCTION IF EXISTS ledger_posting_append_only()",
]

ID = "2026-11-26T12:32:41:000000"
VERSION = "1.38.0"
DESCRIPTION = "Unique idempotency key per caller; append-only ledger"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="models", description=DESCRIPTION)

    postgres = isinstance(IdempotencyRecord._meta.db, PostgresEngine)

    async def run():
        await IdempotencyRecord.raw(
            "CREATE UNIQUE INDEX idempotency_record_scope_key ON idempotency_record (scope, key)"
        )
        for sql in POSTGRES_FORWARDS if postgres else SQLITE_FORWARDS:
            await IdempotencyRecord.raw(sql)

    async def run_backwards():
        for sql in POSTGRES_BACKWARDS if postgres else SQLITE_BACKWARDS:
            await IdempotencyRecord.raw(sql)
        await IdempotencyRecord.raw("DROP INDEX IF EXISTS idempotency_record_scope_key")

    manager.add_raw(run)
    manager.add_raw_backwards(run_backwards)
    return manager
