"""Idempotency keys for money mutations, scoped to the caller.

Same key and same request: the first answer again, nothing moves. Same key, different
request: IDEMPOTENCY_KEY_REUSED. The record is written in the same transaction as the
effect, after the order row is locked, so concurrent requests with one key serialise on
that lock and all but the first find the record.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from models import clock, sql
from models.accounts import Principal
from models.db import is_unique_violation
from models.errors import DomainError, ErrorCode
from models.tables import IdempotencyRecord

MAX_KEY_LENGTH = 200


def scope_of(principal: Principal) -> str:
    if principal.is_partner:
        return f"api_key:{principal.api_key_id}"
    return f"user:{principal.user_id}"


def request_hash(operation: str, request: dict[str, Any]) -> str:
    canonical = json.dumps({"op": operation, **request}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_key(key: str) -> str:
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise DomainError(
            ErrorCode.INVALID_INPUT,
            f"idempotencyKey must have 1 to {MAX_KEY_LENGTH} characters",
            "idempotencyKey",
        )
    return key


async def replay(
    scope: str, key: str, operation: str, request: dict[str, Any]
) -> dict[str, Any] | None:
    """The stored result for this key, None if it is new; raise if it named another request."""
    found = await sql.fetch(
        "SELECT operation, request_hash, result FROM idempotency_record"
        ' WHERE scope = {} AND "key" = {}',
        scope,
        key,
    )
    if not found:
        return None
    row = found[0]
    if row["operation"] != operation or row["request_hash"] != request_hash(operation, request):
        raise DomainError(
            ErrorCode.IDEMPOTENCY_KEY_REUSED,
            "this idempotency key was used for a different request; use a new key",
            "idempotencyKey",
        )
    result: dict[str, Any] = json.loads(row["result"])
    return result


@asynccontextmanager
async def first_claim() -> AsyncIterator[None]:
    """Wrap the transaction that `remember`s a key. Two requests with one key on
    different orders do not share a row lock; the loser's insert hits the unique index,
    and that is the same key reused for a different request."""
    try:
        yield
    except Exception as e:
        if is_unique_violation(e):
            raise DomainError(
                ErrorCode.IDEMPOTENCY_KEY_REUSED,
                "this idempotency key is being used for a different request; use a new key",
                "idempotencyKey",
            ) from e
        raise


async def remember(
    scope: str, key: str, operation: str, request: dict[str, Any], result: dict[str, Any]
) -> None:
    await sql.insert(
        IdempotencyRecord,
        {"scope": scope, "key": key, "operation": operation,
         "request_hash": request_hash(operation, request),
         "result": json.dumps(result, sort_keys=True), "created_at": clock.now()},
    )  # fmt: skip
