"""The authenticated download of inspection report attachments and complaint, dispute and
message files (the CSRF guard on multipart uploads is `server.limits.GraphQLRequestGuard`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from models import disputes, inspections, investigations, messages
from models.accounts import Principal
from models.errors import DomainError, ErrorCode
from resolvers.errors import row_id


def _error(status: int, code: str, message: str) -> Response:
    return JSONResponse({"error": {"code": code, "message": message}}, status)


async def attachment(request: Request) -> Response:
    """GET /inspections/attachments/{id}: the file, for the order's parties, the inspector
    and mediators (bearer token); 404 for anyone else. The bytes are checked against the
    SHA-256 recorded at upload first: a file changed or lost on disk is refused with 500
    ATTACHMENT_CORRUPTED, never served."""
    return await _serve(request, inspections.open_attachment)


async def complaint_attachment(request: Request) -> Response:
    """GET /complaints/attachments/{id}: an evidence file, for the complaining buyer and
    mediators; 404 for anyone else; checked like inspection files."""
    return await _serve(request, investigations.open_attachment)


async def dispute_evidence(request: Request) -> Response:
    """GET /disputes/evidence/{id}: an evidence file, for the order's buyer and supplier
    and mediators; 404 for anyone else; checked like inspection files."""
    return await _serve(request, disputes.open_attachment)


async def _serve(
    request: Request, open_file: Callable[[Principal, int], Awaitable[tuple[Any, bytes]]]
) -> Response:
    principal = request.state.principal
    if principal is None:
        return _error(401, "UNAUTHENTICATED", "send 'Authorization: Bearer <token>'")
    attachment_id = row_id(request.path_params["attachment_id"])
    try:
        found, data = await open_file(principal, attachment_id)
    except DomainError as e:
        status = 500 if e.code is ErrorCode.ATTACHMENT_CORRUPTED else 404
        return _error(status, e.code.value, e.message)
    return Response(
        data,
        media_type=found.content_type,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(found.filename)}",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
            "ETag": f'"{found.sha256}"',
            "X-Content-SHA256": found.sha256,
        },
    )


async def message_attachment(request: Request) -> Response:
    """GET /orders/messages/attachments/{id}: a file sent with an order's message, for
    the order's parties and mediators; 404 for anyone else; checked like inspection files."""
    return await _serve(request, messages.open_attachment)
