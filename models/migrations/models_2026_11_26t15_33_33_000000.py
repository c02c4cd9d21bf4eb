"""At most one OPEN investigation per supplier (a partial unique index, both engines).

The domain checks it under the supplier's row lock; the index makes it a database fact."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from models.tables import Investigation

FORWARDS = [
    "CREATE UNIQUE INDEX investigation_one_open ON investigation (supplier) WHERE status = 'OPEN'",
    "CREATE INDEX penalty_point_unconsumed ON penalty_point (supplier) WHERE investigation IS NULL",
]
BACKWARDS = [
    "DROP INDEX IF EXISTS penalty_point_unconsumed",
    "DROP INDEX IF EXISTS investigation_one_open",
]

ID = "2026-11-26T15:33:33:000000"
VERSION = "1.38.0"
DESCRIPTION = "One open investigation per supplier"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="models", description=DESCRIPTION)

    async def run():
        for sql in FORWARDS:
            await Investigation.raw(sql)

    async def run_backwards():
        for sql in BACKWARDS:
            await Investigation.raw(sql)

    manager.add_raw(run)
    manager.add_raw_backwards(run_backwards)
    return manager
