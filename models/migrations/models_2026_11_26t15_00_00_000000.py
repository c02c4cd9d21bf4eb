"""The order-event feed: a position that is safe to resume from (raw SQL).

Event ids come from a sequence, so a transaction can take id 104, commit after the one
that took 105, and a reader that saw 105 and resumes "after 105" would miss 104. On
PostgreSQL each event also records its transaction id (`tx`, xid8); readers take only
events whose transactions have all finished (`tx` below the oldest transaction of this
database still running, see models.feed) in (tx, id) order, a position no later commit
can fall behind. A trigger sends the event id with `pg_notify` in the writing
transaction: it is delivered on commit and never on rollback. SQLite has one writer at a time, so ids are already in
commit order; `tx` is 0 there and the same (tx, id) queries hold.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.postgres import PostgresEngine

from models.tables import OrderEvent

POSTGRES_FORWARDS = [
    "ALTER TABLE order_event ADD COLUMN tx xid8 NOT NULL DEFAULT pg_current_xact_id()",
    "CREATE INDEX order_event_feed ON order_event (tx, id)",
    'CREATE INDEX order_event_order_feed ON order_event ("order", tx, id)',
    """CREATE FUNCTION order_event_notify() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN PERFORM pg_notify('order_events', NEW.id::text); RETURN NULL; END $$""",
    """CREATE TRIGGER order_event_notify AFTER INSERT ON order_event
    FOR EACH ROW EXECUTE FUNCTION order_event_notify()""",
]
POSTGRES_BACKWARDS = [
    "DROP TRIGGER IF EXISTS order_event_notify ON order_event",
    "DROP FUNCTION IF EXISTS order_event_notify()",
    "DROP INDEX IF EXISTS order_event_order_feed",
    "DROP INDEX IF EXISTS order_event_feed",
    "ALTER TABLE order_event DROP COLUMN IF EXISTS tx",
]
SQLITE_FORWARDS = [
    "ALTER TABLE order_event ADD COLUMN tx INTEGER NOT NULL DEFAULT 0",
    "CREATE INDEX order_event_feed ON order_event (tx, id)",
    'CREATE INDEX order_event_order_feed ON order_event ("order", tx, id)',
]
SQLITE_BACKWARDS = [
    "DROP INDEX IF EXISTS order_event_order_feed",
    "DROP INDEX IF EXISTS order_event_feed",
    "ALTER TABLE order_event DROP COLUMN tx",
]

ID = "2026-11-26T15:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "Order-event feed position (tx, id) and pg_notify on insert"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="models", description=DESCRIPTION)
    postgres = isinstance(OrderEvent._meta.db, PostgresEngine)

    async def run():
        for sql in POSTGRES_FORWARDS if postgres else SQLITE_FORWARDS:
            await OrderEvent.raw(sql)

    async def run_backwards():
        for sql in POSTGRES_BACKWARDS if postgres else SQLITE_BACKWARDS:
            await OrderEvent.raw(sql)

    manager.add_raw(run)
    manager.add_raw_backwards(run_backwards)
    return manager
