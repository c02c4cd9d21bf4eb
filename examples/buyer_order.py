"""A buyer's order, start to finish, in two steps around the supplier's shipment.

    python examples/buyer_order.py place
        The buyer places an order with the supplier (the demo supplier by default), the
        supplier confirms it, and the buyer pays the initial payment and then the balance
        by card into escrow. Prints the order's ID.
    python examples/ship_order.py --order <ID>            (the supplier ships)
    python examples/buyer_order.py release --order <ID>
        The buyer confirms receipt of the goods and releases the money escrow holds to
        the supplier.

Payments go through the sandbox provider: card 4242424242424242 succeeds,
4000000000000002 is declined (`--card`). Each money mutation carries an idempotency
key made from the order's ID, so running a step again moves no money twice.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os

from _gateway import Gateway, log_in, parser

ERRORS = "errors { code field message }"
MONEY = "{ amount currency }"
SUPPLIER_ID = "query { viewer { company { supplier { id legalName } } } }"
CREATE = f"""mutation PlaceOrder($input: CreateOrderInput!) {{
  createOrder(input: $input) {{ order {{ id status total {MONEY} }} {ERRORS} }} }}"""
CONFIRM = f"""mutation ConfirmOrder($input: OrderIdInput!) {{
  confirmOrder(input: $input) {{
    order {{ status paymentDeadline initialPayment {MONEY} balance {MONEY}
             coverage {{ cap {MONEY} }} }}
    {ERRORS} }} }}"""
PAY = f"""mutation Pay($input: PayOrderInput!) {{
  payOrder(input: $input) {{
    payment {{ reference status amount {MONEY} fee {MONEY} }}
    order {{ status money {{ paid {MONEY} held {MONEY} }} }}
    {ERRORS} }} }}"""
RECEIPT = f"""mutation ConfirmReceipt($input: OrderIdInput!) {{
  confirmReceipt(input: $input) {{
    order {{ status receipt {{ receivedAt claimWindowEndsAt }} }} {ERRORS} }} }}"""
RELEASE = f"""mutation Release($input: ReleaseFundsInput!) {{
  releaseFunds(input: $input) {{
    released {MONEY}
    order {{ status money {{ held {MONEY} released {MONEY} }} }}
    {ERRORS} }} }}"""


def money(m: dict[str, str]) -> str:
    return f"{m['amount']} {m['currency']}"


def pay(buyer: Gateway, order_id: str, amount: dict[str, str], card: str, key: str) -> None:
    paid = buyer.run(
        PAY,
        input={
            "orderId": order_id,
            "amount": amount,
            "method": "CARD",
            "paymentSource": card,
            "idempotencyKey": f"{order_id}-{key}",
        },
    )["payOrder"]
    payment, order = paid["payment"], paid["order"]
    print(
        f"paid the {key} payment {payment['reference']}: {money(payment['amount'])} "
        f"(+ card fee {money(payment['fee'])}), {payment['status']}; order {order['status']}, "
        f"escrow holds {money(order['money']['held'])}"
    )


def place(args: argparse.Namespace) -> None:
    buyer, supplier = log_in(args, "buyer"), log_in(args, "supplier")
    supplier_id = args.supplier_id
    if supplier_id is None:  # the logged-in supplier's own profile
        supplier_id = supplier.run(SUPPLIER_ID)["viewer"]["company"]["supplier"]["id"]
    deadline = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
    contract = {
        "currency": "USD",
        "lines": [
            {
                "productName": "LED panel 600x600",
                "specification": "40 W, 4000 K",
                "quantity": 100,
                "unitPrice": "30.00",
            }
        ],
        "qualityRequirements": [{"attribute": "luminous flux", "requirement": ">= 3600 lm"}],
        "incoterm": "FOB",
        "shippingMethod": "SEA",
        "destinationCountry": "US",
        "shippingDeadline": deadline.isoformat(),
        "initialPayment": "900.00",  # a 30% deposit; the balance is due before shipment
    }
    created = buyer.run(CREATE, input={"supplierId": supplier_id, "contract": contract})
    order = created["createOrder"]["order"]
    order_id = order["id"]
    print(f"placed order {order_id}: {order['status']}, total {money(order['total'])}")

    confirmed = supplier.run(CONFIRM, input={"orderId": order_id})["confirmOrder"]["order"]
    print(
        f"the supplier confirmed it: {confirmed['status']}, covered up to "
        f"{money(confirmed['coverage']['cap'])}, pay by {confirmed['paymentDeadline']}"
    )
    pay(buyer, order_id, confirmed["initialPayment"], args.card, "initial")
    pay(buyer, order_id, confirmed["balance"], args.card, "balance")
    print(f"next, the supplier ships: python examples/ship_order.py --order {order_id}")


def release(args: argparse.Namespace) -> None:
    buyer = log_in(args, "buyer")
    received = buyer.run(RECEIPT, input={"orderId": args.order})["confirmReceipt"]["order"]
    print(
        f"confirmed receipt: {received['status']}, "
        f"claim window ends {received['receipt']['claimWindowEndsAt']}"
    )
    key = f"{args.order}-release"
    done = buyer.run(RELEASE, input={"orderId": args.order, "idempotencyKey": key})
    released, order = done["releaseFunds"]["released"], done["releaseFunds"]["order"]
    print(
        f"released {money(released)} to the supplier; order {order['status']}, escrow holds "
        f"{money(order['money']['held'])}, released in all {money(order['money']['released'])}"
    )


def main() -> None:
    p = parser(__doc__, "buyer", "supplier")
    p.add_argument("step", choices=["place", "release"])
    p.add_argument("--order", help="release: the order's global ID")
    p.add_argument("--supplier-id", help="place: a Supplier's global ID (default: the supplier's)")
    p.add_argument(
        "--card",
        default=os.environ.get("TA_CARD", "4242424242424242"),
        help="place: the sandbox test card to pay with [TA_CARD]",
    )
    args = p.parse_args()
    if args.step == "place":
        place(args)
    elif args.order is None:
        p.error("release needs --order")
    else:
        release(args)


if __name__ == "__main__":
    main()
