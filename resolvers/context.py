"""Per-request context: who is calling, and the request's DataLoaders."""

import dataclasses
import functools
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
    Refund,
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

    # DataLoaders are made on first use: most requests need one or two of them.
    @functools.cached_property
    def suppliers(self) -> DataLoader[int, Supplier | None]:
        return DataLoader(load_fn=_load_suppliers, cache=self.cache)

    @functools.cached_property
    def applications(self) -> DataLoader[int, TradeAssuranceApplication | None]:
        return DataLoader(load_fn=_load_applications, cache=self.cache)

    @functools.cached_property
    def companies(self) -> DataLoader[int, Company | None]:
        return batch(accounts.get_companies, lambda: None, self.cache)

    @functools.cached_property
    def order_money(self) -> DataLoader[int, ledger.OrderMoney | None]:
        return batch(ledger.order_money, lambda: None, self.cache)

    @functools.cached_property
    def order_payments(self) -> DataLoader[int, list[Payment]]:
        return batch(payments.payments_of, list, self.cache)

    @functools.cached_property
    def order_lines(self) -> DataLoader[int, list[OrderLine]]:
        return batch(orders.lines_of, list, self.cache)

    @functools.cached_property
    def order_quality(self) -> DataLoader[int, list[QualityRequirement]]:
        return batch(orders.quality_of, list, self.cache)

    @functools.cached_property
    def order_events(self) -> DataLoader[int, list[OrderEvent]]:
        return batch(orders.events_of, list, self.cache)

    @functools.cached_property
    def order_inspections(self) -> DataLoader[int, list[Inspection]]:
        return batch(inspections.inspections_of, list, self.cache)

    @functools.cached_property
    def inspection_attachments(self) -> DataLoader[int, list[InspectionAttachment]]:
        return batch(inspections.attachments_of, list, self.cache)

    @functools.cached_property
    def inspection_payments(self) -> DataLoader[int, list[Payment]]:
        return batch(inspections.fee_payments_of, list, self.cache)

    @functools.cached_property
    def order_dispute(self) -> DataLoader[int, Dispute | None]:
        return batch(disputes.latest_of, lambda: None, self.cache)

    @functools.cached_property
    def dispute_evidence(self) -> DataLoader[int, list[DisputeEvidence]]:
        return batch(disputes.evidence_of, list, self.cache)

    @functools.cached_property
    def dispute_refunds(self) -> DataLoader[int, list[Refund]]:
        return batch(payments.refunds_of_disputes, list, self.cache)

    @functools.cached_property
    def messages(self) -> DataLoader[int, OrderMessage | None]:
        return batch(self._messages, lambda: None, self.cache)

    @functools.cached_property
    def message_attachments(self) -> DataLoader[int, list[OrderMessageAttachment]]:
        return batch(messages.attachments_of, list, self.cache)

    async def _messages(self, ids: list[int]) -> dict[int, OrderMessage]:
        """Messages by id, only those of orders the caller may see."""
        if self.principal is None:
            return {}
        return await messages.get_messages(self.principal, ids)

    def forget_loads(self) -> None:
        """Drop every DataLoader (and what it cached): before an operation runs again."""
        for name, value in vars(type(self)).items():
            if isinstance(value, functools.cached_property):
                self.__dict__.pop(name, None)

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
