"""Refusals written by the ASGI guards, before GraphQL runs: the same JSON shape as a
GraphQL error (`errors[0].extensions.code`), so clients read every refusal alike."""

from __future__ import annotations

import json

from starlette.types import Send

# TRY_AGAIN's message, over HTTP (503) and a WebSocket alike.
DATABASE_AWAY = "the database is unavailable for a moment; try again"


async def send_error(
    send: Send,
    status: int,
    code: str,
    message: str,
    headers: tuple[tuple[bytes, bytes], ...] = (),
    **details: object,
) -> None:
    error = {"message": message, "extensions": {"code": code, **details}}
    body = json.dumps({"errors": [error]}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
