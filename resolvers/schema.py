"""The executable schema. It must print exactly `schema.graphql` (see tests/test_contract.py)."""

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import strawberry
from graphql import GraphQLError, GraphQLSyntaxError
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
from strawberry.extensions.field_extension import FieldExtension, SyncExtensionResolver
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


class _NullForOtherIds(FieldExtension):
    """`node(id:)` answers null for a well-formed ID of a type that is not a Node (a
    Payment's, an OrderEvent's) or of no type at all, as for any ID that names nothing,
    where Strawberry raised "GlobalID requires a GraphQL Node type". The type is looked up
    before anything is awaited, so the sync hook sees the error (and passes the node's
    awaitable on for graphql-core to await)."""

    def resolve(
        self, next_: SyncExtensionResolver, source: Any, info: strawberry.Info, **kwargs: Any
    ) -> Any:
        try:
            return next_(source, info, **kwargs)
        except GlobalIDValueError:
            return None


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
            description="Any object by its global ID; null if it does not exist or is not yours.",
            extensions=[_NullForOtherIds()],
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


def _should_mask(error: GraphQLError, *, executing: bool = False) -> bool:
    """Keep validation, auth and our own coded errors readable; hide everything else.

    An error without a path raised before execution, while validating the document (e.g.
    a scalar refusing `country: "XX"`), describes the caller's input, not our internals,
    so it stays readable. Once executing, one comes from a subscription's source stream
    (Strawberry gives it no path) and is masked like a resolver's; variable coercion
    errors still pass, as they wrap a GraphQLError or nothing."""
    original = error.original_error
    if original is None or (error.path is None and not executing):
        return False
    return not isinstance(original, GraphQLError | GlobalIDValueError)


def _give_code(error: GraphQLError) -> None:
    """Every top-level error carries `extensions.code`, so a client handler can switch on
    it: graphql-core's own (a syntax error, validation, a variable's coercion) and
    Strawberry's (a malformed global ID) came without one. The same names as the
    `ta_graphql_errors_total` labels (resolvers.observability)."""
    if error.extensions and "code" in error.extensions:
        return
    if isinstance(error, GraphQLSyntaxError):
        code = "GRAPHQL_PARSE_FAILED"
    elif isinstance(error.original_error, GlobalIDValueError):
        code = "INVALID_ID"
    else:  # masked errors have theirs (_Masking.anonymise_error)
        code = "GRAPHQL_VALIDATION_FAILED"
    error.extensions = {**(error.extensions or {}), "code": code}


class _Masking(MaskErrors):
    """Unexpected errors become "Internal error."; a busy database (models.db.is_transient)
    becomes TRY_AGAIN instead, so a client knows to retry rather than report a bug."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=self._masks, error_message="Internal error.")
        self._executing = False  # one instance per operation (the schema's factory)

    def on_execute(self) -> Iterator[None]:
        # Set on entry: a subscription's stream is iterated after this hook has returned.
        self._executing = True
        yield

    def _masks(self, error: GraphQLError) -> bool:
        return _should_mask(error, executing=self._executing)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        original = error.original_error
        if not db.is_transient(original):
            # Or raised from a transient one (a live event's shared order read).
            original = getattr(original, "__cause__", None)
        if not db.is_transient(original):
            masked = super().anonymise_error(error)
            masked.extensions = {"code": "INTERNAL_SERVER_ERROR"}
            return masked
        return GraphQLError(
            "the database was busy and nothing was changed; try again",
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions={"code": "TRY_AGAIN", "retryable": db.is_retryable(original)},
        )

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        processed = super()._process_errors(errors)
        for error in processed:
            _give_code(error)
        return processed

    def _process_result(self, result: object) -> None:
        # The same test as MaskErrors' (a result with an `errors` list), without its
        # runtime-checkable Protocol: that isinstance costs ~20 us, once per result, and
        # a live event is thousands of results.
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = self._process_errors(errors)  # type: ignore[attr-defined]


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
        _Masking,
    ]
    # Operations seen (and valid) before skip the extensions: resolvers/prepared.py.
    schema = PreparedSchema(
        query=_query_type(),
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        # Cost and introspection (resolvers/query_limits.py); live results shared.
        execution_context_class=LimitedExecutor.limited(max_cost, introspection, execution_timeout),
        mask=_Masking(),
        persisted=persisted or PersistedOperations(),
        config=StrawberryConfig(
            disable_field_suggestions=not field_suggestions, scalar_map=SCALARS
        ),
    )
    describe(schema._schema)  # what the conventions say, where a definition says nothing
    scalars = schema.schema_converter.scalar_registry
    thin_resolvers(schema._schema, schema.config, scalars)  # resolvers/fast_fields.py
    return schema
