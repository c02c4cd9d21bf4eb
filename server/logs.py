"""Logs: one JSON object a line (or plain text for a terminal), each carrying the id of the
request it was written under; one access line per HTTP request, and one when a WebSocket
connects and when it closes.

The request id is the client's `X-Request-ID` when it is sane (1 to 64 of
`[A-Za-z0-9._-]`), a new one otherwise; it goes back in the `X-Request-ID` response header
of every response (errors included) and, through a context variable, into every log line
written while the request is served. Access lines hold the method, path, status, duration,
GraphQL operation name and the principal's id and role: never a query string, header
value or body, so no token, password or API key can reach the logs through them.
"""

from __future__ import annotations

import functools
import json
import logging
import random
import re
import time
from typing import Any

import orjson
from pythonjsonlogger.core import RESERVED_ATTRS
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from models.accounts import Principal
from resolvers.observability import RequestInfo, current_request

HEADER = b"x-request-id"
_SANE = re.compile(rb"[A-Za-z0-9._-]{1,64}")

access = logging.getLogger("trade_assurance.access")
log = logging.getLogger("trade_assurance")


class RequestIdFilter(logging.Filter):
    """Stamps each record with the current request's id (`missing` outside a request)."""

    def __init__(self, missing: str | None = None) -> None:
        super().__init__()
        self.missing = missing

    def filter(self, record: logging.LogRecord) -> bool:
        info = current_request.get()
        record.request_id = info.request_id if info is not None else self.missing
        return True


_PASSTHROUGH = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


@functools.cache
def _default(cls: type[json.JSONEncoder]) -> Any:
    return cls().default


def json_line(data: dict[str, Any], *, cls: Any = None, **_: Any) -> str:
    """A log line's JSON, by orjson: the access log writes one per request, and the
    standard library's encoder was a third of its cost. Compact; datetimes and
    dataclasses go through the library's `default` (`cls`), and what orjson cannot write
    as `json.dumps` with that `cls` would (non-ASCII text, which the standard library
    escapes; a non-string key) is left to `json.dumps`."""
    try:
        line = orjson.dumps(data, default=_default(cls or json.JSONEncoder), option=_PASSTHROUGH)
        if line.isascii():
            return line.decode()
    except TypeError:  # a non-string key
        pass
    return json.dumps(data, cls=cls, separators=(",", ":"))


def log_config(fmt: str = "json", level: str = "info") -> dict[str, Any]:
    """A `logging.config.dictConfig` for the server (uvicorn applies it in every worker).
    uvicorn's own access log is off: `RequestLog` writes a richer one."""
    formatter: dict[str, Any]
    if fmt == "json":
        formatter = {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(levelname)s %(name)s %(message)s",
            "rename_fields": {"levelname": "level", "name": "logger"},
            "timestamp": "time",
            # uvicorn adds a coloured copy of some messages; it is noise in JSON.
            "reserved_attrs": [*RESERVED_ATTRS, "color_message"],
            "json_serializer": json_line,
        }
    else:
        formatter = {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "request_id": {
                "()": "server.logs.RequestIdFilter",
                "missing": None if fmt == "json" else "-",
            }
        },
        "formatters": {"default": formatter},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "filters": ["request_id"],
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["default"], "level": level.upper()},
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": False},
        },
    }


def request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == HEADER:
            if _SANE.fullmatch(value):
                return str(value.decode())
            break
    # 128 random bits as uuid4().hex has them, from `random` (reseeded in each forked
    # worker): an id to find a request by, not a secret, and os.urandom is a system call
    # per request.
    return f"{random.getrandbits(128):032x}"


def principal_fields(principal: Principal | None) -> dict[str, str]:
    if principal is None:
        return {}
    who = f"key:{principal.api_key_id}" if principal.is_partner else f"user:{principal.user_id}"
    return {"principal": who, "role": principal.acting_role.value}


_INTERNAL_ERROR = json.dumps(
    {"errors": [{"message": "Internal error.", "extensions": {"code": "INTERNAL_SERVER_ERROR"}}]}
).encode()


class RequestLog:
    """Pure ASGI middleware (no BaseHTTPMiddleware: no extra task or body buffering per
    request): the request id, its response header, and the access log."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        info = RequestInfo(request_id(scope))
        token = current_request.set(info)
        try:
            if scope["type"] == "http":
                await self._http(scope, receive, send, info)
            else:
                await self._websocket(scope, receive, send, info)
        finally:
            current_request.reset(token)

    async def _http(self, scope: Scope, receive: Receive, send: Send, info: RequestInfo) -> None:
        started = time.perf_counter()
        header = (HEADER, info.request_id.encode())
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error in %s %s", scope["method"], scope["path"])
            if status:
                raise  # the response has begun: only the server can end it now
            status = 500
            await send_with_id(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(_INTERNAL_ERROR)).encode()),
                    ],
                }
            )
            await send_with_id({"type": "http.response.body", "body": _INTERNAL_ERROR})
        finally:
            if access.isEnabledFor(logging.INFO):
                fields: dict[str, Any] = {
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                }
                if info.operation:
                    fields["operation"] = info.operation
                state = scope.get("state") or {}
                fields.update(principal_fields(info.principal or state.get("principal")))
                access.info("%s %s %s", scope["method"], scope["path"], status, extra=fields)

    async def _websocket(
        self, scope: Scope, receive: Receive, send: Send, info: RequestInfo
    ) -> None:
        started = time.perf_counter()
        header = (HEADER, info.request_id.encode())
        close_code: int | None = None

        async def send_with_id(message: Message) -> None:
            nonlocal close_code
            if message["type"] == "websocket.accept":
                message["headers"] = [*message.get("headers", ()), header]
                access.info("websocket connected %s", scope["path"], extra={"path": scope["path"]})
            elif message["type"] == "websocket.close" and close_code is None:
                close_code = message.get("code", 1000)
            await send(message)

        async def receive_close() -> Message:
            nonlocal close_code
            message = await receive()
            if message["type"] == "websocket.disconnect" and close_code is None:
                close_code = message.get("code", 1005)
            return message

        try:
            await self.app(scope, receive_close, send_with_id)
        finally:
            access.info(
                "websocket closed %s %s",
                scope["path"],
                close_code,
                extra={
                    "path": scope["path"],
                    "close_code": close_code,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    **principal_fields(info.principal),
                },
            )
