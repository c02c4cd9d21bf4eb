"""Limits checked once the variables are known, before anything is resolved.

Depth, alias and token limits depend on the text alone and run with validation
(resolvers/schema.py). Two more depend on the request:

- **Cost.** Every field costs 1; a connection's selection costs its `first` times over
  (the literal, the variable's value, or the argument's default), so nested connections
  multiply: `orders(first: 100) { edges { node { messages(first: 100) … } } }` is
  priced at ten thousand messages before a single row is read. Over the limit, the
  request is refused with `QUERY_TOO_COSTLY` and the cost it would have had.
- **Introspection**: `on`, `authenticated` (any signed-in caller or partner key),
  `partners` (partner API keys) or `off`. `__typename` is always allowed.

Both live in the executor's `build`, which graphql-core calls for queries, mutations
and subscriptions alike, with the operation chosen and the variables coerced.

- **Execution time** of a query is bounded (`EXECUTION_TIMEOUT`). Mutations are not cut
  short: one may be between a payment provider's answer and its commit, and its
  statements are bounded by the database's lock and statement timeouts instead.
"""

from __future__ import annotations

import enum
import inspect
from collections.abc import Awaitable
from typing import Any

from graphql import (
    ExecutionResult,
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLObjectType,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    get_named_type,
)
from graphql.execution import Executor

from models.enums import Role
from resolvers.shared_results import SharingExecutionContext
from resolvers.watchdog import bounded

_Composite = GraphQLObjectType | GraphQLInterfaceType


class Introspection(enum.StrEnum):
    ON = "on"
    AUTHENTICATED = "authenticated"  # any signed-in caller or partner key
    PARTNERS = "partners"  # partner API keys only
    OFF = "off"


class _Pricing:
    def __init__(self, executor: Executor[Any]) -> None:
        self.executor = executor
        self.variables: dict[str, Any] = executor.variable_values.coerced
        self.introspects = False
        self.by_variables = False  # a `first` from a variable: the price is per request

    def selection_set(self, parent: Any, selections: SelectionSetNode | None) -> int:
        if selections is None:
            return 0
        total = 0
        for selection in selections.selections:
            if isinstance(selection, FieldNode):
                total += self.field(parent, selection)
            elif isinstance(selection, InlineFragmentNode):
                total += self._fragment(parent, selection)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = self.executor.fragment_definitions.get(selection.name.value)
                if fragment is not None:
                    total += self._fragment(parent, fragment)
        return total

    def _fragment(self, parent: Any, fragment: Any) -> int:
        """A fragment's fields, on the type its condition names (priced on every branch:
        an upper bound)."""
        condition = fragment.type_condition
        on = self.executor.schema.get_type(condition.name.value) if condition else parent
        return self.selection_set(on, fragment.selection_set)

    def field(self, parent: Any, node: FieldNode) -> int:
        name = node.name.value
        if name in ("__schema", "__type"):
            self.introspects = True
        if not isinstance(parent, _Composite) or name not in parent.fields:
            return 1  # __typename and introspection: no connections below
        definition = parent.fields[name]
        below = self.selection_set(get_named_type(definition.type), node.selection_set)
        return 1 + self._first(node, definition) * below

    def _first(self, node: FieldNode, definition: Any) -> int:
        argument = definition.args.get("first")
        if argument is None:
            return 1
        for given in node.arguments or ():
            if given.name.value != "first":
                continue
            if isinstance(given.value, IntValueNode):
                return max(int(given.value.value), 0)
            if isinstance(given.value, VariableNode):
                self.by_variables = True
                value = self.variables.get(given.value.name.value)
                return max(value, 0) if isinstance(value, int) else 1
        default = argument.default_value
        return default if isinstance(default, int) else 1


# operation node id -> (the node, kept so its id is not reused; cost; introspects)
_prices: dict[int, tuple[OperationDefinitionNode, int, bool]] = {}
MAX_PRICES = 1024


def _price(executor: Executor[Any]) -> tuple[int, bool]:
    """The operation's cost and whether it introspects; kept per operation (prepared
    documents are reused) unless a `first` comes from a variable."""
    operation = executor.operation
    known = _prices.get(id(operation))
    if known is not None and known[0] is operation:
        return known[1], known[2]
    pricing = _Pricing(executor)
    root = executor.schema.get_root_type(operation.operation)
    cost = pricing.selection_set(root, operation.selection_set)
    if not pricing.by_variables:
        if len(_prices) >= MAX_PRICES:
            del _prices[next(iter(_prices))]
        _prices[id(operation)] = (operation, cost, pricing.introspects)
    return cost, pricing.introspects


class LimitedExecutor(SharingExecutionContext):
    """The schema's executor with the request-dependent limits; `limited` binds them."""

    max_cost = 20_000
    introspection = Introspection.ON
    timeout: float = 10.0  # seconds a query may run; 0: unbounded

    @classmethod
    def limited(
        cls, max_cost: int, introspection: Introspection, timeout: float
    ) -> type[LimitedExecutor]:
        bound = {"max_cost": max_cost, "introspection": introspection, "timeout": timeout}
        return type(cls.__name__, (cls,), bound)

    def execute_operation(self, serially: bool | None = None) -> Any:
        result = super().execute_operation(serially)
        if self.timeout and self.operation.operation is OperationType.QUERY:
            if inspect.isawaitable(result):
                return self._bounded(result)
        return result

    async def _bounded(self, result: Awaitable[Any]) -> Any:
        try:
            return await bounded(result, self.timeout)
        except TimeoutError:
            error = GraphQLError(
                f"the query took longer than {self.timeout:g} s and was stopped",
                extensions={"code": "EXECUTION_TIMEOUT"},
            )
            return ExecutionResult(None, [error])

    @classmethod
    def build(cls, *args: Any, **kwargs: Any) -> list[GraphQLError] | Executor[Any]:
        executor = super().build(*args, **kwargs)
        if isinstance(executor, list):
            return executor
        cost, introspects = _price(executor)
        if introspects and not cls._may_introspect(executor.context_value):
            return [
                GraphQLError(
                    "introspection is not available to this caller",
                    extensions={"code": "INTROSPECTION_DISABLED"},
                )
            ]
        if cost > cls.max_cost:
            return [
                GraphQLError(
                    f"this query would cost {cost}, over the limit of {cls.max_cost} "
                    "(each field 1, a connection's fields times its `first`)",
                    extensions={"code": "QUERY_TOO_COSTLY", "cost": cost, "max": cls.max_cost},
                )
            ]
        return executor

    @classmethod
    def _may_introspect(cls, context: Any) -> bool:
        if cls.introspection is Introspection.ON:
            return True
        principal = getattr(context, "principal", None)
        if cls.introspection is Introspection.AUTHENTICATED:
            return principal is not None
        if cls.introspection is Introspection.PARTNERS:
            return principal is not None and principal.role is Role.PARTNER
        return False
