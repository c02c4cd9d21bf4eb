"""Due-deadline indexes (raw SQL: Piccolo declares neither partial nor composite indexes).

- The deadline sweep selects `next_deadline_at <= now ORDER BY next_deadline_at`: a
  partial index holds only the orders with a pending deadline, so it stays small however
  many orders have ended, and the selection is a range scan in due order.
- A supplier's "shipping deadline within N days" view: (supplier, status,
  shipping_deadline).
Both engines support partial indexes with the same syntax.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from models.tables import Order

ID = "2026-11-26T14:10:27:000000"
VERSION = "1.38.0"
DESCRIPTION = "Due-deadline indexes"

FORWARDS = [
    "CREATE INDEX trade_order_next_deadline ON trade_order (next_deadline_at)"
    " WHERE next_deadline_at IS NOT NULL",
    "CREATE INDEX trade_order_supplier_shipping"
    " ON trade_order (supplier, status, shipping_deadline)",
]
BACKWARDS = [
    "DROP INDEX IF EXISTS trade_order_supplier_shipping",
    "DROP INDEX IF EXISTS trade_order_next_deadline",
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="models", description=DESCRIPTION)

    async def run():
        for sql in FORWARDS:
            await Order.raw(sql)

    async def run_backwards():
        for sql in BACKWARDS:
            await Order.raw(sql)

    manager.add_raw(run)
    manager.add_raw_backwards(run_backwards)
    return manager
