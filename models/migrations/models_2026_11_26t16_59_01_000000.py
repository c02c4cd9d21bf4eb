"""Order conversation indexes (both engines).

`Order.messages` pages an order's messages by id, and `orderMessages` reads the order's
feed through the existing ("order", tx, id) index on order_event, keeping MESSAGE_SENT
events (or leaving them out) as a filter: one order's events are few, so the feed needs
no new index. A message names its event (unique), which is how a live event finds it."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from models.tables import OrderMessage

FORWARDS = ['CREATE INDEX order_message_page ON order_message ("order", id)']
BACKWARDS = ["DROP INDEX IF EXISTS order_message_page"]

ID = "2026-11-26T16:59:01:000000"
VERSION = "1.38.0"
DESCRIPTION = "Order conversation indexes"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="models", description=DESCRIPTION)

    async def run():
        for sql in FORWARDS:
            await OrderMessage.raw(sql)

    async def run_backwards():
        for sql in BACKWARDS:
            await OrderMessage.raw(sql)

    manager.add_raw(run)
    manager.add_raw_backwards(run_backwards)
    return manager
