"""Refunds already waiting (PENDING after a crash, or FAILED) get a retry time, so the
sweep takes them: the column it selects on is new and would otherwise leave them NULL."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from models.tables import Refund

ID = "2026-11-26T17:10:01:000000"
VERSION = "1.38.0"
DESCRIPTION = "Waiting refunds are due for a retry"

FORWARDS = [
    "UPDATE refund SET next_attempt_at = created_at"
    " WHERE status IN ('PENDING', 'FAILED') AND next_attempt_at IS NULL",
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="models", description=DESCRIPTION)

    async def run():
        for sql in FORWARDS:
            await Refund.raw(sql)

    async def run_backwards():
        pass  # the column goes with the previous migration's backwards step

    manager.add_raw(run)
    manager.add_raw_backwards(run_backwards)
    return manager
