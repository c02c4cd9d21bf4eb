"""POST /graphql for operations the schema has prepared, without Strawberry's HTTP view.

For a JSON POST of a query or mutation the schema has already validated (resolvers/
prepared.py), Strawberry's view only wraps the execution: a request adapter, content-type
and streaming-transport checks, the body's shape, the response. That wrapping was about
an eighth of an order-status request (docs/performance.md). Here the body is read and
checked once, the operation runs through the same `schema.execute`, and the answer is
made by the view's own hooks (`get_context`, `get_sub_response`, `process_result`,
`create_response`), so it is the same bytes, headers and status as the view's. Anything
else (GraphiQL, uploads, batches, a text not yet prepared, a body that is not a plain
JSON object) goes to the view as before, with the body already read handed on.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL
from strawberry.types.graphql import OperationType

from resolvers.prepared import PreparedSchema
from server import json_codec
from server.limits import header, media_type

_DIRECT_KINDS = frozenset({OperationType.QUERY, OperationType.MUTATION})
_POST = OperationType.from_http("POST")  # what the view allows over POST


class DirectGraphQL:
    def __init__(self, view: GraphQL[Any, Any]) -> None:
        assert isinstance(view.schema, PreparedSchema)
        self.view = view
        self.schema = view.schema
        # With an HTTP streaming transport (SSE, multipart subscriptions) the Accept header
        # could choose one; we offer none, and if one is ever added its requests go to the view.
        self.streams = any(
            p not in (GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL) for p in view.protocols
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not self._plain(scope):
            await self.view(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:
            return  # the client went away before sending it all: nobody to answer
        operation = self._prepared_operation(body)
        replay = _replay(body, receive)
        if operation is None:
            await self.view(scope, replay, send)
            return
        query, variables, name, extensions = operation
        request = Request(scope, replay)
        request._body = body  # what Request.body() would read, already read
        view = self.view
        sub_response = await view.get_sub_response(request)
        context = await view.get_context(request, response=sub_response)
        result = await self.schema.execute(
            query,
            variable_values=variables,
            context_value=context,
            root_value=await view.get_root_value(request),
            operation_name=name,
            allowed_operation_types=_POST,
            operation_extensions=extensions,
        )
        data = await view.process_result(request, result)
        await view.create_response(data, sub_response)(scope, replay, send)

    def _plain(self, scope: Scope) -> bool:
        """application/json (GraphQLRequestGuard has refused other types but multipart),
        and no Accept header that could pick a streaming transport."""
        if media_type(scope) != b"application/json":
            return False
        return not (self.streams and header(scope, b"accept"))

    def _prepared_operation(
        self, body: bytes
    ) -> tuple[str, dict[str, Any] | None, str | None, dict[str, Any] | None] | None:
        """The body's operation if it is one the direct path takes, else None (and the
        view reports whatever is wrong with it, as always)."""
        try:
            data = json_codec.loads(body)
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        query, variables = data.get("query"), data.get("variables")
        name, extensions = data.get("operationName"), data.get("extensions")
        if (
            not isinstance(query, str)
            or not isinstance(variables, dict | None)
            or not isinstance(name, str | None)
            or not isinstance(extensions, dict | None)
            or self.schema.prepared_kind(query, name) not in _DIRECT_KINDS
        ):
            return None
        return query, variables, name, extensions


async def _read_body(receive: Receive) -> bytes | None:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None  # http.disconnect
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives the body once more, then waits on the connection as before
    (for the disconnect a streaming response listens for)."""
    pending = True

    async def replayed() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
