"""One idempotency key per caller: a composite unique index, which Piccolo cannot declare.

Concurrent requests with the same key race to insert this row inside their transaction;
the losers wait for the winner and then read its answer.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from models.tables import IdempotencyRecord

ID = "2026-11-26T12:15:41:000000"
VERSION = "1.38.0"
DESCRIPTION = "Unique idempotency key per caller"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="models", description=DESCRIPTION)

    async def run():
        await IdempotencyRecord.raw(
            "CREATE UNIQUE INDEX idempotency_record_scope_key ON idempotency_record (scope, key)"
        )

    async def run_backwards():
        await IdempotencyRecord.raw("DROP INDEX IF EXISTS idempotency_record_scope_key")

    manager.add_raw(run)
    manager.add_raw_backwards(run_backwards)
    return manager
