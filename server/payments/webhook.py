"""`POST /webhooks/payments`: signed provider callbacks that complete pending payments and
refunds.

Not behind the GraphQL auth gate: the provider authenticates with the `Ta-Signature`
HMAC (see `signing`), checked over the raw body before anything parses it.

Answers, all JSON:

- 200 `{"received": true, "duplicate": false}`: the event was applied;
- 200 `{"received": true, "duplicate": true}`: this event id was already processed;
- 401 `{"error": {"code": "MISSING_SIGNATURE" | "MALFORMED_SIGNATURE" |
  "TIMESTAMP_OUT_OF_TOLERANCE" | "BAD_SIGNATURE", "message": …}}`;
- 400 `{"error": {"code": "MALFORMED_EVENT" | "UNKNOWN_EVENT_TYPE", …}}`;
- 413 `{"error": {"code": "PAYLOAD_TOO_LARGE", …}}` over 64 KiB;
- 422 `{"error": {"code": <domain error code>, …}}`: the domain refused the event (for
  example, an unknown reference).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from models import clock
from models.errors import DomainError
from server.payments import signing
from server.payments.sandbox import EVENT_TYPES

log = logging.getLogger("trade_assurance.payments")

MAX_BODY_BYTES = 64 * 1024
_MAX_TEXT = 255  # longest id / reference / reason we accept


@dataclasses.dataclass(frozen=True, slots=True)
class ProviderEvent:
    id: str
    type: str
    created: int
    reference: str
    provider_reference: str | None
    reason: str | None


class MalformedEvent(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status)


def _optional(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > _MAX_TEXT:
        raise MalformedEvent(
            "MALFORMED_EVENT", f"{key} must be null or a non-empty string of at most {_MAX_TEXT}"
        )
    return value


def _required(data: dict[str, Any], key: str) -> str:
    value = _optional(data, key)
    if value is None:
        raise MalformedEvent("MALFORMED_EVENT", f"{key} is required")
    return value


def parse_event(body: bytes) -> ProviderEvent:
    """The event in a (verified) body, or `MalformedEvent`."""
    try:
        event = json.loads(body)
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError
        raise MalformedEvent("MALFORMED_EVENT", "the body is not a JSON document") from e
    if not isinstance(event, dict):
        raise MalformedEvent("MALFORMED_EVENT", "the event must be a JSON object")
    event_id = _required(event, "id")
    if not event_id.startswith("evt_"):
        raise MalformedEvent("MALFORMED_EVENT", "id must start with evt_")
    event_type = _required(event, "type")
    if event_type not in EVENT_TYPES:
        raise MalformedEvent(
            "UNKNOWN_EVENT_TYPE", f"type must be one of {', '.join(sorted(EVENT_TYPES))}"
        )
    created = event.get("created")
    if not isinstance(created, int) or isinstance(created, bool) or created < 0:
        raise MalformedEvent("MALFORMED_EVENT", "created must be unix seconds")
    data = event.get("data")
    if not isinstance(data, dict):
        raise MalformedEvent("MALFORMED_EVENT", "data must be an object")
    return ProviderEvent(
        id=event_id,
        type=event_type,
        created=created,
        reference=_required(data, "reference"),
        provider_reference=_optional(data, "provider_reference"),
        reason=_optional(data, "reason"),
    )


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The raw body, or None once it exceeds `limit` (whatever Content-Length claimed)."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def payment_webhook(
    secret: str, *, max_body_bytes: int = MAX_BODY_BYTES
) -> Callable[[Request], Awaitable[Response]]:
    """The endpoint, verifying with `secret`."""

    async def endpoint(request: Request) -> Response:
        body = await _read_body(request, max_body_bytes)
        if body is None:
            return _error(413, "PAYLOAD_TOO_LARGE", f"the body exceeds {max_body_bytes} bytes")
        try:
            signing.verify(secret, request.headers.get(signing.HEADER), body, clock.now())
        except signing.SignatureError as e:
            log.warning("payment webhook refused: %s", e.code.value)
            return _error(401, e.code.value, e.message)
        try:
            event = parse_event(body)
        except MalformedEvent as e:
            log.warning("payment webhook: malformed event: %s", e.message)
            return _error(400, e.code, e.message)

        from models import payments  # imported late: the endpoint only needs it per event

        try:
            fresh = await payments.handle_provider_event(
                event_id=event.id,
                event_type=event.type,
                reference=event.reference,
                provider_reference=event.provider_reference,
                reason=event.reason,
            )
        except DomainError as e:
            log.info("payment webhook %s (%s) refused: %s", event.id, event.type, e.code.value)
            return _error(422, e.code.value, e.message)
        return JSONResponse({"received": True, "duplicate": not fresh})

    return endpoint
