"""The executable schema. It must print exactly `schema.graphql` (see tests/test_contract.py)."""

from collections.abc import Callable, Sequence

import strawberry
from graphql import GraphQLError
from strawberry import relay
from strawberry.extensions import (
    AddValidationRules,
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

from models import db
from resolvers.accounts import AccountMutations, AccountQueries
from resolvers.conventions import describe
from resolvers.disputes import DisputeMutations, DisputeQueries
from resolvers.fast_fields import thin_resolvers
from resolvers.inspections import InspectionMutations, InspectionQueries
from resolvers.investigations import InvestigationMutations, InvestigationQueries
from resolvers.live import LiveSubscriptions
from resolvers.messages import MessageMutations
from resolvers.observability import OperationMetrics
from resolvers.orders import OrderMutations, OrderQueries
from resolvers.payments import PaymentMutations, PaymentQueries
from resolvers.persisted import PersistedOperations
from resolvers.prepared import PreparedSchema
from resolvers.query_limits import Introspection, LimitedExecutor
from resolvers.scalars import SCALARS
from resolvers.suppliers import SupplierMutations, SupplierQueries
from resolvers.trade_assurance import TradeAssuranceMutations, TradeAssuranceQueries


def _query_type() -> type:
    """A fresh `Query` per schema: `relay.node()` binds its resolver into the field object
    when a schema is built, so a shared field would make the second `build_schema` fail."""

    @strawberry.type(name="Query")
    class Query(
        AccountQueries,
        SupplierQueries,
        TradeAssuranceQueries,
        OrderQueries,
        PaymentQueries,
        InspectionQueries,
        InvestigationQueries,
        DisputeQueries,
    ):
        node: relay.Node | None = relay.node(
            description="Any object by its global ID; null if it does not exist or is not yours."
        )

    return Query


@strawberry.type
class Mutation(
    AccountMutations,
    SupplierMutations,
    TradeAssuranceMutations,
    OrderMutations,
    PaymentMutations,
    InspectionMutations,
    InvestigationMutations,
    DisputeMutations,
    MessageMutations,
):
    pass


@strawberry.type
class Subscription(LiveSubscriptions):
    pass


def _should_mask(error: GraphQLError) -> bool:
    """Keep validation, auth and our own coded errors readable; hide everything else.

    An error without a path was raised before execution, while validating the document or
    coercing variables (e.g. a scalar refusing `country: "XX"`): it describes the caller's
    input, not our internals, so it stays readable."""
    original = error.original_error
    if original is None or error.path is None:
        return False
    return not isinstance(original, GraphQLError | GlobalIDValueError)


class _Masking(MaskErrors):
    """Unexpected errors become "Internal error."; a busy database (models.db.is_transient)
    becomes TRY_AGAIN instead, so a client knows to retry rather than report a bug."""

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        original = error.original_error
        if not db.is_transient(original):
            # Or raised from a transient one (a live event's shared order read).
            original = getattr(original, "__cause__", None)
        if not db.is_transient(original):
            return super().anonymise_error(error)
        return GraphQLError(
            "the database was busy and nothing was changed; try again",
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions={"code": "TRY_AGAIN", "retryable": db.is_retryable(original)},
        )

    def _process_result(self, result: object) -> None:
        # The same test as MaskErrors' (a result with an `errors` list), without its
        # runtime-checkable Protocol: that isinstance costs ~20 us, once per result, and
        # a live event is thousands of results.
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = self._process_errors(errors)  # type: ignore[attr-defined]


def _masking() -> MaskErrors:
    return _Masking(should_mask_error=_should_mask, error_message="Internal error.")


def build_schema(
    *,
    max_depth: int = 10,
    max_aliases: int = 15,
    max_tokens: int = 2000,
    field_suggestions: bool = False,
    persisted: PersistedOperations | None = None,
    max_cost: int = 20_000,
    introspection: Introspection = Introspection.ON,
    execution_timeout: float = 10.0,
) -> strawberry.Schema:
    # The limit rules are built once: the validation cache is keyed by the rule classes,
    # and a limiter built per request makes new classes, so it would never hit.
    limit_rules = [
        *QueryDepthLimiter(max_depth=max_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=max_aliases).validation_rules,
    ]
    # Factories: a fresh extension per request (the parse and validation caches are
    # module-level in Strawberry, so they still span requests).
    extensions: Sequence[Callable[[], SchemaExtension]] = [
        lambda: AddValidationRules(limit_rules),
        lambda: MaxTokensLimiter(max_token_count=max_tokens),
        lambda: ParserCache(maxsize=256),
        lambda: ValidationCache(maxsize=256),
        OperationMetrics,  # one hook per operation, none per field (resolvers/observability)
        _masking,
    ]
    # Operations seen (and valid) before skip the extensions: resolvers/prepared.py.
    schema = PreparedSchema(
        query=_query_type(),
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        # Cost and introspection (resolvers/query_limits.py); live results shared.
        execution_context_class=LimitedExecutor.limited(max_cost, introspection, execution_timeout),
        mask=_masking(),
        persisted=persisted or PersistedOperations(),
        config=StrawberryConfig(
            disable_field_suggestions=not field_suggestions, scalar_map=SCALARS
        ),
    )
    describe(schema._schema)  # what the conventions say, where a definition says nothing
    scalars = schema.schema_converter.scalar_registry
    thin_resolvers(schema._schema, schema.config, scalars)  # resolvers/fast_fields.py
    return schema
