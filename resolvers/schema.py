"""The executable schema. It must print exactly `schema.graphql` (see tests/test_contract.py)."""

from collections.abc import Callable, Sequence

import strawberry
from graphql import GraphQLError
from strawberry import relay
from strawberry.extensions import (
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.relay.types import GlobalIDValueError
from strawberry.schema.config import StrawberryConfig

from resolvers.accounts import AccountMutations, AccountQueries
from resolvers.scalars import SCALARS
from resolvers.suppliers import SupplierMutations, SupplierQueries
from resolvers.trade_assurance import TradeAssuranceMutations, TradeAssuranceQueries


@strawberry.type
class Query(AccountQueries, SupplierQueries, TradeAssuranceQueries):
    node: relay.Node | None = relay.node(
        description="Any object by its global ID; null if it does not exist or is not yours."
    )


@strawberry.type
class Mutation(AccountMutations, SupplierMutations, TradeAssuranceMutations):
    pass


def _should_mask(error: GraphQLError) -> bool:
    """Keep validation, auth and our own coded errors readable; hide everything else."""
    original = error.original_error
    return original is not None and not isinstance(original, GraphQLError | GlobalIDValueError)


def build_schema(
    *,
    max_depth: int = 10,
    max_aliases: int = 15,
    max_tokens: int = 2000,
    field_suggestions: bool = False,
) -> strawberry.Schema:
    # Factories: a fresh extension per request (the parse and validation caches are
    # module-level in Strawberry, so they still span requests).
    extensions: Sequence[Callable[[], SchemaExtension]] = [
        lambda: QueryDepthLimiter(max_depth=max_depth),
        lambda: MaxAliasesLimiter(max_alias_count=max_aliases),
        lambda: MaxTokensLimiter(max_token_count=max_tokens),
        lambda: ParserCache(maxsize=256),
        lambda: ValidationCache(maxsize=256),
        lambda: MaskErrors(should_mask_error=_should_mask, error_message="Internal error."),
    ]
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        extensions=extensions,
        config=StrawberryConfig(
            disable_field_suggestions=not field_suggestions, scalar_map=SCALARS
        ),
    )
