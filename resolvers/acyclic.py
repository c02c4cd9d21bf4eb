"""An execution context that leaves no reference cycle behind.

graphql-core's executor hands resolvers `info.async_helpers`, a pair of its own bound
methods, and keeps that pair on itself: executor -> helpers -> bound method -> executor.
So every request's executor, and all it holds (the context with its DataLoaders and
their caches, the request, the variables, the result), could only be freed by the cyclic
garbage collector, not when the request ends. Measured on the order status: 76 objects a
request left for the collector, whose young collections then ran every ~200 ms under load
for 6-7 ms each, about every hundredth request's latency (docs/performance.md, session 9).

The helpers here reach the executor through a weak reference instead. The executor is
alive for as long as anything it runs can call them (the running resolvers hold it); a
helper called after the execution is over says so.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Sequence
from typing import Any

from graphql import GraphQLResolveInfoHelpers
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext


class ExecutionEnded(RuntimeError):
    pass


class AcyclicExecutionContext(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        executor = weakref.ref(self)

        def live() -> AcyclicExecutionContext:
            alive = executor()
            if alive is None:
                raise ExecutionEnded("the execution these helpers belong to has ended")
            return alive

        def gather(values: Sequence[Awaitable[Any]]) -> Awaitable[list[Any]]:
            return live().gather_async_work(values)

        def track(values: Sequence[Any]) -> None:
            live().track_async_work(values)

        self.async_helpers = GraphQLResolveInfoHelpers(gather=gather, track=track)
