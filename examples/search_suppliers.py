"""Search Trade Assurance suppliers by text and country, a page at a time (as a buyer).

python examples/search_suppliers.py --text "led" --country DE --first 5 --pages 2
"""

from __future__ import annotations

from _gateway import log_in, parser

SEARCH = """query SearchSuppliers($filter: SupplierFilter!, $first: Int!, $after: String) {
  suppliers(filter: $filter, first: $first, after: $after) {
    totalCount
    edges { node { id legalName country rating
                   tradeAssurance { remainingLimit { amount currency } } } }
    pageInfo { hasNextPage endCursor }
  }
}"""


def main() -> None:
    p = parser(__doc__, "buyer")
    p.add_argument("--text", default="led", help="full-text search (default: led)")
    p.add_argument("--country", default="DE", help="ISO country code, '' for any (default: DE)")
    p.add_argument("--first", type=int, default=3, help="suppliers per page (at most 100)")
    p.add_argument("--pages", type=int, default=2, help="pages to fetch at most")
    args = p.parse_args()
    buyer = log_in(args, "buyer")

    search = {"text": args.text, "country": args.country or None, "tradeAssuranceOnly": True}
    after = None  # the first page; then the previous page's endCursor
    for page in range(1, args.pages + 1):
        found = buyer.run(SEARCH, filter=search, first=args.first, after=after)["suppliers"]
        if page == 1:
            where = args.country or "any country"
            print(f"{found['totalCount']} Trade Assurance suppliers match {args.text!r} in {where}")
        print(f"page {page}:")
        for edge in found["edges"]:
            s = edge["node"]
            limit = s["tradeAssurance"]["remainingLimit"]
            print(
                f"  {s['legalName']} ({s['country']}, rating {s['rating']}, "
                f"remaining limit {limit['amount']} {limit['currency']})  id {s['id']}"
            )
        if not found["pageInfo"]["hasNextPage"]:
            print("no more pages")
            break
        after = found["pageInfo"]["endCursor"]


if __name__ == "__main__":
    main()
