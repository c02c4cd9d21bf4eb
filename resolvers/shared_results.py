"""Subscription results shared between subscribers of the same event.

One order event goes to thousands of subscribers, who mostly run the same operation with
the same visibility (a buyer's staff, a supplier's, the mediators). graphql-core executes
the operation once per subscriber and event, which at 10,000 subscribers is seconds of
CPU. A live payload that carries a `share_key` (the event and the subscriber's visibility,
models.orders.visibility's inputs) is executed once per key, operation and variables, and
the result reused for a short while; the rest of the pipeline (extensions, serialising,
sending) stays per subscriber.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Hashable
from typing import Any, cast

from graphql import ExecutionResult
from graphql.language import OperationDefinitionNode
from graphql.pyutils import AwaitableOrValue

from resolvers.plans import PlannedExecutionContext

SHARE_SECONDS = 1.0  # a result is reused this long at most (events arrive in bursts)

_Result = ExecutionResult | asyncio.Future[ExecutionResult]
# key -> (the operation node, kept so its id cannot be reused meanwhile; the result)
_shared: dict[Hashable, tuple[OperationDefinitionNode, _Result]] = {}


def _copy(result: ExecutionResult) -> ExecutionResult:
    # Extensions (error masking) may replace a result's error list: each gets its own.
    return ExecutionResult(
        result.data, list(result.errors) if result.errors else None, result.extensions
    )


async def _await_copy(future: asyncio.Future[ExecutionResult]) -> ExecutionResult:
    # shield: a subscriber that leaves must not cancel the execution others wait for.
    return _copy(await asyncio.shield(future))


def _variables_key(variables: dict[str, Any]) -> Hashable:
    return tuple(sorted((name, repr(value)) for name, value in variables.items()))


class SharingExecutionContext(PlannedExecutionContext):
    def execute_operation(self, serially: bool | None = None) -> Any:
        share = getattr(self.root_value, "share_key", None)
        if share is None:
            return super().execute_operation(serially)
        key = (share, id(self.operation), _variables_key(self.variable_values.coerced))
        hit = _shared.get(key)
        if hit is not None and hit[0] is self.operation:
            found = hit[1]
            return _await_copy(found) if isinstance(found, asyncio.Future) else _copy(found)
        # A subscription event is never incremental (no @defer/@stream on one).
        result = cast("AwaitableOrValue[ExecutionResult]", super().execute_operation(serially))
        shared: _Result
        if inspect.isawaitable(result):
            shared = asyncio.ensure_future(_awaited(result))
            outcome: Any = _await_copy(shared)
        else:
            shared, outcome = result, _copy(result)
        _shared[key] = (self.operation, shared)
        asyncio.get_running_loop().call_later(SHARE_SECONDS, _shared.pop, key, None)
        return outcome


async def _awaited(result: Awaitable[ExecutionResult]) -> ExecutionResult:
    return await result
