"""The HTTP shape of a GraphQL request, checked before it is read: body size (enforced
while reading: a lying Content-Length does not help), method and content type."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.responses import send_error


class _TooLarge(Exception):
    pass


def header(scope: Scope, name: bytes) -> bytes:
    """The first value of a request header (`name` in lower case), b"" if absent."""
    return next((v for k, v in scope["headers"] if k == name), b"")


def media_type(scope: Scope) -> bytes:
    """The request's Content-Type without its parameters, lower case."""
    return header(scope, b"content-type").split(b";")[0].strip().lower()


def is_multipart(scope: Scope) -> bool:
    return media_type(scope) == b"multipart/form-data"


class BodySizeLimit:
    """`max_bytes` for every request body; a multipart request to one of `upload_paths`
    (GraphQL file uploads) may be larger, up to `upload_max_bytes`, still bounded."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        upload_max_bytes: int | None = None,
        upload_paths: frozenset[str] = frozenset(),
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.upload_max_bytes = upload_max_bytes or max_bytes
        self.upload_paths = upload_paths

    async def _reject(self, send: Send, limit: int) -> None:
        await send_error(send, 413, "REQUEST_TOO_LARGE", f"request body exceeds {limit} bytes")

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Not a coroutine itself: a WebSocket connection goes straight on, without a frame
        # of ours kept for its lifetime (thousands of them per process).
        if scope["type"] != "http":
            return self.app(scope, receive, send)
        return self._http(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = (
            self.upload_max_bytes
            if scope["path"] in self.upload_paths and is_multipart(scope)
            else self.max_bytes
        )
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await self._reject(send, limit)
                return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._reject(send, limit)


PREFLIGHT_HEADERS = (b"apollo-require-preflight", b"x-apollo-operation-name")


class GraphQLRequestGuard:
    """What a cross-site page could send is refused before GraphQL sees it:

    - GET runs no operation (405, `Allow: POST`); it only opens GraphiQL (`Accept:
      text/html`). Queries over GET would let a link or an image run them.
    - POST bodies are `application/json`, or `multipart/form-data` (file uploads) with a
      header no HTML form can set (`Apollo-Require-Preflight`, any non-empty value, or
      `X-Apollo-Operation-Name`), which makes a browser send a CORS preflight first: a
      form on another site can post neither (415, or 400 CSRF_PREFLIGHT_REQUIRED). We
      authenticate with bearer tokens, not cookies, so there is no ambient credential to
      abuse today; this keeps it so if one is ever added.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = self._refusal(scope)
            if refusal is not None:
                await send_error(send, *refusal)
                return
        await self.app(scope, receive, send)

    @staticmethod
    def _refusal(scope: Scope) -> tuple[Any, ...] | None:
        if scope["method"] == "GET":
            if b"text/html" in header(scope, b"accept"):
                return None
            return (
                405,
                "METHOD_NOT_ALLOWED",
                "send GraphQL operations with POST (GET only opens GraphiQL)",
                ((b"allow", b"POST"),),
            )
        if scope["method"] != "POST":
            return None  # the route answers 405 itself
        if is_multipart(scope):
            if any(k in PREFLIGHT_HEADERS and v.strip() for k, v in scope["headers"]):
                return None
            return (
                400,
                "CSRF_PREFLIGHT_REQUIRED",
                "multipart requests need the header "
                "'Apollo-Require-Preflight: true' (CSRF protection)",
            )
        if media_type(scope) == b"application/json":
            return None
        return (
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            "send GraphQL operations as application/json (multipart/form-data for uploads)",
        )
