"""Per-request context: who is calling, and the request's DataLoaders."""

import dataclasses
from typing import Any

from graphql import GraphQLError
from strawberry.dataloader import DataLoader
from strawberry.types import Info as StrawberryInfo

from models import suppliers, trade_assurance
from models.accounts import Principal
from models.suppliers import Supplier
from models.tables import TradeAssuranceApplication


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
    _own_supplier_id: int | None = None

    def __post_init__(self) -> None:
        self.suppliers = DataLoader[int, Supplier | None](load_fn=_load_suppliers, cache=self.cache)
        self.applications = DataLoader[int, TradeAssuranceApplication | None](
            load_fn=_load_applications, cache=self.cache
        )

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
