"""The Starlette application: /graphql (HTTP, multipart uploads and WebSocket), /healthz,
/readyz, /metrics, inspection report downloads, and the payment provider's callback,
/webhooks/payments."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import gc
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from cross_web import HTTPException
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute, request_response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from models import config, db
from models.accounts import AuthError, authenticate
from models.live import Hub
from resolvers.context import Context
from resolvers.observability import current_request
from resolvers.persisted import Mode, PersistedOperations, load_manifest
from resolvers.query_limits import Introspection
from resolvers.schema import build_schema
from server import json_codec, metrics, scheduler, web
from server.auth import AuthGate, token_from_connection_params
from server.direct import DirectGraphQL
from server.limits import BodySizeLimit, GraphQLRequestGuard
from server.logs import RequestLog
from server.payments import install as install_payments
from server.rate_limit import RateLimiter
from server.responses import send_error
from server.settings import Settings
from server.uploads import (
    attachment,
    complaint_attachment,
    dispute_evidence,
    message_attachment,
)
from server.ws_handler import CLOSE_FORBIDDEN, CLOSE_TRY_AGAIN, Refused, TransportWSHandler
from server.ws_limits import ExposeAbort, WebSocketLimits

log = logging.getLogger("trade_assurance")
SCHEMA_FILE = Path(__file__).resolve().parent.parent / "schema.graphql"


class PendingMigrationsError(RuntimeError):
    pass


_HTTP_CODES = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 415: "UNSUPPORTED_MEDIA_TYPE"}


class GatewayGraphQL(GraphQL[Context, None]):
    """Strawberry's ASGI view with our context and WebSocket authentication; `limiter`
    is the HTTP gate's, charged for every WebSocket operation too (TransportWSHandler)."""

    graphql_transport_ws_handler_class = TransportWSHandler

    def __init__(
        self,
        *args: Any,
        live: Hub,
        limits: WebSocketLimits,
        limiter: RateLimiter | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.live = live
        self.limits = limits
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        try:
            response = await self.run(Request(scope, receive))
        except HTTPException as e:
            # Strawberry answers text/plain here (a batch, a body that is not JSON, a bad
            # `variables`): the JSON shape of every other refusal, so one client handler
            # reads them all.
            code = _HTTP_CODES.get(e.status_code, "BAD_REQUEST")
            await send_error(send, e.status_code, code, e.reason)
            return
        await response(scope, receive, send)

    def encode_json(self, data: object) -> str:
        # Text, not bytes: the view sends bytes over a WebSocket as a binary frame.
        return json_codec.dumps(data).decode()

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        if isinstance(request, WebSocket):
            # One context per connection: no DataLoader cache, so no stale reads across
            # the operations of a long-lived socket.
            return Context(
                principal=None, request=request, response=response, cache=False, live=self.live
            )
        return Context(
            principal=request.state.principal, request=request, response=response, live=self.live
        )

    async def on_ws_connect(self, context: Context) -> dict[str, object] | None:
        """The connection's principal; a refusal (Refused) is closed by TransportWSHandler
        with its close code and the error code as the reason."""
        try:
            secret = token_from_connection_params(context.connection_params)
            if secret is None:
                return None
            # Uncached: a stream lives long, so it starts from the database's word.
            context.principal = await authenticate(secret, cached=False)
        except AuthError as e:
            raise Refused(CLOSE_FORBIDDEN, e.code, str(e)) from e
        except Exception as e:
            if not db.is_transient(e):
                raise
            # The database is away (a restart): not "Forbidden" but Try Again Later.
            raise Refused(CLOSE_TRY_AGAIN, "TRY_AGAIN", "database unavailable; try again") from e
        self.limits.admit(context.principal, context.request.scope)
        if (info := current_request.get()) is not None:
            info.principal = context.principal  # for the connection's close log line
        return {"role": context.principal.role.value}

    async def render_graphql_ide(self, request: Request) -> Response:
        return HTMLResponse(web.graphiql_html())  # ours: vendored assets, example tabs


async def healthz(_: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(_: Request) -> Response:
    try:
        await db.ping()
        pending = await db.pending_migrations()
    except Exception as e:
        return JSONResponse({"status": "unavailable", "error": type(e).__name__}, 503)
    if pending:
        return JSONResponse({"status": "migrations pending", "pending": pending}, 503)
    return JSONResponse({"status": "ready"})


async def schema_file(_: Request) -> Response:
    return PlainTextResponse(SCHEMA_FILE.read_text(), media_type="application/graphql")


async def prepare_database(settings: Settings) -> None:
    """Apply pending migrations, or refuse to start and say how to apply them."""
    if settings.auto_migrate:
        applied = await db.apply_migrations()
        if applied:
            log.info("applied migrations: %s", ", ".join(applied))
        return
    if not db.is_postgres():
        await db.check_sqlite_settings()
    pending = await db.pending_migrations()
    if pending:
        raise PendingMigrationsError(
            f"{len(pending)} migration(s) pending ({', '.join(pending)}); "
            "run `trade-assurance migrate` (or set TA_AUTO_MIGRATE=true)"
        )


def persisted_operations(settings: Settings) -> PersistedOperations:
    mode = Mode(settings.persisted_operations)
    if mode is not Mode.TRUSTED:
        return PersistedOperations(mode)
    assert settings.trusted_documents is not None  # Settings.from_env requires it
    return PersistedOperations(mode, load_manifest(Path(settings.trusted_documents)))


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    config.configure(settings.domain)
    payment_webhook = install_payments(settings)  # the provider, and its callback route
    schema = build_schema(
        max_depth=settings.max_query_depth,
        max_aliases=settings.max_aliases,
        max_tokens=settings.max_tokens,
        field_suggestions=settings.development,
        persisted=persisted_operations(settings),
        max_cost=settings.max_query_cost,
        introspection=Introspection(settings.introspection),
        execution_timeout=settings.execution_timeout_seconds,
    )
    live = Hub(
        dsn=settings.database_url if db.is_postgres() else None,
        poll_interval=settings.live_poll_seconds,
        queue_size=settings.subscriber_queue,
        freeze_gc=True,
    )
    metrics.watch_hub(live)
    limits = WebSocketLimits(per_principal=settings.ws_connections_per_principal)
    limiter = RateLimiter(settings.rate_limit_per_minute, settings.anonymous_rate_limit_per_minute)
    gate = functools.partial(AuthGate, limiter=limiter)  # one request budget per caller
    graphql = GatewayGraphQL(
        schema,
        live=live,
        limits=limits,
        limiter=limiter,
        max_subscriptions_per_connection=settings.ws_subscriptions_per_connection,
        allowed_origins=settings.ws_allowed_origins,
        graphql_ide="graphiql" if settings.graphiql else None,
        allow_queries_via_get=False,
        subscription_protocols=[GRAPHQL_TRANSPORT_WS_PROTOCOL],
        connection_init_wait_timeout=dt.timedelta(seconds=10),
        # GraphQL multipart requests (report files); guarded against CSRF below.
        multipart_uploads_enabled=True,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await db.open_pool(settings.pg_pool_min, settings.pg_pool_max)
        try:
            await prepare_database(settings)
            await live.start()
            # What start-up built (modules, the schema, caches) lives as long as the
            # process: move it out of the cyclic collector's reach, or every full
            # collection walks it again (milliseconds, several times a minute under load).
            gc.collect()
            gc.freeze()
            # A request allocates thousands of short-lived objects, and graphql-core's
            # results are full of small containers: at the default 700 the youngest
            # generation was collected several times per request. Collecting it every
            # 20,000 allocations cut an order status's latency by 10-15 % (p50 and p99 at
            # one connection, docs/performance.md) for a few MB of garbage held longer.
            gc.set_threshold(20_000, 20, 10)
            try:
                async with scheduler.running(
                    settings.scheduler_interval_seconds, settings.ledger_check_minutes
                ):
                    yield
            finally:
                await live.stop()
        finally:
            await db.close_pool()

    return Starlette(
        routes=[
            Route(
                "/graphql",
                gate(GraphQLRequestGuard(DirectGraphQL(graphql))),
                methods=["GET", "POST"],
            ),
            WebSocketRoute("/graphql", limits.wrap(graphql)),
            Route("/schema.graphql", schema_file),
            Route(
                "/inspections/attachments/{attachment_id}",
                gate(request_response(attachment)),
                methods=["GET"],
            ),
            Route(
                "/complaints/attachments/{attachment_id}",
                gate(request_response(complaint_attachment)),
                methods=["GET"],
            ),
            Route(
                "/disputes/evidence/{attachment_id}",
                gate(request_response(dispute_evidence)),
                methods=["GET"],
            ),
            Route(
                "/orders/messages/attachments/{attachment_id}",
                gate(request_response(message_attachment)),
                methods=["GET"],
            ),
            Route("/orders/{order_id}/live", web.live_order_page, methods=["GET"]),
            Mount("/static", web.static_files(), name="static"),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            payment_webhook,  # not behind AuthGate: the provider signs its calls instead
            *(
                [Route("/metrics", metrics.endpoint(settings.metrics_token), methods=["GET"])]
                if settings.metrics
                else []
            ),
        ],
        middleware=[
            Middleware(ExposeAbort),  # first: it needs uvicorn's own `send`
            Middleware(RequestLog),  # the request id, on every response (413s too)
            Middleware(
                BodySizeLimit,
                max_bytes=settings.max_body_bytes,
                upload_max_bytes=settings.max_upload_request_bytes,
                upload_paths=frozenset({"/graphql"}),
            ),
        ],
        lifespan=lifespan,
    )
