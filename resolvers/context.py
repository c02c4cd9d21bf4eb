"""Per-request context: who is calling, and the request's DataLoaders."""

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from graphql import GraphQLError
from strawberry.dataloader import DataLoader
from strawberry.types import Info as StrawberryInfo

from models import (
    accounts,
    disputes,
    inspections,
    ledger,
    messages,
    orders,
    payments,
    suppliers,
    trade_assurance,
)
from models.accounts import Principal
from models.live import Hub
from models.suppliers import Supplier
from models.tables import (
    Company,
    Dispute,
    DisputeEvidence,
    Inspection,
    InspectionAttachment,
    OrderEvent,
    OrderLine,
    OrderMessage,
    OrderMessageAttachment,
    Payment,
    QualityRequirement,
    TradeAssuranceApplication,
)

K = TypeVar("K")
V = TypeVar("V")
W = TypeVar("W")


def batch(
    fetch: Callable[[list[K]], Awaitable[Mapping[K, V]]], missing: Callable[[], W], cache: bool
) -> DataLoader[K, V | W]:
    """A DataLoader over a domain function that reads many keys in one statement."""

    async def load(keys: list[K]) -> list[V | W]:
        found = await fetch(keys)
        return [found[k] if k in found else missing() for k in keys]

    return DataLoader(load_fn=load, cache=cache)


async def _load_suppliers(ids: list[int]) -> list[Supplier | None]:
    found = await suppliers.get_suppliers(ids)
    return [found.get(i) for i in ids]


async def _load_applications(ids: list[int]) -> list[TradeAssuranceApplication | None]:
    found = await trade_assurance.get_applications(ids)
    return [found.get(i) for i in ids]


@dataclasses.dataclass
class Context:
    principal: Principal | None
    request: Any = None
    response: Any = None
    # Set by the WebSocket transport from the `connection_init` payload.
    connection_params: dict[str, Any] | None = None
    # False for WebSocket connections, whose context outlives any one operation.
    cache: bool = True
    # This process's live order-event reader (subscriptions); None where there is none.
    live: Hub | None = None
    _own_supplier_id: int | None = None

    def __post_init__(self) -> None:
        self.suppliers = DataLoader[int, Supplier | None](load_fn=_load_suppliers, cache=self.cache)
        self.applications = DataLoader[int, TradeAssuranceApplication | None](
            load_fn=_load_applications, cache=self.cache
        )
        self.companies: DataLoader[int, Company | None] = batch(
            accounts.get_companies, lambda: None, self.cache
        )
        self.order_money: DataLoader[int, ledger.OrderMoney | None] = batch(
            ledger.order_money, lambda: None, self.cache
        )
        self.order_payments: DataLoader[int, list[Payment]] = batch(
            payments.payments_of, list, self.cache
        )
        self.order_lines: DataLoader[int, list[OrderLine]] = batch(
            orders.lines_of, list, self.cache
        )
        self.order_quality: DataLoader[int, list[QualityRequirement]] = batch(
            orders.quality_of, list, self.cache
        )
        self.order_events: DataLoader[int, list[OrderEvent]] = batch(
            orders.events_of, list, self.cache
        )
        self.order_inspections: DataLoader[int, list[Inspection]] = batch(
            inspections.inspections_of, list, self.cache
        )
        self.inspection_attachments: DataLoader[int, list[InspectionAttachment]] = batch(
            inspections.attachments_of, list, self.cache
        )
        self.inspection_payments: DataLoader[int, list[Payment]] = batch(
            inspections.fee_payments_of, list, self.cache
        )
        self.order_dispute: DataLoader[int, Dispute | None] = batch(
            disputes.latest_of, lambda: None, self.cache
        )
        self.dispute_evidence: DataLoader[int, list[DisputeEvidence]] = batch(
            disputes.evidence_of, list, self.cache
        )
        self.messages: DataLoader[int, OrderMessage | None] = batch(
            self._messages, lambda: None, self.cache
        )
        self.message_attachments: DataLoader[int, list[OrderMessageAttachment]] = batch(
            messages.attachments_of, list, self.cache
        )

    async def _messages(self, ids: list[int]) -> dict[int, OrderMessage]:
        """Messages by id, only those of orders the caller may see."""
        if self.principal is None:
            return {}
        return await messages.get_messages(self.principal, ids)

    def require_principal(self) -> Principal:
        """Missing authentication is a top-level GraphQL error, as the contract says."""
        if self.principal is None:
            raise GraphQLError(
                "authentication required: send 'Authorization: Bearer <token or API key>'",
                extensions={"code": "UNAUTHENTICATED"},
            )
        return self.principal

    async def own_supplier_id(self) -> int | None:
        """The caller's supplier profile id, if its company is a supplier."""
        if self._own_supplier_id is None and self.principal is not None:
            self._own_supplier_id = await suppliers.supplier_id_of_company(
                self.principal.company_id
            )
        return self._own_supplier_id


Info = StrawberryInfo[Context, None]
