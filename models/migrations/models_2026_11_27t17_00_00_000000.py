"""Orders waiting for their balance with a deposit paid are due at their shipping deadline.

`deadlines.next_due` gave such an order no deadline, so the sweep never marked it OVERDUE
when the deadline passed; it now gives the shipping deadline. This schedules the orders
left unscheduled by the old rule (not those with a goods payment pending: its outcome
schedules them).
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from models.tables import Order

ID = "2026-11-27T17:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "Deposit-paid orders are due at their shipping deadline"

BACKFILL = """
UPDATE trade_order SET next_deadline_at = shipping_deadline
WHERE status IN ('AWAITING_INITIAL_PAYMENT', 'AWAITING_BALANCE')
  AND next_deadline_at IS NULL
  AND EXISTS (SELECT 1 FROM payment p WHERE p."order" = trade_order.id
              AND p.inspection IS NULL AND p.status = 'SUCCEEDED')
  AND NOT EXISTS (SELECT 1 FROM payment p WHERE p."order" = trade_order.id
                  AND p.inspection IS NULL AND p.status = 'PENDING')
"""


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="models", description=DESCRIPTION)

    async def run():
        await Order.raw(BACKFILL)

    manager.add_raw(run)  # nothing to undo: the old rule ignores the deadline
    return manager
