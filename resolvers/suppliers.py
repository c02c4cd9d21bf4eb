"""The supplier directory: `Supplier`, search, and profile mutations."""

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated

import strawberry
from graphql import GraphQLError
from strawberry import relay

from models import config, investigations
from models import suppliers as directory
from models.enums import TradeAssuranceStatus, Verification
from models.errors import DomainError
from resolvers.context import Info
from resolvers.conventions import describe_values
from resolvers.errors import UserError, decode_id, failed, row_id
from resolvers.money import Money
from resolvers.pagination import check_first, decode_cursor, encode_cursor, page_info
from resolvers.scalars import CountryCode

if TYPE_CHECKING:
    from resolvers.investigations import Investigation, PenaltyPoints

strawberry.enum(
    Verification,
    name="VerificationStatus",
    description="Outcome of third-party verification of the supplier.",
)
describe_values(
    Verification,
    {
        Verification.NONE: "Not verified; the supplier cannot apply for Trade Assurance.",
        Verification.VERIFIED: (
            "Passed third-party verification of the business; may apply for Trade Assurance."
        ),
        Verification.ASSESSED: (
            "Passed a third-party assessment of the company and its production; may apply for "
            "Trade Assurance."
        ),
    },
)
strawberry.enum(
    TradeAssuranceStatus,
    name="TradeAssuranceStatus",
    description="Whether the supplier's orders are protected by Trade Assurance.",
)
describe_values(
    TradeAssuranceStatus,
    {
        TradeAssuranceStatus.NONE: (
            "No Trade Assurance (never approved); orders cannot be placed with the supplier."
        ),
        TradeAssuranceStatus.ACTIVE: (
            "Approved with a limit: new orders are protected up to the remaining limit."
        ),
        TradeAssuranceStatus.SUSPENDED: (
            "Suspended after an investigation: no new orders, hidden from Trade Assurance "
            "search; open orders stay protected."
        ),
    },
)
strawberry.enum(directory.SupplierOrder, description="Sort order of supplier search results.")
describe_values(
    directory.SupplierOrder,
    {
        directory.SupplierOrder.RELEVANCE: (
            "Best match of the search text first, then by rating (by rating alone without text)."
        ),
        directory.SupplierOrder.RATING: "Highest rating first.",
        directory.SupplierOrder.TRADE_ASSURANCE_LIMIT: (
            "Largest Trade Assurance limit first, suppliers without a limit last; ties by rating."
        ),
    },
)


@strawberry.type(description="A supplier's Trade Assurance standing.")
class TradeAssurance:
    status: TradeAssuranceStatus = strawberry.field(
        description="ACTIVE: new orders are protected; SUSPENDED after an investigation; "
        "NONE before approval."
    )
    limit: Money | None = strawberry.field(description="Coverage granted by a mediator.")
    remaining_limit: Money | None = strawberry.field(
        description="Limit minus the coverage reserved by open orders."
    )
    since: dt.datetime | None = strawberry.field(description="When it became active (UTC).")


@strawberry.type(description="A supplier in the directory. Public to everyone.")
class Supplier(relay.Node):
    id: relay.NodeID[int]
    legal_name: str = strawberry.field(description="The company's registered legal name.")
    country: CountryCode = strawberry.field(
        description="Where the supplier is registered (ISO 3166-1 alpha-2)."
    )
    categories: list[str] = strawberry.field(
        description="Product categories the supplier sells in."
    )
    keywords: list[str] = strawberry.field(description="Product keywords buyers search for.")
    year_joined: int = strawberry.field(description="The year the supplier joined the platform.")
    gold_supplier: bool = strawberry.field(description="Paid Gold Supplier membership.")
    verification: Verification = strawberry.field(
        description="The outcome of third-party verification; needed to apply for Trade Assurance."
    )
    rating: float = strawberry.field(description="Average buyer rating, 0 to 5 stars.")
    response_rate: int = strawberry.field(description="Share of inquiries answered, percent.")
    trade_assurance: TradeAssurance = strawberry.field(
        description="Its Trade Assurance status, limit and remaining limit."
    )

    @strawberry.field(
        description="Penalty points (total and history): the supplier's own users and "
        "mediators only; null for anyone else."
    )
    async def penalty_points(
        self, info: Info
    ) -> Annotated["PenaltyPoints", strawberry.lazy("resolvers.investigations")] | None:
        from resolvers.investigations import penalty_points_of

        own = await info.context.own_supplier_id()
        if not investigations.may_see_supplier_record(info.context.principal, self.id, own):
            return None
        return await penalty_points_of(self.id, config.current().investigation_threshold_points)

    @strawberry.field(
        description="Investigations of this supplier, oldest first: its own users and "
        "mediators only; empty for anyone else."
    )
    async def investigations(
        self, info: Info
    ) -> list[Annotated["Investigation", strawberry.lazy("resolvers.investigations")]]:
        from resolvers.investigations import Investigation

        own = await info.context.own_supplier_id()
        if not investigations.may_see_supplier_record(info.context.principal, self.id, own):
            return []
        return [Investigation.of(i) for i in await investigations.investigations_of(self.id)]

    @classmethod
    def of(cls, s: directory.Supplier) -> "Supplier":
        return cls(
            id=s.id,
            legal_name=s.legal_name,
            country=CountryCode(s.country),
            categories=s.categories,
            keywords=s.keywords,
            year_joined=s.year_joined,
            gold_supplier=s.gold,
            verification=s.verification,
            rating=s.rating,
            response_rate=s.response_rate,
            trade_assurance=TradeAssurance(
                status=s.ta_status,
                limit=Money.of(s.ta_limit),
                remaining_limit=Money.of(s.remaining_limit),
                since=s.ta_since,
            ),
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list["Supplier | None"]:
        loaded = await info.context.suppliers.load_many([row_id(i) for i in node_ids])
        return [cls.of(s) if s else None for s in loaded]


@strawberry.type
class SupplierConnection(relay.Connection[Supplier]):
    _filter: strawberry.Private[directory.SupplierFilter]

    @strawberry.field(description="How many suppliers match the filter (counted on demand).")
    async def total_count(self) -> int:
        return await directory.count_suppliers(self._filter)


@strawberry.input(description="Supplier search criteria; all given criteria must hold.")
class SupplierFilter:
    text: str | None = strawberry.field(
        default=None, description="Free text over name, categories and keywords (prefix match)."
    )
    trade_assurance_only: bool = strawberry.field(
        default=False, description="Only suppliers with active Trade Assurance."
    )
    country: CountryCode | None = strawberry.field(
        default=None, description="Only suppliers registered in this country."
    )
    category: str | None = strawberry.field(default=None, description="Exact category name.")
    gold_only: bool = strawberry.field(default=False, description="Only Gold Suppliers.")
    verification: list[Verification] | None = strawberry.field(
        default=None, description="Any of these verification outcomes."
    )
    min_rating: float | None = strawberry.field(
        default=None, description="Only suppliers rated at least this (0 to 5)."
    )

    def to_domain(self) -> directory.SupplierFilter:
        return directory.SupplierFilter(
            text=self.text,
            trade_assurance_only=self.trade_assurance_only,
            country=self.country,
            category=self.category,
            gold_only=self.gold_only,
            verification=tuple(self.verification or ()),
            min_rating=self.min_rating,
        )


@strawberry.type
class SupplierQueries:
    @strawberry.field(description="Search the supplier directory.")
    async def suppliers(
        self,
        info: Info,
        filter: SupplierFilter | None = None,
        order_by: Annotated[
            directory.SupplierOrder, strawberry.argument(description="How to sort the results.")
        ] = directory.SupplierOrder.RELEVANCE,
        first: int = 20,
        after: str | None = None,
    ) -> SupplierConnection:
        check_first(first)
        offset = decode_cursor("supplier-search", after)
        start = 0 if offset is None else offset + 1
        flt = (filter or SupplierFilter()).to_domain()
        try:
            page = await directory.search_suppliers(flt, order_by, first=first, offset=start)
        except DomainError as e:  # a bad filter value is a malformed request
            raise GraphQLError(e.message, extensions={"code": e.code.value}) from None
        edges = [
            relay.Edge(node=Supplier.of(s), cursor=encode_cursor("supplier-search", start + n))
            for n, s in enumerate(page.suppliers)
        ]
        return SupplierConnection(
            edges=edges,
            page_info=page_info(edges, has_next=page.has_next, has_previous=start > 0),
            _filter=flt,
        )

    @strawberry.field(description="One supplier by its global ID; null if there is none.")
    async def supplier(self, info: Info, id: relay.GlobalID) -> Supplier | None:
        supplier_id = row_id(id.node_id) if id.type_name == "Supplier" else -1
        if supplier_id < 0:
            return None
        found = await info.context.suppliers.load(supplier_id)
        return Supplier.of(found) if found else None


@strawberry.input
class UpdateSupplierProfileInput:
    categories: list[str] | None = strawberry.field(
        default=None, description="Replaces the categories (at most 20)."
    )
    keywords: list[str] | None = strawberry.field(
        default=None, description="Replaces the product keywords (at most 50)."
    )


@strawberry.type
class UpdateSupplierProfilePayload:
    supplier: Supplier | None = strawberry.field(
        default=None, description="The supplier with its new profile."
    )
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class SetSupplierStandingInput:
    supplier_id: relay.GlobalID
    gold_supplier: bool | None = strawberry.field(
        default=None, description="Gold Supplier membership; null leaves it unchanged."
    )
    verification: Verification | None = strawberry.field(
        default=None, description="The verification outcome; null leaves it unchanged."
    )


@strawberry.type
class SetSupplierStandingPayload:
    supplier: Supplier | None = strawberry.field(
        default=None, description="The supplier with its new standing."
    )
    errors: list[UserError] = strawberry.field(default_factory=list)


async def _fresh(supplier_id: int) -> Supplier:
    found = await directory.get_suppliers([supplier_id])
    return Supplier.of(found[supplier_id])


@strawberry.type
class SupplierMutations:
    @strawberry.mutation(description="A supplier's users edit its categories and keywords.")
    async def update_supplier_profile(
        self, info: Info, input: UpdateSupplierProfileInput
    ) -> UpdateSupplierProfilePayload:
        principal = info.context.require_principal()
        try:
            supplier_id = await directory.update_profile(
                principal, categories=input.categories, keywords=input.keywords
            )
        except DomainError as e:
            return failed(UpdateSupplierProfilePayload, e)
        return UpdateSupplierProfilePayload(supplier=await _fresh(supplier_id))

    @strawberry.mutation(description="Mediators record Gold membership and verification.")
    async def set_supplier_standing(
        self, info: Info, input: SetSupplierStandingInput
    ) -> SetSupplierStandingPayload:
        principal = info.context.require_principal()
        try:
            supplier_id = decode_id(input.supplier_id, "Supplier", "supplierId")
            await directory.set_standing(
                principal,
                supplier_id,
                gold=input.gold_supplier,
                verification=input.verification,
            )
        except DomainError as e:
            return failed(SetSupplierStandingPayload, e)
        return SetSupplierStandingPayload(supplier=await _fresh(supplier_id))
