"""Business failures. They travel to clients as data (`errors { code message field }`)."""

from __future__ import annotations

import enum


class ErrorCode(enum.Enum):
    INVALID_INPUT = "INVALID_INPUT"
    INVALID_COUNTRY = "INVALID_COUNTRY"
    INVALID_CURRENCY = "INVALID_CURRENCY"
    INVALID_AMOUNT = "INVALID_AMOUNT"
    EMAIL_TAKEN = "EMAIL_TAKEN"
    WEAK_PASSWORD = "WEAK_PASSWORD"  # noqa: S105 - an error code
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    ACCOUNT_DISABLED = "ACCOUNT_DISABLED"
    FORBIDDEN = "FORBIDDEN"
    SCOPE_MISSING = "SCOPE_MISSING"
    NOT_FOUND = "NOT_FOUND"
    NOT_GOLD_SUPPLIER = "NOT_GOLD_SUPPLIER"
    NOT_VERIFIED = "NOT_VERIFIED"
    TRADE_ASSURANCE_ALREADY_ACTIVE = "TRADE_ASSURANCE_ALREADY_ACTIVE"
    TRADE_ASSURANCE_SUSPENDED = "TRADE_ASSURANCE_SUSPENDED"
    APPLICATION_ALREADY_PENDING = "APPLICATION_ALREADY_PENDING"
    APPLICATION_ALREADY_DECIDED = "APPLICATION_ALREADY_DECIDED"
    LIMIT_REQUIRED = "LIMIT_REQUIRED"
    REASON_REQUIRED = "REASON_REQUIRED"
    ALREADY_REVOKED = "ALREADY_REVOKED"


class DomainError(Exception):
    """An expected business failure: a code, a readable message, and the input field at fault."""

    def __init__(self, code: ErrorCode, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
