"""An execution context that leaves no reference cycle behind.

graphql-core's executor hands resolvers `info.async_helpers`, a pair of its own bound
methods, and keeps that pair on itself: executor -> helpers -> bound method -> executor.
So every request's executor, and all it holds (the context with its DataLoaders and
their caches, the request, the variables, the result), could only be freed by the cyclic
garbage collector, not when the request ends. Measured on the order status: 76 objects a
request left for the collector, whose young collections then ran every ~200 ms under load
for 6-7 ms each, about every hundredth request's latency (docs/performance.md, session 9).

Here the pair is made when an Info is built and not kept: an Info holds its executor, the
executor holds no Info. Made on demand rather than kept behind a weak reference, it costs
a subscription (which keeps its executor for its whole life) nothing per subscriber.
"""

from __future__ import annotations

from graphql import GraphQLResolveInfoHelpers
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext


class AcyclicExecutionContext(StrawberryGraphQLCoreExecutionContext):
    @property
    def async_helpers(self) -> GraphQLResolveInfoHelpers:
        return GraphQLResolveInfoHelpers(gather=self.gather_async_work, track=self.track_async_work)

    @async_helpers.setter
    def async_helpers(self, _: GraphQLResolveInfoHelpers) -> None:
        pass  # graphql-core's __init__ keeps its pair here: that was the cycle
