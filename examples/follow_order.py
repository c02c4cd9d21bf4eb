"""Follow an order live over WebSocket: print each of its events as it happens.

    python examples/follow_order.py --order <ID>
    python examples/follow_order.py --order <ID> --after <CURSOR>   (resume)

Uses the `graphql-transport-ws` protocol with the token in the `connection_init`
payload. Without --after it starts from now; each line ends with the event's cursor,
and --after with the last one printed picks up exactly where a previous run stopped
(events missed in between are sent first). --count N stops after N events.
"""

from __future__ import annotations

from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportError
from gql.transport.websockets import WebsocketsTransport

from _gateway import fail, log_in, parser

FOLLOW = """subscription FollowOrder($orderId: ID!, $after: String) {
  orderStatusChanged(orderId: $orderId, after: $after) {
    cursor
    event { kind oldStatus newStatus actorKind reason at }
    order { money { held { amount currency } released { amount currency } } }
  }
}"""


def resume(cursor: str | None) -> str:
    return f"; resume with --after {cursor}" if cursor else ""


def main() -> None:
    p = parser(__doc__, "buyer")
    p.add_argument("--order", required=True, help="the order's global ID")
    p.add_argument("--after", help="resume after this cursor (printed with each event)")
    p.add_argument("--count", type=int, help="stop after this many events (default: never)")
    args = p.parse_args()
    gateway = log_in(args, "buyer")  # or --buyer-token: the order's buyer, supplier or mediator

    transport = WebsocketsTransport(
        url=gateway.url.replace("http", "ws", 1) + "/graphql",
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
        init_payload={"Authorization": f"Bearer {gateway.token}"},
    )
    where = f"after {args.after}" if args.after else "from now on"
    print(f"following order {args.order} {where} (Ctrl-C to stop)", flush=True)
    request = GraphQLRequest(FOLLOW, variable_values={"orderId": args.order, "after": args.after})
    cursor, seen = args.after, 0
    try:
        for result in Client(transport=transport).subscribe(request):
            live = result["orderStatusChanged"]
            e, cursor, seen = live["event"], live["cursor"], seen + 1
            held = live["order"]["money"]["held"]
            print(
                f"{e['at']}  {e['kind']}: {e['oldStatus'] or '-'} -> {e['newStatus']} "
                f"by {e['actorKind']} ({e['reason'] or 'no reason given'}); "
                f"escrow holds {held['amount']} {held['currency']}  cursor {cursor}",
                flush=True,
            )
            if seen == args.count:
                break
    except (TransportError, OSError) as error:  # refused, or the connection dropped
        fail(f"{type(error).__name__}: {error}{resume(cursor)}")
    except KeyboardInterrupt:
        pass
    print(f"saw {seen} events{resume(cursor)}")


if __name__ == "__main__":
    main()
