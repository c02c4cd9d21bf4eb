"""The supplier ships a paid order: carrier, tracking number, method and date.

python examples/ship_order.py --order <ID> --carrier Maersk --tracking MAEU1234567
"""

from __future__ import annotations

import datetime as dt

from _gateway import log_in, parser

SHIP = """mutation Ship($input: ShipOrderInput!) {
  shipOrder(input: $input) {
    order { status shippingDeadline
            shipment { carrier trackingNumber method shippedAt late } }
    errors { code field message } } }"""


def main() -> None:
    p = parser(__doc__, "supplier")
    p.add_argument("--order", required=True, help="the order's global ID")
    p.add_argument("--carrier", default="Maersk")
    p.add_argument("--tracking", default="MAEU1234567", help="the tracking number")
    p.add_argument("--method", default="SEA", choices=["EXPRESS", "AIR", "SEA", "LAND"])
    args = p.parse_args()
    supplier = log_in(args, "supplier")

    shipment = {
        "orderId": args.order,
        "carrier": args.carrier,
        "trackingNumber": args.tracking,
        "method": args.method,
        "shippedAt": dt.datetime.now(dt.UTC).isoformat(),  # not in the future
    }
    order = supplier.run(SHIP, input=shipment)["shipOrder"]["order"]
    s = order["shipment"]
    print(
        f"shipped order {args.order}: {order['status']}, {s['carrier']} {s['trackingNumber']} "
        f"by {s['method']} on {s['shippedAt']}"
        + (" (late: after the shipping deadline)" if s["late"] else " (on time)")
    )
    print(f"next, the buyer: python examples/buyer_order.py release --order {args.order}")


if __name__ == "__main__":
    main()
